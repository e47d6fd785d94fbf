//! `channel_shuffle G` (ShuffleNet, Zhang et al. 2018): the channels, seen as G groups of C/G,
//! are transposed to C/G groups of G, so that the next grouped convolution mixes the groups.
//! Output channel `i·G + g` is input channel `g·(C/G) + i`, as torch's
//! `x.view(N, G, C/G, H, W).transpose(1, 2).reshape(N, C, H, W)` (torchvision's
//! `channel_shuffle`). A permutation: no parameters, no FLOPs.

use super::args::{Args, MAX_CHANNELS};
use super::{need_map, Cost, ShapeCtx, Signature, Unit};
use crate::diag::{at, CompileError};
use crate::graph::{Op, Shape};

pub static SIGNATURE: Signature = Signature {
    positional: &["groups"],
    required: 1,
    named: &[],
    example: "channel_shuffle 2",
};

pub static UNIT: Unit = Unit {
    name: "channel_shuffle",
    signature: &SIGNATURE,
    defaults: &[],
    summary: "transposes G groups of C/G channels to C/G groups of G (ShuffleNet; torchvision's channel_shuffle)",
    shape_rule: "C×H×W → C×H×W; G divides C",
    cost_rule: "nothing (a permutation of channels)",
    build: |_, a, _| build(a),
};

pub fn build(a: &mut Args) -> Option<Vec<Op>> {
    let groups = a.int(0, "", "groups", MAX_CHANNELS)?;
    Some(vec![Op::ChannelShuffle { groups }])
}

pub fn infer(ctx: &ShapeCtx, groups: u64, input: Shape) -> Result<(Shape, Cost), CompileError> {
    let (c, _, _) = need_map(ctx, "channel_shuffle", input)?;
    if !c.is_multiple_of(groups) {
        return Err(CompileError::Groups {
            groups,
            cin: c,
            cout: c,
            at: at(ctx.span),
            help: format!("shuffle in a number of groups that divides the {c} channels"),
        });
    }
    Ok((input, Cost::default()))
}
