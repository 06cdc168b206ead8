//! The class summary printed at the end of a run: how scores are spread, what most of the
//! class got wrong (pass rate per case, worst first), and which submissions cost the most
//! grading time (usually hangs that ran into a deadline).

use crate::outcome::class::{Row, RunHeader};
use crate::outcome::Status;
use std::fmt::Write;

const BAR: usize = 40;
const SLOWEST: usize = 5;

pub fn render(header: &RunHeader, rows: &[Row]) -> String {
    let mut out = String::new();
    let n = rows.len();
    let errors = rows.iter().filter(|r| r.status == Status::Error).count();
    let full = rows.iter().filter(|r| r.status == Status::Passed).count();
    let _ = writeln!(
        out,
        "\n{} — {n} submissions: {full} full marks, {} with failures, {errors} with errors",
        header.assignment,
        n - full - errors
    );
    if n == 0 {
        return out;
    }
    histogram(&mut out, header.max_score, rows);
    pass_rates(&mut out, header, rows);
    builds(&mut out, rows);
    let mut slow: Vec<&Row> = rows.iter().filter(|r| r.duration_ms > 0).collect();
    slow.sort_by(|a, b| {
        b.duration_ms
            .cmp(&a.duration_ms)
            .then(a.student.cmp(&b.student))
    });
    if !slow.is_empty() {
        let _ = writeln!(out, "\nslowest submissions (time spent in their cases):");
        for r in slow.iter().take(SLOWEST) {
            let _ = writeln!(
                out,
                "  {:>7.1} s  {} ({}/{})",
                r.duration_ms as f64 / 1000.0,
                r.student,
                r.score,
                r.max
            );
        }
    }
    out
}

/// Scores in up to 10 buckets (one per score when the maximum is small).
fn histogram(out: &mut String, max: u32, rows: &[Row]) {
    let buckets = (max + 1).min(10) as usize;
    let bucket_of =
        |score: u32| ((score.min(max) as usize) * buckets / (max as usize + 1)).min(buckets - 1);
    let mut counts = vec![0usize; buckets];
    for r in rows {
        counts[bucket_of(r.score)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1);
    let _ = writeln!(out, "\nscores (out of {max}):");
    for (b, &c) in counts.iter().enumerate() {
        let lo = (b * (max as usize + 1)).div_ceil(buckets);
        let hi = ((b + 1) * (max as usize + 1)).div_ceil(buckets) - 1;
        let label = if lo == hi {
            format!("{lo}")
        } else {
            format!("{lo}–{hi}")
        };
        let _ = writeln!(out, "  {label:>7} │{:<BAR$} {c}", "█".repeat(c * BAR / top));
    }
}

fn pass_rates(out: &mut String, header: &RunHeader, rows: &[Row]) {
    let mut rates: Vec<(f64, usize, usize, &str, bool)> = Vec::new();
    for (i, col) in header.cases.iter().enumerate() {
        let ran: Vec<Status> = rows
            .iter()
            .filter_map(|r| r.cases.get(i).copied().flatten())
            .map(|(s, _)| s)
            .collect();
        if ran.is_empty() {
            continue;
        }
        let passed = ran.iter().filter(|s| **s == Status::Passed).count();
        rates.push((
            passed as f64 / ran.len() as f64,
            passed,
            ran.len(),
            &col.name,
            col.informational,
        ));
    }
    rates.sort_by(|a, b| a.0.total_cmp(&b.0));
    let _ = writeln!(out, "\npass rate per case (worst first):");
    for (rate, passed, ran, name, info) in rates {
        let _ = writeln!(
            out,
            "  {:>5.1} %  {passed:>4}/{ran:<4} {name}{}",
            rate * 100.0,
            if info { " (informational)" } else { "" }
        );
    }
}

/// Build time (the spec's `build`): in all, per submission, and the slowest builds
/// (a build that hangs shows here, stopped at its time limit).
fn builds(out: &mut String, rows: &[Row]) {
    let mut built: Vec<&Row> = rows.iter().filter(|r| r.build_ms > 0).collect();
    if built.is_empty() {
        return;
    }
    let total: u64 = built.iter().map(|r| r.build_ms).sum();
    let _ = writeln!(
        out,
        "\nbuild time: {:.1} s in all, {:.1} s per submission on average; slowest builds:",
        total as f64 / 1000.0,
        total as f64 / 1000.0 / built.len() as f64
    );
    built.sort_by(|a, b| b.build_ms.cmp(&a.build_ms).then(a.student.cmp(&b.student)));
    for r in built.iter().take(SLOWEST) {
        let _ = writeln!(
            out,
            "  {:>7.1} s  {}",
            r.build_ms as f64 / 1000.0,
            r.student
        );
    }
}
