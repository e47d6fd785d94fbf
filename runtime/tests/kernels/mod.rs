//! archc's own kernels against Burn's generic path on the same inputs, with autodiff: forward
//! outputs, gradients (input, gamma, beta; input, weight, bias for convolutions) and batch norm's
//! running statistics (which stay PyTorch's: the unbiased batch variance). Shared by
//! `fused.rs` (LibTorch's kernels, feature `tch`) and `flex_kernels.rs` (archc's on burn-flex):
//! each names its kernels through [`Kernels`].
//!
//! Tolerance: every difference is at most 1e-4 of the larger magnitude of the two tensors
//! (at least 1): both are float32 computations of the same formulas in a different order (float
//! rounding is about 1e-7 relative per operation; the reductions here run over up to ~2,000
//! values).
#![allow(dead_code)]

use archc_runtime::{batch_norm, Device};
use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::module::BatchNormTrainOutput;
use burn::tensor::{Distribution, Tensor};

/// The kernels under test and the device they run on.
pub trait Kernels {
    /// The autodiff device the kernels apply to.
    fn device() -> Device;
    fn batch_norm_train<const D: usize>(
        x: Tensor<D>,
        gamma: Tensor<1>,
        beta: Tensor<1>,
        epsilon: f64,
    ) -> BatchNormTrainOutput<D>;
    fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4>;
    fn conv2d_args(conv: &Conv2d) -> bool;
    fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D>;
}

pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32")
}

/// Asserts that `a` and `b` agree within 1e-4 of their scale; returns the largest difference.
#[track_caller]
pub fn close<const D: usize>(what: &str, a: Tensor<D>, b: Tensor<D>) -> f32 {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    let (a, b) = (values(a), values(b));
    let scale = a.iter().chain(&b).fold(1.0f32, |m, v| m.max(v.abs()));
    let diff = a
        .iter()
        .zip(&b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        diff <= 1e-4 * scale,
        "{what}: differ by {diff} (scale {scale})"
    );
    diff
}

fn random<const D: usize>(shape: [usize; D], lo: f64, hi: f64, device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Uniform(lo, hi), device)
}

/// Data made on burn-flex from a seed and copied to `device`, so that every device gets the
/// same numbers.
pub fn data<const D: usize>(
    shape: [usize; D],
    lo: f64,
    hi: f64,
    seed: u64,
    device: &Device,
) -> Tensor<D> {
    let flex = Device::flex();
    // burn-flex has one random generator per process and the tests run on parallel threads:
    // seeding and drawing must not interleave with another test's, or the two runs a test
    // compares get different inputs.
    static FLEX_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let drawn = {
        let _only_us = FLEX_RNG.lock().unwrap_or_else(|e| e.into_inner());
        flex.seed(seed);
        random(shape, lo, hi, &flex).into_data()
    };
    Tensor::from_data(drawn, device)
}

/// Output, batch statistics and gradients of batch norm, archc's kernels or Burn's, for a random
/// upstream gradient.
#[allow(clippy::type_complexity)]
fn batch_norm_run<K: Kernels, const D: usize>(
    ours: bool,
    shape: [usize; D],
) -> (
    Tensor<D>,
    Tensor<1>,
    Tensor<1>,
    Tensor<D>,
    Tensor<1>,
    Tensor<1>,
) {
    let device = K::device();
    let c = shape[1];
    // Far from zero mean and unit variance, as activations are.
    let x = data(shape, -3.0, 5.0, 1, &device).require_grad();
    let gamma = data([c], 0.5, 1.5, 2, &device).require_grad();
    let beta = data([c], -0.5, 0.5, 3, &device).require_grad();
    let up = data(shape, -1.0, 1.0, 4, &device);
    let out = if ours {
        K::batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5)
    } else {
        burn::tensor::module::batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5)
    };
    let grads = (out.output.clone() * up).sum().backward();
    (
        out.output.inner(),
        out.mean.inner(),
        out.variance.inner(),
        x.grad(&grads).expect("x grad"),
        gamma.grad(&grads).expect("gamma grad"),
        beta.grad(&grads).expect("beta grad"),
    )
}

pub fn batch_norm_agrees<K: Kernels, const D: usize>(shape: [usize; D]) {
    let (o1, m1, v1, gx1, gg1, gb1) = batch_norm_run::<K, D>(true, shape);
    let (o2, m2, v2, gx2, gg2, gb2) = batch_norm_run::<K, D>(false, shape);
    let worst = [
        close("output", o1, o2),
        close("mean", m1, m2),
        close("variance", v1, v2),
        close("x grad", gx1, gx2),
        close("gamma grad", gg1, gg2),
        close("beta grad", gb1, gb2),
    ];
    eprintln!("batch norm {shape:?}: largest differences {worst:?}");
}

/// archc's batch norm layer on `K`'s device: the running statistics are PyTorch's (momentum 0.1
/// towards the batch mean and the *unbiased* batch variance), and the output and statistics
/// equal the layer's on `other` (a device where another path runs), if given.
pub fn running_statistics_stay_pytorchs<K: Kernels>(other: Option<Device>) {
    let shape = [4, 3, 5, 5];
    let n = (4 * 5 * 5) as f32;
    let run = |device: Device| {
        let bn: BatchNorm = BatchNormConfig::new(3).init(&device);
        let x = data(shape, -2.0, 6.0, 7, &device);
        let y = batch_norm(&bn, x.clone());
        let mean = x.clone().mean_dims(&[0, 2, 3]).reshape([3]);
        let var = (x - mean.clone().reshape([1, 3, 1, 1]))
            .powi_scalar(2)
            .sum_dims(&[0, 2, 3])
            .reshape([3])
            / (n - 1.0);
        (
            y.inner(),
            bn.running_mean.value_sync(),
            bn.running_var.value_sync(),
            mean.inner() * 0.1,
            var.inner() * 0.1 + 0.9,
        )
    };
    let (y1, rm1, rv1, want_mean, want_var) = run(K::device());
    close("running mean vs PyTorch's formula", rm1.clone(), want_mean);
    close("running var vs PyTorch's formula", rv1.clone(), want_var);
    if let Some(other) = other {
        let (y2, rm2, rv2, _, _) = run(other);
        close("output", y1, y2);
        close("running mean, against the other device", rm1, rm2);
        close("running var, against the other device", rv1, rv2);
    }
}

pub fn conv(
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    stride: usize,
    padding: usize,
    dilation: usize,
    groups: usize,
) -> Conv2d {
    let [_, _, kh, kw] = weight.dims();
    Conv2d {
        weight: Param::from_tensor(weight),
        bias: bias.map(Param::from_tensor),
        stride: [stride, stride],
        kernel_size: [kh, kw],
        dilation: [dilation, dilation],
        groups,
        padding: PaddingConfig2d::Explicit(padding, padding, padding, padding),
    }
}

/// A convolution of kernel `k` from `cin` to `cout` channels with (stride, padding, dilation,
/// groups, bias): archc's kernels against Burn's `Conv2d`.
#[allow(clippy::too_many_arguments)]
pub fn conv_agrees<K: Kernels>(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    groups: usize,
    bias: bool,
) {
    let device = K::device();
    let run = |ours: bool| {
        let x = data([3, cin, 11, 9], -1.0, 2.0, 11, &device).require_grad();
        let w = data([cout, cin / groups, k, k], -0.5, 0.5, 12, &device).require_grad();
        let b = bias.then(|| data([cout], -0.5, 0.5, 13, &device).require_grad());
        let m = conv(w.clone(), b.clone(), stride, padding, dilation, groups);
        let y = if ours {
            K::conv2d(&m, x.clone())
        } else {
            m.forward(x.clone())
        };
        let up = data(y.dims(), -1.0, 1.0, 14, &device);
        let grads = (y.clone() * up).sum().backward();
        (
            y.inner(),
            x.grad(&grads).expect("x grad"),
            w.grad(&grads).expect("weight grad"),
            b.map(|b| b.grad(&grads).expect("bias grad")),
        )
    };
    let (y1, gx1, gw1, gb1) = run(true);
    let (y2, gx2, gw2, gb2) = run(false);
    let what = format!(
        "conv {cin}->{cout} k {k} stride {stride} padding {padding} dilation {dilation} groups {groups} bias {bias}"
    );
    let mut worst = vec![
        close(&format!("{what}: output"), y1, y2),
        close(&format!("{what}: x grad"), gx1, gx2),
        close(&format!("{what}: weight grad"), gw1, gw2),
    ];
    if let (Some(a), Some(b)) = (gb1, gb2) {
        worst.push(close(&format!("{what}: bias grad"), a, b));
    }
    eprintln!("{what}: largest differences {worst:?}");
}

/// The cases every set of kernels is checked on: strides 1 and 2, padding 0 to 2, dilation 2,
/// groups 2, depthwise, 1x1 (with stride 1 and 2), bias or not.
pub fn conv2d_agrees_with_burns<K: Kernels>() {
    conv_agrees::<K>(6, 4, 3, 1, 1, 1, 1, false);
    conv_agrees::<K>(6, 4, 3, 2, 1, 1, 1, false);
    conv_agrees::<K>(6, 4, 3, 1, 0, 1, 1, true);
    conv_agrees::<K>(6, 4, 3, 2, 2, 2, 1, true);
    conv_agrees::<K>(6, 4, 3, 1, 1, 1, 2, false);
    conv_agrees::<K>(6, 12, 3, 2, 1, 1, 6, true); // depthwise, channel multiplier 2
    conv_agrees::<K>(6, 6, 3, 1, 1, 1, 6, false); // depthwise
    conv_agrees::<K>(6, 5, 1, 1, 0, 1, 1, false); // pointwise
    conv_agrees::<K>(6, 5, 1, 2, 0, 1, 1, true); // 1x1 with stride 2 (a projection shortcut)
    conv_agrees::<K>(3, 4, 7, 2, 3, 1, 1, false); // a ResNet stem
}

/// A convolution whose input needs no gradient (the first layer: the images) gets only the
/// weight's, and a frozen weight only the input's.
pub fn conv2d_without_some_gradients<K: Kernels>() {
    let device = K::device();
    let x = data([2, 3, 8, 8], -1.0, 1.0, 21, &device);
    let w = data([5, 3, 3, 3], -0.5, 0.5, 22, &device).require_grad();
    let m = conv(w.clone(), None, 1, 1, 1, 1);
    let y = K::conv2d(&m, x.clone());
    let grads = y.sum().backward();
    assert!(w.grad(&grads).is_some());
    assert!(x.grad(&grads).is_none());

    let x = x.require_grad();
    let w = data([5, 3, 3, 3], -0.5, 0.5, 22, &device);
    let m = conv(w, None, 1, 1, 1, 1);
    let y = K::conv2d(&m, x.clone());
    let grads = y.sum().backward();
    assert!(x.grad(&grads).is_some());
}

/// Asymmetric and `Same` padding are left to Burn's `Conv2d`; archc's (explicit, symmetric) and
/// valid padding are not.
pub fn asymmetric_padding_is_left_to_burn<K: Kernels>() {
    let device = K::device();
    let w = data([2, 3, 3, 3], -0.5, 0.5, 31, &device);
    let mut m = conv(w, None, 1, 1, 1, 1);
    assert!(K::conv2d_args(&m));
    m.padding = PaddingConfig2d::Valid;
    assert!(K::conv2d_args(&m));
    m.padding = PaddingConfig2d::Explicit(0, 1, 1, 0);
    assert!(!K::conv2d_args(&m));
    m.padding = PaddingConfig2d::Same;
    assert!(!K::conv2d_args(&m));
    let x = data([1, 3, 6, 6], -1.0, 1.0, 32, &device);
    close("same padding", K::conv2d(&m, x.clone()), m.forward(x));
}

/// ReLU against Burn's `relu` (a mask and `masked_fill` backward). Both pass each value or zero
/// through, so they agree exactly, including at inputs that are exactly 0 (gradient 0 in both).
pub fn relu_agrees_with_burns_exactly<K: Kernels>() {
    let device = K::device();
    let run = |ours: bool| {
        // Values on a grid of 0.25 so that some are exactly 0.
        let x = (data([4, 3, 5, 5], -4.0, 4.0, 11, &device) * 4.0)
            .round()
            .div_scalar(4.0)
            .require_grad();
        let up = data([4, 3, 5, 5], -1.0, 1.0, 12, &device);
        let y = if ours {
            K::relu(x.clone())
        } else {
            burn::tensor::activation::relu(x.clone())
        };
        let grads = (y.clone() * up).sum().backward();
        let gx = x.grad(&grads).expect("input gradient");
        (values(y.inner()), values(gx), values(x.inner()))
    };
    let (y_f, g_f, x) = run(true);
    let (y_b, g_b, _) = run(false);
    assert!(x.contains(&0.0), "the test needs exact zeros");
    assert!(x.iter().any(|&v| v < 0.0) && x.iter().any(|&v| v > 0.0));
    assert_eq!(y_f, y_b, "forward");
    assert_eq!(g_f, g_b, "gradient");
    assert!(g_f.iter().any(|&v| v != 0.0));
}
