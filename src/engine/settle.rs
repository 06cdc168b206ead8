//! Acting on the program only when it waits for us.
//!
//! A person trying a server types the next line when the last answer has come and the
//! server sits waiting; they close their client when the server has finished talking.
//! A grader that acts the moment its previous step is done can instead land in the
//! middle of the program's own work: closing while a server that answers in pieces is
//! still sending (it then crashes on a reset), or sending while a server is between
//! accept() and close(). Where it lands depends on how fast each side ran, so the
//! verdict would depend on the machine's load.
//!
//! So before each step that delivers something to the program (data, a close, a
//! signal, a line on stdin) the grader waits until the program has settled: no thread
//! running or waiting for a CPU, none writing, none in a pause of its own
//! (`time.sleep`). A program that never settles (a busy loop) is waited for at most
//! [`SETTLE_CPU`] of its own CPU time, or the spec's default `within` without its CPU
//! waits; then the grader acts anyway. Both bounds are the program's time, not the
//! machine's, so the point where the grader acts does not move with the load.

use super::context::Run;
use super::POLL;
use std::time::Duration;

/// CPU time a program that never settles may use before the grader acts anyway: a busy
/// loop costs a case this much per action, a correct program nothing.
pub(super) const SETTLE_CPU: Duration = Duration::from_millis(200);

impl Run<'_> {
    /// Waits until the program waits for the grader (see the module doc).
    pub(super) async fn settle(&mut self) {
        if self.proc.is_none() {
            return;
        }
        let cpu_at_start = self.cpu_time();
        let mut deadline = self.fair_deadline(self.spec.defaults.within);
        let settled = async {
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if self.sandbox.settled(self.proc())
                    || self.cpu_time().saturating_sub(cpu_at_start) >= SETTLE_CPU
                {
                    return;
                }
            }
        };
        deadline.race(settled, super::deadline::never).await;
    }
}
