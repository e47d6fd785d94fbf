//! The runtime halves of op units: one place per lowered op kind.
//!
//! Every lowered op has a [`NodeOp`] here, made by [`node_op`]: its validation (`check`: the
//! output shape from all its inputs' shapes, arity included, with the compiler's size rules
//! and parameter shapes), its module (`build`), its forward on all its input [`Value`]s, its
//! weights (`load`, `save`), its PyTorch form for `archc export` (`pytorch`), the Burn text
//! `archc codegen` writes for it (`rust`) and its ONNX nodes (`onnx`, for `archc export`; the
//! model around them is `crate::onnx`). The rest
//! of the runtime is generic over nodes: `network.rs` builds and runs them in order, `check.rs`
//! checks the graph (ids, wiring, the input and logits nodes) and asks each op for its shape,
//! `weights.rs` and `codegen.rs` ask each op for its tensors and its text.
//!
//! - `conv`: `Conv2d`; `linear`: `Linear`; `pool`: the three pools; `norm`: batch norm, and the
//!   `layernorm` and `groupnorm` units; `activation`: every activation (`Act`) and `PRelu`;
//!   `merge`: the merges of branches (`Add`, `Concat`, `Mul`, `Max`) and `Split`;
//!   `structure`: the ops that wire or reshape (`Flatten`, `Softmax`, `Dropout`,
//!   `ZeroPadSubsample`, `Highway`); `shape_ops`: the `maxout`, `channel_shuffle` and
//!   `drop_path` units.
//! - A kind whose lowered op is `LoweredOp::Unit` has a [`RuntimeUnit`] (validation, module,
//!   forward, codegen text), registered in its own file with `#[distributed_slice(RUNTIME_UNITS)]`;
//!   [`node_op`] serves every unit through it, so a new such kind touches no file here but its
//!   own (and `pub mod` for a new file).
//!
//! The interface is n-ary: `check` sees every input's shape and `forward` every input's value,
//! so an op of any number of inputs fits it (`Add` takes two, `Highway` three).

pub mod activation;
pub mod conv;
pub mod linear;
pub mod merge;
pub mod norm;
pub mod pool;
pub mod shape_ops;
pub mod structure;

use archc_compiler::graph::Attr;
use archc_compiler::lower::LoweredOp;
use burn::module::{Flag, Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
use burn::nn::{BatchNorm, Dropout, Linear, PRelu};
use burn::tensor::{Device, Tensor, TensorData};
use linkme::distributed_slice;

use crate::init::Fill;
use crate::onnx::Onnx;
pub use crate::pytorch::{Py, Torch};

/// A value flowing along an edge: a batch of feature maps or of flat vectors.
#[derive(Clone, Debug)]
pub enum Value {
    Map(Tensor<4>),
    Flat(Tensor<2>),
}

impl Value {
    /// The vectors `[N, C·H·W]` (a map flattened).
    pub fn flat(self) -> Tensor<2> {
        match self {
            Value::Map(t) => t.flatten(1, 3),
            Value::Flat(t) => t,
        }
    }

    /// The map; a vector `[N, F]` comes as `[N, F, 1, 1]` (the checked graph routes only feature
    /// maps into the ops that need one).
    pub fn map(self) -> Tensor<4> {
        match self {
            Value::Map(t) => t,
            Value::Flat(t) => {
                let [n, f] = t.dims();
                t.reshape([n, f, 1, 1])
            }
        }
    }

    /// An op that keeps the rank: `on_map` on a map, `on_flat` on vectors.
    pub fn each(
        self,
        on_map: impl FnOnce(Tensor<4>) -> Tensor<4>,
        on_flat: impl FnOnce(Tensor<2>) -> Tensor<2>,
    ) -> Value {
        match self {
            Value::Map(t) => Value::Map(on_map(t)),
            Value::Flat(t) => Value::Flat(on_flat(t)),
        }
    }

    /// A map op on a map, or on vectors `[N, F]` as maps `[N, F, 1, 1]` (vectors again after).
    pub fn as_map(self, f: impl FnOnce(Tensor<4>) -> Tensor<4>) -> Value {
        match self {
            Value::Map(t) => Value::Map(f(t)),
            v @ Value::Flat(_) => Value::Flat(f(v.map()).flatten(1, 3)),
        }
    }
}

/// The Burn module of one node (the storage `Network::layers` holds; each kind's knowledge is
/// in its op's module).
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
    /// The module of a unit node ([`RuntimeUnit`]): layer norm, group norm, drop path.
    Unit(UnitLayer),
}

/// What building one node's module needs.
pub struct Init<'a> {
    pub seed: u64,
    /// The node's id: with the seed, it keys each parameter's random stream.
    pub node: usize,
    pub device: &'a Device,
    /// A bias value a reader of this node asks for (a Highway block's gate starts at its
    /// `gate_bias`: [`NodeOp::input_bias`]).
    pub bias: Option<f64>,
}

impl Init<'_> {
    /// The bias's fill: the asked-for value, else `default`.
    pub(crate) fn bias_fill(&self, default: Fill) -> Fill {
        self.bias.map_or(default, |b| Fill::Constant(b as f32))
    }
}

/// One tensor of a node's state dict, as [`NodeOp::save`] gives it: the key's suffix and the
/// value (PyTorch's layout).
pub enum Saved {
    F32(&'static str, TensorData),
    /// Batch norm's `num_batches_tracked`, a scalar.
    I64(&'static str, i64),
}

/// What `archc codegen` writes for one node.
pub struct Gen<'a> {
    /// The node's field in the generated struct (`layer1_0_conv1`).
    pub field: &'a str,
    /// The inputs as expressions (`x3.clone()`) with their tensor rank (4 for maps, 2 for
    /// vectors).
    pub inputs: &'a [(String, usize)],
    /// The output's tensor rank.
    pub rank: usize,
}

impl Gen<'_> {
    /// Input `k`'s expression.
    pub fn x(&self, k: usize) -> &str {
        &self.inputs[k].0
    }

    /// `self.<field>.forward(<input 0>)`.
    pub fn forward(&self) -> String {
        format!("self.{}.forward({})", self.field, self.x(0))
    }
}

/// An op's generated Rust: a field (its type and initialiser) if it holds a module, the
/// forward expression, and what the file needs besides its common `use` lines.
#[derive(Default)]
pub struct Rust {
    pub module: Option<(&'static str, String)>,
    pub expr: String,
    /// `use` lines (each written once, after the common ones).
    pub uses: Vec<&'static str>,
    /// Free functions the expression calls (each written once, at the end of the file).
    pub helpers: Vec<&'static str>,
}

impl Rust {
    /// An expression without a module.
    pub fn expr(expr: String) -> Self {
        Rust {
            expr,
            ..Rust::default()
        }
    }

    /// A field of type `ty` initialised by `init`, used by `expr`.
    pub fn module(ty: &'static str, init: String, expr: String) -> Self {
        Rust {
            module: Some((ty, init)),
            expr,
            ..Rust::default()
        }
    }
}

/// The runtime half of one lowered op (one node's op, its attributes held).
pub trait NodeOp: Send + Sync {
    /// The output shape per sample from the shapes of all the inputs, or what is wrong (wrong
    /// number of inputs, sizes, hyper-parameters), so that building and running the node
    /// cannot panic.
    fn check(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String>;

    /// The node's module, if it has parameters or acts only in training.
    fn build(&self, _init: &Init) -> Option<Layer> {
        None
    }

    /// The forward on every input's value, in order (`layer`: what `build` made).
    fn forward(&self, layer: Option<&Layer>, inputs: Vec<Value>) -> Value;

    /// True when [`NodeOp::forward_relu`] runs this op and a ReLU after it as one computation
    /// on `input` (batch norm on burn-flex): the network then runs a ReLU node that reads only
    /// this node's output (`is_relu`) together with it.
    fn fuses_relu(&self, _input: &Value) -> bool {
        false
    }

    /// This op's forward followed by ReLU (called only where [`NodeOp::fuses_relu`] says so).
    fn forward_relu(&self, layer: Option<&Layer>, inputs: Vec<Value>) -> Value {
        let y = self.forward(layer, inputs);
        y.each(activation::relu_layer, activation::relu_layer)
    }

    /// A ReLU without parameters: what [`NodeOp::fuses_relu`] can absorb.
    fn is_relu(&self) -> bool {
        false
    }

    /// A bias this op asks of one of its inputs' nodes: (input position, value).
    fn input_bias(&self) -> Option<(usize, f64)> {
        None
    }

    /// Set the module's tensors from the state dict: `take(suffix)` gives the values of
    /// `{node}.{suffix}` in PyTorch's layout, of the shape `LoweredOp::param_shapes` names.
    fn load(&self, _layer: &mut Layer, _take: &mut dyn FnMut(&str) -> Vec<f32>) {}

    /// The module's tensors for the state dict, in PyTorch's layout.
    fn save(&self, _layer: &Layer) -> Vec<Saved> {
        Vec::new()
    }

    /// Key suffixes of a state dict that loading accepts and ignores (`num_batches_tracked`).
    fn ignored_keys(&self) -> &'static [&'static str] {
        &[]
    }

    /// The PyTorch form `archc export --format pytorch` writes (`crate::pytorch`), or why it
    /// has none.
    fn pytorch(&self, py: &Py) -> Result<Torch, String>;

    /// The generated Rust, or why `archc codegen` cannot write it.
    fn rust(&self, g: &Gen) -> Result<Rust, String>;

    /// Its ONNX nodes in inference form (`archc export --format onnx`), written through `o`
    /// (its inputs' values, its parameters' initializers): the value holding its output, or
    /// why the op has no ONNX form.
    fn onnx(&self, o: &mut Onnx) -> Result<String, String>;
}

/// The runtime half of `op`; `None` for the graph's input, which is no op. An error names a
/// unit op the runtime does not know.
pub fn node_op(op: &LoweredOp) -> Result<Option<Box<dyn NodeOp>>, String> {
    let op: Box<dyn NodeOp> = match *op {
        LoweredOp::Input => return Ok(None),
        LoweredOp::Conv2d {
            channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
        } => Box::new(conv::Conv2dOp {
            channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
        }),
        LoweredOp::BatchNorm {
            num_features,
            epsilon,
            momentum,
        } => Box::new(norm::BatchNormOp {
            num_features,
            epsilon,
            momentum,
        }),
        LoweredOp::Act { act } => Box::new(activation::ActOp(act)),
        LoweredOp::PRelu { num_parameters } => Box::new(activation::PReluOp(num_parameters)),
        LoweredOp::Unit {
            ref unit,
            ref attrs,
        } => {
            let runtime =
                self::unit(unit).ok_or_else(|| format!("no runtime unit for `{unit}`"))?;
            Box::new(UnitOp {
                runtime,
                attrs: attrs.clone(),
                params: op.param_shapes(),
            })
        }
        LoweredOp::MaxPool2d {
            kernel_size,
            strides,
            padding,
            ceil_mode,
        } => Box::new(pool::MaxPoolOp(pool::Window {
            kernel_size,
            strides,
            padding,
            ceil_mode,
        })),
        LoweredOp::AvgPool2d {
            kernel_size,
            strides,
            padding,
            count_include_pad,
            ceil_mode,
        } => Box::new(pool::AvgPoolOp {
            window: pool::Window {
                kernel_size,
                strides,
                padding,
                ceil_mode,
            },
            count_include_pad,
        }),
        LoweredOp::AdaptiveAvgPool2d { output_size } => {
            Box::new(pool::AdaptiveAvgPoolOp(output_size))
        }
        LoweredOp::Linear {
            d_input,
            d_output,
            bias,
        } => Box::new(linear::LinearOp {
            d_input,
            d_output,
            bias,
        }),
        LoweredOp::Dropout { prob } => Box::new(structure::DropoutOp(prob)),
        LoweredOp::Flatten => Box::new(structure::FlattenOp),
        LoweredOp::Softmax => Box::new(structure::SoftmaxOp),
        LoweredOp::Add => Box::new(merge::SumOp),
        LoweredOp::Concat => Box::new(merge::ConcatOp),
        LoweredOp::Mul => Box::new(merge::MulOp),
        LoweredOp::Max => Box::new(merge::MaxOp),
        LoweredOp::Split { parts, index } => Box::new(merge::SplitOp { parts, index }),
        LoweredOp::ZeroPadSubsample {
            stride,
            pad_before,
            pad_after,
        } => Box::new(structure::ZeroPadSubsampleOp {
            stride,
            pad_before,
            pad_after,
        }),
        LoweredOp::Highway { gate_bias } => Box::new(structure::HighwayOp(gate_bias)),
    };
    Ok(Some(op))
}

/// The shapes of exactly `N` inputs, or how many there are.
pub fn inputs<'a, const N: usize>(shapes: &[&'a [usize]]) -> Result<[&'a [usize]; N], String> {
    shapes
        .try_into()
        .map_err(|_| format!("has {} inputs, expected {N}", shapes.len()))
}

/// A feature map's `[C, H, W]`, or that the op needs one.
pub fn map_shape(s: &[usize]) -> Result<[usize; 3], String> {
    match *s {
        [c, h, w] => Ok([c, h, w]),
        _ => Err(format!("needs a feature map [C, H, W] input, got {s:?}")),
    }
}

/// The `N` input values of a checked node.
pub fn values<const N: usize>(inputs: Vec<Value>) -> [Value; N] {
    let n = inputs.len();
    inputs
        .try_into()
        .unwrap_or_else(|_| panic!("archc-runtime: {n} inputs where check() allowed {N}"))
}

/// The single input value of a checked node.
pub fn value(inputs: Vec<Value>) -> Value {
    let [x] = values(inputs);
    x
}

/// The layer `build` made, as the variant `pick` selects (`build` and `forward` of one op
/// agree, so anything else is a bug).
pub fn layer<'l, T>(
    layer: Option<&'l Layer>,
    pick: impl FnOnce(&'l Layer) -> Option<&'l T>,
) -> &'l T {
    layer
        .and_then(pick)
        .unwrap_or_else(|| panic!("archc-runtime: a node without the module its op built"))
}

/// A node's output shape per sample, or what is wrong with the node.
pub type Checked = Result<Vec<usize>, String>;

/// A lowered unit node's attributes (`LoweredOp::Unit::attrs`).
pub type Attrs = [(String, Attr)];

/// The runtime half of a kind whose lowered op is `LoweredOp::Unit`.
pub struct RuntimeUnit {
    /// The unit's word (`layernorm`).
    pub unit: &'static str,
    /// The output shape per sample from all the inputs' shapes ([`inputs`] checks their
    /// number), or what is wrong with the node (so that building and running it cannot panic).
    pub check: fn(&Attrs, &[&[usize]]) -> Checked,
    /// The node's module, with its parameters in the order of the compiler's
    /// `UnitRules::params` (PyTorch's names), if it has parameters or acts only in training.
    pub build: fn(&Attrs, u64, usize, &Device) -> Option<UnitLayer>,
    /// The forward on every input's value (a unit of maps takes vectors `[N, F]` as maps
    /// `[N, F, 1, 1]` with [`Value::as_map`]).
    pub forward: fn(&Attrs, Option<&UnitLayer>, Vec<Value>) -> Value,
    /// The PyTorch form `archc export --format pytorch` writes: a `torch.nn` module where one
    /// fits (its parameters by the compiler's names, so state dicts load by name), else an
    /// expression or a helper function.
    pub pytorch: fn(&Attrs, &Py) -> Result<Torch, String>,
    /// The Burn text `archc codegen` writes (a Burn module where one fits, else a function).
    /// Its module's parameters are Burn's names for PyTorch's (`gamma`/`beta` for
    /// `weight`/`bias`), so state dicts load by name.
    pub rust: fn(&Attrs, &Gen) -> Result<Rust, String>,
    /// Its ONNX nodes in inference form ([`NodeOp::onnx`]); its parameters are the
    /// initializers `o.param(name)` of `UnitRules::params`' names.
    pub onnx: fn(&Attrs, &mut Onnx) -> Result<String, String>,
}

/// Every runtime unit, each registered in its own file:
/// `#[distributed_slice(RUNTIME_UNITS)] static NAME: RuntimeUnit = …`. (The name is the link
/// section's, shared by the whole binary: the compiler's slice is `LAYER_UNITS`.)
#[distributed_slice]
pub static RUNTIME_UNITS: [RuntimeUnit];

/// The module of a unit node: its parameters (vectors over channels, in the compiler's order)
/// and a training flag (cleared by `valid()` and by freezing, as Burn's dropout's).
#[derive(Module, Debug)]
pub struct UnitLayer {
    pub params: Vec<Param<Tensor<1>>>,
    pub training: Param<Flag>,
}

impl UnitLayer {
    pub fn new(params: Vec<Param<Tensor<1>>>) -> Self {
        UnitLayer {
            params,
            training: Param::from_bool(true),
        }
    }
}

/// The runtime unit of `name`.
pub fn unit(name: &str) -> Option<&'static RuntimeUnit> {
    RUNTIME_UNITS.iter().find(|u| u.unit == name)
}

/// A unit node: its runtime unit, attributes and parameter names.
struct UnitOp {
    runtime: &'static RuntimeUnit,
    attrs: Vec<(String, Attr)>,
    /// The compiler's parameter names and shapes in PyTorch's layout (`UnitRules::params`), in
    /// the module's order: a state dict's shapes (`layer_scale`'s `[C, 1, 1]`), where the module
    /// holds `[C]`.
    params: Vec<(&'static str, Vec<usize>)>,
}

impl NodeOp for UnitOp {
    fn check(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        (self.runtime.check)(&self.attrs, inputs)
    }

    fn build(&self, init: &Init) -> Option<Layer> {
        (self.runtime.build)(&self.attrs, init.seed, init.node, init.device).map(Layer::Unit)
    }

    fn forward(&self, layer: Option<&Layer>, inputs: Vec<Value>) -> Value {
        let m = match layer {
            Some(Layer::Unit(m)) => Some(m),
            _ => None,
        };
        (self.runtime.forward)(&self.attrs, m, inputs)
    }

    fn load(&self, layer: &mut Layer, take: &mut dyn FnMut(&str) -> Vec<f32>) {
        let Layer::Unit(m) = layer else { return };
        for (p, (suffix, _)) in m.params.iter_mut().zip(&self.params) {
            let [c] = p.lazy_shape().dims::<1>();
            let device = p.lazy_device();
            *p = crate::init::param_from(p.id, take(suffix), [c], &device);
        }
    }

    fn save(&self, layer: &Layer) -> Vec<Saved> {
        let Layer::Unit(m) = layer else {
            return Vec::new();
        };
        m.params
            .iter()
            .zip(&self.params)
            .map(|(p, (suffix, shape))| {
                let data = p.val().into_data();
                // The same values in the state dict's shape (`load` reads them back as `[C]`).
                let data = burn::tensor::TensorData::new(
                    data.convert::<f32>()
                        .try_into_vec::<f32>()
                        .expect("f32 parameters"),
                    shape.clone(),
                );
                Saved::F32(suffix, data)
            })
            .collect()
    }

    fn pytorch(&self, py: &Py) -> Result<Torch, String> {
        (self.runtime.pytorch)(&self.attrs, py)
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        (self.runtime.rust)(&self.attrs, g)
    }

    fn onnx(&self, o: &mut Onnx) -> Result<String, String> {
        (self.runtime.onnx)(&self.attrs, o)
    }
}

/// An integer attribute (validated by the unit's `check`).
pub fn int(attrs: &Attrs, name: &str) -> usize {
    archc_compiler::layers::attr(attrs, name).int() as usize
}

/// A decimal attribute.
pub fn float(attrs: &Attrs, name: &str) -> f64 {
    archc_compiler::layers::attr(attrs, name).float()
}

/// `count` (from `attrs`) divides the channels `c`, or says which does not.
pub fn divides(what: &str, count: usize, c: usize) -> Result<(), String> {
    if count == 0 || !c.is_multiple_of(count) {
        return Err(format!("{count} {what} do not divide {c} channels"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// Every compiler unit with rules has its runtime half, and no runtime unit is stray.
    #[test]
    fn every_unit_op_kind_runs() {
        for u in archc_compiler::layers::units() {
            assert_eq!(
                u.rules.is_some(),
                super::unit(u.name).is_some(),
                "`{}`: compiler rules and runtime unit go together",
                u.name
            );
        }
        for r in super::RUNTIME_UNITS {
            assert!(
                archc_compiler::layers::rules(r.unit).is_some(),
                "runtime unit `{}` has no compiler unit with rules",
                r.unit
            );
        }
        let mut names: Vec<&str> = super::RUNTIME_UNITS.iter().map(|u| u.unit).collect();
        names.sort();
        names.dedup();
        assert_eq!(
            names.len(),
            super::RUNTIME_UNITS.len(),
            "a unit registered twice"
        );
    }
}
