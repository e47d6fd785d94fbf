//! Batch norm (`LoweredOp::BatchNorm`, PyTorch's running statistics) and the `layernorm` and
//! `groupnorm` units.
//!
//! Layer norm over channels and group norm: their module (a scale and a shift per channel,
//! PyTorch's `weight` and `bias`, initialised to 1 and 0) and forward, with the statistics of
//! each sample (biased variance, as PyTorch). A vector `[N, F]` is normalised as a map
//! `[N, F, 1, 1]`. Checked against `F.layer_norm` and `F.group_norm` by `runtime/tests/ops.rs`;
//! their generated code (Burn's `LayerNorm` over the channels, Burn's `GroupNorm`) against the
//! runtime by `runtime/tests/codegen_logits.rs`.

use burn::module::{Module, RunningState};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::{Device, Tensor, TensorData};
use linkme::distributed_slice;

use super::activation::relu_layer;
use super::{
    divides, float, inputs, int, layer, value, Attrs, Gen, Init, Layer, NodeOp, Py, RuntimeUnit,
    Rust, Saved, Torch, UnitLayer, Value, RUNTIME_UNITS,
};
use crate::init::{param, param_from, Fill};
use crate::onnx::{attr_float, attr_int, attr_ints, Onnx};
use crate::pytorch::float as pyfloat;

/// `LoweredOp::BatchNorm`'s fields.
pub struct BatchNormOp {
    pub num_features: usize,
    pub epsilon: f64,
    pub momentum: f64,
}

impl NodeOp for BatchNormOp {
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [x] = inputs(ins)?;
        let BatchNormOp {
            num_features,
            epsilon,
            momentum,
        } = *self;
        if x.first() != Some(&num_features) {
            return Err(format!("input {x:?} has not {num_features} channels"));
        }
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(format!("epsilon {epsilon} is not positive"));
        }
        if !(0.0..=1.0).contains(&momentum) {
            return Err(format!("momentum {momentum} is not in [0, 1]"));
        }
        Ok(x.to_vec())
    }

    fn build(&self, init: &Init) -> Option<Layer> {
        Some(Layer::Norm(
            BatchNormConfig::new(self.num_features)
                .with_epsilon(self.epsilon)
                .with_momentum(self.momentum)
                .init(init.device),
        ))
    }

    fn forward(&self, l: Option<&Layer>, ins: Vec<Value>) -> Value {
        let m: &BatchNorm = layer(l, |l| match l {
            Layer::Norm(m) => Some(m),
            _ => None,
        });
        value(ins).each(|t| batch_norm(m, t), |t| batch_norm(m, t))
    }

    fn fuses_relu(&self, input: &Value) -> bool {
        #[cfg(feature = "flex")]
        {
            let (device, dtype) = match input {
                Value::Map(t) => (t.device(), t.dtype()),
                Value::Flat(t) => (t.device(), t.dtype()),
            };
            crate::flex::applies(&device, dtype)
        }
        #[cfg(not(feature = "flex"))]
        {
            let _ = input;
            false
        }
    }

    fn forward_relu(&self, l: Option<&Layer>, ins: Vec<Value>) -> Value {
        let m: &BatchNorm = layer(l, |l| match l {
            Layer::Norm(m) => Some(m),
            _ => None,
        });
        value(ins).each(
            |t| batch_norm_then(m, t, true),
            |t| batch_norm_then(m, t, true),
        )
    }

    fn load(&self, l: &mut Layer, take: &mut dyn FnMut(&str) -> Vec<f32>) {
        let Layer::Norm(bn) = l else { return };
        let [c] = bn.gamma.lazy_shape().dims::<1>();
        let device = bn.gamma.lazy_device();
        bn.gamma = param_from(bn.gamma.id, take("weight"), [c], &device);
        bn.beta = param_from(bn.beta.id, take("bias"), [c], &device);
        let stat = |v: Vec<f32>| {
            RunningState::new(Tensor::<1>::from_data(TensorData::new(v, [c]), &device))
        };
        bn.running_mean = stat(take("running_mean"));
        bn.running_var = stat(take("running_var"));
    }

    fn save(&self, l: &Layer) -> Vec<Saved> {
        let Layer::Norm(bn) = l else {
            return Vec::new();
        };
        vec![
            Saved::F32("weight", bn.gamma.val().into_data()),
            Saved::F32("bias", bn.beta.val().into_data()),
            // `valid()` takes in the pending updates of every thread (the workers of a
            // data-parallel step); `value_sync()` only this one's.
            Saved::F32("running_mean", bn.running_mean.valid().value().into_data()),
            Saved::F32("running_var", bn.running_var.valid().value().into_data()),
            Saved::I64("num_batches_tracked", 0),
        ]
    }

    fn ignored_keys(&self) -> &'static [&'static str] {
        &["num_batches_tracked"]
    }

    fn pytorch(&self, py: &Py) -> Result<Torch, String> {
        let kind = if py.rank(0) == 4 { "2d" } else { "1d" };
        let mut init = format!("nn.BatchNorm{kind}({}", self.num_features);
        if self.epsilon != 1e-5 {
            init.push_str(&format!(", eps={}", pyfloat(self.epsilon)));
        }
        if self.momentum != 0.1 {
            init.push_str(&format!(", momentum={}", pyfloat(self.momentum)));
        }
        init.push(')');
        Ok(Torch::module(init, py.call()))
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        let init = format!(
            "BatchNormConfig::new({})\n                .with_epsilon({:?})\n                .with_momentum({:?})\n                .init(device)",
            self.num_features, self.epsilon, self.momentum
        );
        Ok(Rust::module("BatchNorm", init, g.forward()))
    }

    /// `BatchNormalization` in inference form: the running statistics.
    fn onnx(&self, o: &mut Onnx) -> Result<String, String> {
        let x = o.x(0);
        let [w, b, m, v] = ["weight", "bias", "running_mean", "running_var"].map(|s| o.param(s));
        let attrs = vec![attr_float("epsilon", self.epsilon)];
        Ok(o.op("BatchNormalization", &[&x, &w, &b, &m, &v], attrs))
    }
}

/// Batch norm as PyTorch does it: in training, normalise with the batch statistics and update
/// the running statistics with momentum `m` as `(1 - m) * running + m * batch`, using the
/// unbiased batch variance; otherwise normalise with the running statistics.
///
/// Training on LibTorch uses LibTorch's own batch norm kernels (`crate::fused`, feature `tch`),
/// on burn-flex archc's (`crate::flex`), elsewhere Burn's `batch_norm_train`; the running
/// statistics are updated here either way.
pub fn batch_norm<const D: usize>(bn: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    batch_norm_then(bn, x, false)
}

/// [`batch_norm`], followed by ReLU when `relu`: on burn-flex in one pass forward and backward
/// (`crate::flex`), elsewhere one after the other.
fn batch_norm_then<const D: usize>(bn: &BatchNorm, x: Tensor<D>, relu: bool) -> Tensor<D> {
    if !(x.device().is_autodiff() && bn.training.is_enabled()) {
        #[cfg(feature = "flex")]
        if !x.device().is_autodiff() && crate::flex::applies(&x.device(), x.dtype()) {
            return crate::flex::batch_norm_eval(bn, x, relu);
        }
        let y = bn.forward(x);
        return if relu { relu_layer(y) } else { y };
    }
    let dims = x.dims();
    let per_channel: usize = dims.iter().product::<usize>() / dims[1].max(1);
    let (gamma, beta) = (bn.gamma.val(), bn.beta.val());
    let out = batch_norm_train(x, gamma, beta, bn.epsilon, relu);
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

/// Training-mode batch norm (the output, the batch mean and biased variance), the output
/// followed by ReLU when `relu`: on LibTorch's kernels (`crate::fused`, feature `tch`), archc's
/// on burn-flex (`crate::flex`, feature `flex`: ReLU in the same passes), else Burn's
/// `batch_norm_train`.
fn batch_norm_train<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    relu: bool,
) -> burn::tensor::module::BatchNormTrainOutput<D> {
    #[cfg(feature = "flex")]
    if crate::flex::applies(&x.device(), x.dtype()) {
        return crate::flex::batch_norm_train(x, gamma, beta, epsilon, relu);
    }
    #[cfg(feature = "tch")]
    let mut out = if crate::fused::is_libtorch_training(&x.device()) {
        crate::fused::batch_norm_train(x, gamma, beta, epsilon)
    } else {
        burn::tensor::module::batch_norm_train(x, gamma, beta, epsilon)
    };
    #[cfg(not(feature = "tch"))]
    let mut out = burn::tensor::module::batch_norm_train(x, gamma, beta, epsilon);
    if relu {
        out.output = relu_layer(out.output);
    }
    out
}

#[distributed_slice(RUNTIME_UNITS)]
static LAYERNORM: RuntimeUnit = RuntimeUnit {
    unit: "layernorm",
    check: |a, ins| check(a, ins, "num_features", None),
    build: |a, seed, node, device| Some(module(int(a, "num_features"), seed, node, device)),
    forward: |a, m, ins| {
        let m = m.expect("a layer norm has its module");
        value(ins).as_map(|x| affine(m, normalise(x, 0, float(a, "epsilon"))))
    },
    // Burn's `LayerNorm` normalises the last dimension: the channels are moved there and back.
    pytorch: |a, py| {
        let init = format!(
            "nn.LayerNorm({}, eps={})",
            int(a, "num_features"),
            pyfloat(float(a, "epsilon"))
        );
        // Over the channels at each position, as torchvision's ConvNeXt's LayerNorm2d.
        let expr = if py.rank(0) == 4 {
            format!(
                "{}({}.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)",
                py.module,
                py.x(0)
            )
        } else {
            py.call()
        };
        Ok(Torch::module(init, expr))
    },
    rust: |a, g| {
        let init = format!(
            "LayerNormConfig::new({})\n                .with_epsilon({:?})\n                .init(device)",
            int(a, "num_features"),
            float(a, "epsilon")
        );
        let expr = if g.inputs[0].1 == 4 {
            format!(
                "self.{}.forward({}.permute([0, 2, 3, 1])).permute([0, 3, 1, 2])",
                g.field,
                g.x(0)
            )
        } else {
            g.forward()
        };
        let mut r = Rust::module("LayerNorm", init, expr);
        r.uses.push("use burn::nn::{LayerNorm, LayerNormConfig};");
        Ok(r)
    },
    // `LayerNormalization` over the last axis: a map's channels are moved there and back.
    onnx: |a, o| {
        let x = o.x(0);
        let (w, b) = (o.param("weight"), o.param("bias"));
        let attrs = || {
            vec![
                attr_int("axis", -1),
                attr_float("epsilon", float(a, "epsilon")),
            ]
        };
        if !o.is_map(0) {
            return Ok(o.op("LayerNormalization", &[&x, &w, &b], attrs()));
        }
        let last = o.op("Transpose", &[&x], vec![attr_ints("perm", &[0, 2, 3, 1])]);
        let n = o.op("LayerNormalization", &[&last, &w, &b], attrs());
        Ok(o.op("Transpose", &[&n], vec![attr_ints("perm", &[0, 3, 1, 2])]))
    },
};

#[distributed_slice(RUNTIME_UNITS)]
static GROUPNORM: RuntimeUnit = RuntimeUnit {
    unit: "groupnorm",
    check: |a, ins| check(a, ins, "num_channels", Some(int(a, "num_groups"))),
    build: |a, seed, node, device| Some(module(int(a, "num_channels"), seed, node, device)),
    forward: |a, m, ins| {
        let m = m.expect("a group norm has its module");
        let (groups, eps) = (int(a, "num_groups"), float(a, "epsilon"));
        value(ins).as_map(|x| affine(m, normalise(x, groups, eps)))
    },
    // Burn's `GroupNorm` is PyTorch's; a vector goes through it as a map `[N, F, 1, 1]`.
    pytorch: |a, py| {
        let init = format!(
            "nn.GroupNorm({}, {}, eps={})",
            int(a, "num_groups"),
            int(a, "num_channels"),
            pyfloat(float(a, "epsilon"))
        );
        Ok(Torch::module(init, py.call()))
    },
    rust: |a, g| {
        let init = format!(
            "GroupNormConfig::new({}, {})\n                .with_epsilon({:?})\n                .init(device)",
            int(a, "num_groups"),
            int(a, "num_channels"),
            float(a, "epsilon")
        );
        let expr = if g.inputs[0].1 == 4 {
            g.forward()
        } else {
            format!(
                "self.{}.forward({}.unsqueeze_dims::<4>(&[2, 3])).flatten(1, 3)",
                g.field,
                g.x(0)
            )
        };
        let mut r = Rust::module("GroupNorm", init, expr);
        r.uses.push("use burn::nn::{GroupNorm, GroupNormConfig};");
        Ok(r)
    },
    // The channels as `[N, G, C/G·H·W]`, each group standardised by `InstanceNormalization`
    // (scale 1, shift 0), back to the input's shape, then the scale and shift per channel:
    // the same at every opset (opset 18's `GroupNormalization` scales per group).
    onnx: |a, o| {
        let x = o.x(0);
        let g = int(a, "num_groups");
        let grouped = o.reshape(&x, &[0, g as i64, -1]);
        let ones = o.floats(&vec![1.0; g], &[g as i64]);
        let zeros = o.floats(&vec![0.0; g], &[g as i64]);
        let eps = attr_float("epsilon", float(a, "epsilon"));
        let n = o.op(
            "InstanceNormalization",
            &[&grouped, &ones, &zeros],
            vec![eps],
        );
        let mut shape = vec![0];
        shape.extend(o.shape(0).iter().map(|&d| d as i64));
        let n = o.reshape(&n, &shape);
        let (w, b) = (o.per_channel(0, "weight"), o.per_channel(0, "bias"));
        let scaled = o.op("Mul", &[&n, &w], Vec::new());
        Ok(o.op("Add", &[&scaled, &b], Vec::new()))
    },
};

/// `layer_scale`: `x · γ` with a learned `γ` per channel (ConvNeXt), `γ` starting at `init`.
#[distributed_slice(RUNTIME_UNITS)]
static LAYER_SCALE: RuntimeUnit = RuntimeUnit {
    unit: "layer_scale",
    check: |a, ins| {
        let [input] = inputs(ins)?;
        let c = int(a, "num_features");
        if input.first() != Some(&c) {
            return Err(format!("input {input:?} has not {c} channels"));
        }
        if !float(a, "init").is_finite() {
            return Err("the initial scale is not finite".into());
        }
        Ok(input.to_vec())
    },
    build: |a, seed, node, device| {
        let init = Fill::Constant(float(a, "init") as f32);
        let c = int(a, "num_features");
        Some(UnitLayer::new(vec![param(
            [c],
            init,
            seed,
            node,
            0,
            device,
        )]))
    },
    forward: |_, m, ins| {
        let m = m.expect("a layer scale has its scale");
        value(ins).as_map(|x| {
            let [_, c, _, _] = x.dims();
            x * m.params[0].val().reshape([1, c, 1, 1])
        })
    },
    pytorch: |a, py| {
        let c = int(a, "num_features");
        let init = format!("torch.full(({c}, 1, 1), {})", pyfloat(float(a, "init")));
        let scale = format!("{}.layer_scale", py.module);
        let expr = if py.rank(0) == 4 {
            format!("{} * {scale}", py.x(0))
        } else {
            format!("{} * {scale}.view(1, {c})", py.x(0))
        };
        Ok(Torch {
            params: vec![("layer_scale", init)],
            expr,
            ..Torch::default()
        })
    },
    rust: |a, g| {
        let c = int(a, "num_features");
        let init = format!(
            "Param::from_tensor(Tensor::full([{c}], {:?}, device))",
            float(a, "init")
        );
        let x = g.x(0);
        let expr = if g.inputs[0].1 == 4 {
            format!("{x} * self.{}.val().reshape([1, {c}, 1, 1])", g.field)
        } else {
            format!("{x} * self.{}.val().reshape([1, {c}])", g.field)
        };
        let mut r = Rust::module("Param<Tensor<1>>", init, expr);
        r.uses.push("use burn::module::Param;");
        Ok(r)
    },
    // The initializer is the state dict's `[C, 1, 1]`: as it is for a map, `[C]` for vectors.
    onnx: |a, o| {
        let x = o.x(0);
        let gamma = o.param("layer_scale");
        let gamma = if o.is_map(0) {
            gamma
        } else {
            o.reshape(&gamma, &[int(a, "num_features") as i64])
        };
        Ok(o.op("Mul", &[&x, &gamma], Vec::new()))
    },
};

fn check(
    a: &Attrs,
    ins: &[&[usize]],
    channels: &str,
    groups: Option<usize>,
) -> Result<Vec<usize>, String> {
    let [input] = inputs(ins)?;
    let c = int(a, channels);
    if input.first() != Some(&c) {
        return Err(format!("input {input:?} has not {c} channels"));
    }
    if let Some(g) = groups {
        divides("groups", g, c)?;
    }
    let eps = float(a, "epsilon");
    if !(eps.is_finite() && eps > 0.0) {
        return Err(format!("epsilon {eps} is not positive"));
    }
    Ok(input.to_vec())
}

fn module(channels: usize, seed: u64, node: usize, device: &Device) -> UnitLayer {
    UnitLayer::new(vec![
        param([channels], Fill::Constant(1.0), seed, node, 0, device),
        param([channels], Fill::Constant(0.0), seed, node, 1, device),
    ])
}

/// Normalise `x` `[N, C, H, W]`: over the channels at each position (`groups` 0, layer norm)
/// or over each of `groups` groups of channels and all positions (group norm).
fn normalise(x: Tensor<4>, groups: usize, eps: f64) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    if groups == 0 {
        standardise(x, 1, eps)
    } else {
        standardise(x.reshape([n, groups, c / groups * h * w]), 2, eps).reshape([n, c, h, w])
    }
}

/// The learned scale and shift per channel.
fn affine(m: &UnitLayer, x: Tensor<4>) -> Tensor<4> {
    let [_, c, _, _] = x.dims();
    let scale = m.params[0].val().reshape([1, c, 1, 1]);
    let shift = m.params[1].val().reshape([1, c, 1, 1]);
    x * scale + shift
}

/// `(x − mean) / sqrt(var + eps)` over dimension `dim` (biased variance).
fn standardise<const D: usize>(x: Tensor<D>, dim: usize, eps: f64) -> Tensor<D> {
    let mean = x.clone().mean_dim(dim);
    let centred = x - mean;
    let var = centred.clone().powi_scalar(2).mean_dim(dim);
    centred / (var + eps).sqrt()
}
