//! `channel_shuffle G` (ShuffleNet, Zhang et al. 2018): the channels, seen as G groups of C/G,
//! are transposed to C/G groups of G, so that the next grouped convolution mixes the groups.
//! Output channel `i·G + g` is input channel `g·(C/G) + i`, as torch's
//! `x.view(N, G, C/G, H, W).transpose(1, 2).reshape(N, C, H, W)` (torchvision's
//! `channel_shuffle`). A permutation: no parameters, no FLOPs.

use linkme::distributed_slice;

use super::args::{Args, MAX_CHANNELS};
use super::{attr, need_map, Cost, ShapeCtx, Signature, TrainCost, Unit, UnitRules, LAYER_UNITS};
use crate::diag::{at, CompileError};
use crate::graph::{Attr, Op, Shape, UnitOp};

pub static SIGNATURE: Signature = Signature {
    positional: &["groups"],
    required: 1,
    named: &[],
    example: "channel_shuffle 2",
};

#[distributed_slice(LAYER_UNITS)]
pub static UNIT: Unit = Unit {
    name: "channel_shuffle",
    signature: &SIGNATURE,
    defaults: &[],
    summary: "transposes G groups of C/G channels to C/G groups of G (ShuffleNet; torchvision's channel_shuffle)",
    shape_rule: "C×H×W → C×H×W; G divides C",
    cost_rule: "nothing (a permutation of channels)",
    training_rule: "keeps nothing; its output is a new tensor (the transpose made contiguous); backward: the inverse permutation, no FLOPs",
    build: |_, a, _| build(a),
    rules: Some(&RULES),
};

static RULES: UnitRules = UnitRules {
    lowered: "ChannelShuffle",
    infer,
    lower: |u, _| vec![("groups", u.args[0])],
    params: |_| Vec::new(),
    describe: |u| format!("channel shuffle, {} groups", u.args[0]),
    training: |_, _, _| TrainCost::default(),
};

/// The groups of a lowered channel shuffle.
pub fn groups(attrs: &[(String, Attr)]) -> u64 {
    attr(attrs, "groups").int()
}

fn build(a: &mut Args) -> Option<Vec<Op>> {
    let groups = a.int(0, "", "groups", MAX_CHANNELS)?;
    Some(vec![Op::Unit(UnitOp {
        kind: "channel_shuffle",
        args: [Attr::Int(groups), Attr::Int(0)],
    })])
}

fn infer(ctx: &ShapeCtx, u: &UnitOp, inputs: &[Shape]) -> Result<(Shape, Cost), CompileError> {
    let groups = u.args[0].int();
    let (c, _, _) = need_map(ctx, "channel_shuffle", inputs[0])?;
    if !c.is_multiple_of(groups) {
        return Err(CompileError::Groups {
            groups,
            cin: c,
            cout: c,
            at: at(ctx.span),
            help: format!("shuffle in a number of groups that divides the {c} channels"),
        });
    }
    Ok((inputs[0], Cost::default()))
}
