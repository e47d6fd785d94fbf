//! The merges of parallel branches (`Concat`, `Add` of any number of inputs, `Mul` with a
//! broadcast gate, `Max`) and the channel `Split` that feeds `concat split`. Validation is the
//! compiler's own merge rule (`archc_compiler::layers::merge`), on the inputs' shapes.

use archc_compiler::graph::{MergeKind, Shape};
use archc_compiler::layers::merge;
use burn::tensor::Tensor;

use super::{inputs, value, Gen, Layer, NodeOp, Py, Rust, Torch, Value};
use crate::onnx::{attr_int, Onnx};

/// A per-sample shape as the compiler writes it.
fn shape(dims: &[usize]) -> Result<Shape, String> {
    match *dims {
        [c, h, w] => Ok(Shape::Map {
            c: c as u64,
            h: h as u64,
            w: w as u64,
        }),
        [n] => Ok(Shape::Flat { n: n as u64 }),
        _ => Err(format!("takes maps [C, H, W] or vectors [N], got {dims:?}")),
    }
}

/// The compiler's merge rule on `ins`, as a runtime check.
fn check_merge(kind: MergeKind, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
    if ins.len() < 2 {
        return Err(format!(
            "merges {} input(s); a merge needs two or more",
            ins.len()
        ));
    }
    let shapes = ins
        .iter()
        .map(|d| shape(d))
        .collect::<Result<Vec<_>, _>>()?;
    merge::infer(kind, &shapes, Default::default(), &[])
        .map(|(s, _)| s.dims().into_iter().map(|d| d as usize).collect())
        .map_err(|e| e.to_string())
}

/// `LoweredOp::Concat`: along the channels (or features).
pub struct ConcatOp;

impl NodeOp for ConcatOp {
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        check_merge(MergeKind::Concat, ins)
    }

    fn forward(&self, _: Option<&Layer>, ins: Vec<Value>) -> Value {
        match ins.first() {
            Some(Value::Map(_)) => {
                Value::Map(Tensor::cat(ins.into_iter().map(Value::map).collect(), 1))
            }
            _ => Value::Flat(Tensor::cat(ins.into_iter().map(Value::flat).collect(), 1)),
        }
    }

    fn pytorch(&self, py: &Py) -> Result<Torch, String> {
        Ok(Torch::expr(format!(
            "torch.cat([{}], 1)",
            py.xs().join(", ")
        )))
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        let xs: Vec<&str> = (0..g.inputs.len()).map(|k| g.x(k)).collect();
        Ok(Rust::expr(format!(
            "Tensor::cat(vec![{}], 1)",
            xs.join(", ")
        )))
    }

    fn onnx(&self, o: &mut Onnx) -> Result<String, String> {
        let xs = if o.is_map(0) {
            (0..o.arity()).map(|k| o.map(k)).collect()
        } else {
            all_flat(o)
        };
        let xs: Vec<&str> = xs.iter().map(String::as_str).collect();
        Ok(o.op("Concat", &xs, vec![attr_int("axis", 1)]))
    }
}

/// `LoweredOp::Add` of a merge or a residual block: the elementwise sum of its inputs.
pub struct SumOp;

impl NodeOp for SumOp {
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        check_merge(MergeKind::Add, ins)
    }

    fn forward(&self, _: Option<&Layer>, ins: Vec<Value>) -> Value {
        fold(ins, |a, b| a + b, |a, b| a + b)
    }

    fn pytorch(&self, py: &Py) -> Result<Torch, String> {
        Ok(Torch::expr(py.xs().join(" + ")))
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        let xs: Vec<&str> = (0..g.inputs.len()).map(|k| g.x(k)).collect();
        Ok(Rust::expr(xs.join(" + ")))
    }

    fn onnx(&self, o: &mut Onnx) -> Result<String, String> {
        Ok(variadic(o, "Sum"))
    }
}

/// `LoweredOp::Max`: the elementwise maximum of its inputs.
pub struct MaxOp;

impl NodeOp for MaxOp {
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        check_merge(MergeKind::Max, ins)
    }

    fn forward(&self, _: Option<&Layer>, ins: Vec<Value>) -> Value {
        fold(ins, |a, b| a.max_pair(b), |a, b| a.max_pair(b))
    }

    fn pytorch(&self, py: &Py) -> Result<Torch, String> {
        let xs = py.xs();
        let mut e = xs[0].clone();
        for x in &xs[1..] {
            e = format!("torch.maximum({e}, {x})");
        }
        Ok(Torch::expr(e))
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        let mut e = g.x(0).to_string();
        for k in 1..g.inputs.len() {
            e = format!("{e}.max_pair({})", g.x(k));
        }
        Ok(Rust::expr(e))
    }

    fn onnx(&self, o: &mut Onnx) -> Result<String, String> {
        Ok(variadic(o, "Max"))
    }
}

/// `LoweredOp::Mul`: the elementwise product; a `[C, 1, 1]` map or a `[C]` vector is
/// broadcast over a `[C, H, W]` map (a squeeze-and-excitation gate).
pub struct MulOp;

impl NodeOp for MulOp {
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        check_merge(MergeKind::Mul, ins)
    }

    fn forward(&self, _: Option<&Layer>, ins: Vec<Value>) -> Value {
        // The output's shape is the largest input's; every other one is expanded to it.
        let big = ins
            .iter()
            .enumerate()
            .max_by_key(|(_, v)| match v {
                Value::Map(t) => t.shape().num_elements(),
                Value::Flat(t) => t.shape().num_elements(),
            })
            .map(|(i, _)| i)
            .unwrap_or(0);
        match &ins[big] {
            Value::Map(t) => {
                let dims = t.dims();
                let mut out: Option<Tensor<4>> = None;
                for v in ins {
                    let x = v.map().expand(dims);
                    // Clones held through the product, as in `fold` (burn-tch's in-place ops).
                    out = Some(match out {
                        Some(o) => o.clone() * x.clone(),
                        None => x,
                    });
                }
                Value::Map(out.expect("a merge has inputs"))
            }
            Value::Flat(_) => fold(ins, |a, b| a * b, |a, b| a * b),
        }
    }

    fn pytorch(&self, py: &Py) -> Result<Torch, String> {
        // A [C, 1, 1] or [C] gate broadcasts over a [C, H, W] map.
        Ok(Torch::expr(py.xs().join(" * ")))
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        // Inputs of rank 2 beside a map become [N, C, 1, 1]; Burn broadcasts size-1 dims.
        let map = g.rank == 4;
        let xs: Vec<String> = (0..g.inputs.len())
            .map(|k| {
                if map && g.inputs[k].1 == 2 {
                    format!("{}.unsqueeze_dims::<4>(&[2, 3])", g.x(k))
                } else {
                    g.x(k).to_string()
                }
            })
            .collect();
        Ok(Rust::expr(xs.join(" * ")))
    }

    /// `Mul` left to right; on a map output, vectors `[N, C]` as `[N, C, 1, 1]` and ONNX's
    /// broadcasting expands the gate.
    fn onnx(&self, o: &mut Onnx) -> Result<String, String> {
        let xs: Vec<String> = if o.out_shape().len() == 3 {
            (0..o.arity()).map(|k| o.map(k)).collect()
        } else {
            all_flat(o)
        };
        let mut acc = xs[0].clone();
        for x in &xs[1..] {
            acc = o.op("Mul", &[&acc, x], Vec::new());
        }
        Ok(acc)
    }
}

/// `LoweredOp::Split`: part `index` of `parts` equal parts of the channels.
pub struct SplitOp {
    pub parts: usize,
    pub index: usize,
}

impl NodeOp for SplitOp {
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [x] = inputs(ins)?;
        if self.index >= self.parts {
            return Err(format!("part {} of {}", self.index, self.parts));
        }
        let s = merge::infer_split(self.parts as u64, shape(x)?, Default::default())
            .map_err(|e| e.to_string())?;
        Ok(s.0.dims().into_iter().map(|d| d as usize).collect())
    }

    fn forward(&self, _: Option<&Layer>, ins: Vec<Value>) -> Value {
        let x = value(ins);
        let part = |c: usize| c / self.parts;
        match x {
            Value::Map(t) => {
                let p = part(t.dims()[1]);
                Value::Map(t.narrow(1, self.index * p, p))
            }
            Value::Flat(t) => {
                let p = part(t.dims()[1]);
                Value::Flat(t.narrow(1, self.index * p, p))
            }
        }
    }

    fn pytorch(&self, py: &Py) -> Result<Torch, String> {
        let p = py.output.first().copied().unwrap_or(0);
        let (a, b) = (self.index * p, (self.index + 1) * p);
        Ok(Torch::expr(format!("{}[:, {a}:{b}]", py.x(0))))
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        let x = g.x(0);
        let dims = if g.rank == 4 {
            "[_, c, _, _]"
        } else {
            "[_, c]"
        };
        Ok(Rust::expr(format!(
            "{{ let {dims} = {x}.dims(); let p = c / {parts}; {x}.narrow(1, {index} * p, p) }}",
            parts = self.parts,
            index = self.index
        )))
    }

    fn onnx(&self, o: &mut Onnx) -> Result<String, String> {
        let p = (o.shape(0)[0] / self.parts) as i64;
        let (x, k) = (o.x(0), self.index as i64);
        Ok(o.slice(&x, &[k * p], &[(k + 1) * p], &[1], &[1]))
    }
}

/// Every input as vectors (a map flattened).
fn all_flat(o: &mut Onnx) -> Vec<String> {
    (0..o.arity()).map(|k| o.flat(k)).collect()
}

/// A variadic elementwise op (`Sum`, `Max`) of the inputs: of maps if all are maps, else of
/// vectors, as [`fold`] combines them.
fn variadic(o: &mut Onnx, op: &str) -> String {
    let xs: Vec<String> = if (0..o.arity()).all(|k| o.is_map(k)) {
        (0..o.arity()).map(|k| o.x(k)).collect()
    } else {
        all_flat(o)
    };
    let xs: Vec<&str> = xs.iter().map(String::as_str).collect();
    o.op(op, &xs, Vec::new())
}

/// The inputs combined pairwise, left to right, as maps or as vectors.
///
/// Each operation gets clones of its operands, held until it is done: burn-tch 0.22.1 computes
/// `a + b` in place in an operand it believes it owns alone, and an operand that is an
/// activation's output is also what the activation's backward reads (found by
/// runtime/tests/merges.rs: a ReLU branch added to another gave PyTorch's outputs but an input
/// gradient off by 3e-3 on LibTorch, while burn-flex agreed to 4e-9). Burn's clones share the
/// data, so this costs no copy on burn-flex.
fn fold(
    ins: Vec<Value>,
    on_map: impl Fn(Tensor<4>, Tensor<4>) -> Tensor<4>,
    on_flat: impl Fn(Tensor<2>, Tensor<2>) -> Tensor<2>,
) -> Value {
    let mut it = ins.into_iter();
    let first = it.next().expect("a merge has inputs");
    it.fold(first, |acc, x| match (acc, x) {
        (Value::Map(a), Value::Map(b)) => Value::Map(on_map(a.clone(), b.clone())),
        (a, b) => {
            let (a, b) = (a.flat(), b.flat());
            Value::Flat(on_flat(a.clone(), b.clone()))
        }
    })
}
