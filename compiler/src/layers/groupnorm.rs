//! `groupnorm G [eps: E]` (Wu & He 2018): the channels in G groups, each group normalised over
//! its channels and positions, then a learned scale and shift per channel, as PyTorch's
//! `nn.GroupNorm(G, C)`. Costs and parameters as `layernorm`.

use linkme::distributed_slice;

use super::args::{Args, MAX_CHANNELS};
use super::layernorm;
use super::{attr, Cost, ShapeCtx, Signature, Unit, UnitRules, LAYER_UNITS};
use crate::diag::{at, CompileError};
use crate::graph::{Attr, Op, Shape, UnitOp};

pub static SIGNATURE: Signature = Signature {
    positional: &["groups"],
    required: 1,
    named: &["eps"],
    example: "groupnorm 32",
};

#[distributed_slice(LAYER_UNITS)]
pub static UNIT: Unit = Unit {
    name: "groupnorm",
    signature: &SIGNATURE,
    defaults: &[("eps", "0.00001")],
    summary: "group normalisation: G groups of channels, each normalised over its channels and positions; scale and shift per channel",
    shape_rule: "the input's shape; G divides C",
    cost_rule: "params 2·C (weight, bias); FLOPs 8 per element (mean, variance, normalise, affine)",
    training_rule: "keeps its input and each group's mean and inverse standard deviation (2·G per sample, f32); backward: weight gradient 5 per element, input gradient 8 per element",
    build: |_, a, _| build(a),
    rules: Some(&RULES),
};

static RULES: UnitRules = UnitRules {
    lowered: "GroupNorm",
    infer,
    lower: |u, input| {
        vec![
            ("num_groups", u.args[0]),
            ("num_channels", Attr::Int(input.channels())),
            ("epsilon", u.args[1]),
        ]
    },
    params: |attrs| layernorm::params(attr(attrs, "num_channels").int()),
    describe: |u| format!("group norm, {} groups", u.args[0]),
    training: |u, inputs, _| layernorm::training(inputs[0], u.args[0].int() as u128),
};

fn build(a: &mut Args) -> Option<Vec<Op>> {
    let groups = a.int(0, "", "groups", MAX_CHANNELS);
    let epsilon = layernorm::epsilon(a);
    Some(vec![Op::Unit(UnitOp {
        kind: "groupnorm",
        args: [Attr::Int(groups?), Attr::Float(epsilon?)],
    })])
}

fn infer(ctx: &ShapeCtx, u: &UnitOp, inputs: &[Shape]) -> Result<(Shape, Cost), CompileError> {
    let groups = u.args[0].int();
    let c = inputs[0].channels();
    if !c.is_multiple_of(groups) {
        return Err(CompileError::Groups {
            groups,
            cin: c,
            cout: c,
            at: at(ctx.span),
            help: format!("choose a number of groups that divides the {c} channels"),
        });
    }
    Ok(layernorm::infer(inputs[0]))
}
