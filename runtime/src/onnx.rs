//! ONNX export (`archc export --format onnx`): a [`Network`] as an ONNX model.
//!
//! Contract:
//! - one graph input `input` `[batch, C, H, W]` (or `[batch, F]`) whose first dimension is the
//!   symbolic `batch`; one output `output`, the logits `[batch, classes]` (before a trailing
//!   softmax, as `Network::forward` gives them); a network with several outputs has the others
//!   as extra graph outputs named after their stage (`aux1`, `aux2`);
//! - the initializers are the network's state dict: `{node}.{weight|bias|running_mean|
//!   running_var}` with torchvision's names and PyTorch's layouts, f32, exactly the tensors
//!   `save_weights` writes less `num_batches_tracked` (derived constants, such as a reshape's
//!   target, are `Constant` nodes, not initializers);
//! - the nodes are standard ONNX operators of the default domain at the chosen opset
//!   ([`MIN_OPSET`] to [`MAX_OPSET`]), in inference form (batch norm with its running
//!   statistics, dropout and drop path as the identity);
//! - each op writes its own nodes ([`crate::ops::NodeOp::onnx`] in `ops/`, through [`Onnx`]); here is the
//!   model around them: the value names, initializers, inputs and outputs, opset and IR version;
//! - an op without an ONNX form is an [`ExportError::Unsupported`] naming the node, and the
//!   file is written to a temporary name and renamed, so nothing half-written is left.
//!
//! Checked by `scripts/onnx_check.py` (onnx.checker and onnxruntime against `archc forward`,
//! every zoo network) and `tests/export.rs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use archc_onnx::onnx::attribute_proto::AttributeType;
use archc_onnx::onnx::tensor_proto::DataType;
use archc_onnx::onnx::tensor_shape_proto::{dimension, Dimension};
use archc_onnx::onnx::type_proto;
use archc_onnx::onnx::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use archc_onnx::{Enum, Message};

pub use archc_onnx::onnx as proto;

use crate::network::Network;
use crate::ops::Saved;

/// The oldest opset archc writes (`LayerNormalization` is opset 17's).
pub const MIN_OPSET: i64 = 17;
/// The newest opset archc writes.
pub const MAX_OPSET: i64 = 22;
/// The opset of `archc export` without `--opset`.
pub const DEFAULT_OPSET: i64 = 17;

/// The name of the graph's input.
pub const INPUT: &str = "input";
/// The name of the graph's main output (the logits).
pub const OUTPUT: &str = "output";
/// The symbolic batch dimension of the input and outputs.
pub const BATCH: &str = "batch";

/// What can go wrong exporting.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("ONNX opset {0} is not supported: archc writes opsets {MIN_OPSET} to {MAX_OPSET}")]
    Opset(i64),
    #[error("`{network}` has a {kind} node (`{node}`) that has no ONNX form: {why}")]
    Unsupported {
        network: String,
        kind: String,
        node: String,
        why: String,
    },
    #[error("cannot encode the ONNX model: {0}")]
    Encode(String),
    #[error("cannot write `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The IR version that goes with an opset (ONNX's `docs/Versioning.md` table).
pub fn ir_version(opset: i64) -> i64 {
    match opset {
        ..=18 => 8,
        19 | 20 => 9,
        21 | 22 => 10,
        _ => 11,
    }
}

/// The network as an ONNX model at `opset`.
pub fn model(net: &Network, opset: i64) -> Result<ModelProto, ExportError> {
    if !(MIN_OPSET..=MAX_OPSET).contains(&opset) {
        return Err(ExportError::Opset(opset));
    }
    let plan = &*net.plan;
    let g = &plan.graph;
    // The outputs: the logits first, then the other heads by their names.
    let mut outputs: Vec<(String, usize)> = vec![(OUTPUT.to_string(), g.logits)];
    for o in g.outputs.iter().filter(|o| o.node != g.logits) {
        let name = if o.name == INPUT || o.name == OUTPUT {
            format!("output_{}", o.name)
        } else {
            o.name.clone()
        };
        outputs.push((name, o.node));
    }
    let mut needed = vec![false; g.nodes.len()];
    let mut stack: Vec<usize> = outputs.iter().map(|o| o.1).collect();
    while let Some(i) = stack.pop() {
        if !std::mem::replace(&mut needed[i], true) {
            stack.extend(g.nodes[i].inputs.iter().copied());
        }
    }

    let mut graph = GraphProto::new();
    graph.name = Some(g.network.clone());
    let mut values: Vec<Option<String>> = vec![None; g.nodes.len()];
    for n in g.nodes.iter().filter(|n| needed[n.id]) {
        let Some(op) = &plan.ops[n.id] else {
            values[n.id] = Some(INPUT.to_string());
            continue;
        };
        if let Some(l) = plan.layer[n.id] {
            let declared = n.op.param_shapes();
            for saved in op.save(&net.layers[l]) {
                if let Saved::F32(suffix, t) = saved {
                    // The compiler's shape where it names one (`layer_scale` is `[C, 1, 1]`
                    // in PyTorch, a vector `[C]` in the runtime's module).
                    let dims = match declared.iter().find(|(s, _)| *s == suffix) {
                        Some((_, d)) if d.iter().product::<usize>() == t.num_elements() => {
                            d.clone()
                        }
                        _ => t.shape().to_vec(),
                    };
                    let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
                    // ONNX's raw data is little-endian, as f32 is on every target archc builds for.
                    let t = t.convert::<f32>();
                    graph.initializer.push(tensor(
                        format!("{}.{suffix}", n.name),
                        &dims,
                        t.as_bytes().to_vec(),
                    ));
                }
            }
        }
        let inputs = n
            .inputs
            .iter()
            .map(|&j| {
                let v = values[j]
                    .clone()
                    .expect("inputs come first (topological order)");
                (v, g.nodes[j].output.clone())
            })
            .collect();
        let mut o = Onnx {
            opset,
            node: &n.name,
            inputs,
            out_shape: &n.output,
            nodes: &mut graph.node,
            used: HashMap::new(),
        };
        let value = op.onnx(&mut o).map_err(|why| ExportError::Unsupported {
            network: g.network.clone(),
            kind: n.op.kind().to_string(),
            node: n.name.clone(),
            why,
        })?;
        values[n.id] = Some(value);
    }

    graph.input.push(value_info(INPUT, &g.input));
    for (name, node) in &outputs {
        let shape = &g.nodes[*node].output;
        let value = values[*node].clone().expect("an output node is exported");
        // The logits as `Network::forward` gives them: flattened after the batch.
        let (op, attrs) = if shape.len() == 3 {
            ("Flatten", vec![attr_int("axis", 1)])
        } else {
            ("Identity", Vec::new())
        };
        graph
            .node
            .push(node_proto(op, name, vec![value], vec![name.clone()], attrs));
        graph
            .output
            .push(value_info(name, &[shape.iter().product::<usize>()]));
    }

    let mut m = ModelProto::new();
    m.ir_version = Some(ir_version(opset));
    m.producer_name = Some("archc".into());
    m.producer_version = Some(env!("CARGO_PKG_VERSION").into());
    m.doc_string = Some(format!(
        "`{}` exported by archc: input [batch, {}], logits [batch, {}]",
        g.network,
        join(&g.input),
        join(&[g.nodes[g.logits].output.iter().product::<usize>()])
    ));
    let mut set = OperatorSetIdProto::new();
    set.domain = Some(String::new());
    set.version = Some(opset);
    m.opset_import.push(set);
    m.graph = Some(graph).into();
    Ok(m)
}

/// Write the network as an ONNX file at `path` (through a temporary file renamed into place):
/// the number of bytes written.
pub fn export(net: &Network, opset: i64, path: &Path) -> Result<usize, ExportError> {
    let bytes = model(net, opset)?
        .write_to_bytes()
        .map_err(|e| ExportError::Encode(e.to_string()))?;
    let io = |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    if let Err(e) = std::fs::write(&tmp, &bytes) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })?;
    Ok(bytes.len())
}

fn join(d: &[usize]) -> String {
    d.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A float tensor `[batch, ..per_sample]` as a graph input or output.
fn value_info(name: &str, per_sample: &[usize]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    let mut batch = Dimension::new();
    batch.value = Some(dimension::Value::DimParam(BATCH.into()));
    shape.dim.push(batch);
    for &d in per_sample {
        let mut dim = Dimension::new();
        dim.value = Some(dimension::Value::DimValue(d as i64));
        shape.dim.push(dim);
    }
    let mut t = type_proto::Tensor::new();
    t.elem_type = Some(DataType::FLOAT.value());
    t.shape = Some(shape).into();
    let mut ty = TypeProto::new();
    ty.value = Some(type_proto::Value::TensorType(t));
    let mut v = ValueInfoProto::new();
    v.name = Some(name.into());
    v.type_ = Some(ty).into();
    v
}

/// A float32 tensor from its little-endian bytes.
fn tensor(name: String, dims: &[i64], raw: Vec<u8>) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = Some(name);
    t.dims = dims.to_vec();
    t.data_type = Some(DataType::FLOAT.value());
    t.raw_data = Some(raw);
    t
}

fn node_proto(
    op: &str,
    name: &str,
    inputs: Vec<String>,
    outputs: Vec<String>,
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = Some(op.into());
    n.name = Some(name.into());
    n.input = inputs;
    n.output = outputs;
    n.attribute = attrs;
    n
}

fn attr(name: &str, ty: AttributeType) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = Some(name.into());
    a.type_ = Some(ty.into());
    a
}

/// An integer attribute.
pub fn attr_int(name: &str, v: i64) -> AttributeProto {
    let mut a = attr(name, AttributeType::INT);
    a.i = Some(v);
    a
}

/// A float attribute.
pub fn attr_float(name: &str, v: f64) -> AttributeProto {
    let mut a = attr(name, AttributeType::FLOAT);
    a.f = Some(v as f32);
    a
}

/// A list of integers.
pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    let mut a = attr(name, AttributeType::INTS);
    a.ints = v.to_vec();
    a
}

/// A string attribute.
pub fn attr_str(name: &str, v: &str) -> AttributeProto {
    let mut a = attr(name, AttributeType::STRING);
    a.s = Some(v.as_bytes().to_vec());
    a
}

/// `[a, b]` as ONNX's integers.
pub fn i64s<const N: usize>(a: [usize; N]) -> Vec<i64> {
    a.iter().map(|&x| x as i64).collect()
}

/// What one node's op writes its ONNX nodes with ([`NodeOp::onnx`]): its inputs' values and
/// shapes, its parameters' initializer names, and new nodes. Values are named
/// `{node}/{OpType}` (`layer1.0.conv1/Conv`), so Netron shows archc's names.
pub struct Onnx<'a> {
    /// The opset being written (ops whose form changed between opsets look at it).
    pub opset: i64,
    node: &'a str,
    inputs: Vec<(String, Vec<usize>)>,
    out_shape: &'a [usize],
    nodes: &'a mut Vec<NodeProto>,
    used: HashMap<String, usize>,
}

impl Onnx<'_> {
    /// Input `k`'s value.
    pub fn x(&self, k: usize) -> String {
        self.inputs[k].0.clone()
    }

    /// The number of inputs.
    pub fn arity(&self) -> usize {
        self.inputs.len()
    }

    /// Input `k`'s shape per sample (`[C, H, W]` or `[F]`).
    pub fn shape(&self, k: usize) -> &[usize] {
        &self.inputs[k].1
    }

    /// Whether input `k` is a feature map (`[N, C, H, W]`, else vectors `[N, F]`).
    pub fn is_map(&self, k: usize) -> bool {
        self.inputs[k].1.len() == 3
    }

    /// The node's output shape per sample.
    pub fn out_shape(&self) -> &[usize] {
        self.out_shape
    }

    /// The initializer of the node's parameter `suffix` (`weight`: `{node}.weight`).
    pub fn param(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.node)
    }

    /// A new node `op` on `inputs`: its (single) output's value.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        let k = self.used.entry(op.to_string()).or_insert(0);
        let name = if *k == 0 {
            format!("{}/{op}", self.node)
        } else {
            format!("{}/{op}_{k}", self.node)
        };
        *k += 1;
        let inputs = inputs.iter().map(|s| s.to_string()).collect();
        self.nodes
            .push(node_proto(op, &name, inputs, vec![name.clone()], attrs));
        name
    }

    fn constant(&mut self, t: TensorProto) -> String {
        let mut a = attr("value", AttributeType::TENSOR);
        a.t = Some(t).into();
        self.op("Constant", &[], vec![a])
    }

    /// A constant 1-D int64 tensor.
    pub fn ints(&mut self, v: &[i64]) -> String {
        let mut t = TensorProto::new();
        t.dims = vec![v.len() as i64];
        t.data_type = Some(DataType::INT64.value());
        t.int64_data = v.to_vec();
        self.constant(t)
    }

    /// A constant float tensor of shape `dims`.
    pub fn floats(&mut self, v: &[f32], dims: &[i64]) -> String {
        let mut t = TensorProto::new();
        t.dims = dims.to_vec();
        t.data_type = Some(DataType::FLOAT.value());
        t.float_data = v.to_vec();
        self.constant(t)
    }

    /// A constant float scalar.
    pub fn scalar(&mut self, v: f64) -> String {
        self.floats(&[v as f32], &[])
    }

    /// `x` reshaped to `dims` (0 keeps the batch dimension, so it stays dynamic).
    pub fn reshape(&mut self, x: &str, dims: &[i64]) -> String {
        let shape = self.ints(dims);
        self.op("Reshape", &[x, &shape], Vec::new())
    }

    /// Input `k` as a map: vectors `[N, F]` become `[N, F, 1, 1]` (`Value::map`).
    pub fn map(&mut self, k: usize) -> String {
        let x = self.x(k);
        if self.is_map(k) {
            return x;
        }
        let axes = self.ints(&[2, 3]);
        self.op("Unsqueeze", &[&x, &axes], Vec::new())
    }

    /// Input `k` as vectors: a map is flattened after the batch (`Value::flat`).
    pub fn flat(&mut self, k: usize) -> String {
        let x = self.x(k);
        if !self.is_map(k) {
            return x;
        }
        self.op("Flatten", &[&x], vec![attr_int("axis", 1)])
    }

    /// A reduction (`ReduceMax`, `ReduceMean`) over `axes`: the axes are an attribute before
    /// opset 18 and an input from it on.
    pub fn reduce(&mut self, op: &str, x: &str, axes: &[i64], keepdims: bool) -> String {
        let keep = attr_int("keepdims", keepdims as i64);
        if self.opset < 18 {
            self.op(op, &[x], vec![attr_ints("axes", axes), keep])
        } else {
            let axes = self.ints(axes);
            self.op(op, &[x, &axes], vec![keep])
        }
    }

    /// `x[starts..ends]` along `axes`, every `steps`-th element.
    pub fn slice(
        &mut self,
        x: &str,
        starts: &[i64],
        ends: &[i64],
        axes: &[i64],
        steps: &[i64],
    ) -> String {
        let (s, e, a, st) = (
            self.ints(starts),
            self.ints(ends),
            self.ints(axes),
            self.ints(steps),
        );
        self.op("Slice", &[x, &s, &e, &a, &st], Vec::new())
    }

    /// A per-channel vector parameter `[C]` shaped to scale input `k` (`[C, 1, 1]` for a map).
    pub fn per_channel(&mut self, k: usize, suffix: &str) -> String {
        let p = self.param(suffix);
        if self.is_map(k) {
            let c = self.shape(k)[0] as i64;
            self.reshape(&p, &[c, 1, 1])
        } else {
            p
        }
    }
}
