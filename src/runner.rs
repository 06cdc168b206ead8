//! Schedules the cases of a submission and reports what happens as events.
//!
//! The runner never formats anything: it sends [`RunEvent`]s, and reporters (text for
//! a terminal, JSON, ...) consume them. Cases run at the same time when each has its own
//! network namespace; on the host loopback they run one at a time, since student
//! programs hardcode their ports.

use crate::engine;
use crate::outcome::{CaseResult, SubmissionResult};
use crate::plan::Plan;
use crate::sandbox::Host;
use crate::spec::Spec;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};

#[derive(Debug, Clone)]
pub enum RunEvent {
    CaseStarted {
        index: usize,
        name: String,
    },
    CaseFinished {
        index: usize,
        result: Box<CaseResult>,
    },
}

/// Unique names for per-case resources (cgroups) within this process.
static CASE_SERIAL: AtomicUsize = AtomicUsize::new(0);

/// Grades one submission: every planned case, `jobs` at a time.
pub async fn grade(
    host: Arc<Host>,
    spec: Arc<Spec>,
    plan: &Plan,
    submission: PathBuf,
    jobs: usize,
    events: Option<mpsc::UnboundedSender<RunEvent>>,
) -> Vec<CaseResult> {
    let jobs = if host.isolation.parallel() {
        jobs.max(1)
    } else {
        1
    };
    let slots = Arc::new(Semaphore::new(jobs));
    let mut set = tokio::task::JoinSet::new();
    for &index in &plan.cases {
        let (host, spec, submission, slots, events) = (
            host.clone(),
            spec.clone(),
            submission.clone(),
            slots.clone(),
            events.clone(),
        );
        set.spawn(async move {
            let _slot = slots
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let case = &spec.cases[index];
            if let Some(tx) = &events {
                let _ = tx.send(RunEvent::CaseStarted {
                    index,
                    name: case.name.clone(),
                });
            }
            let id = format!("case{}", CASE_SERIAL.fetch_add(1, Ordering::Relaxed));
            let result = engine::run_case(&host, &spec, case, &submission, &id).await;
            if let Some(tx) = &events {
                let _ = tx.send(RunEvent::CaseFinished {
                    index,
                    result: Box::new(result.clone()),
                });
            }
            (index, result)
        });
    }
    let mut results = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(r) => results.push(r),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Grades and wraps the results of one submission.
pub async fn grade_submission(
    host: Arc<Host>,
    spec: Arc<Spec>,
    spec_name: String,
    plan: &Plan,
    submission: PathBuf,
    jobs: usize,
) -> SubmissionResult {
    let t0 = std::time::Instant::now();
    let visibility = spec.defaults.visibility;
    let cases = grade(host.clone(), spec, plan, submission.clone(), jobs, None).await;
    let mut result = SubmissionResult::new(
        submission.display().to_string(),
        spec_name,
        host.isolation.as_str().to_string(),
        host.notes.clone(),
        cases,
    );
    result.visibility = visibility;
    result.duration_ms = t0.elapsed().as_millis() as u64;
    result
}
