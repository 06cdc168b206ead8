//! The spec's JSON Schema: the shipped file is the generated one (so it cannot go
//! stale), and the shipped specs validate against it with a real JSON Schema validator
//! (Python's `jsonschema`), while a misspelt key does not.

mod common;

use common::python_has;

#[test]
fn shipped_schema_is_the_generated_one() {
    let shipped = std::fs::read_to_string("schema/spec.schema.json")
        .expect("schema/spec.schema.json is shipped");
    let generated = sockgrade::spec::raw::json_schema();
    assert!(
        shipped == generated,
        "schema/spec.schema.json is stale: run `cargo run -- schema > schema/spec.schema.json`"
    );
}

#[test]
fn shipped_specs_start_with_their_schema_line() {
    for spec in [
        "specs/tcp-basics.toml",
        "tests/specs/visibility.toml",
        "specs/echo-quit.toml",
        "specs/kv-store.toml",
        "specs/file-transfer.toml",
        "specs/http10.toml",
        "specs/chat.toml",
    ] {
        let first = std::fs::read_to_string(spec)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string();
        assert!(
            first.starts_with("#:schema ") && first.ends_with("schema/spec.schema.json"),
            "{spec}: {first}"
        );
    }
}

/// Validates TOML files against the schema; returns (file, ok, first error) per file.
fn validate(files: &[(&str, String)]) -> Vec<(String, bool, String)> {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["schema/spec.schema.json".to_string()];
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        args.push(p.display().to_string());
    }
    let script = r#"
import json, sys, tomllib, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
v = jsonschema.Draft7Validator(schema)
for path in sys.argv[2:]:
    errors = sorted(v.iter_errors(tomllib.load(open(path, "rb"))), key=lambda e: list(e.path))
    print(json.dumps([path, not errors, errors[0].message if errors else ""]))
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn specs_validate_against_the_schema() {
    if !python_has("jsonschema") {
        return;
    }
    let read = |p: &str| std::fs::read_to_string(p).unwrap();
    let typo = read("specs/tcp-basics.toml").replacen("hint =", "hnit =", 1);
    let bad_visibility = read("tests/specs/visibility.toml")
        .replace(r#"visibility = "hidden""#, r#"visibility = "secret""#);
    let results = validate(&[
        ("tcp-basics.toml", read("specs/tcp-basics.toml")),
        ("visibility.toml", read("tests/specs/visibility.toml")),
        ("starter.toml", sockgrade::init::starter_spec()),
        ("typo.toml", typo),
        ("bad-visibility.toml", bad_visibility),
    ]);
    let ok: Vec<bool> = results.iter().map(|r| r.1).collect();
    assert_eq!(ok, [true, true, true, false, false], "{results:#?}");
    assert!(
        results[3].2.contains("hnit"),
        "the typo is named: {}",
        results[3].2
    );
    assert!(results[4].2.contains("secret"), "{}", results[4].2);
}
