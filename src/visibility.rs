//! What a student may see: the filtering pass shared by the Gradescope report and
//! `sockgrade run --student`, so that self-checking and grading show the same thing.
//!
//! Two things are filtered, both taken from the spec and carried by every
//! [`CaseResult`]:
//! - *which cases* a student sees ([`Visibility`], Gradescope's words), depending on the
//!   [`Moment`]: before the due date, after it, or once grades are published;
//! - *what of a failure* a student sees ([`Show`]): e.g. what was sent but not the
//!   expected reply, so a hidden check cannot be copied from the report.
//!
//! Gradescope hides the total score from students while any case is hidden; the
//! student's view does the same (see [`SubmissionResult::withheld`]).

use crate::outcome::{CaseResult, SubmissionResult};
use crate::spec::{Detail, Visibility};

/// When the student looks (Gradescope shows `after_due_date` and `after_published`
/// cases only from then on). Later moments include the earlier ones: grades are
/// published after the due date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, clap::ValueEnum)]
pub enum Moment {
    /// While the assignment is open: only `visible` cases.
    #[default]
    Open,
    /// After the due date: `visible` and `after_due_date` cases.
    AfterDueDate,
    /// Once grades are published: everything but `hidden` cases.
    Published,
}

/// Whether a student sees a case of this visibility at this moment.
pub fn shown(visibility: Visibility, at: Moment) -> bool {
    match visibility {
        Visibility::Visible => true,
        Visibility::Hidden => false,
        Visibility::AfterDueDate => at >= Moment::AfterDueDate,
        Visibility::AfterPublished => at >= Moment::Published,
    }
}

/// The case as a student may see it: every part of the failure report that the
/// spec's `show` does not list is removed, and the one-line reason is rebuilt from what
/// remains (the full reason quotes the expected and the received data).
pub fn filter_case(c: &CaseResult) -> CaseResult {
    let show = &c.show;
    let mut out = c.clone();
    // A reason that is not the failed step's own words: a limit hit or a start-up error.
    let own_reason = c.reason.as_ref().filter(|r| {
        c.failure
            .as_ref()
            .is_none_or(|f| !r.starts_with(&format!("{}:", f.action)))
    });
    if let Some(f) = out.failure.as_mut() {
        if !show.has(Detail::Step) {
            f.step = 0;
            f.line = 0;
            f.action.clear();
        }
        if !show.has(Detail::Sent) {
            f.sent = None;
        }
        if !show.has(Detail::Expected) {
            f.expected.clear();
        }
        if !show.has(Detail::Got) {
            f.got.clear();
        }
    }
    // Why a case could not run (no file found, a sandbox problem) is never a secret of
    // the check, and the student cannot fix anything without it: always shown.
    let reason_shown = show.has(Detail::Reason) || c.status == crate::outcome::Status::Error;
    out.reason = match (own_reason, &out.failure) {
        (Some(r), _) if reason_shown => Some(r.clone()),
        (_, Some(f)) => {
            let mut parts = Vec::new();
            if !f.expected.is_empty() {
                parts.push(format!("expected {}", f.expected));
            }
            if !f.got.is_empty() {
                parts.push(format!("got {}", f.got));
            }
            match (f.action.is_empty(), parts.is_empty()) {
                (true, true) => None,
                (true, false) => Some(parts.join(", ")),
                (false, true) => Some(f.action.clone()),
                (false, false) => Some(format!("{}: {}", f.action, parts.join(", "))),
            }
        }
        (_, None) => None,
    };
    if !show.has(Detail::Exit) {
        out.exit = None;
    }
    if !show.has(Detail::Stderr) {
        out.stderr_tail.clear();
    }
    if !show.has(Detail::Stdout) {
        out.stdout_tail.clear();
    }
    if !show.has(Detail::Hint) {
        out.hint = None;
    }
    if !show.has(Detail::Transcript) {
        out.transcript.clear();
    }
    out
}

/// The whole result as a student sees it at `at`: cases they may not see yet are left
/// out (and counted in `withheld`), the others filtered by [`filter_case`], and the
/// totals recomputed over what is shown.
pub fn student_view(r: &SubmissionResult, at: Moment) -> SubmissionResult {
    let (shown_cases, withheld): (Vec<&CaseResult>, Vec<&CaseResult>) =
        r.cases.iter().partition(|c| shown(c.visibility, at));
    let cases = shown_cases.into_iter().map(filter_case).collect();
    let mut view = SubmissionResult::new(
        r.submission.clone(),
        r.spec.clone(),
        r.isolation,
        r.notes.clone(),
        cases,
    );
    view.visibility = r.visibility;
    view.duration_ms = r.duration_ms;
    // A build's output is the compiler's about the student's own code: always shown.
    view.builds = r.builds.clone();
    view.withheld = Some(withheld.len());
    view
}
