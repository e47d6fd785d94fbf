//! LibTorch's fused batch norm, convolution and ReLU (runtime/src/fused.rs, feature `tch`)
//! against Burn's generic path on the same inputs, on LibTorch CPU with autodiff: the checks of
//! `kernels/mod.rs` (shared with archc's burn-flex kernels, `flex_kernels.rs`).
#![cfg(feature = "tch")]

mod kernels;

use archc_runtime::{fused, parse_device, Device};
use burn::nn::conv::Conv2d;
use burn::tensor::module::BatchNormTrainOutput;
use burn::tensor::Tensor;
use kernels::Kernels;

struct LibTorch;

impl Kernels for LibTorch {
    fn device() -> Device {
        parse_device("libtorch-cpu")
            .expect("tch feature")
            .autodiff()
    }
    fn batch_norm_train<const D: usize>(
        x: Tensor<D>,
        gamma: Tensor<1>,
        beta: Tensor<1>,
        epsilon: f64,
    ) -> BatchNormTrainOutput<D> {
        fused::batch_norm_train(x, gamma, beta, epsilon)
    }
    fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
        fused::conv2d(conv, x)
    }
    fn conv2d_args(conv: &Conv2d) -> bool {
        fused::conv2d_args(conv).is_some()
    }
    fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
        fused::relu(x)
    }
}

#[test]
fn batch_norm_4d_agrees_with_burns() {
    kernels::batch_norm_agrees::<LibTorch, 4>([8, 6, 5, 7]);
}

#[test]
fn batch_norm_2d_agrees_with_burns() {
    kernels::batch_norm_agrees::<LibTorch, 2>([16, 10]);
}

/// The running statistics on LibTorch equal PyTorch's formula and burn-flex's (archc's kernels
/// there, `flex_kernels.rs`).
#[test]
fn running_statistics_stay_pytorchs() {
    kernels::running_statistics_stay_pytorchs::<LibTorch>(Some(Device::flex().autodiff()));
}

#[test]
fn conv2d_agrees_with_burns() {
    kernels::conv2d_agrees_with_burns::<LibTorch>();
}

#[test]
fn conv2d_without_some_gradients() {
    kernels::conv2d_without_some_gradients::<LibTorch>();
}

#[test]
fn asymmetric_padding_is_left_to_burn() {
    kernels::asymmetric_padding_is_left_to_burn::<LibTorch>();
}

#[test]
fn relu_agrees_with_burns_exactly() {
    kernels::relu_agrees_with_burns_exactly::<LibTorch>();
}

/// The fused operations apply on a LibTorch autodiff device only.
#[test]
fn only_libtorch_training_uses_them() {
    assert!(fused::is_libtorch_training(&LibTorch::device()));
    assert!(!fused::is_libtorch_training(
        &parse_device("libtorch-cpu").unwrap()
    ));
    assert!(!fused::is_libtorch_training(&Device::flex().autodiff()));
    assert!(!fused::is_libtorch_training(&Device::flex()));
}
