//! The gallery: every spec of `specs/` beside a `.expect` file is checked against its
//! fixtures (`fixtures/gallery/<assignment>/`) by `sockgrade check --against DIR
//! --expect FILE`, as CI checks them: each correct solution scores full marks and each
//! buggy one fails exactly the cases its bug breaks.

use assert_cmd::Command;

const GALLERY: [&str; 5] = ["echo-quit", "kv-store", "file-transfer", "http10", "chat"];

fn check(assignment: &str) -> (bool, String) {
    let out = Command::cargo_bin("sockgrade")
        .unwrap()
        .args(["check", &format!("specs/{assignment}.toml"), "--against"])
        .arg(format!("fixtures/gallery/{assignment}"))
        .arg("--expect")
        .arg(format!("specs/{assignment}.expect"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn every_gallery_spec_tells_its_fixtures_apart() {
    // One after the other: each check already runs its cases in parallel.
    let mut wrong = Vec::new();
    for a in GALLERY {
        let (ok, text) = check(a);
        if !ok || !text.contains("every submission met its expectation") {
            wrong.push(format!("{a}:\n{text}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_gallery_spec_has_fixtures_and_expectations() {
    for a in GALLERY {
        assert!(
            std::path::Path::new(&format!("specs/{a}.expect")).is_file(),
            "{a}"
        );
        assert!(
            std::path::Path::new(&format!("fixtures/gallery/{a}/good")).is_dir(),
            "{a}"
        );
    }
}
