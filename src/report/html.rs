//! The class report: one self-contained HTML file for a whole class run, to open in any
//! browser, mail to a colleague or attach to a course page.
//!
//! What an instructor asks of a class, in order: how are scores spread (a histogram, inline
//! SVG), what did most of the class get wrong (pass rate per case, worst first), how did
//! each student do (a table, sortable by any column, ✓/✗/! per case), and why (each
//! student's failures and transcripts, one click away in `<details>`).
//!
//! Student output is hostile: it may hold `<script>`, GBK, binary or terminal escapes.
//! Every piece of text is HTML-escaped (and control and bidi characters made visible)
//! before it reaches the page; no student text ever goes into the script, which reads the
//! page instead; and a Content-Security-Policy lets only *our* script run (by its SHA-256)
//! and the page load nothing from outside, so even a mistake in escaping could neither run
//! code nor send data anywhere.
//!
//! The page is written in pieces ([`write`]) so that a class of thousands is streamed from
//! the journal, one student at a time, rather than held in memory; [`render`] is the same
//! for records already in memory. Both are pure: the same class gives the same bytes.

use crate::outcome::class::{CaseColumn, Outcome, Row, RunHeader, StudentRecord};
use crate::outcome::{CaseResult, Status};
use crate::report::{plain, text};
use base64::Engine;
use sha2::Digest;
use std::borrow::Borrow;
use std::fmt::Write as _;
use std::io::{self, Write};

/// The page's only script. It reads the page (never data embedded in script), so no
/// student text can end up in JavaScript. It makes the student table sortable, opens a
/// student's details when their row is clicked or their `#s-N` anchor is visited, and
/// marks the body `data-ready` with the number of rows (the headless-browser test reads it).
const SCRIPT: &str = r##"(function () {
  "use strict";
  var table = document.getElementById("students");
  var body = table.tBodies[0];
  var heads = table.tHead.rows[0].cells;
  function key(row, i) {
    var cell = row.cells[i];
    var v = cell.getAttribute("data-sort");
    if (v === null) { v = cell.textContent; }
    var n = parseFloat(v);
    return isNaN(n) ? { n: null, s: v.toLowerCase() } : { n: n, s: v };
  }
  function sortBy(i) {
    var th = heads[i];
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    for (var j = 0; j < heads.length; j++) { heads[j].removeAttribute("aria-sort"); }
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, i), y = key(b, i);
      var c = (x.n !== null && y.n !== null) ? x.n - y.n : (x.s < y.s ? -1 : x.s > y.s ? 1 : 0);
      return c * dir || (a.getAttribute("data-order") - b.getAttribute("data-order"));
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  Array.prototype.forEach.call(heads, function (th, i) {
    th.tabIndex = 0;
    th.addEventListener("click", function () { sortBy(i); });
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(i); }
    });
  });
  function openStudent(id, scroll) {
    var d = document.getElementById(id);
    if (!d || d.tagName !== "DETAILS") { return; }
    d.open = true;
    if (scroll) { d.scrollIntoView({ block: "start" }); }
  }
  Array.prototype.forEach.call(body.rows, function (row) {
    row.addEventListener("click", function (e) {
      if (e.target.tagName === "A") { return; }
      var id = row.getAttribute("data-student");
      history.replaceState(null, "", "#" + id);
      openStudent(id, true);
    });
  });
  window.addEventListener("hashchange", function () { openStudent(location.hash.slice(1), true); });
  if (location.hash) { openStudent(location.hash.slice(1), true); }
  document.body.setAttribute("data-ready", String(body.rows.length));
})();
"##;

pub(crate) const STYLE: &str = r##"
:root { --ok: #1a7f37; --bad: #cf222e; --err: #9a6700; --muted: #59636e; --line: #d1d9e0; --bg2: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans CJK SC", sans-serif;
       margin: 0 auto; max-width: 1240px; padding: 20px 24px 60px; color: #1f2328; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
.sub { color: var(--muted); margin: 0 0 14px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin: 10px 0 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; min-width: 120px; background: var(--bg2); }
.card b { display: block; font-size: 22px; }
.card span { color: var(--muted); font-size: 13px; }
.grid { display: grid; grid-template-columns: minmax(300px, 440px) 1fr; gap: 28px; align-items: start; }
@media (max-width: 900px) { .grid { grid-template-columns: 1fr; } }
svg text { font: 12px system-ui, sans-serif; fill: #1f2328; }
svg .bar { fill: #0969da; }
svg text.tick { font-size: 10.5px; fill: var(--muted); }
svg .axis { stroke: var(--muted); stroke-width: 1; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--bg2); font-weight: 600; white-space: nowrap; }
#students th { cursor: pointer; user-select: none; position: sticky; top: 0; }
#students th[aria-sort=ascending]::after { content: " ▲"; font-size: 10px; }
#students th[aria-sort=descending]::after { content: " ▼"; font-size: 10px; }
#students tbody tr { cursor: pointer; }
#students tbody tr:hover { background: #eef4ff; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.mark, th.mark { text-align: center; width: 2.2em; padding: 4px 2px; }
.passed { color: var(--ok); } .failed { color: var(--bad); } .error { color: var(--err); }
.mark.passed, .mark.failed, .mark.error { font-weight: 700; }
.rate { display: grid; grid-template-columns: 3.6em 4.6em 120px 1fr; gap: 8px; align-items: center; padding: 3px 0; border-bottom: 1px solid var(--line); }
.rate .meter { height: 10px; background: #ffebe9; border-radius: 5px; overflow: hidden; }
.rate .meter i { display: block; height: 100%; background: var(--ok); }
.rate .pct { text-align: right; font-variant-numeric: tabular-nums; font-weight: 600; }
.rate .count { color: var(--muted); font-variant-numeric: tabular-nums; }
.tag { font-size: 12px; color: var(--muted); border: 1px solid var(--line); border-radius: 10px; padding: 0 6px; margin-left: 4px; white-space: nowrap; }
.note { color: var(--muted); font-size: 13px; }
details.student { border: 1px solid var(--line); border-radius: 8px; margin: 8px 0; }
details.student > summary { padding: 8px 12px; cursor: pointer; background: var(--bg2); border-radius: 8px; }
details.student[open] > summary { border-bottom: 1px solid var(--line); border-radius: 8px 8px 0 0; }
details.student > div { padding: 6px 12px 10px; }
details.case { margin: 4px 0 4px 6px; }
details.case > summary { cursor: pointer; }
pre { background: #0d1117; color: #e6edf3; padding: 10px 12px; border-radius: 6px; overflow-x: auto;
      font: 12.5px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, "Noto Sans Mono CJK SC", monospace;
      white-space: pre-wrap; overflow-wrap: anywhere; margin: 4px 0 8px; }
a { color: #0969da; }
a.page { font-size: 11px; margin-right: 4px; border: 1px solid var(--line); border-radius: 4px; padding: 0 4px; text-decoration: none; }
footer { margin-top: 32px; color: var(--muted); font-size: 13px; }
"##;

/// The class report of `records` (any order) as one HTML page.
pub fn render(header: &RunHeader, records: &[StudentRecord]) -> String {
    let mut sorted: Vec<&StudentRecord> = records.iter().collect();
    sorted.sort_by(|a, b| a.student.cmp(&b.student));
    let rows: Vec<Row> = sorted.iter().map(|r| Row::new(header, r)).collect();
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write(&mut out, header, &rows, sorted.into_iter().map(Ok));
    String::from_utf8(out).unwrap_or_default()
}

/// Writes the class report: `rows` sorted by student (the gradebook's), `records` the same
/// students' full results, read one at a time (in any order: they are linked by id).
pub fn write<W, R, I>(w: &mut W, header: &RunHeader, rows: &[Row], records: I) -> io::Result<()>
where
    W: Write,
    R: Borrow<StudentRecord>,
    I: IntoIterator<Item = io::Result<R>>,
{
    w.write_all(head(header, rows).as_bytes())?;
    let mut extra = rows.len();
    for record in records {
        let record = record?;
        let record = record.borrow();
        let index = match rows.binary_search_by(|r| r.student.as_str().cmp(&record.student)) {
            Ok(i) => i,
            // Not in the table (should not happen): still shown, with an id of its own.
            Err(_) => {
                extra += 1;
                extra
            }
        };
        w.write_all(student(header, index, record).as_bytes())?;
    }
    w.write_all(
        format!(
            "</section>\n<footer>sockgrade {} · {} · every table row opens the student's details; click a column title to sort.</footer>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
            env!("CARGO_PKG_VERSION"),
            esc(&header.assignment),
        )
        .as_bytes(),
    )
}

/// The Content-Security-Policy: our script only (by hash), inline styles, inline SVG;
/// nothing fetched, nothing sent.
fn csp() -> String {
    let hash = sha2::Sha256::digest(SCRIPT.as_bytes());
    format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// Everything before the students' details: title, counts, histogram, pass rates, table.
fn head(header: &RunHeader, rows: &[Row]) -> String {
    let mut o = String::new();
    let n = rows.len();
    let full = rows.iter().filter(|r| r.status == Status::Passed).count();
    let errors = rows.iter().filter(|r| r.status == Status::Error).count();
    let mean = if n == 0 {
        0.0
    } else {
        rows.iter().map(|r| r.score as f64).sum::<f64>() / n as f64
    };
    let mut scores: Vec<u32> = rows.iter().map(|r| r.score).collect();
    scores.sort_unstable();
    let median = match n {
        0 => 0.0,
        n if n % 2 == 1 => scores[n / 2] as f64,
        n => (scores[n / 2 - 1] + scores[n / 2]) as f64 / 2.0,
    };
    let title = esc(&header.assignment);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} — class report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>{title} <span class=\"note\">class report</span></h1>\n",
        csp()
    );
    let _ = writeln!(
        o,
        "<p class=\"sub\">{n} submission{} · {} case{} · maximum score {}{}</p>",
        if n == 1 { "" } else { "s" },
        header.cases.len(),
        if header.cases.len() == 1 { "" } else { "s" },
        header.max_score,
        header
            .shard
            .as_ref()
            .map(|s| format!(" · shard {}", esc(s)))
            .unwrap_or_default()
    );
    let _ = writeln!(
        o,
        "<div class=\"cards\">{}{}{}{}{}</div>",
        card(&format!("{full}"), "full marks", "passed"),
        card(&format!("{}", n - full - errors), "with failures", "failed"),
        card(&format!("{errors}"), "could not be graded fully", "error"),
        card(
            &format!("{mean:.1} / {}", header.max_score),
            "mean score",
            ""
        ),
        card(
            &format!("{median} / {}", header.max_score),
            "median score",
            ""
        ),
    );
    o.push_str("<div class=\"grid\">\n<section>\n<h2>Scores</h2>\n");
    o.push_str(&histogram(header.max_score, rows));
    o.push_str("</section>\n<section>\n<h2>Pass rate per case <span class=\"note\">worst first: what most of the class got wrong</span></h2>\n");
    o.push_str(&pass_rates(header, rows));
    o.push_str("</section>\n</div>\n");
    o.push_str(&table(header, rows));
    o.push_str("<section id=\"details\">\n<h2>Students <span class=\"note\">each case's failure, output and transcript</span></h2>\n");
    o
}

fn card(value: &str, label: &str, class: &str) -> String {
    format!(
        "<div class=\"card\"><b class=\"{class}\">{}</b><span>{}</span></div>",
        esc(value),
        esc(label)
    )
}

/// Score histogram as inline SVG: one bar per score while the maximum is small, else
/// up to 12 buckets (the same bucketing as the terminal summary, a little finer).
fn histogram(max: u32, rows: &[Row]) -> String {
    let buckets = (max as usize + 1).clamp(1, 12);
    let span = max as usize + 1;
    let bucket_of = |score: u32| ((score.min(max) as usize) * buckets / span).min(buckets - 1);
    let mut counts = vec![0usize; buckets];
    for r in rows {
        counts[bucket_of(r.score)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(0).max(1);
    let (w, h, left, bottom, topm) = (420.0, 220.0, 34.0, 34.0, 16.0);
    let plot_h = h - bottom - topm;
    let slot = (w - left - 6.0) / buckets as f64;
    let mut s = format!(
        "<svg role=\"img\" aria-label=\"score histogram\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\">\n"
    );
    let _ = writeln!(
        s,
        "<line class=\"axis\" x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>",
        h - bottom,
        w - 4.0,
        h - bottom
    );
    for (b, &c) in counts.iter().enumerate() {
        let lo = (b * span).div_ceil(buckets);
        let hi = ((b + 1) * span).div_ceil(buckets).saturating_sub(1);
        let label = if lo >= hi {
            format!("{lo}")
        } else {
            format!("{lo}–{hi}")
        };
        // Ranges do not fit under narrow bars: the lower bound reads as a tick (the bar's
        // tooltip has the range).
        let tick = if slot < 40.0 {
            format!("{lo}")
        } else {
            label.clone()
        };
        let bh = plot_h * c as f64 / top as f64;
        let x = left + b as f64 * slot + slot * 0.12;
        let bw = slot * 0.76;
        let y = h - bottom - bh;
        let _ = writeln!(
            s,
            "<g><title>{c} student{} scored {label}</title><rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" rx=\"2\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
             <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{tick}</text></g>",
            if c == 1 { "" } else { "s" },
            x + bw / 2.0,
            y - 4.0,
            if c > 0 { c.to_string() } else { String::new() },
            x + bw / 2.0,
            h - bottom + 16.0,
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"note\">score (out of {max})</text>",
        left + (w - left) / 2.0,
        h - 2.0
    );
    let _ = writeln!(
        s,
        "<text x=\"4\" y=\"{:.1}\" transform=\"rotate(-90 12 {:.1})\" text-anchor=\"middle\">students</text>",
        topm + plot_h / 2.0,
        topm + plot_h / 2.0
    );
    s.push_str("</svg>\n");
    s
}

/// Per case: passed / ran, worst first (ties in spec order); cases that no one ran last.
fn pass_rates(header: &RunHeader, rows: &[Row]) -> String {
    let mut rates: Vec<(Option<f64>, usize, usize, usize, &CaseColumn)> = header
        .cases
        .iter()
        .enumerate()
        .map(|(i, col)| {
            let ran: Vec<Status> = rows
                .iter()
                .filter_map(|r| r.cases.get(i).copied().flatten())
                .map(|(s, _)| s)
                .collect();
            let passed = ran.iter().filter(|s| **s == Status::Passed).count();
            let rate = (!ran.is_empty()).then(|| passed as f64 / ran.len() as f64);
            (rate, passed, ran.len(), i, col)
        })
        .collect();
    rates.sort_by(|a, b| {
        let ka = a.0.unwrap_or(f64::INFINITY);
        let kb = b.0.unwrap_or(f64::INFINITY);
        ka.total_cmp(&kb).then(a.3.cmp(&b.3))
    });
    let mut s = String::new();
    for (rate, passed, ran, i, col) in rates {
        let pct = rate.map(|r| format!("{:.0} %", r * 100.0));
        let _ = writeln!(
            s,
            "<div class=\"rate\"><span class=\"pct\">{}</span><span class=\"count\">{passed}/{ran}</span>\
             <span class=\"meter\"><i style=\"width:{:.1}%\"></i></span>\
             <span><b>{}.</b> {}<span class=\"tag\">{}</span>{}</span></div>",
            pct.as_deref().unwrap_or("–"),
            rate.unwrap_or(0.0) * 100.0,
            i + 1,
            esc(&col.name),
            esc(&col.target.to_string()),
            if col.informational {
                "<span class=\"tag\">informational</span>".to_string()
            } else {
                format!("<span class=\"tag\">{} pt</span>", col.points)
            },
        );
    }
    s
}

/// The student table: id, score, status, a ✓/✗/! column per case, note.
fn table(header: &RunHeader, rows: &[Row]) -> String {
    let mut s = String::from("<h2>Students <span class=\"note\">click a column title to sort, a row to see the details</span></h2>\n<table id=\"students\">\n<thead><tr><th>student</th><th class=\"num\">score</th><th>status</th>");
    for (i, col) in header.cases.iter().enumerate() {
        let _ = write!(
            s,
            "<th class=\"mark\" title=\"{}. {} ({})\">{}</th>",
            i + 1,
            esc(&col.name),
            esc(&col.target.to_string()),
            i + 1
        );
    }
    s.push_str("<th>note</th></tr></thead>\n<tbody>\n");
    for (i, r) in rows.iter().enumerate() {
        let _ = write!(
            s,
            "<tr data-student=\"s-{i}\" data-order=\"{i}\"><td data-sort=\"{}\">\
             <a class=\"page\" href=\"reports/{}.html\" title=\"this student's own report, with a sequence diagram per case\">page</a> \
             <a href=\"#s-{i}\">{}</a></td>\
             <td class=\"num\" data-sort=\"{}\">{}/{}</td><td class=\"{}\">{}</td>",
            esc(&r.student),
            href_segment(&crate::outcome::class::file_stem(&r.student)),
            esc(&r.student),
            r.score,
            r.score,
            r.max,
            r.status,
            r.status
        );
        for (col, cell) in header.cases.iter().zip(&r.cases) {
            let points = |p: &u32| {
                if col.informational {
                    String::new()
                } else {
                    format!(" ({p}/{})", col.points)
                }
            };
            let (mark, class, order, tip) = match cell {
                Some((Status::Passed, p)) => ("✓", "passed", 0, format!("passed{}", points(p))),
                Some((Status::Failed, p)) => ("✗", "failed", 1, format!("failed{}", points(p))),
                Some((Status::Error, _)) => ("!", "error", 2, "could not run".to_string()),
                None => ("", "", 3, "not run".to_string()),
            };
            let _ = write!(
                s,
                "<td class=\"mark {class}\" data-sort=\"{order}\" title=\"{}: {}\">{mark}</td>",
                esc(&col.name),
                esc(&tip)
            );
        }
        let _ = writeln!(s, "<td class=\"note\">{}</td></tr>", esc(&r.note));
    }
    s.push_str("</tbody>\n</table>\n");
    s
}

/// One student's `<details>`: notes, how many cases passed, then each case that did not
/// (in spec order), with the text report's detail: step, sent, expected, got, exit, stderr
/// and stdout tails and hint. Transcripts and sequence diagrams are on the student's own page
/// (`reports/STUDENT.html`, linked): with them, a class of 1,000 made a 17 MB page that
/// Chromium took 3.4 s to render.
fn student(header: &RunHeader, index: usize, r: &StudentRecord) -> String {
    let mut s = String::new();
    let (score, status) = match &r.outcome {
        Outcome::Graded(res) => (format!("{}/{}", res.score, res.max_score), res.status()),
        Outcome::Error(_) => (format!("0/{}", header.max_score), Status::Error),
    };
    let _ = writeln!(
        s,
        "<details class=\"student\" id=\"s-{index}\"><summary><b>{}</b> · {score} · <span class=\"{status}\">{status}</span> <span class=\"note\">{}</span></summary><div>",
        esc(&r.student),
        esc(&r.source)
    );
    for note in &r.notes {
        let _ = writeln!(s, "<p class=\"note\">note: {}</p>", esc(note));
    }
    if let Outcome::Graded(_) = &r.outcome {
        let _ = writeln!(
            s,
            "<p class=\"note\">transcripts and a sequence diagram of each case: <a href=\"reports/{}.html\">{}'s page</a></p>",
            href_segment(&crate::outcome::class::file_stem(&r.student)),
            esc(&r.student)
        );
    }
    match &r.outcome {
        Outcome::Error(reason) => {
            let _ = writeln!(
                s,
                "<p class=\"error\">not graded: {}</p>",
                esc(&plain(reason))
            );
        }
        Outcome::Graded(res) => {
            for b in &res.builds {
                let (mark, class) = match b.status {
                    Status::Passed => ("✓", "passed"),
                    Status::Failed => ("✗", "failed"),
                    Status::Error => ("!", "error"),
                };
                let detail = match b.status {
                    Status::Passed => String::new(),
                    _ => plain(&text::build_detail(res, b)),
                };
                let _ = writeln!(
                    s,
                    "<details class=\"case\"><summary><span class=\"mark {class}\">{mark}</span> build <span class=\"tag\">{}</span> <span class=\"note\">{} · {:.1} s</span></summary><pre>{}</pre></details>",
                    esc(&b.target.to_string()),
                    esc(&b.command.join(" ")),
                    b.duration_ms as f64 / 1000.0,
                    esc(detail.trim_end())
                );
            }
            let mut cases: Vec<(usize, &CaseResult)> = res
                .cases
                .iter()
                .map(|c| {
                    let i = header
                        .cases
                        .iter()
                        .position(|col| col.name == c.name)
                        .unwrap_or(usize::MAX);
                    (i, c)
                })
                .collect();
            cases.sort_by_key(|(i, c)| (c.status == Status::Passed, *i));
            // Passed cases are a ✓ in the student's row: here, only what went wrong (a
            // page of 1,000 students with every case's lines took Chromium 2.1 s to lay
            // out, with failures only 1 s).
            let passed = cases
                .iter()
                .filter(|(_, c)| c.status == Status::Passed)
                .count();
            cases.retain(|(_, c)| c.status != Status::Passed);
            if passed > 0 {
                let _ = writeln!(
                    s,
                    "<p class=\"note\"><span class=\"mark passed\">✓</span> {passed} case{} passed</p>",
                    if passed == 1 { "" } else { "s" }
                );
            }
            for (i, c) in cases {
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
                let number = if i == usize::MAX {
                    String::new()
                } else {
                    format!("{}. ", i + 1)
                };
                let _ = write!(
                    s,
                    "<details class=\"case\"><summary><span class=\"mark {class}\">{mark}</span> {number}{} <span class=\"tag\">{}</span> <span class=\"note\">{points}{}</span></summary>",
                    esc(&c.name),
                    esc(&c.target.to_string()),
                    c.reason
                        .as_deref()
                        .filter(|_| c.status != Status::Passed)
                        .map(|r| format!(" · {}", esc(&plain(r))))
                        .unwrap_or_default()
                );
                let detail = plain(&text::case_detail(c, true, false));
                let _ = writeln!(s, "<pre>{}</pre></details>", esc(detail.trim_end()));
            }
        }
    }
    s.push_str("</div></details>\n");
    s
}

/// A file name as one segment of a relative URL: everything but unreserved ASCII
/// percent-encoded (UTF-8), so `#`, `?`, `%`, spaces and quotes stay part of the name.
fn href_segment(name: &str) -> String {
    let mut o = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

/// Text made safe for HTML element content and quoted attributes. Control characters
/// (other than newline and tab) and bidirectional overrides, which could hide or reorder
/// what a reader sees, are shown as `\u{..}` escapes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            '\n' | '\t' => o.push(c),
            c if c.is_control()
                || ('\u{202A}'..='\u{202E}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
                || c == '\u{FEFF}' =>
            {
                let _ = write!(o, "\\u{{{:x}}}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup_controls_and_bidi() {
        assert_eq!(
            esc("</script><b a='x\"'>&\u{1b}[31m\u{202e}"),
            "&lt;/script&gt;&lt;b a=&#39;x&quot;&#39;&gt;&amp;\\u{1b}[31m\\u{202e}"
        );
        assert_eq!(esc("中文\n\tok"), "中文\n\tok");
    }
}
