//! Every mistake the compiler reports. Each variant has a stable code, a label on the span
//! and a help line; the doc comment says what it means (docs/diagnostics.md lists them).

use archc_grammar::ast::{FileId, Span};
use archc_grammar::SyntaxError;
use miette::{Diagnostic, SourceSpan};
use thiserror::Error;

use crate::source::SourceSet;

#[derive(Debug, Clone, Error, Diagnostic)]
pub enum CompileError {
    /// The text does not follow the grammar.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Syntax(SyntaxError),

    /// A `use "file.arch"` names a file that cannot be read.
    #[error("cannot read `{path}`: {reason}")]
    #[diagnostic(
        code(archc::resolve::use_not_found),
        help("paths in `use` are relative to the file that contains them")
    )]
    UseNotFound {
        path: String,
        reason: String,
        #[label("used here")]
        at: SourceSpan,
    },

    /// Two definitions (or parameters, stages, settings, arguments) share one name.
    #[error("{what} `{name}` is defined twice")]
    #[diagnostic(
        code(archc::resolve::duplicate),
        help("rename one of them, or delete the copy")
    )]
    Duplicate {
        what: &'static str,
        name: String,
        #[label("second definition")]
        at: SourceSpan,
        /// The first definition, shown after the second (where it is in the same file).
        #[related]
        first: Vec<FirstDefinition>,
    },

    /// A block or family parameter that its body never reads (a warning: exit 0).
    #[error("{what} `{owner}` never uses its parameter `{name}`")]
    #[diagnostic(
        code(archc::resolve::unused_parameter),
        severity(Warning),
        help("remove the parameter (and its argument at every call), or use it in the body")
    )]
    UnusedParameter {
        what: &'static str,
        name: String,
        owner: String,
        #[label("never read")]
        at: SourceSpan,
    },

    /// A name that is not defined where it is used.
    #[error("unknown {what} `{name}`")]
    #[diagnostic(code(archc::resolve::unknown_name))]
    UnknownName {
        what: &'static str,
        name: String,
        #[label("not defined here")]
        at: SourceSpan,
        #[help]
        help: String,
    },

    /// A block or family called with the wrong number of arguments.
    #[error("`{name}` takes {expected} argument{}, but {found} {} given", plural(*expected), if *found == 1 { "was" } else { "were" })]
    #[diagnostic(code(archc::resolve::arity))]
    Arity {
        name: String,
        expected: usize,
        found: usize,
        #[label("{found} argument{} here", plural(*found))]
        at: SourceSpan,
        #[help]
        help: String,
    },

    /// Blocks (or networks) that use each other in a loop can never be expanded.
    #[error("{what} use each other in a cycle: {path}")]
    #[diagnostic(code(archc::resolve::cycle))]
    Cycle {
        what: &'static str,
        path: String,
        #[label("this use closes the cycle")]
        at: SourceSpan,
        #[help]
        help: String,
    },

    /// A parameter takes a name the language binds itself.
    #[error("`{name}` cannot be used as a parameter name")]
    #[diagnostic(code(archc::resolve::reserved))]
    Reserved {
        name: String,
        #[label("reserved")]
        at: SourceSpan,
        #[help]
        help: String,
    },

    /// A name that holds a number was called like a block.
    #[error("`{name}` is not a block")]
    #[diagnostic(code(archc::resolve::not_a_block))]
    NotABlock {
        name: String,
        #[label("{found}")]
        at: SourceSpan,
        found: String,
        #[help]
        help: String,
    },

    /// A block was used where a number is needed.
    #[error("`{name}` is a block, not a number")]
    #[diagnostic(
        code(archc::resolve::not_a_number),
        help("sizes, strides and repeat counts are integer expressions; call a block as `name(args)`")
    )]
    NotANumber {
        name: String,
        #[label("a block used as a number")]
        at: SourceSpan,
    },

    /// A layer does not take an argument of this name.
    #[error("`{layer}` has no argument `{arg}`")]
    #[diagnostic(code(archc::layer::unknown_argument))]
    UnknownArgument {
        layer: String,
        arg: String,
        #[label("unknown argument")]
        at: SourceSpan,
        #[help]
        help: String,
    },

    /// A layer has too few or too many positional arguments.
    #[error("`{layer}` {problem}")]
    #[diagnostic(code(archc::layer::arguments))]
    LayerArguments {
        layer: String,
        problem: String,
        #[label("{label}")]
        at: SourceSpan,
        label: String,
        #[help]
        help: String,
    },

    /// An argument or setting has a value of the wrong kind (`norm: relu`, `shortcut D`).
    #[error("`{what}` cannot be {found}")]
    #[diagnostic(code(archc::layer::bad_value))]
    BadValue {
        what: String,
        found: String,
        #[label("expected {expected}")]
        at: SourceSpan,
        expected: String,
        #[help]
        help: String,
    },

    /// A dropout probability outside [0, 1).
    #[error("dropout probability {p} is outside [0, 1)")]
    #[diagnostic(
        code(archc::layer::probability),
        help("a dropout probability is at least 0 and below 1, such as 0.5")
    )]
    Probability {
        p: f64,
        #[label("not a probability")]
        at: SourceSpan,
    },

    /// A network with no `input` line.
    #[error("network `{name}` has no input shape")]
    #[diagnostic(
        code(archc::network::missing_input),
        help("add a line such as `input 3x224x224` to the network or its family, or pass --input")
    )]
    MissingInput {
        name: String,
        #[label("declared here")]
        at: SourceSpan,
    },

    /// `--classes` was given for a network that does not declare `classes`.
    #[error("network `{name}` does not declare `classes`, so --classes cannot change it")]
    #[diagnostic(
        code(archc::network::no_classes),
        help("declare `classes 1000` in the family and write the last layer as `fc classes`")
    )]
    NoClasses {
        name: String,
        #[label("declared here")]
        at: SourceSpan,
    },

    /// A network with no layers.
    #[error("network `{name}` has no layers")]
    #[diagnostic(
        code(archc::network::empty),
        help("add stage lines such as `conv1 conv 7x7, 64, stride: 2`")
    )]
    EmptyNetwork {
        name: String,
        #[label("declared here")]
        at: SourceSpan,
    },

    /// Integer arithmetic that does not fit in 64 bits.
    #[error("arithmetic overflow: {expr}")]
    #[diagnostic(
        code(archc::eval::overflow),
        help("sizes must fit in 64 bits; check the expression for a runaway product")
    )]
    Overflow {
        expr: String,
        #[label("overflows")]
        at: SourceSpan,
    },

    /// Division or remainder by zero.
    #[error("division by zero")]
    #[diagnostic(
        code(archc::eval::division_by_zero),
        help("the right-hand side evaluates to 0 here")
    )]
    DivisionByZero {
        #[label("divides by zero")]
        at: SourceSpan,
    },

    /// A size, count, stride or similar that must be positive (padding: not negative) is not.
    #[error("{what} must be {bound}, but is {value}")]
    #[diagnostic(code(archc::size::non_positive))]
    NonPositive {
        what: String,
        bound: &'static str,
        value: i64,
        #[label("evaluates to {value}")]
        at: SourceSpan,
        #[help]
        help: String,
    },

    /// A size beyond anything a network could use (guards time and memory of the compiler).
    #[error("{what} of {value} is beyond the limit of {limit}")]
    #[diagnostic(code(archc::size::too_large))]
    TooLarge {
        what: String,
        value: String,
        limit: String,
        #[label("too large")]
        at: SourceSpan,
        #[help]
        help: String,
    },

    /// The spatial map shrinks to nothing.
    #[error("`{layer}` shrinks the {input} map to nothing")]
    #[diagnostic(code(archc::shape::empty_map))]
    EmptyMap {
        layer: String,
        input: String,
        #[label("output would be {output}")]
        at: SourceSpan,
        output: String,
        #[help]
        help: String,
    },

    /// The kernel does not fit in the (padded) input.
    #[error("`{layer}` has a {kernel} kernel but its padded input is only {padded}")]
    #[diagnostic(code(archc::shape::kernel_too_large))]
    KernelTooLarge {
        layer: String,
        kernel: String,
        padded: String,
        #[label("kernel larger than its input")]
        at: SourceSpan,
        #[help]
        help: String,
    },

    /// The block's output cannot be added to its shortcut.
    #[error("residual shapes cannot be added under shortcut {option}: block input {input}, block output {output}")]
    #[diagnostic(code(archc::shape::residual_mismatch))]
    ResidualMismatch {
        option: String,
        input: String,
        output: String,
        #[label("{reason}")]
        at: SourceSpan,
        reason: String,
        /// The layer inside the block that changed the shape, where it is in the same file.
        #[label("{cause_text}")]
        cause: Option<SourceSpan>,
        cause_text: String,
        #[help]
        help: String,
    },

    /// Branches of a merge whose shapes cannot be merged.
    #[error("the branches of `{kind}` cannot be merged: {shapes}")]
    #[diagnostic(code(archc::shape::merge_mismatch))]
    MergeMismatch {
        kind: &'static str,
        shapes: String,
        #[label("merged here")]
        at: SourceSpan,
        #[label(collection)]
        branches: Vec<miette::LabeledSpan>,
        #[help]
        help: String,
    },

    /// `split` into parts that do not divide the channels.
    #[error("`split` cannot give {parts} branches equal parts of {channels} channels")]
    #[diagnostic(code(archc::shape::split))]
    SplitChannels {
        parts: u64,
        channels: u64,
        #[label("{channels} channels into {parts} parts")]
        at: SourceSpan,
        #[help]
        help: String,
    },

    /// A decimal where a whole number is needed (a channel count, a repeat count).
    #[error("{value} is not a whole number")]
    #[diagnostic(
        code(archc::eval::not_whole),
        help("make it one with `ceil(...)`, `floor(...)`, `round(...)` or `divisible(..., 8)`")
    )]
    NotWhole {
        value: String,
        #[label("a whole number is needed here")]
        at: SourceSpan,
    },

    /// `in.h` or `in.w` where the input is a vector.
    #[error("`in.{dim}` of a vector: the input here is {shape}")]
    #[diagnostic(
        code(archc::shape::in_dim),
        help("a vector has only `in.c` (its length); `in.h` and `in.w` are a map's")
    )]
    InDimOfVector {
        dim: char,
        shape: String,
        #[label("the input is a vector")]
        at: SourceSpan,
    },

    /// Groups that do not divide the channels.
    #[error(
        "groups ({groups}) must divide both input channels ({cin}) and output channels ({cout})"
    )]
    #[diagnostic(code(archc::shape::groups))]
    Groups {
        groups: u64,
        cin: u64,
        cout: u64,
        #[label("{groups} groups")]
        at: SourceSpan,
        #[help]
        help: String,
    },

    /// An even kernel with the default ("same") padding has no centre to pad around.
    #[error("a {kernel} kernel has no default padding")]
    #[diagnostic(
        code(archc::shape::even_kernel),
        help(
            "the default padding keeps the size for odd kernels only; give `padding: N` explicitly"
        )
    )]
    EvenKernel {
        kernel: String,
        #[label("even kernel")]
        at: SourceSpan,
    },

    /// Pool padding must be at most half the kernel (PyTorch and Burn refuse more).
    #[error("pool padding {padding} is more than half of the {kernel} kernel")]
    #[diagnostic(
        code(archc::shape::pool_padding),
        help("padding of a pooling window can be at most half its size")
    )]
    PoolPadding {
        padding: String,
        kernel: String,
        #[label("too much padding")]
        at: SourceSpan,
    },

    /// A layer that needs a feature map (C×H×W) got a flat vector.
    #[error("`{layer}` needs a C×H×W feature map, but its input is the vector {input}")]
    #[diagnostic(
        code(archc::shape::needs_map),
        help("convolutions and pools must come before `flatten` and `fc`")
    )]
    NeedsMap {
        layer: String,
        input: String,
        #[label("input is already flat")]
        at: SourceSpan,
    },

    /// The stage passes a stride to a block that never uses `stride`.
    #[error("stride {stride} given to block `{block}` is never used")]
    #[diagnostic(
        code(archc::shape::stride_unused),
        help("write `stride: stride` on the layer of the block that should downsample")
    )]
    StrideUnused {
        stride: u64,
        block: String,
        #[label("this stride would be ignored")]
        at: SourceSpan,
    },

    /// The input shape line is not C×H×W or N.
    #[error("input shape {found} has {rank} dimensions")]
    #[diagnostic(
        code(archc::shape::input_rank),
        help("write the input as CxHxW (such as 3x224x224), or as a single size for flat input")
    )]
    InputRank {
        found: String,
        rank: usize,
        #[label("expected C×H×W")]
        at: SourceSpan,
    },
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

impl CompileError {
    /// A short stable identifier for grouping in tests and docs.
    pub fn code(&self) -> String {
        Diagnostic::code(self)
            .map(|c| c.to_string())
            .unwrap_or_default()
    }
}

/// A compile error and the file its spans point into.
#[derive(Debug, Clone)]
pub struct Located {
    pub file: FileId,
    pub error: CompileError,
}

/// Every error of one compilation, in source order.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    pub errors: Vec<Located>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, file: FileId, error: CompileError) {
        self.errors.push(Located { file, error });
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.errors.extend(other.errors);
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Errors sorted by file and position, each reported once (a block used many times
    /// reports its mistake once).
    pub fn finish(mut self) -> Self {
        let key = |l: &Located| {
            let off = miette::Diagnostic::labels(&l.error)
                .and_then(|mut it| it.next())
                .map(|lab| lab.offset())
                .unwrap_or(0);
            (l.file, off)
        };
        self.errors.sort_by_key(key);
        let mut seen = std::collections::HashSet::new();
        self.errors
            .retain(|l| seen.insert((key(l), l.error.to_string())));
        self
    }

    /// miette reports, each carrying its file's source, ready to render.
    pub fn reports(&self, sources: &SourceSet) -> Vec<miette::Report> {
        self.errors
            .iter()
            .map(|l| {
                let src = sources.named_source(l.file);
                miette::Report::new(l.error.clone()).with_source_code(src)
            })
            .collect()
    }

    /// Render every error as plain text (no colour), as the tests and non-terminals see it.
    pub fn render_plain(&self, sources: &SourceSet) -> String {
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(100);
        let mut out = String::new();
        for r in self.reports(sources) {
            let _ = handler.render_report(&mut out, r.as_ref());
            out.push('\n');
        }
        out
    }
}

/// Where a name was first defined, shown under the error about its second definition.
#[derive(Debug, Clone, Error, Diagnostic)]
#[error("`{name}` is first defined here")]
#[diagnostic(severity(Advice))]
pub struct FirstDefinition {
    pub name: String,
    #[label("first definition")]
    pub at: SourceSpan,
}

impl FirstDefinition {
    /// The first definition of `name` at `at`, if it can be shown.
    pub fn at(name: &str, at: Option<SourceSpan>) -> Vec<FirstDefinition> {
        at.map(|at| FirstDefinition {
            name: name.to_string(),
            at,
        })
        .into_iter()
        .collect()
    }
}

/// Shorthand used by every pass: a label span in its file.
pub fn at(span: Span) -> SourceSpan {
    span.into()
}

/// The span as a label only if it is in `file` (labels cannot point into another file).
pub fn at_in(span: Span, file: FileId) -> Option<SourceSpan> {
    (span.file == file).then(|| span.into())
}
