//! `--shard K/N`: a stable share of the class for one of N runners.
//!
//! A class that outgrows one machine is split, not distributed: N runners of an existing
//! engine (a CI matrix, a Kubernetes Indexed Job) each grade the students whose id hashes
//! to their shard, and `sockgrade merge` joins the outputs. The hash must give the same
//! answer on every machine and every run, so it is FNV-1a over the id's UTF-8 bytes, not
//! std's randomly seeded hasher.

use std::fmt;
use std::str::FromStr;

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("--shard wants K/N (e.g. 1/4), got {0:?}")]
    Syntax(String),
    #[error("--shard {index}/{count}: K must be between 1 and N (shards are numbered from 1; a Kubernetes completion index K0 is shard K0+1)")]
    OutOfRange { index: u32, count: u32 },
}

impl FromStr for Shard {
    type Err = ShardError;
    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| ShardError::Syntax(s.to_string()))?;
        let parse = |x: &str| {
            x.trim()
                .parse::<u32>()
                .map_err(|_| ShardError::Syntax(s.to_string()))
        };
        let (index, count) = (parse(k)?, parse(n)?);
        if count == 0 || index == 0 || index > count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Whether this shard grades `student`.
    pub fn contains(&self, student: &str) -> bool {
        fnv1a64(student.as_bytes()) % u64::from(self.count) == u64::from(self.index - 1)
    }
}

/// 64-bit FNV-1a: tiny, stable across platforms and releases, well spread on short ids.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        assert!(matches!(
            "0/3".parse::<Shard>(),
            Err(ShardError::OutOfRange { .. })
        ));
        assert!(matches!(
            "4/3".parse::<Shard>(),
            Err(ShardError::OutOfRange { .. })
        ));
        assert!(matches!("3".parse::<Shard>(), Err(ShardError::Syntax(_))));
    }

    #[test]
    fn hash_is_the_published_fnv1a() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn every_student_is_in_exactly_one_shard() {
        for id in ["alice", "bob", "李雷", "x"] {
            let n = (1..=5)
                .filter(|k| {
                    Shard {
                        index: *k,
                        count: 5,
                    }
                    .contains(id)
                })
                .count();
            assert_eq!(n, 1, "{id}");
        }
    }
}
