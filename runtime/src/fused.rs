//! Batch norm and 2-d convolution training with LibTorch's own kernels (cargo feature `tch`).
//!
//! burn-tch 0.22.1 implements neither `batch_norm_train` nor `conv2d_weight_backward`: on
//! LibTorch, Burn's generic versions run, built from many small operations (transposes,
//! reshapes, means, elementwise ops) where PyTorch calls one kernel each. This module adds the
//! two operations through Burn's backend-extension mechanism (`#[backend_extension]`, Burn's
//! `extension` feature): on a LibTorch autodiff device, [`batch_norm_train`] runs
//! `at::native_batch_norm` forward and `at::native_batch_norm_backward` backward, and
//! [`conv2d`] runs `at::conv2d` forward and one `at::convolution_backward` for the input,
//! weight and bias gradients, as PyTorch's autograd does. The backward functions are not bound
//! by tch 0.22, so `csrc/libtorch_fused.cpp` (compiled by build.rs) wraps them.
//!
//! [`is_libtorch_training`] says when to use them; every other device keeps Burn's path
//! (`ops/norm.rs`, `ops/conv.rs`). The results agree with Burn's path within float rounding (tests/fused.rs).

// burn-tch (LibTorch, TchTensor) is deprecated in Burn 0.22 but still supported; the `tch`
// feature is built on it (as device.rs).
#![allow(deprecated)]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::libtorch::TchTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, DispatchDevice, LibTorch};
use burn::nn::conv::Conv2d;
use burn::tensor::module::BatchNormTrainOutput;
use burn::tensor::{Device, Tensor};

pub use crate::ops::conv::{conv2d_args, Conv2dArgs};

/// True when `device` is LibTorch with autodiff: where [`batch_norm_train`] and [`conv2d`] apply.
pub fn is_libtorch_training(device: &Device) -> bool {
    device.is_autodiff()
        && matches!(
            device.clone().inner().as_dispatch(),
            DispatchDevice::LibTorch(_)
        )
}

/// The fused operations. Only LibTorch implements them: call them through [`batch_norm_train`]
/// and [`conv2d`], which check the device.
#[backend_extension(LibTorch, Autodiff)]
pub trait FusedOps: Backend {
    /// Training-mode batch norm: the output, the batch mean and the biased batch variance.
    fn fused_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// A 2-d convolution with symmetric padding, without bias.
    fn fused_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        args: Conv2dArgs,
    ) -> FloatTensor<Self>;

    /// The same with a bias (the macro does not route `Option` tensor inputs: two operations).
    fn fused_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        args: Conv2dArgs,
    ) -> FloatTensor<Self>;

    /// ReLU, whose backward is LibTorch's `threshold_backward` (one pass, as PyTorch's); Burn's
    /// generic backward builds a mask and runs `masked_fill`, which LibTorch does not vectorise
    /// (7% of a cifar_resnet20 step's samples on one thread, against 1.2% for PyTorch's).
    fn fused_relu(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The strides of `x`, as a 1-d f64 tensor (see [`strides`]).
    fn fused_strides(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// `relu(x)` with LibTorch's kernels forward and backward. Panics on a device other than
/// LibTorch: check [`is_libtorch_training`] first.
pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_relu(x.into_dispatch()))
}

/// Burn's `batch_norm_train` on LibTorch's kernels: same contract (the output; the batch mean and
/// biased variance, detached). Panics on a device other than LibTorch: check
/// [`is_libtorch_training`] first.
pub fn batch_norm_train<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> BatchNormTrainOutput<D> {
    let (output, mean, variance) = <Dispatch as FusedOps>::fused_batch_norm_train(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
    );
    BatchNormTrainOutput {
        output: Tensor::from_dispatch(output),
        mean: Tensor::from_dispatch(mean),
        variance: Tensor::from_dispatch(variance),
    }
}

/// `conv.forward(x)`, on LibTorch's kernels (forward and backward) where [`conv2d_args`] allows,
/// else Burn's `Conv2d::forward`. Panics on a device other than LibTorch: check
/// [`is_libtorch_training`] first.
///
/// Under a `bf16`/`f16` [policy](crate::precision) the input, weight and bias are cast to that
/// type and the output back to f32 (Burn's casts: in the autodiff graph); under channels-last the
/// input and weight are laid out NHWC (on LibTorch's kernels only, not on Burn's path).
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let low = crate::precision::policy().precision.dtype();
    let x = match low {
        Some(dt) => x.cast(dt),
        None => x,
    };
    let Some(args) = conv2d_args(conv) else {
        let out = match low {
            Some(dt) => {
                let mut c = conv.clone();
                c.weight = c.weight.map(|w| w.cast(dt));
                c.bias = c.bias.map(|b| b.map(|b| b.cast(dt)));
                c.forward(x)
            }
            None => conv.forward(x),
        };
        return to_f32(out, low);
    };
    let cast = |t: Tensor<4>| match low {
        Some(dt) => t.cast(dt),
        None => t,
    };
    let (x, weight) = (x.into_dispatch(), cast(conv.weight.val()).into_dispatch());
    let out = match &conv.bias {
        None => <Dispatch as FusedOps>::fused_conv2d(x, weight, args),
        Some(b) => {
            let bias = match low {
                Some(dt) => b.val().cast(dt),
                None => b.val(),
            };
            <Dispatch as FusedOps>::fused_conv2d_bias(x, weight, bias.into_dispatch(), args)
        }
    };
    to_f32(Tensor::from_dispatch(out), low)
}

fn to_f32<const D: usize>(t: Tensor<D>, low: Option<burn::tensor::FloatDType>) -> Tensor<D> {
    match low {
        Some(_) => t.cast(burn::tensor::FloatDType::F32),
        None => t,
    }
}

/// A linear layer in training on LibTorch: Burn's `Linear::forward`, in the low type of a
/// `bf16`/`f16` [policy](crate::precision) (input, weight and bias cast to it, the output cast
/// back to f32). Panics on a device other than LibTorch: check [`is_libtorch_training`] first.
pub fn linear<const D: usize>(m: &burn::nn::Linear, x: Tensor<D>) -> Tensor<D> {
    let Some(dt) = crate::precision::policy().precision.dtype() else {
        return m.forward(x);
    };
    let out = burn::tensor::module::linear(
        x.cast(dt),
        m.weight.val().cast(dt),
        m.bias.as_ref().map(|b| b.val().cast(dt)),
    );
    to_f32(out, Some(dt))
}

/// The strides of a LibTorch tensor (for tests of the channels-last layout), or `None` on
/// another backend.
pub fn strides<const D: usize>(x: Tensor<D>) -> Option<Vec<usize>> {
    if !matches!(
        x.device().clone().inner().as_dispatch(),
        DispatchDevice::LibTorch(_)
    ) {
        return None;
    }
    let s = Tensor::<1>::from_dispatch(<Dispatch as FusedOps>::fused_strides(x.into_dispatch()));
    let v = s.into_data().convert::<f64>().try_to_vec::<f64>().ok()?;
    Some(v.into_iter().map(|x| x as usize).collect())
}

fn ints(v: [usize; 2]) -> [i64; 2] {
    v.map(|i| i as i64)
}

/// The forward kernels, shared by the plain and the autodiff implementations.
mod forward {
    use super::{ints, Conv2dArgs};
    use burn::backend::libtorch::TchTensor;

    /// `(output, mean, biased variance, invstd)`.
    pub fn batch_norm(
        x: &TchTensor,
        gamma: &TchTensor,
        beta: &TchTensor,
        epsilon: f64,
    ) -> (TchTensor, TchTensor, TchTensor, TchTensor) {
        let (output, mean, invstd) = x.tensor.native_batch_norm(
            Some(&gamma.tensor),
            Some(&beta.tensor),
            None::<&tch::Tensor>,
            None::<&tch::Tensor>,
            true,
            0.0,
            epsilon,
        );
        // LibTorch returns 1 / sqrt(var + eps); Burn's contract is the biased variance. In f64,
        // the only rounding left is invstd's own (relative 1e-7 of var + eps).
        let variance = (invstd.to_kind(tch::Kind::Double).pow_tensor_scalar(-2.0) - epsilon)
            .to_kind(invstd.kind());
        (
            TchTensor::new(output),
            TchTensor::new(mean),
            TchTensor::new(variance),
            TchTensor::new(invstd),
        )
    }

    /// `t` laid out as the policy's memory format asks: channels-last (NHWC strides, the
    /// shape unchanged, as `torch.channels_last`) or as it is.
    pub fn laid_out(t: TchTensor) -> TchTensor {
        use crate::precision::{policy, MemoryFormat};
        if policy().memory_format != MemoryFormat::ChannelsLast
            || t.tensor.dim() != 4
            || is_channels_last(&t.tensor)
        {
            return t;
        }
        TchTensor::new(
            t.tensor
                .permute([0, 2, 3, 1])
                .contiguous()
                .permute([0, 3, 1, 2]),
        )
    }

    /// NHWC strides of an NCHW tensor (dimensions of size 1 may have any stride).
    pub fn is_channels_last(t: &tch::Tensor) -> bool {
        let (size, stride) = (t.size(), t.stride());
        let mut expected = 1;
        for d in [1, 3, 2, 0] {
            if size[d] != 1 && stride[d] != expected {
                return false;
            }
            expected *= size[d];
        }
        true
    }

    pub fn conv2d(
        x: &TchTensor,
        weight: &TchTensor,
        bias: Option<&TchTensor>,
        args: Conv2dArgs,
    ) -> TchTensor {
        TchTensor::new(x.tensor.conv2d(
            &weight.tensor,
            bias.map(|b| &b.tensor),
            ints(args.stride),
            ints(args.padding),
            ints(args.dilation),
            args.groups as i64,
        ))
    }
}

impl FusedOps for LibTorch {
    fn fused_batch_norm_train(
        x: TchTensor,
        gamma: TchTensor,
        beta: TchTensor,
        epsilon: f64,
    ) -> (TchTensor, TchTensor, TchTensor) {
        let (output, mean, variance, _) = forward::batch_norm(&x, &gamma, &beta, epsilon);
        (output, mean, variance)
    }

    fn fused_conv2d(x: TchTensor, weight: TchTensor, args: Conv2dArgs) -> TchTensor {
        forward::conv2d(&x, &weight, None, args)
    }

    fn fused_conv2d_bias(
        x: TchTensor,
        weight: TchTensor,
        bias: TchTensor,
        args: Conv2dArgs,
    ) -> TchTensor {
        forward::conv2d(&x, &weight, Some(&bias), args)
    }

    fn fused_relu(x: TchTensor) -> TchTensor {
        TchTensor::new(x.tensor.relu())
    }

    fn fused_strides(x: TchTensor) -> TchTensor {
        let s: Vec<f64> = x.tensor.stride().into_iter().map(|v| v as f64).collect();
        TchTensor::new(tch::Tensor::from_slice(&s))
    }
}

#[derive(Debug)]
struct ReluBackward;

impl Backward<LibTorch, 1> for ReluBackward {
    /// The output (positive exactly where the input is).
    type State = TchTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<LibTorch>(&ops.node);
        if let Some(node) = node_x {
            let g = ops.state.tensor.threshold_backward(&grad.tensor, 0.0);
            grads.register::<LibTorch>(node.id, TchTensor::new(g));
        }
    }
}

#[derive(Debug)]
struct BatchNormBackward;

impl Backward<LibTorch, 3> for BatchNormBackward {
    /// The input, gamma, the batch mean and invstd (as LibTorch's forward returned them), epsilon.
    type State = (TchTensor, TchTensor, TchTensor, TchTensor, f64);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<LibTorch>(&ops.node);
        let (x, gamma, mean, invstd, epsilon) = ops.state;
        let mask = [node_x.is_some(), node_gamma.is_some(), node_beta.is_some()];
        let [gx, ggamma, gbeta] = shim::batch_norm_backward(
            &grad.tensor,
            &x.tensor,
            &gamma.tensor,
            &mean.tensor,
            &invstd.tensor,
            epsilon,
            mask,
        );
        for (node, g) in [(node_x, gx), (node_gamma, ggamma), (node_beta, gbeta)] {
            if let (Some(node), Some(g)) = (node, g) {
                grads.register::<LibTorch>(node.id, TchTensor::new(g));
            }
        }
    }
}

#[derive(Debug)]
struct Conv2dBackward;

impl<const N: usize> Backward<LibTorch, N> for Conv2dBackward {
    /// The input, the weight, the bias's length if there is one, the arguments.
    type State = (TchTensor, TchTensor, Option<i64>, Conv2dArgs);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<LibTorch>(&ops.node);
        let (x, weight, bias_len, args) = ops.state;
        // The gradient comes in the output's type (the forward's, under a mixed-precision
        // policy: the cast after the convolution casts it back).
        let grad = if grad.tensor.kind() == x.tensor.kind() {
            grad
        } else {
            TchTensor::new(grad.tensor.to_kind(x.tensor.kind()))
        };
        let parents = ops.parents;
        let mask = [0, 1, 2].map(|i| parents.get(i).is_some_and(Option::is_some));
        let gradients = shim::conv2d_backward(
            &grad.tensor,
            &x.tensor,
            &weight.tensor,
            bias_len,
            args,
            mask,
        );
        for (node, g) in parents.into_iter().zip(gradients) {
            if let (Some(node), Some(g)) = (node, g) {
                grads.register::<LibTorch>(node.id, TchTensor::new(g));
            }
        }
    }
}

/// Burn's autodiff tensor over LibTorch (`burn_autodiff::tensor` is private; this alias names it).
type AutodiffTensor<C> = FloatTensor<Autodiff<LibTorch, C>>;

impl<C: CheckpointStrategy> FusedOps for Autodiff<LibTorch, C> {
    fn fused_batch_norm_train(
        x: AutodiffTensor<C>,
        gamma: AutodiffTensor<C>,
        beta: AutodiffTensor<C>,
        epsilon: f64,
    ) -> (AutodiffTensor<C>, AutodiffTensor<C>, AutodiffTensor<C>) {
        let prep = BatchNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful();
        let (x, gamma, beta) = (
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
        );
        let (output, mean, variance, invstd) = forward::batch_norm(&x, &gamma, &beta, epsilon);
        let output = match prep {
            OpsKind::Tracked(prep) => {
                prep.finish((x, gamma, mean.clone(), invstd, epsilon), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(output),
        };
        (
            output,
            AutodiffTensor::<C>::new(mean),
            AutodiffTensor::<C>::new(variance),
        )
    }

    fn fused_conv2d(
        x: AutodiffTensor<C>,
        weight: AutodiffTensor<C>,
        args: Conv2dArgs,
    ) -> AutodiffTensor<C> {
        let prep = Conv2dBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful();
        let x = forward::laid_out(x.into_primitive());
        let weight = forward::laid_out(weight.into_primitive());
        let output = forward::conv2d(&x, &weight, None, args);
        match prep {
            OpsKind::Tracked(prep) => prep.finish((x, weight, None, args), output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    fn fused_conv2d_bias(
        x: AutodiffTensor<C>,
        weight: AutodiffTensor<C>,
        bias: AutodiffTensor<C>,
        args: Conv2dArgs,
    ) -> AutodiffTensor<C> {
        let prep = Conv2dBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful();
        let (x, weight, bias) = (
            forward::laid_out(x.into_primitive()),
            forward::laid_out(weight.into_primitive()),
            bias.into_primitive(),
        );
        let output = forward::conv2d(&x, &weight, Some(&bias), args);
        let bias_len = bias.tensor.size()[0];
        match prep {
            OpsKind::Tracked(prep) => prep.finish((x, weight, Some(bias_len), args), output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    fn fused_relu(x: AutodiffTensor<C>) -> AutodiffTensor<C> {
        let prep = ReluBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful();
        let output = TchTensor::new(x.into_primitive().tensor.relu());
        match prep {
            OpsKind::Tracked(prep) => {
                let state = TchTensor::new(output.tensor.shallow_clone());
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    fn fused_strides(x: AutodiffTensor<C>) -> AutodiffTensor<C> {
        AutodiffTensor::<C>::new(LibTorch::fused_strides(x.into_primitive()))
    }
}

/// The C++ wrappers of csrc/libtorch_fused.cpp.
mod shim {
    use std::ffi::CStr;
    use std::os::raw::{c_char, c_int};
    use std::ptr;

    use super::{ints, Conv2dArgs};
    use torch_sys::C_tensor;

    extern "C" {
        fn archc_fused_free(message: *mut c_char);
        fn archc_batch_norm_backward(
            grad_out: *const C_tensor,
            input: *const C_tensor,
            weight: *const C_tensor,
            save_mean: *const C_tensor,
            save_invstd: *const C_tensor,
            eps: f64,
            mask_input: c_int,
            mask_weight: c_int,
            mask_bias: c_int,
            out: *mut *mut C_tensor,
        ) -> *mut c_char;
        fn archc_conv2d_backward(
            grad_out: *const C_tensor,
            input: *const C_tensor,
            weight: *const C_tensor,
            bias_len: i64,
            stride: *const i64,
            padding: *const i64,
            dilation: *const i64,
            groups: i64,
            mask_input: c_int,
            mask_weight: c_int,
            mask_bias: c_int,
            out: *mut *mut C_tensor,
        ) -> *mut c_char;
    }

    /// Takes ownership of the wrappers' results; panics with LibTorch's message on an error.
    fn take(op: &str, error: *mut c_char, out: [*mut C_tensor; 3]) -> [Option<tch::Tensor>; 3] {
        // SAFETY: each non-null result is a fresh `at::Tensor *` (`new`) that nothing else owns;
        // tch's `Drop` frees it as tch frees its own.
        let tensors = out.map(|p| (!p.is_null()).then(|| unsafe { tch::Tensor::from_ptr(p) }));
        if !error.is_null() {
            // SAFETY: a NUL-terminated string the wrapper allocated; freed once, by the wrapper's
            // own `free`.
            let message = unsafe { CStr::from_ptr(error) }
                .to_string_lossy()
                .into_owned();
            unsafe { archc_fused_free(error) };
            panic!("archc-runtime: LibTorch {op}: {message}");
        }
        tensors
    }

    pub fn batch_norm_backward(
        grad: &tch::Tensor,
        x: &tch::Tensor,
        gamma: &tch::Tensor,
        mean: &tch::Tensor,
        invstd: &tch::Tensor,
        epsilon: f64,
        mask: [bool; 3],
    ) -> [Option<tch::Tensor>; 3] {
        let mut out = [ptr::null_mut(); 3];
        // SAFETY: the inputs are live tensors borrowed for the call; `out` has room for three.
        let error = unsafe {
            archc_batch_norm_backward(
                grad.as_ptr(),
                x.as_ptr(),
                gamma.as_ptr(),
                mean.as_ptr(),
                invstd.as_ptr(),
                epsilon,
                mask[0].into(),
                mask[1].into(),
                mask[2].into(),
                out.as_mut_ptr(),
            )
        };
        take("native_batch_norm_backward", error, out)
    }

    pub fn conv2d_backward(
        grad: &tch::Tensor,
        x: &tch::Tensor,
        weight: &tch::Tensor,
        bias_len: Option<i64>,
        args: Conv2dArgs,
        mask: [bool; 3],
    ) -> [Option<tch::Tensor>; 3] {
        let mut out = [ptr::null_mut(); 3];
        let (stride, padding, dilation) =
            (ints(args.stride), ints(args.padding), ints(args.dilation));
        // SAFETY: as above; the three arrays have two elements each, as the wrapper reads.
        let error = unsafe {
            archc_conv2d_backward(
                grad.as_ptr(),
                x.as_ptr(),
                weight.as_ptr(),
                bias_len.unwrap_or(-1),
                stride.as_ptr(),
                padding.as_ptr(),
                dilation.as_ptr(),
                args.groups as i64,
                mask[0].into(),
                mask[1].into(),
                (mask[2] && bias_len.is_some()).into(),
                out.as_mut_ptr(),
            )
        };
        take("convolution_backward", error, out)
    }
}
