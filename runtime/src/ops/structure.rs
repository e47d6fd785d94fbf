//! The ops that wire, reshape or only act in training: `Highway` (three inputs),
//! `Flatten`, `Softmax`, `Dropout` and option A's `ZeroPadSubsample`: validation, forward and
//! codegen text (and `Dropout`'s Burn module).

use archc_compiler::layers::out_size;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::activation::{sigmoid, softmax};
use burn::tensor::{Int, Tensor};

use super::{
    inputs, layer, map_shape, value, values, Gen, Init, Layer, NodeOp, Py, Rust, Torch, Value,
};
use crate::onnx::{attr_int, attr_str, Onnx};

/// `LoweredOp::Dropout`: its probability.
pub struct DropoutOp(pub f64);

impl NodeOp for DropoutOp {
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [x] = inputs(ins)?;
        let prob = self.0;
        if !(0.0..=1.0).contains(&prob) {
            return Err(format!("dropout probability {prob} is not in [0, 1]"));
        }
        Ok(x.to_vec())
    }

    fn build(&self, _: &Init) -> Option<Layer> {
        Some(Layer::Dropout(DropoutConfig::new(self.0).init()))
    }

    fn forward(&self, l: Option<&Layer>, ins: Vec<Value>) -> Value {
        let m: &Dropout = layer(l, |l| match l {
            Layer::Dropout(m) => Some(m),
            _ => None,
        });
        value(ins).each(|t| m.forward(t), |t| m.forward(t))
    }

    fn pytorch(&self, py: &Py) -> Result<Torch, String> {
        Ok(Torch::expr(format!(
            "F.dropout({}, {}, self.training)",
            py.x(0),
            crate::pytorch::float(self.0)
        )))
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        let init = format!("DropoutConfig::new({:?}).init()", self.0);
        Ok(Rust::module("Dropout", init, g.forward()))
    }

    /// The identity in inference: no node, its input's value.
    fn onnx(&self, o: &mut Onnx) -> Result<String, String> {
        Ok(o.x(0))
    }
}

/// `LoweredOp::Softmax`: over the channels (or features).
pub struct SoftmaxOp;

impl NodeOp for SoftmaxOp {
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [x] = inputs(ins)?;
        Ok(x.to_vec())
    }

    fn forward(&self, _: Option<&Layer>, ins: Vec<Value>) -> Value {
        value(ins).each(|t| softmax(t, 1), |t| softmax(t, 1))
    }

    fn pytorch(&self, py: &Py) -> Result<Torch, String> {
        Ok(Torch::expr(format!("F.softmax({}, 1)", py.x(0))))
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        Ok(Rust::expr(format!("softmax({}, 1)", g.x(0))))
    }

    fn onnx(&self, o: &mut Onnx) -> Result<String, String> {
        let x = o.x(0);
        Ok(o.op("Softmax", &[&x], vec![attr_int("axis", 1)]))
    }
}

/// `LoweredOp::Flatten`: every dimension after the batch.
pub struct FlattenOp;

impl NodeOp for FlattenOp {
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [x] = inputs(ins)?;
        Ok(vec![x.iter().product()])
    }

    fn forward(&self, _: Option<&Layer>, ins: Vec<Value>) -> Value {
        Value::Flat(value(ins).flat())
    }

    fn pytorch(&self, py: &Py) -> Result<Torch, String> {
        Ok(Torch::expr(if py.rank(0) == 4 {
            format!("{}.flatten(1)", py.x(0))
        } else {
            py.x(0).to_string()
        }))
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        Ok(Rust::expr(if g.inputs[0].1 == 4 {
            format!("{}.flatten(1, 3)", g.x(0))
        } else {
            g.x(0).to_string()
        }))
    }

    fn onnx(&self, o: &mut Onnx) -> Result<String, String> {
        Ok(o.flat(0))
    }
}

/// `LoweredOp::Highway`: `[F(x), x, g]` to `F(x)·σ(g) + x·(1 − σ(g))`; its gate (the node of
/// `g`) starts with its bias at `gate_bias`.
pub struct HighwayOp(pub f64);

impl NodeOp for HighwayOp {
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [f, x, g] = inputs(ins)?;
        if x != f || g != f {
            return Err(format!("mixes shapes {f:?}, {x:?}, {g:?}"));
        }
        let gate_bias = self.0;
        if !gate_bias.is_finite() {
            return Err(format!("gate bias {gate_bias} is not finite"));
        }
        Ok(f.to_vec())
    }

    fn input_bias(&self) -> Option<(usize, f64)> {
        Some((2, self.0))
    }

    fn forward(&self, _: Option<&Layer>, ins: Vec<Value>) -> Value {
        // F(x)·σ(g) + x·(1 − σ(g)) = x + (F(x) − x)·σ(g). Operands are clones held through
        // each operation: burn-tch computes in place in an operand it believes it owns alone,
        // and F(x) is an activation's output that its backward reads (see `merge::fold`).
        match values(ins) {
            [Value::Map(f), Value::Map(x), Value::Map(g)] => {
                let s = sigmoid(g);
                let d = f.clone() - x.clone();
                Value::Map(x.clone() + d.clone() * s.clone())
            }
            [f, x, g] => {
                let (f, x, s) = (f.flat(), x.flat(), sigmoid(g.flat()));
                let d = f.clone() - x.clone();
                Value::Flat(x.clone() + d.clone() * s.clone())
            }
        }
    }

    fn pytorch(&self, py: &Py) -> Result<Torch, String> {
        let xs = py.xs();
        let (f, x, gate) = (&xs[0], &xs[1], &xs[2]);
        Ok(Torch::expr(format!(
            "{x} + ({f} - {x}) * torch.sigmoid({gate})"
        )))
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        let (f, x, gate) = (g.x(0), g.x(1), g.x(2));
        Ok(Rust::expr(format!("{x} + ({f} - {x}) * sigmoid({gate})")))
    }

    /// `x + (F(x) − x)·σ(g)`, as the forward computes it (on vectors unless all are maps).
    fn onnx(&self, o: &mut Onnx) -> Result<String, String> {
        let maps = (0..3).all(|k| o.is_map(k));
        let [f, x, g] = [0, 1, 2].map(|k| if maps { o.x(k) } else { o.flat(k) });
        let s = o.op("Sigmoid", &[&g], Vec::new());
        let d = o.op("Sub", &[&f, &x], Vec::new());
        let m = o.op("Mul", &[&d, &s], Vec::new());
        Ok(o.op("Add", &[&x, &m], Vec::new()))
    }
}

/// `LoweredOp::ZeroPadSubsample`: option A's shortcut.
pub struct ZeroPadSubsampleOp {
    pub stride: usize,
    pub pad_before: usize,
    pub pad_after: usize,
}

impl NodeOp for ZeroPadSubsampleOp {
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [x] = inputs(ins)?;
        let [c, h, w] = map_shape(x)?;
        if self.stride == 0 {
            return Err("stride is zero".into());
        }
        // Every `stride`-th row and column: a window of 1.
        let sub = |n: usize| out_size(n as u64, 1, self.stride as u64, 0, 1).map(|x| x as usize);
        match (sub(h), sub(w)) {
            (Some(oh), Some(ow)) => Ok(vec![c + self.pad_before + self.pad_after, oh, ow]),
            _ => Err(format!("cannot subsample the {h}x{w} input")),
        }
    }

    fn forward(&self, _: Option<&Layer>, ins: Vec<Value>) -> Value {
        let x = value(ins).map();
        Value::Map(zero_pad_subsample(
            x,
            self.stride,
            self.pad_before,
            self.pad_after,
        ))
    }

    fn pytorch(&self, py: &Py) -> Result<Torch, String> {
        let s = self.stride;
        let x = if s > 1 {
            format!("{}[:, :, ::{s}, ::{s}]", py.x(0))
        } else {
            py.x(0).to_string()
        };
        Ok(Torch::expr(
            if self.pad_before == 0 && self.pad_after == 0 {
                x
            } else {
                format!(
                    "F.pad({x}, (0, 0, 0, 0, {}, {}))",
                    self.pad_before, self.pad_after
                )
            },
        ))
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        let mut r = Rust::expr(format!(
            "zero_pad_subsample({}, {}, {}, {})",
            g.x(0),
            self.stride,
            self.pad_before,
            self.pad_after
        ));
        r.helpers.push(ZERO_PAD_SUBSAMPLE_RUST);
        Ok(r)
    }

    /// A strided `Slice` of rows and columns, then `Pad` with zero channels.
    fn onnx(&self, o: &mut Onnx) -> Result<String, String> {
        let mut x = o.map(0);
        if self.stride > 1 {
            let s = self.stride as i64;
            x = o.slice(&x, &[0, 0], &[i64::MAX, i64::MAX], &[2, 3], &[s, s]);
        }
        if self.pad_before == 0 && self.pad_after == 0 {
            return Ok(x);
        }
        let (b, a) = (self.pad_before as i64, self.pad_after as i64);
        let pads = o.ints(&[0, b, 0, 0, 0, a, 0, 0]);
        Ok(o.op("Pad", &[&x, &pads], vec![attr_str("mode", "constant")]))
    }
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

/// [`zero_pad_subsample`] in the generated file.
const ZERO_PAD_SUBSAMPLE_RUST: &str = "/// Option A's shortcut: `x[:, :, ::stride, ::stride]`, then zero channels before and after.\nfn zero_pad_subsample(x: Tensor<4>, stride: usize, before: usize, after: usize) -> Tensor<4> {\n    let x = if stride > 1 {\n        let [_, _, h, w] = x.dims();\n        let rows = Tensor::<1, Int>::arange_step(0..h as i64, stride, &x.device());\n        let cols = Tensor::<1, Int>::arange_step(0..w as i64, stride, &x.device());\n        x.select(2, rows).select(3, cols)\n    } else {\n        x\n    };\n    let [n, _, h, w] = x.dims();\n    let device = x.device();\n    let mut parts = Vec::new();\n    if before > 0 {\n        parts.push(Tensor::zeros([n, before, h, w], &device));\n    }\n    parts.push(x);\n    if after > 0 {\n        parts.push(Tensor::zeros([n, after, h, w], &device));\n    }\n    Tensor::cat(parts, 1)\n}\n";
