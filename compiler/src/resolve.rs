//! Resolve: load every `use`d file, index the definitions of all files, and check every name
//! before anything is expanded. Rejecting cycles here means expansion never looks back.
//!
//! Contract: `load(sources, root)` parses the root and everything it uses;
//! `resolve(files, root)` returns a [`Program`] in which every name used by a block, family or
//! network refers to something that exists with the right number of arguments, and no block
//! (or network) depends on itself. Values (sizes, strides) are checked later, by expansion.

use std::collections::{BTreeMap, HashMap, HashSet};

use archc_grammar::ast::*;

use crate::diag::{at, at_in, CompileError, Diagnostics, FirstDefinition};
use crate::layers;
use crate::source::SourceSet;

/// Every definition visible to a compilation, and which networks the root file declares.
#[derive(Debug, Clone, Default)]
pub struct Program {
    pub blocks: BTreeMap<String, BlockDef>,
    pub families: BTreeMap<String, FamilyDef>,
    pub networks: BTreeMap<String, NetworkDef>,
    /// Networks of the root file, in source order (what `report` shows by default).
    pub root_networks: Vec<String>,
    /// Spans of the statements (layer lines, block calls, settings, parameter lists, stage
    /// lines, a network's right-hand side) that failed resolution. Empty in a program that
    /// resolved; in one from [`resolve_partial`], expansion skips what these overlap, so that
    /// `check` still reports the errors the rest of the file has.
    pub broken: Vec<Span>,
}

/// Parse `root` and, transitively, every file it `use`s (each once).
pub fn load(sources: &mut SourceSet, root: FileId) -> (Vec<(FileId, File)>, Diagnostics) {
    let mut out = Vec::new();
    let mut diags = Diagnostics::new();
    let mut queue = vec![root];
    let mut done = HashSet::new();
    while let Some(id) = queue.pop() {
        if !done.insert(id) {
            continue;
        }
        let file = match archc_grammar::parse(sources.text(id), id) {
            Ok(f) => f,
            Err(errs) => {
                for e in errs {
                    diags.push(id, CompileError::Syntax(e));
                }
                continue;
            }
        };
        for item in &file.items {
            if let Item::Use(u) = item {
                let path = sources.used_path(id, &u.path);
                match sources.load(&path) {
                    Ok(used) => queue.push(used),
                    Err(e) => diags.push(
                        id,
                        CompileError::UseNotFound {
                            path: u.path.clone(),
                            reason: e.to_string(),
                            at: at(u.path_span),
                        },
                    ),
                }
            }
        }
        out.push((id, file));
    }
    out.sort_by_key(|(id, _)| *id);
    (out, diags)
}

/// Words that named arguments take as values (`norm: none`, `bias: true`, `shortcut: A`,
/// `order: pre`).
const WORDS: &[&str] = &[
    "none", "true", "false", "auto", "A", "B", "C", "identity", "gated", "pre", "post",
];

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Block,
    Family,
    Network,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Block => "block",
            Kind::Family => "family",
            Kind::Network => "network",
        }
    }
}

/// Index the definitions and check every use of a name.
pub fn resolve(files: &[(FileId, File)], root: FileId) -> Result<Program, Diagnostics> {
    match resolve_partial(files, root) {
        (Some(p), d) if d.is_empty() => Ok(p),
        (_, d) => Err(d),
    }
}

/// As [`resolve`], but keeps going: every error, and the program with its failed statements
/// listed in [`Program::broken`], unless a cycle makes expansion unsafe (then `None`).
pub fn resolve_partial(files: &[(FileId, File)], root: FileId) -> (Option<Program>, Diagnostics) {
    let mut diags = Diagnostics::new();
    let mut prog = Program::default();
    let mut defined: HashMap<String, (Kind, Span)> = HashMap::new();

    for (_, file) in files {
        for item in &file.items {
            let (name, kind) = match item {
                Item::Use(_) => continue,
                Item::Block(b) => (&b.name, Kind::Block),
                Item::Family(f) => (&f.name, Kind::Family),
                Item::Network(n) => (&n.name, Kind::Network),
            };
            if let Some((_, first)) = defined.get(&name.name) {
                diags.push(
                    name.span.file,
                    CompileError::Duplicate {
                        what: kind.word(),
                        name: name.name.clone(),
                        at: at(name.span),
                        first: FirstDefinition::at(&name.name, at_in(*first, name.span.file)),
                    },
                );
                continue;
            }
            defined.insert(name.name.clone(), (kind, name.span));
            match item {
                Item::Block(b) => {
                    prog.blocks.insert(b.name.name.clone(), b.clone());
                }
                Item::Family(f) => {
                    prog.families.insert(f.name.name.clone(), f.clone());
                }
                Item::Network(n) => {
                    if name.span.file == root {
                        prog.root_networks.push(n.name.name.clone());
                    }
                    prog.networks.insert(n.name.name.clone(), n.clone());
                }
                Item::Use(_) => {}
            }
        }
    }

    let globals = Globals {
        defined: &defined,
        prog: &prog,
    };
    let mut ck = Checker {
        g: globals,
        diags: &mut diags,
        broken: Vec::new(),
    };
    for b in prog.blocks.values() {
        ck.block(b);
    }
    for f in prog.families.values() {
        ck.family(f);
    }
    for n in prog.networks.values() {
        ck.network(n);
    }
    let broken = ck.broken;
    let before = diags.len();
    block_cycles(&prog, &mut diags);
    network_cycles(&prog, &mut diags);
    if diags.len() > before {
        return (None, diags);
    }
    prog.broken = broken;
    (Some(prog), diags)
}

#[derive(Clone, Copy)]
struct Globals<'a> {
    defined: &'a HashMap<String, (Kind, Span)>,
    prog: &'a Program,
}

/// Names bound in the current definition.
struct Scope<'a> {
    /// Parameters: their values (numbers or blocks) are only known at expansion.
    params: &'a [Ident],
    /// Whether `stride` is bound (inside blocks).
    in_block: bool,
}

impl Scope<'_> {
    fn has(&self, name: &str) -> bool {
        self.params.iter().any(|p| p.name == name)
            || (self.in_block && name == "stride")
            || (!self.in_block && name == "classes")
    }
}

struct Checker<'a, 'd> {
    g: Globals<'a>,
    diags: &'d mut Diagnostics,
    /// Statements that had errors (see [`Program::broken`]).
    broken: Vec<Span>,
}

impl Checker<'_, '_> {
    fn err(&mut self, span: Span, e: CompileError) {
        self.diags.push(span.file, e);
    }

    /// Run `check`; if it found an error, record `span` as a broken statement.
    fn statement(&mut self, span: Span, check: impl FnOnce(&mut Self)) {
        let before = self.diags.len();
        check(self);
        if self.diags.len() > before {
            self.broken.push(span);
        }
    }

    /// Record `name` in `seen`; a second one of the same list is a duplicate.
    fn once<'n>(&mut self, seen: &mut HashMap<&'n str, Span>, what: &'static str, name: &'n Ident) {
        match seen.get(name.name.as_str()) {
            Some(first) => self.err(
                name.span,
                CompileError::Duplicate {
                    what,
                    name: name.name.clone(),
                    at: at(name.span),
                    first: FirstDefinition::at(&name.name, Some(at(*first))),
                },
            ),
            None => {
                seen.insert(&name.name, name.span);
            }
        }
    }

    fn params(&mut self, params: &[Ident]) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for p in params {
            if p.name == "stride" || p.name == "classes" {
                let help = if p.name == "stride" {
                    "`stride` is bound by the stage that repeats the block; use it without declaring it"
                } else {
                    "`classes` is the network's class count, set by `classes N` or --classes"
                };
                self.err(
                    p.span,
                    CompileError::Reserved {
                        name: p.name.clone(),
                        at: at(p.span),
                        help: help.into(),
                    },
                );
            }
            self.once(&mut seen, "parameter", p);
        }
    }

    fn block(&mut self, b: &BlockDef) {
        self.statement(b.name.span, |ck| ck.params(&b.params));
        let scope = Scope {
            params: &b.params,
            in_block: true,
        };
        for s in &b.body {
            self.statement(segment_span(s), |ck| ck.segment(s, &scope, &["stride"]));
        }
    }

    fn family(&mut self, f: &FamilyDef) {
        self.statement(f.name.span, |ck| ck.params(&f.params));
        let scope = Scope {
            params: &f.params,
            in_block: false,
        };
        self.body(&f.body, &scope);
    }

    fn network(&mut self, n: &NetworkDef) {
        match &n.def {
            NetworkRhs::Body(body) => {
                let scope = Scope {
                    params: &[],
                    in_block: false,
                };
                self.body(body, &scope);
            }
            NetworkRhs::Instance {
                target,
                args,
                args_span,
                with,
            } => {
                self.settings(with);
                let before = self.diags.len();
                match self.g.defined.get(&target.name) {
                    Some((Kind::Family, _)) => {
                        let fam = &self.g.prog.families[&target.name];
                        let found = args.as_ref().map_or(0, Vec::len);
                        if found != fam.params.len() {
                            self.err(
                                target.span,
                                CompileError::Arity {
                                    name: target.name.clone(),
                                    expected: fam.params.len(),
                                    found,
                                    at: at(args_span.unwrap_or(target.span)),
                                    help: signature_help("family", &fam.name.name, &fam.params),
                                },
                            );
                        }
                    }
                    Some((Kind::Network, _)) => {
                        if let (Some(a), Some(sp)) = (args, args_span) {
                            if !a.is_empty() {
                                self.err(
                                    *sp,
                                    CompileError::Arity {
                                        name: target.name.clone(),
                                        expected: 0,
                                        found: a.len(),
                                        at: at(*sp),
                                        help: format!(
                                            "`{}` is a network; derive from it with `= {} with ...`",
                                            target.name, target.name
                                        ),
                                    },
                                );
                            }
                        }
                    }
                    Some((Kind::Block, _)) => self.err(
                        target.span,
                        CompileError::UnknownName {
                            what: "family",
                            name: target.name.clone(),
                            at: at(target.span),
                            help: format!(
                                "`{}` is a block; a network is built from a family or another network",
                                target.name
                            ),
                        },
                    ),
                    None => {
                        let help = suggest(
                            &target.name,
                            self.g
                                .prog
                                .families
                                .keys()
                                .chain(self.g.prog.networks.keys()),
                            "define it with `family NAME(params) { ... }`",
                        );
                        self.err(
                            target.span,
                            CompileError::UnknownName {
                                what: "family or network",
                                name: target.name.clone(),
                                at: at(target.span),
                                help,
                            },
                        )
                    }
                }
                // Arguments of a family instance are evaluated with no local names: they may
                // name blocks, or be numbers.
                let empty = Scope {
                    params: &[],
                    in_block: false,
                };
                for a in args.iter().flatten() {
                    self.expr_names(a, &empty, true);
                }
                if self.diags.len() > before {
                    self.broken.push(target.span);
                }
            }
        }
    }

    fn body(&mut self, body: &Body, scope: &Scope) {
        self.settings(&body.settings);
        self.outputs(body);
        let mut names: HashMap<&str, Span> = HashMap::new();
        for st in &body.stages {
            self.statement(st.span, |ck| {
                if let Some(from) = &st.from {
                    let later = body.stages.iter().any(|s| s.name.name == from.name);
                    let help = if later {
                        "`from` reads a stage defined above this line; move this one below it"
                    } else {
                        "`from` reads the output of a stage defined above this line"
                    };
                    ck.stage_name(from, &names, help);
                }
                ck.once(&mut names, "stage", &st.name)
            });
            for s in &st.segments {
                self.statement(segment_span(s), |ck| {
                    ck.segment(s, scope, &["stride", "shortcut"])
                });
            }
        }
    }

    /// `outputs`: one line, each a defined stage, once, with a weight that is a number ≥ 0.
    fn outputs(&mut self, body: &Body) {
        let names: HashMap<&str, Span> = body
            .stages
            .iter()
            .map(|s| (s.name.name.as_str(), s.name.span))
            .collect();
        let first = body.outputs.first().map(|o| o.span);
        for (i, o) in body.outputs.iter().enumerate() {
            self.statement(o.span, |ck| {
                if i > 0 {
                    let key = Span::new(o.span.file, o.span.start, o.span.start + "outputs".len());
                    ck.err(
                        key,
                        CompileError::Duplicate {
                            what: "setting",
                            name: "outputs".into(),
                            at: at(key),
                            first: FirstDefinition::at("outputs", first.map(at)),
                        },
                    );
                }
                let mut seen: HashMap<&str, Span> = HashMap::new();
                for it in &o.items {
                    ck.stage_name(&it.stage, &names, "outputs name stages of this network");
                    ck.once(&mut seen, "output", &it.stage);
                }
            });
        }
    }

    /// `name` is one of `stages` (those before it, for `from`).
    fn stage_name(&mut self, name: &Ident, stages: &HashMap<&str, Span>, help: &str) {
        if stages.contains_key(name.name.as_str()) {
            return;
        }
        let candidates: Vec<String> = stages.keys().map(|s| s.to_string()).collect();
        let help = suggest(&name.name, candidates.iter(), help);
        self.err(
            name.span,
            CompileError::UnknownName {
                what: "stage",
                name: name.name.clone(),
                at: at(name.span),
                help,
            },
        );
    }

    fn settings(&mut self, settings: &[Setting]) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for s in settings {
            self.statement(s.span, |ck| {
                ck.once(&mut seen, "setting", &s.key);
                // The value's form and names are checked by the expander, which reads it; the
                // functions' arity here, as everywhere.
                if let Value::Expr(e) = &s.value {
                    ck.calls_arity(e);
                }
            });
        }
    }

    fn segment(&mut self, seg: &Segment, scope: &Scope, call_named: &[&str]) {
        match seg {
            Segment::Layer(l) => {
                layers::check_signature(l, self.diags);
                for v in &l.positional {
                    self.value_names(v, scope);
                }
                let mut seen: HashMap<&str, Span> = HashMap::new();
                for n in &l.named {
                    // A lone word (`norm: none`, `bias: true`, `act: silu`) is read by the
                    // expander, which names the values an argument takes when it is wrong.
                    let word = matches!(&n.value, Value::Expr(Expr::Var(v))
                        if WORDS.contains(&v.name.as_str())
                            || layers::WORD_ARGUMENTS.contains(&n.name.name.as_str()));
                    if !word {
                        self.value_names(&n.value, scope);
                    }
                    self.once(&mut seen, "argument", &n.name);
                }
            }
            Segment::Call(c) => {
                self.callee(c, scope);
                for a in &c.args {
                    self.expr_names(a, scope, true);
                }
                if let Some(r) = &c.repeat {
                    self.expr_names(r, scope, false);
                }
                let mut seen: HashMap<&str, Span> = HashMap::new();
                for n in &c.named {
                    if !call_named.contains(&n.name.name.as_str()) {
                        self.err(
                            n.name.span,
                            CompileError::UnknownArgument {
                                layer: format!("{}(...)", c.callee.name),
                                arg: n.name.name.clone(),
                                at: at(n.name.span),
                                help: format!(
                                    "a block call here takes {}",
                                    call_named
                                        .iter()
                                        .map(|s| format!("`{s}:`"))
                                        .collect::<Vec<_>>()
                                        .join(" and ")
                                ),
                            },
                        );
                    }
                    self.once(&mut seen, "argument", &n.name);
                    if n.name.name == "stride" {
                        self.value_names(&n.value, scope);
                    }
                }
            }
            Segment::Merge(m) => {
                if m.branches.len() < 2 {
                    self.err(
                        m.span,
                        CompileError::LayerArguments {
                            layer: m.kind.word().to_string(),
                            problem: format!("merges {} branch; a merge needs two or more", m.branches.len()),
                            at: at(m.span),
                            label: "one branch".into(),
                            help: "write each branch on its own line (or separate them with `;`); a name alone is the identity, such as `concat { prev; new conv 3x3, 32 }`".into(),
                        },
                    );
                }
                let mut names: HashMap<&str, Span> = HashMap::new();
                for b in &m.branches {
                    self.once(&mut names, "branch", &b.name);
                    // A call in a branch is inlined, as in a block: it has no shortcut of its
                    // own, so it takes `stride:` only.
                    for s in &b.segments {
                        self.segment(s, scope, &["stride"]);
                    }
                }
            }
        }
    }

    fn callee(&mut self, c: &Call, scope: &Scope) {
        let name = &c.callee.name;
        if scope.params.iter().any(|p| &p.name == name) {
            return; // a block passed as an argument: checked when expanded
        }
        match self.g.defined.get(name) {
            Some((Kind::Block, _)) => {
                let b = &self.g.prog.blocks[name];
                if b.params.len() != c.args.len() {
                    self.err(
                        c.callee.span,
                        CompileError::Arity {
                            name: name.clone(),
                            expected: b.params.len(),
                            found: c.args.len(),
                            at: at(c.args_span),
                            help: signature_help("block", name, &b.params),
                        },
                    );
                }
            }
            Some((k, _)) => self.err(
                c.callee.span,
                CompileError::NotABlock {
                    name: name.clone(),
                    at: at(c.callee.span),
                    found: format!("a {}", k.word()),
                    help: "only blocks can be called inside a stage or a block".into(),
                },
            ),
            None => {
                let help = suggest(
                    name,
                    self.g
                        .prog
                        .blocks
                        .keys()
                        .chain(scope.params.iter().map(|p| &p.name)),
                    "define it with `block NAME(params) { ... }`, or `use` the file that does",
                );
                self.err(
                    c.callee.span,
                    CompileError::UnknownName {
                        what: "block",
                        name: name.clone(),
                        at: at(c.callee.span),
                        help,
                    },
                )
            }
        }
    }

    fn value_names(&mut self, v: &Value, scope: &Scope) {
        if let Value::Expr(e) = v {
            self.expr_names(e, scope, false);
        }
    }

    /// A function of expressions called with the number of arguments it takes.
    fn builtin_arity(&mut self, func: Builtin, found: usize, span: Span) {
        let (n, exact) = func.arity();
        if (exact && found != n) || found < n {
            let name = func.name();
            self.err(
                span,
                CompileError::Arity {
                    name: name.to_string(),
                    expected: n,
                    found,
                    at: at(span),
                    help: match func {
                        Builtin::Max | Builtin::Min => {
                            format!("`{name}` takes one number or more")
                        }
                        Builtin::Divisible => {
                            "`divisible(v, d)` rounds v to a multiple of d".into()
                        }
                        _ => format!("`{name}(x)` takes one number"),
                    },
                },
            );
        }
    }

    /// The functions called in `e` (a setting's value, whose names the expander checks).
    fn calls_arity(&mut self, e: &Expr) {
        match e {
            Expr::Int(..) | Expr::In(..) | Expr::Float(..) | Expr::Var(_) => {}
            Expr::Call { func, args, span } => {
                self.builtin_arity(*func, args.len(), *span);
                for a in args {
                    self.calls_arity(a);
                }
            }
            Expr::Neg(inner, _) => self.calls_arity(inner),
            Expr::Binary { lhs, rhs, .. } => {
                self.calls_arity(lhs);
                self.calls_arity(rhs);
            }
        }
    }

    /// Check that every name in `e` is bound. `block_ok`: a lone name may denote a block.
    fn expr_names(&mut self, e: &Expr, scope: &Scope, block_ok: bool) {
        match e {
            Expr::Int(..) | Expr::In(..) | Expr::Float(..) => {}
            Expr::Call { func, args, span } => {
                self.builtin_arity(*func, args.len(), *span);
                for a in args {
                    self.expr_names(a, scope, false);
                }
            }
            Expr::Neg(inner, _) => self.expr_names(inner, scope, false),
            Expr::Binary { lhs, rhs, .. } => {
                self.expr_names(lhs, scope, false);
                self.expr_names(rhs, scope, false);
            }
            Expr::Var(v) => {
                if scope.has(&v.name) {
                    return;
                }
                match self.g.defined.get(&v.name) {
                    Some((Kind::Block, _)) if block_ok => {}
                    Some((Kind::Block, _)) => self.err(
                        v.span,
                        CompileError::NotANumber {
                            name: v.name.clone(),
                            at: at(v.span),
                        },
                    ),
                    _ => {
                        let mut candidates: Vec<&String> =
                            scope.params.iter().map(|p| &p.name).collect();
                        let stride = "stride".to_string();
                        let classes = "classes".to_string();
                        if scope.in_block {
                            candidates.push(&stride);
                        } else {
                            // `fc clases`: the class count is a name in networks and families.
                            candidates.push(&classes);
                        }
                        let mut help = suggest(
                            &v.name,
                            candidates.into_iter(),
                            "names in expressions are the parameters of the enclosing block or family",
                        );
                        if v.name == "stride" && !scope.in_block {
                            help = "`stride` is bound only inside blocks; a stage sets it with `stride: N`".into();
                        }
                        self.err(
                            v.span,
                            CompileError::UnknownName {
                                what: "name",
                                name: v.name.clone(),
                                at: at(v.span),
                                help,
                            },
                        )
                    }
                }
            }
        }
    }
}

fn signature_help(what: &str, name: &str, params: &[Ident]) -> String {
    let ps: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
    format!("{what} `{name}` is declared as `{name}({})`", ps.join(", "))
}

/// "did you mean" by edit distance, or the fallback advice.
pub(crate) fn suggest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a String>,
    fallback: &str,
) -> String {
    let best = candidates
        .map(|c| (archc_grammar::edit_distance(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, c)) => format!("did you mean `{c}`?"),
        None => fallback.to_string(),
    }
}

fn segment_span(s: &Segment) -> Span {
    s.span()
}

/// Blocks that call each other (by their global names) in a loop.
fn block_cycles(prog: &Program, diags: &mut Diagnostics) {
    let edges = |b: &BlockDef| -> Vec<(String, Span)> {
        Segment::calls(&b.body)
            .into_iter()
            .filter(|c| {
                prog.blocks.contains_key(&c.callee.name)
                    && !b.params.iter().any(|p| p.name == c.callee.name)
            })
            .map(|c| (c.callee.name.clone(), c.callee.span))
            .collect()
    };
    let graph: BTreeMap<String, Vec<(String, Span)>> = prog
        .blocks
        .iter()
        .map(|(n, b)| (n.clone(), edges(b)))
        .collect();
    report_cycles(&graph, "blocks", diags);
}

/// Networks derived from each other in a loop (`network a = b`, `network b = a`).
fn network_cycles(prog: &Program, diags: &mut Diagnostics) {
    let graph: BTreeMap<String, Vec<(String, Span)>> = prog
        .networks
        .iter()
        .map(|(n, def)| {
            let e = match &def.def {
                NetworkRhs::Instance { target, .. } if prog.networks.contains_key(&target.name) => {
                    vec![(target.name.clone(), target.span)]
                }
                _ => vec![],
            };
            (n.clone(), e)
        })
        .collect();
    report_cycles(&graph, "networks", diags);
}

fn report_cycles(
    graph: &BTreeMap<String, Vec<(String, Span)>>,
    what: &'static str,
    diags: &mut Diagnostics,
) {
    // Iterative DFS with colours; each back edge is one cycle, reported at its use.
    #[derive(Clone, Copy, PartialEq)]
    enum C {
        White,
        Grey,
        Black,
    }
    let mut colour: HashMap<&str, C> = graph.keys().map(|k| (k.as_str(), C::White)).collect();
    for start in graph.keys() {
        if colour[start.as_str()] != C::White {
            continue;
        }
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        colour.insert(start, C::Grey);
        while let Some((node, idx)) = stack.pop() {
            let succ = &graph[node];
            if idx < succ.len() {
                stack.push((node, idx + 1));
                let (next, span) = &succ[idx];
                match colour.get(next.as_str()).copied().unwrap_or(C::Black) {
                    C::White => {
                        colour.insert(next, C::Grey);
                        stack.push((next, 0));
                    }
                    C::Grey => {
                        let pos = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                        let mut path: Vec<&str> = stack[pos..].iter().map(|(n, _)| *n).collect();
                        path.push(next);
                        diags.push(
                            span.file,
                            CompileError::Cycle {
                                what,
                                path: path.join(" → "),
                                at: at(*span),
                                help: if what == "blocks" {
                                    "break the cycle: a block may use other blocks, but never, through any chain, itself".into()
                                } else {
                                    "break the cycle: derive each network from a family or from a network that does not lead back to it".into()
                                },
                            },
                        );
                    }
                    C::Black => {}
                }
            } else {
                colour.insert(node, C::Black);
            }
        }
    }
}
