//! A case as a sequence diagram (inline SVG): the client and the server as two vertical
//! lines, and what went between them as arrows with times, read from the case's
//! transcript: connect, data (with a short escaped preview), half-close and close (FIN or
//! RST, from whichever side did it), signals, and the program's exit; the failing step
//! is marked at the end in red.
//!
//! The transcript already says who did what: `sent`, `shutdown` and `closed` are the
//! grader's (the reference peer), `received` and `peer_closed` the program's. Every
//! piece of text goes through [`esc`], since the data is the student's.

use super::html::esc;
use crate::outcome::{CaseResult, CloseHow, EventKind, Status};
use crate::spec::Target;
use std::fmt::Write;

const WIDTH: u32 = 680;
const CLIENT_X: u32 = 190;
const SERVER_X: u32 = 560;
const ROW: u32 = 30;
const TOP: u32 = 46;
/// Characters of data shown on an arrow (the text report has it whole).
const PREVIEW: usize = 30;

/// Which way an arrow goes.
#[derive(Clone, Copy, PartialEq)]
enum Dir {
    ToStudent,
    FromStudent,
}

enum Row {
    Arrow {
        at_ms: u64,
        dir: Dir,
        label: String,
        class: &'static str,
    },
    /// Something that happened on the program's side alone (it exited).
    Mark {
        at_ms: u64,
        label: String,
        class: &'static str,
    },
}

/// The diagram of `case`; `id` makes its marker ids unique in the page.
pub fn svg(case: &CaseResult, id: usize) -> String {
    let mut rows = Vec::new();
    let several = case
        .transcript
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Connected { conn, .. } | EventKind::Accepted { conn } => Some(conn),
            _ => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        > 1;
    let on = |conn: &str| {
        if several {
            format!("[{conn}] ")
        } else {
            String::new()
        }
    };
    for e in &case.transcript {
        let at_ms = e.at_ms;
        let arrow = |dir, label: String, class| Row::Arrow {
            at_ms,
            dir,
            label,
            class,
        };
        let row = match &e.kind {
            EventKind::Connected { conn, .. } => {
                arrow(Dir::ToStudent, format!("{}connect (SYN)", on(conn)), "conn")
            }
            EventKind::Accepted { conn } | EventKind::ClientConnected { conn, .. } => arrow(
                Dir::FromStudent,
                format!("{}connect (SYN)", on(conn)),
                "conn",
            ),
            EventKind::Sent { conn, bytes, data } => arrow(
                Dir::ToStudent,
                format!("{}{bytes} B {}", on(conn), preview(data)),
                "data",
            ),
            EventKind::Received { conn, bytes, data } => arrow(
                Dir::FromStudent,
                format!("{}{bytes} B {}", on(conn), preview(data)),
                "data",
            ),
            EventKind::Shutdown { conn } => {
                arrow(Dir::ToStudent, format!("{}FIN (shutdown)", on(conn)), "fin")
            }
            EventKind::Closed { conn, how } => arrow(
                Dir::ToStudent,
                format!("{}{}", on(conn), close_label(how)),
                close_class(how),
            ),
            EventKind::PeerClosed { conn, how } => arrow(
                Dir::FromStudent,
                format!("{}{}", on(conn), close_label(how)),
                close_class(how),
            ),
            EventKind::Signal { signal } => arrow(Dir::ToStudent, signal.clone(), "signal"),
            EventKind::Exited { status } => Row::Mark {
                at_ms,
                label: format!("exited: {status}"),
                class: "exit",
            },
            _ => continue,
        };
        rows.push(row);
    }
    let end = case.transcript.last().map_or(0, |e| e.at_ms);
    if !case
        .transcript
        .iter()
        .any(|e| matches!(e.kind, EventKind::Exited { .. }))
    {
        if let Some(exit) = &case.exit {
            rows.push(Row::Mark {
                at_ms: end,
                label: exit.clone(),
                class: "exit",
            });
        }
    }
    let failure = (case.status != Status::Passed).then(|| match &case.failure {
        Some(f) => format!("✗ step {}: expected {}; got {}", f.step, f.expected, f.got),
        None => format!("✗ {}", case.reason.as_deref().unwrap_or("failed")),
    });

    let height = TOP + ROW * (rows.len() as u32 + u32::from(failure.is_some())) + 24;
    let (student_x, peer_x) = match case.target {
        Target::Server => (SERVER_X, CLIENT_X),
        Target::Client => (CLIENT_X, SERVER_X),
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"seq\" role=\"img\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title>{}</title>\
         <defs><marker id=\"h{id}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">\
         <path d=\"M0,0 L10,5 L0,10 z\" fill=\"context-stroke\"/></marker></defs>",
        esc(&format!("sequence diagram of \"{}\"", case.name))
    );
    let (client_label, server_label) = match case.target {
        Target::Server => ("client (grader)", "server (your program)"),
        Target::Client => ("client (your program)", "server (grader)"),
    };
    for (x, label) in [(CLIENT_X, client_label), (SERVER_X, server_label)] {
        let _ = write!(
            s,
            "<text x=\"{x}\" y=\"20\" text-anchor=\"middle\" class=\"who\">{label}</text>\
             <line x1=\"{x}\" y1=\"30\" x2=\"{x}\" y2=\"{}\" class=\"life\"/>",
            height - 8
        );
    }
    for (i, row) in rows.iter().enumerate() {
        let y = TOP + ROW * i as u32 + 14;
        match row {
            Row::Arrow {
                at_ms,
                dir,
                label,
                class,
            } => {
                let (x1, x2) = match dir {
                    Dir::ToStudent => (peer_x, student_x),
                    Dir::FromStudent => (student_x, peer_x),
                };
                let _ = write!(
                    s,
                    "<text x=\"8\" y=\"{y}\" class=\"t\">{at_ms} ms</text>\
                     <line x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" class=\"a {class}\" marker-end=\"url(#h{id})\"/>\
                     <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" class=\"l {class}\">{}</text>",
                    (CLIENT_X + SERVER_X) / 2,
                    y - 5,
                    esc(label)
                );
            }
            Row::Mark {
                at_ms,
                label,
                class,
            } => {
                let anchor = if student_x > peer_x { "end" } else { "start" };
                let tx = if student_x > peer_x {
                    student_x - 10
                } else {
                    student_x + 10
                };
                let _ = write!(
                    s,
                    "<text x=\"8\" y=\"{y}\" class=\"t\">{at_ms} ms</text>\
                     <circle cx=\"{student_x}\" cy=\"{y}\" r=\"5\" class=\"{class}\"/>\
                     <text x=\"{tx}\" y=\"{}\" text-anchor=\"{anchor}\" class=\"l {class}\">{}</text>",
                    y + 4,
                    esc(&shorten(label, 60))
                );
            }
        }
    }
    if let Some(text) = failure {
        let y = TOP + ROW * rows.len() as u32 + 14;
        let _ = write!(
            s,
            "<line x1=\"8\" y1=\"{}\" x2=\"{}\" y2=\"{}\" class=\"fail\"/>\
             <text x=\"12\" y=\"{y}\" class=\"l failtext\">{}</text>",
            y - 16,
            WIDTH - 8,
            y - 16,
            esc(&shorten(&text, 88))
        );
    }
    s.push_str("</svg>");
    s
}

fn close_label(how: &CloseHow) -> &'static str {
    match how {
        CloseHow::Fin => "FIN (close)",
        CloseHow::Rst => "RST (reset)",
    }
}

fn close_class(how: &CloseHow) -> &'static str {
    match how {
        CloseHow::Fin => "fin",
        CloseHow::Rst => "rst",
    }
}

/// The first characters of an already escaped data string.
fn preview(data: &str) -> String {
    shorten(data, PREVIEW)
}

fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut o: String = s.chars().take(n - 1).collect();
        o.push('…');
        o
    }
}

/// The diagram's style, for the page that embeds it.
pub const STYLE: &str = r##"
svg.seq { max-width: 100%; height: auto; background: #fff; border: 1px solid var(--line); border-radius: 6px; }
svg.seq text { font: 12px ui-monospace, Menlo, Consolas, monospace; fill: #1f2328; }
svg.seq text.who { font: 600 13px system-ui, sans-serif; }
svg.seq text.t { fill: var(--muted); }
svg.seq .life { stroke: #8c959f; stroke-width: 2; stroke-dasharray: 4 3; }
svg.seq .a { stroke: #0969da; stroke-width: 1.6; }
svg.seq .a.conn { stroke: #57606a; }
svg.seq .a.fin { stroke: #1a7f37; }
svg.seq .a.rst, svg.seq .a.signal { stroke: #cf222e; }
svg.seq text.rst, svg.seq text.signal { fill: #cf222e; }
svg.seq circle.exit { fill: #9a6700; }
svg.seq .fail { stroke: #cf222e; stroke-width: 1.5; stroke-dasharray: 6 3; }
svg.seq text.failtext { fill: #cf222e; font-weight: 600; }
"##;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Event, Failure};
    use crate::spec::{Show, Visibility};

    #[test]
    fn arrows_go_between_the_right_sides_and_student_data_is_escaped() {
        let ev = |at_ms, kind| Event { at_ms, kind };
        let case = CaseResult {
            name: "<b>evil</b>".into(),
            target: Target::Server,
            status: Status::Failed,
            score: 0,
            max_score: 2,
            informational: false,
            reason: Some("reset".into()),
            failure: Some(Failure {
                step: 7,
                line: 1,
                action: "wait".into(),
                sent: None,
                expected: "a FIN".into(),
                got: "a RST".into(),
            }),
            hint: None,
            exit: Some("still running".into()),
            stderr_tail: vec![],
            stdout_tail: vec![],
            stdout_bytes: 0,
            stderr_bytes: 0,
            duration_ms: 5,
            visibility: Visibility::Visible,
            show: Show::default(),
            shared_process: false,
            not_run: None,
            transcript: vec![
                ev(
                    1,
                    EventKind::Connected {
                        conn: "main".into(),
                        address: "a".into(),
                    },
                ),
                ev(
                    2,
                    EventKind::Sent {
                        conn: "main".into(),
                        bytes: 4,
                        data: "\"bye\\n\"".into(),
                    },
                ),
                ev(
                    3,
                    EventKind::Received {
                        conn: "main".into(),
                        bytes: 20,
                        data: "\"</text><script>alert(1)</script>\"".into(),
                    },
                ),
                ev(
                    4,
                    EventKind::PeerClosed {
                        conn: "main".into(),
                        how: CloseHow::Rst,
                    },
                ),
            ],
        };
        let svg = svg(&case, 3);
        assert!(!svg.contains("<script>") && !svg.contains("<b>"), "{svg}");
        assert!(
            svg.contains("&lt;/text&gt;&lt;script&gt;alert(1)&lt;/scr…"),
            "{svg}"
        );
        // The grader's data goes from the client line to the server line, and back.
        assert!(
            svg.contains(&format!("x1=\"{CLIENT_X}\" y1=\"90\" x2=\"{SERVER_X}\"")),
            "{svg}"
        );
        assert!(
            svg.contains(&format!("x1=\"{SERVER_X}\" y1=\"120\" x2=\"{CLIENT_X}\"")),
            "{svg}"
        );
        assert!(svg.contains("class=\"a rst\""), "{svg}");
        assert!(svg.contains("✗ step 7: expected a FIN; got a RST"), "{svg}");
        assert!(svg.contains("url(#h3)"), "{svg}");
    }
}
