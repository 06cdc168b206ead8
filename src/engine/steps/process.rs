//! Steps on the student's process itself: signals, its exit, its port, its stdin and
//! output, and its CPU use.

use super::super::context::Run;
use super::super::deadline::{never, MIN_CREDIT};
use super::StepCtx;
use crate::outcome::{EventKind, Failure};
use crate::sandbox::process::describe_status;
use crate::spec::{ExitExpectation, Matcher, Signal, Stream};
use crate::text::quote;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;
use tokio::time::Instant;

/// Bytes an idle program may print or send while `expect_idle` watches it.
const IDLE_WRITES: u64 = 4096;

/// How often `expect_idle` looks at the program's CPU time and output within its window.
const IDLE_LOOK: Duration = Duration::from_millis(20);

/// How long `expect_idle` watches at least before it calls a program busy early: five
/// periods of the kernel's CPU quota (20 ms), so that a share is not one period's burst.
const EARLY_AFTER: Duration = Duration::from_millis(100);

impl Run<'_> {
    pub(super) fn signal(&mut self, signal: Signal) -> Result<(), Failure> {
        if self.proc().status().is_some() {
            self.event(EventKind::Note {
                text: format!("the {} had already exited; {signal} not sent", self.who()),
            });
            return Ok(());
        }
        self.tasks_at_signal = Some(self.sandbox.task_counts(self.proc()));
        let _ = self.proc().signal(signal.0);
        self.event(EventKind::Signal {
            signal: signal.to_string(),
        });
        Ok(())
    }

    pub(super) async fn expect_exit(
        &mut self,
        mut cx: StepCtx<'_>,
        exp: &ExitExpectation,
    ) -> Result<(), Failure> {
        let who = self.who();
        let proc = self.proc();
        // A busy grader may see its timer before the exit it reaps: a process already
        // dead (a zombie) has exited in time.
        let status = cx.deadline.race(proc.exited(), || proc.is_dead()).await;
        self.note_exit();
        let Some(status) = status else {
            return Err(cx.fail(
                exp.to_string(),
                format!("the {who} was still running after {}", cx.within),
            ));
        };
        let ok = match exp {
            ExitExpectation::Any => true,
            ExitExpectation::Code(c) => status.code() == Some(*c),
            ExitExpectation::Success => status.success(),
            ExitExpectation::Signal(s) => status.signal() == Some(s.0 as i32),
        };
        if ok {
            return Ok(());
        }
        let last = self.last_stderr_line().await;
        Err(cx.fail(
            exp.to_string(),
            format!("the {who} {}{last}", describe_status(status)),
        ))
    }

    /// The server's port can be bound again: nothing of the program still holds it.
    pub(super) fn expect_port_free(&mut self, cx: StepCtx<'_>) -> Result<(), Failure> {
        let Some(bound) = self.listening().map(|l| l.bound) else {
            return Err(cx.fail(
                "a port to check",
                "the server's listening address is unknown",
            ));
        };
        let free = self
            .sandbox
            .in_net(move || -> std::io::Result<()> {
                let s = socket2::Socket::new(
                    socket2::Domain::for_address(bound),
                    socket2::Type::STREAM,
                    None,
                )?;
                s.set_reuse_address(true)?;
                s.bind(&bound.into())?;
                s.listen(1)
            })
            .and_then(|r| r);
        self.event(EventKind::PortFree {
            address: bound.to_string(),
            free: free.is_ok(),
        });
        let Err(e) = free else { return Ok(()) };
        use crate::sandbox::launch::PortUse;
        let why = match self.sandbox.port_use(self.proc(), bound.port()) {
            PortUse::Listening(Some((pid, cmd))) => format!("{} still holds the listening socket on port {}: a process the program started outlived it", self.describe_holder(pid, &cmd), bound.port()),
            PortUse::Listening(None) => format!("a listening socket on port {} is still open, held by a process of the program", bound.port()),
            PortUse::TimeWait(n) => format!("no process holds the port, but {n} connection(s) on it are in TIME_WAIT (the server closed them first), and a restarted server can bind the port then only if it sets SO_REUSEADDR before bind(): `s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)`"),
            PortUse::Connections(n) => format!("{n} connection(s) on port {} are still open", bound.port()),
            PortUse::Unknown => "a process of the program (a child it started?) still holds the listening socket".to_string(),
        };
        Err(cx.fail(
            format!("{bound} to be free once the server exited"),
            format!("binding {bound} failed ({e}): {why}"),
        ))
    }

    /// A process of the program holding a socket, in words that do not depend on the
    /// run (no pid): the program itself, or a child named by its command. A child made
    /// by fork() (or by the warm start's fork server) has the program's own command
    /// line: it is named by the command the case started.
    pub(super) fn describe_holder(&self, pid: u32, cmdline: &str) -> String {
        let who = self.who();
        let proc = self.proc();
        if pid == proc.pid && proc.status().is_none() {
            return format!("the {who} itself");
        }
        let started: Option<&Vec<String>> =
            self.transcript.iter().rev().find_map(|e| match &e.kind {
                EventKind::Started { command, .. } => Some(command),
                _ => None,
            });
        let shown = |words: &[String]| -> String {
            let mut words = words.to_vec();
            if let Some(first) = words.first_mut() {
                if let Some(base) = std::path::Path::new(first.as_str()).file_name() {
                    *first = base.to_string_lossy().into_owned();
                }
            }
            words.join(" ")
        };
        let forked = cmdline.contains("<sockgrade warm start>")
            || started.is_some_and(|c| c.join(" ") == cmdline);
        let command = match (forked, started) {
            (true, Some(c)) => shown(c),
            _ => shown(&cmdline.split(' ').map(String::from).collect::<Vec<_>>()),
        };
        format!("a child process (`{command}`, started by the {who})")
    }

    pub(super) async fn write_stdin(
        &mut self,
        mut cx: StepCtx<'_>,
        bytes: &[u8],
    ) -> Result<(), Failure> {
        self.last_stdin = bytes.to_vec();
        let who = self.who();
        let proc = self
            .proc
            .as_mut()
            .expect("steps run only once the program started");
        match cx.deadline.race(proc.write_stdin(bytes), never).await {
            Some(Ok(())) => self.event(EventKind::Stdin { data: quote(bytes) }),
            _ => self.event(EventKind::Note {
                text: format!(
                    "could not type {} on stdin: the {who} no longer reads it",
                    quote(bytes)
                ),
            }),
        }
        Ok(())
    }

    pub(super) fn close_stdin(&mut self) -> Result<(), Failure> {
        if let Some(p) = self.proc.as_mut() {
            p.close_stdin();
        }
        self.event(EventKind::StdinClosed);
        Ok(())
    }

    /// Waits for output that matches (or, for `not_contains`, for none that does).
    pub(super) async fn expect_output(
        &mut self,
        mut cx: StepCtx<'_>,
        stream: Stream,
        matcher: &Matcher,
    ) -> Result<(), Failure> {
        let cap = match stream {
            Stream::Stdout => self.proc().stdout.clone(),
            Stream::Stderr => self.proc().stderr.clone(),
        };
        let negative = matcher.is_negative();
        let wanted = match matcher {
            Matcher::NotContains(b) => Matcher::Contains(b.clone()),
            m => m.clone(),
        };
        // Output already written but not yet read by the grader counts.
        let found = cx
            .deadline
            .race(cap.wait_for(|w| wanted.find(w)), || cap.lagging())
            .await
            .flatten();
        let sent = if self.last_stdin.is_empty() {
            self.conns
                .iter()
                .filter(|c| !c.last_sent.is_empty())
                .map(|c| quote(&c.last_sent))
                .last()
        } else {
            Some(quote(&self.last_stdin))
        };
        if let Some(bytes) = &found {
            self.event(EventKind::Output {
                stream,
                data: quote(bytes),
            });
        }
        if found.is_some() != negative {
            return Ok(());
        }
        let so_far = cap.unmatched();
        let tail = &so_far[so_far.len().saturating_sub(300)..];
        let got = if negative {
            format!("it printed {}", quote(&found.unwrap_or_default()))
        } else if tail.is_empty() {
            format!(
                "nothing more on {} within {}{}",
                stream.as_str(),
                cx.within,
                self.exit_suffix()
            )
        } else {
            format!(
                "{} so far: {}{}",
                stream.as_str(),
                quote(tail),
                self.exit_suffix()
            )
        };
        Err(Failure {
            sent,
            ..cx.fail(matcher.describe().replacen("data", "output", 1), got)
        })
    }

    /// Watches the program's CPU use over a window while draining every connection, so
    /// a program that writes to us is not blocked (and so made idle) by a full buffer.
    pub(super) async fn expect_idle(
        &mut self,
        cx: StepCtx<'_>,
        window: Duration,
        max_cpu: f64,
    ) -> Result<(), Failure> {
        if self.proc().status().is_some() {
            self.event(EventKind::Note {
                text: format!("the {} had exited: it uses no CPU", self.who()),
            });
            return Ok(());
        }
        // The wall clock starts before the first CPU reading and stops after the last,
        // so the CPU time counted always fits in the time it is divided by (reading the
        // pids and wait clocks of many processes takes a while on a loaded machine).
        let started = Instant::now();
        let cpu_before = self.cpu_time();
        // What the program writes meanwhile: a loop spinning on b'' that prints or
        // sends is busy however little CPU a loaded machine gives it.
        let written = |run: &Self| {
            run.proc().stdout.snapshot().total
                + run.proc().stderr.snapshot().total
                + run.conns.iter().map(|c| c.received_total).sum::<u64>()
        };
        let written_before = written(self);
        let pids = self.pids();
        let clock = self.wait_clock(pids);
        let most = window * super::super::deadline::MAX_STRETCH;
        // The window is the program's own time: it is extended by the time the program
        // waited for a CPU, so on a loaded machine a spinning loop still shows its full
        // appetite and a correct program still gets to finish its work and block.
        let mut end = started + window;
        // What the whole window allows: a program that has used more CPU, or written
        // more, before the window ends is a busy loop whatever it does next, so the
        // wait ends there (a spinning loop would otherwise burn a CPU to the end of a
        // window that load stretches up to fivefold, for a verdict already clear).
        let allowance = window.mul_f64(max_cpu);
        let mut look = started;
        let mut over_early = false;
        loop {
            look = (look + IDLE_LOOK).min(end);
            futures::future::join_all(self.conns.iter_mut().map(|c| c.absorb_until(look))).await;
            tokio::time::sleep_until(look).await;
            // Not before EARLY_AFTER: over a few of the kernel's quota periods, so that
            // the share reported is the program's, not a burst of one period.
            let over = look.duration_since(started) >= EARLY_AFTER
                && (self.cpu_time().saturating_sub(cpu_before) > allowance
                    || written(self) - written_before > IDLE_WRITES);
            if over {
                over_early = true;
                break;
            }
            if look < end {
                continue;
            }
            let waited = clock.waited().min(most);
            let due = started + window + waited;
            if due <= end + MIN_CREDIT {
                break;
            }
            end = due;
        }
        let used = self.cpu_time().saturating_sub(cpu_before);
        let elapsed = started.elapsed();
        let waited = clock.waited().min(most);
        // The program's time watched: all of its window, or (over before the window
        // ended) the part it took.
        let available = elapsed.saturating_sub(waited).max(match over_early {
            true => EARLY_AFTER,
            false => window,
        });
        self.event(EventKind::Idle {
            window_ms: elapsed.as_millis() as u64,
            cpu_ms: used.as_millis() as u64,
            cpu_wait_ms: waited.as_millis() as u64,
        });
        let share = used.as_secs_f64() / available.as_secs_f64();
        let wrote = written(self) - written_before;
        if over_early || share > max_cpu || wrote > IDLE_WRITES {
            return Err(cx.fail(
                format!("the {} to wait idle (under {:.0} % of a CPU)", self.who(), max_cpu * 100.0),
                format!(
                    "it used {} ms of CPU time in {} ms ({}) and wrote {wrote} bytes meanwhile: a busy loop",
                    used.as_millis(),
                    available.as_millis(),
                    cpu_share(share)
                ),
            ));
        }
        Ok(())
    }
}

/// "85 % of a CPU", or for several processes busy at once "3.2 CPUs busy", never
/// "4034 % of a CPU".
fn cpu_share(share: f64) -> String {
    match share > 1.05 {
        true => format!("{share:.1} CPUs busy at once"),
        false => format!("{:.0} % of a CPU", share.min(1.0) * 100.0),
    }
}
