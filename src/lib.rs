//! sockgrade grades students' TCP socket homework by running it: it starts the
//! student's server or client as a child process, drives it with a reference peer over
//! real sockets, and reports, case by case, what the program did and what to change.
//!
//! # Layout
//! Data flows one way: spec → plan → grading (events) → results → reports. See
//! `docs/architecture.md` for the path of one `run` and one `grade`.
//!
//! - [`spec`]: the TOML test spec: raw serde types, validated into domain types with
//!   errors that name file, line, column and key;
//! - [`plan`]: which cases run, printable before anything runs (`sockgrade check`);
//! - [`sandbox`]: the student's side: work copy, network namespace, cgroup, process,
//!   fork server;
//! - [`peer`]: the reference peer's side of a TCP connection (segment-tolerant reads,
//!   FIN vs RST vs nothing);
//! - `udp_peer`: the reference side of a UDP case (datagrams whole, with addresses; the
//!   faults it plays; the built-in stop-and-wait peer);
//! - [`engine`]: plays one case's steps and turns them into a verdict and transcript
//!   (`engine/`: the case context, the one deadline race, the steps, the shared server,
//!   the verdict);
//! - [`runner`]: grades one submission ([`runner::Grading::grade`], the one path of
//!   `run`, `check --against` and `grade`): the interpreter ([`runner::interpreter`],
//!   Python 2 fallback), cases in parallel, events as they start and finish;
//! - [`outcome`]: what grading produces and reports read: verdicts, reasons,
//!   transcripts, the events of a run ([`outcome::events`]) and a class's records and
//!   gradebook rows ([`outcome::class`]);
//! - [`visibility`]: what a student may see (hidden cases, failure details), shared by
//!   the Gradescope report and `run --student`;
//! - [`report`]: one module per output format (text, json, gradescope, junit, github,
//!   the class's html and summary); reports read results, never run anything;
//! - [`check`]: `check --against`: a spec tested on reference solutions;
//! - [`init`]: the starter spec;
//! - [`text`]: showing bytes to people safely (UTF-8, GBK, binary), and bounded buffers
//!   of received bytes;
//! - `sys`: raw system calls used in more than one place (pidfd, poll, signals);
//! - [`bulk`]: a whole class, as a library: discovery, archives, journal, gradebook,
//!   shards, merge;
//! - [`cli`]: one module per command: arguments, printing, and errors turned into exit
//!   codes in one place.
//!
//! Layering (a module imports only modules of its layer or below): `text`, `sys`, `spec`
//! → `outcome`, `visibility`, `plan` → `sandbox`, `peer`, `udp_peer` → `engine` → `runner` →
//! `report`, `check`, `init` → `bulk` → `cli`.

pub mod bulk;
pub mod check;
pub mod cli;
pub mod engine;
pub mod init;
pub mod outcome;
pub mod peer;
pub mod plan;
pub mod report;
pub mod runner;
pub mod sandbox;
pub mod spec;
mod sys;
pub mod text;
pub(crate) mod udp_peer;
pub mod visibility;
