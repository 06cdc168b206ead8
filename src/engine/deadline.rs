//! The one deadline of the engine, and the one way to wait against it.
//!
//! A step's deadline counts only time the program could run. On a loaded machine (a
//! class graded with many jobs, a CI runner shared with other builds) a correct program
//! can spend seconds waiting for a CPU. Charging that to the student would make the
//! grade depend on the load: so whenever a deadline passes, the time the program's
//! threads spent runnable but not running since the wait began (`schedstat`) is added to
//! it, and the wait goes on. A program that is slow on its own, or blocked, gets no
//! extension; the case's own timeout still bounds everything.
//!
//! Every wait of a case (a step, the start-up, the case's own timeout) is
//! [`Deadline::race`]: the event itself raced against this deadline, as nextest's
//! executor races a child process against its timers.
//!
//! What counts as waiting is bounded so that a program cannot stretch its own deadlines:
//! - the program's wait is measured on its *longest-runnable thread* since the wait
//!   began, not summed over its threads (60 busy processes on 2 CPUs wait 30 s per
//!   second between them, but no thread is runnable longer than the wall clock);
//! - a case has one CPU's worth of time (its quota, `sandbox::CASE_CPU_PERCENT`): a
//!   thread that waits while its siblings use that, or while the quota throttles the
//!   case, waits for its own program, not for the machine. So the CPU time all its
//!   threads got, in units of the quota, is taken off ([`load_wait`]). Five spinning
//!   processes each wait 80 % of the time on an idle machine; counted as load, that
//!   stretched every deadline and made the program look five times as "available",
//!   hence reports of "4034 % of a CPU";
//! - the deadline stretches by at most [`MAX_STRETCH`] times its length.

use crate::sandbox::proc_net::{self, TaskTimes};
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// CPU waits shorter than this are the ordinary noise of a busy machine.
pub(super) const MIN_CREDIT: Duration = Duration::from_millis(5);

/// How much longer a wait goes on when its deadline passed but the event had already
/// happened in the kernel (data or a close in a socket buffer, a connection queued,
/// output written, an exit not yet reaped) and only the grader was late to see it: on a
/// busy machine the grader can be slower than the program, and that is not the
/// program's delay. Given again as long as the event is still waiting to be seen.
const LATE_GRACE: Duration = Duration::from_millis(10);

/// A deadline moves by at most this many times its own length: whatever the load, a
/// 2 s step ends within 2 + 8 s of the program's time.
pub(super) const MAX_STRETCH: u32 = 4;

/// The time a program waited for a CPU through no doing of its own, since it was made.
pub(super) struct WaitClock {
    pids: Vec<u32>,
    /// The case's CPU quota in CPUs (one when it has none: what one thread can use).
    quota: f64,
    /// Each thread's times when the clock started (a thread born since started at 0).
    base: HashMap<u32, TaskTimes>,
}

impl WaitClock {
    /// A clock over the threads of `pids` (none: it never moves), in a case whose CPU
    /// quota is `quota` CPUs (`None`: no quota).
    pub(super) fn new(pids: Vec<u32>, quota: Option<f64>) -> WaitClock {
        let base = match pids.is_empty() {
            true => HashMap::new(),
            false => proc_net::task_times(&pids).into_iter().collect(),
        };
        WaitClock {
            pids,
            quota: quota.filter(|q| *q > 0.0).unwrap_or(1.0),
            base,
        }
    }

    /// The time the program was kept from a CPU by the machine since the clock started
    /// (see [`load_wait`]).
    pub(super) fn waited(&self) -> Duration {
        if self.pids.is_empty() {
            return Duration::ZERO;
        }
        load_wait(&self.base, &proc_net::task_times(&self.pids), self.quota)
    }
}

/// The time a program was kept from a CPU by others between two readings of its
/// threads' times: the longest any one thread wanted a CPU (ran or waited), less the
/// time its threads together ran, counted in units of the case's `quota` (CPUs).
///
/// While a sibling ran, or the quota throttled the case, the program was using its
/// share, not kept waiting by the machine. For one thread this is its wait, as it always
/// was. For `n` threads spinning under a quota of one CPU it is 0 on an idle machine
/// (each is runnable all the time, and the case used all of its CPU), and on a loaded
/// one the time the case did not get: never more than the wall clock, whatever `n`.
/// (The kernel's own throttled time is summed over CPUs, so it cannot say this.)
pub(super) fn load_wait(
    base: &HashMap<u32, TaskTimes>,
    now: &[(u32, TaskTimes)],
    quota: f64,
) -> Duration {
    let (mut longest, mut ran) = (0u64, 0u64);
    for (tid, t) in now {
        let b = base.get(tid).copied().unwrap_or_default();
        let run = t.run.saturating_sub(b.run);
        let wait = t.wait.saturating_sub(b.wait);
        longest = longest.max(run + wait);
        ran += run;
    }
    let own = (ran as f64 / quota) as u64;
    Duration::from_nanos(longest.saturating_sub(own))
}

pub(super) struct Deadline {
    pub(super) at: Instant,
    clock: WaitClock,
    credited: Duration,
    /// The most the deadline may move: [`MAX_STRETCH`] times its length.
    cap: Duration,
}

impl Deadline {
    /// A deadline `within` from now that extends by the CPU waits `clock` counts.
    pub(super) fn new(within: Duration, clock: WaitClock) -> Deadline {
        Deadline {
            at: Instant::now() + within,
            clock,
            credited: Duration::ZERO,
            cap: within * MAX_STRETCH,
        }
    }

    /// Moves the deadline by the CPU wait not yet credited (up to the cap); true when
    /// it moved.
    pub(super) fn extend(&mut self) -> bool {
        let waited = self.clock.waited();
        self.extend_to(waited)
    }

    /// Credits a total wait of `waited` since the deadline was made, up to the cap.
    fn extend_to(&mut self, waited: Duration) -> bool {
        let waited = waited.min(self.cap);
        let more = waited.saturating_sub(self.credited);
        if more < MIN_CREDIT {
            return false;
        }
        self.credited = waited;
        self.at += more;
        true
    }

    /// Waits for `event` until the deadline, extended by the program's CPU waits and,
    /// while `seen_late` says the event already happened but has not reached the
    /// grader yet, by [`LATE_GRACE`]. `None` when the time ran out first.
    ///
    /// `event` is polled before the timer each time (a result that is ready counts
    /// even when the grader looks late), so it must be cancel-safe: it is dropped
    /// unfinished when the time runs out.
    pub(super) async fn race<T>(
        &mut self,
        event: impl Future<Output = T>,
        seen_late: impl Fn() -> bool,
    ) -> Option<T> {
        tokio::pin!(event);
        loop {
            tokio::select! {
                biased;
                done = &mut event => return Some(done),
                _ = tokio::time::sleep_until(self.at) => {
                    if self.extend() {
                        continue;
                    }
                    if seen_late() {
                        self.at = Instant::now() + LATE_GRACE;
                        continue;
                    }
                    return None;
                }
            }
        }
    }
}

/// For [`Deadline::race`] when nothing can be waiting unseen.
pub(super) fn never() -> bool {
    false
}

/// A deadline for a wait that [`Deadline::race`] ends: later than any case runs.
pub(super) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(30 * 24 * 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn t(run_ms: u64, wait_ms: u64) -> TaskTimes {
        TaskTimes {
            run: run_ms * MS,
            wait: wait_ms * MS,
        }
    }

    /// One thread: its wait for a CPU is the machine's doing, as it always was.
    #[test]
    fn one_thread_is_credited_its_wait() {
        let base = HashMap::from([(1, t(10, 5))]);
        let w = load_wait(&base, &[(1, t(30, 405))], 1.0);
        assert_eq!(w, Duration::from_millis(400));
    }

    /// Five spinning threads sharing one CPU's worth on an idle machine: each waits 80 %
    /// of the time, for its siblings. No credit: that wait is the program's own.
    #[test]
    fn siblings_waiting_for_each_other_are_not_load() {
        let now: Vec<_> = (1..=5).map(|i| (i, t(100, 400))).collect();
        assert_eq!(load_wait(&HashMap::new(), &now, 1.0), Duration::ZERO);
        // Under a fifth of a CPU, 100 ms of CPU in 500 ms is all the quota gives.
        assert_eq!(
            load_wait(&HashMap::new(), &[(1, t(100, 400))], 0.2),
            Duration::ZERO
        );
    }

    /// The same five on a loaded machine that gave the case half a CPU: credited the
    /// half it did not get, not 90 % of the wall clock as the longest wait alone said.
    #[test]
    fn a_loaded_machine_is_credited_once_whatever_the_threads() {
        let now: Vec<_> = (1..=5).map(|i| (i, t(50, 450))).collect();
        assert_eq!(
            load_wait(&HashMap::new(), &now, 1.0),
            Duration::from_millis(250)
        );
        // A thread born since the clock started counts from 0.
        let base = HashMap::from([(1, t(50, 450))]);
        let w = load_wait(&base, &[(1, t(150, 850)), (7, t(20, 80))], 1.0);
        assert_eq!(w, Duration::from_millis(500 - 120));
    }

    /// However long a program is kept waiting, a deadline moves by at most
    /// [`MAX_STRETCH`] times its length.
    #[tokio::test]
    async fn a_deadline_stretches_by_at_most_max_stretch() {
        let within = Duration::from_millis(100);
        let mut d = Deadline::new(within, WaitClock::new(Vec::new(), None));
        let at = d.at;
        assert!(!d.extend(), "no pids, no wait");
        assert!(d.extend_to(Duration::from_millis(150)));
        assert_eq!(d.at, at + Duration::from_millis(150));
        assert!(d.extend_to(Duration::from_secs(60)));
        assert_eq!(d.at, at + within * MAX_STRETCH);
        assert!(!d.extend_to(Duration::from_secs(120)), "capped");
        assert_eq!(d.at, at + within * MAX_STRETCH);
    }
}
