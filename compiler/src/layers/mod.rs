//! One file per layer kind: its argument signature, how its arguments become ops, its shape
//! rule and its cost rule, side by side. Every spatial size comes from [`out_size`], so shapes
//! and FLOPs can never disagree.

pub mod activation;
pub mod add;
pub mod args;
pub mod conv;
pub mod drop_path;
pub mod dropout;
pub mod flatten;
pub mod groupnorm;
pub mod highway;
pub mod layer_scale;
pub mod layernorm;
pub mod linear;
pub mod maxout;
pub mod merge;
pub mod norm;
pub mod pool;
pub mod shortcut;
pub mod shuffle;
pub mod softmax;
pub mod spp;

use archc_grammar::ast::{Layer, LayerKind, Span};
use linkme::distributed_slice;
use serde::Serialize;

use crate::diag::{at, CompileError, Diagnostics};
use crate::graph::{Activation, Attr, Op, Shape, UnitOp};
use shortcut::ShortcutPlan;

/// Network-wide defaults a layer falls back on (`norm`, `act`, `bias` settings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerDefaults {
    /// Batch norm after each conv.
    pub norm: bool,
    /// Activation after each conv.
    pub act: Option<Activation>,
    /// Conv bias; `None` means "only where no norm follows".
    pub bias: Option<bool>,
    /// `order pre`: norm and activation before each conv (pre-activation ResNets).
    pub pre: bool,
    /// Batch norm's epsilon and momentum where a layer does not say (`bn_eps`,
    /// `bn_momentum`; PyTorch's 1e-5 and 0.1 by default).
    pub bn_eps: f64,
    pub bn_momentum: f64,
}

impl Default for LayerDefaults {
    fn default() -> Self {
        LayerDefaults {
            norm: true,
            act: Some(Activation::Relu),
            bias: None,
            pre: false,
            bn_eps: norm::EPSILON,
            bn_momentum: norm::MOMENTUM,
        }
    }
}

/// One layer kind of the language, as `archc layers` prints it: its word, its arguments
/// and their defaults, what it computes, its shape rule, its counting rule, and how a layer
/// line becomes ops. The ops' shape, cost, parameters and lowering are functions of the same
/// module (`conv::infer`, `conv::params`, …), so one file holds everything of one kind.
#[derive(Clone, Copy)]
pub struct Unit {
    pub name: &'static str,
    pub signature: &'static Signature,
    /// Named and optional arguments with their defaults, as text.
    pub defaults: &'static [(&'static str, &'static str)],
    pub summary: &'static str,
    pub shape_rule: &'static str,
    pub cost_rule: &'static str,
    /// What a training step adds (docs/language.md, "Training cost"): what the backward keeps
    /// from the forward and what it computes; the rule itself is the unit's `training`.
    pub training_rule: &'static str,
    pub build: fn(&str, &mut args::Args, &LayerDefaults) -> Option<Vec<Op>>,
    /// For a kind served wholly by its unit (its op is `Op::Unit`): everything after `build`.
    pub rules: Option<&'static UnitRules>,
}

/// A shape rule's result: the output shape and the cost, or why the input does not fit.
pub type ShapeAndCost = Result<(Shape, Cost), CompileError>;
/// Parameters by PyTorch name and shape.
pub type ParamShapes = Vec<(&'static str, Vec<u64>)>;

/// The rules of a kind whose op is [`Op::Unit`]: shape and cost, lowering, parameters and
/// report text, so that the kind lives in its unit file (and the runtime's `ops/` file) only.
pub struct UnitRules {
    /// The lowered node's kind, after Burn's and PyTorch's module names (`LayerNorm`).
    pub lowered: &'static str,
    /// Shape and cost from the shapes of the inputs.
    pub infer: fn(&ShapeCtx, &UnitOp, &[Shape]) -> ShapeAndCost,
    /// The lowered node's attributes (Burn's and PyTorch's field names), given the input shape.
    pub lower: fn(&UnitOp, Shape) -> Vec<(&'static str, Attr)>,
    /// The lowered node's parameters by PyTorch name and shape, from its attributes.
    pub params: fn(&[(String, Attr)]) -> ParamShapes,
    /// A short description: the figure's box label and the per-layer report's detail.
    pub describe: fn(&UnitOp) -> String,
    /// The training rule from the shapes of the inputs and the output (see [`TrainCost`]).
    pub training: fn(&UnitOp, &[Shape], Shape) -> TrainCost,
}

/// The rules of a unit op's kind.
pub fn rules(kind: &str) -> Option<&'static UnitRules> {
    unit(kind).and_then(|u| u.rules)
}

/// The value of a lowered unit attribute by name (0 if absent: validation reports it).
pub fn attr(attrs: &[(String, Attr)], name: &str) -> Attr {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map_or(Attr::Int(0), |(_, v)| *v)
}

/// Every unit but the activations' (those are one family: `activation::unit`), each registered
/// in its own file: `#[distributed_slice(LAYER_UNITS)] pub static UNIT: Unit = …`. (The name is
/// the link section's, shared by the whole binary: the runtime's slice is `RUNTIME_UNITS`.)
#[distributed_slice]
pub static LAYER_UNITS: [Unit];

/// The unit of the layer kind `name` (every word of the grammar's `layer_kind` has one: a test
/// holds the two lists together).
pub fn unit(name: &str) -> Option<Unit> {
    match LAYER_UNITS.iter().find(|u| u.name == name) {
        Some(u) => Some(*u),
        None => activation::unit(name),
    }
}

/// Every unit, in the grammar's order of layer kinds.
pub fn units() -> Vec<Unit> {
    archc_grammar::keywords::LAYER_KINDS
        .iter()
        .filter_map(|k| unit(k))
        .collect()
}

/// The ops one layer line becomes (a conv brings its norm and activation along).
pub fn build(kind: LayerKind, a: &mut args::Args, d: &LayerDefaults) -> Option<Vec<Op>> {
    let u = unit(kind.keyword())?;
    (u.build)(kind.keyword(), a, d)
}

/// Named arguments whose values are words (`act: silu`, `norm: none`): a wrong word is the
/// argument's bad value, said by the unit with the words it takes, not an unknown name.
pub const WORD_ARGUMENTS: &[&str] = &["act", "norm", "order", "bias", "approximate"];

/// What a layer accepts: positional arguments by name (the first `required` must be given),
/// and named arguments.
pub struct Signature {
    pub positional: &'static [&'static str],
    pub required: usize,
    pub named: &'static [&'static str],
    pub example: &'static str,
}

pub fn signature(kind: LayerKind) -> &'static Signature {
    unit(kind.keyword())
        .map(|u| u.signature)
        .unwrap_or(&activation::SIGNATURE)
}

/// Check argument counts and names of one layer (values are checked at expansion).
pub fn check_signature(l: &Layer, diags: &mut Diagnostics) {
    let sig = signature(l.kind);
    let kw = l.kind.keyword();
    let n = l.positional.len();
    if n < sig.required || n > sig.positional.len() {
        let problem = if n < sig.required {
            format!(
                "needs {} (missing {})",
                sig.positional[..sig.required].join(" and "),
                sig.positional[n..sig.required].join(" and ")
            )
        } else if sig.positional.is_empty() {
            "takes no positional arguments".to_string()
        } else {
            format!(
                "takes at most {} positional argument{} ({})",
                sig.positional.len(),
                if sig.positional.len() == 1 { "" } else { "s" },
                sig.positional.join(", ")
            )
        };
        let span = if n > sig.positional.len() {
            l.positional[sig.positional.len()].span()
        } else {
            l.span
        };
        diags.push(
            l.span.file,
            CompileError::LayerArguments {
                layer: kw.to_string(),
                problem,
                at: at(span),
                label: if n < sig.required {
                    "incomplete".into()
                } else {
                    "extra argument".into()
                },
                help: format!("write it as `{}`", sig.example),
            },
        );
    }
    for a in &l.named {
        if !sig.named.contains(&a.name.name.as_str()) {
            let help = if sig.named.is_empty() {
                format!("`{kw}` takes no named arguments")
            } else {
                let known: Vec<String> = sig.named.iter().map(|s| s.to_string()).collect();
                let s = crate::resolve::suggest(
                    &a.name.name,
                    known.iter(),
                    &format!("`{kw}` takes {}", sig.named.join(", ")),
                );
                if s.starts_with("did") {
                    s
                } else {
                    format!("`{kw}` takes {}", sig.named.join(", "))
                }
            };
            diags.push(
                l.span.file,
                CompileError::UnknownArgument {
                    layer: kw.to_string(),
                    arg: a.name.name.clone(),
                    at: at(a.name.span),
                    help,
                },
            );
        }
    }
}

/// What one node costs. Wide integers: no network can overflow them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Cost {
    /// Trainable parameters (weights, biases, BN scale and shift).
    pub params: u128,
    /// Non-trainable state (BN running mean and variance).
    pub buffers: u128,
    /// Multiply-adds of convolutions and fully connected layers (the paper's "FLOPs").
    pub macs: u128,
    /// Every arithmetic operation, multiply and add counted apart (docs/language.md).
    pub flops: u128,
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, o: Cost) -> Cost {
        Cost {
            params: self.params + o.params,
            buffers: self.buffers + o.buffers,
            macs: self.macs + o.macs,
            flops: self.flops + o.flops,
        }
    }
}

impl std::ops::AddAssign for Cost {
    fn add_assign(&mut self, o: Cost) {
        *self = *self + o;
    }
}

/// The element count of a list of parameter shapes (counts derive from the shapes).
pub fn count(shapes: &[(&'static str, Vec<u64>)]) -> u128 {
    shapes
        .iter()
        .map(|(_, d)| d.iter().map(|&x| x as u128).product::<u128>())
        .sum()
}

/// What a shape rule knows besides its input.
pub struct ShapeCtx<'a> {
    pub name: &'a str,
    pub span: Span,
    /// The network's input map size, to tell "the map shrank away" from "the kernel is too big".
    pub network_hw: Option<(u64, u64)>,
}

/// The output length of a sliding window: floor((n + 2p - d(k-1) - 1) / s) + 1, or `None`
/// when the (dilated) kernel does not fit in the padded input.
pub fn out_size(n: u64, kernel: u64, stride: u64, padding: u64, dilation: u64) -> Option<u64> {
    if kernel == 0 {
        return None;
    }
    let padded = n as u128 + 2 * padding as u128;
    let eff = dilation as u128 * (kernel as u128 - 1) + 1;
    if padded < eff || stride == 0 {
        return None;
    }
    Some(((padded - eff) / stride as u128 + 1) as u64)
}

/// The output length of a pooling window in PyTorch's `ceil_mode`: the division rounds up,
/// but the last window must start inside the input or its left padding.
pub fn out_size_ceil(n: u64, kernel: u64, stride: u64, padding: u64, dilation: u64) -> Option<u64> {
    let floor = out_size(n, kernel, stride, padding, dilation)?;
    let padded = n as u128 + 2 * padding as u128;
    let eff = dilation as u128 * (kernel as u128 - 1) + 1;
    let mut out = (padded - eff).div_ceil(stride as u128) + 1;
    if (out - 1) * stride as u128 >= n as u128 + padding as u128 {
        out -= 1;
    }
    Some((out as u64).max(floor))
}

/// Apply a window to both spatial dimensions, or explain why it cannot be. `ceil` rounds the
/// output up as PyTorch's pools do with `ceil_mode=True`.
#[allow(clippy::too_many_arguments)]
pub fn window(
    ctx: &ShapeCtx,
    (h, w): (u64, u64),
    kernel: [u64; 2],
    stride: [u64; 2],
    padding: [u64; 2],
    dilation: [u64; 2],
    ceil: bool,
) -> Result<(u64, u64), CompileError> {
    let size = if ceil { out_size_ceil } else { out_size };
    let oh = size(h, kernel[0], stride[0], padding[0], dilation[0]);
    let ow = size(w, kernel[1], stride[1], padding[1], dilation[1]);
    match (oh, ow) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => {
            let eff = |i: usize| dilation[i] * (kernel[i] - 1) + 1;
            let padded = format!("{}x{}", h + 2 * padding[0], w + 2 * padding[1]);
            let kernel_s = if dilation == [1, 1] {
                format!("{}x{}", kernel[0], kernel[1])
            } else {
                format!(
                    "{}x{} (dilated to {}x{})",
                    kernel[0],
                    kernel[1],
                    eff(0),
                    eff(1)
                )
            };
            let shrunk = ctx.network_hw.is_some_and(|(nh, nw)| {
                (nh > h || nw > w) && nh + 2 * padding[0] >= eff(0) && nw + 2 * padding[1] >= eff(1)
            });
            if shrunk {
                Err(CompileError::EmptyMap {
                    layer: ctx.name.to_string(),
                    input: format!("{h}x{w}"),
                    at: at(ctx.span),
                    output: "empty".into(),
                    help: "earlier layers have downsampled the input too far for this layer: use a larger --input or fewer strided layers".into(),
                })
            } else {
                Err(CompileError::KernelTooLarge {
                    layer: ctx.name.to_string(),
                    kernel: kernel_s,
                    padded,
                    at: at(ctx.span),
                    help: "use a smaller kernel, more padding, or a larger input".into(),
                })
            }
        }
    }
}

/// The map dimensions of an input, or the error a layer that needs a map gives.
pub fn need_map(
    ctx: &ShapeCtx,
    layer: &str,
    input: Shape,
) -> Result<(u64, u64, u64), CompileError> {
    match input {
        Shape::Map { c, h, w } => Ok((c, h, w)),
        Shape::Flat { n } => Err(CompileError::NeedsMap {
            layer: layer.to_string(),
            input: n.to_string(),
            at: at(ctx.span),
        }),
    }
}

/// Shape and cost of one op, given the shapes of all its inputs, in order (the n-ary shape
/// rule; an op of one input reads `inputs[0]`). `Shortcut` needs the target's shape too and
/// is handled by `shortcut::infer`.
pub fn infer(ctx: &ShapeCtx, op: &Op, inputs: &[Shape]) -> Result<(Shape, Cost), CompileError> {
    let input = inputs[0];
    match op {
        Op::Input => Ok((input, Cost::default())),
        Op::Conv2d(c) => conv::infer(ctx, c, input),
        Op::BatchNorm { .. } => Ok(norm::infer(input)),
        Op::Act(a) => Ok(activation::infer(*a, input)),
        Op::MaxPool2d(p) => pool::infer_max(ctx, p, input),
        Op::AvgPool2d(p) => pool::infer_avg(ctx, p, input),
        Op::AdaptiveAvgPool2d { output } => pool::infer_adaptive(ctx, *output, input),
        Op::Linear { out_features, bias } => Ok(linear::infer(*out_features, *bias, input)),
        Op::Dropout { .. } => Ok((input, Cost::default())),
        Op::Flatten => Ok(flatten::infer(input)),
        Op::Softmax => Ok(softmax::infer(input)),
        Op::Add => Ok(add::infer(input)),
        Op::Highway => Ok(highway::infer(input)),
        Op::Unit(u) => match rules(u.kind) {
            Some(r) => (r.infer)(ctx, u, inputs),
            None => unreachable!("`{}` builds a unit op but has no rules", u.kind),
        },
        Op::Shortcut { .. } => unreachable!("shortcuts are inferred by shortcut::infer"),
        // (`infer::infer_node` passes the branches' names and spans for the diagnostics.)
        Op::Merge(kind) => merge::infer(*kind, inputs, ctx.span, &[]),
        Op::Split { parts, .. } => merge::infer_split(*parts, input, ctx.span),
    }
}

/// What one node adds in a training step, per sample as [`Cost`] is: what its backward keeps
/// from the forward (as PyTorch eager's autograd saves it) and what its backward computes.
/// Each unit gives its own (`<kind>::training`, or [`UnitRules::training`]); the report
/// (`crate::training`) deduplicates what several nodes keep, sums, and finds the peak.
/// Conventions and formulas: docs/language.md, "Training cost".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TrainCost {
    /// Forward FLOPs in training mode where they differ from [`Cost::flops`] (batch norm
    /// computes its statistics, dropout applies its mask).
    pub forward_flops: Option<u128>,
    /// The values its backward reads, kept from the forward.
    pub keeps: Vec<Keep>,
    /// Tensors of its own that its backward reads (max-pool indices, BN statistics, masks).
    pub extras: Vec<Extra>,
    /// Its output is its first input itself or a view of it (no new tensor: flatten, split,
    /// identity shortcuts).
    pub view: bool,
    /// Backward work for its inputs' gradients (counted where an input needs one).
    pub input_grad: Work,
    /// Backward work for its parameters' gradients.
    pub weight_grad: Work,
}

/// A value a backward reads: an input (by position), every input, or the node's output.
/// Keeping a view keeps the whole tensor it views (PyTorch holds the storage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    Input(usize),
    Inputs,
    Output,
}

/// A tensor a node keeps of its own: `elements` per sample, or once per batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Extra {
    pub what: &'static str,
    pub elements: u128,
    pub per_sample: bool,
    pub dtype: Dtype,
}

/// The element type of a kept tensor: the activations' (f32, or 2 bytes under bf16 and f16
/// mixed precision), or one that stays whatever the precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dtype {
    Activation,
    /// Batch statistics (cuDNN and PyTorch keep them in f32).
    F32,
    /// Max-pool indices (int64).
    I64,
    /// Dropout masks (one byte per element: CUDA's bool mask).
    Mask,
}

/// Backward work: multiply-adds of convolutions and matrix products (the part PyTorch's
/// `FlopCounterMode` counts, as 2 FLOPs each), and every operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Work {
    pub macs: u128,
    pub flops: u128,
}

impl Work {
    /// `per_element` operations on each of `elements`, no multiply-adds.
    pub fn elementwise(per_element: u128, elements: u128) -> Work {
        Work {
            macs: 0,
            flops: per_element * elements,
        }
    }

    /// A convolution's or matrix product's `macs`, 2 FLOPs each, and `extra` FLOPs.
    pub fn products(macs: u128, extra: u128) -> Work {
        Work {
            macs,
            flops: 2 * macs + extra,
        }
    }
}

impl TrainCost {
    /// An op whose output is its input or a view of it: it keeps nothing, computes nothing.
    pub fn view() -> TrainCost {
        TrainCost {
            view: true,
            ..TrainCost::default()
        }
    }

    /// An elementwise op on `elements` that keeps `keep` and whose input gradient takes
    /// `per_element` operations per element.
    pub fn elementwise(keep: Option<Keep>, per_element: u128, elements: u128) -> TrainCost {
        TrainCost {
            keeps: keep.into_iter().collect(),
            input_grad: Work::elementwise(per_element, elements),
            ..TrainCost::default()
        }
    }

    /// A convolution or matrix product of `macs` multiply-adds (its input kept for the weight
    /// gradient), `bias_elements` output elements with a bias (0 without).
    pub fn products(macs: u128, bias_elements: u128) -> TrainCost {
        TrainCost {
            keeps: vec![Keep::Input(0)],
            input_grad: Work::products(macs, 0),
            weight_grad: Work::products(macs, bias_elements),
            ..TrainCost::default()
        }
    }
}

/// The training rule of one op, given the shapes of its inputs and its output and its
/// inference cost: each kind's own rule (`conv::training`, `norm::training`, …).
pub fn training(
    op: &Op,
    plan: Option<ShortcutPlan>,
    inputs: &[Shape],
    output: Shape,
    cost: &Cost,
) -> TrainCost {
    let input = inputs[0];
    match op {
        Op::Input => TrainCost::default(),
        Op::Conv2d(c) => conv::training(c, output, cost),
        Op::BatchNorm { .. } => norm::training(input),
        Op::Act(a) => activation::training(*a, input),
        Op::MaxPool2d(_) => pool::training_max(output),
        Op::AvgPool2d(_) => pool::training_avg(cost),
        Op::AdaptiveAvgPool2d { output: size } => pool::training_adaptive(*size, cost),
        Op::Linear { bias, .. } => linear::training(*bias, output, cost),
        Op::Dropout { p } => dropout::training(*p, input),
        Op::Flatten => flatten::training(),
        Op::Softmax => softmax::training(output),
        Op::Add => add::training(plan),
        Op::Highway => highway::training(output),
        Op::Unit(u) => match rules(u.kind) {
            Some(r) => (r.training)(u, inputs, output),
            None => unreachable!("`{}` builds a unit op but has no rules", u.kind),
        },
        Op::Shortcut { .. } => shortcut::training(plan, output, cost),
        Op::Merge(kind) => merge::training(*kind, inputs, output),
        Op::Split { .. } => merge::training_split(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layer_kind_of_the_grammar_has_a_unit_and_back() {
        use archc_grammar::keywords::LAYER_KINDS;
        for k in LAYER_KINDS {
            let u = unit(k).unwrap_or_else(|| panic!("`{k}` has no op unit"));
            assert_eq!(u.name, *k);
        }
        assert_eq!(units().len(), LAYER_KINDS.len());
        assert!(unit("swish").is_none());
        // Each registered unit is one word of the grammar, registered once.
        let mut names: Vec<&str> = LAYER_UNITS.iter().map(|u| u.name).collect();
        assert!(names.iter().all(|n| LAYER_KINDS.contains(n)), "{names:?}");
        names.sort();
        names.dedup();
        assert_eq!(names.len(), LAYER_UNITS.len(), "a unit registered twice");
    }

    #[test]
    fn ceil_mode_matches_pytorch() {
        // torch.nn.MaxPool2d(3, 2, ceil_mode=True) on 112, 56, 28, 14 (GoogLeNet): 56, 28, 14, 7.
        for (n, o) in [(112, 56), (56, 28), (28, 14), (14, 7), (8, 4), (7, 3)] {
            assert_eq!(out_size_ceil(n, 3, 2, 0, 1), Some(o), "{n}");
        }
        assert_eq!(out_size(112, 3, 2, 0, 1), Some(55));
        // The last window may not start in the right padding: 5 with k=2, s=2, p=1 gives 3.
        assert_eq!(out_size_ceil(5, 2, 2, 1, 1), Some(3));
        assert_eq!(out_size_ceil(1, 3, 1, 0, 1), None);
    }

    #[test]
    fn out_size_matches_pytorch_formula() {
        assert_eq!(out_size(224, 7, 2, 3, 1), Some(112));
        assert_eq!(out_size(112, 3, 2, 1, 1), Some(56));
        assert_eq!(out_size(56, 1, 2, 0, 1), Some(28));
        assert_eq!(out_size(7, 7, 1, 0, 1), Some(1));
        assert_eq!(out_size(5, 3, 1, 0, 2), Some(1));
        assert_eq!(out_size(4, 3, 1, 0, 2), None);
        assert_eq!(out_size(1, 2, 2, 0, 1), None);
    }
}
