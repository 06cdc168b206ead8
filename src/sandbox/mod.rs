//! Everything about the student's side of a case: where it runs and how it is contained.
//!
//! - [`workdir`]: a throw-away copy of the submission, and finding the student's file;
//! - [`scratch`]: where work folders live (one folder per grader, swept when its owner
//!   died), bounded in bytes and files, and removed without recursion;
//! - [`netns`]: a network namespace per case (loopback, any address local, redirects);
//! - [`pcap`]: a packet capture of a case's namespace (`--pcap`);
//! - [`cgroup`]: a cgroup per case (limits, CPU accounting, kill everything);
//! - [`confine`]: a minimal root, PID and IPC namespaces, a uid of its own, no capabilities,
//!   built on [`root`] (the case's filesystem) and [`caseinit`] (the process holding the
//!   case's namespaces);
//! - [`seccomp`]: the system calls a student program may not make (socket families,
//!   namespaces, kernel surfaces);
//! - [`process`]: spawning with a clean start, output capture, signals, termination;
//! - [`warm`]: a fork server that starts Python 3 programs without a fresh interpreter;
//! - [`capture`]: flood-safe capture of stdout/stderr;
//! - [`sockets`]: the program's sockets, inspected through copies of its descriptors;
//! - [`proc_net`]: reading sockets and processes from `/proc`;
//! - [`userns`]: a user namespace for the grader, so that an unprivileged user gets the
//!   same namespaces as root.
//!
//! [`Host`] is what this machine allows, detected once per run; [`Sandbox`] is one
//! case's box built from it.

pub(crate) mod caps;
pub mod capture;
pub(crate) mod caseinit;
pub mod cgroup;
pub mod confine;
pub(crate) mod launch;
pub mod netns;
pub mod pcap;
pub mod proc_net;
pub mod process;
pub(crate) mod root;
pub mod scratch;
pub mod seccomp;
pub mod sockets;
pub mod userns;
pub mod warm;
pub mod workdir;

use crate::spec::{Limits, Program};
use std::path::{Path, PathBuf};

/// How much a case is isolated, as asked on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IsolationRequest {
    /// The best this machine allows.
    Auto,
    /// Host loopback, one case at a time.
    None,
    /// A network namespace per case.
    Netns,
    /// A network namespace, a cgroup, a minimal root, PID and IPC namespaces, a uid and a
    /// seccomp filter per case.
    Full,
}

/// The isolation actually used (a result type: reports and journals carry it).
pub use crate::outcome::Isolation;

/// What this machine allows, detected once.
pub struct Host {
    pub isolation: Isolation,
    pub cgroups: Option<cgroup::Cgroups>,
    /// Whether student processes get a read-only filesystem and a uid of their own.
    pub confine: bool,
    /// Whether client connections to any address and port can be redirected (nft).
    pub redirect: bool,
    /// Said once to the user when the request could not be met.
    pub notes: Vec<String>,
    /// PATH for student programs.
    pub path_env: String,
    /// Fork servers for Python 3 programs, started on first use ([`warm`]).
    pub warm: warm::WarmStarts,
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("--isolation {asked} needs {what}, which this machine does not allow: {why}")]
    Unavailable {
        asked: &'static str,
        what: &'static str,
        why: String,
    },
}

impl Host {
    pub fn detect(req: IsolationRequest) -> Result<Host, HostError> {
        let mut notes = Vec::new();
        let netns = match req {
            IsolationRequest::None => Err("not asked for".to_string()),
            _ => netns::NetNs::create().map(|_| ()).map_err(|e| {
                // Why the user namespace that would have allowed it is missing, too.
                match userns::state() {
                    userns::UserNs::Refused(userns_why) => format!("{e}; {userns_why}"),
                    _ => e.to_string(),
                }
            }),
        };
        let cgroups = match req {
            IsolationRequest::Full | IsolationRequest::Auto if netns.is_ok() => {
                cgroup::Cgroups::detect()
            }
            _ => Err("not asked for".to_string()),
        };
        let isolation = match (req, &netns, &cgroups) {
            (IsolationRequest::None, _, _) => Isolation::None,
            (IsolationRequest::Netns | IsolationRequest::Full, Err(why), _) => {
                return Err(HostError::Unavailable {
                    asked: if req == IsolationRequest::Netns {
                        "netns"
                    } else {
                        "full"
                    },
                    what:
                        "network namespaces (root, CAP_SYS_ADMIN, or unprivileged user namespaces)",
                    why: why.clone(),
                })
            }
            (IsolationRequest::Full, Ok(()), Err(why)) => {
                return Err(HostError::Unavailable {
                    asked: "full",
                    what: "a writable cgroup hierarchy",
                    why: why.clone(),
                })
            }
            (IsolationRequest::Netns, Ok(()), _) => Isolation::Netns,
            (_, Ok(()), Ok(_)) => Isolation::Full,
            // Without root, the user namespace's note says it, with what it gives.
            (IsolationRequest::Auto, Ok(()), Err(_)) if userns::active() => Isolation::Netns,
            (IsolationRequest::Auto, Ok(()), Err(why)) => {
                notes.push(format!("no cgroups ({why}): limits are per process (rlimits) and a daemon that leaves its process group may outlive its case"));
                Isolation::Netns
            }
            (IsolationRequest::Auto, Err(why), _) => {
                notes.push(format!(
                    "cannot create network namespaces ({why}); cases run one at a time on this machine's loopback, so student programs must use free ports and addresses of this machine. Run as root, or allow unprivileged user namespaces, for isolation."
                ));
                Isolation::None
            }
        };
        let confinement = confine::Confinement::available();
        let confine = match (isolation, confinement.clone()) {
            (Isolation::Full, Ok(())) => true,
            // Without root and without a cgroup, the case's PID namespace is what stops
            // everything the case started, and its root what hides the machine.
            (Isolation::Netns, Ok(())) if req == IsolationRequest::Auto && userns::active() => true,
            (Isolation::Full, Err(why)) if req == IsolationRequest::Full => {
                return Err(HostError::Unavailable {
                    asked: "full",
                    what: "PID, IPC and mount namespaces, pivot_root and uid changes",
                    why,
                })
            }
            (Isolation::Full, Err(why)) => {
                notes.push(format!("student programs run with the grader's uid, see the whole machine (no minimal root, PID or IPC namespace, seccomp filter) and can write outside their folder ({why})"));
                false
            }
            _ => false,
        };
        if let Some(cg) = &cgroups
            .as_ref()
            .ok()
            .filter(|_| isolation == Isolation::Full)
        {
            if let Some(note) = cg.slow_moves_note() {
                notes.push(note);
            }
        }
        if let (userns::UserNs::Entered { uid, .. }, true) = (userns::state(), isolation.parallel())
        {
            let limits = match (&cgroups, isolation) {
                (Ok(cg), Isolation::Full) => userns::Limits::Cgroup {
                    memory: cg.supports_memory_limit(),
                    processes: cg.supports_process_limit(),
                },
                (Ok(_), _) => userns::Limits::Rlimits("--isolation netns asks for none"),
                (Err(why), _) => userns::Limits::Rlimits(why),
            };
            let confined = match (&confinement, confine) {
                (_, true) => Ok(()),
                (Err(why), false) => Err(why.as_str()),
                (Ok(()), false) => Err("not asked for"),
            };
            notes.insert(0, userns::note(*uid, confined, limits));
        }
        let redirect = isolation != Isolation::None && netns::nft_available();
        if isolation != Isolation::None && !redirect {
            notes.push("`nft` is not installed: a spec with `must_match = \"nothing\"` cannot take a student client's connection to another port here, and its cases say so (install Debian's nftables)".into());
        }
        Ok(Host {
            isolation,
            confine,
            cgroups: cgroups.ok(),
            redirect,
            notes,
            path_env: std::env::var("PATH")
                .unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
            warm: warm::WarmStarts::default(),
        })
    }
}

/// A case may use one CPU's worth of time at most: student servers and clients wait on
/// sockets, and a spinning one (a `while True` on `b''`, 60 busy processes) then takes
/// one CPU at most instead of the machine. Within that, cases share the CPUs equally
/// (one cgroup each), so a program that behaves gets its turn beside spinning ones.
pub const CASE_CPU_PERCENT: u32 = 100;

/// One case's box: a copy of the submission, and its network and cgroup if isolated.
pub struct Sandbox {
    pub workdir: scratch::WorkFolder,
    /// The student's file, relative to `workdir`.
    pub file: PathBuf,
    pub netns: Option<netns::NetNs>,
    pub cgroup: Option<cgroup::CaseCgroup>,
    pub confinement: Option<std::sync::Arc<confine::Confinement>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Workdir(#[from] workdir::WorkdirError),
    #[error("could not set up the case's {what}: {source}")]
    Setup {
        what: &'static str,
        source: std::io::Error,
    },
}

impl Sandbox {
    pub fn prepare(
        host: &Host,
        submission: &Path,
        program: &Program,
        limits: &Limits,
        case_id: &str,
    ) -> Result<Sandbox, SandboxError> {
        let file = workdir::find_file(submission, &program.files)?;
        // Bounded where the grader may mount in the machine's mount namespace: as root
        // (what isolates a case needs root too), not in a user namespace of its own,
        // whose capabilities do not reach the host's mounts (a plain folder there).
        let may_mount = !matches!(userns::state(), userns::UserNs::Entered { .. });
        let dir = scratch::WorkFolder::new(host.isolation != Isolation::None && may_mount)
            .map_err(|e| SandboxError::Setup {
                what: "work folder",
                source: e,
            })?;
        workdir::copy_submission(submission, dir.path())?;
        let netns = match host.isolation {
            Isolation::None => None,
            _ => Some(netns::NetNs::create().map_err(|e| SandboxError::Setup {
                what: "network namespace",
                source: e,
            })?),
        };
        let cgroup = match &host.cgroups {
            Some(cgs) => Some(
                cgs.create_case(
                    case_id,
                    &cgroup::Limits {
                        memory_bytes: Some(limits.memory_bytes),
                        max_processes: Some(limits.processes),
                        cpu_percent: Some(CASE_CPU_PERCENT),
                    },
                )
                .map_err(|e| SandboxError::Setup {
                    what: "cgroup",
                    source: e,
                })?,
            ),
            None => None,
        };
        let confinement = match host.confine {
            true => Some(std::sync::Arc::new(
                confine::Confinement::prepare(
                    dir.path(),
                    &[Path::new(
                        program.command.first().map_or("", |c| c.as_str()),
                    )],
                )
                .map_err(|e| SandboxError::Setup {
                    what: "confinement",
                    source: e,
                })?,
            )),
            false => None,
        };
        Ok(Sandbox {
            workdir: dir,
            file,
            netns,
            cgroup,
            confinement,
        })
    }

    /// Runs `f` where the case's sockets live: inside its namespace, or right here.
    pub fn in_net<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::io::Result<T> {
        match &self.netns {
            Some(ns) => ns.run_in(f),
            None => Ok(f()),
        }
    }

    /// The environment of a student program: minimal, and nothing of the grader's.
    pub fn env(&self, host: &Host, program: &Program) -> Vec<(String, String)> {
        let mut env = vec![
            ("PATH".to_string(), host.path_env.clone()),
            (
                "HOME".to_string(),
                self.workdir.path().display().to_string(),
            ),
            ("LANG".to_string(), "C.UTF-8".to_string()),
            // A terminal's encoding: Python 2 writes to a pipe in ASCII without it, and
            // `print u'中文'`, which works in the student's terminal, would crash here.
            ("PYTHONIOENCODING".to_string(), "utf-8".to_string()),
            ("PYTHONUNBUFFERED".to_string(), "1".to_string()),
            ("PYTHONDONTWRITEBYTECODE".to_string(), "1".to_string()),
            ("TERM".to_string(), "dumb".to_string()),
            // The case's uid has no passwd entry: getpass.getuser() reads these.
            ("USER".to_string(), "student".to_string()),
            ("LOGNAME".to_string(), "student".to_string()),
        ];
        // pyenv shims need their root to find the interpreter.
        if let Ok(root) = std::env::var("PYENV_ROOT") {
            env.push(("PYENV_ROOT".into(), root));
        }
        for (k, v) in &program.env {
            env.retain(|(key, _)| key != k);
            env.push((k.clone(), v.clone()));
        }
        env
    }

    /// The command line with `{file}` (the student's file) and `{stem}` (its name
    /// without the extension: the class `java` runs) filled in.
    pub fn argv(&self, program: &Program) -> Vec<String> {
        fill(&program.command, &self.file)
    }
}

/// `command` with `{file}` and `{stem}` filled in for the student's `file` (relative to
/// the work folder).
pub fn fill(command: &[String], file: &Path) -> Vec<String> {
    let path = file.display().to_string();
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    command
        .iter()
        .map(|a| a.replace("{file}", &path).replace("{stem}", &stem))
        .collect()
}
