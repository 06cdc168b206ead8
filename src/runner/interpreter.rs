//! Which interpreter runs a student's file: resolved once per class, and picked once per
//! submission (Python 3, or the spec's `fallback_command` for Python 2 code).
//!
//! Resolution: on machines with pyenv, `python3` on PATH is a bash shim that costs tens of
//! milliseconds per start before the real interpreter does anything, and a class run
//! starts thousands of processes. The shim is resolved to the real binary once, at the
//! start of the run, so every case starts the interpreter directly. A shim that cannot
//! answer (`python2` exists in pyenv but is not in the selected versions) is resolved by
//! looking in pyenv's versions.
//!
//! Choice: ~10 % of real submissions are Python 2 (`print x`). Running them under
//! python3 fails every case with the same SyntaxError, which grades the interpreter, not
//! the socket code. Before grading, the file is *compiled* (not run) by the primary
//! interpreter; when that fails and the fallback's interpreter compiles it, the fallback
//! runs every case of that submission, and the report says so. A file that compiles with
//! neither keeps the primary command, so its cases report the real SyntaxError.

use crate::spec::{Program, Spec, Target};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use wait_timeout::ChildExt;

/// Compiles `sys.argv[1]` without running it; valid Python 2 and 3.
const COMPILE: &str = "import sys; compile(open(sys.argv[1], 'rb').read(), sys.argv[1], 'exec')";
/// The same for every path read from stdin, a line each, answered with a line each:
/// `ok`, `err <Error>: <message>` (a syntax error) or `unknown`. Valid Python 2 and 3.
const COMPILE_LOOP: &str = "import sys
while 1:
    p = sys.stdin.readline()
    if not p:
        break
    p = p[:-1]
    try:
        compile(open(p, 'rb').read(), p, 'exec')
        r = 'ok'
    except SyntaxError:
        e = sys.exc_info()[1]
        r = 'err %s: %s' % (type(e).__name__, e.msg)
    except Exception:
        r = 'unknown'
    sys.stdout.write(r.replace('\\n', ' ') + '\\n')
    sys.stdout.flush()
";
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Replaces a bare program name by the real executable (through pyenv shims). Returns
/// the command unchanged when it cannot do better: the case then reports the failure.
pub fn resolve(command: &[String]) -> Vec<String> {
    let mut out = command.to_vec();
    if let Some(first) = out.first_mut() {
        if let Some(p) = resolve_program(first) {
            *first = p.display().to_string();
        }
    }
    out
}

/// The real executable behind `name`, if it can be found. Asked once per name and run
/// (a pyenv shim's answer takes ~70 bash processes and a quarter of a second; a spec
/// names `python3` for both sides).
pub fn resolve_program(name: &str) -> Option<PathBuf> {
    static SEEN: std::sync::Mutex<Vec<(String, Option<PathBuf>)>> =
        std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, found)) = seen.iter().find(|(n, _)| n == name) {
        return found.clone();
    }
    let found = find_program(name);
    seen.push((name.to_string(), found.clone()));
    found
}

fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    let on_path = std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))?;
    if !on_path.parent().is_some_and(|d| d.ends_with("shims")) {
        return Some(on_path);
    }
    // A pyenv shim: ask pyenv, then look in its versions (newest first).
    if let Ok(out) = Command::new("pyenv")
        .args(["which", name])
        .stderr(Stdio::null())
        .output()
    {
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && is_executable(&p) {
            return Some(p);
        }
    }
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| on_path.parent()?.parent().map(Path::to_path_buf))?;
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root.join("versions"))
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| is_executable(p))
        .collect();
    versions.sort_by_key(|p| version_key(p));
    versions.pop()
}

fn version_key(p: &Path) -> Vec<u64> {
    let v = p
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    v.split(|c: char| !c.is_ascii_digit())
        .filter_map(|x| x.parse().ok())
        .collect()
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The spec with every program's interpreter (and fallback's) resolved once.
pub fn resolve_spec(spec: &Spec) -> Spec {
    let mut spec = spec.clone();
    for p in [spec.server.as_mut(), spec.client.as_mut()]
        .into_iter()
        .flatten()
    {
        p.command = resolve(&p.command);
        p.fallback_command = p.fallback_command.as_deref().map(resolve);
    }
    spec
}

/// The interpreter picked for one side of one submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub target: Target,
    /// Whether the fallback command was picked.
    pub fallback: bool,
    /// For the report: which command ran and why.
    pub note: String,
}

/// Picks the command for each side of `submission` that has a fallback and a file;
/// returns the spec to grade it with and what was decided.
pub fn choose(spec: &Spec, targets: &[Target], submission: &Path) -> (Spec, Vec<Choice>) {
    let mut out = spec.clone();
    let mut choices = Vec::new();
    let mut targets = targets.to_vec();
    targets.sort();
    targets.dedup();
    for target in targets {
        let Some(program) = spec.program(target) else {
            continue;
        };
        let Some(fallback) = &program.fallback_command else {
            continue;
        };
        let Ok(rel) = crate::sandbox::workdir::find_file(submission, &program.files) else {
            continue;
        };
        let file = submission.join(&rel);
        if let Some(choice) = choose_one(target, program, fallback, &file, &rel) {
            if choice.fallback {
                out = out.with_command(target, fallback.clone());
            }
            choices.push(choice);
        }
    }
    (out, choices)
}

fn choose_one(
    target: Target,
    program: &Program,
    fallback: &[String],
    file: &Path,
    rel: &Path,
) -> Option<Choice> {
    let primary = program.command.first()?;
    let name = |c: &str| {
        Path::new(c)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| c.to_string())
    };
    let err = match compiles(primary, file) {
        Probe::Compiles => return None,
        Probe::Fails(err) => err,
        // Cannot tell: keep the primary command, whose cases will say what is wrong.
        Probe::Unknown => return None,
    };
    let fb = fallback.first()?;
    match compiles(fb, file) {
        Probe::Compiles => Some(Choice {
            target,
            fallback: true,
            note: format!(
                "{target}: {} does not compile with {} ({err}) but does with {}: graded with `{}`",
                rel.display(),
                name(primary),
                name(fb),
                fallback
                    .iter()
                    .map(|a| name(a).replace("{file}", &rel.display().to_string()))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        }),
        _ => None,
    }
}

enum Probe {
    Compiles,
    /// The last line of the compiler's complaint.
    Fails(String),
    Unknown,
}

/// Whether `file` compiles with `interpreter`. A class run asks this twice per student
/// (server and client), so one long-lived checker per interpreter answers (a Python
/// start, ~11 ms of CPU even with `-S`, is paid once per run instead of per file); a
/// path it cannot take (not UTF-8, or a newline in it) gets a process of its own.
fn compiles(interpreter: &str, file: &Path) -> Probe {
    match file.to_str().filter(|p| !p.contains('\n')) {
        Some(path) => {
            Checker::ask(interpreter, path).unwrap_or_else(|| compiles_once(interpreter, file))
        }
        None => compiles_once(interpreter, file),
    }
}

/// A `python -S` running [`COMPILE_LOOP`]. It ends when the grader does: its stdin
/// closes and the loop reads EOF.
struct Checker {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

static CHECKERS: std::sync::Mutex<Option<std::collections::HashMap<String, Checker>>> =
    std::sync::Mutex::new(None);

impl Checker {
    fn start(interpreter: &str) -> Option<Checker> {
        let mut child = python(interpreter)
            .args(["-S", "-c", COMPILE_LOOP])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Some(Checker {
            stdin: child.stdin.take()?,
            stdout: std::io::BufReader::new(child.stdout.take()?),
            child,
        })
    }

    /// The checker's answer for `path`, or None when the checker cannot give one (it
    /// would not start, died, or took longer than [`PROBE_TIMEOUT`]): then the caller
    /// asks a process of its own, and the next question starts a fresh checker.
    fn ask(interpreter: &str, path: &str) -> Option<Probe> {
        use std::io::{BufRead, Write};
        let mut all = CHECKERS.lock().unwrap_or_else(|e| e.into_inner());
        let all = all.get_or_insert_with(Default::default);
        if !all.contains_key(interpreter) {
            all.insert(interpreter.to_string(), Checker::start(interpreter)?);
        }
        let c = all.get_mut(interpreter)?;
        let mut line = String::new();
        let answered = writeln!(c.stdin, "{path}")
            .and_then(|()| c.stdin.flush())
            .is_ok()
            && readable_within(
                std::os::fd::AsRawFd::as_raw_fd(c.stdout.get_ref()),
                PROBE_TIMEOUT,
            )
            && c.stdout.read_line(&mut line).is_ok_and(|n| n > 0);
        if !answered {
            if let Some(mut c) = all.remove(interpreter) {
                let _ = c.child.kill();
                let _ = c.child.wait();
            }
            return None;
        }
        let line = line.trim_end();
        Some(match line.strip_prefix("err ") {
            Some(err) => Probe::Fails(err.to_string()),
            None if line == "ok" => Probe::Compiles,
            None => Probe::Unknown,
        })
    }
}

/// Whether `fd` has something to read (or EOF) within `limit`.
fn readable_within(fd: std::os::fd::RawFd, limit: Duration) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd on the stack.
    unsafe { libc::poll(&mut p, 1, limit.as_millis() as libc::c_int) == 1 }
}

/// `interpreter` with the environment a compile check gets: nothing of the grader's
/// but what finds the interpreter.
fn python(interpreter: &str) -> Command {
    let mut cmd = Command::new(interpreter);
    cmd.env_clear().env("PYTHONDONTWRITEBYTECODE", "1");
    for key in ["PATH", "PYENV_ROOT"] {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    cmd
}

/// The same question, asked of a process of its own.
fn compiles_once(interpreter: &str, file: &Path) -> Probe {
    let mut cmd = python(interpreter);
    cmd.args(["-S", "-c", COMPILE]).arg(file);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        return Probe::Unknown;
    };
    match child.wait_timeout(PROBE_TIMEOUT) {
        Ok(Some(status)) => {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = (&mut e).take(64 << 10).read_to_string(&mut err);
            }
            let last = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_string();
            match status.code() {
                Some(0) => Probe::Compiles,
                // Only a syntax error is a reason to try another interpreter.
                Some(_)
                    if last.starts_with("SyntaxError")
                        || last.starts_with("TabError")
                        || last.starts_with("IndentationError") =>
                {
                    Probe::Fails(last)
                }
                _ => Probe::Unknown,
            }
        }
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            Probe::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(p: Probe) -> String {
        match p {
            Probe::Compiles => "compiles".into(),
            Probe::Fails(e) => format!("fails: {e}"),
            Probe::Unknown => "unknown".into(),
        }
    }

    #[test]
    fn the_checker_answers_as_a_process_of_its_own_does() {
        let Some(python) = resolve_program("python3") else {
            eprintln!("SKIPPED: no python3");
            return;
        };
        let python = python.display().to_string();
        let dir = tempfile::tempdir().unwrap();
        let files = [
            ("py3.py", "print('hello')\n"),
            ("py2.py", "print 'hello'\n"),
            ("tabs.py", "if 1:\n\tx = 1\n        y = 2\n"),
            ("gbk.py", "# -*- coding: gbk -*-\nprint('\u{4f60}')\n"),
        ];
        let mut answers = Vec::new();
        for (name, source) in files {
            let path = dir.path().join(name);
            let bytes = match name {
                "gbk.py" => encoding_rs::GBK.encode(source).0.into_owned(),
                _ => source.as_bytes().to_vec(),
            };
            std::fs::write(&path, bytes).unwrap();
            let warm = show(compiles(&python, &path));
            assert_eq!(warm, show(compiles_once(&python, &path)), "{name}");
            answers.push(warm);
        }
        // A file that is not there: no answer either way.
        let missing = dir.path().join("missing.py");
        assert_eq!(show(compiles(&python, &missing)), "unknown");
        assert_eq!(answers[0], "compiles");
        assert!(
            answers[1].starts_with("fails: SyntaxError: Missing parentheses"),
            "{}",
            answers[1]
        );
        assert!(answers[2].starts_with("fails: TabError"), "{}", answers[2]);
        assert_eq!(answers[3], "compiles");
    }
}
