//! Pictures of networks drawn the way the paper's Figure 3 draws them: the layers in order,
//! top to bottom, each as `3×3 conv, 128, /2`; shortcuts as arcs beside the column, solid where
//! the block keeps its shape and dotted where it changes it. Batch norm and activations are
//! not drawn (as in Figure 3); a merge point (`+`) marks where a shortcut is added back.
//!
//! Branches of a merge (`concat { ... }`, `add`, `mul`, `max`) are drawn side by side, as
//! GoogLeNet's Figure 2 draws an Inception module: from the item they read to the merge
//! (`concat`, `+`, `×`, `max`), one lane per branch, left to right in the file's order; a
//! `concat split` starts at a `split` point. Auxiliary heads (stages `from` an earlier stage)
//! hang off their source in a column of their own, and each output of a network with several
//! is marked (`output: aux1 (loss ×0.3)`).
//!
//! Repeated blocks are collapsed: consecutive repetitions of one stage that would be drawn
//! identically are drawn once, bracketed with `×k`. A stage's first repetition usually
//! differs (its stride and its dotted shortcut), so it stays apart.
//!
//! [`figure`] builds the picture's model; [`dot`] writes it for Graphviz and [`svg`] lays it
//! out itself (rows by longest path, branches in lanes; a network without merges is one
//! column).

use std::fmt::Write as _;

use std::collections::HashMap;

use crate::graph::{MergeKind, NodeId, Op, Shape};
use crate::infer::TypedGraph;
use crate::layers::shortcut::ShortcutPlan;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// The network's input ("image" in Figure 3).
    Input,
    /// A layer drawn as a box.
    Layer,
    /// Where a shortcut is added back (`+`), or a Highway gate mixes (`T`).
    Merge { highway: bool },
    /// Where the branches of a merge meet: `concat`, `+`, `×` (mul) or `max`; its inputs are
    /// the branches' ends, in the file's order.
    Join { kind: MergeKind },
    /// Where the branches of a `concat split` take their parts of the channels (`split`).
    Split { parts: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub kind: ItemKind,
    /// `3×3 conv, 128, /2`, `pool, /2`, `fc 1000`.
    pub label: String,
    /// The item's output shape, `128×28×28`.
    pub output: String,
    /// Index into [`Figure::stages`].
    pub stage: Option<usize>,
    /// The repetition of a repeated block the item belongs to.
    pub repetition: Option<u64>,
    /// The items whose outputs this one reads (for a join, one per branch, in order; for a
    /// shortcut's `+`, the main path only: the shortcut is its [`Arc`]). Always earlier items.
    pub inputs: Vec<usize>,
}

/// One output of a network with several (`outputs`), drawn as a note beside its item.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputMark {
    pub item: usize,
    /// The stage it is the output of.
    pub name: String,
    /// Its weight in the training loss.
    pub weight: f64,
}

impl OutputMark {
    /// `output: aux1 (loss ×0.3)`; the weight is left out when it is 1.
    pub fn note(&self) -> String {
        if self.weight == 1.0 {
            format!("output: {}", self.name)
        } else {
            format!("output: {} (loss ×{})", self.name, self.weight)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArcStyle {
    /// The shortcut keeps the shape (identity, or a projection that keeps it: option C).
    Solid,
    /// The shortcut changes the shape (option A's padding, B/C's projection with a stride).
    Dotted,
}

/// A shortcut: from the output of item `from` to the merge item `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arc {
    pub from: usize,
    pub to: usize,
    pub style: ArcStyle,
    /// What the shortcut computes when it is not an identity: `1×1 conv, 128, /2`.
    pub label: Option<String>,
}

/// Items `first..=last` stand for `repeat` identical repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    pub first: usize,
    pub last: usize,
    pub repeat: u64,
}

#[derive(Debug, Clone)]
pub struct Figure {
    pub network: String,
    pub stages: Vec<String>,
    pub items: Vec<Item>,
    pub arcs: Vec<Arc>,
    pub groups: Vec<Group>,
    /// The item of the network's (main) output.
    pub output: usize,
    /// With several outputs: each one, the main one first; empty for a network with one.
    pub outputs: Vec<OutputMark>,
    pub params: u128,
    pub macs: u128,
}

fn dims(s: &Shape) -> String {
    match *s {
        Shape::Map { c, h, w } => format!("{c}×{h}×{w}"),
        Shape::Flat { n } => n.to_string(),
    }
}

fn stride_suffix(stride: [u64; 2]) -> String {
    if stride == [1, 1] {
        String::new()
    } else if stride[0] == stride[1] {
        format!(", /{}", stride[0])
    } else {
        format!(", /{}×{}", stride[0], stride[1])
    }
}

fn kernel_text(k: [u64; 2]) -> String {
    format!("{}×{}", k[0], k[1])
}

/// The label of a node drawn as a box, or `None` for what Figure 3 leaves out.
fn label(op: &Op, input: &Shape) -> Option<String> {
    Some(match op {
        Op::Conv2d(c) => {
            let kind = if c.groups > 1 && c.groups == input.channels() && c.groups == c.out_channels
            {
                "dw conv".to_string()
            } else {
                "conv".to_string()
            };
            let groups = if c.groups > 1 && kind == "conv" {
                format!(", {} groups", c.groups)
            } else {
                String::new()
            };
            format!(
                "{} {kind}, {}{groups}{}",
                kernel_text(c.kernel),
                c.out_channels,
                stride_suffix(c.stride)
            )
        }
        Op::MaxPool2d(p) => format!(
            "{} max pool{}",
            kernel_text(p.kernel),
            stride_suffix(p.stride)
        ),
        Op::AvgPool2d(p) => format!(
            "{} avg pool{}",
            kernel_text(p.kernel),
            stride_suffix(p.stride)
        ),
        Op::AdaptiveAvgPool2d { output } if *output == [1, 1] => "avg pool".to_string(),
        Op::AdaptiveAvgPool2d { output } => format!("avg pool to {}", kernel_text(*output)),
        Op::Linear { out_features, .. } => format!("fc {out_features}"),
        Op::Dropout { p } => format!("dropout {p}"),
        Op::Unit(u) => (crate::layers::rules(u.kind)?.describe)(u),
        Op::Input
        | Op::Merge(_)
        | Op::Split { .. }
        | Op::BatchNorm { .. }
        | Op::Act(_)
        | Op::Flatten
        | Op::Softmax
        | Op::Shortcut { .. }
        | Op::Add
        | Op::Highway => return None,
    })
}

/// The repetition a node belongs to, from its name `stage.repetition.local`.
fn repetition(name: &str, stage: &str) -> Option<u64> {
    let rest = name.strip_prefix(stage)?.strip_prefix('.')?;
    let (rep, local) = rest.split_once('.')?;
    if local.is_empty() {
        return None;
    }
    rep.parse().ok()
}

/// The label of the join of a merge of this kind.
fn join_label(kind: MergeKind) -> &'static str {
    match kind {
        MergeKind::Concat => "concat",
        MergeKind::Add => "+",
        MergeKind::Mul => "×",
        MergeKind::Max => "max",
    }
}

/// The picture of a network, every repetition drawn (`expand`) or identical ones collapsed.
pub fn figure(t: &TypedGraph, expand: bool) -> Figure {
    let g = &t.graph;
    let mut items: Vec<Item> = Vec::new();
    let mut arcs: Vec<Arc> = Vec::new();
    // The item whose output stands for each node's output.
    let mut pos: Vec<usize> = Vec::with_capacity(g.nodes.len());
    // The `split` item of the merge being expanded, by the node the split reads.
    let mut splits: HashMap<NodeId, usize> = HashMap::new();
    let mut cost = crate::layers::Cost::default();
    for (node, typed) in g.nodes.iter().zip(&t.nodes) {
        cost += typed.cost;
        let stage = node.stage;
        let rep = stage.and_then(|s| repetition(&node.name, &g.stages[s].name));
        let item = |kind, label: String, inputs: Vec<usize>| Item {
            kind,
            label,
            output: dims(&typed.output),
            stage,
            repetition: rep,
            inputs,
        };
        // A node that is not drawn stands where its first input stands.
        let through = |pos: &Vec<usize>, k: usize| node.inputs.get(k).map_or(0, |i| pos[i.0]);
        let here = match &node.op {
            Op::Input => {
                let label = match typed.output {
                    Shape::Map { .. } => "image",
                    Shape::Flat { .. } => "input",
                };
                items.push(item(ItemKind::Input, label.to_string(), vec![]));
                items.len() - 1
            }
            Op::Add | Op::Highway => {
                let highway = matches!(node.op, Op::Highway);
                if !highway && matches!(typed.plan, Some(ShortcutPlan::Absent)) {
                    through(&pos, 0)
                } else {
                    // An add's second input is its shortcut; a Highway's third is its gate
                    // (the `Shortcut` node reading the block's input).
                    let sc = node.inputs.get(if highway { 2 } else { 1 }).copied();
                    let merge = items.len();
                    items.push(item(
                        ItemKind::Merge { highway },
                        if highway { "T" } else { "+" }.to_string(),
                        vec![through(&pos, 0)],
                    ));
                    if let Some(sc) = sc {
                        arcs.push(shortcut_arc(t, sc, node.id, &pos, merge));
                    }
                    merge
                }
            }
            Op::Merge(kind) => {
                let ends = node.inputs.iter().map(|i| pos[i.0]).collect();
                let label = join_label(*kind).to_string();
                items.push(item(ItemKind::Join { kind: *kind }, label, ends));
                items.len() - 1
            }
            Op::Split { parts, index } => {
                // The branches of one `concat split` share one split point.
                let src = node.inputs.first().copied().unwrap_or(NodeId(0));
                match splits.get(&src) {
                    Some(&s) if *index > 0 => s,
                    _ => {
                        let inputs = vec![through(&pos, 0)];
                        items.push(item(
                            ItemKind::Split { parts: *parts },
                            "split".to_string(),
                            inputs,
                        ));
                        splits.insert(src, items.len() - 1);
                        items.len() - 1
                    }
                }
            }
            op => match label(op, &typed.input) {
                Some(l) => {
                    items.push(item(ItemKind::Layer, l, vec![through(&pos, 0)]));
                    items.len() - 1
                }
                None => through(&pos, 0),
            },
        };
        pos.push(here);
    }
    let mut fig = Figure {
        network: g.network.clone(),
        stages: g.stages.iter().map(|s| s.name.clone()).collect(),
        items,
        arcs,
        groups: vec![],
        output: pos[g.output.0],
        outputs: g
            .outputs
            .iter()
            .map(|o| OutputMark {
                item: pos[o.node.0],
                name: o.name.clone(),
                weight: o.weight,
            })
            .collect(),
        params: cost.params,
        macs: cost.macs,
    };
    if !expand {
        collapse(&mut fig);
    }
    fig
}

/// The arc of the shortcut `sc` (a `Shortcut` node, or any node added back) merged at `merge`.
fn shortcut_arc(t: &TypedGraph, sc: NodeId, add: NodeId, pos: &[usize], merge: usize) -> Arc {
    let g = &t.graph;
    let node = g.node(sc);
    let (origin, plan) = match node.op {
        Op::Shortcut { .. } => (node.inputs[0], t.typed(sc).plan),
        _ => (sc, None),
    };
    let changes = t.typed(origin).output != t.typed(add).output;
    let style = if changes {
        ArcStyle::Dotted
    } else {
        ArcStyle::Solid
    };
    let label = match plan {
        Some(ShortcutPlan::Projection {
            out_channels,
            stride,
        }) => Some(format!(
            "1×1 conv, {out_channels}{}",
            stride_suffix([stride, stride])
        )),
        Some(ShortcutPlan::PadSubsample { stride, .. }) => {
            Some(format!("zero-pad{}", stride_suffix([stride, stride])))
        }
        Some(ShortcutPlan::Gate { .. }) => Some("gate".to_string()),
        _ => None,
    };
    Arc {
        from: pos[origin.0],
        to: merge,
        style,
        label,
    }
}

/// Draw runs of identical repetitions once.
fn collapse(fig: &mut Figure) {
    // Units: the items of one repetition, or a single item outside repetitions.
    let mut units: Vec<(usize, usize)> = Vec::new();
    for (i, it) in fig.items.iter().enumerate() {
        match units.last_mut() {
            Some((s, e))
                if it.repetition.is_some()
                    && fig.items[*s].repetition == it.repetition
                    && fig.items[*s].stage == it.stage
                    && *e + 1 == i =>
            {
                *e = i
            }
            _ => units.push((i, i)),
        }
    }
    let arcs_into = |(s, e): (usize, usize)| -> Vec<(isize, ArcStyle, Option<String>)> {
        fig.arcs
            .iter()
            .filter(|a| a.to >= s && a.to <= e)
            .map(|a| (a.from as isize - s as isize, a.style, a.label.clone()))
            .collect()
    };
    // What a unit draws: its items, where their inputs are (relative to the unit's start, so a
    // repetition reading the one before is drawn as that one reads its own), its arcs and the
    // outputs it holds.
    let signature = |u: (usize, usize)| {
        let items: Vec<_> = fig.items[u.0..=u.1]
            .iter()
            .map(|it| {
                let inputs: Vec<isize> = it
                    .inputs
                    .iter()
                    .map(|&j| j as isize - u.0 as isize)
                    .collect();
                (
                    it.kind,
                    it.label.clone(),
                    it.output.clone(),
                    it.stage,
                    inputs,
                )
            })
            .collect();
        let outputs: Vec<_> = fig
            .outputs
            .iter()
            .filter(|o| o.item >= u.0 && o.item <= u.1)
            .map(|o| (o.item - u.0, o.note()))
            .collect();
        (items, arcs_into(u), outputs)
    };
    // Runs of units: (first unit, count).
    let mut runs: Vec<(usize, u64)> = Vec::new();
    for (k, &u) in units.iter().enumerate() {
        if let Some((first, count)) = runs.last_mut() {
            let prev = units[*first];
            if fig.items[u.0].repetition.is_some()
                && fig.items[prev.0].repetition.is_some()
                && fig.items[u.0].stage == fig.items[prev.0].stage
                && signature(prev) == signature(u)
            {
                *count += 1;
                continue;
            }
        }
        runs.push((k, 1));
    }
    let mut map = vec![0usize; fig.items.len()];
    let mut items = Vec::new();
    let mut groups = Vec::new();
    for &(first, count) in &runs {
        let (s, e) = units[first];
        let base = items.len();
        for &(us, ue) in &units[first..first + count as usize] {
            for (k, slot) in map[us..=ue].iter_mut().enumerate() {
                *slot = base + k;
            }
        }
        // The run is drawn as its first unit, reading what that one reads.
        items.extend(fig.items[s..=e].iter().map(|it| Item {
            inputs: it.inputs.iter().map(|&j| map[j]).collect(),
            ..it.clone()
        }));
        if count > 1 {
            groups.push(Group {
                first: base,
                last: base + (e - s),
                repeat: count,
            });
        }
    }
    let mut arcs: Vec<Arc> = Vec::new();
    for a in &fig.arcs {
        let b = Arc {
            from: map[a.from],
            to: map[a.to],
            style: a.style,
            label: a.label.clone(),
        };
        // A repetition's shortcut starts at the previous repetition's merge; inside a run
        // drawn once, that maps onto the drawn merge itself and is left out.
        if b.from < b.to && !arcs.contains(&b) {
            arcs.push(b);
        }
    }
    fig.items = items;
    fig.arcs = arcs;
    fig.groups = groups;
    fig.output = map[fig.output];
    for o in &mut fig.outputs {
        o.item = map[o.item];
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Pastel fills, one per stage (Figure 3 colours its stages too).
const FILLS: [&str; 8] = [
    "#f4e6c4", "#dbe9f6", "#e3f1d8", "#f6dde0", "#e8e0f3", "#d9f0ee", "#f3ead9", "#e6e6e6",
];

fn fill(it: &Item) -> &'static str {
    match it.stage {
        Some(s) => FILLS[s % FILLS.len()],
        None => "#ffffff",
    }
}

fn title(fig: &Figure) -> String {
    format!(
        "{}: {} parameters, {} mult-adds",
        fig.network,
        super::thousands(fig.params),
        super::si(fig.macs)
    )
}

/// Each item's output notes (`output: aux1 (loss ×0.3)`), for a network with several outputs.
fn notes(fig: &Figure) -> Vec<Option<String>> {
    let mut notes: Vec<Option<String>> = vec![None; fig.items.len()];
    for o in &fig.outputs {
        let n = &mut notes[o.item];
        *n = Some(match n.take() {
            Some(before) => format!("{before}; {}", o.note()),
            None => o.note(),
        });
    }
    notes
}

/// Whether each item is on the way to the main output (the others are auxiliary heads).
fn main_path(fig: &Figure) -> Vec<bool> {
    let mut main = vec![false; fig.items.len()];
    if let Some(m) = main.get_mut(fig.output) {
        *m = true;
    }
    for i in (0..fig.items.len()).rev() {
        if main[i] {
            for &j in &fig.items[i].inputs {
                main[j] = true;
            }
        }
    }
    main
}

/// Graphviz's DOT language: `dot -Tsvg` draws it.
pub fn dot(fig: &Figure) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "digraph \"{}\" {{", esc(&fig.network));
    let _ = writeln!(
        o,
        "  graph [rankdir=TB, labelloc=t, fontname=\"Helvetica\", label=\"{}\"];",
        esc(&title(fig))
    );
    let _ = writeln!(
        o,
        "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=11, width=2.4];"
    );
    let _ = writeln!(o, "  edge [arrowsize=0.6];");
    let notes = notes(fig);
    let node_line = |o: &mut String, i: usize, it: &Item, indent: &str| {
        let note = notes[i]
            .as_deref()
            .map(|n| format!("\\n{}", esc(n)))
            .unwrap_or_default();
        let xlabel = notes[i]
            .as_deref()
            .map(|n| format!(", xlabel=\"{}\"", esc(n)))
            .unwrap_or_default();
        let _ = match it.kind {
            ItemKind::Merge { .. }
            | ItemKind::Join {
                kind: MergeKind::Add | MergeKind::Mul,
            } => writeln!(
                o,
                "{indent}n{i} [label=\"{}\", shape=circle, width=0.3, fixedsize=true, fillcolor=\"#ffffff\"{xlabel}];",
                esc(&it.label)
            ),
            ItemKind::Join { .. } => writeln!(
                o,
                "{indent}n{i} [label=\"{}\\n{}{note}\", width=0.9, height=0.3, fontsize=10, fillcolor=\"#ffffff\"];",
                esc(&it.label),
                esc(&it.output)
            ),
            ItemKind::Split { .. } => writeln!(
                o,
                "{indent}n{i} [label=\"{}{note}\", width=0.9, height=0.3, fontsize=10, fillcolor=\"#ffffff\"];",
                esc(&it.label)
            ),
            _ => writeln!(
                o,
                "{indent}n{i} [label=\"{}\\n{}{note}\", fillcolor=\"{}\"];",
                esc(&it.label),
                esc(&it.output),
                fill(it)
            ),
        };
    };
    let mut grouped = vec![None; fig.items.len()];
    for (k, gr) in fig.groups.iter().enumerate() {
        for slot in &mut grouped[gr.first..=gr.last] {
            *slot = Some(k);
        }
    }
    let mut i = 0;
    while i < fig.items.len() {
        match grouped[i] {
            Some(k) => {
                let gr = fig.groups[k];
                let _ = writeln!(o, "  subgraph cluster_{k} {{");
                let _ = writeln!(
                    o,
                    "    label=\"×{}\"; labeljust=l; style=dashed; color=\"#888888\";",
                    gr.repeat
                );
                for j in gr.first..=gr.last {
                    node_line(&mut o, j, &fig.items[j], "    ");
                }
                let _ = writeln!(o, "  }}");
                i = gr.last + 1;
            }
            None => {
                node_line(&mut o, i, &fig.items[i], "  ");
                i += 1;
            }
        }
    }
    // Edges from each item's inputs: branches then stand side by side. The main path pulls
    // straight; an auxiliary head hangs off its source.
    let main = main_path(fig);
    for (i, it) in fig.items.iter().enumerate() {
        let weight = if main[i] { 10 } else { 1 };
        for &j in &it.inputs {
            let _ = writeln!(o, "  n{j} -> n{i} [weight={weight}];");
        }
    }
    for a in &fig.arcs {
        let style = match a.style {
            ArcStyle::Solid => "solid",
            ArcStyle::Dotted => "dotted",
        };
        let label = a
            .label
            .as_deref()
            .map(|l| format!(", label=\"{}\", fontsize=9", esc(l)))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "  n{} -> n{} [style={style}, constraint=false{label}];",
            a.from, a.to
        );
    }
    o.push_str("}\n");
    o
}

const BOX_W: f64 = 200.0;
const BOX_H: f64 = 34.0;
const MERGE_H: f64 = 20.0;
const GAP: f64 = 14.0;
const LEFT: f64 = 120.0;
const TOP: f64 = 56.0;
const ARC_STEP: f64 = 16.0;
/// From one lane's boxes to the next's.
const PITCH: f64 = BOX_W + 30.0;
/// The width of a `concat`, `max` or `split` point.
const JOIN_W: f64 = 64.0;

/// Where [`svg`] draws each item: its row (the longest path from the input) and its lane
/// (column, from 0 at the left).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub row: Vec<usize>,
    pub lane: Vec<usize>,
    /// The lane an identity branch runs down, by (join item, branch index).
    pub via: HashMap<(usize, usize), usize>,
}

impl Layout {
    /// The lane the connector from item `i`'s `k`th input runs down: an identity branch's own
    /// lane, else the branch's lane (the farther right of its two ends).
    pub fn edge_lane(&self, fig: &Figure, i: usize, k: usize) -> usize {
        let j = fig.items[i].inputs[k];
        self.via
            .get(&(i, k))
            .copied()
            .unwrap_or(self.lane[i].max(self.lane[j]))
    }
}

struct Lanes<'a> {
    fig: &'a Figure,
    lane: Vec<Option<usize>>,
    via: HashMap<(usize, usize), usize>,
}

impl Lanes<'_> {
    /// The items on the way back from `i` through first inputs, `i` included.
    fn back(&self, mut i: usize) -> Vec<usize> {
        let mut out = vec![i];
        while let Some(&j) = self.fig.items[i].inputs.first() {
            out.push(j);
            i = j;
        }
        out
    }

    /// The item the branches of `join` start from: the latest one every branch goes back to.
    fn fork(&self, join: usize) -> usize {
        let inputs = &self.fig.items[join].inputs;
        let mut common: Vec<bool> = vec![false; join];
        for &j in &self.back(inputs[0]) {
            common[j] = true;
        }
        for &e in &inputs[1..] {
            let mut here = vec![false; join];
            for &j in &self.back(e) {
                here[j] = common[j];
            }
            common = here;
        }
        common.iter().rposition(|&c| c).unwrap_or(0)
    }

    /// Place the chain ending at `end` in `lane`, back to `stop` or to an item already
    /// placed; a join's branches go in lanes from `lane` rightwards, in order. Returns the
    /// number of lanes the chain takes.
    fn chain(
        &mut self,
        end: usize,
        stop: Option<usize>,
        lane: usize,
        placed: &mut Vec<usize>,
    ) -> usize {
        let mut width = 1;
        let mut i = end;
        loop {
            if Some(i) == stop || self.lane[i].is_some() {
                break;
            }
            self.lane[i] = Some(lane);
            placed.push(i);
            let it = &self.fig.items[i];
            if matches!(it.kind, ItemKind::Join { .. }) && it.inputs.len() > 1 {
                let fork = self.fork(i);
                let mut off = 0;
                for (k, &e) in it.inputs.clone().iter().enumerate() {
                    if e == fork {
                        self.via.insert((i, k), lane + off);
                        off += 1;
                    } else {
                        off += self.chain(e, Some(fork), lane + off, placed);
                    }
                }
                width = width.max(off);
                i = fork;
            } else if let Some(&j) = it.inputs.first() {
                i = j;
            } else {
                break;
            }
        }
        width
    }
}

/// Lay the figure out: rows by longest path; the main path in lane 0 with each merge's
/// branches in lanes to its right; every auxiliary head in a column right of whatever
/// stands in its rows.
pub fn layout(fig: &Figure) -> Layout {
    let n = fig.items.len();
    let mut row = vec![0usize; n];
    for (i, it) in fig.items.iter().enumerate() {
        row[i] = it.inputs.iter().map(|&j| row[j] + 1).max().unwrap_or(0);
    }
    let mut l = Lanes {
        fig,
        lane: vec![None; n],
        via: HashMap::new(),
    };
    if n > 0 {
        l.chain(fig.output, None, 0, &mut Vec::new());
    }
    let mut ends: Vec<usize> = fig.outputs.iter().map(|o| o.item).collect();
    ends.extend((0..n).rev());
    for e in ends {
        if l.lane[e].is_some() {
            continue;
        }
        let mut placed = Vec::new();
        l.chain(e, None, 0, &mut placed);
        let mut new = vec![false; n];
        for &p in &placed {
            new[p] = true;
        }
        let lo = placed.iter().map(|&p| row[p]).min().unwrap_or(0);
        let hi = placed.iter().map(|&p| row[p]).max().unwrap_or(0);
        // The lanes taken in those rows: by items, and by connectors running down a lane.
        let mut taken: Option<usize> = None;
        for i in (0..n).filter(|&i| !new[i]) {
            let Some(li) = l.lane[i] else { continue };
            if row[i] >= lo && row[i] <= hi {
                taken = taken.max(Some(li));
            }
            for (k, &j) in fig.items[i].inputs.iter().enumerate() {
                let Some(lj) = l.lane[j] else { continue };
                if row[j] <= hi && row[i] >= lo {
                    let via = l.via.get(&(i, k)).copied().unwrap_or(li.max(lj));
                    taken = taken.max(Some(via));
                }
            }
        }
        let shift = taken.map_or(0, |t| t + 1);
        for &p in &placed {
            l.lane[p] = l.lane[p].map(|x| x + shift);
        }
        for ((j, _), v) in l.via.iter_mut() {
            if new[*j] {
                *v += shift;
            }
        }
    }
    Layout {
        row,
        lane: l.lane.into_iter().map(|x| x.unwrap_or(0)).collect(),
        via: l.via,
    }
}

/// A self-contained SVG of the figure: one column, with merges' branches side by side.
pub fn svg(fig: &Figure) -> String {
    let lay = layout(fig);
    let slot_h = |i: usize| match fig.items[i].kind {
        ItemKind::Input | ItemKind::Layer => BOX_H,
        _ => MERGE_H,
    };
    // Rows: as tall as their tallest item; an item is centred in its row.
    let rows = lay.row.iter().map(|r| r + 1).max().unwrap_or(0);
    let mut row_h = vec![0.0f64; rows];
    for (i, &r) in lay.row.iter().enumerate() {
        row_h[r] = row_h[r].max(slot_h(i));
    }
    let mut row_top = Vec::with_capacity(rows);
    let mut y = TOP;
    for h in &row_h {
        row_top.push(y);
        y += h + GAP;
    }
    let height = y + 10.0;
    let top = |i: usize| {
        let r = lay.row[i];
        row_top[r] + (row_h[r] - slot_h(i)) / 2.0
    };
    let bottom = |i: usize| top(i) + slot_h(i);
    let lane_x = |lane: usize| LEFT + PITCH * lane as f64;
    let cx_lane = |lane: usize| lane_x(lane) + BOX_W / 2.0;
    let cx = |i: usize| cx_lane(lay.lane[i]);
    // The right edge of what is drawn for item `i`.
    let right = |i: usize| match fig.items[i].kind {
        ItemKind::Input | ItemKind::Layer => lane_x(lay.lane[i]) + BOX_W,
        ItemKind::Merge { .. }
        | ItemKind::Join {
            kind: MergeKind::Add | MergeKind::Mul,
        } => cx(i) + MERGE_H / 2.0,
        ItemKind::Join { .. } | ItemKind::Split { .. } => cx(i) + JOIN_W / 2.0,
    };
    // Arcs nest: an arc is drawn one step further out than every arc inside it.
    let mut order: Vec<usize> = (0..fig.arcs.len()).collect();
    order.sort_by_key(|&k| fig.arcs[k].to - fig.arcs[k].from.min(fig.arcs[k].to));
    let mut level = vec![1usize; fig.arcs.len()];
    for (n, &k) in order.iter().enumerate() {
        let a = &fig.arcs[k];
        for &m in &order[..n] {
            let b = &fig.arcs[m];
            if b.from >= a.from && b.to <= a.to && (b.from, b.to) != (a.from, a.to) {
                level[k] = level[k].max(level[m] + 1);
            }
        }
    }
    let max_level = level.iter().copied().max().unwrap_or(0) as f64;
    let max_lane = lay.lane.iter().copied().max().unwrap_or(0);
    // Arcs run right of every lane.
    let arcs_x = LEFT + BOX_W + PITCH * max_lane as f64;
    let notes = notes(fig);
    // Wide enough for the output notes too (about 5 pixels a character).
    let width = notes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| Some(right(i) + 6.0 + 5.0 * n.as_ref()?.chars().count() as f64 + 10.0))
        .fold(arcs_x + ARC_STEP * max_level + 120.0, f64::max);
    let main = main_path(fig);

    let mut o = String::new();
    let _ = writeln!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"Helvetica, Arial, sans-serif\">"
    );
    let _ = writeln!(
        o,
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"6\" \
         markerHeight=\"6\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" \
         fill=\"#333333\"/></marker></defs>"
    );
    let _ = writeln!(
        o,
        "<rect x=\"0\" y=\"0\" width=\"{width:.0}\" height=\"{height:.0}\" fill=\"#ffffff\"/>"
    );
    let _ = writeln!(
        o,
        "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{}</text>",
        esc(&fig.network)
    );
    let _ = writeln!(
        o,
        "<text x=\"10\" y=\"40\" font-size=\"11\" fill=\"#555555\">{} parameters, {} mult-adds</text>",
        super::thousands(fig.params),
        super::si(fig.macs)
    );
    // Connectors, from each item's inputs: straight down a lane, or with elbows in the gaps
    // between rows (out to a branch's lane below its start, back in above its join).
    for (i, it) in fig.items.iter().enumerate() {
        for (k, &j) in it.inputs.iter().enumerate() {
            let (xj, xi) = (cx(j), cx(i));
            let (y0, y1) = (bottom(j), top(i));
            let via = lay.edge_lane(fig, i, k);
            let xl = cx_lane(via);
            if xj == xi && xl == xi {
                let _ = writeln!(
                    o,
                    "<line x1=\"{xj:.1}\" y1=\"{y0:.1}\" x2=\"{xi:.1}\" y2=\"{y1:.1}\" stroke=\"#333333\" \
                     stroke-width=\"1.2\" marker-end=\"url(#arrow)\"/>"
                );
                continue;
            }
            let rj = lay.row[j];
            let ya = row_top[rj] + row_h[rj] + GAP / 2.0;
            let yb = row_top[lay.row[i]] - GAP / 2.0;
            let d = if via == lay.lane[j] {
                format!("M {xj:.1} {y0:.1} L {xj:.1} {yb:.1} L {xi:.1} {yb:.1} L {xi:.1} {y1:.1}")
            } else if via == lay.lane[i] {
                format!("M {xj:.1} {y0:.1} L {xj:.1} {ya:.1} L {xi:.1} {ya:.1} L {xi:.1} {y1:.1}")
            } else {
                format!(
                    "M {xj:.1} {y0:.1} L {xj:.1} {ya:.1} L {xl:.1} {ya:.1} L {xl:.1} {yb:.1} \
                     L {xi:.1} {yb:.1} L {xi:.1} {y1:.1}"
                )
            };
            let _ = writeln!(
                o,
                "<path d=\"{d}\" fill=\"none\" stroke=\"#333333\" stroke-width=\"1.2\" \
                 marker-end=\"url(#arrow)\"/>"
            );
        }
    }
    // Stage names, at each stage's first item: left of the column, or beside an auxiliary
    // head's column.
    let mut seen = None;
    for (i, it) in fig.items.iter().enumerate() {
        if let Some(s) = it.stage {
            if seen != Some(s) {
                seen = Some(s);
                if main[i] {
                    let _ = writeln!(
                        o,
                        "<text x=\"10\" y=\"{:.1}\" font-size=\"11\" font-weight=\"bold\" fill=\"#333333\">{}</text>",
                        top(i) + 14.0,
                        esc(&fig.stages[s])
                    );
                } else {
                    let _ = writeln!(
                        o,
                        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" font-weight=\"bold\" fill=\"#333333\">{}</text>",
                        right(i) + 6.0,
                        top(i) + 12.0,
                        esc(&fig.stages[s])
                    );
                }
            }
        }
    }
    // Groups: a bracket and ×k on the left.
    for gr in &fig.groups {
        let y0 = (gr.first..=gr.last).map(top).fold(f64::INFINITY, f64::min);
        let y1 = (gr.first..=gr.last)
            .map(bottom)
            .fold(f64::NEG_INFINITY, f64::max);
        let x = LEFT - 10.0;
        let _ = writeln!(
            o,
            "<path d=\"M {:.1} {y0:.1} L {x:.1} {y0:.1} L {x:.1} {y1:.1} L {:.1} {y1:.1}\" \
             fill=\"none\" stroke=\"#888888\" stroke-width=\"1\"/>",
            x + 5.0,
            x + 5.0
        );
        let _ = writeln!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" text-anchor=\"end\" fill=\"#333333\">×{}</text>",
            x - 4.0,
            (y0 + y1) / 2.0 + 4.0,
            gr.repeat
        );
    }
    // Shortcut arcs, right of every lane.
    for (k, a) in fig.arcs.iter().enumerate() {
        let y0 = bottom(a.from) + GAP / 2.0;
        let y1 = top(a.to) + MERGE_H / 2.0;
        let x0 = cx(a.from);
        let xr = arcs_x + ARC_STEP * level[k] as f64;
        let r = 8.0;
        let dash = match a.style {
            ArcStyle::Solid => "",
            ArcStyle::Dotted => " stroke-dasharray=\"3 3\"",
        };
        let _ = writeln!(
            o,
            "<path d=\"M {x0:.1} {y0:.1} L {:.1} {y0:.1} Q {xr:.1} {y0:.1} {xr:.1} {:.1} L {xr:.1} {:.1} \
             Q {xr:.1} {y1:.1} {:.1} {y1:.1} L {:.1} {y1:.1}\" fill=\"none\" stroke=\"#333333\" \
             stroke-width=\"1.2\"{dash} marker-end=\"url(#arrow)\"/>",
            xr - r,
            y0 + r,
            y1 - r,
            xr - r,
            cx(a.to) + MERGE_H / 2.0,
        );
        if let Some(l) = &a.label {
            let _ = writeln!(
                o,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" fill=\"#555555\">{}</text>",
                xr + 4.0,
                (y0 + y1) / 2.0 + 3.0,
                esc(l)
            );
        }
    }
    // Boxes, merge points and joins.
    for (i, it) in fig.items.iter().enumerate() {
        let y = top(i);
        let cx = cx(i);
        match it.kind {
            ItemKind::Merge { .. }
            | ItemKind::Join {
                kind: MergeKind::Add | MergeKind::Mul,
            } => {
                let r = MERGE_H / 2.0;
                let _ = writeln!(
                    o,
                    "<circle cx=\"{cx:.1}\" cy=\"{:.1}\" r=\"{r:.1}\" fill=\"#ffffff\" stroke=\"#333333\" stroke-width=\"1.2\"/>",
                    y + r
                );
                let _ = writeln!(
                    o,
                    "<text x=\"{cx:.1}\" y=\"{:.1}\" font-size=\"13\" text-anchor=\"middle\">{}</text>",
                    y + r + 4.5,
                    esc(&it.label)
                );
            }
            ItemKind::Join { .. } | ItemKind::Split { .. } => {
                let _ = writeln!(
                    o,
                    "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{JOIN_W:.1}\" height=\"{MERGE_H:.1}\" rx=\"{:.1}\" \
                     fill=\"#ffffff\" stroke=\"#333333\" stroke-width=\"1.2\"/>",
                    cx - JOIN_W / 2.0,
                    MERGE_H / 2.0
                );
                let _ = writeln!(
                    o,
                    "<text x=\"{cx:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
                    y + 14.0,
                    esc(&it.label)
                );
                if matches!(it.kind, ItemKind::Join { .. }) {
                    let _ = writeln!(
                        o,
                        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" fill=\"#555555\">{}</text>",
                        cx + JOIN_W / 2.0 + 6.0,
                        y + 14.0,
                        esc(&it.output)
                    );
                }
            }
            ItemKind::Input | ItemKind::Layer => {
                let x = lane_x(lay.lane[i]);
                let _ = writeln!(
                    o,
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{BOX_W:.1}\" height=\"{BOX_H:.1}\" rx=\"5\" \
                     fill=\"{}\" stroke=\"#333333\" stroke-width=\"1\"/>",
                    fill(it)
                );
                let _ = writeln!(
                    o,
                    "<text x=\"{cx:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
                    y + 15.0,
                    esc(&it.label)
                );
                let _ = writeln!(
                    o,
                    "<text x=\"{cx:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"middle\" fill=\"#555555\">{}</text>",
                    y + 28.0,
                    esc(&it.output)
                );
            }
        }
        if let Some(n) = &notes[i] {
            let _ = writeln!(
                o,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" font-style=\"italic\" fill=\"#333333\">{}</text>",
                right(i) + 6.0,
                bottom(i) - 4.0,
                esc(n)
            );
        }
    }
    o.push_str("</svg>\n");
    o
}
