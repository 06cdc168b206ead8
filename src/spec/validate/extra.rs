//! Validation of the issue-13 keys: data files, `[random]`, `clients`, `for_each`,
//! connection options, sends in pieces or of a file, and the stream/file/timing steps.
//! Kept apart from the core checks so the core stays readable.

use super::super::extra::*;
use super::super::personalize::fill_case;
use super::super::raw::*;
use super::super::*;
use super::{parse_hex, parse_size, StepChecker, Validator};
use serde_spanned::Spanned;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

/// Compiled regexes may grow to this (the regex crate's default is 10 MiB, which a
/// pattern such as `.{1048576}` exceeds); past it the error steers to `expect_bytes`.
pub(super) const REGEX_SIZE_LIMIT: usize = 64 << 20;

/// The largest file the spec may supply (it is written for every case).
const MAX_DATA_FILE: u64 = 64 << 20;

/// Data files of `b` over those of `a` (the same path: `b`'s).
pub(super) fn merge_files(a: &[DataFile], b: &[DataFile]) -> Vec<DataFile> {
    let mut out: Vec<DataFile> = a
        .iter()
        .filter(|f| !b.iter().any(|g| g.path == f.path))
        .cloned()
        .collect();
    out.extend(b.iter().cloned());
    out
}

pub(super) fn for_each_keys(
    for_each: &Option<Spanned<Vec<BTreeMap<String, String>>>>,
) -> Vec<String> {
    let mut keys: Vec<String> = for_each
        .iter()
        .flat_map(|f| f.get_ref().iter().flat_map(|t| t.keys().cloned()))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The steps of a case for `n` clients: in lockstep, each step once per client on that
/// client's own connections (`main` becomes `client K`); steps that touch no
/// connection (pause, expect_waiting) once per round.
pub(super) fn for_clients(steps: Vec<Step>, n: u32) -> Vec<Step> {
    if n <= 1 {
        return steps;
    }
    let mut out = Vec::new();
    for step in steps {
        if step.action.conn().is_none() {
            out.push(step);
            continue;
        }
        for k in 1..=n {
            let mut s = step.clone();
            s.client = k;
            rename_conn(&mut s.action, |c| {
                if c == "main" {
                    format!("client {k}")
                } else {
                    format!("{c} (client {k})")
                }
            });
            out.push(s);
        }
    }
    out
}

fn rename_conn(action: &mut Action, f: impl Fn(&str) -> String) {
    let conn = match action {
        Action::Connect { conn, .. }
        | Action::Accept { conn, .. }
        | Action::Send { conn, .. }
        | Action::Expect { conn, .. }
        | Action::Shutdown { conn }
        | Action::Close { conn, .. }
        | Action::ExpectClose { conn, .. }
        | Action::SendPieces { conn, .. }
        | Action::SendFile { conn, .. }
        | Action::ExpectNothing { conn, .. }
        | Action::ExpectOpen { conn, .. }
        | Action::ExpectBytes { conn, .. } => conn,
        _ => return,
    };
    *conn = f(conn);
}

impl Validator<'_> {
    pub(super) fn send_buffer(&mut self, s: &Spanned<String>) -> Option<u64> {
        let n = self.size(s, "limits.send_buffer")?;
        if n < 4096 {
            self.err(
                Some(s.span()),
                "limits.send_buffer",
                "a send buffer under 4KiB is below the kernel's minimum",
                Some("use e.g. \"64KiB\"".into()),
            );
            return None;
        }
        Some(n)
    }

    /// `[random]`: each value's letters and length; their names become `{name}`s.
    pub(super) fn random(&mut self, raw: &BTreeMap<String, Spanned<RawRandom>>) -> Vec<RandomVar> {
        let mut out = Vec::new();
        self.vars.push("client".into());
        for (name, r) in raw {
            let key = format!("random.{name}");
            let valid_name =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid_name || name == "client" {
                self.err(
                    Some(r.span()),
                    &key,
                    format!("{name:?} cannot name a value"),
                    Some(
                        "use letters, digits and _ (and not \"client\", which clients = N sets)"
                            .into(),
                    ),
                );
                continue;
            }
            let letters: Vec<char> = r.get_ref().letters.chars().collect();
            if letters.is_empty() || r.get_ref().length == 0 {
                self.err(
                    Some(r.span()),
                    &key,
                    "a random value needs `letters` and a `length` of at least 1",
                    Some(
                        "e.g. word = { letters = \"abcdefghijklmnopqrstuvwxyz\", length = 8 }"
                            .into(),
                    ),
                );
                continue;
            }
            self.vars.push(name.clone());
            out.push(RandomVar {
                name: name.clone(),
                letters,
                length: r.get_ref().length as usize,
                prefix: r.get_ref().prefix.clone().unwrap_or_default(),
            });
        }
        out
    }

    /// Data files (`[files]`, a program's or a case's `files`), each error at its file.
    pub(super) fn data_files(
        &mut self,
        raw: &BTreeMap<String, Spanned<RawDataFile>>,
        section: &str,
    ) -> Vec<DataFile> {
        let mut out = Vec::new();
        for (path, f) in raw {
            let key = format!("{section}.{path:?}");
            let rel = std::path::Path::new(path);
            let inside = !path.is_empty()
                && rel.is_relative()
                && rel
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !inside {
                self.err(
                    Some(f.span()),
                    &key,
                    format!("{path:?} is not a path inside the program's folder"),
                    Some("write a relative path without \"..\", e.g. \"www/index.html\"".into()),
                );
                continue;
            }
            let r = f.get_ref();
            let given = [
                r.text.is_some(),
                r.hex.is_some(),
                r.from.is_some(),
                r.random_bytes.is_some(),
            ];
            if given.iter().filter(|g| **g).count() != 1 {
                self.err(
                    Some(f.span()),
                    &key,
                    "give exactly one of `text`, `hex`, `from`, `random_bytes`",
                    Some("e.g. { text = \"hello\\n\" } or { random_bytes = \"1MiB\" }".into()),
                );
                continue;
            }
            let source = if let Some(t) = &r.text {
                FileSource::Bytes(Arc::new(t.clone().into_bytes()))
            } else if let Some(h) = &r.hex {
                match parse_hex(h) {
                    Some(b) => FileSource::Bytes(Arc::new(b)),
                    None => {
                        self.err(
                            Some(f.span()),
                            format!("{key}.hex"),
                            format!("{h:?} is not hex bytes"),
                            Some(
                                "write pairs of hex digits, spaces allowed: \"de ad be ef\"".into(),
                            ),
                        );
                        continue;
                    }
                }
            } else if let Some(from) = &r.from {
                let base = self.file.parent().unwrap_or(std::path::Path::new("."));
                let full = base.join(from);
                match std::fs::metadata(&full).and_then(|m| {
                    if m.len() > MAX_DATA_FILE {
                        Err(std::io::Error::other(format!(
                            "larger than {} MiB",
                            MAX_DATA_FILE >> 20
                        )))
                    } else {
                        std::fs::read(&full)
                    }
                }) {
                    Ok(b) => FileSource::Bytes(Arc::new(b)),
                    Err(e) => {
                        self.err(
                            Some(f.span()),
                            format!("{key}.from"),
                            format!("cannot read {}: {e}", full.display()),
                            Some("`from` is relative to the spec's folder".into()),
                        );
                        continue;
                    }
                }
            } else {
                let s = Spanned::new(f.span(), r.random_bytes.clone().unwrap_or_default());
                let Some(size) = self.size(&s, &format!("{key}.random_bytes")) else {
                    continue;
                };
                if size > MAX_DATA_FILE {
                    self.err(
                        Some(f.span()),
                        format!("{key}.random_bytes"),
                        format!("at most {} MiB of random bytes", MAX_DATA_FILE >> 20),
                        None,
                    );
                    continue;
                }
                FileSource::Random { size, seed: 0 }
            };
            out.push(DataFile {
                path: path.clone(),
                source,
            });
        }
        out
    }

    pub(super) fn clients(&mut self, raw: Option<&Spanned<u32>>, target: Target, key: &str) -> u32 {
        let Some(n) = raw else { return 1 };
        if target != Target::Server {
            self.err(
                Some(n.span()),
                format!("{key}.clients"),
                "`clients` is for server cases: the grader is then N clients",
                Some("remove `clients`".into()),
            );
            return 1;
        }
        if !(1..=64).contains(n.get_ref()) {
            self.err(
                Some(n.span()),
                format!("{key}.clients"),
                format!("{} clients: use 1 to 64", n.get_ref()),
                None,
            );
            return 1;
        }
        *n.get_ref()
    }

    /// One case per `for_each` table, with its values filled in.
    pub(super) fn for_each(
        &mut self,
        case: Case,
        for_each: Option<Spanned<Vec<BTreeMap<String, String>>>>,
        i: usize,
    ) -> Vec<Case> {
        let Some(tables) = for_each else {
            return vec![case];
        };
        if tables.get_ref().is_empty() {
            self.err(
                Some(tables.span()),
                format!("case[{i}].for_each"),
                "`for_each` has no tables: the case would never run",
                Some("add a table, e.g. for_each = [{ value = \"a b\" }]".into()),
            );
            return Vec::new();
        }
        let mut out: Vec<Case> = Vec::new();
        for t in tables.get_ref() {
            let c = fill_case(&case, &|name: &str, _client: u32| t.get(name).cloned());
            if out.iter().any(|o| o.name == c.name) {
                self.err(Some(tables.span()), format!("case[{i}].for_each"), format!("two tables make the case name {:?}", c.name), Some("put a `{key}` of the tables in the case's name, e.g. name = \"stores {value}\"".into()));
                return Vec::new();
            }
            out.push(c);
        }
        out
    }
}

impl StepChecker<'_, '_> {
    fn dur(&mut self, s: &str, span: &Range<usize>, key: &str) -> Option<Duration> {
        self.v
            .duration(&Spanned::new(span.clone(), s.to_string()), key)
    }

    fn sz(&mut self, s: &str, span: &Range<usize>, key: &str) -> Option<u64> {
        self.v.size(&Spanned::new(span.clone(), s.to_string()), key)
    }

    /// `{name}` of a known value in a regex, escaped so that it compiles (and is found
    /// again when the value is filled in).
    pub(super) fn regex_template(&self, re: &str) -> String {
        let mut out = re.to_string();
        for v in &self.v.vars {
            out = out.replace(&format!("{{{v}}}"), &format!("\\{{{v}\\}}"));
            for f in super::super::personalize::FILTERS {
                out = out.replace(&format!("{{{v}|{f}}}"), &format!("\\{{{v}\\|{f}\\}}"));
            }
        }
        out
    }

    /// `connect`/`accept = { name, recv_buffer, read_rate }`.
    pub(super) fn conn_opts(&mut self, raw: &Spanned<RawConnName>, key: &str) -> Option<ConnOpts> {
        let RawConnName::Table(t) = raw.get_ref() else {
            return Some(ConnOpts::default());
        };
        let span = raw.span();
        let mut opts = ConnOpts::default();
        if let Some(b) = &t.recv_buffer {
            let n = self.sz(b, &span, &format!("{key}.recv_buffer"))?;
            if !(1024..=(64 << 20)).contains(&n) {
                self.err(
                    span.clone(),
                    &format!("{key}.recv_buffer"),
                    "a receive buffer of 1KiB to 64MiB",
                    None::<String>,
                );
                return None;
            }
            opts.recv_buffer = Some(n as u32);
        }
        if let Some(r) = &t.read_rate {
            let Some(per) = r
                .trim()
                .strip_suffix("/s")
                .and_then(parse_size)
                .filter(|n| *n > 0)
            else {
                self.err(
                    span,
                    &format!("{key}.read_rate"),
                    format!("{r:?} is not a rate"),
                    Some("write a size per second, e.g. \"256KiB/s\"".into()),
                );
                return None;
            };
            opts.read_rate = Some(per);
        }
        Some(opts)
    }

    /// `send = { pieces, delay }` or `send = { file, length_prefix, piece_size, delay }`;
    /// None for the plain forms.
    pub(super) fn send_extra(
        &mut self,
        p: &Spanned<RawPayload>,
        key: &str,
        conn: &ConnName,
    ) -> Option<Option<Action>> {
        let RawPayload::Table(t) = p.get_ref() else {
            return None;
        };
        if t.pieces.is_none() && t.file.is_none() {
            if t.delay.is_some() || t.length_prefix.is_some() || t.piece_size.is_some() {
                self.err(
                    p.span(),
                    key,
                    "`delay`, `length_prefix` and `piece_size` go with `pieces` or `file`",
                    None::<String>,
                );
                return Some(None);
            }
            return None;
        }
        let span = p.span();
        if t.text.is_some()
            || t.hex.is_some()
            || t.repeat.is_some()
            || (t.pieces.is_some() && t.file.is_some())
        {
            self.err(
                span,
                key,
                "give one of `text`, `hex`, `pieces`, `file`",
                None::<String>,
            );
            return Some(None);
        }
        let delay = match &t.delay {
            Some(d) => match self.dur(d, &span, &format!("{key}.delay")) {
                Some(d) => d,
                None => return Some(None),
            },
            None => Duration::ZERO,
        };
        if let Some(pieces) = &t.pieces {
            if pieces.len() < 2 || pieces.iter().any(String::is_empty) {
                self.err(
                    span,
                    &format!("{key}.pieces"),
                    "`pieces` needs at least two non-empty pieces",
                    Some("e.g. pieces = [\"QU\", \"IT\\n\"]".into()),
                );
                return Some(None);
            }
            if t.length_prefix.is_some() || t.piece_size.is_some() {
                self.err(
                    span,
                    key,
                    "`length_prefix` and `piece_size` go with `file`",
                    None::<String>,
                );
                return Some(None);
            }
            return Some(Some(Action::SendPieces {
                conn: conn.clone(),
                pieces: pieces.iter().map(|p| p.as_bytes().to_vec()).collect(),
                delay,
            }));
        }
        let file = t.file.clone().unwrap_or_default();
        self.v
            .file_refs
            .push((file.clone(), span.clone(), format!("{key}.file")));
        let length_prefix = match &t.length_prefix {
            None => None,
            Some(l) => match LengthPrefix::ALL.iter().find(|(n, _)| n == l) {
                Some((_, p)) => Some(*p),
                None => {
                    self.err(span, &format!("{key}.length_prefix"), format!("unknown length prefix {l:?}"), Some("allowed: \"u32be\" (struct.pack('!I')), \"u16be\", \"u64be\", \"u32le\"".into()));
                    return Some(None);
                }
            },
        };
        let piece_size = match &t.piece_size {
            None => None,
            Some(s) => match self.sz(s, &span, &format!("{key}.piece_size")) {
                Some(n) if n > 0 => Some(n as usize),
                _ => return Some(None),
            },
        };
        Some(Some(Action::SendFile {
            conn: conn.clone(),
            file,
            length_prefix,
            piece_size,
            delay,
        }))
    }

    pub(super) fn window(&mut self, w: &Spanned<RawWindow>, key: &str) -> Option<Duration> {
        let s = match w.get_ref() {
            RawWindow::Window(s) => s.clone(),
            RawWindow::Table(t) => t.window.clone(),
        };
        self.dur(&s, &w.span(), key)
    }

    fn sha(&mut self, s: &str, span: &Range<usize>, key: &str) -> Option<[u8; 32]> {
        let b = parse_hex(s).and_then(|b| <[u8; 32]>::try_from(b).ok());
        if b.is_none() {
            self.err(
                span.clone(),
                key,
                format!("{s:?} is not a SHA-256"),
                Some("64 hex digits, as sha256sum prints".into()),
            );
        }
        b
    }

    /// `expect_waiting = true`.
    pub(super) fn expect_waiting(&mut self, b: &Spanned<bool>, key: &str) -> Option<Action> {
        if !*b.get_ref() || self.connections == 0 {
            self.err(
                b.span(),
                key,
                "expect_waiting = true checks the server after connections were made",
                Some("write { expect_waiting = true } after the connect steps".into()),
            );
            return None;
        }
        Some(Action::ExpectWaiting)
    }

    /// `expect_bytes = { skip, count, at_least, sha256, equals_file }` on the step's
    /// connection (`conn`, its modifier).
    pub(super) fn expect_bytes(
        &mut self,
        raw: &Spanned<RawBytesCheck>,
        conn: &Option<Spanned<String>>,
        span: &Range<usize>,
        key: &str,
    ) -> Option<Action> {
        let r = raw.get_ref();
        let rs = raw.span();
        let conn = self.conn(span, key, conn, "waits for bytes", false)?;
        let sha256 = match &r.sha256 {
            Some(h) => Some(self.sha(h, &rs, &format!("{key}.sha256"))?),
            None => None,
        };
        if r.count.is_none() && r.at_least.is_none() && r.equals_file.is_none() {
            self.err(
                rs,
                key,
                "expect_bytes needs `count`, `at_least` or `equals_file`: where the bytes end",
                Some("e.g. { expect_bytes = { count = 1048576, sha256 = \"…\" } }".into()),
            );
            return None;
        }
        if r.count.is_some() && r.at_least.is_some() {
            self.err(
                rs,
                key,
                "give `count` or `at_least`, not both",
                None::<String>,
            );
            return None;
        }
        if r.at_least.is_some() && (sha256.is_some() || r.equals_file.is_some()) {
            self.err(rs, key, "`at_least` counts bytes only: a hash or file needs an exact `count` (or `equals_file` alone)", None::<String>);
            return None;
        }
        if let Some(f) = &r.equals_file {
            self.v
                .file_refs
                .push((f.clone(), rs.clone(), format!("{key}.equals_file")));
        }
        Some(Action::ExpectBytes {
            conn,
            check: ByteCheck {
                skip: r.skip.unwrap_or(0),
                count: r.count,
                at_least: r.at_least,
                sha256,
                equals_file: r.equals_file.clone(),
            },
        })
    }

    /// `expect_file = { path, text | hex | sha256 | equals_file }`.
    pub(super) fn expect_file(&mut self, raw: &Spanned<RawFileCheck>, key: &str) -> Option<Action> {
        let r = raw.get_ref();
        let rs = raw.span();
        let rel = std::path::Path::new(&r.path);
        if r.path.is_empty()
            || !rel
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            self.err(
                rs,
                &format!("{key}.path"),
                format!("{:?} is not a path inside the program's folder", r.path),
                Some("write a relative path without \"..\", e.g. \"received.bin\"".into()),
            );
            return None;
        }
        let given = [
            r.text.is_some(),
            r.hex.is_some(),
            r.sha256.is_some(),
            r.equals_file.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            self.err(
                rs,
                key,
                "give exactly one of `text`, `hex`, `sha256`, `equals_file`",
                None::<String>,
            );
            return None;
        }
        let check = if let Some(t) = &r.text {
            FileCheck::Bytes(t.as_bytes().to_vec())
        } else if let Some(h) = &r.hex {
            match parse_hex(h) {
                Some(b) => FileCheck::Bytes(b),
                None => {
                    self.err(
                        rs,
                        &format!("{key}.hex"),
                        format!("{h:?} is not hex bytes"),
                        None::<String>,
                    );
                    return None;
                }
            }
        } else if let Some(h) = &r.sha256 {
            FileCheck::Sha256(self.sha(h, &rs, &format!("{key}.sha256"))?)
        } else {
            let f = r.equals_file.clone().unwrap_or_default();
            self.v
                .file_refs
                .push((f.clone(), rs.clone(), format!("{key}.equals_file")));
            FileCheck::EqualsFile(f)
        };
        Some(Action::ExpectFile {
            path: r.path.clone(),
            check,
        })
    }
}

impl Validator<'_> {
    /// Every file a step names must be one of the case's files.
    pub(super) fn check_file_refs(&mut self, files: &[DataFile]) {
        for (name, span, key) in std::mem::take(&mut self.file_refs) {
            if !files.iter().any(|f| f.path == name) {
                let known: Vec<String> = files.iter().map(|f| format!("{:?}", f.path)).collect();
                let known = if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                };
                self.err(
                    Some(span),
                    &key,
                    format!("{name:?} is not a file of this case"),
                    Some(format!(
                        "add it to [files] (or the case's `files`); this case's files: {known}"
                    )),
                );
            }
        }
    }
}
