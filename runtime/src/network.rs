//! [`Network`]: a Burn module built from a [`LoweredGraph`].
//!
//! Contract:
//! - one Burn module per node that has one (`Conv2d`, `BatchNorm`, `Linear`, the pools,
//!   `Dropout`), held in `layers` in node order; the wiring (the lowered graph itself) is plain
//!   data the module carries (`#[module(skip)]`), so `valid()`, `to_device()`, optimisers and
//!   Burn's records see only the layers;
//! - [`Network::forward`] evaluates the nodes up to the logits node in topological order and
//!   drops each intermediate result after its last reader, so memory is bounded by the live set,
//!   not by the depth; a trailing softmax is applied by [`Network::predict`] only;
//! - train/eval follows Burn: a network on an autodiff device (`Device::flex().autodiff()`)
//!   trains (batch norm uses batch statistics and updates its running statistics, dropout is
//!   active); `network.valid()` evaluates (running statistics, no dropout), as does any network
//!   on a plain device;
//! - batch norm's running variance is updated with the *unbiased* batch variance, as PyTorch
//!   does (Burn's own `BatchNorm` uses the biased one); the normalisation itself uses the biased
//!   variance in both.

use std::fmt;
use std::sync::Arc;

use archc_compiler::lower::{LoweredGraph, LoweredOp};
use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::conv::Conv2d;
use burn::nn::pool::{
    AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, AvgPool2d, AvgPool2dConfig, MaxPool2d,
    MaxPool2dConfig,
};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, PRelu, PaddingConfig2d,
};
use burn::tensor::activation::{sigmoid, softmax};
use burn::tensor::{Device, Int, Tensor};

use crate::check::{check, BuildError};
use crate::init::{param, Fill};
use crate::ops::{self, activation, UnitLayer};

/// The Burn module of one node.
#[derive(Module, Debug)]
pub enum Layer {
    Conv(Conv2d),
    Norm(BatchNorm),
    Linear(Linear),
    MaxPool(MaxPool2d),
    AvgPool(AvgPool2d),
    AdaptiveAvgPool(AdaptiveAvgPool2d),
    Dropout(Dropout),
    PRelu(PRelu),
    /// The module of a unit node (`ops::RuntimeUnit`): layer norm, group norm, drop path.
    Unit(UnitLayer),
}

/// The non-module part of a [`Network`]: the lowered graph and, per node, its layer and the last
/// node that reads its output.
pub struct Plan {
    pub(crate) graph: LoweredGraph,
    pub(crate) layer: Vec<Option<usize>>,
    last_use: Vec<usize>,
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Plan({}: {} nodes, {} layers)",
            self.graph.network,
            self.graph.nodes.len(),
            self.layer.iter().flatten().count()
        )
    }
}

/// A compiled network as a Burn module. See the module docs for the contract.
#[derive(Module, Debug)]
pub struct Network {
    /// The layers, in node order (param-less nodes such as ReLU or Add have none).
    pub layers: Vec<Layer>,
    #[module(skip)]
    pub(crate) plan: Arc<Plan>,
}

/// A wrongly shaped input to [`Network::try_forward`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("network `{network}` takes input [N, {expected}] (N >= 1), got {got:?}")]
pub struct InputError {
    pub network: String,
    pub expected: String,
    pub got: Vec<usize>,
}

/// A value flowing along an edge: a batch of feature maps or of flat vectors.
#[derive(Clone)]
enum Value {
    Map(Tensor<4>),
    Flat(Tensor<2>),
}

impl Value {
    fn flat(self) -> Tensor<2> {
        match self {
            Value::Map(t) => t.flatten(1, 3),
            Value::Flat(t) => t,
        }
    }

    /// The map; the checked graph only routes feature maps into map ops.
    fn map(self) -> Tensor<4> {
        match self {
            Value::Map(t) => t,
            Value::Flat(t) => {
                let [n, f] = t.dims();
                t.reshape([n, f, 1, 1])
            }
        }
    }
}

impl Network {
    /// Build the network of `graph` on `device`, its parameters initialised as torchvision does
    /// (see [`crate::init`](crate#initialisation)) from `seed`. Parameters are lazy: they are
    /// drawn on first use, each from its own stream, so the result depends on the seed only.
    pub fn new(graph: &LoweredGraph, device: &Device, seed: u64) -> Result<Self, BuildError> {
        check(graph)?;
        // A Highway gate (the third input of a Highway node) starts with its bias at
        // `gate_bias`, so that a fresh block mostly carries its input.
        let mut gate_bias: Vec<Option<f64>> = vec![None; graph.nodes.len()];
        for n in &graph.nodes {
            if let (LoweredOp::Highway { gate_bias: b }, Some(&g)) = (&n.op, n.inputs.get(2)) {
                gate_bias[g] = Some(*b);
            }
        }
        let bias_fill = |i: usize, default: Fill| match gate_bias[i] {
            Some(b) => Fill::Constant(b as f32),
            None => default,
        };
        let mut layers = Vec::new();
        let mut layer = Vec::with_capacity(graph.nodes.len());
        for (i, n) in graph.nodes.iter().enumerate() {
            let l = match n.op {
                LoweredOp::Conv2d {
                    channels,
                    kernel_size,
                    stride,
                    padding,
                    dilation,
                    groups,
                    bias,
                } => {
                    let fan_out = channels[1] * kernel_size[0] * kernel_size[1];
                    let std = (2.0 / fan_out as f64).sqrt();
                    let shapes = n.op.param_shapes();
                    let dims: [usize; 4] =
                        shapes[0].1.as_slice().try_into().map_err(|_| BuildError {
                            network: graph.network.clone(),
                            node: i,
                            name: n.name.clone(),
                            message: "a convolution weight is [out, in/groups, kh, kw]".into(),
                        })?;
                    Some(Layer::Conv(Conv2d {
                        weight: param(dims, Fill::Normal { std }, seed, i, 0, device),
                        bias: bias.then(|| {
                            let fill = bias_fill(i, Fill::Constant(0.0));
                            param([channels[1]], fill, seed, i, 1, device)
                        }),
                        stride,
                        kernel_size,
                        dilation,
                        groups,
                        padding: PaddingConfig2d::Explicit(
                            padding[0], padding[1], padding[0], padding[1],
                        ),
                    }))
                }
                LoweredOp::BatchNorm {
                    num_features,
                    epsilon,
                    momentum,
                } => Some(Layer::Norm(
                    BatchNormConfig::new(num_features)
                        .with_epsilon(epsilon)
                        .with_momentum(momentum)
                        .init(device),
                )),
                LoweredOp::Linear {
                    d_input,
                    d_output,
                    bias,
                } => {
                    let bound = 1.0 / (d_input as f64).sqrt();
                    let fill = Fill::Uniform { bound };
                    Some(Layer::Linear(Linear {
                        // Burn's row layout: [d_input, d_output], the transpose of PyTorch's.
                        weight: param([d_input, d_output], fill, seed, i, 0, device),
                        bias: bias
                            .then(|| param([d_output], bias_fill(i, fill), seed, i, 1, device)),
                    }))
                }
                LoweredOp::MaxPool2d {
                    kernel_size,
                    strides,
                    padding,
                    ceil_mode,
                } => Some(Layer::MaxPool(
                    MaxPool2dConfig::new(kernel_size)
                        .with_strides(strides)
                        .with_padding(PaddingConfig2d::Explicit(
                            padding[0], padding[1], padding[0], padding[1],
                        ))
                        .with_ceil_mode(ceil_mode)
                        .init(),
                )),
                LoweredOp::AvgPool2d {
                    kernel_size,
                    strides,
                    padding,
                    count_include_pad,
                    ceil_mode,
                } => Some(Layer::AvgPool(
                    AvgPool2dConfig::new(kernel_size)
                        .with_strides(strides)
                        .with_padding(PaddingConfig2d::Explicit(
                            padding[0], padding[1], padding[0], padding[1],
                        ))
                        .with_count_include_pad(count_include_pad)
                        .with_ceil_mode(ceil_mode)
                        .init(),
                )),
                LoweredOp::AdaptiveAvgPool2d { output_size } => Some(Layer::AdaptiveAvgPool(
                    AdaptiveAvgPool2dConfig::new(output_size).init(),
                )),
                LoweredOp::Dropout { prob } => {
                    Some(Layer::Dropout(DropoutConfig::new(prob).init()))
                }
                LoweredOp::PRelu { num_parameters } => Some(Layer::PRelu(
                    activation::prelu_module(num_parameters, seed, i, device),
                )),
                LoweredOp::Unit {
                    ref unit,
                    ref attrs,
                } => ops::unit(unit)
                    .and_then(|u| (u.build)(attrs, seed, i, device))
                    .map(Layer::Unit),
                _ => None,
            };
            layer.push(l.map(|l| {
                layers.push(l);
                layers.len() - 1
            }));
        }
        let mut last_use: Vec<usize> = (0..graph.nodes.len()).collect();
        for n in &graph.nodes {
            for &j in &n.inputs {
                last_use[j] = last_use[j].max(n.id);
            }
        }
        let plan = Plan {
            graph: graph.clone(),
            layer,
            last_use,
        };
        Ok(Network {
            layers,
            plan: Arc::new(plan),
        })
    }

    /// The lowered graph this network was built from.
    pub fn graph(&self) -> &LoweredGraph {
        &self.plan.graph
    }

    /// The layer of the node named `name` (a torchvision name such as `layer1.0.conv1`), if
    /// that node has one.
    pub fn layer(&self, name: &str) -> Option<&Layer> {
        let i = self.plan.graph.nodes.iter().position(|n| n.name == name)?;
        self.plan.layer[i].map(|l| &self.layers[l])
    }

    /// Trainable parameters as Burn holds them (every float parameter except batch norm's
    /// running statistics, which are buffers). Equals [`LoweredGraph::params`] and PyTorch's
    /// `sum(p.numel() for p in model.parameters())`. Does not materialise lazy parameters.
    pub fn num_trainable_params(&self) -> u64 {
        let mut c = Counter::default();
        self.visit(&mut c);
        c.trainable
    }

    /// Batch norm running statistics (running mean and variance elements).
    pub fn num_buffers(&self) -> u64 {
        let mut c = Counter::default();
        self.visit(&mut c);
        c.buffers
    }

    /// Draw every lazy parameter now (otherwise they are drawn on first use).
    pub fn materialize(&self) {
        self.visit(&mut Materialize);
    }

    /// Logits `[N, classes]` for a batch `x` of shape `[N, C, H, W]` (the graph's input).
    ///
    /// # Panics
    ///
    /// If `x` does not have the graph's input shape; use [`Network::try_forward`] for inputs
    /// that come from a user.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match self.try_forward(x) {
            Ok(y) => y,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`Network::forward`], checking the input's shape first.
    pub fn try_forward(&self, x: Tensor<4>) -> Result<Tensor<2>, InputError> {
        self.check_input(&x.dims())?;
        Ok(self.run(Value::Map(x)))
    }

    /// Logits for a network whose input is a flat vector (`input N`): `x` is `[batch, N]`.
    pub fn try_forward_flat(&self, x: Tensor<2>) -> Result<Tensor<2>, InputError> {
        self.check_input(&x.dims())?;
        Ok(self.run(Value::Flat(x)))
    }

    /// Class probabilities: softmax over the logits (whether or not the network ends in one).
    pub fn predict(&self, x: Tensor<4>) -> Tensor<2> {
        softmax(self.forward(x), 1)
    }

    fn check_input(&self, dims: &[usize]) -> Result<(), InputError> {
        let g = &self.plan.graph;
        if dims.len() == g.input.len() + 1 && dims[0] > 0 && dims[1..] == g.input[..] {
            return Ok(());
        }
        Err(InputError {
            network: g.network.clone(),
            expected: g
                .input
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            got: dims.to_vec(),
        })
    }

    fn run(&self, x: Value) -> Tensor<2> {
        let plan = &*self.plan;
        let g = &plan.graph;
        let mut values: Vec<Option<Value>> = vec![None; g.logits + 1];
        let mut x = Some(x);
        for n in &g.nodes[..=g.logits] {
            // Take the inputs, dropping each one whose last reader is this node.
            let mut ins: Vec<Value> = Vec::with_capacity(n.inputs.len());
            for &j in &n.inputs {
                ins.push(values[j].clone().unwrap_or_else(|| unreachable_value(g, j)));
            }
            for &j in &n.inputs {
                if plan.last_use[j] == n.id {
                    values[j] = None;
                }
            }
            let mut ins = ins.into_iter();
            let mut arg = || ins.next().unwrap_or_else(|| unreachable_value(g, n.id));
            let layer = plan.layer[n.id].map(|l| &self.layers[l]);
            let out = match (&n.op, layer) {
                (LoweredOp::Input, _) => x.take().unwrap_or_else(|| unreachable_value(g, n.id)),
                (_, Some(Layer::Conv(m))) => Value::Map(conv2d(m, arg().map())),
                (_, Some(Layer::Norm(m))) => match arg() {
                    Value::Map(t) => Value::Map(batch_norm(m, t)),
                    Value::Flat(t) => Value::Flat(batch_norm(m, t)),
                },
                (_, Some(Layer::Linear(m))) => Value::Flat(m.forward(arg().flat())),
                (_, Some(Layer::MaxPool(m))) => Value::Map(m.forward(arg().map())),
                (_, Some(Layer::AvgPool(m))) => Value::Map(m.forward(arg().map())),
                (_, Some(Layer::AdaptiveAvgPool(m))) => Value::Map(m.forward(arg().map())),
                (_, Some(Layer::Dropout(m))) => match arg() {
                    Value::Map(t) => Value::Map(m.forward(t)),
                    Value::Flat(t) => Value::Flat(m.forward(t)),
                },
                (_, Some(Layer::PRelu(m))) => match arg() {
                    Value::Map(t) => Value::Map(activation::prelu_forward(m, t)),
                    Value::Flat(t) => Value::Flat(activation::prelu_forward(m, t)),
                },
                (LoweredOp::Unit { unit, attrs }, layer) => {
                    let run = ops::unit(unit).unwrap_or_else(|| unreachable_unit(g, n.id));
                    let m = match layer {
                        Some(Layer::Unit(m)) => Some(m),
                        _ => None,
                    };
                    let y = (run.forward)(attrs, m, arg().map());
                    if n.output.len() == 1 {
                        Value::Flat(y.flatten(1, 3))
                    } else {
                        Value::Map(y)
                    }
                }
                (LoweredOp::Act { act }, _) => match arg() {
                    Value::Map(t) => Value::Map(activation::forward(*act, t)),
                    Value::Flat(t) => Value::Flat(activation::forward(*act, t)),
                },
                (LoweredOp::Highway { .. }, _) => {
                    // F(x)·σ(g) + x·(1 − σ(g)) = x + (F(x) − x)·σ(g)
                    match (arg(), arg(), arg()) {
                        (Value::Map(f), Value::Map(x), Value::Map(g)) => {
                            Value::Map(x.clone() + (f - x) * sigmoid(g))
                        }
                        (f, x, g) => {
                            let x = x.flat();
                            Value::Flat(x.clone() + (f.flat() - x) * sigmoid(g.flat()))
                        }
                    }
                }
                (LoweredOp::Softmax, _) => match arg() {
                    Value::Map(t) => Value::Map(softmax(t, 1)),
                    Value::Flat(t) => Value::Flat(softmax(t, 1)),
                },
                (LoweredOp::Flatten, _) => Value::Flat(arg().flat()),
                (LoweredOp::Add, _) => match (arg(), arg()) {
                    (Value::Map(a), Value::Map(b)) => Value::Map(a + b),
                    (a, b) => Value::Flat(a.flat() + b.flat()),
                },
                (
                    LoweredOp::ZeroPadSubsample {
                        stride,
                        pad_before,
                        pad_after,
                    },
                    _,
                ) => Value::Map(zero_pad_subsample(
                    arg().map(),
                    *stride,
                    *pad_before,
                    *pad_after,
                )),
                (op, _) => panic!("archc-runtime: no layer for {} node", op.kind()),
            };
            values[n.id] = Some(out);
        }
        values[g.logits]
            .take()
            .unwrap_or_else(|| unreachable_value(g, g.logits))
            .flat()
    }
}

#[cold]
fn unreachable_unit(g: &LoweredGraph, id: usize) -> &'static ops::RuntimeUnit {
    panic!(
        "archc-runtime: node %{id} of `{}` has no runtime unit (check() refuses such a graph)",
        g.network
    )
}

#[cold]
fn unreachable_value(g: &LoweredGraph, id: usize) -> Value {
    panic!(
        "archc-runtime: value of node %{id} of `{}` was dropped before its last use",
        g.network
    )
}

/// Option A's shortcut: `x[:, :, ::s, ::s]`, then `pad_before` and `pad_after` zero channels.
///
/// The subsampling is an index selection rather than a stepped slice: burn-tch 0.22.1's
/// backward of a stepped slice (`slice_assign`) calls `view` on a non-contiguous gradient and
/// LibTorch refuses (found by running the training test on LibTorch CPU).
pub fn zero_pad_subsample(x: Tensor<4>, stride: usize, before: usize, after: usize) -> Tensor<4> {
    let x = if stride > 1 {
        let [_, _, h, w] = x.dims();
        let device = x.device();
        let rows = Tensor::<1, Int>::arange_step(0..h as i64, stride, &device);
        let cols = Tensor::<1, Int>::arange_step(0..w as i64, stride, &device);
        x.select(2, rows).select(3, cols)
    } else {
        x
    };
    if before == 0 && after == 0 {
        return x;
    }
    let [n, _, h, w] = x.dims();
    let device = x.device();
    let mut parts = Vec::with_capacity(3);
    if before > 0 {
        parts.push(Tensor::zeros([n, before, h, w], &device));
    }
    parts.push(x);
    if after > 0 {
        parts.push(Tensor::zeros([n, after, h, w], &device));
    }
    Tensor::cat(parts, 1)
}

/// A convolution layer: Burn's `Conv2d`, except when training on LibTorch, where LibTorch's own
/// forward and backward kernels run (`crate::fused`, feature `tch`).
fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "tch")]
    if crate::fused::is_libtorch_training(&x.device()) {
        return crate::fused::conv2d(conv, x);
    }
    conv.forward(x)
}

/// Batch norm as PyTorch does it: in training, normalise with the batch statistics and update
/// the running statistics with momentum `m` as `(1 - m) * running + m * batch`, using the
/// unbiased batch variance; otherwise normalise with the running statistics.
///
/// Training on LibTorch uses LibTorch's own batch norm kernels (`crate::fused`, feature `tch`),
/// elsewhere Burn's `batch_norm_train`; the running statistics are updated here either way.
pub fn batch_norm<const D: usize>(bn: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    if !(x.device().is_autodiff() && bn.training.is_enabled()) {
        return bn.forward(x);
    }
    let dims = x.dims();
    let per_channel: usize = dims.iter().product::<usize>() / dims[1].max(1);
    let (gamma, beta) = (bn.gamma.val(), bn.beta.val());
    #[cfg(feature = "tch")]
    let out = if crate::fused::is_libtorch_training(&x.device()) {
        crate::fused::batch_norm_train(x, gamma, beta, bn.epsilon)
    } else {
        burn::tensor::module::batch_norm_train(x, gamma, beta, bn.epsilon)
    };
    #[cfg(not(feature = "tch"))]
    let out = burn::tensor::module::batch_norm_train(x, gamma, beta, bn.epsilon);
    let correction = if per_channel > 1 {
        per_channel as f64 / (per_channel as f64 - 1.0)
    } else {
        1.0
    };
    let m = bn.momentum;
    let device = out.mean.device();
    let mean = bn.running_mean.value_sync().to_device(&device);
    let var = bn.running_var.value_sync().to_device(&device);
    let mean = mean.mul_scalar(1.0 - m) + out.mean.detach().mul_scalar(m);
    let var = var.mul_scalar(1.0 - m) + out.variance.detach().mul_scalar(m * correction);
    bn.running_mean.update(mean.detach());
    bn.running_var.update(var.detach());
    out.output
}

/// Counts float parameters, putting those under `running_mean` / `running_var` apart.
#[derive(Default)]
struct Counter {
    path: Vec<String>,
    trainable: u64,
    buffers: u64,
}

impl ModuleVisitor for Counter {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let n = p.lazy_shape().num_elements() as u64;
        match self.path.last().map(String::as_str) {
            Some("running_mean" | "running_var") => self.buffers += n,
            _ => self.trainable += n,
        }
    }
}

struct Materialize;

impl ModuleVisitor for Materialize {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let _ = p.val();
    }
}
