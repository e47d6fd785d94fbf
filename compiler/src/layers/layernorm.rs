//! `layernorm [eps: E]`: layer normalisation over the channels at each position of a map (as
//! ConvNeXt's LayerNorm2d, PyTorch's `F.layer_norm` over the channel dimension of an NHWC
//! permutation), or over the features of a vector (`nn.LayerNorm(N)`); a learned scale and
//! shift per channel (`weight`, `bias`, initialised to 1 and 0).
//!
//! `groupnorm G [eps: E]` lives in `groupnorm.rs`; the two share [`NORM_FLOPS`], [`epsilon`]
//! and [`params`].

use linkme::distributed_slice;

use super::args::{ArgVal, Args};
use super::{
    attr, Cost, Dtype, Extra, Keep, Signature, TrainCost, Unit, UnitRules, Work, LAYER_UNITS,
};
use crate::diag::{at, CompileError};
use crate::graph::{Attr, Op, Shape, UnitOp};

/// PyTorch's default epsilon of `nn.LayerNorm` and `nn.GroupNorm`.
pub const EPSILON: f64 = 1e-5;

/// FLOPs per element of a normalisation computed from the batch: the mean (an add), the
/// variance (subtract, square, add), normalising (subtract, divide) and the affine (multiply,
/// add): 8. The square roots, one per normalised group, are not counted.
pub const NORM_FLOPS: u128 = 8;

pub static SIGNATURE: Signature = Signature {
    positional: &[],
    required: 0,
    named: &["eps"],
    example: "layernorm eps: 0.000001",
};

#[distributed_slice(LAYER_UNITS)]
pub static UNIT: Unit = Unit {
    name: "layernorm",
    signature: &SIGNATURE,
    defaults: &[("eps", "0.00001")],
    summary: "layer normalisation over the channels at each position (ConvNeXt's LayerNorm2d) or over a vector's features; scale and shift per channel",
    shape_rule: "the input's shape",
    cost_rule: "params 2·C (weight, bias); FLOPs 8 per element (mean, variance, normalise, affine)",
    training_rule: "keeps its input and each position's mean and inverse standard deviation (2 per position, f32); backward: weight gradient 5 per element, input gradient 8 per element (its reductions are per position)",
    build: |_, a, _| {
        let epsilon = epsilon(a)?;
        Some(vec![Op::Unit(UnitOp {
            kind: "layernorm",
            args: [Attr::Float(epsilon), Attr::Int(0)],
        })])
    },
    rules: Some(&RULES),
};

static RULES: UnitRules = UnitRules {
    lowered: "LayerNorm",
    infer: |_, _, inputs| Ok(infer(inputs[0])),
    lower: |u, input| {
        vec![
            ("num_features", Attr::Int(input.channels())),
            ("epsilon", u.args[0]),
        ]
    },
    params: |attrs| params(attr(attrs, "num_features").int()),
    describe: |_| "layer norm".into(),
    training: |_, inputs, _| {
        let positions = match inputs[0] {
            Shape::Map { h, w, .. } => h as u128 * w as u128,
            Shape::Flat { .. } => 1,
        };
        training(inputs[0], positions)
    },
};

/// Training of a normalisation computed per sample (layer norm: per position; group norm: per
/// group): `native_layer_norm` and `native_group_norm` keep their input and the mean and
/// inverse standard deviation of each of `groups` groups per sample (f32). Backward: the
/// weight gradients as batch norm's (5 per element), the input gradient `invstd·(dy·γ −
/// mean(dy·γ) − x̂·mean(dy·γ·x̂))` with its own per-group reductions (8 per element).
pub fn training(input: Shape, groups: u128) -> TrainCost {
    let e = input.numel();
    TrainCost {
        keeps: vec![Keep::Input(0)],
        extras: vec![Extra {
            what: "mean and inverse std per group",
            elements: 2 * groups,
            per_sample: true,
            dtype: Dtype::F32,
        }],
        input_grad: Work::elementwise(8, e),
        weight_grad: Work::elementwise(5, e),
        ..TrainCost::default()
    }
}

/// The `eps:` argument of a normalisation (positive), or PyTorch's default.
pub fn epsilon(a: &mut Args) -> Option<f64> {
    let Some((v, span)) = a.named("eps") else {
        return Some(EPSILON);
    };
    match v {
        ArgVal::Float(f) if f > 0.0 && f.is_finite() => Some(f),
        other => {
            a.errors.push(CompileError::BadValue {
                what: format!("{} eps", a.layer),
                found: other.describe(),
                at: at(span),
                expected: "a positive decimal".into(),
                help: "write a small positive decimal such as `eps: 0.000001`".into(),
            });
            None
        }
    }
}

/// The learned scale and shift over `c` channels.
pub fn params(c: u64) -> Vec<(&'static str, Vec<u64>)> {
    vec![("weight", vec![c]), ("bias", vec![c])]
}

/// Shape and cost of a normalisation over channels.
pub fn infer(input: Shape) -> (Shape, Cost) {
    (
        input,
        Cost {
            params: super::count(&params(input.channels())),
            flops: NORM_FLOPS * input.numel(),
            ..Cost::default()
        },
    )
}
