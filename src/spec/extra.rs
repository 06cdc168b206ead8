//! The spec's data files, stream checks and per-student values (issue 13): the domain
//! types of `[files]`, `expect_bytes`, `expect_file`, `connect`/`accept` options and
//! `[random]`, kept apart from the core step types of [`super`].

use super::Action;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// A file written into the program's folder before it starts.
#[derive(Debug, Clone)]
pub struct DataFile {
    /// Relative to the program's folder ("www/index.html").
    pub path: String,
    pub source: FileSource,
}

#[derive(Debug, Clone)]
pub enum FileSource {
    /// Given in the spec (`text`, `hex`) or read from a file beside it (`from`).
    Bytes(Arc<Vec<u8>>),
    /// `random_bytes`: `size` bytes drawn from `seed`, which [`super::Spec::for_student`]
    /// sets per student (0 until then).
    Random { size: u64, seed: u64 },
}

impl DataFile {
    /// The file's content.
    pub fn bytes(&self) -> Arc<Vec<u8>> {
        match &self.source {
            FileSource::Bytes(b) => b.clone(),
            FileSource::Random { size, seed } => Arc::new(random_bytes(*seed, *size as usize)),
        }
    }
}

/// A small, fast, seeded generator (splitmix64): the same seed gives the same bytes on
/// every machine, which is all reproducible grading needs (nothing here is secret).
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

pub(crate) fn random_bytes(seed: u64, size: usize) -> Vec<u8> {
    let mut rng = SplitMix(seed);
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(size);
    out
}

/// A seed from text (the spec's name, the student's, a value's name).
pub(crate) fn seed_of(parts: &[&str]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    u64::from_le_bytes(h.finalize()[..8].try_into().expect("8 bytes"))
}

/// The length a `send = { file, length_prefix }` puts before the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthPrefix {
    U16Be,
    U32Be,
    U64Be,
    U32Le,
}

impl LengthPrefix {
    pub const ALL: [(&'static str, LengthPrefix); 4] = [
        ("u16be", LengthPrefix::U16Be),
        ("u32be", LengthPrefix::U32Be),
        ("u64be", LengthPrefix::U64Be),
        ("u32le", LengthPrefix::U32Le),
    ];

    pub fn encode(self, n: u64) -> Vec<u8> {
        match self {
            LengthPrefix::U16Be => (n as u16).to_be_bytes().to_vec(),
            LengthPrefix::U32Be => (n as u32).to_be_bytes().to_vec(),
            LengthPrefix::U64Be => n.to_be_bytes().to_vec(),
            LengthPrefix::U32Le => (n as u32).to_le_bytes().to_vec(),
        }
    }
}

/// How the reference side reads a connection (set before connect / listen).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnOpts {
    /// SO_RCVBUF of the reference socket, bytes.
    pub recv_buffer: Option<u32>,
    /// Bytes per second the reference reads at most.
    pub read_rate: Option<u64>,
}

/// `expect_bytes`: what the bytes that arrive must be, checked as they stream by.
#[derive(Debug, Clone, Default)]
pub struct ByteCheck {
    /// Leading bytes left out of the count and the hash.
    pub skip: u64,
    /// Exactly this many bytes (after `skip`): the step ends when they have arrived.
    pub count: Option<u64>,
    /// At least this many bytes.
    pub at_least: Option<u64>,
    /// Their SHA-256.
    pub sha256: Option<[u8; 32]>,
    /// Equal to a file of the case's `files` (its size is then the count).
    pub equals_file: Option<String>,
}

/// `expect_file`: what a file the program wrote must hold.
#[derive(Debug, Clone)]
pub enum FileCheck {
    /// Exactly these bytes (`text` or `hex`).
    Bytes(Vec<u8>),
    Sha256([u8; 32]),
    /// Equal to a file of the case's `files`.
    EqualsFile(String),
}

/// A `[random]` value: `length` characters drawn from `letters`, after `prefix`.
#[derive(Debug, Clone)]
pub struct RandomVar {
    pub name: String,
    pub letters: Vec<char>,
    pub length: usize,
    pub prefix: String,
}

impl RandomVar {
    pub fn draw(&self, seed: u64) -> String {
        let mut rng = SplitMix(seed);
        let mut s = self.prefix.clone();
        for _ in 0..self.length {
            s.push(self.letters[(rng.next() % self.letters.len() as u64) as usize]);
        }
        s
    }
}

impl super::Program {
    /// The program as `case` runs it: its `args` after the command, its `env` over
    /// the program's.
    pub fn for_case(&self, case: &super::Case) -> super::Program {
        let mut p = self.clone();
        p.command.extend(case.args.iter().cloned());
        for (k, v) in &case.env {
            p.env.insert(k.clone(), v.clone());
        }
        p
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn window(d: &Duration) -> String {
    humantime::format_duration(*d).to_string()
}

/// [`super::Step::describe`] for the steps of this module.
pub(super) fn describe(action: &Action, within: &str, who: &str) -> String {
    match action {
        Action::SendPieces {
            conn,
            pieces,
            delay,
        } => {
            let parts: Vec<String> = pieces.iter().map(|p| crate::text::quote(p)).collect();
            format!(
                "send {} on {conn:?} as {} writes {} apart",
                parts.join(" + "),
                pieces.len(),
                window(delay)
            )
        }
        Action::SendFile {
            conn,
            file,
            length_prefix,
            piece_size,
            delay,
        } => {
            let mut s = format!("send the file {file:?} on {conn:?}");
            if let Some(p) = length_prefix {
                let name = LengthPrefix::ALL
                    .iter()
                    .find(|(_, l)| l == p)
                    .map(|(n, _)| *n)
                    .unwrap_or("?");
                s = format!("send the length of {file:?} ({name}), then the file, on {conn:?}");
            }
            if let Some(n) = piece_size {
                s.push_str(&format!(" in pieces of {n} bytes {} apart", window(delay)));
            }
            s
        }
        Action::ExpectNothing { conn, window: w } => format!(
            "check that nothing arrives on {conn:?} for {} (and it stays open)",
            window(w)
        ),
        Action::ExpectOpen { conn, window: w } => format!(
            "check that the {who} keeps {conn:?} open for {}",
            window(w)
        ),
        Action::Pause { window: w } => format!("wait {} (do nothing)", window(w)),
        Action::ExpectBytes { conn, check } => {
            let mut what = match (check.count, check.at_least, &check.equals_file) {
                (Some(n), _, _) => format!("{n} bytes"),
                (None, Some(n), _) => format!("at least {n} bytes"),
                (None, None, Some(f)) => format!("the bytes of {f:?}"),
                _ => "bytes".into(),
            };
            if check.skip > 0 {
                what.push_str(&format!(" (after the first {})", check.skip));
            }
            if let (Some(f), true) = (&check.equals_file, check.count.is_some()) {
                what.push_str(&format!(" equal to {f:?}"));
            }
            if let Some(h) = &check.sha256 {
                what.push_str(&format!(" with SHA-256 {}", hex(h)));
            }
            format!("wait up to {within} on {conn:?} for {what} (counted as they arrive, not kept)")
        }
        Action::ExpectFile { path, .. } => {
            format!("check the file {path:?} the {who} wrote")
        }
        Action::ExpectWaiting => format!(
            "check within {within} that the {who} accept()ed every connection and waits for the next"
        ),
        _ => String::new(),
    }
}
