//! What changed between two gradings of the same submission (`sockgrade watch`): the
//! cases that now pass, those that no longer do, and the score's move. Pure, like every
//! report: two results in, text out.

use crate::outcome::{CaseResult, Status, SubmissionResult};
use owo_colors::OwoColorize;
use std::fmt::Write;

/// The lines that say what changed from `before` to `after` (cases matched by name and
/// target), ending with the score and its delta. `changed` names the files whose change
/// started this grading.
pub fn render(before: &SubmissionResult, after: &SubmissionResult, changed: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", "Since the last run".bold());
    if !changed.is_empty() {
        let _ = writeln!(out, "  changed   {}", changed.join(", "));
    }
    let find = |c: &CaseResult| {
        before
            .cases
            .iter()
            .find(|b| b.name == c.name && b.target == c.target)
    };
    let mut moved = 0;
    for c in &after.cases {
        let Some(b) = find(c) else {
            let _ = writeln!(out, "  {}       {} ({})", "new".bold(), c.name, c.target);
            continue;
        };
        let line = match (b.status == Status::Passed, c.status == Status::Passed) {
            (false, true) => format!(
                "  {} {} ({})",
                "now passes".green().bold(),
                c.name,
                c.target
            ),
            (true, false) => format!(
                "  {} {} ({}){}",
                "now fails ".red().bold(),
                c.name,
                c.target,
                c.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            _ => continue,
        };
        moved += 1;
        let _ = writeln!(out, "{line}");
    }
    if moved == 0 {
        let _ = writeln!(out, "  no case changed verdict");
    }
    let delta = after.score as i64 - before.score as i64;
    let delta = match delta {
        0 => "±0".to_string(),
        d if d > 0 => format!("+{d}").green().bold().to_string(),
        d => d.red().bold().to_string(),
    };
    let _ = writeln!(
        out,
        "  score     {}/{} → {}/{} ({delta})",
        before.score, before.max_score, after.score, after.max_score
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Show, Target, Visibility};

    fn case(name: &str, status: Status, score: u32) -> CaseResult {
        CaseResult {
            name: name.into(),
            target: Target::Server,
            status,
            score,
            max_score: 2,
            informational: false,
            reason: (status != Status::Passed).then(|| "the connection was reset".into()),
            failure: None,
            hint: None,
            exit: None,
            stderr_tail: vec![],
            stdout_tail: vec![],
            stdout_bytes: 0,
            stderr_bytes: 0,
            duration_ms: 0,
            visibility: Visibility::Visible,
            show: Show::default(),
            shared_process: false,
            not_run: None,
            transcript: vec![],
        }
    }

    fn result(cases: Vec<CaseResult>) -> SubmissionResult {
        SubmissionResult::new(
            "s".into(),
            "spec".into(),
            crate::outcome::Isolation::Full,
            vec![],
            cases,
        )
    }

    #[test]
    fn names_fixed_and_broken_cases_and_the_score_delta() {
        let before = result(vec![
            case("a", Status::Failed, 0),
            case("b", Status::Passed, 2),
            case("c", Status::Passed, 2),
        ]);
        let after = result(vec![
            case("a", Status::Passed, 2),
            case("b", Status::Failed, 0),
            case("c", Status::Passed, 2),
        ]);
        let text = crate::report::plain(&render(&before, &after, &["tcp_server.py".into()]));
        assert_eq!(
            text,
            "Since the last run\n  changed   tcp_server.py\n  now passes a (server)\n  now fails  b (server): the connection was reset\n  score     4/6 → 4/6 (±0)\n"
        );
        let after = result(vec![
            case("a", Status::Passed, 2),
            case("b", Status::Passed, 2),
            case("c", Status::Passed, 2),
        ]);
        let text = crate::report::plain(&render(&before, &after, &[]));
        assert!(
            text.ends_with("  now passes a (server)\n  score     4/6 → 6/6 (+2)\n"),
            "{text}"
        );
    }
}
