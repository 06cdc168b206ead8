//! Without the privileges for namespaces (a student's laptop, a locked-down CI runner),
//! sockgrade says so once, clearly, and grades one case at a time on the host loopback.
//! One test, so its uses of the host's port 8888 never overlap.
//!
//! As `nobody`, sockgrade would now enter a user namespace where the machine allows it
//! (tests/userns.rs): here the kernel refuses it, as a container's seccomp profile does,
//! so that this is the fallback whatever the machine.

mod common;
use common::{as_nobody, can_act_as_nobody, root, UserNs};
use std::process::Command;

fn sockgrade_as_nobody(args: &[&str]) -> std::process::Output {
    as_nobody(args, UserNs::Refused)
}

#[test]
fn unprivileged_runs_fall_back_to_the_host_loopback_and_say_so() {
    if !can_act_as_nobody() {
        return;
    }
    let spec = [
        "run",
        "specs/tcp-basics.toml",
        "fixtures/good",
        "--target",
        "server",
        "--case",
        "replies to a message",
    ];

    let out = sockgrade_as_nobody(&spec);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("isolation: none"), "{text}");
    // A note about the machine is for the operator: said once on stderr, never in the
    // report a student reads.
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("cannot create network namespaces").count(),
        1,
        "said once: {err}"
    );
    assert!(err.contains("one at a time"), "{err}");
    assert!(!text.contains("network namespaces"), "{text}");

    // Asking for isolation it cannot have is a usage error that says what to do.
    let out = sockgrade_as_nobody(&[&spec[..], &["--isolation", "netns"]].concat());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--isolation netns needs network namespaces")
            && err.contains("--isolation none"),
        "{err}"
    );

    // As root, --isolation none is the same fallback, chosen.
    let out = Command::new(env!("CARGO_BIN_EXE_sockgrade"))
        .args(spec)
        .args(["--isolation", "none", "--format", "json"])
        .current_dir(root())
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["isolation"], "none");
    assert_eq!(json["cases"][0]["status"], "passed", "{json}");
}
