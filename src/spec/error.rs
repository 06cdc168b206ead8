//! Errors in a spec file, each pointing at the place and saying what is allowed.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a spec, located in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub file: PathBuf,
    /// 1-based line and column; 0 when the problem is the file as a whole.
    pub line: usize,
    pub column: usize,
    /// Dotted key path, e.g. `case[2].steps[3].within`.
    pub key: String,
    pub message: String,
    /// What is allowed or what to do next.
    pub help: Option<String>,
    /// The offending line of the file, for the caret display.
    source_line: Option<String>,
    underline: usize,
}

impl SpecError {
    pub fn at(file: &Path, text: &str, span: Option<Range<usize>>, key: impl Into<String>, message: impl Into<String>) -> SpecError {
        let (line, column, source_line, underline) = match span {
            Some(span) => {
                let start = span.start.min(text.len());
                let before = &text[..start];
                let line = before.matches('\n').count() + 1;
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
                let column = text[line_start..start].chars().count() + 1;
                let src = text[line_start..line_end].trim_end_matches('\r').to_string();
                let end = span.end.clamp(start, line_end);
                let underline = text[start..end].chars().count().max(1);
                (line, column, Some(src), underline)
            }
            None => (0, 0, None, 0),
        };
        SpecError {
            file: file.to_path_buf(),
            line,
            column,
            key: key.into(),
            message: message.into(),
            help: None,
            source_line,
            underline,
        }
    }

    pub fn io(file: &Path, err: &std::io::Error) -> SpecError {
        SpecError::at(file, "", None, "", format!("cannot read the spec: {err}"))
            .with_help("check the path; `sockgrade init` writes a starter spec")
    }

    pub fn with_help(mut self, help: impl Into<String>) -> SpecError {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = if self.key.is_empty() { String::new() } else { format!("{}: ", self.key) };
        writeln!(f, "error: {key}{}", self.message)?;
        if self.line == 0 {
            writeln!(f, "  --> {}", self.file.display())?;
        } else {
            writeln!(f, "  --> {}:{}:{}", self.file.display(), self.line, self.column)?;
        }
        if let Some(src) = &self.source_line {
            let gutter = self.line.to_string().len();
            writeln!(f, "{:gutter$} |", "")?;
            writeln!(f, "{} | {}", self.line, src)?;
            let pad: String = src.chars().take(self.column - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            writeln!(f, "{:gutter$} | {pad}{}", "", "^".repeat(self.underline))?;
        }
        if let Some(help) = &self.help {
            writeln!(f, "  = help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found in one spec (validation goes on after the first).
#[derive(Debug, Clone)]
pub struct SpecErrors(pub Vec<SpecError>);

impl SpecErrors {
    pub fn single(e: SpecError) -> SpecErrors {
        SpecErrors(vec![e])
    }
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.0 {
            writeln!(f, "{e}")?;
        }
        let n = self.0.len();
        write!(f, "{n} error{} in the spec; nothing was run.", if n == 1 { "" } else { "s" })
    }
}

impl std::error::Error for SpecErrors {}
