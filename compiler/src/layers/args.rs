//! Evaluated arguments of one layer, and typed readers that report wrong values.

use archc_grammar::ast::Span;

use crate::diag::{at, CompileError};

/// Limits on sizes, so no input can make the compiler (or a later Burn init) explode.
pub const MAX_CHANNELS: i64 = 1 << 20;
pub const MAX_SPATIAL: i64 = 1 << 20;
pub const MAX_KERNEL: i64 = 1 << 12;
pub const MAX_STRIDE: i64 = 1 << 12;

/// One evaluated argument value.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgVal {
    Int(i64),
    Dims(Vec<u64>),
    Float(f64),
    Word(String),
    Block(String),
}

impl ArgVal {
    pub fn describe(&self) -> String {
        match self {
            ArgVal::Int(v) => format!("the number {v}"),
            ArgVal::Dims(d) => format!(
                "the dimensions {}",
                d.iter().map(u64::to_string).collect::<Vec<_>>().join("x")
            ),
            ArgVal::Float(f) => format!("the decimal {f}"),
            ArgVal::Word(w) => format!("`{w}`"),
            ArgVal::Block(b) => format!("the block `{b}`"),
        }
    }
}

/// The arguments of one layer after evaluation, with their spans.
#[derive(Debug, Clone, Default)]
pub struct Args {
    pub layer: String,
    pub span: Span,
    pub positional: Vec<(ArgVal, Span)>,
    pub named: Vec<(String, ArgVal, Span)>,
    pub errors: Vec<CompileError>,
}

impl Args {
    pub fn get(&self, pos: usize, name: &str) -> Option<(ArgVal, Span)> {
        if !name.is_empty() {
            if let Some((_, v, s)) = self.named.iter().find(|(n, _, _)| n == name) {
                return Some((v.clone(), *s));
            }
        }
        self.positional.get(pos).cloned()
    }

    pub fn named(&self, name: &str) -> Option<(ArgVal, Span)> {
        self.named
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, v, s)| (v.clone(), *s))
    }

    fn bad(&mut self, what: &str, found: &ArgVal, span: Span, expected: &str, help: &str) {
        self.errors.push(CompileError::BadValue {
            what: what.to_string(),
            found: found.describe(),
            at: at(span),
            expected: expected.to_string(),
            help: help.to_string(),
        });
    }

    /// A positive integer no larger than `limit`.
    pub fn check_positive(&mut self, what: &str, v: i64, span: Span, limit: i64) -> Option<u64> {
        self.keep(in_range(what, v, span, 1, limit))
    }

    fn keep(&mut self, r: Result<u64, CompileError>) -> Option<u64> {
        r.map_err(|e| self.errors.push(e)).ok()
    }

    /// A positive integer (positional `pos` or named `name`).
    pub fn int(&mut self, pos: usize, name: &str, what: &str, limit: i64) -> Option<u64> {
        let (v, span) = self.get(pos, name)?;
        match v {
            ArgVal::Int(i) => self.check_positive(what, i, span, limit),
            other => {
                let help = if matches!(other, ArgVal::Float(_)) {
                    "round it: `ceil(...)`, `floor(...)`, `round(...)` or `divisible(..., 8)`"
                } else {
                    "write a number or an expression such as `4*c`"
                };
                self.bad(what, &other, span, "a whole number", help);
                None
            }
        }
    }

    /// A non-negative integer (padding).
    pub fn non_negative(&mut self, v: i64, what: &str, span: Span, limit: i64) -> Option<u64> {
        self.keep(in_range(what, v, span, 0, limit))
    }

    /// A pair such as a kernel `3x3` or `3` (square), or padding `1x0`. `zero_ok` admits 0.
    pub fn pair(
        &mut self,
        pos: usize,
        name: &str,
        what: &str,
        zero_ok: bool,
        limit: i64,
    ) -> Option<[u64; 2]> {
        let (v, span) = self.get(pos, name)?;
        let check = |s: &mut Self, x: i64| {
            if zero_ok {
                s.non_negative(x, what, span, limit)
            } else {
                s.check_positive(what, x, span, limit)
            }
        };
        match v {
            ArgVal::Int(i) => {
                let x = check(self, i)?;
                Some([x, x])
            }
            ArgVal::Dims(d) if d.len() == 2 => {
                let a = check(self, d[0].min(i64::MAX as u64) as i64);
                let b = check(self, d[1].min(i64::MAX as u64) as i64);
                Some([a?, b?])
            }
            other => {
                self.bad(
                    what,
                    &other,
                    span,
                    "a size such as 3 or 3x3",
                    "sizes are written as one number (square) or HxW",
                );
                None
            }
        }
    }

    /// One of the given words.
    pub fn word(&mut self, name: &str, what: &str, allowed: &[&str]) -> Option<String> {
        let (v, span) = self.named(name)?;
        match &v {
            ArgVal::Word(w) if allowed.contains(&w.as_str()) => Some(w.clone()),
            _ => {
                let list = allowed.join(", ");
                self.bad(
                    what,
                    &v,
                    span,
                    &format!("one of {list}"),
                    &format!("write one of: {list}"),
                );
                None
            }
        }
    }

    /// `true` or `false`.
    pub fn boolean(&mut self, name: &str, what: &str) -> Option<bool> {
        self.word(name, what, &["true", "false"])
            .map(|w| w == "true")
    }

    pub fn float(&mut self, pos: usize, what: &str) -> Option<(f64, Span)> {
        let (v, span) = self.get(pos, "")?;
        match v {
            ArgVal::Float(f) => Some((f, span)),
            ArgVal::Int(i) => Some((i as f64, span)),
            other => {
                self.bad(
                    what,
                    &other,
                    span,
                    "a decimal number",
                    "write it as a decimal such as 0.5",
                );
                None
            }
        }
    }
}

/// `v` within `min..=limit` (`min` is 0 or 1), or the diagnostic that says why not.
pub fn in_range(what: &str, v: i64, span: Span, min: i64, limit: i64) -> Result<u64, CompileError> {
    if v < min {
        let (bound, help) = if min > 0 {
            ("positive", format!("{what} is a count of at least 1"))
        } else {
            ("zero or more", format!("{what} cannot be negative"))
        };
        Err(CompileError::NonPositive {
            what: what.to_string(),
            bound,
            value: v,
            at: at(span),
            help,
        })
    } else if v > limit {
        Err(too_large(what, v as u128, limit as u128, span))
    } else {
        Ok(v as u64)
    }
}

pub fn too_large(what: &str, v: u128, limit: u128, span: Span) -> CompileError {
    CompileError::TooLarge {
        what: what.to_string(),
        value: v.to_string(),
        limit: limit.to_string(),
        at: at(span),
        help: "archc refuses sizes this large: no network could be built or trained with them"
            .into(),
    }
}
