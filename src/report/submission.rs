//! The HTML report of one submission (`run --format html`, and one page per student next
//! to a class's `report.html`): each case with its verdict, what went wrong (the text
//! report's detail) and its sequence diagram ([`super::sequence`]), inline SVG.
//!
//! Self-contained and safe like the class report ([`super::html`]): every piece of text
//! escaped, no script at all, and a Content-Security-Policy that lets the page load and
//! run nothing, so a mistake in escaping could neither run code nor send data anywhere.

use super::html::{esc, STYLE};
use super::{plain, sequence, text};
use crate::outcome::{Status, SubmissionResult};
use std::fmt::Write;

/// The page's policy: no script, no fetch; inline styles and SVG only.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

/// The page of a student who could not be graded (no program, a broken archive).
pub fn not_graded(source: &str, reason: &str, back: Option<&str>) -> String {
    let mut s = head(source, back);
    let _ = writeln!(
        s,
        "<h1>{}</h1><p class=\"error\">not graded: {}</p></body></html>",
        esc(source),
        esc(&plain(reason))
    );
    s
}

/// The page's head and, when there is a class report, the link back to it.
fn head(title: &str, back: Option<&str>) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>sockgrade · {}</title><style>{STYLE}{}</style></head><body>\n",
        esc(title),
        sequence::STYLE
    );
    if let Some(back) = back {
        let _ = writeln!(
            s,
            "<p class=\"note\"><a href=\"{}\">← class report</a></p>",
            esc(back)
        );
    }
    s
}

/// One submission's report as a page. `back` links to the class report, if any.
pub fn render(r: &SubmissionResult, back: Option<&str>) -> String {
    let mut s = head(&r.submission, back);
    let score = match r.withheld {
        Some(n) if n > 0 => format!("hidden ({n} cases not shown yet)"),
        _ => format!("{}/{}", r.score, r.max_score),
    };
    let _ = writeln!(
        s,
        "<h1>{}</h1><p class=\"sub\">{} · isolation: {}</p>\
         <div class=\"cards\"><div class=\"card\"><b class=\"{}\">{score}</b><span>score</span></div>\
         <div class=\"card\"><b>{}</b><span>passed</span></div><div class=\"card\"><b>{}</b><span>failed</span></div>\
         <div class=\"card\"><b>{}</b><span>could not run</span></div></div>",
        esc(&r.submission),
        esc(&r.spec),
        esc(r.isolation.as_str()),
        r.status(),
        r.passed,
        r.failed,
        r.errors
    );
    for note in &r.notes {
        let _ = writeln!(s, "<p class=\"note\">note: {}</p>", esc(&plain(note)));
    }
    s.push_str("<h2>Cases</h2>\n");
    for (i, c) in r.cases.iter().enumerate() {
        let (mark, class) = match c.status {
            Status::Passed => ("✓", "passed"),
            Status::Failed => ("✗", "failed"),
            Status::Error => ("!", "error"),
        };
        let points = if c.informational {
            "informational".to_string()
        } else {
            format!("{}/{}", c.score, c.max_score)
        };
        let reason = c
            .reason
            .as_deref()
            .filter(|_| c.status != Status::Passed)
            .map(|r| format!(" · {}", esc(&plain(r))))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "<details class=\"case\" id=\"case-{}\"{}><summary><span class=\"mark {class}\">{mark}</span> {} <span class=\"tag\">{}</span> <span class=\"note\">{points}{reason}</span></summary>",
            i + 1,
            if c.status == Status::Passed { "" } else { " open" },
            esc(&c.name),
            esc(&c.target.to_string()),
        );
        s.push_str(&sequence::svg(c, i));
        let detail = plain(&text::case_detail(c, true, true));
        let _ = writeln!(s, "<pre>{}</pre></details>", esc(detail.trim_end()));
    }
    s.push_str("<footer>sockgrade · the diagram shows what the grader saw on each connection: the grader's side and your program's, with times since the case started</footer>\n</body></html>\n");
    s
}
