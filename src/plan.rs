//! Which cases run, with what: the spec narrowed by the command line, resolved into a
//! list a reader can check before anything runs (`sockgrade check` prints it).

use crate::spec::{Spec, Target};
use std::fmt::Write;

/// The cases to run, by index into `spec.cases`.
#[derive(Debug, Clone)]
pub struct Plan {
    pub cases: Vec<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("no case is named {name:?}; the spec's cases are: {known}")]
    UnknownCase { name: String, known: String },
    #[error("the selection leaves no case to run")]
    Empty,
}

impl Plan {
    /// Every case, or those named (exactly), or those of one target.
    pub fn new(spec: &Spec, names: &[String], target: Option<Target>) -> Result<Plan, PlanError> {
        for name in names {
            if !spec.cases.iter().any(|c| &c.name == name) {
                let known: Vec<String> =
                    spec.cases.iter().map(|c| format!("{:?}", c.name)).collect();
                return Err(PlanError::UnknownCase {
                    name: name.clone(),
                    known: known.join(", "),
                });
            }
        }
        let cases: Vec<usize> = spec
            .cases
            .iter()
            .enumerate()
            .filter(|(_, c)| names.is_empty() || names.contains(&c.name))
            .filter(|(_, c)| target.is_none_or(|t| c.target == t))
            .map(|(i, _)| i)
            .collect();
        if cases.is_empty() {
            return Err(PlanError::Empty);
        }
        Ok(Plan { cases })
    }

    /// What would run, for `sockgrade check`.
    pub fn describe(&self, spec: &Spec) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "assignment: {}{}",
            spec.name,
            spec.title
                .as_ref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default()
        );
        for target in [Target::Server, Target::Client] {
            if let Some(p) = spec.program(target) {
                let _ = writeln!(
                    out,
                    "{target}: {}   (file: first of {})",
                    p.command.join(" "),
                    p.files.join(", ")
                );
                if let Some(fb) = &p.fallback_command {
                    let _ = writeln!(
                        out,
                        "  when the file does not compile with it: {}",
                        fb.join(" ")
                    );
                }
                if target == Target::Client {
                    let _ = writeln!(out, "  reference server listens on {}", spec.connects_to);
                }
                if let (Target::Server, Some(l)) = (target, p.listen) {
                    let _ = writeln!(out, "  the student's server listens on {l}");
                }
            }
        }
        let l = &spec.limits;
        let _ = writeln!(
            out,
            "limits: memory {} MiB, {} processes, CPU {}, {} open files, files up to {} MiB, output kept {} KiB per stream",
            l.memory_bytes >> 20,
            l.processes,
            humantime::format_duration(l.cpu_time),
            l.open_files,
            l.file_size_bytes >> 20,
            l.output_bytes >> 10
        );
        let graded: u32 = self
            .cases
            .iter()
            .map(|&i| &spec.cases[i])
            .filter(|c| !c.informational)
            .map(|c| c.points)
            .sum();
        let _ = writeln!(out, "\n{} cases, {} points:", self.cases.len(), graded);
        for &i in &self.cases {
            let c = &spec.cases[i];
            let pts = if c.informational {
                "info".to_string()
            } else {
                format!("{} pt", c.points)
            };
            let _ = writeln!(
                out,
                "  [{pts:>5}] {} ({}, timeout {})",
                c.name,
                c.target,
                humantime::format_duration(c.timeout)
            );
            for (n, s) in c.steps.iter().enumerate() {
                let _ = writeln!(out, "          {}. {}", n + 1, s.describe(c.target));
            }
        }
        out
    }
}
