//! The training cost of a network (`archc report --training`): per layer and in total, the
//! forward and backward FLOPs (input and weight gradients apart), the bytes a step keeps for
//! its backward as PyTorch eager's autograd keeps them (each tensor once, however many layers
//! keep it), the parameters, gradients and optimizer state, the peak memory of a step, the
//! largest batch that fits a memory, and a roofline estimate of step and epoch time.
//!
//! Each op's rule is its unit's ([`layers::training`]): what its backward keeps and computes.
//! This module only follows the tensors (a view is its input's tensor), deduplicates, sums,
//! and walks one step (forward, backward, optimizer) to find the peak. Everything is per sample
//! in [`TrainingModel`], so any batch size's figures follow without recomputing the rules.
//! Conventions and formulas: docs/language.md, "Training cost".

use serde::Serialize;

use crate::graph::{NodeId, Op};
use crate::infer::TypedGraph;
use crate::layers::{self, Dtype, Extra, Keep, Work};

/// The optimizer whose state a step keeps (`--optimizer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimizer {
    /// Plain SGD: no state.
    Sgd,
    /// SGD with momentum (the paper's recipe): one buffer per parameter.
    Momentum,
    /// Adam: two moments per parameter.
    Adam,
}

impl Optimizer {
    pub const NAMES: &'static [&'static str] = &["sgd", "momentum", "adam"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sgd" => Optimizer::Sgd,
            "momentum" => Optimizer::Momentum,
            "adam" => Optimizer::Adam,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Optimizer::Sgd => "sgd",
            Optimizer::Momentum => "momentum",
            Optimizer::Adam => "adam",
        }
    }

    /// State tensors per parameter.
    pub fn states(self) -> u128 {
        match self {
            Optimizer::Sgd => 0,
            Optimizer::Momentum => 1,
            Optimizer::Adam => 2,
        }
    }

    /// FLOPs per parameter of one step, L2 weight decay included (2: a multiply, an add):
    /// SGD 2 more (`w − lr·g`), momentum 4 (`b = m·b + g`, `w − lr·b`), Adam 12 (first
    /// moment 3, second 4, `w − lr·m̂/(√v̂ + ε)` 5).
    pub fn flops_per_parameter(self) -> u128 {
        match self {
            Optimizer::Sgd => 4,
            Optimizer::Momentum => 6,
            Optimizer::Adam => 14,
        }
    }
}

/// The numeric precision of a step (`--precision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// Everything f32.
    F32,
    /// The model in bf16 (`model.to(torch.bfloat16)`): parameters, gradients, optimizer
    /// state and activations 2 bytes.
    Bf16,
    /// Automatic mixed precision (`torch.autocast(float16)` with a gradient scaler): f32
    /// parameters, gradients and optimizer state; f16 activations; f16 copies of the conv and
    /// fc weights (autocast's cache), kept by their layers for the backward.
    F16Mixed,
}

impl Precision {
    pub const NAMES: &'static [&'static str] = &["f32", "bf16", "f16-mixed"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "f32" => Precision::F32,
            "bf16" => Precision::Bf16,
            "f16-mixed" => Precision::F16Mixed,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16Mixed => "f16-mixed",
        }
    }

    /// Bytes of an activation element.
    pub fn activation_bytes(self) -> u128 {
        match self {
            Precision::F32 => 4,
            Precision::Bf16 | Precision::F16Mixed => 2,
        }
    }

    /// Bytes of a parameter, a gradient, an optimizer state element and a buffer element.
    pub fn parameter_bytes(self) -> u128 {
        match self {
            Precision::F32 | Precision::F16Mixed => 4,
            Precision::Bf16 => 2,
        }
    }

    /// Bytes of a log-probability of the loss (autocast computes `log_softmax` in f32).
    pub fn loss_bytes(self) -> u128 {
        match self {
            Precision::F32 | Precision::F16Mixed => 4,
            Precision::Bf16 => 2,
        }
    }

    fn dtype_bytes(self, d: Dtype) -> u128 {
        match d {
            Dtype::Activation => self.activation_bytes(),
            Dtype::F32 => 4,
            Dtype::I64 => 8,
            Dtype::Mask => 1,
        }
    }
}

/// FLOPs per logit of softmax cross-entropy: forward `exp`, the row's sum and the subtraction
/// of its log (3); backward `softmax − one-hot` and the loss weight over the batch (3).
pub const LOSS_FLOPS: u128 = 3;
/// Bytes per sample of the targets the loss keeps (int64 class indices).
pub const TARGET_BYTES: u128 = 8;
/// The largest batch size the report considers (`--batch-size`, `--memory`).
pub const MAX_BATCH: u64 = 1 << 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub optimizer: Optimizer,
    pub precision: Precision,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            optimizer: Optimizer::Momentum,
            precision: Precision::F32,
        }
    }
}

/// One node of the training step, per sample.
#[derive(Debug, Clone)]
struct Step {
    name: String,
    kind: String,
    stage: Option<String>,
    /// Positions (in `TrainingModel::steps`) of the inputs.
    inputs: Vec<usize>,
    /// Elements of the output and of each input.
    out: u128,
    /// The position of the node whose new tensor this output is (itself, or what it views).
    root: usize,
    /// Its output is a new tensor (not a view).
    new: bool,
    params: u128,
    /// Parameters autocast copies to f16: those of the layers with multiply-adds
    /// (convolutions, fc layers, gates; a projection's BN scale and shift count with its conv,
    /// 2·C too many).
    cast_params: u128,
    forward: Work,
    /// Whether it has a backward: it has parameters or an input needs a gradient (so its
    /// output needs one). The network's input has none, and nothing that reads only it and
    /// learns nothing.
    backward: bool,
    input_grad: Work,
    weight_grad: Work,
    /// Gradient sums where the output feeds several layers: (k − 1) adds per element.
    accumulate: u128,
    /// Positions of the tensors (roots) its backward keeps.
    keeps: Vec<usize>,
    extras: Vec<Extra>,
    /// The last position that reads the output (its gradient's first appearance in the
    /// backward); `END` for an output.
    last_use: usize,
    /// For a new tensor: the last position that reads it or a view of it (its life in the
    /// forward when nothing keeps it).
    life: usize,
}

/// A network's training step, per sample: build once, then ask for any batch size.
#[derive(Debug, Clone)]
pub struct TrainingModel {
    pub network: String,
    pub options: Options,
    steps: Vec<Step>,
    /// The logits of each output (positions; the loss weights change no count).
    outputs: Vec<usize>,
    params: u128,
    buffers: u128,
    /// The input's map size (for the dataset-size default).
    input_hw: Option<(u64, u64)>,
    stages: Vec<String>,
}

/// The figures of one batch size.
#[derive(Debug, Clone, Serialize)]
pub struct TrainingTotals {
    pub batch_size: u64,
    /// FLOPs of the forward, training mode (batch norm computes its statistics), and of the
    /// loss.
    pub forward_flops: u128,
    /// `backward_input_flops + backward_weight_flops`.
    pub backward_flops: u128,
    pub backward_input_flops: u128,
    pub backward_weight_flops: u128,
    /// Multiply-adds of convolutions and fc layers (what PyTorch's `FlopCounterMode` counts,
    /// as 2 FLOPs each): forward, input gradients, weight gradients.
    pub forward_macs: u128,
    pub backward_input_macs: u128,
    pub backward_weight_macs: u128,
    /// FLOPs of the optimizer's update.
    pub optimizer_flops: u128,
    /// What the backward keeps, each tensor once: activations, max-pool indices, BN
    /// statistics, dropout masks, the loss's log-probabilities and targets.
    pub saved_activation_bytes: u128,
    pub parameter_bytes: u128,
    /// BN running statistics.
    pub buffer_bytes: u128,
    pub gradient_bytes: u128,
    pub optimizer_state_bytes: u128,
    /// f16 copies of the conv and fc weights (f16-mixed only).
    pub weight_copy_bytes: u128,
    /// The most memory live at once during a step.
    pub peak_bytes: u128,
    /// `forward`, `backward` or `optimizer step`.
    pub peak_phase: String,
    /// The layer running at the peak (empty for the optimizer step).
    pub peak_layer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Estimate>,
}

/// One layer's figures at a batch size.
#[derive(Debug, Clone, Serialize)]
pub struct TrainingLayer {
    pub name: String,
    pub kind: String,
    pub stage: Option<String>,
    pub forward_flops: u128,
    pub backward_input_flops: u128,
    pub backward_weight_flops: u128,
    pub forward_macs: u128,
    pub backward_macs: u128,
    /// Bytes kept for the backward that this layer made: its output (when anything keeps it)
    /// and its own extras (indices, statistics, masks).
    pub saved_bytes: u128,
}

/// A stage's sums.
#[derive(Debug, Clone, Serialize)]
pub struct TrainingStage {
    pub name: String,
    pub forward_flops: u128,
    pub backward_input_flops: u128,
    pub backward_weight_flops: u128,
    pub saved_bytes: u128,
}

/// The report of one batch size: totals, per stage and per layer.
#[derive(Debug, Clone, Serialize)]
pub struct TrainingReport {
    #[serde(flatten)]
    pub totals: TrainingTotals,
    pub optimizer: &'static str,
    pub precision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fit: Option<Fit>,
    pub stages: Vec<TrainingStage>,
    pub layers: Vec<TrainingLayer>,
}

/// The largest batch whose step fits a memory.
#[derive(Debug, Clone, Serialize)]
pub struct Fit {
    pub memory_bytes: u128,
    /// `None` when even one sample does not fit.
    pub max_batch_size: Option<u64>,
    /// The peak at that batch size (at batch 1 when none fits).
    pub peak_bytes: u128,
    /// The peak of one more sample (absent at the largest batch considered).
    pub next_peak_bytes: Option<u128>,
}

/// The machine of a roofline estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Machine {
    /// FLOP/s at the chosen precision.
    pub peak_flops: f64,
    /// Memory bandwidth, bytes/s.
    pub bandwidth: f64,
    /// Training images per epoch.
    pub dataset_size: u64,
}

/// A roofline estimate of one step and one epoch: every layer's forward and backward at the
/// slower of its compute time (FLOPs / peak) and its memory time (bytes moved / bandwidth).
/// A lower bound: real kernels reach a fraction of either.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub peak_flops: f64,
    pub bandwidth: f64,
    pub forward_seconds: f64,
    pub backward_seconds: f64,
    pub optimizer_seconds: f64,
    pub step_seconds: f64,
    /// The share of the step spent in layers limited by compute (the rest by bandwidth).
    pub compute_bound_fraction: f64,
    pub dataset_size: u64,
    pub steps_per_epoch: u64,
    pub epoch_seconds: f64,
}

/// The training images an epoch has when `--dataset-size` is not given: ImageNet-1k's
/// training set for inputs larger than 64×64, CIFAR's otherwise.
pub fn default_dataset_size(input_hw: Option<(u64, u64)>) -> u64 {
    match input_hw {
        Some((h, w)) if h > 64 || w > 64 => 1_281_167,
        _ => 50_000,
    }
}

const END: usize = usize::MAX;

impl TrainingModel {
    pub fn new(t: &TypedGraph, options: Options) -> TrainingModel {
        let g = &t.graph;
        // What training runs: every output's logits (a trailing softmax is left to the loss)
        // and what they depend on.
        let logits_of = |id: NodeId| match g.node(id).op {
            Op::Softmax => g.node(id).inputs[0],
            _ => id,
        };
        let outputs: Vec<NodeId> = if g.outputs.is_empty() {
            vec![logits_of(g.output)]
        } else {
            g.outputs.iter().map(|o| logits_of(o.node)).collect()
        };
        let mut active = vec![false; g.nodes.len()];
        let mut stack = outputs.clone();
        while let Some(n) = stack.pop() {
            if !std::mem::replace(&mut active[n.0], true) {
                stack.extend(g.node(n).inputs.iter().copied());
            }
        }
        let mut pos = vec![usize::MAX; g.nodes.len()];
        let mut steps: Vec<Step> = Vec::new();
        let mut needs_grad: Vec<bool> = Vec::new();
        for (node, tn) in g.nodes.iter().zip(&t.nodes) {
            if !active[node.id.0] {
                continue;
            }
            let p = steps.len();
            pos[node.id.0] = p;
            let inputs: Vec<usize> = node.inputs.iter().map(|i| pos[i.0]).collect();
            let in_shapes: Vec<_> = if node.inputs.is_empty() {
                vec![tn.input]
            } else {
                node.inputs.iter().map(|i| t.nodes[i.0].output).collect()
            };
            let rule = layers::training(&node.op, tn.plan, &in_shapes, tn.output, &tn.cost);
            let input_grad = inputs.iter().any(|&i| needs_grad[i]);
            let grad = !matches!(node.op, Op::Input) && (tn.cost.params > 0 || input_grad);
            needs_grad.push(grad);
            let root = if rule.view && !inputs.is_empty() {
                steps[inputs[0]].root
            } else {
                p
            };
            let mut keeps: Vec<usize> = Vec::new();
            if grad {
                for k in &rule.keeps {
                    match *k {
                        Keep::Input(i) => keeps.push(steps[inputs[i]].root),
                        Keep::Inputs => keeps.extend(inputs.iter().map(|&i| steps[i].root)),
                        Keep::Output => keeps.push(root),
                    }
                }
                keeps.sort_unstable();
                keeps.dedup();
            }
            steps.push(Step {
                name: node.name.clone(),
                kind: node.op.kind().to_string(),
                stage: node.stage.map(|s| g.stages[s].name.clone()),
                inputs,
                out: tn.output.numel(),
                root,
                new: root == p,
                params: tn.cost.params,
                cast_params: if tn.cost.macs > 0 { tn.cost.params } else { 0 },
                forward: Work {
                    macs: tn.cost.macs,
                    flops: rule.forward_flops.unwrap_or(tn.cost.flops),
                },
                backward: grad,
                input_grad: if grad && input_grad {
                    rule.input_grad
                } else {
                    Work::default()
                },
                weight_grad: if grad && tn.cost.params > 0 {
                    rule.weight_grad
                } else {
                    Work::default()
                },
                accumulate: 0,
                keeps,
                extras: if grad { rule.extras } else { Vec::new() },
                last_use: p,
                life: p,
            });
        }
        let outputs: Vec<usize> = outputs.iter().map(|o| pos[o.0]).collect();
        // Readers: how many layers read each output (the loss reads the logits), and the last.
        let mut readers = vec![0u128; steps.len()];
        for p in 0..steps.len() {
            for i in steps[p].inputs.clone() {
                readers[i] += 1;
                steps[i].last_use = steps[i].last_use.max(p);
            }
        }
        for &o in &outputs {
            readers[o] += 1;
            steps[o].last_use = END;
        }
        for p in 0..steps.len() {
            let (root, last) = (steps[p].root, steps[p].last_use);
            steps[root].life = steps[root].life.max(last);
        }
        for (s, &k) in steps.iter_mut().zip(&readers) {
            if s.backward && k > 1 {
                s.accumulate = (k - 1) * s.out;
            }
        }
        let params = t.nodes.iter().map(|n| n.cost.params).sum::<u128>();
        let buffers = t.nodes.iter().map(|n| n.cost.buffers).sum::<u128>();
        TrainingModel {
            network: g.network.clone(),
            options,
            steps,
            outputs,
            params,
            buffers,
            input_hw: match t.input_shape() {
                crate::graph::Shape::Map { h, w, .. } => Some((h, w)),
                crate::graph::Shape::Flat { .. } => None,
            },
            stages: g.stages.iter().map(|s| s.name.clone()).collect(),
        }
    }

    /// The dataset size an epoch has by default (see [`default_dataset_size`]).
    pub fn default_dataset_size(&self) -> u64 {
        default_dataset_size(self.input_hw)
    }

    fn ab(&self) -> u128 {
        self.options.precision.activation_bytes()
    }

    fn extra_bytes(&self, e: &Extra, batch: u128) -> u128 {
        e.elements
            * if e.per_sample { batch } else { 1 }
            * self.options.precision.dtype_bytes(e.dtype)
    }

    /// The tensors (roots) anything keeps: `kept[p]` is the position of the earliest layer
    /// that keeps root `p` (the last to release it in the backward), or `None`.
    fn kept(&self) -> Vec<Option<usize>> {
        let mut kept = vec![None; self.steps.len()];
        for (p, s) in self.steps.iter().enumerate() {
            for &r in &s.keeps {
                kept[r] = Some(kept[r].map_or(p, |q: usize| q.min(p)));
            }
        }
        kept
    }

    /// The loss's kept bytes: each output's log-probabilities and its `nll_loss` total weight
    /// (one f32), and the targets once.
    fn loss_kept(&self, batch: u128) -> u128 {
        let logits: u128 = self.outputs.iter().map(|&o| self.steps[o].out).sum();
        batch * (logits * self.options.precision.loss_bytes() + TARGET_BYTES)
            + 4 * self.outputs.len() as u128
    }

    fn logits(&self) -> u128 {
        self.outputs.iter().map(|&o| self.steps[o].out).sum()
    }

    /// Parameters, buffers and optimizer state: what a step holds throughout.
    fn resident(&self) -> u128 {
        let pb = self.options.precision.parameter_bytes();
        self.params * pb + self.buffers * pb + self.params * self.options.optimizer.states() * pb
    }

    fn weight_copies(&self, s: &Step) -> u128 {
        match self.options.precision {
            Precision::F16Mixed => 2 * s.cast_params,
            _ => 0,
        }
    }

    /// The peak of one step at `batch`: its bytes, phase and the layer running then.
    pub fn peak(&self, batch: u64) -> (u128, &'static str, String) {
        let b = batch as u128;
        let ab = self.ab();
        let n = self.steps.len();
        let kept = self.kept();
        let size = |p: usize| self.steps[p].out * ab * b;
        let resident = self.resident();
        let gb = self.options.precision.parameter_bytes();

        // Forward: a new tensor lives from its layer to its last reader, or to the backward
        // if kept; each layer's extras and weight copies from it on.
        let mut delta = vec![0i128; n + 2];
        for (p, s) in self.steps.iter().enumerate() {
            if s.new {
                delta[p] += size(p) as i128;
                if kept[p].is_none() && s.life != END {
                    delta[s.life + 1] -= size(p) as i128;
                }
            }
            let own: u128 = s
                .extras
                .iter()
                .map(|e| self.extra_bytes(e, b))
                .sum::<u128>()
                + self.weight_copies(s);
            delta[p] += own as i128;
        }
        let mut best = (0u128, "forward", String::new());
        let mut live: i128 = 0;
        for (p, d) in delta.iter().take(n).enumerate() {
            live += d;
            let m = resident + live as u128;
            if m > best.0 {
                best = (m, "forward", self.steps[p].name.clone());
            }
        }
        // The loss: everything kept, the logits, and the loss's own.
        let at_loss = resident + live as u128 + self.loss_kept(b);
        if at_loss > best.0 {
            best = (at_loss, "forward", "loss".into());
        }

        // Backward, from the loss back: kept tensors live until the earliest layer keeping
        // them has run, extras and weight copies until their layer has; a parameter's
        // gradient appears when its layer runs (zero_grad sets them to None), an activation's
        // gradient when its last reader runs, until its own layer has.
        let mut kept_at = vec![0u128; n + 1];
        let mut own_at = vec![0u128; n + 1];
        let mut pgrad_at = vec![0u128; n + 1];
        let mut agrad = vec![0i128; n + 2];
        let mut from_start: u128 = 0;
        for (p, s) in self.steps.iter().enumerate() {
            if let Some(k) = kept[p] {
                kept_at[k] += size(p);
            }
            own_at[p] += s
                .extras
                .iter()
                .map(|e| self.extra_bytes(e, b))
                .sum::<u128>()
                + self.weight_copies(s);
            if s.backward {
                pgrad_at[p] += s.params * gb;
                // Its gradient lives over positions p ..= last_use.
                if s.last_use == END {
                    from_start += size(p);
                    agrad[p] += size(p) as i128;
                } else if s.last_use > p {
                    agrad[p] += size(p) as i128;
                    agrad[s.last_use + 1] -= size(p) as i128;
                }
            }
        }
        // Prefix sums of what lives up to a position; suffix sums of parameter gradients.
        let mut kept_upto = vec![0u128; n];
        let mut own_upto = vec![0u128; n];
        let mut agrad_live = vec![0u128; n];
        let (mut k, mut o, mut a) = (0u128, 0u128, 0i128);
        for p in 0..n {
            k += kept_at[p];
            o += own_at[p];
            a += agrad[p];
            kept_upto[p] = k;
            own_upto[p] = o;
            agrad_live[p] = a as u128;
        }
        let start = resident + k + o + self.loss_kept(b) + from_start;
        if start > best.0 {
            best = (start, "backward", "loss".into());
        }
        let mut pgrads: u128 = 0;
        for p in (0..n).rev() {
            pgrads += pgrad_at[p];
            if !self.steps[p].backward {
                continue;
            }
            let m = resident + pgrads + kept_upto[p] + own_upto[p] + agrad_live[p];
            if m > best.0 {
                best = (m, "backward", self.steps[p].name.clone());
            }
        }

        // The optimizer step: every gradient, and one parameter-sized temporary (the
        // foreach implementations' weight-decayed gradients, or Adam's √v).
        let gradients = self.params * gb;
        let temporary = self.params * gb;
        let step = resident + gradients + temporary;
        if step > best.0 {
            best = (step, "optimizer step", String::new());
        }
        best
    }

    /// The largest batch (up to [`MAX_BATCH`]) whose [`peak`](Self::peak) fits `memory`.
    pub fn fit(&self, memory: u128) -> Fit {
        let fits = |b: u64| self.peak(b).0 <= memory;
        if !fits(1) {
            return Fit {
                memory_bytes: memory,
                max_batch_size: None,
                peak_bytes: self.peak(1).0,
                next_peak_bytes: None,
            };
        }
        // The peak grows with the batch: double, then bisect.
        let (mut lo, mut hi) = (1u64, 2u64);
        while hi <= MAX_BATCH && fits(hi) {
            lo = hi;
            hi *= 2;
        }
        let hi = hi.min(MAX_BATCH + 1);
        let (mut lo, mut hi) = (lo, hi);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Fit {
            memory_bytes: memory,
            max_batch_size: Some(lo),
            peak_bytes: self.peak(lo).0,
            next_peak_bytes: (lo < MAX_BATCH).then(|| self.peak(lo + 1).0),
        }
    }

    fn layer(&self, p: usize, b: u128, kept: &[Option<usize>]) -> TrainingLayer {
        let s = &self.steps[p];
        let mut saved: u128 = s.extras.iter().map(|e| self.extra_bytes(e, b)).sum();
        if s.new && kept[p].is_some() {
            saved += s.out * self.ab() * b;
        }
        TrainingLayer {
            name: s.name.clone(),
            kind: s.kind.clone(),
            stage: s.stage.clone(),
            forward_flops: s.forward.flops * b,
            backward_input_flops: (s.input_grad.flops + s.accumulate) * b,
            backward_weight_flops: s.weight_grad.flops * b,
            forward_macs: s.forward.macs * b,
            backward_macs: (s.input_grad.macs + s.weight_grad.macs) * b,
            saved_bytes: saved,
        }
    }

    /// The figures at `batch`, per layer and per stage.
    pub fn report(&self, batch: u64) -> TrainingReport {
        let b = batch as u128;
        let kept = self.kept();
        let mut layers: Vec<TrainingLayer> = (0..self.steps.len())
            .map(|p| self.layer(p, b, &kept))
            .collect();
        let logits = self.logits();
        layers.push(TrainingLayer {
            name: "loss".into(),
            kind: "cross_entropy".into(),
            stage: None,
            forward_flops: LOSS_FLOPS * logits * b,
            backward_input_flops: LOSS_FLOPS * logits * b,
            backward_weight_flops: 0,
            forward_macs: 0,
            backward_macs: 0,
            saved_bytes: self.loss_kept(b),
        });
        let stages = self
            .stages
            .iter()
            .map(|name| {
                let mut st = TrainingStage {
                    name: name.clone(),
                    forward_flops: 0,
                    backward_input_flops: 0,
                    backward_weight_flops: 0,
                    saved_bytes: 0,
                };
                for l in layers.iter().filter(|l| l.stage.as_ref() == Some(name)) {
                    st.forward_flops += l.forward_flops;
                    st.backward_input_flops += l.backward_input_flops;
                    st.backward_weight_flops += l.backward_weight_flops;
                    st.saved_bytes += l.saved_bytes;
                }
                st
            })
            .collect();
        TrainingReport {
            totals: self.totals_from(batch, &layers),
            optimizer: self.options.optimizer.name(),
            precision: self.options.precision.name(),
            fit: None,
            stages,
            layers,
        }
    }

    /// The totals at `batch` (no per-layer rows).
    pub fn totals(&self, batch: u64) -> TrainingTotals {
        self.report(batch).totals
    }

    fn totals_from(&self, batch: u64, layers: &[TrainingLayer]) -> TrainingTotals {
        let pb = self.options.precision.parameter_bytes();
        let sum = |f: fn(&TrainingLayer) -> u128| layers.iter().map(f).sum::<u128>();
        let b = batch as u128;
        let (peak_bytes, phase, layer) = self.peak(batch);
        let backward_input_flops = sum(|l| l.backward_input_flops);
        let backward_weight_flops = sum(|l| l.backward_weight_flops);
        TrainingTotals {
            batch_size: batch,
            forward_flops: sum(|l| l.forward_flops),
            backward_flops: backward_input_flops + backward_weight_flops,
            backward_input_flops,
            backward_weight_flops,
            forward_macs: sum(|l| l.forward_macs),
            backward_input_macs: self.steps.iter().map(|s| s.input_grad.macs).sum::<u128>() * b,
            backward_weight_macs: self.steps.iter().map(|s| s.weight_grad.macs).sum::<u128>() * b,
            optimizer_flops: self.params * self.options.optimizer.flops_per_parameter(),
            saved_activation_bytes: sum(|l| l.saved_bytes),
            parameter_bytes: self.params * pb,
            buffer_bytes: self.buffers * pb,
            gradient_bytes: self.params * pb,
            optimizer_state_bytes: self.params * self.options.optimizer.states() * pb,
            weight_copy_bytes: self.steps.iter().map(|s| self.weight_copies(s)).sum(),
            peak_bytes,
            peak_phase: phase.into(),
            peak_layer: layer,
            estimate: None,
        }
    }

    /// A roofline estimate of a step at `batch` and of an epoch on `m`.
    pub fn estimate(&self, batch: u64, m: &Machine) -> Estimate {
        let b = batch as u128;
        let ab = self.ab();
        let pb = self.options.precision.parameter_bytes();
        let (mut fwd, mut bwd, mut compute) = (0f64, 0f64, 0f64);
        let mut time = |flops: u128, bytes: u128| -> f64 {
            let c = flops as f64 / m.peak_flops;
            let t = bytes as f64 / m.bandwidth;
            if c >= t {
                compute += c;
            }
            c.max(t)
        };
        let root_bytes = |p: usize| self.steps[p].out * ab * b;
        for s in &self.steps {
            let own: u128 = s.extras.iter().map(|e| self.extra_bytes(e, b)).sum();
            let read: u128 = s.inputs.iter().map(|&i| self.steps[i].out).sum::<u128>() * ab * b;
            let written = if s.new { s.out * ab * b } else { 0 };
            fwd += time(s.forward.flops * b, read + written + s.params * pb + own);
            if !s.backward {
                continue;
            }
            let flops = (s.input_grad.flops + s.weight_grad.flops + s.accumulate) * b;
            let kept: u128 = s.keeps.iter().map(|&r| root_bytes(r)).sum();
            let mut bytes = s.out * ab * b + kept + own;
            if s.input_grad != Work::default() {
                bytes += s.params * pb;
                bytes += s.inputs.iter().map(|&i| self.steps[i].out).sum::<u128>() * ab * b;
            }
            if s.params > 0 {
                bytes += s.params * pb;
            }
            bwd += time(flops, bytes);
        }
        let logits = self.logits() * b;
        let loss_bytes = logits * (ab + self.options.precision.loss_bytes());
        fwd += time(LOSS_FLOPS * logits, loss_bytes);
        bwd += time(LOSS_FLOPS * logits, loss_bytes);
        // The update reads parameters and gradients and writes parameters; each state is read
        // and written; the temporary written and read; f16-mixed unscales every gradient.
        let mut accesses = 3 + 2 * self.options.optimizer.states() + 2;
        if self.options.precision == Precision::F16Mixed {
            accesses += 2;
        }
        let opt = time(
            self.params * self.options.optimizer.flops_per_parameter(),
            self.params * pb * accesses,
        );
        let step = fwd + bwd + opt;
        let steps_per_epoch = m.dataset_size.div_ceil(batch.max(1));
        Estimate {
            peak_flops: m.peak_flops,
            bandwidth: m.bandwidth,
            forward_seconds: fwd,
            backward_seconds: bwd,
            optimizer_seconds: opt,
            step_seconds: step,
            compute_bound_fraction: if step > 0.0 { compute / step } else { 0.0 },
            dataset_size: m.dataset_size,
            steps_per_epoch,
            epoch_seconds: step * steps_per_epoch as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(text: &str, options: Options) -> TrainingModel {
        let (sources, r) = crate::compile_str("t.arch", text, &Default::default());
        let nets = r.unwrap_or_else(|d| panic!("{}", d.render_plain(&sources)));
        TrainingModel::new(&nets[0], options)
    }

    // conv-BN-act-conv on 4x6x6, as PyTorch measures it at batch 2 (scripts/training_cost.py's
    // rules, by hand): the input (1152 B), the first conv's output kept by the BN (2304 B), the
    // BN statistics (2·8 f32), the activation's kept value; then the loss: the log-probabilities
    // of the 288 "logits" (2304 B), the targets (16 B) and the total weight (4 B).
    const CHAIN: &str = "network n {\n input 4x6x6\n a conv 3x3, 8, act: ACT\n b conv 3x3, 8, norm: none, act: none\n}\n";

    #[test]
    fn relu_keeps_its_output_which_the_next_conv_keeps_too() {
        let m = model(&CHAIN.replace("ACT", "relu"), Options::default());
        let t = m.totals(2);
        assert_eq!(
            t.saved_activation_bytes,
            1152 + 2304 + 64 + 2304 + 2304 + 16 + 4
        );
    }

    #[test]
    fn relu6_and_silu_keep_their_input_beside_the_output() {
        for act in ["relu6", "silu"] {
            let m = model(&CHAIN.replace("ACT", act), Options::default());
            let t = m.totals(2);
            assert_eq!(
                t.saved_activation_bytes,
                1152 + 2 * 2304 + 64 + 2304 + 2304 + 16 + 4,
                "{act}"
            );
        }
    }

    #[test]
    fn the_first_conv_computes_no_input_gradient() {
        let m = model(&CHAIN.replace("ACT", "relu"), Options::default());
        let t = m.totals(1);
        let macs = |c: u128| 6 * 6 * 8 * c * 9;
        assert_eq!(t.forward_macs, macs(4) + macs(8));
        assert_eq!(t.backward_input_macs, macs(8));
        assert_eq!(t.backward_weight_macs, macs(4) + macs(8));
    }

    #[test]
    fn bf16_halves_activations_but_not_statistics_or_targets() {
        let options = Options {
            precision: Precision::Bf16,
            ..Options::default()
        };
        let m = model(&CHAIN.replace("ACT", "relu"), options);
        let t = m.totals(2);
        assert_eq!(
            t.saved_activation_bytes,
            (1152 + 2304 + 2304 + 2304) / 2 + 64 + 16 + 4
        );
    }

    #[test]
    fn a_view_keeps_the_tensor_it_views() {
        // The fc keeps the flattened map: the relu's output, already kept by the relu.
        let text = "network n {\n input 4x6x6\n a conv 3x3, 8\n b flatten, fc 10\n}\n";
        let m = model(text, Options::default());
        let t = m.totals(1);
        assert_eq!(
            t.saved_activation_bytes,
            576 + 1152 + 1152 + 64 + 40 + 8 + 4
        );
    }
}
