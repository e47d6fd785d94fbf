//! archc's own CPU kernels on burn-flex (runtime/src/flex/, feature `flex`, on by default)
//! against Burn's generic path on the same inputs, with autodiff: the checks of `kernels/mod.rs`
//! (shared with LibTorch's fused kernels, `fused.rs`), plus the forward without autodiff (what
//! evaluation runs), the pools, and where the kernels apply. (The kernels against the definition of a
//! convolution, in f64, and their gradients entry by entry: `kernels/src/lib.rs`, the `archc-kernels` crate.)
#![cfg(feature = "flex")]

mod kernels;

use archc_runtime::{flex, Device};
use burn::nn::conv::Conv2d;
use burn::tensor::module::BatchNormTrainOutput;
use burn::tensor::{DType, FloatDType, Tensor};
use kernels::{close, conv, data, Kernels};

struct Flex;

impl Kernels for Flex {
    fn device() -> Device {
        Device::flex().autodiff()
    }
    fn batch_norm_train<const D: usize>(
        x: Tensor<D>,
        gamma: Tensor<1>,
        beta: Tensor<1>,
        epsilon: f64,
    ) -> BatchNormTrainOutput<D> {
        flex::batch_norm_train(x, gamma, beta, epsilon, false)
    }
    fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
        flex::conv2d(conv, x)
    }
    fn conv2d_args(conv: &Conv2d) -> bool {
        flex::conv2d_args(conv).is_some()
    }
    fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
        flex::relu(x)
    }
}

#[test]
fn batch_norm_4d_agrees_with_burns() {
    kernels::batch_norm_agrees::<Flex, 4>([8, 6, 5, 7]);
}

#[test]
fn batch_norm_2d_agrees_with_burns() {
    kernels::batch_norm_agrees::<Flex, 2>([16, 10]);
}

#[test]
fn running_statistics_stay_pytorchs() {
    kernels::running_statistics_stay_pytorchs::<Flex>(None);
}

#[test]
fn conv2d_agrees_with_burns() {
    kernels::conv2d_agrees_with_burns::<Flex>();
}

#[test]
fn conv2d_without_some_gradients() {
    kernels::conv2d_without_some_gradients::<Flex>();
}

#[test]
fn asymmetric_padding_is_left_to_burn() {
    kernels::asymmetric_padding_is_left_to_burn::<Flex>();
}

#[test]
fn relu_agrees_with_burns_exactly() {
    kernels::relu_agrees_with_burns_exactly::<Flex>();
}

/// Without autodiff (evaluation), the convolution and ReLU run on archc's kernels too and equal
/// Burn's, batch 1 included (where the GEMM, not the batch, is split over the threads).
#[test]
fn the_forward_without_autodiff_agrees() {
    let device = Device::flex();
    for (n, groups, stride) in [(1, 1, 1), (5, 1, 2), (3, 4, 1)] {
        let x = data([n, 8, 13, 12], -1.0, 1.0, 41, &device);
        let w = data([8, 8 / groups, 3, 3], -0.5, 0.5, 42, &device);
        let b = data([8], -0.5, 0.5, 43, &device);
        let m = conv(w, Some(b), stride, 1, 1, groups);
        close(
            &format!("forward, batch {n}, groups {groups}, stride {stride}"),
            flex::conv2d(&m, x.clone()),
            m.forward(x.clone()),
        );
        assert_eq!(
            kernels::values(flex::relu(x.clone())),
            kernels::values(burn::tensor::activation::relu(x)),
        );
    }
}

/// Batch norm and ReLU as one operation (what a network runs for a batch norm whose only
/// reader is a ReLU) against Burn's batch norm followed by Burn's ReLU: output, batch
/// statistics, and the gradients of the input, gamma and beta.
#[test]
fn batch_norm_then_relu_agrees_with_burns() {
    let device = Flex::device();
    let shape = [6, 5, 4, 3];
    let run = |ours: bool| {
        // Centred near zero, so that about half the outputs are cut by the ReLU.
        let x = data(shape, -2.0, 2.0, 61, &device).require_grad();
        let gamma = data([5], 0.5, 1.5, 62, &device).require_grad();
        let beta = data([5], -0.5, 0.5, 63, &device).require_grad();
        let up = data(shape, -1.0, 1.0, 64, &device);
        let (y, mean, var) = if ours {
            let o = flex::batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5, true);
            (o.output, o.mean, o.variance)
        } else {
            let o = burn::tensor::module::batch_norm_train(
                x.clone(),
                gamma.clone(),
                beta.clone(),
                1e-5,
            );
            (burn::tensor::activation::relu(o.output), o.mean, o.variance)
        };
        let grads = (y.clone() * up).sum().backward();
        (
            y.inner(),
            mean.inner(),
            var.inner(),
            x.grad(&grads).expect("x grad"),
            gamma.grad(&grads).expect("gamma grad"),
            beta.grad(&grads).expect("beta grad"),
        )
    };
    let (y1, m1, v1, gx1, gg1, gb1) = run(true);
    let (y2, m2, v2, gx2, gg2, gb2) = run(false);
    let zeros = kernels::values(y1.clone())
        .iter()
        .filter(|&&v| v == 0.0)
        .count();
    assert!(
        zeros > 50 && zeros < 310,
        "{zeros} of 360 outputs cut: the ReLU must matter"
    );
    let worst = [
        close("output", y1, y2),
        close("mean", m1, m2),
        close("variance", v1, v2),
        close("x grad", gx1, gx2),
        close("gamma grad", gg1, gg2),
        close("beta grad", gb1, gb2),
    ];
    eprintln!("batch norm + relu: largest differences {worst:?}");
}

/// Evaluation-mode batch norm (with and without the ReLU after it) in one pass against Burn's
/// `BatchNorm::forward`, with running statistics away from 0 and 1.
#[test]
fn batch_norm_in_evaluation_agrees_with_burns() {
    use burn::module::{Param, RunningState};
    use burn::nn::{BatchNorm, BatchNormConfig};
    let device = Device::flex();
    let mut bn: BatchNorm = BatchNormConfig::new(4).init(&device);
    bn.gamma = Param::from_tensor(data([4], 0.5, 1.5, 71, &device));
    bn.beta = Param::from_tensor(data([4], -0.5, 0.5, 72, &device));
    bn.running_mean = RunningState::new(data([4], -1.0, 1.0, 73, &device));
    bn.running_var = RunningState::new(data([4], 0.2, 3.0, 74, &device));
    let x: Tensor<4> = data([3, 4, 5, 6], -3.0, 3.0, 75, &device);
    let burn = bn.forward(x.clone());
    close(
        "evaluation",
        flex::batch_norm_eval(&bn, x.clone(), false),
        burn.clone(),
    );
    close(
        "evaluation + relu",
        flex::batch_norm_eval(&bn, x, true),
        burn::tensor::activation::relu(burn),
    );
}

/// They apply on burn-flex, with or without autodiff, to f32 tensors only.
#[test]
fn where_they_apply() {
    assert!(flex::applies(&Device::flex(), DType::F32));
    assert!(flex::applies(&Device::flex().autodiff(), DType::F32));
    assert!(!flex::applies(&Device::flex(), DType::F64));
    let x: Tensor<2> = data([2, 2], -1.0, 1.0, 51, &Device::flex());
    assert!(!flex::applies(
        &Device::flex(),
        x.cast(FloatDType::F16).dtype()
    ));
}

/// Output and input gradient of a pool, archc's kernel or Burn's module, for a random upstream
/// gradient.
fn pool_run(
    x: Tensor<4>,
    up: impl Fn([usize; 4]) -> Tensor<4>,
    pool: impl Fn(Tensor<4>) -> Tensor<4>,
) -> (Tensor<4>, Tensor<4>) {
    let x = x.require_grad();
    let y = pool(x.clone());
    let grads = (y.clone() * up(y.dims())).sum().backward();
    (y.inner(), x.grad(&grads).expect("x grad"))
}

/// The windows the pool tests run: (input, kernel, stride, padding, ceil_mode): ResNet's stem
/// pool, GoogLeNet's (ceil mode), DenseNet's transition, Inception's 3x3 stride-1 pools, and
/// odd sizes where a ceil-mode window hangs over the padded input's end.
fn pool_cases() -> Vec<([usize; 4], usize, usize, usize, bool)> {
    vec![
        ([2, 3, 16, 16], 3, 2, 1, false),
        ([2, 3, 15, 15], 3, 2, 0, true),
        ([3, 4, 8, 8], 2, 2, 0, false),
        ([2, 3, 7, 9], 3, 1, 1, false),
        ([2, 2, 10, 11], 3, 2, 1, true),
        ([1, 2, 6, 5], 2, 3, 1, true),
    ]
}

fn pool_args(k: usize, s: usize, p: usize, ceil: bool, count_include_pad: bool) -> flex::PoolArgs {
    flex::PoolArgs {
        kernel: [k, k],
        stride: [s, s],
        padding: [p, p],
        ceil_mode: ceil,
        count_include_pad,
    }
}

/// Max pooling against Burn's `MaxPool2d` (burn-flex's own pool), outputs and input gradients
/// identical: on random inputs, and after a ReLU, where most windows hold ties of zeros and the
/// gradient must go where Burn's goes (the first).
#[test]
fn max_pool_equals_burns() {
    use burn::nn::pool::MaxPool2dConfig;
    use burn::nn::PaddingConfig2d;
    let device = Flex::device();
    for (i, (shape, k, s, p, ceil)) in pool_cases().into_iter().enumerate() {
        let m = MaxPool2dConfig::new([k, k])
            .with_strides([s, s])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .with_ceil_mode(ceil)
            .init();
        for relu in [false, true] {
            let mut x = data(shape, -1.0, 1.0, 80 + i as u64, &device);
            if relu {
                x = burn::tensor::activation::relu(x - 0.7);
            }
            let up = |d| data(d, -1.0, 1.0, 90 + i as u64, &device);
            let (y1, g1) = pool_run(x.clone(), up, |x| {
                flex::max_pool2d(x, pool_args(k, s, p, ceil, true))
            });
            let (y2, g2) = pool_run(x, up, |x| m.forward(x));
            let what = format!("{shape:?} k{k} s{s} p{p} ceil {ceil} relu {relu}");
            assert_eq!(y1.dims(), y2.dims(), "{what}");
            assert_eq!(kernels::values(y1), kernels::values(y2), "{what}: output");
            assert_eq!(kernels::values(g1), kernels::values(g2), "{what}: gradient");
        }
    }
}

/// Average pooling against Burn's `AvgPool2d`, with and without the padding in the divisor.
#[test]
fn avg_pool_agrees_with_burns() {
    use burn::nn::pool::AvgPool2dConfig;
    use burn::nn::PaddingConfig2d;
    let device = Flex::device();
    for (i, (shape, k, s, p, ceil)) in pool_cases().into_iter().enumerate() {
        for include in [true, false] {
            let m = AvgPool2dConfig::new([k, k])
                .with_strides([s, s])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .with_count_include_pad(include)
                .with_ceil_mode(ceil)
                .init();
            let x = data(shape, -1.0, 1.0, 100 + i as u64, &device);
            let up = |d| data(d, -1.0, 1.0, 110 + i as u64, &device);
            let (y1, g1) = pool_run(x.clone(), up, |x| {
                flex::avg_pool2d(x, pool_args(k, s, p, ceil, include))
            });
            let (y2, g2) = pool_run(x, up, |x| m.forward(x));
            let what = format!("{shape:?} k{k} s{s} p{p} ceil {ceil} include {include}");
            close(&format!("{what}: output"), y1, y2);
            close(&format!("{what}: gradient"), g1, g2);
        }
    }
}

/// Adaptive average pooling against Burn's `AdaptiveAvgPool2d`: the global pool of a head, bins
/// that divide the input, bins that overlap, and more bins than rows.
#[test]
fn adaptive_avg_pool_agrees_with_burns() {
    use burn::nn::pool::AdaptiveAvgPool2dConfig;
    let device = Flex::device();
    for (i, (shape, out)) in [
        ([4, 8, 7, 7], [1, 1]),
        ([2, 3, 8, 6], [2, 3]),
        ([2, 3, 5, 7], [3, 4]),
        ([1, 2, 3, 3], [5, 4]),
    ]
    .into_iter()
    .enumerate()
    {
        let m = AdaptiveAvgPool2dConfig::new(out).init();
        let x = data(shape, -1.0, 1.0, 120 + i as u64, &device);
        let up = |d| data(d, -1.0, 1.0, 130 + i as u64, &device);
        let (y1, g1) = pool_run(x.clone(), up, |x| flex::adaptive_avg_pool2d(x, out));
        let (y2, g2) = pool_run(x, up, |x| m.forward(x));
        close(&format!("{shape:?} to {out:?}: output"), y1, y2);
        close(&format!("{shape:?} to {out:?}: gradient"), g1, g2);
    }
}

/// The pools without autodiff (evaluation) equal Burn's too.
#[test]
fn pools_without_autodiff_agree() {
    use burn::nn::pool::{AdaptiveAvgPool2dConfig, AvgPool2dConfig, MaxPool2dConfig};
    use burn::nn::PaddingConfig2d;
    let device = Device::flex();
    let x = data([3, 4, 11, 11], -1.0, 1.0, 140, &device);
    let pad = PaddingConfig2d::Explicit(1, 1, 1, 1);
    let max = MaxPool2dConfig::new([3, 3])
        .with_strides([2, 2])
        .with_padding(pad.clone())
        .init();
    assert_eq!(
        kernels::values(flex::max_pool2d(x.clone(), pool_args(3, 2, 1, false, true))),
        kernels::values(max.forward(x.clone())),
    );
    let avg = AvgPool2dConfig::new([3, 3])
        .with_strides([2, 2])
        .with_padding(pad)
        .with_ceil_mode(true)
        .init();
    close(
        "avg",
        flex::avg_pool2d(x.clone(), pool_args(3, 2, 1, true, true)),
        avg.forward(x.clone()),
    );
    close(
        "adaptive",
        flex::adaptive_avg_pool2d(x.clone(), [1, 1]),
        AdaptiveAvgPool2dConfig::new([1, 1]).init().forward(x),
    );
}
