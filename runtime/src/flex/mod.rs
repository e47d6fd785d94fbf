//! archc's own CPU kernels on burn-flex, Burn's pure-Rust default backend (cargo feature `flex`,
//! on by default).
//!
//! burn-flex 0.22.1 has a convolution forward but no convolution backward and no batch norm:
//! Burn's generic versions run there, built from transposes, reshapes, means and elementwise
//! operations (docs/benchmarks.md has the profile). This module adds a 2-d convolution (forward
//! and both backward passes), a training batch norm, ReLU and the pools (max, average, adaptive
//! average; forward and backward) through Burn's backend-extension
//! mechanism (`#[backend_extension]`), as `crate::fused` does for LibTorch: implemented for
//! `Flex` (forward: evaluation also runs on them) and for `Autodiff<Flex, C>` with handwritten
//! backward steps. The kernels themselves are [`kernels`], on plain slices.
//!
//! [`applies`] says when they run: a burn-flex device and f32 tensors; every other case keeps
//! Burn's path (`ops/conv.rs`, `ops/norm.rs`, `ops/activation.rs`, `ops/pool.rs`). `ARCHC_FLEX_KERNELS=0` in
//! the environment turns them off (Burn's path everywhere), for comparisons. They agree with
//! Burn's path within float rounding (`runtime/tests/flex_kernels.rs`).

pub use archc_kernels as kernels;

use std::sync::OnceLock;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, DispatchDevice, Flex};
use burn::nn::conv::Conv2d;
use burn::tensor::module::BatchNormTrainOutput;
use burn::tensor::{DType, Device, Shape, Tensor, TensorData};

use kernels::{ConvShape, PoolShape};

pub use crate::ops::conv::{conv2d_args, Conv2dArgs};

/// True when archc's kernels run on `device` for a tensor of type `dtype`: a burn-flex device
/// (with or without autodiff), f32, and not turned off by `ARCHC_FLEX_KERNELS=0`.
pub fn applies(device: &Device, dtype: DType) -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    dtype == DType::F32
        && *ON.get_or_init(|| std::env::var("ARCHC_FLEX_KERNELS").map_or(true, |v| v != "0"))
        && matches!(
            device.clone().inner().as_dispatch(),
            DispatchDevice::Flex(_)
        )
}

/// The operations. Only burn-flex implements them: call them through [`conv2d`],
/// [`batch_norm_train`] and [`relu`] after checking [`applies`].
#[backend_extension(Flex, Autodiff)]
pub trait FlexOps: Backend {
    /// Training-mode batch norm, followed by ReLU when `relu`: the output, the batch mean and
    /// the biased batch variance.
    fn flex_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Evaluation-mode batch norm (`x · scale + shift` per channel, `scale` and `shift` from the
    /// running statistics), followed by ReLU when `relu`. Without autodiff only: no backward.
    fn flex_channel_affine(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        relu: bool,
    ) -> FloatTensor<Self>;

    /// A 2-d convolution with symmetric padding, without bias.
    fn flex_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        args: Conv2dArgs,
    ) -> FloatTensor<Self>;

    /// The same with a bias (the macro does not route `Option` tensor inputs: two operations).
    fn flex_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        args: Conv2dArgs,
    ) -> FloatTensor<Self>;

    /// ReLU, whose backward is one pass over the gradient and the output.
    fn flex_relu(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Max pooling (the backward routes each gradient to the position its maximum came from).
    fn flex_max_pool2d(x: FloatTensor<Self>, args: PoolArgs) -> FloatTensor<Self>;

    /// Average pooling.
    fn flex_avg_pool2d(x: FloatTensor<Self>, args: PoolArgs) -> FloatTensor<Self>;

    /// Adaptive average pooling to `output_size` (global average pooling at `[1, 1]`).
    fn flex_adaptive_avg_pool2d(x: FloatTensor<Self>, output_size: [usize; 2])
        -> FloatTensor<Self>;
}

/// A pooling window as archc's kernels take it: symmetric padding, PyTorch's `ceil_mode` and
/// (average pooling) `count_include_pad`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolArgs {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub ceil_mode: bool,
    pub count_include_pad: bool,
}

/// Max pooling of `x` on archc's kernels, forward and backward. Check [`applies`] first.
pub fn max_pool2d(x: Tensor<4>, args: PoolArgs) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as FlexOps>::flex_max_pool2d(
        x.into_dispatch(),
        args,
    ))
}

/// Average pooling of `x` on archc's kernels, forward and backward. Check [`applies`] first.
pub fn avg_pool2d(x: Tensor<4>, args: PoolArgs) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as FlexOps>::flex_avg_pool2d(
        x.into_dispatch(),
        args,
    ))
}

/// Adaptive average pooling of `x` on archc's kernels, forward and backward. Check [`applies`]
/// first.
pub fn adaptive_avg_pool2d(x: Tensor<4>, output_size: [usize; 2]) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as FlexOps>::flex_adaptive_avg_pool2d(
        x.into_dispatch(),
        output_size,
    ))
}

/// `conv.forward(x)` on archc's kernels where [`conv2d_args`] allows, else Burn's
/// `Conv2d::forward`. Check [`applies`] first.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let Some(args) = conv2d_args(conv) else {
        return conv.forward(x);
    };
    let (x, weight) = (x.into_dispatch(), conv.weight.val().into_dispatch());
    Tensor::from_dispatch(match &conv.bias {
        None => <Dispatch as FlexOps>::flex_conv2d(x, weight, args),
        Some(b) => {
            <Dispatch as FlexOps>::flex_conv2d_bias(x, weight, b.val().into_dispatch(), args)
        }
    })
}

/// Burn's `batch_norm_train` on archc's kernels, followed by ReLU when `relu`: same contract
/// (the output; the batch mean and biased variance, detached). Check [`applies`] first.
pub fn batch_norm_train<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    relu: bool,
) -> BatchNormTrainOutput<D> {
    let (output, mean, variance) = <Dispatch as FlexOps>::flex_batch_norm_train(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
        relu,
    );
    BatchNormTrainOutput {
        output: Tensor::from_dispatch(output),
        mean: Tensor::from_dispatch(mean),
        variance: Tensor::from_dispatch(variance),
    }
}

/// Evaluation-mode batch norm of `x` with `bn`'s running statistics, in one pass, followed by
/// ReLU when `relu`. On burn-flex without autodiff only (check [`applies`] and
/// `!device.is_autodiff()` first).
pub fn batch_norm_eval<const D: usize>(
    bn: &burn::nn::BatchNorm,
    x: Tensor<D>,
    relu: bool,
) -> Tensor<D> {
    let values = |t: Tensor<1>| {
        t.into_data()
            .convert::<f64>()
            .try_into_vec::<f64>()
            .expect("f64 values")
    };
    let (mean, var) = (
        values(bn.running_mean.value()),
        values(bn.running_var.value()),
    );
    let (gamma, beta) = (values(bn.gamma.val()), values(bn.beta.val()));
    let scale: Vec<f64> = (0..gamma.len())
        .map(|i| gamma[i] / (var[i] + bn.epsilon).sqrt())
        .collect();
    let shift: Vec<f32> = (0..gamma.len())
        .map(|i| (beta[i] - mean[i] * scale[i]) as f32)
        .collect();
    let device = x.device();
    let vector =
        |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), &device);
    Tensor::from_dispatch(<Dispatch as FlexOps>::flex_channel_affine(
        x.into_dispatch(),
        vector(f32s(&scale)).into_dispatch(),
        vector(shift).into_dispatch(),
        relu,
    ))
}

/// `relu(x)` on archc's kernels forward and backward. Check [`applies`] first.
pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FlexOps>::flex_relu(x.into_dispatch()))
}

/// The values of `t`, contiguous (a copy only when `t` is a strided view).
fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(
            t.to_contiguous()
                .as_slice::<f32>()
                .expect("contiguous")
                .to_vec(),
        ),
    }
}

fn dims(t: &FlexTensor) -> Vec<usize> {
    t.layout().shape().to_vec()
}

fn tensor(v: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, Shape::from(shape)))
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// The convolution's shape from its operands; panics on operands Burn's own convolution would
/// refuse too (the network's checks, `ops/conv.rs`, come first).
fn conv_shape(x: &FlexTensor, weight: &FlexTensor, args: Conv2dArgs) -> ConvShape {
    let (xd, wd) = (dims(x), dims(weight));
    ConvShape::new(
        [xd[0], xd[1], xd[2], xd[3]],
        [wd[0], wd[1], wd[2], wd[3]],
        args.stride,
        args.padding,
        args.dilation,
        args.groups,
    )
    .unwrap_or_else(|| panic!("conv2d of {xd:?} with {wd:?} and {args:?}: shapes do not fit"))
}

/// The pool's shape from its input; panics on a window Burn's own pools would refuse too (the
/// network's checks, `ops/pool.rs`, come first).
fn pool_shape(x: &FlexTensor, args: PoolArgs) -> PoolShape {
    let d = dims(x);
    PoolShape::new(
        [d[0], d[1], d[2], d[3]],
        args.kernel,
        args.stride,
        args.padding,
        args.ceil_mode,
    )
    .unwrap_or_else(|| panic!("pool of {d:?} with {args:?}: the window does not fit"))
}

/// The forward computations, shared by the plain and the autodiff implementations.
mod forward {
    use super::*;

    /// `(output, mean, biased variance, mean in f64, invstd in f64)`; the output after ReLU
    /// when `relu`.
    pub fn batch_norm(
        x: &FlexTensor,
        gamma: &FlexTensor,
        beta: &FlexTensor,
        epsilon: f64,
        relu: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor, Vec<f64>, Vec<f64>) {
        let d = dims(x);
        let (n, c) = (d[0], d[1]);
        let plane: usize = d[2..].iter().product();
        let xs = values(x);
        let (mean, var) = kernels::batch_norm_stats(&xs, n, c, plane);
        let invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + epsilon).sqrt()).collect();
        let (g, b) = (values(gamma), values(beta));
        let scale: Vec<f32> = (0..c).map(|i| (g[i] as f64 * invstd[i]) as f32).collect();
        let shift: Vec<f32> = (0..c)
            .map(|i| (b[i] as f64 - mean[i] * g[i] as f64 * invstd[i]) as f32)
            .collect();
        let out = kernels::batch_norm_apply(&xs, &scale, &shift, c, plane, relu);
        (
            tensor(out, d),
            tensor(f32s(&mean), vec![c]),
            tensor(f32s(&var), vec![c]),
            mean,
            invstd,
        )
    }

    pub fn conv2d(
        x: &FlexTensor,
        weight: &FlexTensor,
        bias: Option<&FlexTensor>,
        args: Conv2dArgs,
    ) -> FlexTensor {
        let s = conv_shape(x, weight, args);
        let bias = bias.map(values);
        let out = kernels::conv2d(&values(x), &values(weight), bias.as_deref(), &s);
        tensor(out, vec![s.n, s.c_out, s.ho, s.wo])
    }

    pub fn channel_affine(
        x: &FlexTensor,
        scale: &FlexTensor,
        shift: &FlexTensor,
        relu: bool,
    ) -> FlexTensor {
        let d = dims(x);
        let plane: usize = d[2..].iter().product();
        let out = kernels::batch_norm_apply(
            &values(x),
            &values(scale),
            &values(shift),
            d[1],
            plane,
            relu,
        );
        tensor(out, d)
    }

    pub fn relu(x: &FlexTensor) -> FlexTensor {
        tensor(kernels::relu(&values(x)), dims(x))
    }

    /// The output and the indices of the maxima.
    pub fn max_pool2d(x: &FlexTensor, args: PoolArgs) -> (FlexTensor, Vec<u32>, PoolShape) {
        let s = pool_shape(x, args);
        let (out, indices) = kernels::pool::max_pool2d(&values(x), &s);
        (tensor(out, vec![s.n, s.c, s.ho, s.wo]), indices, s)
    }

    pub fn avg_pool2d(x: &FlexTensor, args: PoolArgs) -> (FlexTensor, PoolShape) {
        let s = pool_shape(x, args);
        let out = kernels::pool::avg_pool2d(&values(x), &s, args.count_include_pad);
        (tensor(out, vec![s.n, s.c, s.ho, s.wo]), s)
    }

    pub fn adaptive_avg_pool2d(x: &FlexTensor, size: [usize; 2]) -> FlexTensor {
        let d = dims(x);
        assert!(size[0] > 0 && size[1] > 0, "adaptive pool to {size:?}");
        let out = kernels::pool::adaptive_avg_pool2d(&values(x), d[0] * d[1], [d[2], d[3]], size);
        tensor(out, vec![d[0], d[1], size[0], size[1]])
    }
}

impl FlexOps for Flex {
    fn flex_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
        relu: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (out, mean, var, _, _) = forward::batch_norm(&x, &gamma, &beta, epsilon, relu);
        (out, mean, var)
    }

    fn flex_channel_affine(
        x: FlexTensor,
        scale: FlexTensor,
        shift: FlexTensor,
        relu: bool,
    ) -> FlexTensor {
        forward::channel_affine(&x, &scale, &shift, relu)
    }

    fn flex_conv2d(x: FlexTensor, weight: FlexTensor, args: Conv2dArgs) -> FlexTensor {
        forward::conv2d(&x, &weight, None, args)
    }

    fn flex_conv2d_bias(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        args: Conv2dArgs,
    ) -> FlexTensor {
        forward::conv2d(&x, &weight, Some(&bias), args)
    }

    fn flex_relu(x: FlexTensor) -> FlexTensor {
        forward::relu(&x)
    }

    fn flex_max_pool2d(x: FlexTensor, args: PoolArgs) -> FlexTensor {
        forward::max_pool2d(&x, args).0
    }

    fn flex_avg_pool2d(x: FlexTensor, args: PoolArgs) -> FlexTensor {
        forward::avg_pool2d(&x, args).0
    }

    fn flex_adaptive_avg_pool2d(x: FlexTensor, output_size: [usize; 2]) -> FlexTensor {
        forward::adaptive_avg_pool2d(&x, output_size)
    }
}

#[derive(Debug)]
struct MaxPoolBackward;

impl Backward<Flex, 1> for MaxPoolBackward {
    /// The indices of the maxima within their input planes, the shape.
    type State = (std::sync::Arc<[u32]>, PoolShape);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (indices, s) = ops.state;
        if let Some(node) = node_x {
            let g = kernels::pool::max_pool2d_backward(&values(&grad), &indices, &s);
            grads.register::<Flex>(node.id, tensor(g, vec![s.n, s.c, s.h, s.w]));
        }
    }
}

#[derive(Debug)]
struct AvgPoolBackward;

impl Backward<Flex, 1> for AvgPoolBackward {
    /// The shape and `count_include_pad`.
    type State = (PoolShape, bool);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (s, count_include_pad) = ops.state;
        if let Some(node) = node_x {
            let g = kernels::pool::avg_pool2d_backward(&values(&grad), &s, count_include_pad);
            grads.register::<Flex>(node.id, tensor(g, vec![s.n, s.c, s.h, s.w]));
        }
    }
}

#[derive(Debug)]
struct AdaptiveAvgPoolBackward;

impl Backward<Flex, 1> for AdaptiveAvgPoolBackward {
    /// The input's shape.
    type State = Vec<usize>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let d = ops.state;
        let g = dims(&grad);
        if let Some(node) = node_x {
            let dx = kernels::pool::adaptive_avg_pool2d_backward(
                &values(&grad),
                d[0] * d[1],
                [d[2], d[3]],
                [g[2], g[3]],
            );
            grads.register::<Flex>(node.id, tensor(dx, d));
        }
    }
}

#[derive(Debug)]
struct ReluBackward;

impl Backward<Flex, 1> for ReluBackward {
    /// The output (positive exactly where the input is).
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        if let Some(node) = node_x {
            let g = kernels::relu_backward(&values(&grad), &values(&ops.state));
            grads.register::<Flex>(node.id, tensor(g, dims(&grad)));
        }
    }
}

#[derive(Debug)]
struct BatchNormBackward;

impl Backward<Flex, 3> for BatchNormBackward {
    /// The input, gamma, the batch mean and invstd in f64, the output if ReLU followed.
    type State = (
        FlexTensor,
        FlexTensor,
        Vec<f64>,
        Vec<f64>,
        Option<FlexTensor>,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, gamma, mean, invstd, relu_out) = ops.state;
        let d = dims(&x);
        let (n, c) = (d[0], d[1]);
        let plane: usize = d[2..].iter().product();
        let need = [node_x.is_some(), node_gamma.is_some(), node_beta.is_some()];
        let (gx, ggamma, gbeta) = kernels::batch_norm_backward(
            &values(&grad),
            relu_out.as_ref().map(values).as_deref(),
            &values(&x),
            &values(&gamma),
            &mean,
            &invstd,
            n,
            c,
            plane,
            need,
        );
        let gx = gx.map(|g| tensor(g, d));
        let ggamma = ggamma.map(|g| tensor(g, vec![c]));
        let gbeta = gbeta.map(|g| tensor(g, vec![c]));
        for (node, g) in [(node_x, gx), (node_gamma, ggamma), (node_beta, gbeta)] {
            if let (Some(node), Some(g)) = (node, g) {
                grads.register::<Flex>(node.id, g);
            }
        }
    }
}

#[derive(Debug)]
struct Conv2dBackward;

impl<const N: usize> Backward<Flex, N> for Conv2dBackward {
    /// The input, the weight, the arguments.
    type State = (FlexTensor, FlexTensor, Conv2dArgs);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, weight, args) = ops.state;
        let s = conv_shape(&x, &weight, args);
        let parents = ops.parents;
        let need = [0, 1, 2].map(|i| parents.get(i).is_some_and(Option::is_some));
        let (gx, gw, gb) =
            kernels::conv2d_backward(&values(&x), &values(&weight), &values(&grad), &s, need);
        let gradients = [
            gx.map(|g| tensor(g, dims(&x))),
            gw.map(|g| tensor(g, dims(&weight))),
            gb.map(|g| tensor(g, vec![s.c_out])),
        ];
        for (node, g) in parents.into_iter().zip(gradients) {
            if let (Some(node), Some(g)) = (node, g) {
                grads.register::<Flex>(node.id, g);
            }
        }
    }
}

/// Burn's autodiff tensor over burn-flex (`burn_autodiff::tensor` is private; this alias names it).
type AutodiffTensor<C> = FloatTensor<Autodiff<Flex, C>>;

impl<C: CheckpointStrategy> FlexOps for Autodiff<Flex, C> {
    fn flex_batch_norm_train(
        x: AutodiffTensor<C>,
        gamma: AutodiffTensor<C>,
        beta: AutodiffTensor<C>,
        epsilon: f64,
        relu: bool,
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
        let (output, mean, variance, mean64, invstd) =
            forward::batch_norm(&x, &gamma, &beta, epsilon, relu);
        let output = match prep {
            OpsKind::Tracked(prep) => {
                let relu_out = relu.then(|| output.clone());
                prep.finish((x, gamma, mean64, invstd, relu_out), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(output),
        };
        (
            output,
            AutodiffTensor::<C>::new(mean),
            AutodiffTensor::<C>::new(variance),
        )
    }

    fn flex_channel_affine(
        _: AutodiffTensor<C>,
        _: AutodiffTensor<C>,
        _: AutodiffTensor<C>,
        _: bool,
    ) -> AutodiffTensor<C> {
        panic!("archc's evaluation-mode batch norm has no backward: call it without autodiff")
    }

    fn flex_conv2d(
        x: AutodiffTensor<C>,
        weight: AutodiffTensor<C>,
        args: Conv2dArgs,
    ) -> AutodiffTensor<C> {
        let prep = Conv2dBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful();
        let (x, weight) = (x.into_primitive(), weight.into_primitive());
        let output = forward::conv2d(&x, &weight, None, args);
        match prep {
            OpsKind::Tracked(prep) => prep.finish((x, weight, args), output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    fn flex_conv2d_bias(
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
            x.into_primitive(),
            weight.into_primitive(),
            bias.into_primitive(),
        );
        let output = forward::conv2d(&x, &weight, Some(&bias), args);
        match prep {
            OpsKind::Tracked(prep) => prep.finish((x, weight, args), output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    fn flex_relu(x: AutodiffTensor<C>) -> AutodiffTensor<C> {
        let prep = ReluBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful();
        let output = forward::relu(&x.into_primitive());
        match prep {
            OpsKind::Tracked(prep) => prep.finish(output.clone(), output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    fn flex_max_pool2d(x: AutodiffTensor<C>, args: PoolArgs) -> AutodiffTensor<C> {
        let prep = MaxPoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful();
        let (output, indices, s) = forward::max_pool2d(&x.into_primitive(), args);
        match prep {
            OpsKind::Tracked(prep) => prep.finish((indices.into(), s), output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    fn flex_avg_pool2d(x: AutodiffTensor<C>, args: PoolArgs) -> AutodiffTensor<C> {
        let prep = AvgPoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful();
        let (output, s) = forward::avg_pool2d(&x.into_primitive(), args);
        match prep {
            OpsKind::Tracked(prep) => prep.finish((s, args.count_include_pad), output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    fn flex_adaptive_avg_pool2d(
        x: AutodiffTensor<C>,
        output_size: [usize; 2],
    ) -> AutodiffTensor<C> {
        let prep = AdaptiveAvgPoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful();
        let x = x.into_primitive();
        let d = dims(&x);
        let output = forward::adaptive_avg_pool2d(&x, output_size);
        match prep {
            OpsKind::Tracked(prep) => prep.finish(d, output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }
}
