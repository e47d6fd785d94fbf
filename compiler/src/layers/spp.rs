//! `spp N1, N2, …` (He et al. 2014, spatial pyramid pooling; the PReLU-nets of He et al. 2015
//! use `spp 7, 3, 2, 1`): max pooling of a C×H×W map into N×N bins for each pyramid level N,
//! each level flattened channel by channel and the levels concatenated in the order written,
//! giving a vector of C·ΣN² features whatever H and W are. Bin `i` of a level spans rows
//! `floor(i·H/N) … ceil((i+1)·H/N) − 1` (and likewise columns), PyTorch's
//! `adaptive_max_pool2d`. The SPP-net paper's own windows (size `ceil(H/N)`, stride
//! `floor(H/N)`) are the same where N divides H; on the PReLU-nets' 14x14 maps the 3x3 level
//! differs: the paper's windows leave out the last row and column, these cover them. No
//! parameters.

use linkme::distributed_slice;

use super::args::Args;
use super::{need_map, Cost, ShapeCtx, Signature, Unit, UnitRules, LAYER_UNITS};
use crate::diag::CompileError;
use crate::graph::{Attr, Op, Shape, UnitOp};

/// At most this many levels, each at most [`MAX_BINS`] bins a side (the levels are packed
/// into one attribute of the graph's op, a byte each).
pub const MAX_LEVELS: usize = 6;
pub const MAX_BINS: i64 = 255;

/// The lowered attributes' names: `levels` (their number), then `level1` … in order.
const LEVEL_NAMES: [&str; MAX_LEVELS] =
    ["level1", "level2", "level3", "level4", "level5", "level6"];

pub static SIGNATURE: Signature = Signature {
    positional: &LEVEL_NAMES,
    required: 1,
    named: &[],
    example: "spp 7, 3, 2, 1",
};

#[distributed_slice(LAYER_UNITS)]
pub static UNIT: Unit = Unit {
    name: "spp",
    signature: &SIGNATURE,
    defaults: &[],
    summary: "spatial pyramid pooling: max pooling into N×N bins per level (adaptive windows), \
              each level flattened, the levels concatenated in the order written",
    shape_rule: "C×H×W → C·ΣN² (a vector), for any H and W",
    cost_rule: "FLOPs (window size − 1) comparisons per bin",
    training_rule: "keeps its input and each level's max-pool indices (int64, one per output element, as PyTorch's `adaptive_max_pool2d`); backward 1 per output element",
    build: |_, a, _| build(a),
    rules: Some(&RULES),
};

static RULES: UnitRules = UnitRules {
    lowered: "Spp",
    infer,
    lower: |u, _| {
        let levels = levels(u);
        let mut attrs = vec![("levels", Attr::Int(levels.len() as u64))];
        attrs.extend(
            LEVEL_NAMES
                .iter()
                .zip(&levels)
                .map(|(n, &b)| (*n, Attr::Int(b))),
        );
        attrs
    },
    params: |_| Vec::new(),
    describe: |u| {
        let l: Vec<String> = levels(u).iter().map(u64::to_string).collect();
        format!("spp {}", l.join(", "))
    },
    // Each level is PyTorch's `adaptive_max_pool2d` on the same input: the input kept once,
    // indices per output element; flattening and concatenating keep nothing.
    training: |_, _, output| super::pool::training_max(output),
};

/// The levels of an op: packed a byte each in `args[0]`, their number in `args[1]`.
pub fn levels(u: &UnitOp) -> Vec<u64> {
    let (packed, n) = (u.args[0].int(), u.args[1].int());
    (0..n).map(|i| (packed >> (8 * i)) & 0xff).collect()
}

fn build(a: &mut Args) -> Option<Vec<Op>> {
    let mut packed = 0u64;
    let n = a.positional.len().min(MAX_LEVELS);
    let mut ok = true;
    for i in 0..n {
        match a.int(i, "", "pyramid level", MAX_BINS) {
            Some(b) => packed |= b << (8 * i),
            None => ok = false,
        }
    }
    ok.then(|| {
        vec![Op::Unit(UnitOp {
            kind: "spp",
            args: [Attr::Int(packed), Attr::Int(n as u64)],
        })]
    })
}

/// Rows (or columns) of bin `i` of `n` over a side of `size`: PyTorch's adaptive windows.
pub fn window(i: u64, n: u64, size: u64) -> (u64, u64) {
    ((i * size) / n, ((i + 1) * size).div_ceil(n))
}

fn infer(ctx: &ShapeCtx, u: &UnitOp, inputs: &[Shape]) -> Result<(Shape, Cost), CompileError> {
    let (c, h, w) = need_map(ctx, "spp", inputs[0])?;
    let mut features = 0u64;
    let mut flops = 0u128;
    for n in levels(u) {
        features += c * n * n;
        let side = |size| -> u128 {
            (0..n)
                .map(|i| {
                    let (a, b) = window(i, n, size);
                    (b - a) as u128
                })
                .sum()
        };
        // Each bin: its window's elements, less one, comparisons (summed over bins).
        flops += c as u128 * (side(h) * side(w) - (n * n) as u128);
    }
    Ok((
        Shape::Flat { n: features },
        Cost {
            flops,
            ..Cost::default()
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(levels: &[u64]) -> UnitOp {
        let packed = levels
            .iter()
            .enumerate()
            .fold(0, |p, (i, &b)| p | b << (8 * i));
        UnitOp {
            kind: "spp",
            args: [Attr::Int(packed), Attr::Int(levels.len() as u64)],
        }
    }

    #[test]
    fn the_prelu_nets_pyramid_gives_63_bins_per_channel() {
        let ctx = ShapeCtx {
            name: "s",
            span: Default::default(),
            network_hw: None,
        };
        let u = op(&[7, 3, 2, 1]);
        assert_eq!(levels(&u), vec![7, 3, 2, 1]);
        let (s, c) = infer(
            &ctx,
            &u,
            &[Shape::Map {
                c: 512,
                h: 14,
                w: 14,
            }],
        )
        .unwrap();
        assert_eq!(s, Shape::Flat { n: 512 * 63 });
        // 7: 49 windows of 4; 3: rows 0..5, 4..10, 9..14 (5 + 6 + 5 = 16 a side); 2 and 1: 196.
        let per_channel = (196 - 49) + (16 * 16 - 9) + (196 - 4) + (196 - 1);
        assert_eq!(c.flops, 512 * per_channel);
        assert_eq!((c.params, c.macs), (0, 0));
        assert!(infer(&ctx, &u, &[Shape::Flat { n: 10 }]).is_err());
        assert_eq!(window(2, 3, 14), (9, 14));
        // More bins than rows: every bin still covers at least one row.
        assert!((0..7).all(|i| {
            let (a, b) = window(i, 7, 3);
            b > a
        }));
    }
}
