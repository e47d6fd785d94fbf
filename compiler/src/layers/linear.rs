//! `fc N [, bias: B, act: A]`: a fully connected layer to N features. A feature-map input is
//! flattened first. No activation by default (the classifier's logits); `act: relu` (or
//! `relu6`) adds one.

use linkme::distributed_slice;

use super::args::{Args, MAX_CHANNELS};
use super::{Cost, Signature, TrainCost, Unit, LAYER_UNITS};
use crate::graph::{Op, Shape};

pub static SIGNATURE: Signature = Signature {
    positional: &["features"],
    required: 1,
    named: &["bias", "act"],
    example: "fc 1000",
};

#[distributed_slice(LAYER_UNITS)]
pub static UNIT: Unit = Unit {
    name: "fc",
    signature: &SIGNATURE,
    defaults: &[("bias", "true"), ("act", "none")],
    summary: "fully connected layer (a feature map is flattened first, as torch.flatten(x, 1))",
    shape_rule: "any input of n elements → features",
    cost_rule:
        "params n·features (+ features bias); MACs n·features; FLOPs 2·MACs (+ features with bias)",
    training_rule: "keeps its input (a feature map as it is: the flatten is a view); backward: input gradient 2·MACs (none where the input needs no gradient), weight gradient 2·MACs (+ features for the bias)",
    build: |_, a, _| build(a),
    rules: None,
};

/// The parameters of a fully connected layer, in PyTorch's layout `[out, in]` (Burn stores
/// the transpose).
pub fn params(d_in: u64, d_out: u64, bias: bool) -> Vec<(&'static str, Vec<u64>)> {
    let mut p = vec![("weight", vec![d_out, d_in])];
    if bias {
        p.push(("bias", vec![d_out]));
    }
    p
}

pub fn build(a: &mut Args) -> Option<Vec<Op>> {
    let out = a.int(0, "", "features", MAX_CHANNELS);
    let bias = match a.named("bias") {
        Some(_) => a.boolean("bias", "bias"),
        None => Some(true),
    };
    let act = super::activation::act_argument(a, None);
    let mut ops = vec![Op::Linear {
        out_features: out?,
        bias: bias?,
    }];
    if let Some(act) = act? {
        ops.push(Op::Act(act));
    }
    Some(ops)
}

pub fn infer(out_features: u64, bias: bool, input: Shape) -> (Shape, Cost) {
    let inp = input.numel();
    let out = out_features as u128;
    let macs = inp * out;
    let b = if bias { out } else { 0 };
    (
        Shape::Flat { n: out_features },
        Cost {
            params: super::count(&params(inp as u64, out_features, bias)),
            buffers: 0,
            macs,
            flops: 2 * macs + b,
        },
    )
}

/// Training: as a convolution (`AddmmBackward0` keeps the input; two matrix products of
/// `MACs` each, and the bias gradient's sum).
pub fn training(bias: bool, out: Shape, cost: &Cost) -> TrainCost {
    TrainCost::products(cost.macs, if bias { out.numel() } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet18_classifier() {
        let (s, c) = infer(1000, true, Shape::Map { c: 512, h: 1, w: 1 });
        assert_eq!(s, Shape::Flat { n: 1000 });
        assert_eq!(c.params, 513_000);
        assert_eq!(c.macs, 512_000);
    }
}
