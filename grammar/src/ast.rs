//! The syntax tree of one `.arch` file. Every node keeps the span it was parsed from.

use serde::Serialize;

/// Which loaded source a span points into. The compiler's source set hands these out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
pub struct FileId(pub u32);

/// A byte range in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
pub struct Span {
    pub file: FileId,
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Self {
        Span { file, start, end }
    }

    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The smallest span covering both (same file assumed).
    pub fn to(&self, other: Span) -> Span {
        Span::new(
            self.file,
            self.start.min(other.start),
            self.end.max(other.end),
        )
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(s: Span) -> Self {
        (s.start, s.len()).into()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct File {
    pub items: Vec<Item>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Item {
    Use(UseDecl),
    Block(BlockDef),
    Family(FamilyDef),
    Network(NetworkDef),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UseDecl {
    pub path: String,
    pub path_span: Span,
    pub span: Span,
}

/// `block name(params) { segments }`: a sequence of layers and block calls. The name
/// `stride` is bound implicitly by the stage that repeats the block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockDef {
    pub name: Ident,
    pub params: Vec<Ident>,
    pub body: Vec<Segment>,
    pub span: Span,
}

/// `family name(params) { body }`: a network template.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FamilyDef {
    pub name: Ident,
    pub params: Vec<Ident>,
    pub body: Body,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkDef {
    pub name: Ident,
    pub def: NetworkRhs,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum NetworkRhs {
    /// `network n { ... }`
    Body(Body),
    /// `network n = family(args) with settings` or `network n = other with settings`
    Instance {
        target: Ident,
        args: Option<Vec<Expr>>,
        args_span: Option<Span>,
        with: Vec<Setting>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Body {
    pub settings: Vec<Setting>,
    pub stages: Vec<Stage>,
    /// `outputs ...` lines (at most one is valid; resolve says so).
    pub outputs: Vec<Outputs>,
    pub span: Span,
}

/// `outputs head, aux1: 0.3`: the stages whose outputs the network returns, main one first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outputs {
    pub items: Vec<OutputItem>,
    pub span: Span,
}

/// One output: a stage's name and its weight in the training loss.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputItem {
    pub stage: Ident,
    pub weight: Option<(f64, Span)>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting {
    pub key: Ident,
    pub value: Value,
    pub span: Span,
}

/// One line of the layer table: a name and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stage {
    pub name: Ident,
    /// `name from other, ...`: the stage reads `other`'s output and leaves the main line
    /// where it was (an auxiliary head).
    pub from: Option<Ident>,
    pub segments: Vec<Segment>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Segment {
    Layer(Layer),
    Call(Call),
    Merge(Merge),
}

impl Segment {
    pub fn span(&self) -> Span {
        match self {
            Segment::Layer(l) => l.span,
            Segment::Call(c) => c.span,
            Segment::Merge(m) => m.span,
        }
    }

    /// Every block call in `segs`, inside merges too, in text order.
    pub fn calls(segs: &[Segment]) -> Vec<&Call> {
        let mut out = Vec::new();
        fn walk<'a>(segs: &'a [Segment], out: &mut Vec<&'a Call>) {
            for s in segs {
                match s {
                    Segment::Call(c) => out.push(c),
                    Segment::Merge(m) => m.branches.iter().for_each(|b| walk(&b.segments, out)),
                    Segment::Layer(_) => {}
                }
            }
        }
        walk(segs, &mut out);
        out
    }
}

/// How the branches of a merge combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeKind {
    /// Along the channels.
    Concat,
    /// Elementwise sum.
    Add,
    /// Elementwise product; a C×1×1 map or a C vector broadcasts over a C×H×W map.
    Mul,
    /// Elementwise maximum.
    Max,
}

impl MergeKind {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "concat" => MergeKind::Concat,
            "add" => MergeKind::Add,
            "mul" => MergeKind::Mul,
            "max" => MergeKind::Max,
            _ => return None,
        })
    }

    pub fn word(self) -> &'static str {
        match self {
            MergeKind::Concat => "concat",
            MergeKind::Add => "add",
            MergeKind::Mul => "mul",
            MergeKind::Max => "max",
        }
    }
}

/// `concat [split] { branch ...; branch ... }`: branches from one input, merged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Merge {
    pub kind: MergeKind,
    pub kind_span: Span,
    /// The branches take equal parts of the input's channels (ShuffleNetV2's split).
    pub split: bool,
    pub branches: Vec<Branch>,
    pub span: Span,
}

/// One branch of a merge: a name and its layers; no layers is the identity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Branch {
    pub name: Ident,
    pub segments: Vec<Segment>,
    pub span: Span,
}

/// A layer kind: one of the words of the grammar's `layer_kind` rule
/// ([`crate::keywords::LAYER_KINDS`]). What each kind means is the compiler's op units'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct LayerKind(&'static str);

impl LayerKind {
    pub fn keyword(self) -> &'static str {
        self.0
    }

    /// The kind named `s`, if the grammar has it.
    pub fn from_keyword(s: &str) -> Option<Self> {
        crate::keywords::LAYER_KINDS
            .iter()
            .find(|k| **k == s)
            .map(|k| LayerKind(k))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Layer {
    pub kind: LayerKind,
    pub kind_span: Span,
    pub positional: Vec<Value>,
    pub named: Vec<NamedArg>,
    pub span: Span,
}

/// `callee(args) x repeat, name: value, ...`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    pub callee: Ident,
    pub args: Vec<Expr>,
    pub args_span: Span,
    pub repeat: Option<Expr>,
    pub named: Vec<NamedArg>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamedArg {
    pub name: Ident,
    pub value: Value,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Value {
    /// `3x224x224`
    Dims(Vec<u64>, Span),
    /// `0.5`
    Float(f64, Span),
    /// An integer expression, or a name that may denote a block.
    Expr(Expr),
    /// A bare word that is not a name, such as `relu` or `none`.
    Word(Ident),
}

impl Value {
    pub fn span(&self) -> Span {
        match self {
            Value::Dims(_, s) | Value::Float(_, s) => *s,
            Value::Expr(e) => e.span(),
            Value::Word(w) => w.span,
        }
    }

    /// The bare word this value is, if it is one (a word or a lone name).
    pub fn as_word(&self) -> Option<&Ident> {
        match self {
            Value::Word(w) => Some(w),
            Value::Expr(Expr::Var(v)) => Some(v),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }
}

/// A dimension of the enclosing block's input: `in.c`, `in.h`, `in.w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum InDim {
    C,
    H,
    W,
}

impl InDim {
    pub fn letter(self) -> char {
        match self {
            InDim::C => 'c',
            InDim::H => 'h',
            InDim::W => 'w',
        }
    }
}

/// A function expressions may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Builtin {
    /// `ceil(x)`: the smallest whole number not below x.
    Ceil,
    /// `floor(x)`.
    Floor,
    /// `round(x)`: the nearest whole number, halves to even (as Python's `round`).
    Round,
    /// `max(a, b, ...)`.
    Max,
    /// `min(a, b, ...)`.
    Min,
    /// `divisible(v, d)`: v rounded to a multiple of d, never below d nor 10% below v
    /// (torchvision's and TensorFlow's `_make_divisible`).
    Divisible,
}

impl Builtin {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ceil" => Builtin::Ceil,
            "floor" => Builtin::Floor,
            "round" => Builtin::Round,
            "max" => Builtin::Max,
            "min" => Builtin::Min,
            "divisible" => Builtin::Divisible,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Builtin::Ceil => "ceil",
            Builtin::Floor => "floor",
            Builtin::Round => "round",
            Builtin::Max => "max",
            Builtin::Min => "min",
            Builtin::Divisible => "divisible",
        }
    }

    /// How many arguments it takes: exactly, or at least (`max`, `min`).
    pub fn arity(self) -> (usize, bool) {
        match self {
            Builtin::Ceil | Builtin::Floor | Builtin::Round => (1, true),
            Builtin::Max | Builtin::Min => (1, false),
            Builtin::Divisible => (2, true),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Expr {
    Int(u64, Span),
    /// A decimal inside an expression (`c * 1.1`).
    Float(f64, Span),
    /// `ceil(n * d)`.
    Call {
        func: Builtin,
        args: Vec<Expr>,
        span: Span,
    },
    /// `in.c`: read from the shape reaching the enclosing block.
    In(InDim, Span),
    Var(Ident),
    Neg(Box<Expr>, Span),
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        span: Span,
    },
}

impl Expr {
    pub fn span(&self) -> Span {
        match self {
            Expr::Int(_, s) | Expr::Neg(_, s) | Expr::In(_, s) | Expr::Float(_, s) => *s,
            Expr::Call { span, .. } => *span,
            Expr::Var(v) => v.span,
            Expr::Binary { span, .. } => *span,
        }
    }
}
