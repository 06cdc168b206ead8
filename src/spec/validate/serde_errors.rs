//! Every serde error of a spec at once, not just the first.
//!
//! serde stops at the first unknown key or wrong type. To report them all in one go,
//! the offending entry is blanked out of a working copy of the text (its bytes become
//! spaces, newlines kept, so every byte offset, line and column stays the original's)
//! and the text parsed again, until it parses or nothing more can be blanked. An entry
//! that a required key needs is blanked with its table (a `[[case]]` without `target`).
//!
//! Blanking an element of an array (a step, a case) renumbers the elements after it, so
//! key paths are always computed on the original text; and validation, whose keys come
//! from the parsed arrays and which would report the absence of a blanked table (a case
//! for a `[server]` left out), is then left out (see [`RawParse::cut`]).

use super::super::raw::RawSpec;
use super::super::SpecError;
use std::ops::Range;
use std::path::Path;

/// Bounds the parse–blank rounds (each is one parse of a small file): a spec with more
/// mistakes than this shows the first ones.
const MAX_ROUNDS: usize = 100;

/// The outcome of parsing a spec with every serde error gathered.
pub(super) struct RawParse {
    /// The spec without the blanked entries, when what remained parses.
    pub raw: Option<RawSpec>,
    /// The serde and syntax errors, in the order they were found.
    pub errors: Vec<SpecError>,
    /// Key paths of the blanked entries: validation errors at, under or above them are
    /// consequences of the blanking (a step left without its action), not mistakes.
    pub blanked: Vec<String>,
    /// Whether a whole table or an array element was blanked: the parsed arrays'
    /// indices may no longer be the file's, and validation would report what is gone.
    pub cut: bool,
}

impl RawParse {
    /// Whether a validation error at `key` may be a consequence of the blanking: at,
    /// under or above a blanked key, or in a later step of a case one of whose steps
    /// lost a key (its action, maybe: a misspelt `connect` leaves every later step
    /// without a connection).
    pub fn explains(&self, key: &str) -> bool {
        self.blanked.iter().any(|b| {
            is_within(key, b)
                || is_within(b, key)
                || step_of(b).is_some_and(|(steps, j, direct)| {
                    direct && step_of(key).is_some_and(|(s, m, _)| s == steps && m > j)
                })
        })
    }
}

/// `case[1].steps[2].send` → ("case[1].steps", 2, true): the steps' path, the step's
/// index, and whether the key is the step's own (not inside one of its values).
fn step_of(key: &str) -> Option<(&str, usize, bool)> {
    let at = key.find(".steps[")? + ".steps".len();
    let (steps, rest) = key.split_at(at);
    let close = rest.find(']')?;
    let index = rest[1..close].parse().ok()?;
    let after = &rest[close + 1..];
    let direct = after
        .strip_prefix('.')
        .is_some_and(|k| !k.contains(['.', '[']));
    Some((steps, index, direct))
}

/// `inner` is `outer` or a key below it (`case[0].steps` is within `case[0]`).
fn is_within(inner: &str, outer: &str) -> bool {
    inner == outer
        || (inner.starts_with(outer)
            && matches!(inner.as_bytes().get(outer.len()), Some(b'.' | b'[')))
}

pub(super) fn parse(file: &Path, text: &str) -> RawParse {
    let mut out = RawParse {
        raw: None,
        errors: Vec::new(),
        blanked: Vec::new(),
        cut: false,
    };
    let mut work = text.as_bytes().to_vec();
    let mut last: Option<(Option<Range<usize>>, String)> = None;
    for round in 0..MAX_ROUNDS {
        let current = std::str::from_utf8(&work).expect("blanking keeps UTF-8");
        let err = match toml::from_str::<RawSpec>(current) {
            Ok(raw) => {
                out.raw = Some(raw);
                return out;
            }
            Err(err) => err,
        };
        let doc = match current.parse::<toml_edit::ImDocument<String>>() {
            Ok(doc) => doc,
            // A syntax error: the file's own on the first round; later, one the
            // blanking made, which the instructor must not see.
            Err(_) => {
                if round == 0 {
                    out.errors.push(serde_error(file, text, &err));
                }
                return out;
            }
        };
        let this = (err.span(), err.message().to_string());
        if last.as_ref() == Some(&this) {
            return out; // blanking did not get past it
        }
        out.errors.push(serde_error(file, text, &err));
        let Some(span) = err.span() else {
            return out;
        };
        let key_error = err.message().starts_with("unknown field");
        let Some(entry) = locate(doc.as_table(), span.start, key_error) else {
            return out;
        };
        out.cut |= entry.element;
        out.blanked.push(key_path_at(text, entry.range.start));
        blank(&mut work, entry.range, entry.inline);
        last = Some(this);
    }
    out
}

/// A syntax or type error from the TOML parser, said for people: the key path is found
/// from the error's position, serde's jargon ("u32", "untagged enum") is translated,
/// and the allowed keys go into the help line.
fn serde_error(file: &Path, text: &str, err: &toml::de::Error) -> SpecError {
    let message = err.message().trim().to_string();
    let key = err
        .span()
        .map(|s| key_path_at(text, s.start))
        .unwrap_or_default();
    let (message, help) = if let Some((head, allowed)) = message.split_once(", expected one of ") {
        (
            head.replace("unknown field", "unknown key"),
            Some(format!("allowed keys here: {allowed}")),
        )
    } else if let Some(name) =
        message.strip_prefix("data did not match any variant of untagged enum ")
    {
        let expected = match name.trim() {
            "RawPayload" => "a string, or a table with `text` or `hex` (and optional `repeat`)",
            "RawConnName" => "a connection name (a string), or {} for the default name",
            "RawIdle" => "a duration such as \"500ms\", or { for = \"500ms\", max_cpu = 0.1 }",
            "RawWindow" => "a duration such as \"300ms\", or { for = \"300ms\" }",
            "OneOrMany" => "a file name or pattern, or a list of them",
            _ => "another form: see the spec reference in README.md",
        };
        (
            "this value has the wrong form".to_string(),
            Some(format!("expected {expected}")),
        )
    } else if message.starts_with("missing field") {
        (
            message.replace("missing field", "missing key"),
            Some("add the key; README.md's spec reference shows an example".into()),
        )
    } else {
        let m = message
            .replace("expected u32", "expected a whole number")
            .replace("expected u64", "expected a whole number")
            .replace("expected i32", "expected a whole number");
        (m, None)
    };
    let e = SpecError::at(file, text, err.span(), key, message);
    match help {
        Some(h) => e.with_help(h),
        None => e,
    }
}

/// What to blank for an error at one offset.
#[derive(Debug, PartialEq)]
struct Entry {
    /// `key = value`, an array element, or a whole table (header to last value).
    range: Range<usize>,
    /// In an inline table (`{ a = 1, b = 2 }`), where a dangling comma is an error.
    inline: bool,
    /// A whole table, or an element of an array (or of an array of tables).
    element: bool,
}

/// The innermost entry at `offset`: with `key_error`, the one whose key is there (an
/// unknown key); else the innermost value, element or table there (a wrong type, or a
/// table that misses a key).
fn locate(table: &toml_edit::Table, offset: usize, key_error: bool) -> Option<Entry> {
    let entry = |range: Option<Range<usize>>, inline, element| {
        range.map(|range| Entry {
            range,
            inline,
            element,
        })
    };
    for (k, item) in table.iter() {
        let key_span = table.key(k).and_then(|key| key.span());
        let on_key = contains(key_span.clone(), offset);
        let found = match item {
            toml_edit::Item::Value(v) => {
                let whole = key_span.zip(v.span()).map(|(k, v)| k.start..v.end);
                if on_key {
                    entry(whole, false, false)
                } else if contains(v.span(), offset) {
                    in_value(v, offset, key_error)
                        .or_else(|| entry(whole.filter(|_| !key_error), false, false))
                } else {
                    None
                }
            }
            toml_edit::Item::Table(t) if on_key => entry(t.span(), false, false),
            toml_edit::Item::Table(t) => locate(t, offset, key_error).or_else(|| {
                entry(
                    t.span()
                        .filter(|s| !key_error && contains(Some(s.clone()), offset)),
                    false,
                    true,
                )
            }),
            // An unknown [[key]]: from its first header to its last value.
            toml_edit::Item::ArrayOfTables(a) if on_key => {
                let first = a.iter().next().and_then(|t| t.span());
                let last = a.iter().last().and_then(|t| t.span());
                entry(first.zip(last).map(|(f, l)| f.start..l.end), false, true)
            }
            toml_edit::Item::ArrayOfTables(a) => a.iter().find_map(|t| {
                locate(t, offset, key_error).or_else(|| {
                    entry(
                        t.span()
                            .filter(|s| !key_error && contains(Some(s.clone()), offset)),
                        false,
                        true,
                    )
                })
            }),
            toml_edit::Item::None => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// The innermost entry strictly inside value `v` at `offset`, if any.
fn in_value(v: &toml_edit::Value, offset: usize, key_error: bool) -> Option<Entry> {
    match v {
        toml_edit::Value::Array(a) => a.iter().find_map(|item| {
            if !contains(item.span(), offset) {
                return None;
            }
            in_value(item, offset, key_error).or_else(|| {
                let range = item.span().filter(|_| !key_error)?;
                Some(Entry {
                    range,
                    inline: true,
                    element: true,
                })
            })
        }),
        toml_edit::Value::InlineTable(t) => t.iter().find_map(|(k, item)| {
            let key_span = t.key(k).and_then(|key| key.span());
            let whole = || {
                Some(Entry {
                    range: key_span.clone()?.start..item.span()?.end,
                    inline: true,
                    element: false,
                })
            };
            if contains(key_span.clone(), offset) {
                whole()
            } else if contains(item.span(), offset) {
                in_value(item, offset, key_error).or_else(|| whole().filter(|_| !key_error))
            } else {
                None
            }
        }),
        _ => None,
    }
}

/// Turns `range` of `work` into spaces (newlines kept, so lines stay where they were),
/// with the comma that separated it from its neighbour in an inline table or array.
fn blank(work: &mut [u8], range: Range<usize>, inline: bool) {
    let spaces = |work: &mut [u8], r: Range<usize>| {
        for b in &mut work[r] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    };
    spaces(work, range.clone());
    if !inline {
        return;
    }
    let after = work[range.end..]
        .iter()
        .position(|b| !b" \t\r\n".contains(b))
        .map(|i| range.end + i);
    if let Some(i) = after.filter(|&i| work[i] == b',') {
        spaces(work, i..i + 1);
        return;
    }
    let before = work[..range.start]
        .iter()
        .rposition(|b| !b" \t\r\n".contains(b));
    if let Some(i) = before.filter(|&i| work[i] == b',') {
        spaces(work, i..i + 1);
    }
}

/// The dotted key path (`case[1].steps[2].expect`) of the value at byte `offset`.
pub(super) fn key_path_at(text: &str, offset: usize) -> String {
    let Ok(doc) = text.parse::<toml_edit::ImDocument<String>>() else {
        return String::new();
    };
    let mut path = Vec::new();
    walk_table(doc.as_table(), offset, &mut path);
    path.join("").trim_start_matches('.').to_string()
}

fn contains(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

fn walk_table(table: &toml_edit::Table, offset: usize, path: &mut Vec<String>) -> bool {
    for (k, item) in table.iter() {
        path.push(format!(".{k}"));
        let key_hit = table.key(k).is_some_and(|key| contains(key.span(), offset));
        let found = key_hit
            || match item {
                toml_edit::Item::Value(v) => walk_value(v, offset, path),
                // A place in the table but in none of its entries (its header: a key
                // it misses) is the table's.
                toml_edit::Item::Table(t) => {
                    walk_table(t, offset, path) || contains(t.span(), offset)
                }
                toml_edit::Item::ArrayOfTables(a) => a.iter().enumerate().any(|(i, t)| {
                    path.push(format!("[{i}]"));
                    let hit = walk_table(t, offset, path) || contains(t.span(), offset);
                    if !hit {
                        path.pop();
                    }
                    hit
                }),
                toml_edit::Item::None => false,
            };
        if found {
            return true;
        }
        path.pop();
    }
    false
}

fn walk_value(v: &toml_edit::Value, offset: usize, path: &mut Vec<String>) -> bool {
    if !contains(v.span(), offset) {
        return false;
    }
    match v {
        toml_edit::Value::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                path.push(format!("[{i}]"));
                if walk_value(item, offset, path) {
                    return true;
                }
                path.pop();
            }
        }
        toml_edit::Value::InlineTable(t) => {
            for (k, item) in t.iter() {
                path.push(format!(".{k}"));
                let key_hit = t.key(k).is_some_and(|key| contains(key.span(), offset));
                if key_hit || walk_value(item, offset, path) {
                    return true;
                }
                path.pop();
            }
        }
        _ => {}
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        parse(Path::new("t.toml"), text)
            .errors
            .iter()
            .map(|e| format!("{}:{} {}: {}", e.line, e.column, e.key, e.message))
            .collect()
    }

    const HEAD: &str = "[assignment]\nname = \"x\"\n[server]\ncommand = [\"python3\", \"{file}\"]\nfile = \"s.py\"\n";

    #[test]
    fn every_unknown_key_and_wrong_type_is_reported_in_file_order() {
        let text = format!(
            "{HEAD}[[case]]\nname = \"a\"\ntarget = \"server\"\npoints = \"two\"\nsteps = [\n  {{ connect = {{}}, sendd = \"x\" }},\n  {{ expect = {{ exact = \"x\" }}, within = 3 }},\n]\n[limitz]\nmemory = \"1MiB\"\n"
        );
        assert_eq!(
            errors(&text),
            [
                "9:10 case[0].points: invalid type: string \"two\", expected a whole number",
                "11:19 case[0].steps[0].sendd: unknown key `sendd`",
                "12:40 case[0].steps[1].within: invalid type: integer `3`, expected a string",
                "14:2 limitz: unknown key `limitz`",
            ]
        );
    }

    #[test]
    fn a_missing_required_key_drops_its_table_and_goes_on() {
        let text = format!(
            "{HEAD}[[case]]\nname = \"a\"\nsteps = []\n[[case]]\nname = \"b\"\ntarget = \"server\"\nstepz = []\nsteps = []\n"
        );
        let p = parse(Path::new("t.toml"), &text);
        let got: Vec<_> = p.errors.iter().map(|e| e.message.clone()).collect();
        assert_eq!(got, ["missing key `target`", "unknown key `stepz`"]);
        assert!(p.cut && p.raw.is_some());
    }

    #[test]
    fn a_table_that_misses_a_key_is_left_out_and_validation_with_it() {
        // Without [server], every server case would be "no [server] section".
        let text = "[assignment]\nname = \"x\"\n[server]\ncommand = [\"python3\", \"{file}\"]\n[[case]]\nname = \"a\"\ntarget = \"server\"\nsteps = [{ connect = {} }]\n";
        let p = parse(Path::new("t.toml"), text);
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].key, "server");
        assert!(p.cut);
    }

    #[test]
    fn a_first_entry_of_an_inline_table_takes_its_comma_along() {
        let text = format!(
            "{HEAD}[[case]]\nname = \"a\"\ntarget = \"server\"\nsteps = [{{ conect = {{}}, within = 5, connect = {{}} }}]\n"
        );
        assert_eq!(errors(&text).len(), 2, "{:?}", errors(&text));
        let p = parse(Path::new("t.toml"), &text);
        assert!(p.raw.is_some() && !p.cut);
        assert!(p.explains("case[0].steps[0]") && !p.explains("case[0].name"));
    }

    #[test]
    fn a_lost_step_key_explains_the_later_steps_of_its_case_only() {
        let p = RawParse {
            raw: None,
            errors: Vec::new(),
            blanked: vec!["case[1].steps[2].conect".into()],
            cut: false,
        };
        assert!(p.explains("case[1].steps[3].send") && p.explains("case[1].steps[2]"));
        assert!(!p.explains("case[1].steps[1].send") && !p.explains("case[2].steps[3].send"));
        let nested = RawParse {
            blanked: vec!["case[1].steps[2].expect.lable".into()],
            ..p
        };
        assert!(!nested.explains("case[1].steps[3].send"));
    }

    #[test]
    fn a_syntax_error_is_reported_alone() {
        assert_eq!(errors("[assignment]\nname = \"x\n").len(), 1);
    }
}
