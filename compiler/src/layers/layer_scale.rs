//! `layer_scale [INIT]`: a learned scale per channel (ConvNeXt's `layer_scale`, Touvron et al.
//! 2021's LayerScale), multiplying a residual branch before its addition; initialised to INIT
//! (1e-6 by default, as ConvNeXt). Its parameter is PyTorch's `[C, 1, 1]` tensor, named
//! `layer_scale`.

use linkme::distributed_slice;

use super::args::{ArgVal, Args};
use super::{attr, Cost, Keep, Signature, TrainCost, Unit, UnitRules, Work, LAYER_UNITS};
use crate::diag::{at, CompileError};
use crate::graph::{Attr, Op, UnitOp};

/// ConvNeXt's initial scale.
pub const INIT: f64 = 1e-6;

pub static SIGNATURE: Signature = Signature {
    positional: &["init"],
    required: 0,
    named: &[],
    example: "layer_scale 0.000001",
};

#[distributed_slice(LAYER_UNITS)]
pub static UNIT: Unit = Unit {
    name: "layer_scale",
    signature: &SIGNATURE,
    defaults: &[("init", "0.000001")],
    summary: "a learned scale per channel (ConvNeXt's layer scale), initialised to INIT",
    shape_rule: "the input's shape",
    cost_rule: "params C; FLOPs 1 per element (a multiply)",
    training_rule: "keeps its input (for the scale's gradient); backward: input gradient 1 per element, weight gradient 2 per element (a multiply, a sum)",
    build: |_, a, _| build(a),
    rules: Some(&RULES),
};

static RULES: UnitRules = UnitRules {
    lowered: "LayerScale",
    infer: |_, _, inputs| {
        let x = inputs[0];
        Ok((
            x,
            Cost {
                params: x.channels() as u128,
                flops: x.numel(),
                ..Cost::default()
            },
        ))
    },
    lower: |u, input| {
        vec![
            ("num_features", Attr::Int(input.channels())),
            ("init", u.args[0]),
        ]
    },
    params: |attrs| vec![("layer_scale", vec![attr(attrs, "num_features").int(), 1, 1])],
    describe: |_| "layer scale".into(),
    training: |_, inputs, _| {
        let e = inputs[0].numel();
        TrainCost {
            weight_grad: Work::elementwise(2, e),
            ..TrainCost::elementwise(Some(Keep::Input(0)), 1, e)
        }
    },
};

fn build(a: &mut Args) -> Option<Vec<Op>> {
    let init = match a.positional.first().cloned() {
        None => INIT,
        Some((ArgVal::Float(f), _)) if f.is_finite() => f,
        Some((ArgVal::Int(i), _)) => i as f64,
        Some((other, span)) => {
            a.errors.push(CompileError::BadValue {
                what: "layer scale init".into(),
                found: other.describe(),
                at: at(span),
                expected: "a number".into(),
                help: "write the initial scale, such as `layer_scale 0.000001`".into(),
            });
            return None;
        }
    };
    Some(vec![Op::Unit(UnitOp {
        kind: "layer_scale",
        args: [Attr::Float(init), Attr::Int(0)],
    })])
}
