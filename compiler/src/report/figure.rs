//! Pictures of networks drawn the way the paper's Figure 3 draws them: the layers in order,
//! top to bottom, each as `3×3 conv, 128, /2`; shortcuts as arcs beside the column, solid where
//! the block keeps its shape and dotted where it changes it. Batch norm and activations are
//! not drawn (as in Figure 3); a merge point (`+`) marks where a shortcut is added back.
//!
//! Repeated blocks are collapsed: consecutive repetitions of one stage that would be drawn
//! identically are drawn once, bracketed with `×k`. A stage's first repetition usually
//! differs (its stride and its dotted shortcut), so it stays apart.
//!
//! [`figure`] builds the picture's model; [`dot`] writes it for Graphviz and [`svg`] lays it
//! out itself (one column needs no layout engine).

use std::fmt::Write as _;

use crate::graph::{NodeId, Op, Shape};
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
        Op::Merge(k) => k.word().to_string(),
        Op::Split { parts, index } => format!("split {}/{parts}", index + 1),
        Op::Input
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

/// The picture of a network, every repetition drawn (`expand`) or identical ones collapsed.
pub fn figure(t: &TypedGraph, expand: bool) -> Figure {
    let g = &t.graph;
    let mut items: Vec<Item> = Vec::new();
    let mut arcs: Vec<Arc> = Vec::new();
    // The item whose output stands for each node's output.
    let mut pos: Vec<usize> = Vec::with_capacity(g.nodes.len());
    let mut cost = crate::layers::Cost::default();
    for (node, typed) in g.nodes.iter().zip(&t.nodes) {
        cost += typed.cost;
        let stage = node.stage;
        let rep = stage.and_then(|s| repetition(&node.name, &g.stages[s].name));
        let item = |kind, label: String| Item {
            kind,
            label,
            output: dims(&typed.output),
            stage,
            repetition: rep,
        };
        // A node that is not drawn stands where its first input stands.
        let through = |pos: &Vec<usize>, k: usize| node.inputs.get(k).map_or(0, |i| pos[i.0]);
        let here = match &node.op {
            Op::Input => {
                let label = match typed.output {
                    Shape::Map { .. } => "image",
                    Shape::Flat { .. } => "input",
                };
                items.push(item(ItemKind::Input, label.to_string()));
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
                    ));
                    if let Some(sc) = sc {
                        arcs.push(shortcut_arc(t, sc, node.id, &pos, merge));
                    }
                    merge
                }
            }
            op => match label(op, &typed.input) {
                Some(l) => {
                    items.push(item(ItemKind::Layer, l));
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
    let signature = |u: (usize, usize)| {
        let items: Vec<_> = fig.items[u.0..=u.1]
            .iter()
            .map(|it| (it.kind, it.label.clone(), it.output.clone(), it.stage))
            .collect();
        (items, arcs_into(u))
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
        items.extend(fig.items[s..=e].iter().cloned());
        for &(us, ue) in &units[first..first + count as usize] {
            for (k, slot) in map[us..=ue].iter_mut().enumerate() {
                *slot = base + k;
            }
        }
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
    let node_line = |o: &mut String, i: usize, it: &Item, indent: &str| {
        let _ = match it.kind {
            ItemKind::Merge { .. } => writeln!(
                o,
                "{indent}n{i} [label=\"{}\", shape=circle, width=0.3, fixedsize=true, fillcolor=\"#ffffff\"];",
                esc(&it.label)
            ),
            _ => writeln!(
                o,
                "{indent}n{i} [label=\"{}\\n{}\", fillcolor=\"{}\"];",
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
    for i in 1..fig.items.len() {
        let _ = writeln!(o, "  n{} -> n{i} [weight=10];", i - 1);
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

/// A self-contained SVG of the figure, laid out as one column.
pub fn svg(fig: &Figure) -> String {
    // Vertical slots.
    let mut tops = Vec::with_capacity(fig.items.len());
    let mut y = TOP;
    for it in &fig.items {
        tops.push(y);
        y += match it.kind {
            ItemKind::Merge { .. } => MERGE_H,
            _ => BOX_H,
        } + GAP;
    }
    let height = y + 10.0;
    let slot_h = |i: usize| match fig.items[i].kind {
        ItemKind::Merge { .. } => MERGE_H,
        _ => BOX_H,
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
    let cx = LEFT + BOX_W / 2.0;
    let width = LEFT + BOX_W + ARC_STEP * max_level + 120.0;

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
    // The chain.
    for i in 1..fig.items.len() {
        let y0 = tops[i - 1] + slot_h(i - 1);
        let y1 = tops[i];
        let _ = writeln!(
            o,
            "<line x1=\"{cx:.1}\" y1=\"{y0:.1}\" x2=\"{cx:.1}\" y2=\"{y1:.1}\" stroke=\"#333333\" \
             stroke-width=\"1.2\" marker-end=\"url(#arrow)\"/>"
        );
    }
    // Stage names, at each stage's first item.
    let mut seen = None;
    for (i, it) in fig.items.iter().enumerate() {
        if let Some(s) = it.stage {
            if seen != Some(s) {
                seen = Some(s);
                let _ = writeln!(
                    o,
                    "<text x=\"10\" y=\"{:.1}\" font-size=\"11\" font-weight=\"bold\" fill=\"#333333\">{}</text>",
                    tops[i] + 14.0,
                    esc(&fig.stages[s])
                );
            }
        }
    }
    // Groups: a bracket and ×k on the left.
    for gr in &fig.groups {
        let y0 = tops[gr.first];
        let y1 = tops[gr.last] + slot_h(gr.last);
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
    // Shortcut arcs, behind the boxes' right edge.
    for (k, a) in fig.arcs.iter().enumerate() {
        let y0 = tops[a.from] + slot_h(a.from) + GAP / 2.0;
        let y1 = tops[a.to] + MERGE_H / 2.0;
        let xr = LEFT + BOX_W + ARC_STEP * level[k] as f64;
        let r = 8.0;
        let dash = match a.style {
            ArcStyle::Solid => "",
            ArcStyle::Dotted => " stroke-dasharray=\"3 3\"",
        };
        let _ = writeln!(
            o,
            "<path d=\"M {cx:.1} {y0:.1} L {:.1} {y0:.1} Q {xr:.1} {y0:.1} {xr:.1} {:.1} L {xr:.1} {:.1} \
             Q {xr:.1} {y1:.1} {:.1} {y1:.1} L {:.1} {y1:.1}\" fill=\"none\" stroke=\"#333333\" \
             stroke-width=\"1.2\"{dash} marker-end=\"url(#arrow)\"/>",
            xr - r,
            y0 + r,
            y1 - r,
            xr - r,
            cx + MERGE_H / 2.0,
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
    // Boxes and merge points.
    for (i, it) in fig.items.iter().enumerate() {
        let y = tops[i];
        match it.kind {
            ItemKind::Merge { .. } => {
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
            _ => {
                let _ = writeln!(
                    o,
                    "<rect x=\"{LEFT:.1}\" y=\"{y:.1}\" width=\"{BOX_W:.1}\" height=\"{BOX_H:.1}\" rx=\"5\" \
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
    }
    o.push_str("</svg>\n");
    o
}
