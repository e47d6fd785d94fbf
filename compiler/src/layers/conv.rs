//! `conv KxK, C [, stride: S, padding: P, groups: G, dilation: D, bias: B, norm: N, act: A,
//! order: O]`
//!
//! A 2-D convolution, followed (by default) by batch norm and ReLU. Under `order: pre` the norm
//! and activation come first (BN → ReLU → conv, the pre-activation ResNet's order). Default
//! padding keeps the size for odd kernels, `dilation*(k-1)/2` as torchvision writes it; even
//! kernels must say.

use linkme::distributed_slice;

use super::args::{Args, MAX_CHANNELS, MAX_KERNEL, MAX_SPATIAL, MAX_STRIDE};
use super::{
    need_map, window, Cost, LayerDefaults, ShapeCtx, Signature, TrainCost, Unit, LAYER_UNITS,
};
use crate::diag::{at, CompileError};
use crate::graph::{Conv2d, Op, Shape};

pub static SIGNATURE: Signature = Signature {
    positional: &["kernel", "channels"],
    required: 2,
    named: &[
        "stride", "padding", "groups", "dilation", "bias", "norm", "act", "order",
    ],
    example: "conv 3x3, 64, stride: 2",
};

#[distributed_slice(LAYER_UNITS)]
pub static UNIT: Unit = Unit {
    name: "conv",
    signature: &SIGNATURE,
    defaults: &[
        ("stride", "1"),
        ("padding", "dilation*(k-1)/2 (\"same\" for odd kernels; even kernels must say)"),
        ("dilation", "1"),
        ("groups", "1"),
        ("bias", "the `bias` setting (auto: a bias only where no norm follows)"),
        ("norm", "the `norm` setting (bn)"),
        ("act", "the `act` setting (relu)"),
        ("order", "the `order` setting (post)"),
    ],
    summary: "2-D convolution, followed by batch norm and the activation (order post), or preceded by them (order pre)",
    shape_rule: "C×H×W → channels × out(H) × out(W), out(n) = floor((n + 2p − d(k−1) − 1)/s) + 1; groups divide C and channels",
    cost_rule: "params channels·(C/groups)·kh·kw (+ channels bias); MACs out elements × (C/groups)·kh·kw; FLOPs 2·MACs (+ out elements with bias)",
    training_rule: "keeps its input; backward: input gradient 2·MACs (none where the input needs no gradient, as the network's input), weight gradient 2·MACs (+ out elements for the bias)",
    build: |_, a, d| build(a, d),
    rules: None,
};

/// The ops one `conv` line becomes: the convolution, then its norm and activation.
pub fn build(a: &mut Args, d: &LayerDefaults) -> Option<Vec<Op>> {
    let kernel = a.pair(0, "", "kernel size", false, MAX_KERNEL);
    let out = a.int(1, "", "channels", MAX_CHANNELS);
    let stride = if a.named("stride").is_some() {
        a.pair(usize::MAX, "stride", "stride", false, MAX_STRIDE)
    } else {
        Some([1, 1])
    };
    let dilation = if a.named("dilation").is_some() {
        a.pair(usize::MAX, "dilation", "dilation", false, MAX_KERNEL)
    } else {
        Some([1, 1])
    };
    let groups = if a.named("groups").is_some() {
        a.int(usize::MAX, "groups", "groups", MAX_CHANNELS)
    } else {
        Some(1)
    };
    let norm = match a.named("norm") {
        Some(_) => a.word("norm", "norm", &["bn", "none"]).map(|w| w == "bn"),
        None => Some(d.norm),
    };
    let act = super::activation::act_argument(a, d.act);
    let pre = match a.named("order") {
        Some(_) => a
            .word("order", "order", &["post", "pre"])
            .map(|w| w == "pre"),
        None => Some(d.pre),
    };
    let (kernel, dilation) = (kernel?, dilation?);
    let padding = match a.named("padding") {
        Some(_) => a.pair(usize::MAX, "padding", "padding", true, MAX_SPATIAL)?,
        None => {
            if kernel[0] % 2 == 0 || kernel[1] % 2 == 0 {
                let span = a.get(0, "").map(|(_, s)| s).unwrap_or(a.span);
                a.errors.push(CompileError::EvenKernel {
                    kernel: format!("{}x{}", kernel[0], kernel[1]),
                    at: at(span),
                });
                return None;
            }
            [
                dilation[0] * (kernel[0] - 1) / 2,
                dilation[1] * (kernel[1] - 1) / 2,
            ]
        }
    };
    let norm = norm?;
    let bias = match a.named("bias") {
        Some(_) => a.boolean("bias", "bias")?,
        None => d.bias.unwrap_or(!norm),
    };
    let conv = Conv2d {
        out_channels: out?,
        kernel,
        stride: stride?,
        padding,
        dilation,
        groups: groups?,
        bias,
    };
    let mut ops = Vec::with_capacity(3);
    if norm {
        ops.push(super::norm::default_op(d));
    }
    if let Some(act) = act? {
        ops.push(Op::Act(act));
    }
    if pre? {
        ops.push(Op::Conv2d(conv));
    } else {
        ops.insert(0, Op::Conv2d(conv));
    }
    Some(ops)
}

/// Shape and cost of a convolution. MACs are output elements times the dot-product length.
pub fn infer(ctx: &ShapeCtx, c: &Conv2d, input: Shape) -> Result<(Shape, Cost), CompileError> {
    let (cin, h, w) = need_map(ctx, "conv", input)?;
    if !cin.is_multiple_of(c.groups) || !c.out_channels.is_multiple_of(c.groups) {
        return Err(CompileError::Groups {
            groups: c.groups,
            cin,
            cout: c.out_channels,
            at: at(ctx.span),
            help: format!(
                "choose groups that divide {cin} and {}: a common divisor such as {}",
                c.out_channels,
                gcd(cin, c.out_channels)
            ),
        });
    }
    let (oh, ow) = window(
        ctx,
        (h, w),
        c.kernel,
        c.stride,
        c.padding,
        c.dilation,
        false,
    )?;
    let out = Shape::Map {
        c: c.out_channels,
        h: oh,
        w: ow,
    };
    Ok((out, cost(c, cin, out)))
}

/// The weight's shape `[out, in/groups, kh, kw]` (PyTorch's and Burn's layout): the one
/// place it is computed, for counts, lowering, initialisation and weight loading.
pub fn weight_shape(cin: u64, cout: u64, groups: u64, kernel: [u64; 2]) -> [u64; 4] {
    [cout, cin / groups, kernel[0], kernel[1]]
}

/// The parameters of a convolution: `weight`, and `bias` when it has one.
pub fn params(
    cin: u64,
    cout: u64,
    groups: u64,
    kernel: [u64; 2],
    bias: bool,
) -> Vec<(&'static str, Vec<u64>)> {
    let mut p = vec![("weight", weight_shape(cin, cout, groups, kernel).to_vec())];
    if bias {
        p.push(("bias", vec![cout]));
    }
    p
}

pub fn cost(c: &Conv2d, cin: u64, out: Shape) -> Cost {
    let k = c.kernel[0] as u128 * c.kernel[1] as u128;
    let per_group_in = (cin / c.groups) as u128;
    let out_elems = out.numel();
    let macs = out_elems * per_group_in * k;
    Cost {
        params: super::count(&params(cin, c.out_channels, c.groups, c.kernel, c.bias)),
        buffers: 0,
        macs,
        flops: 2 * macs + if c.bias { out_elems } else { 0 },
    }
}

/// Training: the input is kept for the weight gradient (PyTorch's `ConvolutionBackward0`
/// saves it); the input gradient is a transposed convolution of as many multiply-adds, the
/// weight gradient a correlation of as many, plus the bias gradient's sum.
pub fn training(c: &Conv2d, out: Shape, cost: &Cost) -> TrainCost {
    TrainCost::products(cost.macs, if c.bias { out.numel() } else { 0 })
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ShapeCtx<'static> {
        ShapeCtx {
            name: "c",
            span: Default::default(),
            network_hw: None,
        }
    }

    fn conv(k: u64, out: u64, s: u64, p: u64, g: u64, bias: bool) -> Conv2d {
        Conv2d {
            out_channels: out,
            kernel: [k, k],
            stride: [s, s],
            padding: [p, p],
            dilation: [1, 1],
            groups: g,
            bias,
        }
    }

    #[test]
    fn resnet_stem() {
        let (s, c) = infer(
            &ctx(),
            &conv(7, 64, 2, 3, 1, false),
            Shape::Map {
                c: 3,
                h: 224,
                w: 224,
            },
        )
        .unwrap();
        assert_eq!(
            s,
            Shape::Map {
                c: 64,
                h: 112,
                w: 112
            }
        );
        assert_eq!(c.params, 9408);
        assert_eq!(c.macs, 118_013_952);
        assert_eq!(c.flops, 2 * 118_013_952);
    }

    #[test]
    fn grouped_and_biased() {
        // depthwise 3x3 over 32 channels with bias: 32*1*9 + 32 parameters
        let (_, c) = infer(
            &ctx(),
            &conv(3, 32, 1, 1, 32, true),
            Shape::Map { c: 32, h: 8, w: 8 },
        )
        .unwrap();
        assert_eq!(c.params, 32 * 9 + 32);
        assert_eq!(c.macs, 32 * 64 * 9);
    }

    #[test]
    fn groups_must_divide() {
        let e = infer(
            &ctx(),
            &conv(3, 30, 1, 1, 4, false),
            Shape::Map { c: 32, h: 8, w: 8 },
        )
        .unwrap_err();
        assert!(matches!(e, CompileError::Groups { .. }));
    }

    fn build_with(named: &[(&str, &str)], d: &LayerDefaults) -> Vec<Op> {
        use crate::layers::args::ArgVal;
        let mut a = Args {
            layer: "conv".into(),
            positional: vec![
                (ArgVal::Dims(vec![3, 3]), Default::default()),
                (ArgVal::Int(8), Default::default()),
            ],
            named: named
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        ArgVal::Word(v.to_string()),
                        Default::default(),
                    )
                })
                .collect(),
            ..Args::default()
        };
        let ops = build(&mut a, d).unwrap();
        assert!(a.errors.is_empty());
        ops
    }

    fn kinds(ops: &[Op]) -> Vec<&'static str> {
        ops.iter().map(Op::kind).collect()
    }

    #[test]
    fn order_pre_puts_norm_and_activation_first() {
        let d = LayerDefaults::default();
        assert_eq!(kinds(&build_with(&[], &d)), ["conv", "bn", "relu"]);
        assert_eq!(
            kinds(&build_with(&[("order", "pre")], &d)),
            ["bn", "relu", "conv"]
        );
        let pre = LayerDefaults { pre: true, ..d };
        let ops = build_with(&[("act", "relu6")], &pre);
        assert_eq!(kinds(&ops), ["bn", "relu6", "conv"]);
        // `bias auto` looks at the norm only: BN is on, so the conv has no bias.
        assert!(matches!(ops[2], Op::Conv2d(Conv2d { bias: false, .. })));
        assert_eq!(
            kinds(&build_with(&[("order", "post")], &pre)),
            ["conv", "bn", "relu"]
        );
    }

    #[test]
    fn conv_after_flatten_is_an_error() {
        let e = infer(&ctx(), &conv(3, 30, 1, 1, 1, false), Shape::Flat { n: 10 }).unwrap_err();
        assert!(matches!(e, CompileError::NeedsMap { .. }));
    }
}
