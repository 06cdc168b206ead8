//! Filling in `{name}`s: a `for_each` table's values (at validation) and the values
//! drawn per student from `[random]` (at grading, [`Spec::for_student`]).
//!
//! Only names the spec declares are replaced, so other braces in a step (JSON, a
//! regex's `{2}`) stay as written. In a regex a name was stored escaped (`\{word\}`)
//! so that the template compiles; the value is regex-escaped when filled in.

use super::extra::{seed_of, FileSource, RandomVar};
use super::{Action, Case, Matcher, Spec, Step};

/// The filters of `{name|filter}`.
pub(crate) const FILTERS: [&str; 4] = ["upper", "lower", "len", "hex"];

fn apply(filter: &str, v: &str) -> String {
    match filter {
        "upper" => v.to_uppercase(),
        "lower" => v.to_lowercase(),
        "len" => v.len().to_string(),
        "hex" => super::extra::hex(v.as_bytes()),
        _ => v.to_string(),
    }
}

/// The names of `{name}` or `{name|filter}` in `text`.
fn names_in(text: &str) -> Vec<(String, String, Option<&'static str>)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find('}') else { break };
        let inner = &rest[..close];
        let (name, filter) = match inner.split_once('|') {
            Some((n, f)) => match FILTERS.iter().find(|x| **x == f) {
                Some(f) => (n, Some(*f)),
                None => continue,
            },
            None => (inner, None),
        };
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push((format!("{{{inner}}}"), name.to_string(), filter));
        }
    }
    out
}

type Lookup<'a> = &'a dyn Fn(&str, u32) -> Option<String>;

fn fill_str(text: &str, client: u32, vars: Lookup) -> String {
    let mut out = text.to_string();
    for (whole, name, filter) in names_in(text) {
        if let Some(v) = vars(&name, client) {
            out = out.replace(&whole, &filter.map(|f| apply(f, &v)).unwrap_or(v));
        }
    }
    out
}

fn fill_bytes(bytes: &[u8], client: u32, vars: Lookup) -> Vec<u8> {
    match std::str::from_utf8(bytes) {
        Ok(s) if s.contains('{') => fill_str(s, client, vars).into_bytes(),
        _ => bytes.to_vec(),
    }
}

fn fill_regex(re: &regex::bytes::Regex, client: u32, vars: Lookup) -> regex::bytes::Regex {
    let src = re.as_str();
    if !src.contains("\\{") {
        return re.clone();
    }
    // Unescape the stored `\{name\}` / `\{name\|f\}`, fill, escape the value.
    let mut out = src.to_string();
    let plain = src
        .replace("\\{", "{")
        .replace("\\}", "}")
        .replace("\\|", "|");
    for (whole, name, filter) in names_in(&plain) {
        if let Some(v) = vars(&name, client) {
            let v = filter.map(|f| apply(f, &v)).unwrap_or(v);
            let escaped = whole
                .replace('{', "\\{")
                .replace('}', "\\}")
                .replace('|', "\\|");
            out = out.replace(&escaped, &regex::escape(&v));
        }
    }
    regex::bytes::RegexBuilder::new(&out)
        .size_limit(64 << 20)
        .build()
        .unwrap_or_else(|_| re.clone())
}

fn fill_matcher(m: &Matcher, client: u32, vars: Lookup) -> Matcher {
    match m {
        Matcher::Any => Matcher::Any,
        Matcher::Exact(b) => Matcher::Exact(fill_bytes(b, client, vars)),
        Matcher::Contains(b) => Matcher::Contains(fill_bytes(b, client, vars)),
        Matcher::NotContains(b) => Matcher::NotContains(fill_bytes(b, client, vars)),
        Matcher::Regex(re) => Matcher::Regex(fill_regex(re, client, vars)),
    }
}

fn fill_step(s: &Step, vars: Lookup) -> Step {
    let c = s.client;
    let mut s = s.clone();
    let fs = |t: &Option<String>| t.as_ref().map(|t| fill_str(t, c, vars));
    s.hint = fs(&s.hint);
    s.label = fs(&s.label);
    match &mut s.action {
        Action::Send { bytes, .. } | Action::WriteStdin { bytes } => {
            *bytes = fill_bytes(bytes, c, vars)
        }
        Action::SendPieces { pieces, .. } => {
            for p in pieces.iter_mut() {
                *p = fill_bytes(p, c, vars);
            }
        }
        Action::Expect { matcher, .. } | Action::ExpectOutput { matcher, .. } => {
            *matcher = fill_matcher(matcher, c, vars)
        }
        _ => {}
    }
    s
}

/// `case` with its `{name}`s filled in by `vars(name, client)`.
pub(super) fn fill_case(case: &Case, vars: Lookup) -> Case {
    let mut c = case.clone();
    c.name = fill_str(&c.name, 0, vars);
    c.hint = c.hint.as_ref().map(|h| fill_str(h, 0, vars));
    c.args = c.args.iter().map(|a| fill_str(a, 0, vars)).collect();
    c.stdin = c.stdin.as_ref().map(|b| fill_bytes(b, 0, vars));
    c.steps = c.steps.iter().map(|s| fill_step(s, vars)).collect();
    c
}

impl Spec {
    /// The spec as one student gets it: `[random]` values and random files drawn from a
    /// seed of the spec's name and `student` (the submission's folder or file name, so
    /// the same wherever it is unpacked): the same in every run, different between
    /// students, so a hard-coded answer cannot pass.
    pub fn for_student(&self, student: &str) -> Spec {
        let student = std::path::Path::new(student)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| student.to_string());
        let mut spec = self.clone();
        spec.personalized = true;
        let name = self.name.clone();
        let draw = |v: &RandomVar, client: u32| {
            v.draw(seed_of(&[&name, &student, &v.name, &client.to_string()]))
        };
        let lookup = |var: &str, client: u32| -> Option<String> {
            if var == "client" && client > 0 {
                return Some(client.to_string());
            }
            self.random
                .iter()
                .find(|v| v.name == var)
                .map(|v| draw(v, client))
        };
        for case in spec.cases.iter_mut() {
            *case = fill_case(case, &lookup);
            for f in case.files.iter_mut() {
                if let FileSource::Random { seed, .. } = &mut f.source {
                    *seed = seed_of(&[&name, &student, "file", &f.path]);
                }
            }
        }
        spec
    }
}

#[cfg(test)]
mod tests {
    use super::super::{validate, Action, Matcher};
    use std::path::Path;

    const SPEC: &str = r#"
[assignment]
name = "kv"
[server]
command = ["python3", "{file}"]
file = "s.py"
[random]
word = { letters = "abc", length = 8 }
[files]
"big.bin" = { random_bytes = "1KiB" }
[[case]]
name = "stores {value}"
target = "server"
for_each = [{ value = "a b" }, { value = "c" }]
steps = [{ connect = {} }, { send = "SET {value} {word}\n" }, { expect = { regex = "^{word|upper}$", label = "the word" } }]
[[case]]
name = "clients"
target = "server"
clients = 3
steps = [{ connect = {} }, { send = "{word}\n" }, { expect = { exact = "{word}\n" } }]
"#;

    fn sent(case: &super::Case) -> Vec<String> {
        case.steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Send { bytes, .. } => Some(String::from_utf8_lossy(bytes).into_owned()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn for_each_makes_one_case_per_table() {
        let spec = validate::parse(Path::new("t.toml"), SPEC).unwrap();
        let names: Vec<&str> = spec.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["stores a b", "stores c", "clients"]);
        assert_eq!(sent(&spec.cases[0]), ["SET a b {word}\n"]);
    }

    #[test]
    fn random_values_are_the_same_per_student_and_differ_between_students() {
        let spec = validate::parse(Path::new("t.toml"), SPEC).unwrap();
        let (a1, a2, b) = (
            spec.for_student("alice"),
            spec.for_student("x/alice"),
            spec.for_student("bob"),
        );
        assert_eq!(sent(&a1.cases[0]), sent(&a2.cases[0]));
        assert_ne!(sent(&a1.cases[0]), sent(&b.cases[0]));
        let word = sent(&a1.cases[0])[0]
            .trim_end()
            .rsplit(' ')
            .next()
            .unwrap()
            .to_string();
        assert_eq!(word.len(), 8);
        // The regex template is filled with the value (upper-cased), the label kept.
        let re = a1.cases[0].steps.iter().find_map(|s| match &s.action {
            Action::Expect {
                matcher: Matcher::Regex(re),
                ..
            } => Some(re.clone()),
            _ => None,
        });
        assert!(re.unwrap().is_match(word.to_uppercase().as_bytes()));
        assert_eq!(a1.cases[0].steps[2].label.as_deref(), Some("the word"));
        // Random files too.
        let bytes = |s: &super::Spec| s.cases[0].files[0].bytes();
        assert_eq!(bytes(&a1), bytes(&a2));
        assert_ne!(bytes(&a1), bytes(&b));
        assert_eq!(bytes(&a1).len(), 1024);
    }

    #[test]
    fn clients_get_their_own_connections_and_values() {
        let spec = validate::parse(Path::new("t.toml"), SPEC)
            .unwrap()
            .for_student("alice");
        let c = &spec.cases[2];
        assert_eq!(c.steps.len(), 9);
        let words = sent(c);
        assert_eq!(words.len(), 3);
        assert!(words[0] != words[1] || words[1] != words[2], "{words:?}");
        assert_eq!(c.steps[1].action.conn().unwrap(), "client 2");
    }

    #[test]
    fn a_huge_regex_compiles_and_a_larger_one_points_to_expect_bytes() {
        let spec = |re: &str| {
            format!("[assignment]\nname = \"x\"\n[server]\ncommand = [\"python3\", \"{{file}}\"]\nfile = \"s.py\"\n[[case]]\nname = \"c\"\ntarget = \"server\"\nsteps = [{{ connect = {{}} }}, {{ expect = {{ regex = '{re}' }} }}]\n")
        };
        // Over the regex crate's default 10 MiB limit, under ours.
        let big = "(?s-u)^.{700000}";
        assert!(
            regex::bytes::Regex::new(big).is_err(),
            "over the default limit"
        );
        assert!(validate::parse(Path::new("t.toml"), &spec(big)).is_ok());
        let err = validate::parse(Path::new("t.toml"), &spec("(?s)^\\w{1048576}\\w{1048576}"))
            .unwrap_err();
        assert!(err.to_string().contains("expect_bytes"), "{err}");
    }

    #[test]
    fn a_step_naming_a_missing_file_is_an_error() {
        let text = SPEC.replace(
            "{ send = \"{word}\\n\" }",
            "{ send = { file = \"nope.bin\" } }",
        );
        let err = validate::parse(Path::new("t.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"nope.bin\" is not a file of this case") && err.contains("big.bin"),
            "{err}"
        );
    }
}
