//! The shortcut of a residual block, per the paper's options:
//! - A: identity; where the shape changes, strided subsampling and zero-padded channels
//!   (no parameters).
//! - B: identity where shapes match, else a projection (1x1 conv, stride s, + BN).
//! - C: a projection on every block.
//!
//! The projection's output size is ceil(H/s) (a 1x1 window with no padding), the same as
//! subsampling every s-th row; the block's output must have exactly that size.

use super::{Cost, ShapeCtx};
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
        help: help.to_string(),
    };
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
        ShortcutOption::None => unreachable!("no shortcut node is made for option none"),
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
    fn spatial_size_must_follow_the_stride() {
        let e = infer(&ctx(), ShortcutOption::B, 1, X, Y).unwrap_err();
        assert!(e.to_string().contains("cannot be added"), "{e}");
    }
}
