//! Expand: one network of a resolved program becomes a flat [`Graph`]. Family parameters are
//! bound, integer expressions evaluated (checked 64-bit arithmetic), repeats unrolled with
//! the stage's stride on the first repetition, and each repetition of a block wrapped in its
//! shortcut: `y = act(F(x) + shortcut(x))`, the block's last activation moved after the add.
//!
//! Contract: every node's inputs precede it; every node has the span of the text it came
//! from. Sizes are checked to be positive and below the limits of `layers::args`.

use std::cell::Cell;
use std::collections::HashMap;

use archc_grammar::ast::*;

use crate::diag::{at, CompileError, Diagnostics};
use crate::graph::*;
use crate::infer::{infer_node, TypedNode};
use crate::layers::args::{
    in_range, too_large, ArgVal, Args, MAX_CHANNELS, MAX_SPATIAL, MAX_STRIDE,
};
use crate::layers::{self, activation, LayerDefaults};
use crate::resolve::Program;

/// The most repetitions one stage may ask for.
pub const MAX_REPEAT: i64 = 10_000;
/// The most nodes one network may expand to.
pub const MAX_NODES: usize = 200_000;
/// How deep block calls may nest (through block-valued parameters).
pub const MAX_DEPTH: usize = 32;

/// Command-line overrides of a network's input shape and class count.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub input: Option<Vec<u64>>,
    pub classes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Int(i64),
    /// A decimal (`1.1 * c`, a family's width multiplier); where a whole number is needed it
    /// must be one (`ceil`, `floor`, `round` and `divisible` make one).
    Float(f64),
    Block(String),
}

/// The most a decimal may be to stand for a whole number (2^53: every integer below is exact).
const MAX_EXACT_FLOAT: f64 = 9_007_199_254_740_992.0;

struct Env {
    vars: HashMap<String, Val>,
    /// Set when `stride` is read, to catch a stage stride that no layer uses.
    stride_used: Cell<bool>,
}

impl Env {
    fn new() -> Self {
        Env {
            vars: HashMap::new(),
            stride_used: Cell::new(false),
        }
    }
}

/// The network-wide settings after the family's lines and `with` overrides.
struct Settings {
    input: Option<(Vec<u64>, Span)>,
    classes: Option<(i64, Span)>,
    shortcut: ShortcutOption,
    naming: Naming,
    defaults: LayerDefaults,
}

const SHORTCUT_HELP: &str = "A: zero-padding identity, B: projection where shapes change, C: projection always, identity: identity where shapes match and none elsewhere, gated: a Highway gate, none: plain network";

/// Abort expansion (the node limit was hit); the error is already recorded.
struct Abort;

pub fn expand(prog: &Program, name: &str, ov: &Overrides) -> Result<Graph, Diagnostics> {
    let net = prog
        .networks
        .get(name)
        .expect("callers pass a network name from the program");
    let mut ex = Expander {
        prog,
        nodes: Vec::new(),
        stages: Vec::new(),
        diags: Diagnostics::new(),
        cur: NodeId(0),
        defaults: LayerDefaults::default(),
        stage: None,
        stage_span: net.span,
        stage_reps: 0,
        skipped: 0,
        typed: Vec::new(),
        input: Shape::Flat { n: 1 },
        ins: Vec::new(),
        classes_broken: false,
    };
    let graph = ex.network(net, ov);
    match graph {
        Some(g) if ex.diags.is_empty() && ex.skipped == 0 => Ok(g),
        _ => Err(ex.diags.finish()),
    }
}

struct Expander<'p> {
    prog: &'p Program,
    nodes: Vec<Node>,
    stages: Vec<StageInfo>,
    diags: Diagnostics,
    cur: NodeId,
    defaults: LayerDefaults,
    stage: Option<usize>,
    stage_span: Span,
    /// Block repetitions expanded so far on the current stage line.
    stage_reps: u64,
    /// Statements skipped because resolution failed on them (`Program::broken`); their errors
    /// are already reported, and the graph is incomplete, so it is never returned.
    skipped: usize,
    /// Shapes of the first nodes, inferred on demand where `in.c` is read.
    typed: Vec<TypedNode>,
    /// The network's input shape.
    input: Shape,
    /// The input of each enclosing block (a stage line's input outside blocks): what `in`
    /// reads.
    ins: Vec<NodeId>,
    /// A `classes` line was skipped (resolution failed on it): `classes` is not reported
    /// unknown where it is read.
    classes_broken: bool,
}

/// Local name counters inside one block repetition or stage.
#[derive(Default)]
struct Counters(HashMap<&'static str, usize>);

impl Counters {
    fn next(&mut self, kind: &'static str) -> String {
        let n = self.0.entry(kind).or_insert(0);
        *n += 1;
        // `relu6` counts as `relu6_1`, not `relu61`.
        if kind.ends_with(|c: char| c.is_ascii_digit()) {
            format!("{kind}_{n}")
        } else {
            format!("{kind}{n}")
        }
    }
}

impl<'p> Expander<'p> {
    fn err(&mut self, e: CompileError, span: Span) {
        self.diags.push(span.file, e);
    }

    /// Whether resolution failed on a statement overlapping `span` (then it is skipped).
    fn broken(&mut self, span: Span) -> bool {
        let hit = self
            .prog
            .broken
            .iter()
            .any(|b| b.file == span.file && b.start < span.end && span.start < b.end);
        if hit {
            self.skipped += 1;
        }
        hit
    }

    /// Find the body, the bound parameters and the settings of a network.
    fn spec(
        &mut self,
        net: &'p NetworkDef,
        depth: usize,
    ) -> Option<(&'p Body, Env, Vec<&'p Setting>)> {
        match &net.def {
            NetworkRhs::Body(b) => Some((b, Env::new(), b.settings.iter().collect())),
            NetworkRhs::Instance {
                target, args, with, ..
            } => {
                if self.broken(target.span) {
                    return None;
                }
                if let Some(fam) = self.prog.families.get(&target.name) {
                    if self.broken(fam.name.span) {
                        return None;
                    }
                    let empty = Env::new();
                    let mut env = Env::new();
                    let mut ok = true;
                    for (p, a) in fam.params.iter().zip(args.iter().flatten()) {
                        match self.eval(a, &empty) {
                            Some(v) => {
                                env.vars.insert(p.name.clone(), v);
                            }
                            None => ok = false,
                        }
                    }
                    let mut settings: Vec<&Setting> = fam.body.settings.iter().collect();
                    settings.extend(with.iter());
                    ok.then_some((&fam.body, env, settings))
                } else {
                    // Derived from another network (resolve rejected cycles; depth is a guard).
                    let base = self.prog.networks.get(&target.name)?;
                    if depth > MAX_DEPTH {
                        return None;
                    }
                    let (body, env, mut settings) = self.spec(base, depth + 1)?;
                    settings.extend(with.iter());
                    Some((body, env, settings))
                }
            }
        }
    }

    fn settings(&mut self, list: &[&Setting], env: &Env) -> Settings {
        let mut s = Settings {
            input: None,
            classes: None,
            shortcut: ShortcutOption::None,
            naming: Naming::Archc,
            defaults: LayerDefaults::default(),
        };
        for st in list {
            if self.broken(st.span) {
                self.classes_broken |= st.key.name == "classes";
                continue;
            }
            let key = st.key.name.as_str();
            let bad = |expected: &str, help: &str| CompileError::BadValue {
                what: key.to_string(),
                found: describe_value(&st.value),
                at: at(st.value.span()),
                expected: expected.to_string(),
                help: help.to_string(),
            };
            match key {
                "input" => match &st.value {
                    Value::Dims(d, sp) => s.input = Some((d.clone(), *sp)),
                    Value::Expr(e) => {
                        if let Some(v) = self.eval_int(e, env) {
                            s.input = Some((vec![v.max(0) as u64], e.span()))
                        }
                    }
                    _ => self.err(bad("a shape such as 3x224x224", "write the input as CxHxW"), st.span),
                },
                "classes" => {
                    let v = match &st.value {
                        Value::Expr(e) => self.eval_int(e, env),
                        _ => {
                            self.err(bad("a number", "write the class count, such as `classes 1000`"), st.span);
                            None
                        }
                    };
                    if let Some(v) = v {
                        if let Some(n) = self.positive("classes", v, st.value.span(), MAX_CHANNELS) {
                            s.classes = Some((n as i64, st.value.span()));
                        }
                    }
                }
                "shortcut" => match st.value.as_word().and_then(|w| ShortcutOption::parse(&w.name)) {
                    Some(o) => s.shortcut = o,
                    None => self.err(
                        bad("none, A, B, C, identity or gated", SHORTCUT_HELP),
                        st.span,
                    ),
                },
                "names" => match st.value.as_word().and_then(|w| Naming::parse(&w.name)) {
                    Some(n) => s.naming = n,
                    None => self.err(
                        bad(
                            "archc, resnet, sequential, mobilenet, mobilenet_v3, efficientnet, googlenet, densenet, nested, convnext or inception",
                            "resnet: torchvision's ResNet weight names; sequential: torchvision's VGG names (features.N, classifier.N); mobilenet: torchvision's MobileNetV2 names (features.N.conv.J); mobilenet_v3, efficientnet, googlenet, densenet, convnext, inception: those networks' torchvision names; nested: every stage, block and branch a Sequential (stage.0, stage.1.branch2.3: ShuffleNetV2); archc: archc's own",
                        ),
                        st.span,
                    ),
                },
                "norm" => match st.value.as_word().map(|w| w.name.as_str()) {
                    Some("bn") => s.defaults.norm = true,
                    Some("none") => s.defaults.norm = false,
                    _ => self.err(bad("bn or none", "`norm bn` puts batch norm after each conv; `norm none` turns it off"), st.span),
                },
                "act" => match st.value.as_word().map(|w| w.name.as_str()) {
                    Some("none") => s.defaults.act = None,
                    Some(w) if Activation::parse(w).is_some() => s.defaults.act = Activation::parse(w),
                    w => self.err(activation::unknown(&describe_value(&st.value), w, st.value.span()), st.span),
                },
                "order" => match st.value.as_word().map(|w| w.name.as_str()) {
                    Some("post") => s.defaults.pre = false,
                    Some("pre") => s.defaults.pre = true,
                    _ => self.err(bad("post or pre", "`order post`: conv → BN → ReLU (the default); `order pre`: BN → ReLU → conv (pre-activation)"), st.span),
                },
                "bias" => match st.value.as_word().map(|w| w.name.as_str()) {
                    Some("true") => s.defaults.bias = Some(true),
                    Some("false") => s.defaults.bias = Some(false),
                    Some("auto") => s.defaults.bias = None,
                    _ => self.err(bad("true, false or auto", "`auto` gives convs a bias only where no batch norm follows"), st.span),
                },
                "bn_eps" | "bn_momentum" => {
                    let v = match &st.value {
                        Value::Float(f, _) => Some(*f),
                        _ => None,
                    };
                    let top = if key == "bn_eps" { f64::INFINITY } else { 1.0 };
                    match v {
                        Some(v) if v > 0.0 && v <= top => {
                            if key == "bn_eps" {
                                s.defaults.bn_eps = v;
                            } else {
                                s.defaults.bn_momentum = v;
                            }
                        }
                        _ => self.err(
                            bad(
                                if key == "bn_eps" { "a positive decimal" } else { "a decimal in (0, 1]" },
                                "the batch norms that do not say take these; torchvision's GoogLeNet and Inception-v3 use `bn_eps 0.001`, EfficientNet `bn_eps 0.001` and `bn_momentum 0.01`",
                            ),
                            st.span,
                        ),
                    }
                }
                _ => {}
            }
        }
        s
    }

    fn network(&mut self, net: &'p NetworkDef, ov: &Overrides) -> Option<Graph> {
        let (body, mut env, settings) = self.spec(net, 0)?;
        let mut s = self.settings(&settings, &env);
        if let Some(c) = ov.classes {
            match &s.classes {
                Some((_, sp)) => {
                    let sp = *sp;
                    let c = self.positive(
                        "--classes",
                        c.min(i64::MAX as u64) as i64,
                        sp,
                        MAX_CHANNELS,
                    )?;
                    s.classes = Some((c as i64, sp));
                }
                None if self.skipped > 0 => return None,
                None => {
                    self.err(
                        CompileError::NoClasses {
                            name: net.name.name.clone(),
                            at: at(net.name.span),
                        },
                        net.name.span,
                    );
                    return None;
                }
            }
        }
        if let Some((c, _)) = s.classes {
            env.vars.insert("classes".into(), Val::Int(c));
        }
        if let Some(i) = &ov.input {
            s.input = Some((i.clone(), net.name.span));
        }
        self.defaults = s.defaults;
        let Some((dims, in_span)) = s.input.clone() else {
            // An `input` line whose value failed has its own error.
            let written = settings.iter().any(|st| st.key.name == "input");
            if self.skipped > 0 || written {
                return None;
            }
            self.err(
                CompileError::MissingInput {
                    name: net.name.name.clone(),
                    at: at(net.name.span),
                },
                net.name.span,
            );
            return None;
        };
        let input = self.input_shape(&dims, in_span)?;
        self.input = input;
        self.nodes.push(Node {
            id: NodeId(0),
            name: "input".into(),
            path: NodePath::input(),
            op: Op::Input,
            inputs: vec![],
            span: in_span,
            stage_span: in_span,
            stage: None,
            branches: vec![],
        });
        // Each stage's output, for `from` and `outputs`.
        let mut ends: HashMap<&str, NodeId> = HashMap::new();
        for st in &body.stages {
            if self.broken(st.span) {
                continue;
            }
            let main = self.cur;
            if let Some(from) = &st.from {
                match ends.get(from.name.as_str()) {
                    Some(&n) => self.cur = n,
                    None => return None, // resolve reported it
                }
            }
            self.stage_span = st.span;
            self.stage_reps = 0;
            self.stage = Some(self.stages.len());
            self.stages.push(StageInfo {
                name: st.name.name.clone(),
                span: st.span,
                segments: vec![],
            });
            let mut counters = Counters::default();
            let scope = Scope::new(&st.name.name, None);
            self.ins.push(self.cur);
            for seg in &st.segments {
                let r = match seg {
                    Segment::Layer(l) => {
                        self.layer(l, &env, &scope, &mut counters, true).map(|_| ())
                    }
                    Segment::Call(c) => self.stage_call(c, &env, &st.name.name, s.shortcut),
                    Segment::Merge(m) => {
                        let mut text = Vec::new();
                        let r = self.merge(m, &env, &scope, &mut counters, 0, Some(&mut text));
                        if let (Some(i), Some(t)) = (self.stage, text.pop()) {
                            self.stages[i].segments.push(SegmentInfo::Layer { text: t });
                        }
                        r
                    }
                };
                if r.is_err() {
                    return None;
                }
            }
            self.ins.pop();
            ends.insert(&st.name.name, self.cur);
            if st.from.is_some() {
                self.cur = main;
            }
        }
        let outputs: Vec<GraphOutput> = match body.outputs.first() {
            Some(o) => o
                .items
                .iter()
                .filter_map(|it| {
                    Some(GraphOutput {
                        name: it.stage.name.clone(),
                        node: *ends.get(it.stage.name.as_str())?,
                        weight: it.weight.map_or(1.0, |w| w.0),
                    })
                })
                .collect(),
            None => vec![],
        };
        if self.nodes.len() == 1 && self.diags.is_empty() && self.skipped == 0 {
            self.err(
                CompileError::EmptyNetwork {
                    name: net.name.name.clone(),
                    at: at(net.name.span),
                },
                net.name.span,
            );
            return None;
        }
        if !self.diags.is_empty() || self.skipped > 0 {
            return None;
        }
        Some(Graph {
            network: net.name.name.clone(),
            input,
            nodes: std::mem::take(&mut self.nodes),
            stages: std::mem::take(&mut self.stages),
            output: outputs.first().map_or(self.cur, |o| o.node),
            outputs,
            classes: s.classes.map(|(c, _)| c as u64),
            span: net.name.span,
            shortcut: s.shortcut,
            naming: s.naming,
        })
    }

    fn input_shape(&mut self, dims: &[u64], span: Span) -> Option<Shape> {
        let text = dims
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("x");
        if dims.len() != 3 && dims.len() != 1 {
            self.err(
                CompileError::InputRank {
                    found: text,
                    rank: dims.len(),
                    at: at(span),
                },
                span,
            );
            return None;
        }
        let mut ok = true;
        for (i, &d) in dims.iter().enumerate() {
            let (what, limit) = if i == 0 {
                ("input channels", MAX_CHANNELS)
            } else {
                ("input size", MAX_SPATIAL)
            };
            ok &= self
                .positive(what, d.min(i64::MAX as u64) as i64, span, limit)
                .is_some();
        }
        if !ok {
            return None;
        }
        Some(if dims.len() == 3 {
            Shape::Map {
                c: dims[0],
                h: dims[1],
                w: dims[2],
            }
        } else {
            Shape::Flat { n: dims[0] }
        })
    }

    fn positive(&mut self, what: &str, v: i64, span: Span, limit: i64) -> Option<u64> {
        in_range(what, v, span, 1, limit)
            .map_err(|e| self.err(e, span))
            .ok()
    }

    fn push(
        &mut self,
        path: NodePath,
        op: Op,
        inputs: Vec<NodeId>,
        span: Span,
    ) -> Result<NodeId, Abort> {
        if self.nodes.len() >= MAX_NODES {
            self.err(
                too_large(
                    "the expanded network's layer count",
                    self.nodes.len() as u128 + 1,
                    MAX_NODES as u128,
                    self.stage_span,
                ),
                self.stage_span,
            );
            return Err(Abort);
        }
        let id = NodeId(self.nodes.len());
        self.nodes.push(Node {
            id,
            name: path.dotted(),
            path,
            op,
            inputs,
            span,
            stage_span: self.stage_span,
            stage: self.stage,
            branches: vec![],
        });
        self.cur = id;
        Ok(id)
    }

    /// The output shape of node `id` (inferring the nodes up to it that are not yet), or
    /// `None` with the shape error reported.
    fn shape_of(&mut self, id: NodeId) -> Option<Shape> {
        while self.typed.len() <= id.0 {
            let n = &self.nodes[self.typed.len()];
            match infer_node(&self.nodes, self.input, &self.typed, n) {
                Ok(t) => self.typed.push(t),
                Err(e) => {
                    let file = n.span.file;
                    self.diags.push(file, e);
                    return None;
                }
            }
        }
        Some(self.typed[id.0].output)
    }

    /// Expand `concat { ... }` (or `add`, `mul`, `max`): each branch from the current node
    /// (or its part of the channels, with `split`), then the merge of their ends. `record`
    /// gets the merge's description.
    #[allow(clippy::too_many_arguments)]
    fn merge(
        &mut self,
        m: &'p Merge,
        env: &Env,
        prefix: &Scope,
        counters: &mut Counters,
        depth: usize,
        record: Option<&mut Vec<String>>,
    ) -> Result<(), Abort> {
        let start = self.cur;
        let parts = m.branches.len() as u64;
        let mut ends = Vec::with_capacity(m.branches.len());
        let mut spans = Vec::with_capacity(m.branches.len());
        for (i, b) in m.branches.iter().enumerate() {
            self.cur = start;
            let scope = prefix.branch(&b.name.name);
            let mut local = Counters::default();
            if m.split {
                let op = Op::Split {
                    parts,
                    index: i as u64,
                };
                self.push(scope.at("split"), op, vec![start], m.span)?;
            }
            for seg in &b.segments {
                self.block_segment(seg, env, &scope, &mut local, depth, None)?;
            }
            ends.push(self.cur);
            spans.push((b.name.name.clone(), b.span));
        }
        if let Some(r) = record {
            let names: Vec<&str> = m.branches.iter().map(|b| b.name.name.as_str()).collect();
            let split = if m.split { " split" } else { "" };
            r.push(format!("{}{split} of {}", m.kind.word(), names.join(", ")));
        }
        let name = counters.next(m.kind.word());
        let id = self.push(prefix.at(name), Op::Merge(m.kind), ends, m.span)?;
        self.nodes[id.0].branches = spans;
        Ok(())
    }

    /// Expand one layer line. `describe`: record it as a layer segment of the stage.
    fn layer(
        &mut self,
        l: &Layer,
        env: &Env,
        prefix: &Scope,
        counters: &mut Counters,
        describe: bool,
    ) -> Result<Option<Vec<Op>>, Abort> {
        if self.broken(l.span) {
            return Ok(None);
        }
        let Some(mut args) = self.args(l, env) else {
            return Ok(None);
        };
        let ops = layers::build(l.kind, &mut args, &self.defaults);
        for e in std::mem::take(&mut args.errors) {
            self.err(e, l.span);
        }
        let Some(ops) = ops else { return Ok(None) };
        if describe {
            if let Some(i) = self.stage {
                self.stages[i].segments.push(SegmentInfo::Layer {
                    text: describe_layer(&ops),
                });
            }
        }
        for op in &ops {
            let local = counters.next(op.kind());
            let name = prefix.at(local);
            let input = self.cur;
            self.push(name, *op, vec![input], l.span)?;
        }
        Ok(Some(ops))
    }

    fn args(&mut self, l: &Layer, env: &Env) -> Option<Args> {
        let mut args = Args {
            layer: l.kind.keyword().to_string(),
            span: l.span,
            ..Args::default()
        };
        let mut ok = true;
        for v in &l.positional {
            match self.arg_value(v, env) {
                Some(a) => args.positional.push((a, v.span())),
                None => ok = false,
            }
        }
        for n in &l.named {
            match self.arg_value(&n.value, env) {
                Some(a) => args.named.push((n.name.name.clone(), a, n.value.span())),
                None => ok = false,
            }
        }
        ok.then_some(args)
    }

    fn arg_value(&mut self, v: &Value, env: &Env) -> Option<ArgVal> {
        Some(match v {
            Value::Dims(d, _) => ArgVal::Dims(d.clone()),
            Value::Float(f, _) => ArgVal::Float(*f),
            Value::Word(w) => match env.vars.get(&w.name) {
                Some(Val::Int(i)) => ArgVal::Int(*i),
                Some(Val::Float(f)) => ArgVal::Float(*f),
                _ if w.name == "classes" => {
                    self.err(
                        CompileError::UnknownName {
                            what: "name",
                            name: "classes".into(),
                            at: at(w.span),
                            help: "declare the class count with `classes N` in the network or family, or pass --classes".into(),
                        },
                        w.span,
                    );
                    return None;
                }
                _ => ArgVal::Word(w.name.clone()),
            },
            Value::Expr(Expr::Var(v)) if !env.vars.contains_key(&v.name) && v.name != "classes" => {
                // A bare word in argument position (`norm: none`, `bias: true`).
                ArgVal::Word(v.name.clone())
            }
            Value::Expr(e) => match self.eval(e, env)? {
                Val::Int(i) => ArgVal::Int(i),
                Val::Float(f) => ArgVal::Float(f),
                Val::Block(b) => ArgVal::Block(b),
            },
        })
    }

    /// A stage segment `block(args) x n, stride: s, shortcut: X`.
    fn stage_call(
        &mut self,
        c: &Call,
        env: &Env,
        stage: &str,
        net_shortcut: ShortcutOption,
    ) -> Result<(), Abort> {
        if self.broken(c.span) {
            return Ok(());
        }
        let repeat = match &c.repeat {
            Some(e) => match self.eval_int(e, env) {
                Some(v) => self.positive("repeat count", v, e.span(), MAX_REPEAT),
                None => None,
            },
            None => Some(1),
        };
        let mut stride = Some(1);
        let mut shortcut = Some(net_shortcut);
        for n in &c.named {
            match n.name.name.as_str() {
                "stride" => stride = self.stride_value(&n.value, env),
                "shortcut" => {
                    shortcut = n
                        .value
                        .as_word()
                        .and_then(|w| ShortcutOption::parse(&w.name));
                    if shortcut.is_none() {
                        self.bad_value("shortcut", &n.value, "none, A, B, C, identity or gated");
                    }
                }
                _ => {}
            }
        }
        let Some(block) = self.callee(c, env) else {
            return Ok(());
        };
        let args = self.call_args(c, env);
        let (Some(repeat), Some(stride), Some(shortcut), Some(args)) =
            (repeat, stride, shortcut, args)
        else {
            return Ok(());
        };
        let seg_index = self.stage.map(|i| {
            self.stages[i].segments.push(SegmentInfo::Blocks {
                block: block.name.name.clone(),
                layers: vec![],
                repeat,
                stride,
                shortcut,
            });
            self.stages[i].segments.len() - 1
        });
        let first = self.stage_reps;
        self.stage_reps += repeat;
        for i in 0..repeat {
            let s = if i == 0 { stride } else { 1 };
            // Repetitions are numbered across the whole stage line, so two block calls on
            // one line never share a name.
            let prefix = Scope::new(stage, Some(first + i));
            let mut counters = Counters::default();
            let mut texts = Vec::new();
            let record = if i == 0 { Some(&mut texts) } else { None };
            let before = self.nodes.len();
            let ok = self.block(
                block,
                &args,
                s,
                &prefix,
                shortcut,
                &mut counters,
                c,
                0,
                record,
            )?;
            if !ok {
                return Ok(()); // errors in a block are reported once, not per repetition
            }
            if i == 0 {
                self.project(self.nodes.len() - before, repeat, c.span)?;
            }
            if let (Some(si), Some(gi), true) = (self.stage, seg_index, i == 0) {
                if let SegmentInfo::Blocks { layers, .. } = &mut self.stages[si].segments[gi] {
                    *layers = texts;
                }
            }
        }
        Ok(())
    }

    /// After the first of `repeat` repetitions added `per` nodes: refuse at once if all of
    /// them would pass the node limit, instead of expanding until it is hit.
    fn project(&mut self, per: usize, repeat: u64, span: Span) -> Result<(), Abort> {
        let total = self.nodes.len() as u128 + per as u128 * (repeat as u128 - 1);
        if total > MAX_NODES as u128 {
            self.err(
                too_large(
                    "the expanded network's layer count",
                    total,
                    MAX_NODES as u128,
                    span,
                ),
                span,
            );
            return Err(Abort);
        }
        Ok(())
    }

    /// A call's `stride:` value: a positive number below the limit, or an error.
    fn stride_value(&mut self, v: &Value, env: &Env) -> Option<u64> {
        match v {
            Value::Expr(e) => self
                .eval_int(e, env)
                .and_then(|x| self.positive("stride", x, e.span(), MAX_STRIDE)),
            other => {
                self.bad_value("stride", other, "a number");
                None
            }
        }
    }

    fn bad_value(&mut self, what: &str, v: &Value, expected: &str) {
        self.err(
            CompileError::BadValue {
                what: what.into(),
                found: describe_value(v),
                at: at(v.span()),
                expected: expected.into(),
                help: format!("write {expected}"),
            },
            v.span(),
        );
    }

    fn callee(&mut self, c: &Call, env: &Env) -> Option<&'p BlockDef> {
        let name = &c.callee.name;
        match env.vars.get(name) {
            Some(Val::Block(b)) => self.prog.blocks.get(b),
            Some(v @ (Val::Int(_) | Val::Float(_))) => {
                let i = match v {
                    Val::Int(i) => i.to_string(),
                    Val::Float(f) => f.to_string(),
                    Val::Block(_) => unreachable!(),
                };
                self.err(
                    CompileError::NotABlock {
                        name: name.clone(),
                        at: at(c.callee.span),
                        found: format!("holds the number {i}"),
                        help: "pass a block's name for this parameter".into(),
                    },
                    c.callee.span,
                );
                None
            }
            None => self.prog.blocks.get(name),
        }
    }

    fn call_args(&mut self, c: &Call, env: &Env) -> Option<Vec<Val>> {
        let mut out = Vec::new();
        let mut ok = true;
        for a in &c.args {
            match self.eval(a, env) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// Expand one repetition of a block; `Ok(false)` if it had errors.
    #[allow(clippy::too_many_arguments)]
    fn block(
        &mut self,
        block: &'p BlockDef,
        args: &[Val],
        stride: u64,
        prefix: &Scope,
        shortcut: ShortcutOption,
        counters: &mut Counters,
        call: &Call,
        depth: usize,
        mut record: Option<&mut Vec<String>>,
    ) -> Result<bool, Abort> {
        if depth > MAX_DEPTH {
            self.err(
                too_large(
                    "block nesting depth",
                    depth as u128,
                    MAX_DEPTH as u128,
                    call.span,
                ),
                call.span,
            );
            return Ok(false);
        }
        if args.len() != block.params.len() {
            // Only reachable through a block-valued parameter (resolve checks direct calls).
            self.err(
                CompileError::Arity {
                    name: block.name.name.clone(),
                    expected: block.params.len(),
                    found: args.len(),
                    at: at(call.args_span),
                    help: format!(
                        "block `{}` has {} parameters",
                        block.name.name,
                        block.params.len()
                    ),
                },
                call.span,
            );
            return Ok(false);
        }
        let mut env = Env::new();
        for (p, v) in block.params.iter().zip(args) {
            env.vars.insert(p.name.clone(), v.clone());
        }
        env.vars.insert("stride".into(), Val::Int(stride as i64));
        let start = self.cur;
        let start_len = self.nodes.len();
        let errors_before = self.diags.len();
        let skipped_before = self.skipped;
        if self.broken(block.name.span) {
            return Ok(false);
        }
        self.ins.push(start);
        for seg in &block.body {
            self.block_segment(seg, &env, prefix, counters, depth, record.as_deref_mut())?;
        }
        self.ins.pop();
        if self.diags.len() > errors_before || self.skipped > skipped_before {
            return Ok(false);
        }
        if stride != 1 && !env.stride_used.get() {
            self.err(
                CompileError::StrideUnused {
                    stride,
                    block: block.name.name.clone(),
                    at: at(call.span),
                },
                call.span,
            );
            return Ok(false);
        }
        if shortcut == ShortcutOption::None || self.nodes.len() == start_len {
            return Ok(true);
        }
        // Move the block's final activation after the addition. A Highway block keeps it:
        // there `F` is the whole transform, nonlinearity included.
        let gated = shortcut == ShortcutOption::Gated;
        let mut last_act = None;
        if !gated && self.nodes.len() > start_len + 1 {
            if let Some(n) = self.nodes.last() {
                if matches!(n.op, Op::Act(_)) {
                    let n = self.nodes.pop().expect("checked non-empty");
                    self.typed.truncate(self.nodes.len());
                    self.cur = n.inputs[0];
                    last_act = Some(n);
                }
            }
        }
        let body_out = self.cur;
        let sc = self.push(
            prefix.at(if gated { "gate" } else { "shortcut" }),
            Op::Shortcut {
                option: shortcut,
                stride,
                target: body_out,
            },
            vec![start],
            call.span,
        )?;
        if gated {
            self.push(
                prefix.at("highway"),
                Op::Highway,
                vec![body_out, start, sc],
                call.span,
            )?;
            return Ok(true);
        }
        let add = self.push(prefix.at("add"), Op::Add, vec![body_out, sc], call.span)?;
        if let Some(n) = last_act {
            self.push(n.path, n.op, vec![add], n.span)?;
        }
        Ok(true)
    }

    /// Expand one segment inside a block or a merge branch: a layer, an inlined block call
    /// (no shortcut of its own, names continuing the outer counters) or a merge.
    fn block_segment(
        &mut self,
        seg: &'p Segment,
        env: &Env,
        prefix: &Scope,
        counters: &mut Counters,
        depth: usize,
        mut record: Option<&mut Vec<String>>,
    ) -> Result<(), Abort> {
        match seg {
            Segment::Layer(l) => {
                if let Some(ops) = self.layer(l, env, prefix, counters, false)? {
                    if let Some(r) = record.as_deref_mut() {
                        if let Some(t) = describe_block_layer(&ops) {
                            r.push(t);
                        }
                    }
                }
            }
            Segment::Call(inner) => {
                if self.broken(inner.span) {
                    return Ok(());
                }
                let Some(b) = self.callee(inner, env) else {
                    return Ok(());
                };
                let Some(a) = self.call_args(inner, env) else {
                    return Ok(());
                };
                let mut s = 1;
                if let Some(n) = inner.named.iter().find(|n| n.name.name == "stride") {
                    match self.stride_value(&n.value, env) {
                        Some(v) => s = v,
                        None => return Ok(()),
                    }
                }
                let reps = match &inner.repeat {
                    Some(e) => match self
                        .eval_int(e, env)
                        .and_then(|v| self.positive("repeat count", v, e.span(), MAX_REPEAT))
                    {
                        Some(v) => v,
                        None => return Ok(()),
                    },
                    None => 1,
                };
                for r in 0..reps {
                    let before = self.nodes.len();
                    // Inlined: no shortcut of its own, names continue the outer counters.
                    // As on a stage, the stride applies to the first repetition only.
                    self.block(
                        b,
                        &a,
                        if r == 0 { s } else { 1 },
                        prefix,
                        ShortcutOption::None,
                        counters,
                        inner,
                        depth + 1,
                        record.as_deref_mut(),
                    )?;
                    if r == 0 {
                        self.project(self.nodes.len() - before, reps, inner.span)?;
                    }
                }
            }
            Segment::Merge(m) => self.merge(m, env, prefix, counters, depth, record)?,
        }
        Ok(())
    }

    fn eval_int(&mut self, e: &Expr, env: &Env) -> Option<i64> {
        match self.eval_number(e, env)? {
            Val::Int(i) => Some(i),
            Val::Float(f) if f.fract() == 0.0 && f.abs() <= MAX_EXACT_FLOAT => Some(f as i64),
            Val::Float(f) => {
                self.err(
                    CompileError::NotWhole {
                        value: f.to_string(),
                        at: at(e.span()),
                    },
                    e.span(),
                );
                None
            }
            // `eval_number` reported a block already.
            Val::Block(_) => None,
        }
    }

    fn eval(&mut self, e: &Expr, env: &Env) -> Option<Val> {
        match e {
            Expr::Int(v, span) => match i64::try_from(*v) {
                Ok(v) => Some(Val::Int(v)),
                Err(_) => {
                    self.err(
                        CompileError::Overflow {
                            expr: format!("{v} does not fit in a signed 64-bit integer"),
                            at: at(*span),
                        },
                        *span,
                    );
                    None
                }
            },
            Expr::In(dim, span) => {
                let Some(&node) = self.ins.last() else {
                    self.err(
                        CompileError::UnknownName {
                            what: "name",
                            name: format!("in.{}", dim.letter()),
                            at: at(*span),
                            help: "`in` is the input of the enclosing block (or stage line); settings and a network's arguments have none".into(),
                        },
                        *span,
                    );
                    return None;
                };
                let shape = self.shape_of(node)?;
                let v = match (dim, shape) {
                    (InDim::C, s) => s.channels(),
                    (InDim::H, Shape::Map { h, .. }) => h,
                    (InDim::W, Shape::Map { w, .. }) => w,
                    (d, s) => {
                        self.err(
                            CompileError::InDimOfVector {
                                dim: d.letter(),
                                shape: s.to_string(),
                                at: at(*span),
                            },
                            *span,
                        );
                        return None;
                    }
                };
                Some(Val::Int(v as i64))
            }
            Expr::Var(v) => {
                if v.name == "stride" {
                    env.stride_used.set(true);
                }
                if let Some(val) = env.vars.get(&v.name) {
                    return Some(val.clone());
                }
                if self.prog.blocks.contains_key(&v.name) {
                    return Some(Val::Block(v.name.clone()));
                }
                if v.name == "classes" && self.classes_broken {
                    // Its line's error is reported; the network is not returned.
                    self.skipped += 1;
                    return None;
                }
                let help = if v.name == "classes" {
                    "declare the class count with `classes N` in the network or family, or pass --classes".to_string()
                } else {
                    "names in expressions are the parameters of the enclosing block or family"
                        .to_string()
                };
                self.err(
                    CompileError::UnknownName {
                        what: "name",
                        name: v.name.clone(),
                        at: at(v.span),
                        help,
                    },
                    v.span,
                );
                None
            }
            Expr::Float(f, _) => Some(Val::Float(*f)),
            Expr::Call { func, args, span } => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.eval_number(a, env)?);
                }
                self.call(*func, &vals, *span)
            }
            Expr::Neg(inner, span) => {
                if let Val::Float(f) = self.eval_number(inner, env)? {
                    return Some(Val::Float(-f));
                }
                let v = self.eval_int(inner, env)?;
                match v.checked_neg() {
                    Some(n) => Some(Val::Int(n)),
                    None => {
                        self.overflow(&format!("-({v})"), *span);
                        None
                    }
                }
            }
            Expr::Binary { op, lhs, rhs, span } => {
                let a = self.eval_number(lhs, env);
                let b = self.eval_number(rhs, env);
                let (a, b) = match (a?, b?) {
                    (Val::Int(a), Val::Int(b)) => (a, b),
                    (a, b) => {
                        // Decimal arithmetic: `/` divides exactly here.
                        let (x, y) = (as_f64(&a), as_f64(&b));
                        if y == 0.0 && matches!(op, BinOp::Div | BinOp::Rem) {
                            self.err(CompileError::DivisionByZero { at: at(rhs.span()) }, *span);
                            return None;
                        }
                        let r = match op {
                            BinOp::Add => x + y,
                            BinOp::Sub => x - y,
                            BinOp::Mul => x * y,
                            BinOp::Div => x / y,
                            BinOp::Rem => x % y,
                        };
                        if !r.is_finite() || r.abs() > MAX_EXACT_FLOAT {
                            self.overflow(&format!("{x} {} {y}", op.symbol()), *span);
                            return None;
                        }
                        return Some(Val::Float(r));
                    }
                };
                let r = match op {
                    BinOp::Add => a.checked_add(b),
                    BinOp::Sub => a.checked_sub(b),
                    BinOp::Mul => a.checked_mul(b),
                    BinOp::Div | BinOp::Rem if b == 0 => {
                        self.err(CompileError::DivisionByZero { at: at(rhs.span()) }, *span);
                        return None;
                    }
                    BinOp::Div => a.checked_div(b),
                    BinOp::Rem => a.checked_rem(b),
                };
                match r {
                    Some(v) => Some(Val::Int(v)),
                    None => {
                        self.overflow(&format!("{a} {} {b}", op.symbol()), *span);
                        None
                    }
                }
            }
        }
    }

    /// A number (whole or decimal), or an error where `e` names a block.
    fn eval_number(&mut self, e: &Expr, env: &Env) -> Option<Val> {
        match self.eval(e, env)? {
            Val::Block(b) => {
                self.err(
                    CompileError::NotANumber {
                        name: b,
                        at: at(e.span()),
                    },
                    e.span(),
                );
                None
            }
            v => Some(v),
        }
    }

    /// A function of expressions, on evaluated arguments (resolve checked their count).
    fn call(&mut self, func: Builtin, args: &[Val], span: Span) -> Option<Val> {
        let whole = |x: f64, s: &mut Self| {
            if x.is_finite() && x.abs() <= MAX_EXACT_FLOAT {
                Some(Val::Int(x as i64))
            } else {
                s.overflow(&format!("{}({x})", func.name()), span);
                None
            }
        };
        let first = args.first().map(as_f64).unwrap_or(0.0);
        match func {
            Builtin::Ceil => whole(first.ceil(), self),
            Builtin::Floor => whole(first.floor(), self),
            Builtin::Round => whole(first.round_ties_even(), self),
            Builtin::Max | Builtin::Min => {
                let pick = |a: &Val, b: &Val| {
                    let better = if func == Builtin::Max {
                        as_f64(b) > as_f64(a)
                    } else {
                        as_f64(b) < as_f64(a)
                    };
                    if better {
                        b.clone()
                    } else {
                        a.clone()
                    }
                };
                args.iter().cloned().reduce(|a, b| pick(&a, &b))
            }
            Builtin::Divisible => {
                let d = args.get(1).map(as_f64).unwrap_or(0.0);
                if d < 1.0 || d.fract() != 0.0 {
                    self.err(
                        CompileError::BadValue {
                            what: "divisor".into(),
                            found: d.to_string(),
                            at: at(span),
                            expected: "a whole number of 1 or more".into(),
                            help: "`divisible(v, d)` rounds v to a multiple of d, such as 8".into(),
                        },
                        span,
                    );
                    return None;
                }
                // torchvision's `_make_divisible(v, d)`: the nearest multiple, at least d, and
                // one step up if rounding lost more than 10%.
                let mut n = d.max(((first + d / 2.0) / d).floor() * d);
                if n < 0.9 * first {
                    n += d;
                }
                whole(n, self)
            }
        }
    }

    fn overflow(&mut self, expr: &str, span: Span) {
        self.err(
            CompileError::Overflow {
                expr: expr.to_string(),
                at: at(span),
            },
            span,
        );
    }
}

fn describe_value(v: &Value) -> String {
    match v {
        Value::Dims(d, _) => format!(
            "the dimensions {}",
            d.iter().map(u64::to_string).collect::<Vec<_>>().join("x")
        ),
        Value::Float(f, _) => format!("the decimal {f}"),
        Value::Word(w) => format!("`{}`", w.name),
        Value::Expr(Expr::Var(v)) => format!("`{}`", v.name),
        Value::Expr(_) => "a number".into(),
    }
}

fn pair(p: [u64; 2]) -> String {
    format!("{}×{}", p[0], p[1])
}

/// A stride as the paper writes it: `2`, or `2×1` when the two differ.
fn stride_text(s: [u64; 2]) -> String {
    if s[0] == s[1] {
        s[0].to_string()
    } else {
        pair(s)
    }
}

/// A layer line as Table 1 writes it.
fn describe_layer(ops: &[Op]) -> String {
    match ops.first() {
        Some(Op::Conv2d(c)) => {
            let mut s = format!("{}, {}", pair(c.kernel), c.out_channels);
            if c.groups > 1 {
                s += &format!(", groups {}", c.groups);
            }
            if c.stride != [1, 1] {
                s += &format!(", stride {}", stride_text(c.stride));
            }
            s
        }
        Some(Op::MaxPool2d(p)) => format!(
            "{} max pool, stride {}",
            pair(p.kernel),
            stride_text(p.stride)
        ),
        Some(Op::AvgPool2d(p)) => {
            format!("{} average pool, stride {}", pair(p.kernel), p.stride[0])
        }
        Some(Op::AdaptiveAvgPool2d { output: [1, 1] }) => "average pool".into(),
        Some(Op::AdaptiveAvgPool2d { output }) => {
            format!("adaptive average pool to {}", pair(*output))
        }
        Some(Op::Linear { out_features, .. }) => format!("{out_features}-d fc"),
        Some(Op::Dropout { p }) => format!("dropout {p}"),
        Some(op) => op.kind().to_string(),
        None => String::new(),
    }
}

/// A layer inside a block as Table 1 writes it: `3×3, 64`.
fn describe_block_layer(ops: &[Op]) -> Option<String> {
    match ops.first()? {
        Op::Conv2d(c) => {
            let mut s = format!("{}, {}", pair(c.kernel), c.out_channels);
            if c.groups > 1 {
                s += &format!(", groups {}", c.groups);
            }
            Some(s)
        }
        Op::Linear { out_features, .. } => Some(format!("{out_features}-d fc")),
        Op::MaxPool2d(_) | Op::AvgPool2d(_) | Op::AdaptiveAvgPool2d { .. } | Op::Dropout { .. } => {
            Some(describe_layer(ops))
        }
        _ => None,
    }
}

fn as_f64(v: &Val) -> f64 {
    match v {
        Val::Int(i) => *i as f64,
        Val::Float(f) => *f,
        Val::Block(_) => 0.0,
    }
}
