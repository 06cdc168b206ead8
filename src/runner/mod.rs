//! Schedules the cases of a submission and reports what happens as events.
//!
//! The runner never formats anything: it sends [`RunEvent`]s as cases start and finish
//! (the contract with reporters, [`crate::outcome::events`]), and returns the result. Cases run at the same time when each has its own
//! network namespace; on the host loopback they run one at a time, since student
//! programs hardcode their ports.

pub mod interpreter;

use crate::engine;
use crate::engine::startup::{self, Entry, StartGates};
use crate::outcome::events::RunEvent;
use crate::outcome::{BuildResult, CaseResult, Status, SubmissionResult};
use crate::plan::Plan;
use crate::sandbox::Host;
use crate::spec::{Spec, Target};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};

/// Cases run at once unless told otherwise: 32 per CPU, at most 64. A case spends most
/// of its time waiting (for a reply, an idle window, a deadline that a buggy program lets
/// pass), and with warm starts (`sandbox::warm`) little of it on a CPU, so many overlap
/// on few CPUs. Measured on a 100-student class on 2 CPUs: 16 per CPU took 21.4 s, 32
/// per CPU 15.5 s, with identical gradebooks (deadlines do not count the CPU waits that
/// this causes, see `engine::deadline`), and 57 MB of grader memory at 64.
pub fn default_jobs() -> usize {
    (32 * std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2))
    .min(64)
}

/// The async runtime every grading command runs on.
///
/// Student processes are started with PR_SET_PDEATHSIG, which fires when the *thread*
/// that spawned them exits, not the grader. Tokio retires idle blocking threads after
/// 10 s, and a worker that went through `block_in_place` can be one of them: so idle
/// threads are kept for the whole run, and no student dies because a thread was tidied.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_keep_alive(std::time::Duration::from_secs(24 * 3600))
        .build()
}

/// Unique names for per-case resources (cgroups) within this process.
static CASE_SERIAL: AtomicUsize = AtomicUsize::new(0);

/// The shared case slots were closed (the run is stopping): not every case ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the run was stopped before every case of this submission ran")]
pub struct Cancelled;

/// The limit of cases running at once: `jobs` slots, or one when cases share the
/// host's loopback. Bulk grading shares one of these across a whole class, so the limit
/// is for the machine, not per submission; closing it stops new cases from starting.
pub fn case_slots(host: &Host, jobs: usize) -> Arc<Semaphore> {
    if host.isolation.parallel() {
        // Without root the process limit is shared by the cases running at once.
        crate::sandbox::userns::note_parallel_cases(jobs.max(1));
    }
    Arc::new(Semaphore::new(if host.isolation.parallel() {
        jobs.max(1)
    } else {
        1
    }))
}

/// Grades one submission: every planned case, each when it gets one of `slots`.
///
/// Cases already running when `slots` is closed finish normally (their teardown kills
/// the student's processes); cases still waiting do not start, and the result is
/// [`Cancelled`].
pub(crate) async fn grade(
    host: Arc<Host>,
    spec: Arc<Spec>,
    plan: &Plan,
    submission: PathBuf,
    slots: Arc<Semaphore>,
    events: Option<mpsc::UnboundedSender<RunEvent>>,
    pcap: Option<PathBuf>,
) -> Result<Vec<CaseResult>, Cancelled> {
    let mut set = tokio::task::JoinSet::new();
    // Each side's program starts in one case first; the others of that side wait for it
    // (not holding a slot) and are not run if it could not start (engine::startup).
    let gates = Arc::new(StartGates::new());
    // Server cases that share one started process run one after another in one task
    // (one slot); the others each in a task of their own, alongside. A lone case that
    // may share has nothing to share with and runs as usual.
    let (mut shared, mut alone): (Vec<usize>, Vec<usize>) = plan
        .cases
        .iter()
        .partition(|&&i| spec.cases[i].share_process);
    if shared.len() < 2 {
        alone.append(&mut shared);
    }
    if !shared.is_empty() {
        let (host, spec, submission, slots, events, pcap, gates) = (
            host.clone(),
            spec.clone(),
            submission.clone(),
            slots.clone(),
            events.clone(),
            pcap.clone(),
            gates.clone(),
        );
        set.spawn(async move {
            let mut ticket = match gates.enter(Target::Server).await {
                Entry::Lead(t) => Some(t),
                Entry::Go => None,
                Entry::Skip(why) => {
                    return Ok(not_run(&events, &spec, shared, &why));
                }
            };
            let Ok(_slot) = slots.clone().acquire_owned().await else {
                return Err(Cancelled);
            };
            let mut server = engine::SharedServer::new();
            let mut done = Vec::new();
            for index in shared {
                if slots.is_closed() {
                    server.stop().await;
                    return Err(Cancelled);
                }
                let case = &spec.cases[index];
                let id = case_id();
                let file = pcap_file(&pcap, case);
                let result = announced(
                    &events,
                    index,
                    case,
                    // Boxed: a case's future is large (~140 KB), and is made only
                    // once the case holds its slot (see below).
                    Box::pin(server.run_case(
                        &host,
                        &spec,
                        case,
                        &submission,
                        &id,
                        file.as_deref(),
                        ticket.take(),
                    )),
                )
                .await;
                done.push((index, result));
            }
            server.stop().await;
            Ok(done)
        });
    }
    for index in alone {
        let (host, spec, submission, slots, events, pcap, gates) = (
            host.clone(),
            spec.clone(),
            submission.clone(),
            slots.clone(),
            events.clone(),
            pcap.clone(),
            gates.clone(),
        );
        set.spawn(async move {
            let case = &spec.cases[index];
            let ticket = match gates.enter(case.target).await {
                Entry::Lead(t) => Some(t),
                Entry::Go => None,
                Entry::Skip(why) => return Ok(not_run(&events, &spec, vec![index], &why)),
            };
            let Ok(_slot) = slots.acquire_owned().await else {
                return Err(Cancelled);
            };
            let id = case_id();
            let file = pcap_file(&pcap, case);
            let result = announced(
                &events,
                index,
                case,
                // Boxed, so that this task is small while it waits for its gate and
                // its slot: a case's future holds ~140 KB of state, and a class has
                // many cases waiting (every case of the students in flight; those of a
                // server that never listens wait out its start-up). Unboxed, a class of
                // 1,000 mixed students peaked at 175 MiB of grader memory.
                Box::pin(engine::run_case_gated(
                    &host,
                    &spec,
                    case,
                    &submission,
                    &id,
                    file.as_deref(),
                    ticket,
                )),
            )
            .await;
            Ok(vec![(index, result)])
        });
    }
    let mut results = Vec::new();
    let mut cancelled = false;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(r)) => results.extend(r),
            Ok(Err(Cancelled)) => cancelled = true,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    if cancelled {
        return Err(Cancelled);
    }
    results.sort_by_key(|(i, _)| *i);
    Ok(results.into_iter().map(|(_, r)| r).collect())
}

/// Where a case's capture goes, in the folder of `--pcap`: named by case and target.
fn pcap_file(dir: &Option<PathBuf>, case: &crate::spec::Case) -> Option<PathBuf> {
    dir.as_ref().map(|d| {
        d.join(crate::sandbox::pcap::file_name(
            &case.name,
            &case.target.to_string(),
        ))
    })
}

/// The sides the planned cases start, server first.
fn targets_of(plan: &Plan, spec: &Spec) -> Vec<Target> {
    let mut t: Vec<Target> = plan.cases.iter().map(|&i| spec.cases[i].target).collect();
    t.sort();
    t.dedup();
    t
}

/// The cases of a side whose program could not start in another case: each announced,
/// none run.
fn not_run(
    events: &Option<mpsc::UnboundedSender<RunEvent>>,
    spec: &Spec,
    indices: Vec<usize>,
    why: &startup::StartFailure,
) -> Vec<(usize, CaseResult)> {
    let mut done = Vec::new();
    for index in indices {
        let case = &spec.cases[index];
        let result = startup::not_run(case, why);
        if let Some(tx) = events {
            let _ = tx.send(RunEvent::CaseStarted {
                index,
                name: case.name.clone(),
            });
            let _ = tx.send(RunEvent::CaseFinished {
                index,
                result: Box::new(result.clone()),
            });
        }
        done.push((index, result));
    }
    done
}

/// A name for a case's resources (cgroups), unique in this process.
fn case_id() -> String {
    format!("case{}", CASE_SERIAL.fetch_add(1, Ordering::Relaxed))
}

/// Runs one case between its `CaseStarted` and `CaseFinished` events.
async fn announced(
    events: &Option<mpsc::UnboundedSender<RunEvent>>,
    index: usize,
    case: &crate::spec::Case,
    run: impl std::future::Future<Output = CaseResult>,
) -> CaseResult {
    if let Some(tx) = events {
        let _ = tx.send(RunEvent::CaseStarted {
            index,
            name: case.name.clone(),
        });
    }
    let result = run.await;
    if let Some(tx) = events {
        let _ = tx.send(RunEvent::CaseFinished {
            index,
            result: Box::new(result.clone()),
        });
    }
    result
}

/// What every submission graded by one command shares: the machine, the spec (its
/// interpreters resolved once, see [`interpreter::resolve_spec`]), the cases planned and
/// the limit of cases running at once.
pub struct Grading {
    pub host: Arc<Host>,
    pub spec: Arc<Spec>,
    /// How reports name the spec (its path as given).
    pub spec_name: String,
    pub plan: Plan,
    /// Cases running at once, for every submission of the command.
    pub slots: Arc<Semaphore>,
}

impl Grading {
    /// At most `jobs` cases at once (one on the host's loopback).
    pub fn new(
        host: Arc<Host>,
        spec: Arc<Spec>,
        spec_name: String,
        plan: Plan,
        jobs: usize,
    ) -> Self {
        Grading {
            slots: case_slots(&host, jobs),
            host,
            spec,
            spec_name,
            plan,
        }
    }

    /// The sides (server, client) the planned cases start.
    fn targets(&self) -> Vec<Target> {
        targets_of(&self.plan, &self.spec)
    }

    /// Grades one submission: the one path of `run`, `check --against` and `grade`.
    ///
    /// Picks the interpreter of each side (Python 2 files run by the spec's
    /// `fallback_command`, [`interpreter::choose`]), runs every planned case, and wraps
    /// the results with the spec's visibility and the notes (`notes` from the caller,
    /// such as files left out of an archive, then the interpreters picked). `dir` holds
    /// the student's files; `name` is how reports name the submission. The duration is
    /// the wall-clock time from queueing the cases to the end of the last (in a class
    /// run, waits for a slot shared with other students included). With `pcap`, each
    /// case's traffic is captured into a file of that folder (created), named by case
    /// ([`crate::sandbox::pcap`]). [`Cancelled`] when `slots` were closed before every
    /// case ran.
    pub async fn grade(
        &self,
        dir: PathBuf,
        name: String,
        mut notes: Vec<String>,
        events: Option<mpsc::UnboundedSender<RunEvent>>,
        pcap: Option<PathBuf>,
    ) -> Result<SubmissionResult, Cancelled> {
        if let Some(p) = &pcap {
            // A folder that cannot be made shows as each case's note (no file written).
            let _ = std::fs::create_dir_all(p);
        }
        let (spec, targets, d) = (self.spec.clone(), self.targets(), dir.clone());
        // The choice compiles the student's files: blocking, so off the async threads.
        let (spec, choices) =
            tokio::task::spawn_blocking(move || interpreter::choose(&spec, &targets, &d))
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        notes.extend(choices.into_iter().map(|c| c.note));
        // [random] values and random files are drawn per student.
        let spec = spec.for_student(&name);
        let t0 = std::time::Instant::now();
        let (builds, tree) = self
            .build(&spec, &targets_of(&self.plan, &spec), &dir)
            .await?;
        // Cases copy the built tree; a side that did not build runs none of its cases.
        let source = tree.as_ref().map_or(dir, |t| t.path().to_path_buf());
        let unbuilt = |t: Target| {
            builds
                .iter()
                .any(|b| b.target == t && b.status != Status::Passed)
        };
        let plan = Plan {
            cases: (self.plan.cases.iter().copied())
                .filter(|&i| !unbuilt(spec.cases[i].target))
                .collect(),
        };
        let spec = Arc::new(spec);
        let ran = grade(
            self.host.clone(),
            spec.clone(),
            &plan,
            source,
            self.slots.clone(),
            events.clone(),
            pcap,
        )
        .await?;
        let mut ran = ran.into_iter();
        let mut cases = Vec::new();
        for &index in &self.plan.cases {
            let case = &spec.cases[index];
            match builds
                .iter()
                .find(|b| b.target == case.target && unbuilt(b.target))
            {
                Some(b) => {
                    let result = CaseResult::not_run(
                        case,
                        format!("not run: {} (see its build)", b.summary()),
                    );
                    if let Some(tx) = &events {
                        let _ = tx.send(RunEvent::CaseFinished {
                            index,
                            result: Box::new(result.clone()),
                        });
                    }
                    cases.push(result);
                }
                None => cases.extend(ran.next()),
            }
        }
        // The host's notes are the operator's (said once on stderr), not the student's.
        let mut result = SubmissionResult::new(
            name,
            self.spec_name.clone(),
            self.host.isolation,
            notes,
            cases,
        );
        result.visibility = self.spec.defaults.visibility;
        result.builds = builds;
        result.duration_ms = t0.elapsed().as_millis() as u64;
        Ok(result)
    }

    /// Builds each side of `targets` that has a `build`, one after the other, each from
    /// the tree the one before left (so a client build sees the server's files), each
    /// holding one of the case slots (a compiler is at least as heavy as a case).
    /// Returns the builds and the tree the cases copy (`None`: the submission as it is).
    async fn build(
        &self,
        spec: &Spec,
        targets: &[Target],
        submission: &std::path::Path,
    ) -> Result<
        (
            Vec<BuildResult>,
            Option<crate::sandbox::scratch::WorkFolder>,
        ),
        Cancelled,
    > {
        let mut builds = Vec::new();
        let mut tree: Option<crate::sandbox::scratch::WorkFolder> = None;
        for &target in targets {
            if spec.program(target).is_none_or(|p| p.build.is_none()) {
                continue;
            }
            let Ok(_slot) = self.slots.acquire().await else {
                return Err(Cancelled);
            };
            let source = tree.as_ref().map_or(submission, |t| t.path());
            let id = format!("build{}", CASE_SERIAL.fetch_add(1, Ordering::Relaxed));
            if let Some(built) = engine::build(&self.host, spec, target, source, &id).await {
                builds.push(built.result);
                if built.tree.is_some() {
                    tree = built.tree;
                }
            }
        }
        Ok((builds, tree))
    }
}

/// Grades one submission alone, at most `jobs` cases at once: [`Grading::grade`] with
/// slots of its own, which are never closed, and no one listening to its events. `spec` as given: resolve its interpreters
/// first ([`interpreter::resolve_spec`]) to start them without shims.
pub async fn grade_submission(
    host: Arc<Host>,
    spec: Arc<Spec>,
    spec_name: String,
    plan: &Plan,
    submission: PathBuf,
    jobs: usize,
) -> SubmissionResult {
    Grading::new(host, spec, spec_name, plan.clone(), jobs)
        .grade(
            submission.clone(),
            submission.display().to_string(),
            Vec::new(),
            None,
            None,
        )
        .await
        .expect("these slots are never closed")
}
