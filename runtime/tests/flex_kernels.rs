//! archc's own CPU kernels on burn-flex (runtime/src/flex/, feature `flex`, on by default)
//! against Burn's generic path on the same inputs, with autodiff: the checks of `kernels/mod.rs`
//! (shared with LibTorch's fused kernels, `fused.rs`), plus the forward without autodiff (what
//! evaluation runs) and where the kernels apply. (The kernels against the definition of a
//! convolution, in f64, and their gradients entry by entry: `runtime/src/flex/kernels.rs`.)
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
        flex::batch_norm_train(x, gamma, beta, epsilon)
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
