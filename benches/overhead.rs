//! Grader overhead per case, against the bare cost of starting and stopping the same
//! Python process (`cargo bench --bench overhead`).
//!
//! - bare: spawn `python3 tcp_server.py`, connect once it listens (retrying the
//!   connect, as a hand-written harness would), kill it, reap it;
//! - sockgrade: one case ("accepts a connection": connect, check accept()) through the
//!   engine, with the isolation this machine allows (namespace, cgroup, work copy),
//!   started cold (`warm_start = false`: the same `python3 tcp_server.py` as bare) and
//!   warm (forked from the fork server, `src/sandbox/warm.rs`).
//!
//! The overhead is the median of the paired differences (cold case − bare). Each program runs in its own fresh
//! network namespace for the bare runs too when possible, so both pay the same port.

use sockgrade::sandbox::{Host, IsolationRequest};
use sockgrade::spec::Spec;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 30;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bare_once(dir: &Path, python: &str) -> Duration {
    let t = Instant::now();
    let mut child = Command::new(python)
        .arg("tcp_server.py")
        .current_dir(dir)
        .env("PYTHONUNBUFFERED", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    // Retry the connect until the server listens: the cheapest way to know.
    let addr = "127.0.0.1:8888".parse().unwrap();
    loop {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(50)).is_ok() {
            break;
        }
        std::thread::yield_now();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    t.elapsed()
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let submission = root.join("fixtures/good");
    let spec = Spec::load(&root.join("specs/tcp-basics.toml")).expect("the shipped spec");
    // Both sides run the interpreter the grader resolves once per run (past pyenv's
    // shim): what is compared is the grader's work, not the shim's.
    let spec = sockgrade::runner::interpreter::resolve_spec(&spec);
    let python = spec.server.as_ref().unwrap().command[0].clone();
    let case = spec
        .cases
        .iter()
        .find(|c| c.name == "accepts a connection")
        .unwrap()
        .clone();

    let mut cold_spec = spec.clone();
    cold_spec.server.as_mut().unwrap().warm_start = false;
    let host = Host::detect(IsolationRequest::Auto).expect("host");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // Bare and graded runs alternate, so a busy moment of the machine weighs on both
    // alike, and the overhead is the median of the paired differences.
    let (mut bare, mut cold, mut warm, mut diffs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut cpu_cold, mut cpu_warm) = (Duration::ZERO, Duration::ZERO);
    let case_run = |spec: &Spec, name: String, cpu: &mut Duration| {
        let cpu_before = own_cpu();
        let t = Instant::now();
        let r = rt.block_on(sockgrade::engine::run_case(
            &host,
            spec,
            &case,
            &submission,
            &name,
            None,
        ));
        let took = t.elapsed();
        *cpu += own_cpu() - cpu_before;
        assert_eq!(
            r.status,
            sockgrade::outcome::Status::Passed,
            "{:?}",
            r.reason
        );
        took
    };
    // The fork server starts on first use: once, before measuring.
    let mut warm_up = Duration::ZERO;
    case_run(&spec, "bench-warm-up".into(), &mut warm_up);
    for i in 0..RUNS {
        let b = bare_once(&submission, &python);
        let c = case_run(&cold_spec, format!("bench-cold{i}"), &mut cpu_cold);
        let w = case_run(&spec, format!("bench-warm{i}"), &mut cpu_warm);
        bare.push(b);
        cold.push(c);
        warm.push(w);
        diffs.push(c.as_secs_f64() - b.as_secs_f64());
    }
    diffs.sort_by(|a, b| a.total_cmp(b));
    // The grader's own CPU time (not its children's): what it costs the machine per
    // case, whatever else the machine is doing.
    let per = |d: Duration| (d / RUNS as u32).as_secs_f64() * 1e3;
    let ms = |v: Vec<Duration>| median(v).as_secs_f64() * 1e3;
    println!(
        "isolation: {}; interpreter: {python}",
        host.isolation.as_str()
    );
    println!("medians of {RUNS} runs each, alternating:");
    println!(
        "bare python3 start + connect + stop:          {:>7.1} ms",
        ms(bare)
    );
    println!(
        "sockgrade one case, cold start:               {:>7.1} ms",
        ms(cold)
    );
    println!(
        "sockgrade one case, warm start (fork server): {:>7.1} ms",
        ms(warm)
    );
    println!(
        "grader overhead per case (cold − bare):       {:>7.1} ms",
        diffs[diffs.len() / 2] * 1e3
    );
    println!(
        "grader's own CPU time per case, cold / warm:  {:>7.1} / {:.1} ms",
        per(cpu_cold),
        per(cpu_warm)
    );
}

/// User + system CPU time of this process (all threads), without its children.
fn own_cpu() -> Duration {
    // SAFETY: getrusage fills the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}
