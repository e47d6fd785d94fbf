//! `bn`: batch normalisation over channels. Two trainable vectors (scale, shift) and two
//! buffers (running mean and variance). Applied after a conv by default.

use linkme::distributed_slice;

use super::args::{ArgVal, Args};
use super::{
    Cost, Dtype, Extra, Keep, LayerDefaults, Signature, TrainCost, Unit, Work, LAYER_UNITS,
};
use crate::diag::{at, CompileError};
use crate::graph::{Op, Shape};

/// PyTorch's defaults (`nn.BatchNorm2d`): the one place they are written.
pub const EPSILON: f64 = 1e-5;
/// The weight of a new batch statistic in the running statistics, as PyTorch means it.
pub const MOMENTUM: f64 = 0.1;

pub static SIGNATURE: Signature = Signature {
    positional: &[],
    required: 0,
    named: &["eps", "momentum"],
    example: "bn eps: 0.001, momentum: 0.01",
};

#[distributed_slice(LAYER_UNITS)]
pub static UNIT: Unit = Unit {
    name: "bn",
    signature: &SIGNATURE,
    defaults: &[("eps", "0.00001"), ("momentum", "0.1")],
    summary: "batch normalisation over channels (features of a vector); running statistics updated with momentum as PyTorch does",
    shape_rule: "the input's shape",
    cost_rule: "params 2·C (scale, shift); buffers 2·C (running mean, variance); FLOPs 2 per element (scale and shift folded)",
    training_rule: "forward 8 per element (the batch statistics: mean 1, variance 3, normalise 2, affine 2); keeps its input and the batch mean and inverse standard deviation (2·C, f32); backward: weight gradient 5 per element (x̂ again 2, Σ dy·x̂ 2, Σ dy 1), input gradient 4 per element",
    build: |_, a, d| build(a, d).map(|op| vec![op]),
    rules: None,
};

/// Batch norm with the network's defaults (after a conv).
pub fn default_op(d: &LayerDefaults) -> Op {
    Op::BatchNorm {
        epsilon: d.bn_eps,
        momentum: d.bn_momentum,
    }
}

/// The parameters of batch norm over `c` channels: trainable scale and shift, then the
/// running statistics (buffers).
pub fn params(c: u64) -> Vec<(&'static str, Vec<u64>)> {
    vec![("weight", vec![c]), ("bias", vec![c])]
}

/// The buffers of batch norm over `c` channels.
pub fn buffers(c: u64) -> Vec<(&'static str, Vec<u64>)> {
    vec![("running_mean", vec![c]), ("running_var", vec![c])]
}

/// `bn [eps: E, momentum: M]`.
pub fn build(a: &mut Args, d: &LayerDefaults) -> Option<Op> {
    let value = |a: &mut Args, name: &str, default: f64, open_top: bool| -> Option<f64> {
        let Some((v, span)) = a.named(name) else {
            return Some(default);
        };
        let x = match v {
            ArgVal::Float(f) => Some(f),
            ArgVal::Int(i) => Some(i as f64),
            _ => None,
        };
        match x {
            Some(x) if x > 0.0 && (open_top || x <= 1.0) && x.is_finite() => Some(x),
            _ => {
                a.errors.push(CompileError::BadValue {
                    what: format!("batch norm {name}"),
                    found: v.describe(),
                    at: at(span),
                    expected: if open_top {
                        "a positive decimal".into()
                    } else {
                        "a decimal in (0, 1]".into()
                    },
                    help: "torchvision's EfficientNet and MobileNetV3 use `bn eps: 0.001, momentum: 0.01`".into(),
                });
                None
            }
        }
    };
    let epsilon = value(a, "eps", d.bn_eps, true);
    let momentum = value(a, "momentum", d.bn_momentum, false);
    Some(Op::BatchNorm {
        epsilon: epsilon?,
        momentum: momentum?,
    })
}

/// Inference-time cost: one multiply and one add per element (scale and shift folded).
pub fn infer(input: Shape) -> (Shape, Cost) {
    let c = input.channels() as u128;
    (
        input,
        Cost {
            params: super::count(&params(c as u64)),
            buffers: super::count(&buffers(c as u64)),
            macs: 0,
            flops: 2 * input.numel(),
        },
    )
}

/// FLOPs per element of batch norm in training (its statistics computed from the batch): as
/// `layernorm::NORM_FLOPS`.
pub const TRAIN_FLOPS: u128 = super::layernorm::NORM_FLOPS;

/// Training: PyTorch's `native_batch_norm` keeps its input and the batch's mean and inverse
/// standard deviation (C each, f32 whatever the input's type). Backward: the weight
/// gradients Σ dy·x̂ and Σ dy (x̂ recomputed: 2, then 2 and 1 per element), and the input
/// gradient `γ·invstd·(dy − Σdy/M − x̂·Σ(dy·x̂)/M)` from those sums (4 per element).
pub fn training(input: Shape) -> TrainCost {
    let e = input.numel();
    TrainCost {
        forward_flops: Some(TRAIN_FLOPS * e),
        keeps: vec![Keep::Input(0)],
        extras: vec![Extra {
            what: "batch mean and inverse std",
            elements: 2 * input.channels() as u128,
            per_sample: false,
            dtype: Dtype::F32,
        }],
        input_grad: Work::elementwise(4, e),
        weight_grad: Work::elementwise(5, e),
        ..TrainCost::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_scale_shift_and_running_stats() {
        let (s, c) = infer(Shape::Map { c: 64, h: 2, w: 2 });
        assert_eq!(s, Shape::Map { c: 64, h: 2, w: 2 });
        assert_eq!((c.params, c.buffers, c.flops), (128, 128, 512));
    }
}
