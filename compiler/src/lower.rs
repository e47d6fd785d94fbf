//! Lower: a typed graph becomes a [`LoweredGraph`], archc's own serialisable data naming, for
//! every node, the Burn module config it becomes (with Burn's field names), its inputs, its
//! output shape and its weight name. The runtime crate turns this into a Burn module; nothing
//! here depends on Burn.
//!
//! Contract: shortcuts are resolved (an identity disappears, option A becomes
//! `ZeroPadSubsample`, a projection becomes `Conv2d` + `BatchNorm` named `...downsample.0/1`,
//! an absent shortcut and its add disappear, a Highway gate becomes a biased 1x1 `Conv2d` (a
//! `Linear` on vectors) named `...gate` feeding a `Highway` node),
//! a `Linear` on a feature map gets an explicit `Flatten`, and the parameter count of the
//! lowered graph equals the compiler's.

use serde::{Deserialize, Serialize};

use crate::graph::{Activation, Attr, MergeKind, Op, Shape};
use crate::infer::TypedGraph;
use crate::layers::shortcut::{ShortcutPlan, GATE_BIAS_INIT};
use crate::layers::{self, conv, linear, norm};
use crate::naming::Namer;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoweredGraph {
    pub network: String,
    /// Input per sample: `[C, H, W]` or `[N]`.
    pub input: Vec<usize>,
    /// The logits' shape per sample.
    pub output: Vec<usize>,
    /// Trainable parameters (must equal the compiler's count).
    pub params: u64,
    pub nodes: Vec<LoweredNode>,
    /// The node whose output is the logits (a trailing softmax is applied by `predict` only).
    pub logits: usize,
    /// Whether the network ends in a softmax after the logits.
    pub softmax: bool,
    /// A network with several outputs (`outputs`): each one's logits node and loss weight,
    /// the main one first (its node is `logits`). Empty for a network with one output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<LoweredOutput>,
}

/// One of several outputs: its name (the stage's), the node giving it (before a trailing
/// softmax) and its weight in the training loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoweredOutput {
    pub name: String,
    pub node: usize,
    pub weight: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoweredNode {
    pub id: usize,
    /// The weight name: parameters are `{name}.weight`, `{name}.bias`, `{name}.running_mean`...
    pub name: String,
    pub op: LoweredOp,
    pub inputs: Vec<usize>,
    /// Output shape per sample.
    pub output: Vec<usize>,
}

/// One node's Burn module config, with Burn 0.22's field names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum LoweredOp {
    Input,
    /// `Conv2dConfig`: `channels` is `[in, out]`; `padding` is symmetric `[h, w]`.
    Conv2d {
        channels: [usize; 2],
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        groups: usize,
        bias: bool,
    },
    /// `BatchNormConfig`. Momentum as PyTorch means it (weight of the new batch statistic).
    BatchNorm {
        num_features: usize,
        epsilon: f64,
        momentum: f64,
    },
    /// An elementwise activation without parameters (`Relu`, `Relu6`, `Sigmoid`, `Silu`, …;
    /// see `layers::activation`).
    Act {
        act: Activation,
    },
    /// PyTorch's `nn.PReLU(num_parameters)`: one learned slope per channel.
    PRelu {
        num_parameters: usize,
    },
    /// A kind served wholly by its op unit (`layers::UnitRules`; its runtime half is in
    /// `runtime/src/ops/`): the unit's word and its attributes, named as Burn's and PyTorch's
    /// fields (`num_features`, `epsilon`).
    Unit {
        unit: String,
        attrs: Vec<(String, Attr)>,
    },
    /// `MaxPool2dConfig`.
    MaxPool2d {
        kernel_size: [usize; 2],
        strides: [usize; 2],
        padding: [usize; 2],
        /// PyTorch's `ceil_mode` (absent from JSON and text when false).
        #[serde(default, skip_serializing_if = "is_false")]
        ceil_mode: bool,
    },
    /// `AvgPool2dConfig` (padding counted in the average, as PyTorch's default).
    AvgPool2d {
        kernel_size: [usize; 2],
        strides: [usize; 2],
        padding: [usize; 2],
        count_include_pad: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        ceil_mode: bool,
    },
    /// `AdaptiveAvgPool2dConfig`.
    AdaptiveAvgPool2d {
        output_size: [usize; 2],
    },
    /// `LinearConfig`.
    Linear {
        d_input: usize,
        d_output: usize,
        bias: bool,
    },
    /// `DropoutConfig`.
    Dropout {
        prob: f64,
    },
    /// Flatten every dimension after the batch.
    Flatten,
    Softmax,
    /// Elementwise sum of the inputs (two for a residual add; any number for a merge).
    Add,
    /// Concatenation of the inputs along the channels (or features).
    Concat,
    /// Elementwise product of the inputs; a `[C, 1, 1]` or `[C]` input broadcasts over a
    /// `[C, H, W]` one (a squeeze-and-excitation gate).
    Mul,
    /// Elementwise maximum of the inputs.
    Max,
    /// Part `index` of `parts` equal parts of the input's channels.
    Split {
        parts: usize,
        index: usize,
    },
    /// Option A's shortcut: `x[:, :, ::stride, ::stride]`, then zero channels before and after.
    ZeroPadSubsample {
        stride: usize,
        pad_before: usize,
        pad_after: usize,
    },
    /// A Highway block's output from its three inputs `[F(x), x, g]` (one shape):
    /// `F(x)·sigmoid(g) + x·(1 − sigmoid(g))`. `g` is the output of the block's gate, a biased
    /// `Conv2d` 1x1 (or `Linear`) node named `...gate`, whose bias is initialised to
    /// `gate_bias` (negative, so that a fresh block mostly carries `x`); no parameters here.
    Highway {
        gate_bias: f64,
    },
}

impl LoweredOp {
    pub fn kind(&self) -> &'static str {
        match self {
            LoweredOp::Input => "Input",
            LoweredOp::Conv2d { .. } => "Conv2d",
            LoweredOp::BatchNorm { .. } => "BatchNorm",
            LoweredOp::Act { act } => act.lowered_name(),
            LoweredOp::PRelu { .. } => "PRelu",
            LoweredOp::Unit { unit, .. } => layers::rules(unit).map_or("Unit", |r| r.lowered),
            LoweredOp::MaxPool2d { .. } => "MaxPool2d",
            LoweredOp::AvgPool2d { .. } => "AvgPool2d",
            LoweredOp::AdaptiveAvgPool2d { .. } => "AdaptiveAvgPool2d",
            LoweredOp::Linear { .. } => "Linear",
            LoweredOp::Dropout { .. } => "Dropout",
            LoweredOp::Flatten => "Flatten",
            LoweredOp::Softmax => "Softmax",
            LoweredOp::Add => "Add",
            LoweredOp::Concat => "Concat",
            LoweredOp::Mul => "Mul",
            LoweredOp::Max => "Max",
            LoweredOp::Split { .. } => "Split",
            LoweredOp::ZeroPadSubsample { .. } => "ZeroPadSubsample",
            LoweredOp::Highway { .. } => "Highway",
        }
    }

    /// The trainable parameters of this node by PyTorch name and PyTorch shape (`weight`
    /// `[out, in/groups, kh, kw]`, a linear `weight` `[out, in]`, …), from the op units' one
    /// rule. Counts, initialisation and weight loading all read these.
    pub fn param_shapes(&self) -> Vec<(&'static str, Vec<usize>)> {
        let p = match *self {
            LoweredOp::Conv2d {
                channels,
                kernel_size,
                groups,
                bias,
                ..
            } => conv::params(
                channels[0] as u64,
                channels[1] as u64,
                groups as u64,
                kernel_size.map(|k| k as u64),
                bias,
            ),
            LoweredOp::BatchNorm { num_features, .. } => norm::params(num_features as u64),
            LoweredOp::Linear {
                d_input,
                d_output,
                bias,
            } => linear::params(d_input as u64, d_output as u64, bias),
            LoweredOp::PRelu { num_parameters } => {
                Activation::PRelu.param_shapes(num_parameters as u64)
            }
            LoweredOp::Unit {
                ref unit,
                ref attrs,
            } => layers::rules(unit).map_or_else(Vec::new, |r| (r.params)(attrs)),
            _ => Vec::new(),
        };
        p.into_iter()
            .map(|(n, d)| (n, d.into_iter().map(|x| x as usize).collect()))
            .collect()
    }

    /// The buffers (state that is not trained) of this node: batch norm's running statistics.
    pub fn buffer_shapes(&self) -> Vec<(&'static str, Vec<usize>)> {
        match *self {
            LoweredOp::BatchNorm { num_features, .. } => norm::buffers(num_features as u64)
                .into_iter()
                .map(|(n, d)| (n, d.into_iter().map(|x| x as usize).collect()))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Trainable parameters of this node, as Burn counts them without BN running statistics.
    pub fn params(&self) -> u64 {
        self.param_shapes()
            .iter()
            .map(|(_, d)| d.iter().product::<usize>() as u64)
            .sum()
    }

    /// Whether the node holds weights (and so needs a stable name).
    pub fn has_weights(&self) -> bool {
        !self.param_shapes().is_empty()
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn u(x: u64) -> usize {
    x as usize
}

fn dims(s: Shape) -> Vec<usize> {
    s.dims().into_iter().map(u).collect()
}

pub fn lower(t: &TypedGraph) -> LoweredGraph {
    lower_traced(t).0
}

/// [`lower`], with the typed graph's node each lowered node comes from (a projection's conv
/// and batch norm, and a linear's flatten, come from one node): exporters read its stage.
pub fn lower_traced(t: &TypedGraph) -> (LoweredGraph, Vec<usize>) {
    let g = &t.graph;
    let mut origin: Vec<usize> = Vec::with_capacity(g.nodes.len());
    let mut current = 0;
    let mut namer = Namer::new(t);
    let mut out: Vec<LoweredNode> = Vec::with_capacity(g.nodes.len());
    // graph node id → lowered node id of its output
    let mut map: Vec<usize> = Vec::with_capacity(g.nodes.len());
    let push = |out: &mut Vec<LoweredNode>,
                name: String,
                op: LoweredOp,
                inputs: Vec<usize>,
                shape: Shape| {
        let id = out.len();
        out.push(LoweredNode {
            id,
            name,
            op,
            inputs,
            output: dims(shape),
        });
        id
    };
    for (node, tn) in g.nodes.iter().zip(&t.nodes) {
        // The nodes pushed in the last iteration came from the last node.
        origin.resize(out.len(), current);
        current = node.id.0;
        let inputs: Vec<usize> = node.inputs.iter().map(|i| map[i.0]).collect();
        let cin = u(tn.input.channels());
        let lowered = match &node.op {
            Op::Input => Some(LoweredOp::Input),
            Op::Conv2d(c) => Some(LoweredOp::Conv2d {
                channels: [cin, u(c.out_channels)],
                kernel_size: c.kernel.map(u),
                stride: c.stride.map(u),
                padding: c.padding.map(u),
                dilation: c.dilation.map(u),
                groups: u(c.groups),
                bias: c.bias,
            }),
            Op::BatchNorm { epsilon, momentum } => Some(LoweredOp::BatchNorm {
                num_features: cin,
                epsilon: *epsilon,
                momentum: *momentum,
            }),
            Op::Act(Activation::PRelu) => Some(LoweredOp::PRelu {
                num_parameters: cin,
            }),
            Op::Act(act) => Some(LoweredOp::Act { act: *act }),
            Op::Unit(op) => Some(LoweredOp::Unit {
                unit: op.kind.to_string(),
                attrs: layers::rules(op.kind)
                    .map(|r| (r.lower)(op, tn.input))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            }),
            Op::MaxPool2d(p) => Some(LoweredOp::MaxPool2d {
                kernel_size: p.kernel.map(u),
                strides: p.stride.map(u),
                padding: p.padding.map(u),
                ceil_mode: p.ceil_mode,
            }),
            Op::AvgPool2d(p) => Some(LoweredOp::AvgPool2d {
                kernel_size: p.kernel.map(u),
                strides: p.stride.map(u),
                padding: p.padding.map(u),
                count_include_pad: true,
                ceil_mode: p.ceil_mode,
            }),
            Op::AdaptiveAvgPool2d { output } => Some(LoweredOp::AdaptiveAvgPool2d {
                output_size: output.map(u),
            }),
            Op::Linear { out_features, bias } => {
                let mut ins = inputs.clone();
                if let Shape::Map { .. } = tn.input {
                    let flat = Shape::Flat {
                        n: tn.input.numel() as u64,
                    };
                    let name = namer.name(node, &LoweredOp::Flatten, Some("flatten"));
                    let id = push(&mut out, name, LoweredOp::Flatten, inputs.clone(), flat);
                    ins = vec![id];
                }
                let op = LoweredOp::Linear {
                    d_input: tn.input.numel() as usize,
                    d_output: u(*out_features),
                    bias: *bias,
                };
                let name = namer.name(node, &op, None);
                let id = push(&mut out, name, op, ins, tn.output);
                map.push(id);
                continue;
            }
            Op::Dropout { p } => Some(LoweredOp::Dropout { prob: *p }),
            Op::Flatten => Some(LoweredOp::Flatten),
            Op::Softmax => Some(LoweredOp::Softmax),
            Op::Add if tn.plan == Some(ShortcutPlan::Absent) => {
                // No shortcut here: the block's output goes on as it is.
                map.push(inputs[0]);
                continue;
            }
            Op::Add | Op::Merge(MergeKind::Add) => Some(LoweredOp::Add),
            Op::Merge(MergeKind::Concat) => Some(LoweredOp::Concat),
            Op::Merge(MergeKind::Mul) => Some(LoweredOp::Mul),
            Op::Merge(MergeKind::Max) => Some(LoweredOp::Max),
            Op::Split { parts, index } => Some(LoweredOp::Split {
                parts: u(*parts),
                index: u(*index),
            }),
            Op::Highway => Some(LoweredOp::Highway {
                gate_bias: GATE_BIAS_INIT,
            }),
            Op::Shortcut { .. } => match tn.plan.expect("inference plans every shortcut") {
                // An absent shortcut is read only by its add, which lowers to nothing.
                ShortcutPlan::Identity | ShortcutPlan::Absent => {
                    map.push(inputs[0]);
                    continue;
                }
                ShortcutPlan::Gate { channels } => Some(match tn.input {
                    Shape::Map { .. } => LoweredOp::Conv2d {
                        channels: [cin, u(channels)],
                        kernel_size: [1, 1],
                        stride: [1, 1],
                        padding: [0, 0],
                        dilation: [1, 1],
                        groups: 1,
                        bias: true,
                    },
                    Shape::Flat { n } => LoweredOp::Linear {
                        d_input: u(n),
                        d_output: u(channels),
                        bias: true,
                    },
                }),
                ShortcutPlan::PadSubsample {
                    stride,
                    pad_before,
                    pad_after,
                } => Some(LoweredOp::ZeroPadSubsample {
                    stride: u(stride),
                    pad_before: u(pad_before),
                    pad_after: u(pad_after),
                }),
                ShortcutPlan::Projection {
                    out_channels,
                    stride,
                } => {
                    let conv = LoweredOp::Conv2d {
                        channels: [cin, u(out_channels)],
                        kernel_size: [1, 1],
                        stride: [u(stride), u(stride)],
                        padding: [0, 0],
                        dilation: [1, 1],
                        groups: 1,
                        bias: false,
                    };
                    let name = namer.name(node, &conv, Some("downsample.0"));
                    let c = push(&mut out, name, conv, inputs.clone(), tn.output);
                    let bn = LoweredOp::BatchNorm {
                        num_features: u(out_channels),
                        epsilon: norm::EPSILON,
                        momentum: norm::MOMENTUM,
                    };
                    let name = namer.name(node, &bn, Some("downsample.1"));
                    let b = push(&mut out, name, bn, vec![c], tn.output);
                    map.push(b);
                    continue;
                }
            },
        };
        let op = lowered.expect("every op lowers");
        let name = if matches!(op, LoweredOp::Input) {
            "input".to_string()
        } else {
            namer.name(node, &op, None)
        };
        let id = push(&mut out, name, op, inputs, tn.output);
        map.push(id);
    }
    let last = map[g.output.0];
    let softmax = matches!(out[last].op, LoweredOp::Softmax);
    let logits_of = |n: usize| match out[n].op {
        LoweredOp::Softmax => out[n].inputs[0],
        _ => n,
    };
    let logits = logits_of(last);
    let outputs = g
        .outputs
        .iter()
        .map(|o| LoweredOutput {
            name: o.name.clone(),
            node: logits_of(map[o.node.0]),
            weight: o.weight,
        })
        .collect();
    origin.resize(out.len(), current);
    let params = out.iter().map(|n| n.op.params()).sum();
    let lowered = LoweredGraph {
        network: g.network.clone(),
        input: dims(t.input_shape()),
        output: out[logits].output.clone(),
        params,
        nodes: out,
        logits,
        softmax,
        outputs,
    };
    (lowered, origin)
}

fn list(v: &[usize]) -> String {
    format!(
        "[{}]",
        v.iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The text form snapshot tests pin: one line per node, Burn's config fields by name.
pub fn to_text(l: &LoweredGraph) -> String {
    let mut s = format!(
        "{}: input {} → logits {}{}, {} parameters\n",
        l.network,
        list(&l.input),
        list(&l.output),
        if l.softmax { " (then softmax)" } else { "" },
        l.params
    );
    for n in &l.nodes {
        let args = match &n.op {
            LoweredOp::Conv2d {
                channels,
                kernel_size,
                stride,
                padding,
                dilation,
                groups,
                bias,
            } => format!(
                "channels={} kernel_size={} stride={} padding={} dilation={} groups={groups} bias={bias}",
                list(channels),
                list(kernel_size),
                list(stride),
                list(padding),
                list(dilation)
            ),
            LoweredOp::BatchNorm {
                num_features,
                epsilon,
                momentum,
            } => format!("num_features={num_features} epsilon={epsilon:e} momentum={momentum}"),
            LoweredOp::MaxPool2d {
                kernel_size,
                strides,
                padding,
                ceil_mode,
            } => format!(
                "kernel_size={} strides={} padding={}{}",
                list(kernel_size),
                list(strides),
                list(padding),
                if *ceil_mode { " ceil_mode=true" } else { "" }
            ),
            LoweredOp::AvgPool2d {
                kernel_size,
                strides,
                padding,
                count_include_pad,
                ceil_mode,
            } => format!(
                "kernel_size={} strides={} padding={} count_include_pad={count_include_pad}{}",
                list(kernel_size),
                list(strides),
                list(padding),
                if *ceil_mode { " ceil_mode=true" } else { "" }
            ),
            LoweredOp::AdaptiveAvgPool2d { output_size } => {
                format!("output_size={}", list(output_size))
            }
            LoweredOp::Linear {
                d_input,
                d_output,
                bias,
            } => format!("d_input={d_input} d_output={d_output} bias={bias}"),
            LoweredOp::Dropout { prob } => format!("prob={prob}"),
            LoweredOp::Split { parts, index } => format!("parts={parts} index={index}"),
            LoweredOp::ZeroPadSubsample {
                stride,
                pad_before,
                pad_after,
            } => format!("stride={stride} pad_before={pad_before} pad_after={pad_after}"),
            LoweredOp::Highway { gate_bias } => format!("gate_bias={gate_bias}"),
            LoweredOp::Act { act } => act.args_text(),
            LoweredOp::PRelu { num_parameters } => format!("num_parameters={num_parameters}"),
            LoweredOp::Unit { attrs, .. } => attrs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        };
        let ins = n
            .inputs
            .iter()
            .map(|i| format!("%{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut line = format!("%{} {} = {}", n.id, n.name, n.op.kind());
        if !args.is_empty() {
            line += &format!(" {args}");
        }
        if !ins.is_empty() {
            line += &format!(" ({ins})");
        }
        line += &format!(" -> {}\n", list(&n.output));
        s.push_str(&line);
    }
    for o in &l.outputs {
        s.push_str(&format!(
            "output {} = %{} (loss weight {})\n",
            o.name, o.node, o.weight
        ));
    }
    s
}
