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
        Rule::setting | Rule::setting_key => {
            "a setting (input, classes, shortcut, norm, act, bias)"
        }
        Rule::stage => "a stage line (a name followed by layers)",
        Rule::segment_list | Rule::layer | Rule::call => "a layer or a block call",
        Rule::layer_kind => {
            "a layer (conv, maxpool, avgpool, fc, dropout, flatten, softmax, relu, bn)"
        }
        Rule::positional | Rule::named_arg => "an argument",
        Rule::dims => "dimensions such as 3x3",
        Rule::float => "a decimal number",
        Rule::expr | Rule::term | Rule::neg => "an expression",
        Rule::int => "a number",
        Rule::add_op | Rule::mul_op => "an operator",
        Rule::instance => "a family name",
        _ => return None,
    })
}

/// A one-line help for the most common ways to trip over the grammar.
pub(crate) fn help_for(expected: &[Rule], found: &str) -> Option<String> {
    if found.starts_with('{') && expected.contains(&Rule::param_list) {
        return Some(
            "a block or family needs a parameter list, even an empty one: `block stem() { ... }`"
                .into(),
        );
    }
    if expected.contains(&Rule::EOI) || expected.contains(&Rule::sep) {
        return Some(
            "put each item on its own line, and separate the arguments of a layer with commas"
                .into(),
        );
    }
    if expected.contains(&Rule::layer_kind) || expected.contains(&Rule::segment_list) {
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
    if expected.contains(&Rule::expr) || expected.contains(&Rule::int) {
        return Some("write a number, a parameter name, or an expression like `4*c`".into());
    }
    None
}

pub(crate) fn is_keyword(w: &str) -> bool {
    matches!(
        w,
        "use"
            | "family"
            | "network"
            | "with"
            | "x"
            | "conv"
            | "maxpool"
            | "avgpool"
            | "fc"
            | "dropout"
            | "flatten"
            | "softmax"
            | "relu"
            | "bn"
            | "input"
            | "shortcut"
            | "norm"
            | "act"
            | "bias"
    )
}
