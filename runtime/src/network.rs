//! [`Network`]: a Burn module built from a [`LoweredGraph`].
//!
//! Contract:
//! - this file knows no op: each node's op (`crate::ops::NodeOp`, from `check`) builds its
//!   module and runs its forward on all its inputs; here is the loop around them;
//! - one Burn module per node that has one (`Conv2d`, `BatchNorm`, `Linear`, the pools,
//!   `Dropout`, PReLU, the units' modules), held in `layers` in node order; the wiring (the
//!   lowered graph itself, and the nodes' ops) is plain data the module carries
//!   (`#[module(skip)]`), so `valid()`, `to_device()`, optimisers and Burn's records see only
//!   the layers;
//! - [`Network::forward`] evaluates the nodes the logits node needs in topological order and
//!   drops each intermediate result after its last reader, so memory is bounded by the live set,
//!   not by the depth; a trailing softmax is applied by [`Network::predict`] only; auxiliary
//!   heads (`outputs`) are run only by [`Network::try_forward_outputs`], which training uses;
//! - train/eval follows Burn: a network on an autodiff device (`Device::flex().autodiff()`)
//!   trains (batch norm uses batch statistics and updates its running statistics, dropout is
//!   active); `network.valid()` evaluates (running statistics, no dropout), as does any network
//!   on a plain device;
//! - batch norm's running variance is updated with the *unbiased* batch variance, as PyTorch
//!   does (Burn's own `BatchNorm` uses the biased one; `ops::norm::batch_norm`); the
//!   normalisation itself uses the biased variance in both.

use std::fmt;
use std::sync::Arc;

use archc_compiler::lower::LoweredGraph;
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

use crate::check::{check, BuildError};
use crate::ops::{Init, Layer, NodeOp, Value};

/// The non-module part of a [`Network`]: the lowered graph and, per node, its op (none for the
/// input), its layer and the last node that reads its output.
pub struct Plan {
    pub(crate) graph: LoweredGraph,
    pub(crate) ops: Vec<Option<Box<dyn NodeOp>>>,
    pub(crate) layer: Vec<Option<usize>>,
    /// The nodes the main output needs (evaluation, `forward`): auxiliary heads are not run.
    main: Schedule,
    /// The nodes every output needs (training a network with several outputs).
    all: Schedule,
}

/// Which nodes a set of outputs needs, and the last needed node that reads each one.
struct Schedule {
    outputs: Vec<usize>,
    needed: Vec<bool>,
    last_use: Vec<usize>,
    end: usize,
    /// Per node, the ReLU node that is its only reader (not an output itself: the node's
    /// value is never seen), which the node's op may run together with it
    /// (`NodeOp::fuses_relu`).
    relu_after: Vec<Option<usize>>,
}

impl Schedule {
    fn new(g: &LoweredGraph, outputs: Vec<usize>) -> Self {
        let mut needed = vec![false; g.nodes.len()];
        let mut stack = outputs.clone();
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut needed[i], true) {
                stack.extend(g.nodes[i].inputs.iter().copied());
            }
        }
        // An output is read by the caller: it lives to the end.
        let end = outputs.iter().copied().max().unwrap_or(0);
        let mut last_use: Vec<usize> = (0..g.nodes.len()).collect();
        for n in g.nodes.iter().filter(|n| needed[n.id]) {
            for &j in &n.inputs {
                last_use[j] = last_use[j].max(n.id);
            }
        }
        for &o in &outputs {
            last_use[o] = usize::MAX;
        }
        Schedule {
            outputs,
            needed,
            last_use,
            end,
            relu_after: vec![None; g.nodes.len()],
        }
    }

    /// Sets `relu_after` from the nodes' ops.
    fn with_relus(mut self, g: &LoweredGraph, ops: &[Option<Box<dyn NodeOp>>]) -> Self {
        let mut readers = vec![0usize; g.nodes.len()];
        for n in g.nodes.iter().filter(|n| self.needed[n.id]) {
            for &j in &n.inputs {
                readers[j] += 1;
            }
        }
        for n in g.nodes.iter().filter(|n| self.needed[n.id]) {
            let relu = ops[n.id].as_ref().is_some_and(|op| op.is_relu());
            if let ([j], true) = (n.inputs.as_slice(), relu) {
                if readers[*j] == 1 && self.last_use[*j] == n.id && ops[*j].is_some() {
                    self.relu_after[*j] = Some(n.id);
                }
            }
        }
        self
    }
}

impl Plan {
    /// The plan of `graph` with its nodes' ops and layer indices: the main output's schedule
    /// and every output's (the logits alone for a network with one output).
    fn new(
        graph: &LoweredGraph,
        ops: Vec<Option<Box<dyn NodeOp>>>,
        layer: Vec<Option<usize>>,
    ) -> Self {
        let mut outputs: Vec<usize> = graph.outputs.iter().map(|o| o.node).collect();
        if outputs.is_empty() {
            outputs.push(graph.logits);
        }
        Plan {
            graph: graph.clone(),
            main: Schedule::new(graph, vec![graph.logits]).with_relus(graph, &ops),
            all: Schedule::new(graph, outputs).with_relus(graph, &ops),
            ops,
            layer,
        }
    }
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

impl Network {
    /// Build the network of `graph` on `device`, its parameters initialised as torchvision does
    /// (see [`crate::init`](crate#initialisation)) from `seed`. Parameters are lazy: they are
    /// drawn on first use, each from its own stream, so the result depends on the seed only.
    pub fn new(graph: &LoweredGraph, device: &Device, seed: u64) -> Result<Self, BuildError> {
        let ops = check(graph)?;
        // A bias an op asks of one of its inputs' nodes (a Highway block's gate).
        let mut bias: Vec<Option<f64>> = vec![None; graph.nodes.len()];
        for (n, op) in graph.nodes.iter().zip(&ops) {
            if let Some((k, b)) = op.as_ref().and_then(|op| op.input_bias()) {
                if let Some(&j) = n.inputs.get(k) {
                    bias[j] = Some(b);
                }
            }
        }
        let mut layers = Vec::new();
        let mut layer = Vec::with_capacity(graph.nodes.len());
        for (i, op) in ops.iter().enumerate() {
            let init = Init {
                seed,
                node: i,
                device,
                bias: bias[i],
            };
            let l = op.as_ref().and_then(|op| op.build(&init));
            layer.push(l.map(|l| {
                layers.push(l);
                layers.len() - 1
            }));
        }
        Ok(Network {
            layers,
            plan: Arc::new(Plan::new(graph, ops, layer)),
        })
    }

    /// The same network, sharing these layers (parameters and running statistics), on
    /// `graph`: this network's graph compiled at another input size (fully convolutional
    /// testing). Every node must keep its name, its inputs and its parameter shapes, else the
    /// error names the first node that differs.
    pub fn with_graph(&self, graph: &LoweredGraph) -> Result<Network, BuildError> {
        let own = &self.plan.graph;
        let differs = |i: usize, message: String| BuildError {
            network: graph.network.clone(),
            node: i,
            name: graph
                .nodes
                .get(i)
                .map(|n| n.name.clone())
                .unwrap_or_default(),
            message,
        };
        if own.nodes.len() != graph.nodes.len() {
            return Err(differs(
                0,
                format!(
                    "{} nodes where the network has {}",
                    graph.nodes.len(),
                    own.nodes.len()
                ),
            ));
        }
        for (i, (a, b)) in own.nodes.iter().zip(&graph.nodes).enumerate() {
            // The whole op, not only its parameter shapes: a layer's module (a pool's window)
            // is built from the op's attributes.
            if a.name != b.name || a.inputs != b.inputs || a.op != b.op {
                return Err(differs(
                    i,
                    format!(
                        "differs from the network's node `{}` (its inputs, attributes or \
                         parameter shapes change with the input size)",
                        a.name
                    ),
                ));
            }
        }
        let ops = check(graph)?;
        Ok(Network {
            layers: self.layers.clone(),
            plan: Arc::new(Plan::new(graph, ops, self.plan.layer.clone())),
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

    /// Every output's logits `[N, classes]`, the main one first, for a batch of the graph's
    /// input shape (checked): what training a network with several heads differentiates. For
    /// a network with one output, its logits alone.
    pub fn try_forward_outputs(&self, x: Tensor<4>) -> Result<Vec<Tensor<2>>, InputError> {
        self.check_input(&x.dims())?;
        Ok(self.run_schedule(Value::Map(x), &self.plan.all))
    }

    /// The outputs' weights in the training loss, in the order of
    /// [`Network::try_forward_outputs`] (1 for a network with one output).
    pub fn output_weights(&self) -> Vec<f64> {
        let g = &self.plan.graph;
        if g.outputs.is_empty() {
            vec![1.0]
        } else {
            g.outputs.iter().map(|o| o.weight).collect()
        }
    }

    fn run(&self, x: Value) -> Tensor<2> {
        let mut out = self.run_schedule(x, &self.plan.main);
        out.pop()
            .unwrap_or_else(|| unreachable_value(&self.plan.graph, 0).flat())
    }

    /// Evaluate the nodes `s` needs, in order, dropping each value after its last reader.
    fn run_schedule(&self, x: Value, s: &Schedule) -> Vec<Tensor<2>> {
        let plan = &*self.plan;
        let g = &plan.graph;
        let mut values: Vec<Option<Value>> = vec![None; s.end + 1];
        // ReLU nodes already computed with the node they read (`Schedule::relu_after`).
        let mut done = vec![false; s.end + 1];
        let mut x = Some(x);
        for n in g.nodes[..=s.end].iter().filter(|n| s.needed[n.id]) {
            if done[n.id] {
                continue;
            }
            // Take the inputs, dropping each one whose last reader is this node.
            let mut ins: Vec<Value> = Vec::with_capacity(n.inputs.len());
            for &j in &n.inputs {
                ins.push(values[j].clone().unwrap_or_else(|| unreachable_value(g, j)));
            }
            for &j in &n.inputs {
                if s.last_use[j] == n.id {
                    values[j] = None;
                }
            }
            let layer = plan.layer[n.id].map(|l| &self.layers[l]);
            let out = match (&plan.ops[n.id], s.relu_after[n.id]) {
                (None, _) => x.take().unwrap_or_else(|| unreachable_value(g, n.id)),
                (Some(op), Some(relu)) if ins.len() == 1 && op.fuses_relu(&ins[0]) => {
                    values[relu] = Some(op.forward_relu(layer, ins));
                    done[relu] = true;
                    continue;
                }
                (Some(op), _) => op.forward(layer, ins),
            };
            values[n.id] = Some(out);
        }
        s.outputs
            .iter()
            .map(|&o| {
                values[o]
                    .take()
                    .unwrap_or_else(|| unreachable_value(g, o))
                    .flat()
            })
            .collect()
    }
}

#[cold]
fn unreachable_value(g: &LoweredGraph, id: usize) -> Value {
    panic!(
        "archc-runtime: value of node %{id} of `{}` was dropped before its last use",
        g.network
    )
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
