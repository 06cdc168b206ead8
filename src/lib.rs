//! sockgrade grades students' TCP socket homework by running it: it starts the
//! student's server or client as a child process, drives it with a reference peer over
//! real sockets, and reports, case by case, what the program did and what to change.
//!
//! # Layout
//! Data flows one way: spec → plan → run (events) → reports.
//!
//! - [`spec`]: the TOML test spec: raw serde types, validated into domain types with
//!   errors that name file, line, column and key;
//! - [`plan`]: which cases run, printable before anything runs (`sockgrade check`);
//! - [`sandbox`]: the student's side: work copy, network namespace, cgroup, process,
//!   fork server;
//! - [`peer`]: the reference peer's side of a TCP connection (segment-tolerant reads,
//!   FIN vs RST vs nothing);
//! - [`engine`]: plays one case's steps and turns them into a verdict and transcript;
//! - [`runner`]: schedules cases in parallel and emits events;
//! - [`outcome`]: verdicts, reasons, transcripts: what reports read;
//! - [`visibility`]: what a student may see (hidden cases, failure details), shared by
//!   the Gradescope report and `run --student`;
//! - [`report`]: one module per output format (text, json, gradescope, junit, github);
//! - [`check`]: `check --against`: a spec tested on reference solutions;
//! - [`init`]: the starter spec;
//! - [`text`]: showing bytes to people safely (UTF-8, GBK, binary), and bounded buffers
//!   of received bytes;
//! - `sys`: raw system calls used in more than one place (pidfd, poll, signals);
//! - [`bulk`]: a whole class: discovery, archives, journal, gradebook, shards;
//! - [`cli`]: the command line and exit codes.

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
pub mod visibility;
