//! `groupnorm G [eps: E]` (Wu & He 2018): the channels in G groups, each group normalised over
//! its channels and positions, then a learned scale and shift per channel, as PyTorch's
//! `nn.GroupNorm(G, C)`. Costs as `layernorm` ([`NORM_FLOPS`]).

use super::args::{Args, MAX_CHANNELS};
use super::layernorm::{self, NORM_FLOPS};
use super::{Cost, ShapeCtx, Signature, Unit};
use crate::diag::{at, CompileError};
use crate::graph::{Op, Shape};

pub static SIGNATURE: Signature = Signature {
    positional: &["groups"],
    required: 1,
    named: &["eps"],
    example: "groupnorm 32",
};

pub static UNIT: Unit = Unit {
    name: "groupnorm",
    signature: &SIGNATURE,
    defaults: &[("eps", "0.00001")],
    summary: "group normalisation: G groups of channels, each normalised over its channels and positions; scale and shift per channel",
    shape_rule: "the input's shape; G divides C",
    cost_rule: "params 2·C (weight, bias); FLOPs 8 per element (mean, variance, normalise, affine)",
    build: |_, a, _| build(a),
};

pub fn build(a: &mut Args) -> Option<Vec<Op>> {
    let groups = a.int(0, "", "groups", MAX_CHANNELS);
    let epsilon = layernorm::epsilon(a);
    Some(vec![Op::GroupNorm {
        groups: groups?,
        epsilon: epsilon?,
    }])
}

pub fn infer(ctx: &ShapeCtx, groups: u64, input: Shape) -> Result<(Shape, Cost), CompileError> {
    let c = input.channels();
    if !c.is_multiple_of(groups) {
        return Err(CompileError::Groups {
            groups,
            cin: c,
            cout: c,
            at: at(ctx.span),
            help: format!("choose a number of groups that divides the {c} channels"),
        });
    }
    Ok((
        input,
        Cost {
            params: super::count(&layernorm::params(c)),
            flops: NORM_FLOPS * input.numel(),
            ..Cost::default()
        },
    ))
}
