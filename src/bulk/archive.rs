//! Unpacking a student's .zip or .tar.gz safely into a throw-away folder.
//!
//! Archives come from students, so they are untrusted input: an entry may name
//! `../../etc/cron.d/x` or an absolute path, be a symlink to the grader's files, or be a
//! 2 GB file (or a zip bomb that claims to be small). Every entry path is checked
//! component by component, only regular files and folders are written (links and
//! special files are skipped and listed), and bytes are counted as they are written, not
//! taken from headers, so extraction stops at [`MAX_BYTES`] whatever the archive claims.
//! Any of these is a per-student error; the class run goes on.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

/// Largest total size unpacked from one archive (the same cap as a case's work copy).
pub const MAX_BYTES: u64 = crate::sandbox::workdir::MAX_COPY_BYTES;
/// Most entries unpacked from one archive.
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Zip,
    TarGz,
}

impl Format {
    /// The format of a file by its name, if it is an archive we unpack.
    pub fn of(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_string_lossy().to_lowercase();
        if name.ends_with(".zip") {
            Some(Format::Zip)
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Some(Format::TarGz)
        } else {
            None
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read the archive {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{path} is not a readable {format} archive ({detail}); ask the student to upload it again"
    )]
    Corrupt {
        path: PathBuf,
        format: &'static str,
        detail: String,
    },
    #[error("{path} unpacks to more than {} MiB; the student's files must be smaller (remove data files, videos, virtual environments)", MAX_BYTES >> 20)]
    TooLarge { path: PathBuf },
    #[error("{path} has more than {MAX_ENTRIES} entries; ask the student to upload only the source files")]
    TooManyEntries { path: PathBuf },
    #[error("{path} contains the entry {entry:?}, which points outside the archive; it was not unpacked (re-pack the files without absolute or `..` paths)")]
    UnsafePath { path: PathBuf, entry: String },
}

/// What was left out of an unpacked archive, to show in the student's report.
#[derive(Debug, Default)]
pub struct Unpacked {
    pub skipped: Vec<String>,
}

/// Unpacks `archive` into the existing, empty folder `into`.
pub fn extract(archive: &Path, format: Format, into: &Path) -> Result<Unpacked, ArchiveError> {
    let file = File::open(archive).map_err(|source| ArchiveError::Io {
        path: archive.into(),
        source,
    })?;
    let mut sink = Sink {
        archive,
        into,
        written: 0,
        entries: 0,
        unpacked: Unpacked::default(),
    };
    match format {
        Format::Zip => extract_zip(file, &mut sink)?,
        Format::TarGz => extract_tar_gz(file, &mut sink)?,
    }
    Ok(sink.unpacked)
}

/// Writes checked entries under `into`, counting bytes and entries.
struct Sink<'a> {
    archive: &'a Path,
    into: &'a Path,
    written: u64,
    entries: usize,
    unpacked: Unpacked,
}

impl Sink<'_> {
    /// The destination of an entry, or an error if its path leaves the folder.
    /// `None` for entries not worth unpacking (macOS resource forks).
    fn dest(&mut self, name: &str) -> Result<Option<PathBuf>, ArchiveError> {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(ArchiveError::TooManyEntries {
                path: self.archive.into(),
            });
        }
        let mut rel = PathBuf::new();
        for c in Path::new(name).components() {
            match c {
                Component::Normal(part) => rel.push(part),
                Component::CurDir => {}
                _ => {
                    return Err(ArchiveError::UnsafePath {
                        path: self.archive.into(),
                        entry: name.into(),
                    })
                }
            }
        }
        // Zips made on macOS carry `__MACOSX/._tcp_server.py` twins that would make
        // the spec's file patterns ambiguous.
        let mac = rel.components().any(|c| c.as_os_str() == "__MACOSX")
            || rel
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("._"));
        if mac || rel.as_os_str().is_empty() {
            return Ok(None);
        }
        Ok(Some(self.into.join(rel)))
    }

    fn dir(&mut self, name: &str) -> Result<(), ArchiveError> {
        if let Some(dest) = self.dest(name)? {
            fs::create_dir_all(&dest).map_err(|source| ArchiveError::Io { path: dest, source })?;
        }
        Ok(())
    }

    fn file(&mut self, name: &str, mut data: impl Read) -> Result<(), ArchiveError> {
        let Some(dest) = self.dest(name)? else {
            return Ok(());
        };
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|source| ArchiveError::Io {
                path: parent.into(),
                source,
            })?;
        }
        let mut out = File::create(&dest).map_err(|source| ArchiveError::Io {
            path: dest.clone(),
            source,
        })?;
        // One byte more than allowed tells "too large" from "exactly at the cap".
        let room = MAX_BYTES - self.written;
        let n = io::copy(&mut (&mut data).take(room + 1), &mut out)
            .map_err(|e| self.corrupt(e.to_string()))?;
        self.written += n;
        if self.written > MAX_BYTES {
            return Err(ArchiveError::TooLarge {
                path: self.archive.into(),
            });
        }
        Ok(())
    }

    fn skip(&mut self, name: &str, what: &str) {
        self.unpacked
            .skipped
            .push(format!("{name} ({what}, not unpacked)"));
    }

    fn corrupt(&self, detail: String) -> ArchiveError {
        let format = if Format::of(self.archive) == Some(Format::Zip) {
            "zip"
        } else {
            "tar.gz"
        };
        ArchiveError::Corrupt {
            path: self.archive.into(),
            format,
            detail,
        }
    }
}

fn extract_zip(file: File, sink: &mut Sink<'_>) -> Result<(), ArchiveError> {
    let mut zip =
        zip::ZipArchive::new(io::BufReader::new(file)).map_err(|e| sink.corrupt(e.to_string()))?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| sink.corrupt(e.to_string()))?;
        let name = entry_name(entry.name_raw(), entry.name());
        if entry.is_dir() {
            sink.dir(&name)?;
        } else if entry.is_symlink() {
            sink.skip(&name, "a symbolic link");
        } else if entry.is_file() {
            sink.file(&name, &mut entry)?;
        } else {
            sink.skip(&name, "not a regular file");
        }
    }
    Ok(())
}

/// A zip entry's name: UTF-8 when it is, else GBK (Chinese Windows zips carry GBK names
/// without the UTF-8 flag, which would otherwise come out as CP437 noise and match no
/// pattern such as `*服务*.py`).
fn entry_name(raw: &[u8], decoded: &str) -> String {
    if let Ok(s) = std::str::from_utf8(raw) {
        return s.to_string();
    }
    let (gbk, _, bad) = encoding_rs::GBK.decode(raw);
    if bad {
        decoded.to_string()
    } else {
        gbk.into_owned()
    }
}

fn extract_tar_gz(file: File, sink: &mut Sink<'_>) -> Result<(), ArchiveError> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(file)));
    let entries = tar.entries().map_err(|e| sink.corrupt(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| sink.corrupt(e.to_string()))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        use tar::EntryType as T;
        match entry.header().entry_type() {
            T::Directory => sink.dir(&name)?,
            T::Regular | T::Continuous => sink.file(&name, &mut entry)?,
            T::Symlink | T::Link => sink.skip(&name, "a link"),
            // Metadata records of pax and GNU tar, not files.
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => {}
            _ => sink.skip(&name, "not a regular file"),
        }
    }
    Ok(())
}
