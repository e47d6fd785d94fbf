//! `drop_path P` (stochastic depth, Huang et al. 2016): while training, each sample's whole
//! tensor is zeroed with probability P and the rest scaled by 1/(1 − P), as torchvision's
//! `stochastic_depth(x, p, mode="row")`; the identity in evaluation. Meant for a residual
//! branch before its addition. No parameters; counted as free, as `dropout` is.

use linkme::distributed_slice;

use super::args::Args;
use super::{Cost, Dtype, Extra, Signature, TrainCost, Unit, UnitRules, Work, LAYER_UNITS};
use crate::diag::{at, CompileError};
use crate::graph::{Attr, Op, Shape, UnitOp};

pub static SIGNATURE: Signature = Signature {
    positional: &["probability"],
    required: 1,
    named: &[],
    example: "drop_path 0.2",
};

#[distributed_slice(LAYER_UNITS)]
pub static UNIT: Unit = Unit {
    name: "drop_path",
    signature: &SIGNATURE,
    defaults: &[],
    summary: "stochastic depth: while training, zeroes a whole sample with probability P (the rest scaled by 1/(1−P)); identity in evaluation",
    shape_rule: "the input's shape",
    cost_rule: "nothing (no parameters, no FLOPs counted, as dropout)",
    training_rule: "forward 1 per element (the per-sample factor applied); keeps the per-sample factor (one element per sample); backward 1 per element; P = 0 is the identity",
    build: |_, a, _| build(a),
    rules: Some(&RULES),
};

static RULES: UnitRules = UnitRules {
    lowered: "DropPath",
    infer: |_, _, inputs| Ok((inputs[0], Cost::default())),
    lower: |u, _| vec![("prob", u.args[0])],
    params: |_| Vec::new(),
    describe: |u| format!("drop path {}", u.args[0]),
    training,
};

/// Training, as torchvision's `stochastic_depth`: `input * noise` with `noise` of shape
/// [N, 1, 1, 1] keeps the noise (one element per sample); the gradient is the output's times
/// it. With P = 0 the input passes through.
fn training(u: &UnitOp, inputs: &[Shape], _: Shape) -> TrainCost {
    if u.args[0].float() == 0.0 {
        return TrainCost::view();
    }
    let e = inputs[0].numel();
    TrainCost {
        forward_flops: Some(e),
        extras: vec![Extra {
            what: "stochastic depth factor",
            elements: 1,
            per_sample: true,
            dtype: Dtype::Activation,
        }],
        input_grad: Work::elementwise(1, e),
        ..TrainCost::default()
    }
}

fn build(a: &mut Args) -> Option<Vec<Op>> {
    let (p, span) = a.float(0, "drop path probability")?;
    if !(0.0..1.0).contains(&p) {
        a.errors.push(CompileError::Probability { p, at: at(span) });
        return None;
    }
    Some(vec![Op::Unit(UnitOp {
        kind: "drop_path",
        args: [Attr::Float(p), Attr::Int(0)],
    })])
}
