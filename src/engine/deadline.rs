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

use crate::sandbox::proc_net;
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

pub(super) struct Deadline {
    pub(super) at: Instant,
    pids: Vec<u32>,
    credited: Duration,
}

impl Deadline {
    /// A deadline `within` from now that extends by the CPU waits of `pids` (none: a
    /// plain deadline).
    pub(super) fn new(within: Duration, pids: Vec<u32>) -> Deadline {
        let credited = proc_net::cpu_wait(&pids);
        Deadline {
            at: Instant::now() + within,
            pids,
            credited,
        }
    }

    /// Moves the deadline by the CPU wait not yet credited; true when it moved.
    pub(super) fn extend(&mut self) -> bool {
        let waited = proc_net::cpu_wait(&self.pids);
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
