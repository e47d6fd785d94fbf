//! The activations' runtime unit (`LoweredOp::Act` and `LoweredOp::PRelu`): validation, the
//! forward of every [`Activation`] on Burn tensors (Burn's autodiff gives the backward),
//! PReLU's module and weights, and the Burn API text `archc codegen` writes.
//! Definitions are PyTorch's (`torch.nn.functional`), checked against it by
//! `runtime/tests/activations.rs`.

use archc_compiler::layers::activation::{Activation, PRELU_INIT};
use burn::nn::PRelu;
use burn::tensor::activation::{
    gelu, gelu_approximate, hard_sigmoid, hard_swish, leaky_relu, prelu, relu, sigmoid, silu, tanh,
};
use burn::tensor::{Device, Tensor};

use super::{inputs, layer, value, Gen, Init, Layer, NodeOp, Py, Rust, Saved, Torch, Value};
use crate::init::{param, param_from, Fill};
use crate::onnx::{attr_float, attr_str, Onnx};

/// `LoweredOp::Act`: an activation without parameters.
pub struct ActOp(pub Activation);

impl NodeOp for ActOp {
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [x] = inputs(ins)?;
        if let Activation::LeakyRelu { slope } = self.0 {
            if !slope.is_finite() {
                return Err(format!("leaky_relu slope {slope} is not finite"));
            }
        }
        Ok(x.to_vec())
    }

    fn forward(&self, _: Option<&Layer>, ins: Vec<Value>) -> Value {
        value(ins).each(|t| forward(self.0, t), |t| forward(self.0, t))
    }

    fn is_relu(&self) -> bool {
        self.0 == Activation::Relu
    }

    fn pytorch(&self, py: &Py) -> Result<Torch, String> {
        Ok(Torch::expr(python_text(self.0, py.x(0))))
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        Ok(Rust::expr(rust_text(self.0, g.x(0))))
    }

    fn onnx(&self, o: &mut Onnx) -> Result<String, String> {
        let x = o.x(0);
        onnx_act(o, self.0, &x)
    }
}

/// `LoweredOp::PRelu`: its number of slopes (one per channel).
pub struct PReluOp(pub usize);

impl NodeOp for PReluOp {
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [x] = inputs(ins)?;
        let n = self.0;
        if x.first() != Some(&n) {
            return Err(format!("input {x:?} has not {n} channels"));
        }
        Ok(x.to_vec())
    }

    fn build(&self, init: &Init) -> Option<Layer> {
        Some(Layer::PRelu(prelu_module(
            self.0,
            init.seed,
            init.node,
            init.device,
        )))
    }

    fn forward(&self, l: Option<&Layer>, ins: Vec<Value>) -> Value {
        let m: &PRelu = layer(l, |l| match l {
            Layer::PRelu(m) => Some(m),
            _ => None,
        });
        value(ins).each(|t| prelu_forward(m, t), |t| prelu_forward(m, t))
    }

    fn load(&self, l: &mut Layer, take: &mut dyn FnMut(&str) -> Vec<f32>) {
        let Layer::PRelu(p) = l else { return };
        let [c] = p.alpha.lazy_shape().dims::<1>();
        let device = p.alpha.lazy_device();
        p.alpha = param_from(p.alpha.id, take("weight"), [c], &device);
    }

    fn save(&self, l: &Layer) -> Vec<Saved> {
        match l {
            Layer::PRelu(p) => vec![Saved::F32("weight", p.alpha.val().into_data())],
            _ => Vec::new(),
        }
    }

    fn pytorch(&self, py: &Py) -> Result<Torch, String> {
        let init = format!(
            "nn.PReLU({}, init={})",
            self.0,
            crate::pytorch::float(PRELU_INIT)
        );
        Ok(Torch::module(init, py.call()))
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        let init = format!(
            "PReluConfig::new().with_num_parameters({}).init(device)",
            self.0
        );
        let mut r = Rust::module("PRelu", init, g.forward());
        r.uses.push("use burn::nn::{PRelu, PReluConfig};");
        Ok(r)
    }

    /// `PRelu` with the slopes as `[C, 1, 1]` on a map (ONNX broadcasts from the last axis).
    fn onnx(&self, o: &mut Onnx) -> Result<String, String> {
        let x = o.x(0);
        let slope = o.per_channel(0, "weight");
        Ok(o.op("PRelu", &[&x, &slope], Vec::new()))
    }
}

/// `act(x)` for an activation without parameters (PReLU goes through [`prelu_forward`]).
pub fn forward<const D: usize>(act: Activation, x: Tensor<D>) -> Tensor<D> {
    match act {
        Activation::Relu => relu_layer(x),
        Activation::Relu6 => x.clamp(0.0, 6.0),
        Activation::Sigmoid => sigmoid(x),
        // PyTorch: relu6(x + 3) / 6 = clamp(x / 6 + 1/2, 0, 1).
        Activation::HardSigmoid => hard_sigmoid(x, 1.0 / 6.0, 0.5),
        Activation::Silu => silu(x),
        Activation::HardSwish => hard_swish(x),
        Activation::Gelu { tanh: false } => gelu(x),
        Activation::Gelu { tanh: true } => gelu_approximate(x),
        Activation::Tanh => tanh(x),
        Activation::LeakyRelu { slope } => leaky_relu(x, slope),
        Activation::PRelu => unreachable!("PReLU has parameters: prelu_forward"),
    }
}

/// PReLU over the channels (dimension 1) with the module's slopes.
pub fn prelu_forward<const D: usize>(m: &PRelu, x: Tensor<D>) -> Tensor<D> {
    prelu(x, m.alpha.val())
}

/// A PReLU module of `channels` slopes, each starting at 0.25 as PyTorch's.
pub fn prelu_module(channels: usize, seed: u64, node: usize, device: &Device) -> PRelu {
    PRelu {
        alpha: param(
            [channels],
            Fill::Constant(PRELU_INIT as f32),
            seed,
            node,
            0,
            device,
        ),
        alpha_value: PRELU_INIT,
    }
}

/// ReLU: Burn's, except when training on LibTorch, where LibTorch's own kernels run forward and
/// backward (`crate::fused`, feature `tch`), and on burn-flex, where archc's run (`crate::flex`).
pub fn relu_layer<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "tch")]
    if crate::fused::is_libtorch_training(&x.device()) {
        return crate::fused::relu(x);
    }
    #[cfg(feature = "flex")]
    if crate::flex::applies(&x.device(), x.dtype()) {
        return crate::flex::relu(x);
    }
    relu(x)
}

/// `act(x)` as ONNX nodes: the operator of the same definition where the opset has one (`Gelu`
/// from opset 20), else its decomposition (SiLU as `x·σ(x)`, GELU with `Erf` or `Tanh`).
pub fn onnx_act(o: &mut Onnx, act: Activation, x: &str) -> Result<String, String> {
    let none = Vec::new;
    Ok(match act {
        Activation::Relu => o.op("Relu", &[x], none()),
        Activation::Relu6 => {
            let (lo, hi) = (o.scalar(0.0), o.scalar(6.0));
            o.op("Clip", &[x, &lo, &hi], none())
        }
        Activation::Sigmoid => o.op("Sigmoid", &[x], none()),
        Activation::HardSigmoid => o.op(
            "HardSigmoid",
            &[x],
            vec![attr_float("alpha", 1.0 / 6.0), attr_float("beta", 0.5)],
        ),
        Activation::Silu => {
            let s = o.op("Sigmoid", &[x], none());
            o.op("Mul", &[x, &s], none())
        }
        Activation::HardSwish => o.op("HardSwish", &[x], none()),
        Activation::Gelu { tanh } if o.opset >= 20 => {
            let approximate = if tanh { "tanh" } else { "none" };
            o.op("Gelu", &[x], vec![attr_str("approximate", approximate)])
        }
        Activation::Gelu { tanh: false } => {
            // x · (1 + erf(x / √2)) / 2
            let r2 = o.scalar(std::f64::consts::SQRT_2);
            let d = o.op("Div", &[x, &r2], none());
            let e = o.op("Erf", &[&d], none());
            half_x_one_plus(o, x, &e)
        }
        Activation::Gelu { tanh: true } => {
            // x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))) / 2
            let three = o.scalar(3.0);
            let cube = o.op("Pow", &[x, &three], none());
            let k = o.scalar(0.044715);
            let kc = o.op("Mul", &[&cube, &k], none());
            let inner = o.op("Add", &[x, &kc], none());
            let c = o.scalar((2.0 / std::f64::consts::PI).sqrt());
            let arg = o.op("Mul", &[&inner, &c], none());
            let t = o.op("Tanh", &[&arg], none());
            half_x_one_plus(o, x, &t)
        }
        Activation::Tanh => o.op("Tanh", &[x], none()),
        Activation::LeakyRelu { slope } => {
            o.op("LeakyRelu", &[x], vec![attr_float("alpha", slope)])
        }
        Activation::PRelu => return Err("PReLU has parameters: PReluOp".into()),
    })
}

/// `x · (1 + t) / 2`.
fn half_x_one_plus(o: &mut Onnx, x: &str, t: &str) -> String {
    let (one, half) = (o.scalar(1.0), o.scalar(0.5));
    let p = o.op("Add", &[t, &one], Vec::new());
    let xp = o.op("Mul", &[x, &p], Vec::new());
    o.op("Mul", &[&xp, &half], Vec::new())
}

/// The Burn expression `archc codegen` writes for `act` applied to the expression `x`.
/// An activation as a `torch` call on the Python expression `x`.
pub fn python_text(act: Activation, x: &str) -> String {
    match act {
        Activation::Relu => format!("F.relu({x})"),
        Activation::Relu6 => format!("F.relu6({x})"),
        Activation::Sigmoid => format!("torch.sigmoid({x})"),
        Activation::HardSigmoid => format!("F.hardsigmoid({x})"),
        Activation::Silu => format!("F.silu({x})"),
        Activation::HardSwish => format!("F.hardswish({x})"),
        Activation::Gelu { tanh: false } => format!("F.gelu({x})"),
        Activation::Gelu { tanh: true } => format!("F.gelu({x}, approximate=\"tanh\")"),
        Activation::Tanh => format!("torch.tanh({x})"),
        Activation::LeakyRelu { slope } => {
            format!("F.leaky_relu({x}, {})", crate::pytorch::float(slope))
        }
        Activation::PRelu => unreachable!("PReLU is a module: nn.PReLU"),
    }
}

pub fn rust_text(act: Activation, x: &str) -> String {
    match act {
        Activation::Relu => format!("relu({x})"),
        Activation::Relu6 => format!("{x}.clamp(0.0, 6.0)"),
        Activation::Sigmoid => format!("sigmoid({x})"),
        Activation::HardSigmoid => format!("hard_sigmoid({x}, 1.0 / 6.0, 0.5)"),
        Activation::Silu => format!("silu({x})"),
        Activation::HardSwish => format!("hard_swish({x})"),
        Activation::Gelu { tanh: false } => format!("gelu({x})"),
        Activation::Gelu { tanh: true } => format!("gelu_approximate({x})"),
        Activation::Tanh => format!("tanh({x})"),
        Activation::LeakyRelu { slope } => format!("leaky_relu({x}, {slope:?})"),
        Activation::PRelu => unreachable!("PReLU is a module: its field's forward"),
    }
}

/// The functions [`rust_text`] calls, for the generated file's `use` line.
pub const RUST_IMPORTS: &str = "gelu, gelu_approximate, hard_sigmoid, hard_swish, leaky_relu, relu, sigmoid, silu, softmax, tanh";
