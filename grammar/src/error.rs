//! Syntax diagnostics. pest's rule names are turned into words a person would use.

use crate::ast::Span;
use crate::Rule;
use miette::Diagnostic;
use thiserror::Error;

/// A mistake found while reading the text of a file, before any name is looked up.
#[derive(Debug, Clone, Error, Diagnostic, PartialEq)]
pub enum SyntaxError {
    /// The text does not fit the grammar at this point.
    #[error("{message}")]
    #[diagnostic(code(archc::syntax::unexpected))]
    Unexpected {
        message: String,
        #[label("{label}")]
        at: miette::SourceSpan,
        label: String,
        #[help]
        help: Option<String>,
        span: Span,
    },
    /// An integer literal that does not fit in 64 bits.
    #[error("the number `{text}` is too large")]
    #[diagnostic(
        code(archc::syntax::number_too_large),
        help("numbers in .arch files must fit in 64 bits (at most 18446744073709551615)")
    )]
    NumberTooLarge {
        text: String,
        #[label("does not fit in 64 bits")]
        at: miette::SourceSpan,
        span: Span,
    },
    /// An expression nested or chained beyond what any network needs (guards the stack).
    #[error("this expression is too deep: {what}")]
    #[diagnostic(
        code(archc::syntax::too_deep),
        help("expressions may nest parentheses 64 deep and chain 256 operators; split the computation")
    )]
    TooDeep {
        what: String,
        #[label("too deep")]
        at: miette::SourceSpan,
        span: Span,
    },
    /// Braces nested beyond what any network needs: merges within merges (guards the stack).
    #[error("merges nest too deep: {what}")]
    #[diagnostic(
        code(archc::syntax::too_deep),
        help("a file may nest braces 64 deep (a body, then merges within merges); move inner merges into blocks")
    )]
    TooDeepBraces {
        what: String,
        #[label("too deep")]
        at: miette::SourceSpan,
        span: Span,
    },
    /// A float that cannot be read (only used for dropout probabilities).
    #[error("the number `{text}` cannot be read")]
    #[diagnostic(
        code(archc::syntax::bad_float),
        help("write probabilities as a decimal such as 0.5")
    )]
    BadFloat {
        text: String,
        #[label("not a number")]
        at: miette::SourceSpan,
        span: Span,
    },
}

impl SyntaxError {
    pub fn span(&self) -> Span {
        match self {
            SyntaxError::Unexpected { span, .. }
            | SyntaxError::TooDeep { span, .. }
            | SyntaxError::TooDeepBraces { span, .. }
            | SyntaxError::NumberTooLarge { span, .. }
            | SyntaxError::BadFloat { span, .. } => *span,
        }
    }
}

/// What a person calls the thing a rule matches.
pub(crate) fn describe(rule: &Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => "end of file",
        Rule::sep => "a new line",
        Rule::use_decl | Rule::kw_use => "`use`",
        Rule::block_def | Rule::kw_block => "`block`",
        Rule::family_def | Rule::kw_family => "`family`",
        Rule::network_def | Rule::kw_network => "`network`",
        Rule::kw_with | Rule::with_clause => "`with`",
        Rule::kw_x | Rule::repeat => "`x` and a repeat count",
        Rule::string | Rule::string_inner => "a quoted file name",
        Rule::ident => "a name",
        Rule::word => "a word",
        Rule::param_list => "a parameter list `(a, b)`",
        Rule::call_args => "arguments in parentheses",
        Rule::body | Rule::block_body => "`{`",
        Rule::setting | Rule::setting_key => return Some(SETTING_TEXT.as_str()),
        Rule::stage => "a stage line (a name followed by layers)",
        // A merge (`concat { ... }`) is a segment too; the short text keeps messages readable.
        Rule::segment_list | Rule::layer | Rule::call | Rule::merge | Rule::merge_kind => {
            "a layer or a block call"
        }
        Rule::layer_kind => return Some(LAYER_TEXT.as_str()),
        Rule::positional | Rule::named_arg => "an argument",
        Rule::dims => "dimensions such as 3x3",
        Rule::float => "a decimal number",
        Rule::expr | Rule::term | Rule::neg => "an expression",
        Rule::int => "a number",
        Rule::add_op | Rule::mul_op => "an operator",
        Rule::instance => "a family name",
        Rule::branch => "a branch (a name, then its layers)",
        Rule::outputs | Rule::kw_outputs | Rule::output_item => "`outputs` and stage names",
        Rule::kw_from => "`from` and a stage name",
        Rule::in_dim | Rule::dim_name => "`in.c`, `in.h` or `in.w`",
        Rule::builtin | Rule::builtin_call => {
            "a function (ceil, floor, round, max, min, divisible)"
        }
        _ => return None,
    })
}

use crate::keywords::{LAYER_KINDS as LAYERS, SETTINGS};

static LAYER_TEXT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("a layer ({})", LAYERS.join(", ")));
static SETTING_TEXT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("a setting ({})", SETTINGS.join(", ")));

/// The message, label and help of a grammar error, from what the parser tried at `pos`.
pub(crate) fn explain(
    rules: &[Rule],
    tokens: &[String],
    found: &str,
    text: &str,
    pos: usize,
) -> (String, String, Option<String>) {
    let found_desc = if found.is_empty() {
        "the end of the file".to_string()
    } else if found == "\n" {
        "the end of the line".to_string()
    } else {
        format!("`{found}`")
    };
    // A name followed by something other than `(`: most likely a misspelt layer.
    if rules.contains(&Rule::call_args) {
        let before = text[..pos].trim_end();
        let word: String = before
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if !word.is_empty() {
            let close = LAYERS
                .iter()
                .filter(|l| edit_distance(l, &word) <= 2)
                .min_by_key(|l| edit_distance(l, &word));
            let help = match close {
                Some(l) => format!(
                    "did you mean the layer `{l}`? (a block call needs parentheses: `{word}(64)`)"
                ),
                None => format!(
                    "layers are {}; a block call needs parentheses: `{word}(64)`",
                    LAYERS.join(", ")
                ),
            };
            return (
                format!("`{word}` is not a layer, and a block call needs `(`, found {found_desc}"),
                "expected `(` here".into(),
                Some(help),
            );
        }
    }
    let mut wanted: Vec<String> = Vec::new();
    let layer_context = rules.contains(&Rule::layer_kind);
    for r in rules {
        let d = if layer_context
            && matches!(
                r,
                Rule::layer_kind
                    | Rule::ident
                    | Rule::word
                    | Rule::positional
                    | Rule::named_arg
                    | Rule::call
                    | Rule::layer
                    | Rule::segment_list
            ) {
            Some("a layer or a block call")
        } else {
            describe(r)
        };
        if let Some(d) = d {
            wanted.push(d.to_string());
        }
    }
    for t in tokens {
        let d = match t.as_str() {
            "\n" | "\r\n" | "\r" => "the end of the line".to_string(),
            " " | "\t" | "#" | ";" | "" | "BUILTIN_RULE" => continue,
            _ if t.chars().all(|c| c.is_ascii_alphabetic()) => continue, // keywords come as rules
            other => format!("`{other}`"),
        };
        wanted.push(d);
    }
    let mut seen = std::collections::HashSet::new();
    wanted.retain(|w| seen.insert(w.clone()));
    if wanted.is_empty() {
        return (
            format!("unexpected {found_desc}"),
            "not expected here".into(),
            help_for(rules, tokens, found, false),
        );
    }
    let expected = match wanted.len() {
        0 => unreachable!("checked above"),
        1 => wanted[0].clone(),
        _ => {
            let (last, rest) = wanted.split_last().unwrap();
            format!("{} or {}", rest.join(", "), last)
        }
    };
    let help = help_for(rules, tokens, found, text[..pos].trim_end().ends_with(','));
    (
        format!("expected {expected}, found {found_desc}"),
        format!("expected {expected} here"),
        help,
    )
}

/// Levenshtein distance, for "did you mean" suggestions (the compiler uses it too).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A one-line help for the most common ways to trip over the grammar.
fn help_for(
    expected: &[Rule],
    tokens: &[String],
    found: &str,
    after_comma: bool,
) -> Option<String> {
    let layer_context = expected.iter().any(|r| {
        matches!(
            r,
            Rule::layer_kind | Rule::segment_list | Rule::layer | Rule::call
        )
    });
    if layer_context && matches!(found, "network" | "block" | "family" | "use") {
        return Some("is the `}` that closes the definition above missing?".into());
    }
    if layer_context && after_comma {
        return Some("a comma at the end of a line continues the list on the next line: remove the comma, or add the next layer".into());
    }
    if found.starts_with('{') && expected.contains(&Rule::param_list) {
        return Some(
            "a block or family needs a parameter list, even an empty one: `block stem() { ... }`"
                .into(),
        );
    }
    if tokens.iter().any(|t| t == ",") && found != "\n" && !found.is_empty() {
        return Some("separate the arguments of a layer with commas: `conv 3x3, 64`".into());
    }
    if layer_context {
        return Some(
            "a stage holds layers such as `conv 3x3, 64` or block calls such as `basic(64) x 2`"
                .into(),
        );
    }
    if expected.contains(&Rule::ident) && is_keyword(found) {
        return Some(format!(
            "`{found}` is a reserved word of the language; choose another name"
        ));
    }
    if expected.contains(&Rule::EOI) {
        return Some("put each item (block, family, network, use) on its own line".into());
    }
    if expected.contains(&Rule::expr) || expected.contains(&Rule::int) {
        return Some("write a number, a parameter name, or an expression like `4*c`".into());
    }
    None
}

pub(crate) fn is_keyword(w: &str) -> bool {
    crate::keywords::is_keyword(w)
}
