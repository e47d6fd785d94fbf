//! `maxout K` (Goodfellow et al. 2013): the maximum over K pieces. The channels form C/K
//! groups of K adjacent channels, and output channel `j` is the largest of input channels
//! `j·K … j·K + K − 1`, as `x.view(N, C/K, K, H, W).amax(2)` in PyTorch (the same on the
//! features of a vector). No parameters; K − 1 comparisons per output element.

use linkme::distributed_slice;

use super::args::{Args, MAX_CHANNELS};
use super::{Cost, Keep, ShapeCtx, Signature, TrainCost, Unit, UnitRules, LAYER_UNITS};
use crate::diag::{at, CompileError};
use crate::graph::{Attr, Op, Shape, UnitOp};

pub static SIGNATURE: Signature = Signature {
    positional: &["pieces"],
    required: 1,
    named: &[],
    example: "maxout 2",
};

#[distributed_slice(LAYER_UNITS)]
pub static UNIT: Unit = Unit {
    name: "maxout",
    signature: &SIGNATURE,
    defaults: &[],
    summary: "maximum over K pieces: output channel j is the largest of input channels jK … jK+K−1",
    shape_rule: "C×H×W → (C/K)×H×W, or N → N/K; K divides C",
    cost_rule: "FLOPs (K − 1) comparisons per output element",
    training_rule: "keeps its input and its output (`amax` saves both); backward 1 per output element (the gradient routed to the maximum)",
    build: |_, a, _| build(a),
    rules: Some(&RULES),
};

static RULES: UnitRules = UnitRules {
    lowered: "Maxout",
    infer,
    lower: |u, _| vec![("pieces", u.args[0])],
    params: |_| Vec::new(),
    describe: |u| format!("maxout, {} pieces", u.args[0]),
    training: |_, _, output| TrainCost {
        keeps: vec![Keep::Input(0), Keep::Output],
        ..TrainCost::elementwise(None, 1, output.numel())
    },
};

fn build(a: &mut Args) -> Option<Vec<Op>> {
    let pieces = a.int(0, "", "pieces", MAX_CHANNELS)?;
    Some(vec![Op::Unit(UnitOp {
        kind: "maxout",
        args: [Attr::Int(pieces), Attr::Int(0)],
    })])
}

fn infer(ctx: &ShapeCtx, u: &UnitOp, inputs: &[Shape]) -> Result<(Shape, Cost), CompileError> {
    let pieces = u.args[0].int();
    let input = inputs[0];
    let c = input.channels();
    if !c.is_multiple_of(pieces) {
        return Err(CompileError::Groups {
            groups: pieces,
            cin: c,
            cout: c / pieces.max(1),
            at: at(ctx.span),
            help: format!("take a number of pieces that divides the {c} channels"),
        });
    }
    let out = match input {
        Shape::Map { c, h, w } => Shape::Map {
            c: c / pieces,
            h,
            w,
        },
        Shape::Flat { n } => Shape::Flat { n: n / pieces },
    };
    let flops = out.numel() * (pieces as u128 - 1);
    Ok((
        out,
        Cost {
            flops,
            ..Cost::default()
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_divide_the_channels() {
        let ctx = ShapeCtx {
            name: "m",
            span: Default::default(),
            network_hw: None,
        };
        let op = |k| UnitOp {
            kind: "maxout",
            args: [Attr::Int(k), Attr::Int(0)],
        };
        let (s, c) = infer(&ctx, &op(2), &[Shape::Map { c: 96, h: 8, w: 8 }]).unwrap();
        assert_eq!(s, Shape::Map { c: 48, h: 8, w: 8 });
        assert_eq!((c.params, c.flops), (0, 48 * 64));
        assert!(infer(&ctx, &op(5), &[Shape::Flat { n: 12 }]).is_err());
    }
}
