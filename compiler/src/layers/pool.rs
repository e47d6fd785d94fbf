//! `maxpool KxK [, stride: S, padding: P]`, `avgpool KxK [, stride: S, padding: P]`,
//! `avgpool` (global average pooling) and `avgpool output: HxW` (adaptive). The stride of a
//! window defaults to its size, as in PyTorch.

use linkme::distributed_slice;

use super::args::{Args, MAX_KERNEL, MAX_SPATIAL, MAX_STRIDE};
use super::{
    need_map, window, Cost, Dtype, Extra, Keep, ShapeCtx, Signature, TrainCost, Unit, LAYER_UNITS,
};
use crate::diag::{at, CompileError};
use crate::graph::{Op, Pool2d, Shape};

pub static MAX_SIGNATURE: Signature = Signature {
    positional: &["kernel"],
    required: 1,
    named: &["stride", "padding", "ceil_mode"],
    example: "maxpool 3x3, stride: 2, padding: 1",
};

pub static AVG_SIGNATURE: Signature = Signature {
    positional: &["kernel"],
    required: 0,
    named: &["stride", "padding", "ceil_mode", "output"],
    example: "avgpool  (global), avgpool 2x2, or avgpool output: 7x7",
};

#[distributed_slice(LAYER_UNITS)]
pub static MAX_UNIT: Unit = Unit {
    name: "maxpool",
    signature: &MAX_SIGNATURE,
    defaults: &[
        ("stride", "the kernel size"),
        ("padding", "0 (at most half the kernel)"),
    ],
    summary: "max pooling over a window",
    shape_rule: "C×H×W → C × out(H) × out(W), out(n) = floor((n + 2p − k)/s) + 1 (ceil_mode: rounded up, the last window starting inside the input or its left padding)",
    cost_rule: "FLOPs (kh·kw − 1) comparisons per output element",
    training_rule: "keeps its input and the argmax indices (int64, 8 bytes per output element); backward 1 per output element (its gradient added at the argmax)",
    build: |_, a, _| build_max(a),
    rules: None,
};

#[distributed_slice(LAYER_UNITS)]
pub static AVG_UNIT: Unit = Unit {
    name: "avgpool",
    signature: &AVG_SIGNATURE,
    defaults: &[
        ("kernel", "none: global average pooling to 1×1"),
        ("stride", "the kernel size"),
        ("padding", "0 (counted in the average, as PyTorch)"),
        ("ceil_mode", "false (true rounds the output size up, as PyTorch's ceil_mode)"),
        ("output", "adaptive pooling to H×W instead of a window"),
    ],
    summary: "average pooling: a window, global (no kernel), or adaptive (output: HxW)",
    shape_rule: "C×H×W → C × out(H) × out(W) (window), C×1×1 (global), C×oh×ow (adaptive)",
    cost_rule: "FLOPs kh·kw per output element of a window (kh·kw − 1 adds and a division); global and adaptive: the sum of the window sizes over the outputs",
    training_rule: "keeps its input, except global pooling (PyTorch computes it as a mean, which keeps nothing); backward as many FLOPs as the forward (each output's gradient spread over its window)",
    build: |_, a, _| build_avg(a),
    rules: None,
};

fn window_args(a: &mut Args) -> Option<Pool2d> {
    let kernel = a.pair(0, "", "kernel size", false, MAX_KERNEL)?;
    let stride = if a.named("stride").is_some() {
        a.pair(usize::MAX, "stride", "stride", false, MAX_STRIDE)?
    } else {
        kernel
    };
    let padding = if a.named("padding").is_some() {
        a.pair(usize::MAX, "padding", "padding", true, MAX_SPATIAL)?
    } else {
        [0, 0]
    };
    if padding[0] > kernel[0] / 2 || padding[1] > kernel[1] / 2 {
        let span = a.named("padding").map(|(_, s)| s).unwrap_or(a.span);
        a.errors.push(CompileError::PoolPadding {
            padding: format!("{}x{}", padding[0], padding[1]),
            kernel: format!("{}x{}", kernel[0], kernel[1]),
            at: at(span),
        });
        return None;
    }
    let ceil_mode = match a.named("ceil_mode") {
        Some(_) => a.boolean("ceil_mode", "ceil_mode")?,
        None => false,
    };
    Some(Pool2d {
        kernel,
        stride,
        padding,
        ceil_mode,
    })
}

pub fn build_max(a: &mut Args) -> Option<Vec<Op>> {
    Some(vec![Op::MaxPool2d(window_args(a)?)])
}

pub fn build_avg(a: &mut Args) -> Option<Vec<Op>> {
    let windowed = a
        .named("stride")
        .or_else(|| a.named("padding"))
        .or_else(|| a.named("ceil_mode"));
    let conflict = if a.named("output").is_some() {
        a.positional
            .first()
            .map(|(_, s)| *s)
            .or(windowed.map(|(_, s)| s))
    } else if a.positional.is_empty() {
        windowed.map(|(_, s)| s)
    } else {
        None
    };
    if let Some(span) = conflict {
        a.errors.push(CompileError::LayerArguments {
            layer: "avgpool".into(),
            problem: "mixes a window (kernel, stride, padding) with global or adaptive pooling".into(),
            at: at(span),
            label: "not used by this kind of pooling".into(),
            help: "write `avgpool` (global), `avgpool output: 7x7` (adaptive) or `avgpool 2x2, stride: 2` (windowed)".into(),
        });
        return None;
    }
    if a.named("output").is_some() {
        let output = a.pair(usize::MAX, "output", "output size", false, MAX_SPATIAL)?;
        return Some(vec![Op::AdaptiveAvgPool2d { output }]);
    }
    if a.positional.is_empty() {
        return Some(vec![Op::AdaptiveAvgPool2d { output: [1, 1] }]);
    }
    Some(vec![Op::AvgPool2d(window_args(a)?)])
}

/// The output map of a pooling window and its window size `kh·kw`.
fn pooled(
    ctx: &ShapeCtx,
    layer: &str,
    p: &Pool2d,
    input: Shape,
) -> Result<(Shape, u128), CompileError> {
    let (c, h, w) = need_map(ctx, layer, input)?;
    let (oh, ow) = window(
        ctx,
        (h, w),
        p.kernel,
        p.stride,
        p.padding,
        [1, 1],
        p.ceil_mode,
    )?;
    let k = p.kernel[0] as u128 * p.kernel[1] as u128;
    Ok((Shape::Map { c, h: oh, w: ow }, k))
}

/// Max pooling: kernel-size-minus-one comparisons per output element.
pub fn infer_max(ctx: &ShapeCtx, p: &Pool2d, input: Shape) -> Result<(Shape, Cost), CompileError> {
    let (out, k) = pooled(ctx, "maxpool", p, input)?;
    let flops = out.numel() * (k - 1);
    Ok((
        out,
        Cost {
            flops,
            ..Cost::default()
        },
    ))
}

/// Average pooling: k-1 adds and one division per output element.
pub fn infer_avg(ctx: &ShapeCtx, p: &Pool2d, input: Shape) -> Result<(Shape, Cost), CompileError> {
    let (out, k) = pooled(ctx, "avgpool", p, input)?;
    let flops = out.numel() * k;
    Ok((
        out,
        Cost {
            flops,
            ..Cost::default()
        },
    ))
}

/// Adaptive average pooling as PyTorch defines it: output cell i covers input rows
/// floor(i*H/OH) .. ceil((i+1)*H/OH). Cost: each input cell read once per window containing it.
pub fn infer_adaptive(
    ctx: &ShapeCtx,
    output: [u64; 2],
    input: Shape,
) -> Result<(Shape, Cost), CompileError> {
    let (c, h, w) = need_map(ctx, "avgpool", input)?;
    let span_sum = |n: u64, o: u64| -> u128 {
        (0..o as u128)
            .map(|i| {
                let start = i * n as u128 / o as u128;
                let end = ((i + 1) * n as u128).div_ceil(o as u128);
                end - start
            })
            .sum()
    };
    let out = Shape::Map {
        c,
        h: output[0],
        w: output[1],
    };
    let flops = c as u128 * span_sum(h, output[0]) * span_sum(w, output[1]);
    Ok((
        out,
        Cost {
            flops,
            ..Cost::default()
        },
    ))
}

/// Training of max pooling: PyTorch's `max_pool2d_with_indices` keeps its input and the
/// indices of the maxima (int64); the input gradient adds each output's gradient at its
/// argmax.
pub fn training_max(output: Shape) -> TrainCost {
    let mut t = TrainCost::elementwise(Some(Keep::Input(0)), 1, output.numel());
    t.extras.push(Extra {
        what: "max-pool indices",
        elements: output.numel(),
        per_sample: true,
        dtype: Dtype::I64,
    });
    t
}

/// Training of windowed average pooling: `avg_pool2d` keeps its input; the input gradient
/// spreads each output's gradient over its window (as many FLOPs as the forward).
pub fn training_avg(cost: &Cost) -> TrainCost {
    TrainCost::elementwise(Some(Keep::Input(0)), 1, cost.flops)
}

/// Training of adaptive average pooling: to 1×1 PyTorch takes the mean over H and W, which
/// keeps nothing (only sizes); to any other size `_adaptive_avg_pool2d` keeps its input.
pub fn training_adaptive(size: [u64; 2], cost: &Cost) -> TrainCost {
    let keep = (size != [1, 1]).then_some(Keep::Input(0));
    TrainCost::elementwise(keep, 1, cost.flops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ShapeCtx<'static> {
        ShapeCtx {
            name: "p",
            span: Default::default(),
            network_hw: Some((224, 224)),
        }
    }

    #[test]
    fn resnet_maxpool() {
        let p = Pool2d {
            kernel: [3, 3],
            stride: [2, 2],
            padding: [1, 1],
            ceil_mode: false,
        };
        let (s, c) = infer_max(
            &ctx(),
            &p,
            Shape::Map {
                c: 64,
                h: 112,
                w: 112,
            },
        )
        .unwrap();
        assert_eq!(
            s,
            Shape::Map {
                c: 64,
                h: 56,
                w: 56
            }
        );
        assert_eq!(c.flops, 64 * 56 * 56 * 8);
        assert_eq!(c.params, 0);
    }

    #[test]
    fn global_pool_reads_every_cell_once() {
        let (s, c) = infer_adaptive(&ctx(), [1, 1], Shape::Map { c: 512, h: 7, w: 7 }).unwrap();
        assert_eq!(s, Shape::Map { c: 512, h: 1, w: 1 });
        assert_eq!(c.flops, 512 * 49);
    }

    #[test]
    fn adaptive_overlapping_windows() {
        // 5 -> 3: windows [0,2) [1,4) [3,5): 2+3+2 = 7 rows
        let (_, c) = infer_adaptive(&ctx(), [3, 1], Shape::Map { c: 1, h: 5, w: 1 }).unwrap();
        assert_eq!(c.flops, 7);
    }

    #[test]
    fn pool_on_a_map_shrunk_away() {
        let p = Pool2d {
            kernel: [2, 2],
            stride: [2, 2],
            padding: [0, 0],
            ceil_mode: false,
        };
        let e = infer_max(&ctx(), &p, Shape::Map { c: 8, h: 1, w: 1 }).unwrap_err();
        assert!(matches!(e, CompileError::EmptyMap { .. }), "{e:?}");
    }
}
