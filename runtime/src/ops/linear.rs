//! `Linear`: validation (the input's elements are its features), the module initialised as
//! PyTorch's default (`U(±1/sqrt(fan_in))` for weight and bias), its forward on vectors (a
//! map is flattened), weights (PyTorch's `[out, in]` is the transpose of Burn's) and codegen.

use burn::nn::Linear;

use super::{inputs, layer, value, Gen, Init, Layer, NodeOp, Py, Rust, Saved, Torch, Value};
use crate::init::{param, param_from, Fill};
use crate::onnx::{attr_int, Onnx};

/// `LoweredOp::Linear`'s fields.
pub struct LinearOp {
    pub d_input: usize,
    pub d_output: usize,
    pub bias: bool,
}

impl NodeOp for LinearOp {
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [x] = inputs(ins)?;
        let d_input = self.d_input;
        if x.iter().product::<usize>() != d_input {
            return Err(format!("input {x:?} has not {d_input} features"));
        }
        Ok(vec![self.d_output])
    }

    fn build(&self, init: &Init) -> Option<Layer> {
        let (d_input, d_output) = (self.d_input, self.d_output);
        let (seed, node, device) = (init.seed, init.node, init.device);
        let bound = 1.0 / (d_input as f64).sqrt();
        let fill = Fill::Uniform { bound };
        Some(Layer::Linear(Linear {
            // Burn's row layout: [d_input, d_output], the transpose of PyTorch's.
            weight: param([d_input, d_output], fill, seed, node, 0, device),
            bias: self
                .bias
                .then(|| param([d_output], init.bias_fill(fill), seed, node, 1, device)),
        }))
    }

    fn forward(&self, l: Option<&Layer>, ins: Vec<Value>) -> Value {
        let m: &Linear = layer(l, |l| match l {
            Layer::Linear(m) => Some(m),
            _ => None,
        });
        let x = value(ins).flat();
        #[cfg(feature = "tch")]
        if crate::fused::is_libtorch_training(&x.device()) {
            return Value::Flat(crate::fused::linear(m, x));
        }
        Value::Flat(m.forward(x))
    }

    fn load(&self, l: &mut Layer, take: &mut dyn FnMut(&str) -> Vec<f32>) {
        let Layer::Linear(m) = l else { return };
        let [d_in, d_out] = m.weight.lazy_shape().dims::<2>();
        let device = m.weight.lazy_device();
        let w = transpose(&take("weight"), d_out, d_in);
        m.weight = param_from(m.weight.id, w, [d_in, d_out], &device);
        if let Some(b) = &mut m.bias {
            *b = param_from(b.id, take("bias"), [d_out], &device);
        }
    }

    fn save(&self, l: &Layer) -> Vec<Saved> {
        let Layer::Linear(m) = l else {
            return Vec::new();
        };
        let mut out = vec![Saved::F32("weight", m.weight.val().transpose().into_data())];
        if let Some(b) = &m.bias {
            out.push(Saved::F32("bias", b.val().into_data()));
        }
        out
    }

    fn pytorch(&self, py: &Py) -> Result<Torch, String> {
        let bias = if self.bias { "" } else { ", bias=False" };
        let init = format!("nn.Linear({}, {}{bias})", self.d_input, self.d_output);
        Ok(Torch::module(init, py.call()))
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        let init = format!(
            "LinearConfig::new({}, {})\n                .with_bias({})\n                .init(device)",
            self.d_input, self.d_output, self.bias
        );
        Ok(Rust::module("Linear", init, g.forward()))
    }

    /// `Gemm` with PyTorch's `[out, in]` weight transposed (`transB`); a map is flattened.
    fn onnx(&self, o: &mut Onnx) -> Result<String, String> {
        let x = o.flat(0);
        let (w, b) = (o.param("weight"), o.param("bias"));
        let ins: &[&str] = if self.bias { &[&x, &w, &b] } else { &[&x, &w] };
        Ok(o.op("Gemm", ins, vec![attr_int("transB", 1)]))
    }
}

/// Transpose a row-major `[rows, cols]` matrix, tile by tile: a classifier's weights can hold
/// 100M values, and writing them one row after another misses the cache on every value (VGG's
/// took a minute to load that way in a debug build, under 2 s by tiles).
fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 64;
    let mut out = vec![0.0; v.len()];
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            let c1 = (c0 + TILE).min(cols);
            for r in r0..(r0 + TILE).min(rows) {
                for (c, &x) in (c0..c1).zip(&v[r * cols + c0..r * cols + c1]) {
                    out[c * rows + r] = x;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    /// The tiled transpose equals the definition, on sizes that are not multiples of a tile.
    #[test]
    fn transpose_by_tiles() {
        let (rows, cols) = (70, 131);
        let v: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        let t = super::transpose(&v, rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(t[c * rows + r], v[r * cols + c]);
            }
        }
    }
}
