//! Warm start (src/sandbox/warm.rs) must not be visible to the student's program: a
//! child of the fork server gets the sandbox and the view of Python that a cold
//! `python3 FILE` gets, and ends the way it would. Each test runs the same program
//! both ways through the library and compares.

mod common;
use common::root;
use serde_json::Value;
use sockgrade::sandbox::process::{Launch, StudentProcess};
use sockgrade::sandbox::{Host, IsolationRequest, Sandbox};
use sockgrade::spec::{Spec, Target};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

struct Ran {
    stdout: String,
    stderr: String,
    status: ExitStatus,
    /// The work folder it ran in, to take out of what it printed.
    workdir: String,
}

fn spec() -> Spec {
    let spec = Spec::load(&root().join("specs/tcp-basics.toml")).expect("the shipped spec");
    sockgrade::runner::interpreter::resolve_spec(&spec)
}

/// Runs `file` of `dir` as the spec's client program would be started, warm or cold.
async fn run(host: &Host, dir: &Path, file: &str, warm: bool) -> Ran {
    static N: AtomicU32 = AtomicU32::new(0);
    let spec = spec();
    let mut program = spec.program(Target::Client).unwrap().clone();
    program.files = vec![file.to_string()];
    let id = format!("warm-test-{}", N.fetch_add(1, Ordering::Relaxed));
    let sandbox = Sandbox::prepare(host, dir, &program, &spec.limits, &id).expect("a sandbox");
    let argv = sandbox.argv(&program);
    let launch = Launch {
        argv: argv.clone(),
        cwd: sandbox.workdir.path().to_path_buf(),
        env: sandbox.env(host, &program),
        netns: sandbox.netns.as_ref().map(|n| n.as_raw_fd()),
        cgroup: sandbox.cgroup.as_ref().map(|c| c.joiner()),
        limits: &spec.limits,
        rlimit_memory: !sandbox.cgroup.as_ref().is_some_and(|c| c.memory_limited()),
        rlimit_processes: !sandbox.cgroup.as_ref().is_some_and(|c| c.process_limited()),
        confine: sandbox.confinement.clone(),
    };
    let mut p = if warm {
        let server = host
            .warm
            .server(Path::new(&argv[0]), &launch.env)
            .await
            .expect("a fork server for python3");
        StudentProcess::spawn_warm(&launch, &server)
            .await
            .expect("a warm start")
    } else {
        StudentProcess::spawn(launch).expect("a cold start")
    };
    p.close_stdin();
    let status = tokio::time::timeout(Duration::from_secs(30), p.exited())
        .await
        .expect("the program ends");
    p.terminate(sandbox.cgroup.as_ref(), Duration::from_millis(100))
        .await;
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    Ran {
        stdout: text(p.stdout.snapshot().text()),
        stderr: text(p.stderr.snapshot().text()),
        status,
        workdir: sandbox
            .confinement
            .as_ref()
            .map(|c| c.workdir().display().to_string())
            .unwrap_or_else(|| sandbox.workdir.path().display().to_string()),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Both ways, with the work folder's path replaced by `<work>`.
fn both(dir: &Path, file: &str) -> (Ran, Ran) {
    let host = Host::detect(IsolationRequest::Auto).expect("a host");
    runtime().block_on(async {
        let warm = run(&host, dir, file, true).await;
        let cold = run(&host, dir, file, false).await;
        (warm, cold)
    })
}

fn clean(r: &Ran) -> (String, String) {
    let name = Path::new(&r.workdir)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let clean = |s: &str| s.replace(&r.workdir, "<work>").replace(&name, "<work>");
    (clean(&r.stdout), clean(&r.stderr))
}

#[test]
fn a_warm_child_sees_what_a_cold_start_sees() {
    let (warm, cold) = both(&root().join("fixtures/probe_process"), "probe.py");
    let parse = |r: &Ran| -> Value {
        let (out, err) = clean(r);
        assert!(r.status.success(), "the probe failed: {err}");
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let mut w = parse(&warm);
    let mut c = parse(&cold);
    // Namespaces: a case's own, whichever way it started (when this machine makes them).
    let ours = |ns: &str| std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
    let host = Host::detect(IsolationRequest::Auto).unwrap();
    for ns in ["net", "mnt"] {
        let key = format!("{ns}ns");
        let here = ours(ns).display().to_string();
        for r in [&mut w, &mut c] {
            let theirs = r[&key].take();
            if host.isolation != sockgrade::sandbox::Isolation::None {
                assert_ne!(theirs.as_str(), Some(here.as_str()), "{key}: {theirs}");
            }
        }
    }
    let (wo, co) = (w.as_object().unwrap(), c.as_object().unwrap());
    let differ: Vec<String> = wo
        .keys()
        .filter(|k| wo.get(*k) != co.get(*k))
        .map(|k| format!("{k}:\n  warm {}\n  cold {}", wo[k], co[k]))
        .collect();
    assert!(
        differ.is_empty(),
        "warm and cold differ:\n{}",
        differ.join("\n")
    );
    // And the sandbox is really there (the same assertions hold cold, compared above).
    if host.confine {
        assert_eq!(w["root"], false);
        assert_eq!(w["status"]["CapEff"], "0000000000000000");
        assert_eq!(w["status"]["NoNewPrivs"], "1");
        assert_eq!(w["writes_cwd"], true);
        assert_ne!(w["writes_usr"], true);
    }
    assert_eq!(
        w["fds"],
        serde_json::json!([0, 1, 2, 3]),
        "stdio and the listing's own fd"
    );
}

fn program(name: &str, source: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("sockgrade-warm-test-")
        .tempdir_in(root().join("target"))
        .unwrap();
    std::fs::write(dir.path().join(name), source).unwrap();
    dir
}

#[test]
fn a_warm_child_ends_as_a_cold_one_does() {
    let cases: &[(&str, &str)] = &[
        ("error", "def f():\n    raise ValueError('boom')\nprint('before')\nf()\n"),
        ("ctrl_c", "import time\nprint('up')\nraise KeyboardInterrupt\n"),
        ("exit_code", "import sys\nsys.exit(3)\n"),
        ("exit_builtin", "print('bye')\nexit('leaving')\n"),
        ("python2", "print 'hello'\n"),
        (
            "thread_outlives_main",
            // The thread prints once the main thread is over (its traceback printed).
            "import threading\n\
             def late():\n    threading.main_thread().join()\n    print('thread done', flush=True)\n\
             threading.Thread(target=late).start()\nraise RuntimeError('main fails first')\n",
        ),
        (
            "own_excepthook",
            "import sys\n\
             def hook(t, v, tb):\n    print('hooked', t.__name__, tb.tb_frame.f_code.co_filename.endswith('own_excepthook.py'))\n\
             sys.excepthook = hook\nraise OSError('x')\n",
        ),
        ("atexit", "import atexit\natexit.register(lambda: print('atexit ran'))\nprint('main')\n"),
        // A warm child does not free the server's objects on its way out (what only
        // frees memory), but what a program can see of the teardown still happens:
        (
            "del_at_exit",
            "class A:\n    def __del__(self):\n        print('del ran')\na = A()\nprint('main')\n",
        ),
        (
            "cycle_collected_at_exit",
            "class A:\n    def __del__(self):\n        print('cycle freed')\n\
             a = A()\na.me = a\ndel a\nimport gc\ngc.disable()\nprint('main')\n",
        ),
        (
            "buffer_flushed_at_exit",
            "import io\nw = io.BufferedWriter(io.FileIO(1, 'w', closefd=False))\n\
             w.write(b'written at exit\\n')\nprint('main', flush=True)\n",
        ),
        (
            "own_module_cleared",
            "import sys, types\nm = types.ModuleType('helper')\n\
             exec('class B:\\n    def __del__(self):\\n        print(\"helper object freed\")\\nb = B()', m.__dict__)\n\
             sys.modules['helper'] = m\ndel m\nprint('main')\n",
        ),
    ];
    for (name, source) in cases {
        let file = format!("{name}.py");
        let dir = program(&file, source);
        let (warm, cold) = both(dir.path(), &file);
        assert_eq!(
            (warm.status.code(), warm.status.signal()),
            (cold.status.code(), cold.status.signal()),
            "{name}: exit status"
        );
        assert_eq!(clean(&warm), clean(&cold), "{name}: output");
        // What the cold run shows is the reference; these say it is the expected one.
        match *name {
            "ctrl_c" => assert_eq!(warm.status.signal(), Some(libc::SIGINT), "{name}"),
            "exit_code" => assert_eq!(warm.status.code(), Some(3), "{name}"),
            "thread_outlives_main" => assert!(warm.stdout.contains("thread done"), "{name}"),
            "atexit" => assert!(warm.stdout.contains("atexit ran"), "{name}"),
            "del_at_exit" => assert_eq!(warm.stdout, "main\ndel ran\n", "{name}"),
            "cycle_collected_at_exit" => assert!(warm.stdout.contains("cycle freed"), "{name}"),
            "buffer_flushed_at_exit" => {
                assert_eq!(warm.stdout, "main\nwritten at exit\n", "{name}")
            }
            "own_module_cleared" => assert!(warm.stdout.contains("helper object freed"), "{name}"),
            "own_excepthook" => assert_eq!(warm.stdout, "hooked OSError True\n", "{name}"),
            "python2" => assert!(warm.stderr.contains("SyntaxError"), "{name}"),
            _ => {}
        }
        assert!(
            !warm.stderr.contains("sockgrade warm start") && !warm.stderr.contains("<string>"),
            "{name}: the server's frames show: {}",
            warm.stderr
        );
    }
}

#[test]
fn warm_children_do_not_share_random_state() {
    let dir = program(
        "rand.py",
        "import random, tempfile, uuid\nprint(random.random(), uuid.uuid4())\n",
    );
    let host = Host::detect(IsolationRequest::Auto).unwrap();
    let (a, b) = runtime().block_on(async {
        (
            run(&host, dir.path(), "rand.py", true).await,
            run(&host, dir.path(), "rand.py", true).await,
        )
    });
    assert!(
        a.status.success() && b.status.success(),
        "{}{}",
        a.stderr,
        b.stderr
    );
    assert_ne!(a.stdout, b.stdout, "two children drew the same numbers");
}

#[test]
fn cases_start_cold_once_the_fork_server_is_gone() {
    let host = Host::detect(IsolationRequest::Auto).unwrap();
    let spec = spec();
    let case = spec
        .cases
        .iter()
        .find(|c| c.name == "accepts a connection")
        .unwrap()
        .clone();
    let good = root().join("fixtures/good");
    let started_warm = |r: &sockgrade::outcome::CaseResult| {
        r.transcript.iter().find_map(|e| match &e.kind {
            sockgrade::outcome::EventKind::Started { warm, .. } => Some(*warm),
            _ => None,
        })
    };
    runtime().block_on(async {
        let first =
            sockgrade::engine::run_case(&host, &spec, &case, &good, "warm-death-1", None).await;
        assert_eq!(
            first.status,
            sockgrade::outcome::Status::Passed,
            "{:?}",
            first.reason
        );
        assert_eq!(started_warm(&first), Some(true));
        // The server dies behind the grader's back (as under the OOM killer).
        for server in host.warm.started() {
            // SAFETY: a signal to the server's pid, which is not reaped before its
            // thread sees the socket close.
            unsafe { libc::kill(server.pid as i32, libc::SIGKILL) };
        }
        for n in 2..4 {
            let r = sockgrade::engine::run_case(
                &host,
                &spec,
                &case,
                &good,
                &format!("warm-death-{n}"),
                None,
            )
            .await;
            assert_eq!(
                r.status,
                sockgrade::outcome::Status::Passed,
                "{:?}",
                r.reason
            );
            assert_eq!(
                started_warm(&r),
                Some(false),
                "case {n} after the server died"
            );
            let notes: Vec<String> = r
                .transcript
                .iter()
                .filter_map(|e| match &e.kind {
                    sockgrade::outcome::EventKind::Note { text } => Some(text.clone()),
                    _ => None,
                })
                .collect();
            assert!(
                notes.iter().any(|t| t.starts_with("started cold:")),
                "case {n} says why it started cold: {notes:?}"
            );
        }
    });
}
