//! Raw spec → validated [`Spec`]: every check that serde cannot do, with all errors
//! collected so the instructor fixes a spec in one go.

use super::raw::*;
use super::*;
use extra::REGEX_SIZE_LIMIT;
use serde_spanned::Spanned;
use std::collections::{BTreeSet, HashSet};
use std::ops::Range;
use std::str::FromStr;

mod extra;
mod serde_errors;
mod udp;

/// Parses and validates spec text; `file` is only used in error messages. Every error
/// is reported, serde's (unknown keys, wrong types) and validation's, in file order.
pub fn parse(file: &Path, text: &str) -> Result<Spec, SpecErrors> {
    let mut parsed = serde_errors::parse(file, text);
    let mut errors = std::mem::take(&mut parsed.errors);
    let mut spec = None;
    // Past a table or an array element blanked, validation would name the wrong case
    // or step, or report the table's absence: the serde errors are reported alone.
    if let Some(raw) = parsed.raw.take().filter(|_| !parsed.cut) {
        let mut v = Validator {
            file,
            text,
            errors: Vec::new(),
            files: BTreeMap::new(),
            udp_targets: Vec::new(),
            vars: Vec::new(),
            file_refs: Vec::new(),
        };
        spec = v.spec(raw);
        errors.extend(v.errors.into_iter().filter(|e| !parsed.explains(&e.key)));
    }
    if errors.is_empty() {
        Ok(spec.expect("a spec is built whenever no error was recorded"))
    } else {
        // Stable: errors at one place keep the order they were found in.
        errors.sort_by_key(|e| (e.line, e.column));
        Err(SpecErrors(errors))
    }
}

struct Validator<'a> {
    file: &'a Path,
    text: &'a str,
    errors: Vec<SpecError>,
    /// Names a `{name}` in a step may stand for: [random] values (and `client`).
    vars: Vec<String>,
    /// Files named by the steps of the case being checked: (name, where, key).
    file_refs: Vec<(String, Range<usize>, String)>,
    /// `[files]`, for the datagram parts and protocol peers that name them.
    files: BTreeMap<String, Vec<u8>>,
    /// The targets whose program speaks UDP.
    udp_targets: Vec<Target>,
}

/// Every step action, for the "no action" help (a test checks it names each [`RawAction`]).
const STEP_ACTIONS: &str = "connect, accept, expect_accepted, send, expect, shutdown, close, expect_close, expect_idle, signal, expect_exit, expect_port_free, write_stdin, close_stdin, expect_stdout, expect_stderr, expect_nothing, expect_open, pause, expect_bytes, expect_file, expect_waiting, send_datagram, expect_datagram, expect_no_datagram, expect_transfer";

/// The action of a step, taken out of its [`RawStep`] with its raw payload: a step is
/// validated by a `match` on what is present, not on key names. `RawStep` stays the serde
/// (and JSON Schema) shape; [`RawAction::take_all`] builds these from it. The names, for
/// messages and key paths, are [`RawAction::name`]'s.
enum RawAction {
    Connect(Spanned<RawConnName>),
    Accept(Spanned<RawConnName>),
    // The unit variants (ExpectAccepted, ExpectPortFree, CloseStdin): presence is what
    // counts, their value is not read.
    ExpectAccepted,
    Send(Spanned<RawPayload>),
    Expect(Spanned<RawMatcher>),
    Shutdown(Spanned<String>),
    Close(Spanned<String>),
    ExpectClose(Spanned<String>),
    ExpectIdle(Spanned<RawIdle>),
    Signal(Spanned<String>),
    ExpectExit(Spanned<RawExit>),
    ExpectPortFree,
    WriteStdin(Spanned<RawPayload>),
    CloseStdin,
    ExpectStdout(Spanned<RawMatcher>),
    ExpectStderr(Spanned<RawMatcher>),
    /// The datagram steps (UDP), checked in [`udp`].
    Datagram(udp::RawDatagramStep),
    // The timing, stream and file steps (issue 13), checked in [`extra`].
    ExpectNothing(Spanned<RawWindow>),
    ExpectOpen(Spanned<RawWindow>),
    Pause(Spanned<RawWindow>),
    ExpectBytes(Spanned<RawBytesCheck>),
    ExpectFile(Spanned<RawFileCheck>),
    ExpectWaiting(Spanned<bool>),
}

impl RawAction {
    /// Takes every action out of `s`, leaving its modifiers (`conn`, `peer`, `within`,
    /// `hint`); in this order "this step has N actions (...)" lists them.
    fn take_all(s: &mut RawStep) -> Vec<RawAction> {
        use udp::RawDatagramStep as D;
        [
            s.connect.take().map(Self::Connect),
            s.accept.take().map(Self::Accept),
            s.expect_accepted.take().map(|_| Self::ExpectAccepted),
            s.send.take().map(Self::Send),
            s.expect.take().map(Self::Expect),
            s.shutdown.take().map(Self::Shutdown),
            s.close.take().map(Self::Close),
            s.expect_close.take().map(Self::ExpectClose),
            s.expect_idle.take().map(Self::ExpectIdle),
            s.signal.take().map(Self::Signal),
            s.expect_exit.take().map(Self::ExpectExit),
            s.expect_port_free.take().map(|_| Self::ExpectPortFree),
            s.write_stdin.take().map(Self::WriteStdin),
            s.close_stdin.take().map(|_| Self::CloseStdin),
            s.expect_stdout.take().map(Self::ExpectStdout),
            s.expect_stderr.take().map(Self::ExpectStderr),
            s.send_datagram.take().map(|d| Self::Datagram(D::Send(d))),
            s.expect_datagram
                .take()
                .map(|d| Self::Datagram(D::Expect(d))),
            s.expect_no_datagram
                .take()
                .map(|d| Self::Datagram(D::ExpectNone(d))),
            s.expect_transfer
                .take()
                .map(|d| Self::Datagram(D::ExpectTransfer(d))),
            s.expect_nothing.take().map(Self::ExpectNothing),
            s.expect_open.take().map(Self::ExpectOpen),
            s.pause.take().map(Self::Pause),
            s.expect_bytes.take().map(Self::ExpectBytes),
            s.expect_file.take().map(Self::ExpectFile),
            s.expect_waiting.take().map(Self::ExpectWaiting),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The step's key in the spec.
    fn name(&self) -> &'static str {
        match self {
            Self::Connect(_) => "connect",
            Self::Accept(_) => "accept",
            Self::ExpectAccepted => "expect_accepted",
            Self::Send(_) => "send",
            Self::Expect(_) => "expect",
            Self::Shutdown(_) => "shutdown",
            Self::Close(_) => "close",
            Self::ExpectClose(_) => "expect_close",
            Self::ExpectIdle(_) => "expect_idle",
            Self::Signal(_) => "signal",
            Self::ExpectExit(_) => "expect_exit",
            Self::ExpectPortFree => "expect_port_free",
            Self::WriteStdin(_) => "write_stdin",
            Self::CloseStdin => "close_stdin",
            Self::ExpectStdout(_) => "expect_stdout",
            Self::ExpectStderr(_) => "expect_stderr",
            Self::Datagram(d) => d.name(),
            Self::ExpectNothing(_) => "expect_nothing",
            Self::ExpectOpen(_) => "expect_open",
            Self::Pause(_) => "pause",
            Self::ExpectBytes(_) => "expect_bytes",
            Self::ExpectFile(_) => "expect_file",
            Self::ExpectWaiting(_) => "expect_waiting",
        }
    }

    /// The only target this action is for, if it is not for both.
    fn only_for(&self) -> Option<Target> {
        match self {
            Self::Connect(_)
            | Self::ExpectAccepted
            | Self::ExpectPortFree
            | Self::ExpectWaiting(_) => Some(Target::Server),
            Self::Accept(_) | Self::WriteStdin(_) | Self::CloseStdin => Some(Target::Client),
            _ => None,
        }
    }

    /// A TCP step, for "this step is TCP" messages.
    fn is_tcp_only(&self) -> bool {
        matches!(
            self,
            Self::Connect(_)
                | Self::Accept(_)
                | Self::ExpectAccepted
                | Self::Send(_)
                | Self::Expect(_)
                | Self::Shutdown(_)
                | Self::Close(_)
                | Self::ExpectClose(_)
        )
    }

    /// What a student reads instead of the matcher, for the steps that match data.
    fn label(&self) -> Option<String> {
        match self {
            Self::Expect(m) | Self::ExpectStdout(m) | Self::ExpectStderr(m) => {
                m.get_ref().label.clone()
            }
            _ => None,
        }
    }
}

impl<'a> Validator<'a> {
    fn err(
        &mut self,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        msg: impl Into<String>,
        help: Option<String>,
    ) {
        let mut e = SpecError::at(self.file, self.text, span, key, msg);
        if let Some(h) = help {
            e = e.with_help(h);
        }
        self.errors.push(e);
    }

    fn line_of(&self, span: &Range<usize>) -> usize {
        self.text[..span.start.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    fn duration(&mut self, s: &Spanned<String>, key: &str) -> Option<Duration> {
        match humantime::parse_duration(s.get_ref().trim()) {
            Ok(d) if d.is_zero() => {
                self.err(
                    Some(s.span()),
                    key,
                    "a duration of zero cannot be waited for",
                    Some("use a positive duration such as \"500ms\" or \"2s\"".into()),
                );
                None
            }
            Ok(d) => Some(d),
            Err(_) => {
                self.err(
                    Some(s.span()),
                    key,
                    format!("{:?} is not a duration", s.get_ref()),
                    Some("write a number and a unit, e.g. \"300ms\", \"2s\", \"1m\"".into()),
                );
                None
            }
        }
    }

    fn size(&mut self, s: &Spanned<String>, key: &str) -> Option<u64> {
        match parse_size(s.get_ref()) {
            Some(n) => Some(n),
            None => {
                self.err(
                    Some(s.span()),
                    key,
                    format!("{:?} is not a size", s.get_ref()),
                    Some("write a number and a unit, e.g. \"256MiB\", \"64KiB\", \"1GB\"".into()),
                );
                None
            }
        }
    }

    fn addr(&mut self, s: &Spanned<String>, key: &str) -> Option<SocketAddr> {
        match SocketAddr::from_str(s.get_ref().trim()) {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(
                    Some(s.span()),
                    key,
                    format!("{:?} is not an address with a port", s.get_ref()),
                    Some("write an IP address and a port, e.g. \"127.0.0.1:8888\"".into()),
                );
                None
            }
        }
    }

    fn visibility(&mut self, s: &Spanned<String>, key: &str) -> Option<Visibility> {
        let found = Visibility::ALL
            .into_iter()
            .find(|v| v.as_str() == s.get_ref().trim());
        if found.is_none() {
            let allowed: Vec<String> = Visibility::ALL
                .iter()
                .map(|v| format!("{:?}", v.as_str()))
                .collect();
            self.err(
                Some(s.span()),
                key,
                format!("unknown visibility {:?}", s.get_ref()),
                Some(format!(
                    "allowed (Gradescope's words): {}",
                    allowed.join(", ")
                )),
            );
        }
        found
    }

    /// `show = ["sent", "hint"]`: every item a known [`Detail`], each error at its item.
    fn show(&mut self, list: &Spanned<Vec<Spanned<String>>>, key: &str) -> Option<Show> {
        let mut out = std::collections::BTreeSet::new();
        let mut ok = true;
        for (i, item) in list.get_ref().iter().enumerate() {
            match Detail::parse(item.get_ref().trim()) {
                Some(d) => {
                    out.insert(d);
                }
                None => {
                    ok = false;
                    let allowed: Vec<String> = Detail::ALL
                        .iter()
                        .map(|d| format!("{:?}", d.as_str()))
                        .collect();
                    self.err(
                        Some(item.span()),
                        format!("{key}[{i}]"),
                        format!("{:?} is not a part of a failure report", item.get_ref()),
                        Some(format!("allowed: {}", allowed.join(", "))),
                    );
                }
            }
        }
        ok.then_some(Show(out))
    }

    fn spec(&mut self, raw: RawSpec) -> Option<Spec> {
        let assignment = raw.assignment.into_inner();
        let name = assignment.name.get_ref().trim().to_string();
        if name.is_empty() {
            self.err(
                Some(assignment.name.span()),
                "assignment.name",
                "the assignment needs a name",
                None,
            );
        }

        let mut defaults = Defaults::default();
        if let Some(d) = raw.defaults {
            let d = d.into_inner();
            if let Some(w) = &d.within {
                defaults.within = self
                    .duration(w, "defaults.within")
                    .unwrap_or(defaults.within);
            }
            if let Some(w) = &d.case_timeout {
                defaults.case_timeout = self
                    .duration(w, "defaults.case_timeout")
                    .unwrap_or(defaults.case_timeout);
            }
            if let Some(w) = &d.startup {
                defaults.startup = self
                    .duration(w, "defaults.startup")
                    .unwrap_or(defaults.startup);
            }
            if let Some(v) = &d.visibility {
                defaults.visibility = self
                    .visibility(v, "defaults.visibility")
                    .unwrap_or(defaults.visibility);
            }
            if let Some(s) = &d.show {
                defaults.show = self.show(s, "defaults.show").unwrap_or(defaults.show);
            }
        }

        let mut limits = Limits::default();
        if let Some(l) = raw.limits {
            let l = l.into_inner();
            if let Some(s) = &l.memory {
                limits.memory_bytes = self.size(s, "limits.memory").unwrap_or(limits.memory_bytes);
            }
            if let Some(s) = &l.output {
                limits.output_bytes = self.size(s, "limits.output").unwrap_or(limits.output_bytes);
            }
            if let Some(s) = &l.file_size {
                limits.file_size_bytes = self
                    .size(s, "limits.file_size")
                    .unwrap_or(limits.file_size_bytes);
            }
            if let Some(s) = &l.cpu_time {
                limits.cpu_time = self
                    .duration(s, "limits.cpu_time")
                    .unwrap_or(limits.cpu_time);
            }
            if let Some(s) = &l.send_buffer {
                limits.send_buffer = self.send_buffer(s);
            }
            if let Some(n) = &l.processes {
                if *n.get_ref() == 0 {
                    self.err(
                        Some(n.span()),
                        "limits.processes",
                        "at least 1 process is needed to run the program",
                        None,
                    );
                } else {
                    limits.processes = *n.get_ref();
                }
            }
            if let Some(n) = &l.open_files {
                if *n.get_ref() < 8 {
                    self.err(
                        Some(n.span()),
                        "limits.open_files",
                        "fewer than 8 open files cannot start an interpreter",
                        Some("use 64 or more".into()),
                    );
                } else {
                    limits.open_files = *n.get_ref();
                }
            }
        }

        let random = self.random(&raw.random);
        let spec_files = self.data_files(&raw.files, "files");
        // The bytes of the spec's files with fixed content, for the datagram parts and
        // protocol peers that name them (random ones are drawn per student, later).
        self.files = spec_files
            .iter()
            .filter(|f| matches!(f.source, super::extra::FileSource::Bytes(_)))
            .map(|f| (f.path.clone(), f.bytes().to_vec()))
            .collect();
        let server_files = raw
            .server
            .as_ref()
            .map(|p| self.data_files(&p.get_ref().files, "server.files"))
            .unwrap_or_default();
        let client_files = raw
            .client
            .as_ref()
            .map(|p| self.data_files(&p.get_ref().files, "client.files"))
            .unwrap_or_default();
        let server = raw.server.map(|p| self.program(p, Target::Server));
        let mut connects_to: SocketAddr = "127.0.0.1:8888".parse().unwrap();
        let mut must_match = MustMatch::default();
        let client = raw.client.map(|p| {
            let span = p.span();
            let p = p.into_inner();
            if let Some(m) = &p.must_match {
                must_match = *m.get_ref();
            }
            match &p.connects_to {
                Some(a) => {
                    if let Some(a) = self.addr(a, "client.connects_to") {
                        connects_to = a;
                    }
                }
                None => self.err(
                    Some(span.clone()),
                    "client.connects_to",
                    "a client section needs `connects_to`: where the reference server listens",
                    Some("add e.g. connects_to = \"127.0.0.1:8888\" (the address in the students' connect())".into()),
                ),
            }
            self.program(Spanned::new(span, p), Target::Client)
        });

        for (t, p) in [(Target::Server, &server), (Target::Client, &client)] {
            if p.as_ref().and_then(|p| p.as_ref()).map(|p| p.protocol) == Some(Protocol::Udp) {
                self.udp_targets.push(t);
            }
        }
        if raw.cases.is_empty() {
            self.err(
                None,
                "case",
                "the spec has no [[case]]",
                Some("add at least one [[case]] table with name, target and steps".into()),
            );
        }
        let mut names = HashSet::new();
        let mut cases = Vec::new();
        for (i, c) in raw.cases.into_iter().enumerate() {
            let span = c.span();
            let mut c = c.into_inner();
            if !names.insert(c.name.get_ref().clone()) {
                self.err(
                    Some(c.name.span()),
                    format!("case[{i}].name"),
                    format!("two cases are named {:?}", c.name.get_ref()),
                    Some(
                        "give every case its own name: reports and gradebooks use it as a key"
                            .into(),
                    ),
                );
            }
            let has = |t: Target| match t {
                Target::Server => server.is_some(),
                Target::Client => client.is_some(),
            };
            let share = server
                .as_ref()
                .and_then(|s| s.as_ref())
                .is_some_and(|s| s.share_process);
            let program_files = match c.target.get_ref().as_str() {
                "client" => &client_files,
                _ => &server_files,
            };
            let files = extra::merge_files(&spec_files, program_files);
            let for_each = c.for_each.take();
            let outer = self.vars.len();
            self.vars.extend(extra::for_each_keys(&for_each));
            let case = self.case(i, span, c, &defaults, &has, share, files);
            self.vars.truncate(outer);
            if let Some(case) = case {
                cases.extend(self.for_each(case, for_each, i));
            }
        }

        Some(Spec {
            name,
            title: assignment.title,
            defaults,
            limits,
            server: server.flatten(),
            client: client.flatten(),
            connects_to,
            must_match,
            cases,
            random,
            personalized: false,
        })
    }

    fn program(&mut self, p: Spanned<RawProgram>, target: Target) -> Option<Program> {
        let p = p.into_inner();
        let section = target.as_str();
        if p.command.get_ref().is_empty() {
            self.err(
                Some(p.command.span()),
                format!("{section}.command"),
                "the command is empty",
                Some("e.g. command = [\"python3\", \"{file}\"]".into()),
            );
        } else if p.build.is_none() && !names_file(p.command.get_ref()) {
            self.err(
                Some(p.command.span()),
                format!("{section}.command"),
                "the command never names the student's file",
                Some(
                    "put \"{file}\" where the student's file goes, e.g. [\"python3\", \"{file}\"]"
                        .into(),
                ),
            );
        }
        let build = self.build(&p.build, &p.build_limits, section);
        if let Some(fb) = &p.fallback_command {
            if fb.get_ref().is_empty() || !fb.get_ref().iter().any(|a| a.contains("{file}")) {
                self.err(
                    Some(fb.span()),
                    format!("{section}.fallback_command"),
                    "the fallback command must name the student's file",
                    Some("e.g. fallback_command = [\"python2\", \"{file}\"]".into()),
                );
            }
        }
        let files = p.file.get_ref();
        let files = match files {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        };
        if files.is_empty() {
            self.err(
                Some(p.file.span()),
                format!("{section}.file"),
                "no file name or pattern given",
                Some("e.g. file = [\"tcp_server.py\", \"*server*.py\"]".into()),
            );
        }
        for f in &files {
            if let Err(e) = glob::Pattern::new(f) {
                self.err(
                    Some(p.file.span()),
                    format!("{section}.file"),
                    format!("{f:?} is not a valid pattern: {e}"),
                    None,
                );
            }
        }
        let listen = match (&p.listen, target) {
            (Some(a), Target::Server) => self.addr(a, "server.listen"),
            (Some(a), Target::Client) => {
                self.err(
                    Some(a.span()),
                    "client.listen",
                    "`listen` belongs in [server]",
                    Some(
                        "for clients, `connects_to` says where the reference server listens".into(),
                    ),
                );
                None
            }
            (None, _) => None,
        };
        if let (Some(m), Target::Server) = (&p.must_match, target) {
            self.err(
                Some(m.span()),
                "server.must_match",
                "`must_match` belongs in [client]: it says what of `connects_to` a client's connect() must match",
                None,
            );
        }
        if let (Some(a), Target::Server) = (&p.connects_to, target) {
            self.err(
                Some(a.span()),
                "server.connects_to",
                "`connects_to` belongs in [client]",
                Some(
                    "for servers, `listen` (optional) says where the student's server listens"
                        .into(),
                ),
            );
        }
        let share_process = match (&p.share_process, target) {
            (Some(b), Target::Server) => *b.get_ref(),
            (Some(b), Target::Client) => {
                self.err(
                    Some(b.span()),
                    "client.share_process",
                    "`share_process` belongs in [server]: only server cases can share a process",
                    Some(
                        "a client connects once and exits: each client case starts it anew".into(),
                    ),
                );
                false
            }
            (None, _) => false,
        };
        let protocol = self.protocol(&p.protocol, section);
        if let (Some(b), Protocol::Udp) = (&p.share_process, protocol) {
            self.err(
                Some(b.span()),
                format!("{section}.share_process"),
                "`share_process` is for TCP servers: a UDP server's cases each get a process of their own",
                Some("remove `share_process`".into()),
            );
        }
        Some(Program {
            protocol,
            share_process,
            warm_start: p.warm_start.is_none_or(|b| *b.get_ref()),
            command: p.command.into_inner(),
            fallback_command: p.fallback_command.map(Spanned::into_inner),
            files,
            listen,
            env: p.env,
            build,
        })
    }

    /// A side's `build` and `build_limits`: the build must name the student's file
    /// (`{file}` or `{stem}`), and limits come only with a build.
    fn build(
        &mut self,
        command: &Option<Spanned<Vec<String>>>,
        limits: &Option<Spanned<super::raw::RawBuildLimits>>,
        section: &str,
    ) -> Option<super::Build> {
        let key = format!("{section}.build_limits");
        let Some(command) = command else {
            if let Some(l) = limits {
                self.err(
                    Some(l.span()),
                    key,
                    "`build_limits` without a `build`",
                    Some("add the build command, e.g. build = [\"gcc\", \"-o\", \"server\", \"{file}\"]".into()),
                );
            }
            return None;
        };
        if !names_file(command.get_ref()) {
            self.err(
                Some(command.span()),
                format!("{section}.build"),
                "the build never names the student's file",
                Some("put \"{file}\" where the student's file goes, e.g. [\"gcc\", \"-O2\", \"-o\", \"server\", \"{file}\"] or [\"javac\", \"{file}\"]".into()),
            );
        }
        let mut out = super::BuildLimits::default();
        if let Some(l) = limits {
            let l = l.get_ref();
            if let Some(t) = &l.time {
                out.time = self.duration(t, &format!("{key}.time")).unwrap_or(out.time);
            }
            if let Some(m) = &l.memory {
                out.memory_bytes = self
                    .size(m, &format!("{key}.memory"))
                    .unwrap_or(out.memory_bytes);
            }
            if let Some(o) = &l.output {
                out.output_bytes = self
                    .size(o, &format!("{key}.output"))
                    .unwrap_or(out.output_bytes);
            }
            if let Some(n) = &l.processes {
                if *n.get_ref() == 0 {
                    self.err(
                        Some(n.span()),
                        format!("{key}.processes"),
                        "at least 1 process is needed to run the build",
                        None,
                    );
                } else {
                    out.processes = *n.get_ref();
                }
            }
        }
        Some(super::Build {
            command: command.get_ref().clone(),
            limits: out,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn case(
        &mut self,
        i: usize,
        span: Range<usize>,
        c: RawCase,
        defaults: &Defaults,
        has: &dyn Fn(Target) -> bool,
        share_default: bool,
        files: Vec<DataFile>,
    ) -> Option<Case> {
        let key = format!("case[{i}]");
        let target = match c.target.get_ref().as_str() {
            "server" => Target::Server,
            "client" => Target::Client,
            other => {
                self.err(Some(c.target.span()), format!("{key}.target"), format!("unknown target {other:?}"), Some("allowed: \"server\" (the grader connects to the student's server) or \"client\" (the student's client connects to the grader)".into()));
                return None;
            }
        };
        if !has(target) {
            self.err(
                Some(c.target.span()),
                format!("{key}.target"),
                format!("this case grades the {target}, but the spec has no [{target}] section"),
                Some(format!("add a [{target}] table with `command` and `file`")),
            );
        }
        let informational = c
            .informational
            .as_ref()
            .map(|b| *b.get_ref())
            .unwrap_or(false);
        let points = match (&c.points, informational) {
            (Some(p), true) if *p.get_ref() > 0 => {
                self.err(
                    Some(p.span()),
                    format!("{key}.points"),
                    "an informational case has no points",
                    Some("remove `points`, or remove `informational = true`".into()),
                );
                0
            }
            (Some(p), _) => *p.get_ref(),
            (None, true) => 0,
            (None, false) => 1,
        };
        let timeout = c
            .timeout
            .as_ref()
            .and_then(|t| self.duration(t, &format!("{key}.timeout")))
            .unwrap_or(defaults.case_timeout);
        let steps_span = c.steps.span();
        let raw_steps = c.steps.into_inner();
        if raw_steps.is_empty() {
            self.err(
                Some(steps_span),
                format!("{key}.steps"),
                "a case needs at least one step",
                None,
            );
        }
        let visibility = match &c.visibility {
            Some(v) => self
                .visibility(v, &format!("{key}.visibility"))
                .unwrap_or(defaults.visibility),
            None => defaults.visibility,
        };
        let show = match &c.show {
            Some(s) => self
                .show(s, &format!("{key}.show"))
                .unwrap_or_else(|| defaults.show.clone()),
            None => defaults.show.clone(),
        };
        let udp = self.udp_case(&key, target, c.faults, c.peer);
        let clients = self.clients(c.clients.as_ref(), target, &key);
        let mut checker = StepChecker::new(self, &key, target, defaults);
        checker.protocol_peer = udp.peer.is_some();
        let steps = checker.steps(raw_steps);
        let steps = extra::for_clients(steps, clients);
        let files = extra::merge_files(&files, &self.data_files(&c.files, &format!("{key}.files")));
        self.check_file_refs(&files);
        let _ = span;
        let ends = super::ends_process(&steps);
        let share_process = match &c.fresh_process {
            Some(f) if !*f.get_ref() => {
                if target != Target::Server {
                    self.err(
                        Some(f.span()),
                        format!("{key}.fresh_process"),
                        "only server cases can share a process: a client case always starts the client anew",
                        Some("remove `fresh_process`".into()),
                    );
                    false
                } else if let Some(step) = ends {
                    let what = match step.action {
                        Action::Signal { .. } => "signals the server",
                        Action::ExpectExit(_) => "waits for the server to exit",
                        _ => "checks the port once the server exited",
                    };
                    self.err(
                        Some(f.span()),
                        format!("{key}.fresh_process"),
                        format!("this case cannot share a server process: its step on line {} {what}, and the next case needs the server running", step.line),
                        Some("remove `fresh_process = false` (the case then runs on a process of its own), or remove that step".into()),
                    );
                    false
                } else {
                    true
                }
            }
            Some(_) => false,
            None => share_default && target == Target::Server && ends.is_none(),
        };
        Some(Case {
            share_process,
            name: c.name.into_inner(),
            target,
            points,
            informational: informational || points == 0,
            hint: c.hint,
            timeout,
            visibility,
            show,
            steps,
            udp,
            args: c.args,
            env: c.env,
            stdin: c.stdin.map(String::into_bytes),
            files,
        })
    }
}

/// Checks the steps of one case in order, tracking which connections are open, so
/// that an impossible order ("send before connect", "send after close") is a spec
/// error and not a confusing failure at grading time.
struct StepChecker<'v, 'a> {
    v: &'v mut Validator<'a>,
    key: String,
    target: Target,
    defaults: &'v Defaults,
    open: Vec<ConnName>,
    closed: BTreeSet<ConnName>,
    half_closed: BTreeSet<ConnName>,
    connections: usize,
    exited: bool,
    /// The case has a built-in protocol peer (UDP) instead of datagram steps.
    protocol_peer: bool,
}

impl<'v, 'a> StepChecker<'v, 'a> {
    fn new(v: &'v mut Validator<'a>, key: &str, target: Target, defaults: &'v Defaults) -> Self {
        StepChecker {
            v,
            key: key.to_string(),
            target,
            defaults,
            open: Vec::new(),
            closed: BTreeSet::new(),
            half_closed: BTreeSet::new(),
            connections: 0,
            exited: false,
            protocol_peer: false,
        }
    }

    fn steps(mut self, raw: Vec<Spanned<RawStep>>) -> Vec<Step> {
        let mut out = Vec::new();
        for (j, s) in raw.into_iter().enumerate() {
            let span = s.span();
            let key = format!("{}.steps[{j}]", self.key);
            if let Some(step) = self.step(&key, span, s.into_inner()) {
                out.push(step);
            }
        }
        out
    }

    fn err(
        &mut self,
        span: Range<usize>,
        key: &str,
        msg: impl Into<String>,
        help: impl Into<Option<String>>,
    ) {
        self.v.err(Some(span), key, msg, help.into());
    }

    /// Picks the connection a step acts on: the one it names, else the last opened.
    fn conn(
        &mut self,
        span: &Range<usize>,
        key: &str,
        named: &Option<Spanned<String>>,
        what: &str,
        allow_closed: bool,
    ) -> Option<ConnName> {
        let name = match named {
            Some(n) => n.get_ref().clone(),
            None => match self.open.last() {
                Some(n) => n.clone(),
                None => {
                    let open_step = if self.target == Target::Server {
                        "{ connect = {} }"
                    } else {
                        "{ accept = {} }"
                    };
                    let why = if self.closed.is_empty() {
                        "no connection is open yet"
                    } else {
                        "every connection is closed by then"
                    };
                    self.err(
                        span.clone(),
                        key,
                        format!("this step {what}, but {why}"),
                        format!("add {open_step} before it"),
                    );
                    return None;
                }
            },
        };
        if self.closed.contains(&name) && !allow_closed {
            self.err(
                span.clone(),
                key,
                format!("this step {what} on connection {name:?}, which an earlier step closed"),
                Some("open a new connection, or move the close after this step".into()),
            );
            return None;
        }
        if !self.open.contains(&name) && !self.closed.contains(&name) {
            let known = if self.open.is_empty() {
                "none".to_string()
            } else {
                self.open.join(", ")
            };
            self.err(
                named.as_ref().map(|n| n.span()).unwrap_or(span.clone()),
                &format!("{key}.conn"),
                format!("no connection named {name:?} is open here"),
                Some(format!("open connections: {known}")),
            );
            return None;
        }
        Some(name)
    }

    fn matcher(&mut self, m: &Spanned<RawMatcher>, key: &str) -> Option<Matcher> {
        let span = m.span();
        let r = m.get_ref();
        let mut found = Vec::new();
        if r.any == Some(true) {
            found.push(Matcher::Any);
        }
        if r.any == Some(false) {
            self.err(
                span.clone(),
                &format!("{key}.any"),
                "`any = false` matches nothing",
                Some("use `any = true`, or another matcher".into()),
            );
        }
        if let Some(s) = &r.exact {
            found.push(Matcher::Exact(s.as_bytes().to_vec()));
        }
        if let Some(s) = &r.exact_hex {
            match parse_hex(s) {
                Some(b) => found.push(Matcher::Exact(b)),
                None => self.err(
                    span.clone(),
                    &format!("{key}.exact_hex"),
                    format!("{s:?} is not hex bytes"),
                    Some("write pairs of hex digits, spaces allowed: \"de ad be ef\"".into()),
                ),
            }
        }
        if let Some(s) = &r.contains {
            found.push(Matcher::Contains(s.as_bytes().to_vec()));
        }
        if let Some(s) = &r.not_contains {
            found.push(Matcher::NotContains(s.as_bytes().to_vec()));
        }
        if let Some(s) = &r.regex {
            let s = &self.regex_template(s);
            match regex::bytes::RegexBuilder::new(s)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
            {
                Ok(re) => found.push(Matcher::Regex(re)),
                Err(e) => {
                    let msg = e.to_string();
                    let last = msg.lines().last().unwrap_or("").trim().to_string();
                    if matches!(e, regex::Error::CompiledTooBig(_)) {
                        self.err(span.clone(), &format!("{key}.regex"), format!("this regex is too large to compile (over {} MiB compiled)", REGEX_SIZE_LIMIT >> 20), Some("to check a count, a length or a whole stream, use { expect_bytes = { count = N } } (or at_least, sha256, equals_file): it checks as the bytes stream by".into()));
                        return None;
                    }
                    self.err(span.clone(), &format!("{key}.regex"), format!("{s:?} is not a valid regex: {last}"), Some("the syntax is Rust's regex crate (like Python's re, without look-around)".into()));
                    return None;
                }
            }
        }
        match found.len() {
            1 => found.pop(),
            0 => {
                self.err(
                    span,
                    key,
                    "no matcher given",
                    Some(
                        "use one of: any = true, exact, exact_hex, contains, not_contains, regex"
                            .into(),
                    ),
                );
                None
            }
            _ => {
                self.err(
                    span,
                    key,
                    "several matchers in one expectation",
                    Some("use one matcher per step; add a step for each further check".into()),
                );
                None
            }
        }
    }

    /// The bytes of a plain payload: text, or { text | hex, repeat }.
    fn plain_payload(&mut self, p: &Spanned<RawPayload>, key_a: &str) -> Option<Vec<u8>> {
        Some(match p.get_ref() {
            RawPayload::Text(t) => t.as_bytes().to_vec(),
            RawPayload::Table(t) => {
                let base = match (&t.text, &t.hex) {
                    (Some(text), None) => text.as_bytes().to_vec(),
                    (None, Some(hex)) => {
                        match parse_hex(hex) {
                            Some(b) => b,
                            None => {
                                self.err(
                                p.span(),
                                &format!("{key_a}.hex"),
                                format!("{hex:?} is not hex bytes"),
                                Some("write pairs of hex digits, spaces allowed: \"de ad be ef\"".into()),
                            );
                                return None;
                            }
                        }
                    }
                    _ => {
                        self.err(p.span(), key_a, "give exactly one of `text` or `hex`", None);
                        return None;
                    }
                };
                base.repeat(t.repeat.unwrap_or(1).max(1) as usize)
            }
        })
    }

    /// `connect`/`accept`: the new connection's name (given, else "main" for the first
    /// and "connN" after) and its options.
    fn open_conn(
        &mut self,
        raw: &Spanned<RawConnName>,
        key_a: &str,
    ) -> Option<(ConnName, ConnOpts)> {
        self.connections += 1;
        let name = match raw.get_ref() {
            RawConnName::Name(n) => n.clone(),
            RawConnName::Table(t) => t.name.clone().unwrap_or_else(|| {
                if self.connections == 1 {
                    "main".to_string()
                } else {
                    format!("conn{}", self.connections)
                }
            }),
        };
        if self.open.contains(&name) || self.closed.contains(&name) {
            self.err(
                raw.span(),
                key_a,
                format!("a connection named {name:?} was already opened in this case"),
                Some("give each connection its own name, e.g. connect = \"second\"".into()),
            );
            return None;
        }
        self.open.push(name.clone());
        let opts = self.conn_opts(raw, key_a)?;
        Some((name, opts))
    }

    fn step(&mut self, key: &str, span: Range<usize>, mut s: RawStep) -> Option<Step> {
        let line = self.v.line_of(&span);
        let raw = match <[RawAction; 1]>::try_from(RawAction::take_all(&mut s)) {
            Ok([raw]) => raw,
            Err(none) if none.is_empty() => {
                self.err(
                    span,
                    key,
                    "this step has no action",
                    Some(format!("a step has exactly one of: {STEP_ACTIONS}")),
                );
                return None;
            }
            Err(many) => {
                let names: Vec<&str> = many.iter().map(RawAction::name).collect();
                self.err(
                    span,
                    key,
                    format!(
                        "this step has {} actions ({}); a step does one thing",
                        many.len(),
                        names.join(", ")
                    ),
                    Some(
                        "split it into one step per action, in the order they should happen".into(),
                    ),
                );
                return None;
            }
        };
        let action_name = raw.name();
        let key_a = format!("{key}.{action_name}");
        if self.protocol_mismatch(&span, &key_a, &raw) {
            return None;
        }

        match (raw.only_for(), self.target) {
            (Some(Target::Server), Target::Client) => {
                self.err(span, &key_a, format!("`{action_name}` is for server targets; this case grades a client"), Some("for clients the grader listens: use { accept = {} } to take the student's connection".into()));
                return None;
            }
            (Some(Target::Client), Target::Server) => {
                self.err(
                    span,
                    &key_a,
                    format!("`{action_name}` is for client targets; this case grades a server"),
                    Some("for servers the grader connects: use { connect = {} }".into()),
                );
                return None;
            }
            _ => {}
        }

        let is_datagram = matches!(raw, RawAction::Datagram(_));
        let label = raw.label();
        let action = match raw {
            RawAction::Connect(raw) => {
                let (conn, opts) = self.open_conn(&raw, &key_a)?;
                Action::Connect { conn, opts }
            }
            RawAction::Accept(raw) => {
                let (conn, opts) = self.open_conn(&raw, &key_a)?;
                Action::Accept { conn, opts }
            }
            RawAction::ExpectAccepted => {
                if self.connections == 0 {
                    self.err(
                        span,
                        &key_a,
                        "nothing to accept: no connection was made before this step",
                        Some("add { connect = {} } before it".into()),
                    );
                    return None;
                }
                Action::ExpectAccepted
            }
            RawAction::Send(p) => {
                let conn = self.conn(&span, &key_a, &s.conn, "sends", false)?;
                if self.half_closed.contains(&conn) {
                    self.err(span, &key_a, format!("this step sends on connection {conn:?} after shutting down its write side"), Some("move the shutdown after the last send".into()));
                    return None;
                }
                if let Some(action) = self.send_extra(&p, &key_a, &conn) {
                    action?
                } else {
                    let bytes = self.plain_payload(&p, &key_a)?;
                    if bytes.is_empty() {
                        self.err(p.span(), &key_a, "sending nothing does nothing on a TCP socket", Some("send at least one byte; to close, use { shutdown = \"write\" } or { close = \"fin\" }".into()));
                        return None;
                    }
                    Action::Send { conn, bytes }
                }
            }
            RawAction::Expect(m) => {
                let conn = self.conn(&span, &key_a, &s.conn, "waits for data", false)?;
                let matcher = self.matcher(&m, &key_a)?;
                Action::Expect { conn, matcher }
            }
            RawAction::Shutdown(how) => {
                if how.get_ref() != "write" {
                    self.err(
                        how.span(),
                        &key_a,
                        format!("unknown shutdown {:?}", how.get_ref()),
                        Some("allowed: \"write\" (half-close: send FIN, keep reading)".into()),
                    );
                    return None;
                }
                let conn = self.conn(&span, &key_a, &s.conn, "shuts down", false)?;
                self.half_closed.insert(conn.clone());
                Action::Shutdown { conn }
            }
            RawAction::Close(how) => {
                let kind = match how.get_ref().as_str() {
                    "fin" => CloseKind::Fin,
                    "rst" => CloseKind::Rst,
                    other => {
                        self.err(how.span(), &key_a, format!("unknown close {other:?}"), Some("allowed: \"fin\" (close(): orderly) or \"rst\" (abortive: SO_LINGER 0, sends RST)".into()));
                        return None;
                    }
                };
                let conn = self.conn(&span, &key_a, &s.conn, "closes", false)?;
                self.open.retain(|c| c != &conn);
                self.closed.insert(conn.clone());
                Action::Close { conn, kind }
            }
            RawAction::ExpectClose(how) => {
                let kind = match how.get_ref().as_str() {
                    "fin" => ExpectedClose::Fin,
                    "rst" => ExpectedClose::Rst,
                    "any" => ExpectedClose::Any,
                    other => {
                        self.err(
                            how.span(),
                            &key_a,
                            format!("unknown close kind {other:?}"),
                            Some(
                                "allowed: \"fin\" (orderly close), \"rst\" (reset), \"any\"".into(),
                            ),
                        );
                        return None;
                    }
                };
                let conn = self.conn(&span, &key_a, &s.conn, "waits for the close", false)?;
                self.open.retain(|c| c != &conn);
                self.closed.insert(conn.clone());
                Action::ExpectClose { conn, kind }
            }
            RawAction::ExpectIdle(raw) => {
                if self.exited {
                    self.err(
                        span,
                        &key_a,
                        "the program has already exited at this step",
                        Some("check idleness before expect_exit".into()),
                    );
                    return None;
                }
                let (w, max_cpu) = match raw.get_ref() {
                    RawIdle::Window(w) => (w.clone(), 0.1),
                    RawIdle::Table(t) => (t.window.clone(), t.max_cpu.unwrap_or(0.1)),
                };
                if !(max_cpu > 0.0 && max_cpu <= 1.0) {
                    self.err(
                        raw.span(),
                        &format!("{key_a}.max_cpu"),
                        format!("max_cpu {max_cpu} is not a share of one CPU"),
                        Some("use a number above 0 and at most 1, e.g. 0.1 for 10 %".into()),
                    );
                    return None;
                }
                let window = self.v.duration(&Spanned::new(raw.span(), w), &key_a)?;
                Action::ExpectIdle { window, max_cpu }
            }
            RawAction::Signal(sig) => {
                if self.exited {
                    self.err(
                        span,
                        &key_a,
                        "the program has already exited at this step",
                        Some("send the signal before expect_exit".into()),
                    );
                    return None;
                }
                Action::Signal {
                    signal: self.signal(&sig, &key_a)?,
                }
            }
            RawAction::ExpectExit(raw) => {
                let e = raw.get_ref();
                let exp = match (e.code, &e.signal, e.success) {
                    (None, None, None) => ExitExpectation::Any,
                    (Some(c), None, None) => ExitExpectation::Code(c),
                    (None, None, Some(true)) => ExitExpectation::Success,
                    (None, Some(sig), None) => ExitExpectation::Signal(
                        self.signal(&Spanned::new(raw.span(), sig.clone()), &key_a)?,
                    ),
                    _ => {
                        self.err(
                            raw.span(),
                            &key_a,
                            "give at most one of `code`, `signal`, `success = true`",
                            Some("{} accepts any exit".into()),
                        );
                        return None;
                    }
                };
                self.exited = true;
                Action::ExpectExit(exp)
            }
            RawAction::ExpectPortFree => {
                if !self.exited {
                    self.err(
                        span,
                        &key_a,
                        "the port can only be free once the program has exited",
                        Some("put { expect_exit = {} } before this step".into()),
                    );
                    return None;
                }
                Action::ExpectPortFree
            }
            RawAction::WriteStdin(p) => {
                if matches!(p.get_ref(), RawPayload::Table(t) if t.pieces.is_some() || t.file.is_some() || t.delay.is_some() || t.length_prefix.is_some() || t.piece_size.is_some())
                {
                    self.err(p.span(), &key_a, "stdin takes text, or { text | hex, repeat }", Some("a long line: { text = \"x\", repeat = 524288 }, then write_stdin = \"\\n\"".into()));
                    return None;
                }
                Action::WriteStdin {
                    bytes: self.plain_payload(&p, &key_a)?,
                }
            }
            RawAction::CloseStdin => Action::CloseStdin,
            RawAction::ExpectStdout(m) => Action::ExpectOutput {
                stream: Stream::Stdout,
                matcher: self.matcher(&m, &key_a)?,
            },
            RawAction::ExpectStderr(m) => Action::ExpectOutput {
                stream: Stream::Stderr,
                matcher: self.matcher(&m, &key_a)?,
            },
            RawAction::Datagram(d) => {
                let has_peer = self.protocol_peer;
                self.udp_action(d, &key_a, &span, &s.peer, has_peer)?
            }
            RawAction::ExpectNothing(w) => {
                let window = self.window(&w, &key_a)?;
                let conn = self.conn(&span, &key_a, &s.conn, "waits for silence", false)?;
                Action::ExpectNothing { conn, window }
            }
            RawAction::ExpectOpen(w) => {
                let window = self.window(&w, &key_a)?;
                let conn = self.conn(&span, &key_a, &s.conn, "watches the connection", false)?;
                Action::ExpectOpen { conn, window }
            }
            RawAction::Pause(w) => Action::Pause {
                window: self.window(&w, &key_a)?,
            },
            RawAction::ExpectWaiting(b) => self.expect_waiting(&b, &key_a)?,
            RawAction::ExpectBytes(raw) => self.expect_bytes(&raw, &s.conn, &span, &key_a)?,
            RawAction::ExpectFile(raw) => self.expect_file(&raw, &key_a)?,
        };

        // Modifiers must make sense for the action.
        if let Some(c) = &s.conn {
            let takes_conn = action.conn().is_some()
                && !matches!(action, Action::Connect { .. } | Action::Accept { .. });
            if !takes_conn {
                self.err(
                    c.span(),
                    &format!("{key}.conn"),
                    format!("`{action_name}` does not act on a connection"),
                    Some("remove `conn`; to name a new connection write connect = \"name\"".into()),
                );
            }
        }
        if let (Some(p), false) = (&s.peer, is_datagram) {
            self.err(
                p.span(),
                &format!("{key}.peer"),
                format!("`{action_name}` does not use a reference socket"),
                Some("`peer` goes on send_datagram, expect_datagram, expect_no_datagram".into()),
            );
        }
        let within = match &s.within {
            Some(w) => {
                let waits = action.waits() || matches!(action, Action::ExpectPortFree);
                let waits = waits && !matches!(action, Action::ExpectFile { .. });
                if !waits {
                    self.err(w.span(), &format!("{key}.within"), format!("`{action_name}` does not wait, so `within` has no effect"), Some("use `within` on connect, accept, expect*, expect_close and expect_exit steps".into()));
                }
                self.v
                    .duration(w, &format!("{key}.within"))
                    .unwrap_or(self.defaults.within)
            }
            // A client needs the interpreter's start-up before it connects.
            None if matches!(action, Action::Accept { .. }) => self.defaults.startup,
            // The same for a UDP client's first datagram.
            None if self.target == Target::Client
                && matches!(action, Action::ExpectDatagram { .. })
                && {
                    self.connections += 1;
                    self.connections == 1
                } =>
            {
                self.defaults.startup
            }
            None => self.defaults.within,
        };
        Some(Step {
            action,
            within,
            line,
            hint: s.hint,
            label,
            client: 0,
        })
    }

    fn signal(&mut self, s: &Spanned<String>, key: &str) -> Option<Signal> {
        let name = s.get_ref().trim().to_ascii_uppercase();
        let full = if name.starts_with("SIG") {
            name
        } else {
            format!("SIG{name}")
        };
        match nix::sys::signal::Signal::from_str(&full) {
            Ok(sig) => Some(Signal(sig)),
            Err(_) => {
                self.err(
                    s.span(),
                    key,
                    format!("unknown signal {:?}", s.get_ref()),
                    Some("e.g. \"SIGINT\" (Ctrl-C), \"SIGTERM\", \"SIGHUP\", \"SIGKILL\"".into()),
                );
                None
            }
        }
    }
}

/// "de ad BE ef" or "deadbeef" → bytes.
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

/// "256MiB", "64 KiB", "1GB", "4096" → bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Whether a command names the student's file: `{file}`, or `{stem}` (its name without
/// the extension, a Java class).
fn names_file(command: &[String]) -> bool {
    command
        .iter()
        .any(|a| a.contains("{file}") || a.contains("{stem}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_spec(step: &str) -> String {
        format!(
            "[assignment]\nname = \"x\"\n[client]\ncommand = [\"python3\", \"{{file}}\"]\nfile = \"c.py\"\nconnects_to = \"127.0.0.1:8888\"\n[[case]]\nname = \"a\"\ntarget = \"client\"\nsteps = [{{ accept = {{}} }}, {step}]\n"
        )
    }

    #[test]
    fn write_stdin_takes_text_or_repeated_text_but_no_pieces() {
        let spec = parse(
            Path::new("t.toml"),
            &client_spec(r#"{ write_stdin = { text = "ab", repeat = 3 } }"#),
        )
        .unwrap();
        match &spec.cases[0].steps[1].action {
            Action::WriteStdin { bytes } => assert_eq!(bytes, b"ababab"),
            other => panic!("{other:?}"),
        }
        let err = parse(
            Path::new("t.toml"),
            &client_spec(r#"{ write_stdin = { pieces = ["a", "b"] } }"#),
        )
        .unwrap_err();
        assert_eq!(err.0.len(), 1, "{err}");
        assert!(err.0[0].message.contains("stdin takes text"), "{err}");
    }

    #[test]
    fn every_action_is_taken_once_and_listed_in_step_actions() {
        // One line: a TOML inline table cannot span lines.
        let step = [
            "connect = {}",
            "accept = {}",
            "expect_accepted = true",
            "send = \"x\"",
            "expect = { any = true }",
            "shutdown = \"write\"",
            "close = \"fin\"",
            "expect_close = \"fin\"",
            "expect_idle = \"1s\"",
            "signal = \"SIGINT\"",
            "expect_exit = {}",
            "expect_port_free = true",
            "write_stdin = \"x\"",
            "close_stdin = true",
            "expect_stdout = { any = true }",
            "expect_stderr = { any = true }",
            "send_datagram = \"x\"",
            "expect_datagram = { any = true }",
            "expect_no_datagram = \"1s\"",
            "expect_transfer = { complete = true }",
            "expect_nothing = \"1s\"",
            "expect_open = \"1s\"",
            "pause = \"1s\"",
            "expect_bytes = { count = 1 }",
            "expect_file = { path = \"a\", text = \"b\" }",
            "expect_waiting = true",
        ]
        .join(", ");
        let step = format!("{{ {step} }}");
        let err = parse(Path::new("t.toml"), &client_spec(&step)).unwrap_err();
        assert_eq!(err.0.len(), 1, "{err}");
        let message = &err.0[0].message;
        let listed = message
            .strip_prefix("this step has 26 actions (")
            .and_then(|m| m.strip_suffix("); a step does one thing"))
            .unwrap_or_else(|| panic!("{message}"));
        let mut taken: Vec<&str> = listed.split(", ").collect();
        let mut documented: Vec<&str> = STEP_ACTIONS.split(", ").collect();
        taken.sort_unstable();
        documented.sort_unstable();
        assert_eq!(taken, documented);
    }
}
