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
//! - the wait of the program is that of its *longest-waiting thread* since the wait
//!   began, not the sum over its threads (60 busy processes on 2 CPUs wait 30 s per
//!   second between them, but no thread waits longer than the wall clock);
//! - time the case spent throttled by its own CPU quota (see `sandbox::cgroup`) is its
//!   own doing, not the machine's: it is taken off;
//! - the deadline stretches by at most [`MAX_STRETCH`] times its length.

use crate::sandbox::cgroup::ThrottleProbe;
use crate::sandbox::proc_net;
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
    throttle: Option<ThrottleProbe>,
    /// Each thread's wait when the clock started (a thread born since started at 0).
    base: HashMap<u32, u64>,
    throttled_base: Duration,
}

impl WaitClock {
    /// A clock over the threads of `pids` (none: it never moves); `throttle` reads the
    /// case's time throttled by its CPU quota.
    pub(super) fn new(pids: Vec<u32>, throttle: Option<ThrottleProbe>) -> WaitClock {
        let base = match pids.is_empty() {
            true => HashMap::new(),
            false => proc_net::task_waits(&pids).into_iter().collect(),
        };
        let throttled_base = throttle.as_ref().map(|t| t.throttled()).unwrap_or_default();
        WaitClock {
            pids,
            throttle,
            base,
            throttled_base,
        }
    }

    /// The longest wait of any one thread since the clock started, less the time the
    /// case was throttled by its own quota meanwhile.
    pub(super) fn waited(&self) -> Duration {
        if self.pids.is_empty() {
            return Duration::ZERO;
        }
        let longest = proc_net::task_waits(&self.pids)
            .into_iter()
            .map(|(tid, ns)| ns.saturating_sub(self.base.get(&tid).copied().unwrap_or(0)))
            .max()
            .unwrap_or(0);
        let throttled = self
            .throttle
            .as_ref()
            .map(|t| t.throttled().saturating_sub(self.throttled_base))
            .unwrap_or_default();
        Duration::from_nanos(longest).saturating_sub(throttled)
    }
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
        let waited = self.clock.waited().min(self.cap);
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
