//! The shortcut of a residual block, per the paper's options:
//! - A: identity; where the shape changes, strided subsampling and zero-padded channels
//!   (no parameters).
//! - B: identity where shapes match, else a projection (1x1 conv, stride s, + BN).
//! - C: a projection on every block.
//! - identity: identity where shapes match, no shortcut at all where they differ (the add then
//!   passes the block's output through), as torchvision's MobileNetV2 `use_res_connect`.
//! - gated: a Highway gate `T(x) = sigmoid(W x + b)`, W a 1x1 conv with bias (a biased fc on
//!   vectors) from the block's input to its channels; the block must keep its input's shape.
//!   The gate's pre-activation is this node's output; `highway.rs` mixes it in.
//!
//! The projection's output size is ceil(H/s) (a 1x1 window with no padding), the same as
//! subsampling every s-th row; the block's output must have exactly that size.

use super::{Cost, Dtype, Extra, Keep, ShapeCtx, TrainCost, Work};
use crate::diag::{at, CompileError};
use crate::graph::{Shape, ShortcutOption};
use serde::Serialize;

/// What inference decided the shortcut is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ShortcutPlan {
    Identity,
    /// Option A where the shape changes: `x[:, :, ::stride, ::stride]`, then `pad_before`
    /// zero channels in front and `pad_after` behind.
    PadSubsample {
        stride: u64,
        pad_before: u64,
        pad_after: u64,
    },
    /// 1x1 convolution (no bias) with the given stride, followed by batch norm.
    Projection {
        out_channels: u64,
        stride: u64,
    },
    /// Option `identity` where the shape changes: no shortcut; the block is plain there.
    Absent,
    /// Option `gated`: the gate's pre-activation, a 1x1 conv (an fc on vectors) with bias from
    /// the block's input to its `channels`.
    Gate {
        channels: u64,
    },
}

/// The initial bias of a Highway gate (Srivastava et al. 2015 suggest −1 to −3, more negative
/// for deeper networks, so that a fresh block mostly carries its input: sigmoid(−2) ≈ 0.12).
pub const GATE_BIAS_INIT: f64 = -2.0;

/// The gate of a block whose output has `out` elements and `c` channels (features): a 1x1
/// conv or an fc, `c → c`, with bias.
fn gate_cost(c: u64, out: Shape) -> Cost {
    let out_elems = out.numel();
    let macs = out_elems * c as u128;
    Cost {
        params: c as u128 * c as u128 + c as u128,
        buffers: 0,
        macs,
        flops: 2 * macs + out_elems,
    }
}

pub fn infer(
    ctx: &ShapeCtx,
    option: ShortcutOption,
    stride: u64,
    x: Shape,
    target: Shape,
) -> Result<(Shape, Cost, ShortcutPlan), CompileError> {
    let mismatch = |reason: String, help: &str| CompileError::ResidualMismatch {
        option: option.name().to_string(),
        input: x.to_string(),
        output: target.to_string(),
        at: at(ctx.span),
        reason,
        cause: None,
        cause_text: String::new(),
        help: help.to_string(),
    };
    match option {
        ShortcutOption::Identity if x == target => {
            return Ok((target, Cost::default(), ShortcutPlan::Identity))
        }
        ShortcutOption::Identity => return Ok((target, Cost::default(), ShortcutPlan::Absent)),
        ShortcutOption::Gated if x == target => {
            let c = target.channels();
            return Ok((target, gate_cost(c, target), ShortcutPlan::Gate { channels: c }));
        }
        ShortcutOption::Gated => {
            return Err(mismatch(
                "a gated (Highway) block must keep its input's shape".into(),
                "change channels or size in a layer outside the block (a stage layer), or use shortcut B there",
            ))
        }
        _ => {}
    }
    let (cin, h, w, cout, oh, ow) = match (x, target) {
        (
            Shape::Map { c, h, w },
            Shape::Map {
                c: oc,
                h: oh,
                w: ow,
            },
        ) => (c, h, w, oc, oh, ow),
        (Shape::Flat { n }, Shape::Flat { n: m }) if n == m && option != ShortcutOption::C => {
            return Ok((target, Cost::default(), ShortcutPlan::Identity));
        }
        _ => {
            return Err(mismatch(
                "only identity shortcuts between vectors of one size are supported".into(),
                "keep the block's output the size of its input, or use `shortcut none`",
            ))
        }
    };
    let changes = cin != cout || h != oh || w != ow;
    let sub_h = h.div_ceil(stride);
    let sub_w = w.div_ceil(stride);
    let spatial_ok = sub_h == oh && sub_w == ow;
    let projection = |cost_out: Shape| {
        let out_elems = cost_out.numel();
        let macs = out_elems * cin as u128;
        Cost {
            params: cin as u128 * cout as u128 + 2 * cout as u128,
            buffers: 2 * cout as u128,
            macs,
            flops: 2 * macs + 2 * out_elems,
        }
    };
    let spatial_err = || {
        mismatch(
            format!(
                "the shortcut with stride {stride} gives {sub_h}x{sub_w}, the block gives {oh}x{ow}"
            ),
            "the block must downsample exactly by the stage stride, on the layer that uses `stride`",
        )
    };
    match option {
        ShortcutOption::None | ShortcutOption::Identity | ShortcutOption::Gated => {
            unreachable!("no shortcut node is made for option none; the others returned above")
        }
        ShortcutOption::A | ShortcutOption::B if !changes => {
            Ok((target, Cost::default(), ShortcutPlan::Identity))
        }
        ShortcutOption::A => {
            if !spatial_ok {
                return Err(spatial_err());
            }
            if cout < cin {
                return Err(mismatch(
                    format!(
                        "channels shrink from {cin} to {cout}: option A can only add zero channels"
                    ),
                    "use shortcut B or C (a projection) where a block reduces channels",
                ));
            }
            let pad = cout - cin;
            Ok((
                target,
                Cost::default(),
                ShortcutPlan::PadSubsample {
                    stride,
                    pad_before: pad / 2,
                    pad_after: pad - pad / 2,
                },
            ))
        }
        ShortcutOption::B | ShortcutOption::C => {
            if !spatial_ok {
                return Err(spatial_err());
            }
            Ok((
                target,
                projection(target),
                ShortcutPlan::Projection {
                    out_channels: cout,
                    stride,
                },
            ))
        }
    }
}

/// Training of a shortcut, by its plan: an identity (or an absent shortcut) is its input;
/// option A's subsample and zero padding keep nothing (slicing and padding save no tensor)
/// and pass the gradient back by copying; a projection is a 1x1 convolution (its input kept)
/// and a batch norm (the convolution's output kept, and the statistics), counted as
/// `conv::training` and `norm::training` count them; a Highway gate is a biased 1x1
/// convolution.
pub fn training(plan: Option<ShortcutPlan>, output: Shape, cost: &Cost) -> TrainCost {
    let e = output.numel();
    match plan {
        None | Some(ShortcutPlan::Identity) | Some(ShortcutPlan::Absent) => TrainCost::view(),
        Some(ShortcutPlan::PadSubsample { .. }) => TrainCost::default(),
        Some(ShortcutPlan::Gate { .. }) => TrainCost::products(cost.macs, e),
        Some(ShortcutPlan::Projection { out_channels, .. }) => {
            let bn = super::norm::training(output);
            TrainCost {
                // The inference count folds the BN into 2 per element.
                forward_flops: Some(cost.flops - 2 * e + super::norm::TRAIN_FLOPS * e),
                keeps: vec![Keep::Input(0)],
                extras: vec![
                    Extra {
                        what: "projection output (kept by its batch norm)",
                        elements: e,
                        per_sample: true,
                        dtype: Dtype::Activation,
                    },
                    Extra {
                        elements: 2 * out_channels as u128,
                        ..bn.extras[0]
                    },
                ],
                view: false,
                input_grad: Work {
                    macs: cost.macs,
                    flops: 2 * cost.macs + bn.input_grad.flops,
                },
                weight_grad: Work {
                    macs: cost.macs,
                    flops: 2 * cost.macs + bn.weight_grad.flops,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ShapeCtx<'static> {
        ShapeCtx {
            name: "s",
            span: Default::default(),
            network_hw: None,
        }
    }

    const X: Shape = Shape::Map {
        c: 16,
        h: 32,
        w: 32,
    };
    const Y: Shape = Shape::Map {
        c: 32,
        h: 16,
        w: 16,
    };

    #[test]
    fn option_a_pads_and_subsamples() {
        let (_, c, p) = infer(&ctx(), ShortcutOption::A, 2, X, Y).unwrap();
        assert_eq!(c, Cost::default());
        assert_eq!(
            p,
            ShortcutPlan::PadSubsample {
                stride: 2,
                pad_before: 8,
                pad_after: 8
            }
        );
    }

    #[test]
    fn option_b_projects_only_on_change() {
        let (_, c, p) = infer(&ctx(), ShortcutOption::B, 2, X, Y).unwrap();
        assert_eq!(
            p,
            ShortcutPlan::Projection {
                out_channels: 32,
                stride: 2
            }
        );
        assert_eq!(c.params, 16 * 32 + 64);
        assert_eq!(c.buffers, 64);
        let (_, c, p) = infer(&ctx(), ShortcutOption::B, 1, X, X).unwrap();
        assert_eq!((p, c), (ShortcutPlan::Identity, Cost::default()));
    }

    #[test]
    fn option_c_projects_always() {
        let (_, c, _) = infer(&ctx(), ShortcutOption::C, 1, X, X).unwrap();
        assert_eq!(c.params, 16 * 16 + 32);
    }

    #[test]
    fn option_a_cannot_shrink_channels() {
        let e = infer(
            &ctx(),
            ShortcutOption::A,
            1,
            Y,
            Shape::Map {
                c: 16,
                h: 16,
                w: 16,
            },
        )
        .unwrap_err();
        assert!(matches!(e, CompileError::ResidualMismatch { .. }));
    }

    #[test]
    fn option_identity_is_absent_where_shapes_change() {
        let (_, c, p) = infer(&ctx(), ShortcutOption::Identity, 1, X, X).unwrap();
        assert_eq!((p, c), (ShortcutPlan::Identity, Cost::default()));
        let (_, c, p) = infer(&ctx(), ShortcutOption::Identity, 2, X, Y).unwrap();
        assert_eq!((p, c), (ShortcutPlan::Absent, Cost::default()));
        let v = |n| Shape::Flat { n };
        let (_, _, p) = infer(&ctx(), ShortcutOption::Identity, 1, v(8), v(4)).unwrap();
        assert_eq!(p, ShortcutPlan::Absent);
    }

    #[test]
    fn option_gated_counts_a_biased_1x1_gate() {
        let (s, c, p) = infer(&ctx(), ShortcutOption::Gated, 1, X, X).unwrap();
        assert_eq!(s, X);
        assert_eq!(p, ShortcutPlan::Gate { channels: 16 });
        assert_eq!(c.params, 16 * 16 + 16);
        assert_eq!(c.buffers, 0);
        assert_eq!(c.macs, 16 * 32 * 32 * 16);
        assert_eq!(c.flops, 2 * c.macs + 16 * 32 * 32);
        // On vectors the gate is an fc of the same size.
        let v = Shape::Flat { n: 256 };
        let (_, c, _) = infer(&ctx(), ShortcutOption::Gated, 1, v, v).unwrap();
        assert_eq!((c.params, c.macs), (256 * 256 + 256, 256 * 256));
    }

    #[test]
    fn option_gated_needs_an_unchanged_shape() {
        let e = infer(&ctx(), ShortcutOption::Gated, 2, X, Y).unwrap_err();
        assert!(e.to_string().contains("cannot be added"), "{e}");
        assert!(matches!(e, CompileError::ResidualMismatch { .. }));
    }

    #[test]
    fn spatial_size_must_follow_the_stride() {
        let e = infer(&ctx(), ShortcutOption::B, 1, X, Y).unwrap_err();
        assert!(e.to_string().contains("cannot be added"), "{e}");
    }
}
