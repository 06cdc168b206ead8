//! `sockgrade check SPEC --against DIR`: tests a spec before a class uses it.
//!
//! DIR holds reference solutions under `pass/<name>/`, which must score full marks, and
//! buggy ones under `fail/<name>/`, which must lose points. A buggy solution may also
//! say which cases it must fail, in `fail/<name>/sockgrade-expect.txt` (a case name a
//! line, `#` comments): then it must fail exactly those graded cases, no more, no less,
//! which catches a spec whose checks are too loose *or* too strict. Every submission
//! is graded by the ordinary runner, as `sockgrade run` would.

use crate::outcome::{Status, SubmissionResult};
use crate::runner::Grading;
use crate::spec::Spec;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// The file in a `fail/<name>/` folder that lists the cases it must fail.
pub const EXPECT_FILE: &str = "sockgrade-expect.txt";

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{} is not a folder\n  = help: pass a folder with pass/<name>/ and fail/<name>/ submissions", .0.display())]
    NotADir(PathBuf),
    #[error("{} has no submissions under pass/ or fail/\n  = help: put reference solutions in pass/<name>/ and buggy ones in fail/<name>/", .0.display())]
    Empty(PathBuf),
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {problem}\n  = help: {help}", path.display())]
    Expect {
        path: PathBuf,
        line: usize,
        problem: String,
        help: String,
    },
    #[error("{}: {name:?} is not a case of the spec\n  = help: the spec's cases are: {known}", path.display())]
    UnknownCase {
        path: PathBuf,
        name: String,
        known: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Full marks.
    Pass,
    /// Loses points (and fails exactly `cases`, when given).
    Fail,
}

#[derive(Debug, Clone)]
pub struct Reference {
    pub name: String,
    pub dir: PathBuf,
    pub expect: Expect,
    /// For `fail/` submissions with a sockgrade-expect.txt: the cases that must fail.
    pub must_fail: Option<BTreeSet<String>>,
}

/// One line of the table.
#[derive(Debug)]
pub struct Row {
    pub reference: Reference,
    pub result: SubmissionResult,
    /// None when the expectation holds, else why not.
    pub wrong: Option<String>,
}

/// Finds `pass/*/` and `fail/*/` under `dir`, sorted by name.
pub fn discover(dir: &Path, spec: &Spec) -> Result<Vec<Reference>, CheckError> {
    if !dir.is_dir() {
        return Err(CheckError::NotADir(dir.to_path_buf()));
    }
    let mut refs = Vec::new();
    for (sub, expect) in [("pass", Expect::Pass), ("fail", Expect::Fail)] {
        let d = dir.join(sub);
        if !d.is_dir() {
            continue;
        }
        let entries = std::fs::read_dir(&d).map_err(|source| CheckError::Io {
            path: d.clone(),
            source,
        })?;
        let mut found = Vec::new();
        for e in entries {
            let e = e.map_err(|source| CheckError::Io {
                path: d.clone(),
                source,
            })?;
            if e.path().is_dir() {
                found.push(e.path());
            }
        }
        found.sort();
        for path in found {
            let expect_file = path.join(EXPECT_FILE);
            let must_fail = if expect == Expect::Fail && expect_file.is_file() {
                let text =
                    std::fs::read_to_string(&expect_file).map_err(|source| CheckError::Io {
                        path: expect_file.clone(),
                        source,
                    })?;
                let names: BTreeSet<String> = text
                    .lines()
                    .map(|l| l.split('#').next().unwrap_or("").trim())
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect();
                for n in &names {
                    if !spec.cases.iter().any(|c| &c.name == n) {
                        let known: Vec<String> =
                            spec.cases.iter().map(|c| format!("{:?}", c.name)).collect();
                        return Err(CheckError::UnknownCase {
                            path: expect_file,
                            name: n.clone(),
                            known: known.join(", "),
                        });
                    }
                }
                Some(names)
            } else {
                None
            };
            let name = format!(
                "{sub}/{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            refs.push(Reference {
                name,
                dir: path,
                expect,
                must_fail,
            });
        }
    }
    if refs.is_empty() {
        return Err(CheckError::Empty(dir.to_path_buf()));
    }
    Ok(refs)
}

/// The names of case lines (a case name a line, `#` comments), each with its line.
fn case_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty())
}

/// `check --against DIR --expect FILE`: every folder of DIR is a submission, and FILE
/// says what each must do, one section per folder: `[name]`, then the cases it must
/// fail (as in a sockgrade-expect.txt); an empty section must score full marks. A
/// folder without a section, or a section without a folder, is an error.
pub fn discover_expect(dir: &Path, file: &Path, spec: &Spec) -> Result<Vec<Reference>, CheckError> {
    if !dir.is_dir() {
        return Err(CheckError::NotADir(dir.to_path_buf()));
    }
    let text = std::fs::read_to_string(file).map_err(|source| CheckError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let bad = |line: usize, problem: String, help: String| CheckError::Expect {
        path: file.to_path_buf(),
        line,
        problem,
        help,
    };
    let mut sections: Vec<(String, usize, BTreeSet<String>)> = Vec::new();
    for (line, l) in case_lines(&text) {
        if let Some(name) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let name = name.trim().to_string();
            if sections.iter().any(|(n, _, _)| n == &name) {
                return Err(bad(
                    line,
                    format!("a second section [{name}]"),
                    "give each folder one section".into(),
                ));
            }
            sections.push((name, line, BTreeSet::new()));
            continue;
        }
        let Some((_, _, cases)) = sections.last_mut() else {
            return Err(bad(
                line,
                format!("{l:?} comes before any [folder] section"),
                "start with a section naming a folder, e.g. [good]".into(),
            ));
        };
        if !spec.cases.iter().any(|c| c.name == l) {
            let known: Vec<String> = spec.cases.iter().map(|c| format!("{:?}", c.name)).collect();
            return Err(bad(
                line,
                format!("{l:?} is not a case of the spec"),
                format!("the spec's cases are: {}", known.join(", ")),
            ));
        }
        cases.insert(l.to_string());
    }
    let mut folders: Vec<String> = std::fs::read_dir(dir)
        .map_err(|source| CheckError::Io {
            path: dir.to_path_buf(),
            source,
        })?
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    folders.sort();
    for f in &folders {
        if !sections.iter().any(|(n, _, _)| n == f) {
            return Err(bad(
                1,
                format!("the folder {f:?} of {} has no section", dir.display()),
                format!("add [{f}] with the cases it must fail (nothing under it: it must pass)"),
            ));
        }
    }
    let mut refs = Vec::new();
    for (name, line, cases) in sections {
        if !folders.contains(&name) {
            return Err(bad(
                line,
                format!("[{name}] names no folder of {}", dir.display()),
                format!("the folders are: {}", folders.join(", ")),
            ));
        }
        let (expect, must_fail) = match cases.is_empty() {
            true => (Expect::Pass, None),
            false => (Expect::Fail, Some(cases)),
        };
        refs.push(Reference {
            dir: dir.join(&name),
            name,
            expect,
            must_fail,
        });
    }
    if refs.is_empty() {
        return Err(CheckError::Empty(dir.to_path_buf()));
    }
    Ok(refs)
}

/// The cases of a result that did not go as expected, each with its reason: what a
/// spec author needs to see to tell a loose check from a wrong solution.
pub fn surprises(reference: &Reference, result: &SubmissionResult) -> Vec<String> {
    let must = reference.must_fail.clone().unwrap_or_default();
    let mut out = Vec::new();
    for c in result.cases.iter().filter(|c| !c.informational) {
        let failed = c.status != Status::Passed;
        let should_fail = must.contains(&c.name)
            || (reference.expect == Expect::Fail && reference.must_fail.is_none());
        if failed && !should_fail {
            let why = c.reason.clone().unwrap_or_else(|| "no reason given".into());
            out.push(format!("{:?} failed: {why}", c.name));
        } else if !failed && must.contains(&c.name) {
            out.push(format!("{:?} passed, but should fail", c.name));
        }
    }
    out
}

/// Whether a result meets its expectation; None when it does, else why not.
pub fn judge(reference: &Reference, result: &SubmissionResult) -> Option<String> {
    let failed: BTreeSet<String> = result
        .cases
        .iter()
        .filter(|c| !c.informational && c.status != Status::Passed)
        .map(|c| c.name.clone())
        .collect();
    let list = |s: &BTreeSet<String>| {
        s.iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match reference.expect {
        Expect::Pass if !result.all_passed() => Some(format!(
            "should score full marks, but fails {}",
            list(&failed)
        )),
        Expect::Pass => None,
        Expect::Fail => match &reference.must_fail {
            Some(must) if &failed != must => {
                let missing: BTreeSet<String> = must.difference(&failed).cloned().collect();
                let extra: BTreeSet<String> = failed.difference(must).cloned().collect();
                let mut why = Vec::new();
                if !missing.is_empty() {
                    why.push(format!("passes {} (should fail)", list(&missing)));
                }
                if !extra.is_empty() {
                    why.push(format!("also fails {}", list(&extra)));
                }
                Some(why.join("; "))
            }
            Some(_) => None,
            None if result.all_passed() => Some("should lose points, but scores full marks".into()),
            None => None,
        },
    }
}

/// Grades every reference submission, one after the other (each one's cases in
/// parallel), through the runner's one path for a submission, as `run` grades.
pub async fn run(grading: &Grading, refs: Vec<Reference>) -> Vec<Row> {
    let mut rows = Vec::new();
    for reference in refs {
        let result = grading
            .grade(
                reference.dir.clone(),
                reference.dir.display().to_string(),
                Vec::new(),
                None,
                None,
            )
            .await
            .expect("check never closes its slots");
        let wrong = judge(&reference, &result);
        rows.push(Row {
            reference,
            result,
            wrong,
        });
    }
    rows
}

/// The table `sockgrade check --against` prints.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let width = rows
        .iter()
        .map(|r| r.reference.name.chars().count())
        .max()
        .unwrap_or(10)
        .max(10);
    let _ = writeln!(
        out,
        "  {:<width$}  {:<9} {:>7}  verdict",
        "submission", "expected", "score"
    );
    for r in rows {
        let expected = match (r.reference.expect, &r.reference.must_fail) {
            (Expect::Pass, _) => "pass".to_string(),
            (Expect::Fail, None) => "fail".to_string(),
            (Expect::Fail, Some(m)) => format!("fail {}", m.len()),
        };
        let score = format!("{}/{}", r.result.score, r.result.max_score);
        let verdict = match &r.wrong {
            None => "✓ as expected".to_string(),
            Some(why) => format!("✗ {why}"),
        };
        let _ = writeln!(
            out,
            "  {:<width$}  {expected:<9} {score:>7}  {verdict}",
            r.reference.name
        );
        if r.wrong.is_some() {
            for s in surprises(&r.reference, &r.result) {
                let _ = writeln!(out, "  {:<width$}    ↳ {s}", "");
            }
        }
    }
    let wrong = rows.iter().filter(|r| r.wrong.is_some()).count();
    if wrong == 0 {
        let _ = writeln!(
            out,
            "\nevery submission met its expectation: the spec tells these solutions apart."
        );
    } else {
        let _ = writeln!(out, "\n{wrong} of {} submissions did not meet their expectation: the spec (or the reference solution) needs a look.", rows.len());
    }
    out
}
