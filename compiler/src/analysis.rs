//! Analysis: per-layer, per-stage and per-network figures of a typed graph, in the form every
//! report (table, JSON, Markdown, Table 1) reads. Serialised as the JSON report; keep it stable.

use serde::Serialize;

use crate::graph::{Op, Shape, ShortcutOption};
use crate::infer::TypedGraph;
use crate::layers::shortcut::ShortcutPlan;
use crate::layers::Cost;

/// Bytes of one f32 activation element.
pub const BYTES_PER_ELEMENT: u128 = 4;

#[derive(Debug, Clone, Serialize)]
pub struct NetworkReport {
    pub network: String,
    pub input: Vec<u64>,
    pub output: Vec<u64>,
    /// Trainable parameters.
    pub params: u128,
    /// BN running mean and variance.
    pub buffers: u128,
    /// Multiply-adds of conv and fc layers (the paper's "FLOPs").
    pub macs: u128,
    /// All arithmetic, multiplies and adds counted apart, BN, ReLU, adds and pools included.
    pub flops: u128,
    /// Activation elements per sample: the outputs a training step keeps for backward.
    pub activations: u128,
    /// The batch size the per-batch figures are for (`--batch-size`, default 1).
    pub batch_size: u64,
    /// `macs` x batch: torchinfo's convention is per batch.
    pub macs_per_batch: u128,
    /// `flops` x batch.
    pub flops_per_batch: u128,
    /// `activations` x batch x 4 bytes (f32).
    pub activation_bytes: u128,
    /// `params` x 4 bytes (f32).
    pub param_bytes: u128,
    pub shortcut: String,
    pub stages: Vec<StageReport>,
    pub layers: Vec<LayerReport>,
    /// A network with several outputs: each one, the main one first. Empty for one output.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputReport>,
}

/// One output of a network with several (`outputs`).
#[derive(Debug, Clone, Serialize)]
pub struct OutputReport {
    pub name: String,
    pub output: Vec<u64>,
    /// Its weight in the training loss.
    pub weight: f64,
    /// What computing this output alone costs: the mult-adds and FLOPs of every layer it
    /// depends on (for the main output: the cost of evaluation, where the other heads are
    /// not run).
    pub macs: u128,
    pub flops: u128,
    /// Parameters of the layers only this output depends on (an auxiliary head's own), or
    /// for the main output, of every layer it depends on.
    pub params: u128,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub name: String,
    pub output: Vec<u64>,
    pub params: u128,
    pub buffers: u128,
    pub macs: u128,
    pub flops: u128,
    pub nodes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    pub name: String,
    pub kind: String,
    pub stage: Option<String>,
    pub input: Vec<u64>,
    pub output: Vec<u64>,
    pub params: u128,
    pub buffers: u128,
    pub macs: u128,
    pub flops: u128,
    /// Kernel, stride and similar, as a short text.
    pub detail: String,
}

/// Whether a node's output is a new tensor (a view or an identity is not).
fn stores_activation(op: &Op, plan: Option<ShortcutPlan>) -> bool {
    match op {
        Op::Input | Op::Flatten => false,
        Op::Shortcut { .. } => !matches!(
            plan,
            Some(ShortcutPlan::Identity) | Some(ShortcutPlan::Absent)
        ),
        Op::Add => plan != Some(ShortcutPlan::Absent),
        _ => true,
    }
}

fn detail(op: &Op, plan: Option<ShortcutPlan>) -> String {
    let p = |x: [u64; 2]| {
        if x[0] == x[1] {
            x[0].to_string()
        } else {
            format!("{}x{}", x[0], x[1])
        }
    };
    match op {
        Op::Conv2d(c) => {
            let mut s = format!("{}x{}, {}", c.kernel[0], c.kernel[1], c.out_channels);
            if c.stride != [1, 1] {
                s += &format!(", stride {}", p(c.stride));
            }
            if c.padding != [0, 0] {
                s += &format!(", pad {}", p(c.padding));
            }
            if c.groups != 1 {
                s += &format!(", groups {}", c.groups);
            }
            if c.dilation != [1, 1] {
                s += &format!(", dilation {}", p(c.dilation));
            }
            if c.bias {
                s += ", bias";
            }
            s
        }
        Op::MaxPool2d(q) | Op::AvgPool2d(q) => {
            let mut s = format!("{}x{}, stride {}", q.kernel[0], q.kernel[1], p(q.stride));
            if q.padding != [0, 0] {
                s += &format!(", pad {}", p(q.padding));
            }
            s
        }
        Op::AdaptiveAvgPool2d { output } => format!("to {}x{}", output[0], output[1]),
        Op::Linear { out_features, bias } => {
            format!("{out_features}{}", if *bias { ", bias" } else { "" })
        }
        Op::Dropout { p } => format!("p={p}"),
        Op::Unit(u) => crate::layers::rules(u.kind).map_or(String::new(), |r| (r.describe)(u)),
        Op::Shortcut { option, .. } => match plan {
            Some(ShortcutPlan::Identity) if *option == ShortcutOption::Identity => {
                "identity".into()
            }
            Some(ShortcutPlan::Identity) => format!("{} identity", option.name()),
            Some(ShortcutPlan::PadSubsample {
                stride,
                pad_before,
                pad_after,
            }) => format!(
                "A: subsample /{stride}, pad {} zero channels",
                pad_before + pad_after
            ),
            Some(ShortcutPlan::Projection {
                out_channels,
                stride,
            }) => format!(
                "{}: projection 1x1, {out_channels}, stride {stride} + bn",
                option.name()
            ),
            Some(ShortcutPlan::Absent) => "identity: none, the shape changes".into(),
            Some(ShortcutPlan::Gate { channels }) => {
                format!("gated: gate to {channels}, bias")
            }
            None => String::new(),
        },
        Op::Add if plan == Some(ShortcutPlan::Absent) => {
            "no shortcut: passes the block through".into()
        }
        _ => String::new(),
    }
}

pub fn analyse(t: &TypedGraph, batch_size: u64) -> NetworkReport {
    let g = &t.graph;
    let mut total = Cost::default();
    let mut activations: u128 = 0;
    let mut layers = Vec::with_capacity(g.nodes.len());
    let mut stages: Vec<StageReport> = g
        .stages
        .iter()
        .map(|s| StageReport {
            name: s.name.clone(),
            output: vec![],
            params: 0,
            buffers: 0,
            macs: 0,
            flops: 0,
            nodes: 0,
        })
        .collect();
    for (node, tn) in g.nodes.iter().zip(&t.nodes) {
        total += tn.cost;
        if stores_activation(&node.op, tn.plan) {
            activations += tn.output.numel();
        }
        if let Some(si) = node.stage {
            let s = &mut stages[si];
            s.params += tn.cost.params;
            s.buffers += tn.cost.buffers;
            s.macs += tn.cost.macs;
            s.flops += tn.cost.flops;
            s.output = tn.output.dims();
            s.nodes += 1;
        }
        if matches!(node.op, Op::Input) {
            continue;
        }
        layers.push(LayerReport {
            name: node.name.clone(),
            kind: node.op.kind().to_string(),
            stage: node.stage.map(|i| g.stages[i].name.clone()),
            input: tn.input.dims(),
            output: tn.output.dims(),
            params: tn.cost.params,
            buffers: tn.cost.buffers,
            macs: tn.cost.macs,
            flops: tn.cost.flops,
            detail: detail(&node.op, tn.plan),
        });
    }
    let outputs = output_reports(t);
    NetworkReport {
        network: g.network.clone(),
        input: t.input_shape().dims(),
        output: t.output_shape().dims(),
        params: total.params,
        buffers: total.buffers,
        macs: total.macs,
        flops: total.flops,
        activations,
        batch_size,
        macs_per_batch: total.macs * batch_size as u128,
        flops_per_batch: total.flops * batch_size as u128,
        activation_bytes: activations * batch_size as u128 * BYTES_PER_ELEMENT,
        param_bytes: total.params * BYTES_PER_ELEMENT,
        shortcut: g.shortcut.name().to_string(),
        stages,
        layers,
        outputs,
    }
}

/// Which nodes `out` depends on (itself included).
fn ancestors(t: &TypedGraph, out: crate::graph::NodeId) -> Vec<bool> {
    let mut seen = vec![false; t.graph.nodes.len()];
    let mut stack = vec![out];
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut seen[n.0], true) {
            continue;
        }
        stack.extend(t.graph.node(n).inputs.iter().copied());
        // A shortcut reads its target's shape, not its value: no dependency.
    }
    seen
}

fn output_reports(t: &TypedGraph) -> Vec<OutputReport> {
    let g = &t.graph;
    let main = match g.outputs.first() {
        Some(o) => ancestors(t, o.node),
        None => return vec![],
    };
    g.outputs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let deps = ancestors(t, o.node);
            let mut all = Cost::default();
            let mut own = 0;
            for (k, tn) in t.nodes.iter().enumerate() {
                if deps[k] {
                    all += tn.cost;
                    if i == 0 || !main[k] {
                        own += tn.cost.params;
                    }
                }
            }
            OutputReport {
                name: o.name.clone(),
                output: t.typed(o.node).output.dims(),
                weight: o.weight,
                macs: all.macs,
                flops: all.flops,
                params: own,
            }
        })
        .collect()
}

/// `3x224x224` from a dims list.
pub fn dims_text(d: &[u64]) -> String {
    d.iter().map(u64::to_string).collect::<Vec<_>>().join("x")
}

/// Output size as Table 1 writes it: `112×112` for a map, `1×1` after global pooling.
pub fn spatial_text(s: &Shape) -> String {
    match s {
        Shape::Map { h, w, .. } => format!("{h}×{w}"),
        Shape::Flat { n } => format!("{n}"),
    }
}
