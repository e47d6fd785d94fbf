//! The optimizers, PyTorch's semantics, with their state kept by parameter path so it can be
//! saved next to the weights and restored into a freshly built network: SGD with momentum and
//! weight decay ([`Sgd::new`]) and AdamW ([`Sgd::adamw`]).
//!
//! SGD, for a parameter `p` with gradient `g`: `g += weight_decay * p`; with momentum,
//! `b = g` on the first step, else `b = momentum * b + (1 - dampening) * g`; the step uses
//! `b` (or `g + momentum * b` with Nesterov); `p -= lr * step`. That is `torch.optim.SGD`
//! (dampening 0 by default). Burn's own `Sgd` is the same maths, but keys its state by
//! `ParamId`, which a network rebuilt from a checkpoint does not keep.
//!
//! AdamW, as `torch.optim.AdamW` (not amsgrad, not maximize): with `t` the parameter's step
//! count (from 1), `p *= 1 - lr * weight_decay` (decoupled decay), `m = beta1 * m + (1 -
//! beta1) * g`, `v = beta2 * v + (1 - beta2) * g²`, and `p -= (lr / (1 - beta1^t)) * m /
//! (sqrt(v) / sqrt(1 - beta2^t) + eps)`: eps is added after the bias correction of `v`, as
//! PyTorch does.
//!
//! Every parameter's learning rate is `lr` times its layer's factor ([`Sgd::set_lr_scale`],
//! `--lr-scale`; 1 by default). A parameter without a gradient (a frozen layer's, batch norm
//! running statistics) is left as it is, with no decay and no change to its state.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::module::{Module, ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use crate::Network;

/// AdamW's hyper-parameters and state.
#[derive(Debug, Clone)]
pub struct AdamW {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// First and second moments by parameter path (flattened), and each one's step count.
    exp_avg: HashMap<String, Tensor<1>>,
    exp_avg_sq: HashMap<String, Tensor<1>>,
    steps: HashMap<String, u64>,
}

/// The optimizer of a run: SGD's hyper-parameters and momentum buffers, or AdamW (`adamw`).
#[derive(Debug, Clone)]
pub struct Sgd {
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    /// Momentum buffers by parameter path (flattened).
    buffers: HashMap<String, Tensor<1>>,
    /// AdamW instead of SGD (then `momentum`, `dampening` and `nesterov` are unused).
    adamw: Option<AdamW>,
    /// The learning-rate factor of each layer (index into `Network::layers`); 1 past the end.
    lr_scale: Vec<f64>,
}

impl Sgd {
    pub fn new(momentum: f64, dampening: f64, nesterov: bool, weight_decay: f64) -> Self {
        Sgd {
            momentum,
            dampening,
            nesterov,
            weight_decay,
            buffers: HashMap::new(),
            adamw: None,
            lr_scale: Vec::new(),
        }
    }

    /// AdamW (`torch.optim.AdamW`'s semantics, see the module docs) with decoupled
    /// `weight_decay`.
    pub fn adamw(beta1: f64, beta2: f64, eps: f64, weight_decay: f64) -> Self {
        Sgd {
            adamw: Some(AdamW {
                beta1,
                beta2,
                eps,
                exp_avg: HashMap::new(),
                exp_avg_sq: HashMap::new(),
                steps: HashMap::new(),
            }),
            ..Sgd::new(0.0, 0.0, false, weight_decay)
        }
    }

    /// Whether this is AdamW.
    pub fn is_adamw(&self) -> bool {
        self.adamw.is_some()
    }

    /// The learning-rate factor of each layer of the network (`Network::layers`' order).
    pub fn set_lr_scale(&mut self, per_layer: Vec<f64>) {
        self.lr_scale = per_layer;
    }

    /// Number of state tensors held: SGD's momentum buffers (one per parameter after the
    /// first step), AdamW's first moments.
    pub fn num_buffers(&self) -> usize {
        match &self.adamw {
            Some(a) => a.exp_avg.len(),
            None => self.buffers.len(),
        }
    }

    /// One step with learning rate `lr`.
    pub fn step(&mut self, model: Network, grads: GradientsParams, lr: f64) -> Network {
        let mut m = Mapper {
            sgd: self,
            grads,
            lr,
            path: Vec::new(),
        };
        model.map(&mut m)
    }

    /// Write the state as safetensors: SGD's momentum buffers (key = parameter path), or
    /// AdamW's `exp_avg.PATH`, `exp_avg_sq.PATH` and `step.PATH` (a one-element f32 count;
    /// exact to 2^24 steps).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let mut data: BTreeMap<String, (Vec<usize>, Vec<u8>)> = BTreeMap::new();
        let mut add = |k: String, t: &Tensor<1>| {
            let d = t.to_data().convert::<f32>();
            data.insert(k, (t.dims().to_vec(), d.as_bytes().to_vec()));
        };
        match &self.adamw {
            None => {
                for (k, t) in &self.buffers {
                    add(k.clone(), t);
                }
            }
            Some(a) => {
                for (k, t) in &a.exp_avg {
                    add(format!("exp_avg.{k}"), t);
                }
                for (k, t) in &a.exp_avg_sq {
                    add(format!("exp_avg_sq.{k}"), t);
                }
            }
        }
        if let Some(a) = &self.adamw {
            for (k, &n) in &a.steps {
                data.insert(
                    format!("step.{k}"),
                    (vec![1], (n as f32).to_le_bytes().to_vec()),
                );
            }
        }
        let views = data
            .iter()
            .map(|(k, (shape, bytes))| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .map(|v| (k.to_string(), v))
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut meta = std::collections::HashMap::new();
        let kind = if self.adamw.is_some() {
            "adamw"
        } else {
            "sgd-momentum"
        };
        meta.insert("archc".to_string(), kind.to_string());
        safetensors::serialize_to_file(views, Some(meta), path).map_err(|e| e.to_string())
    }

    /// Read the state written by [`Sgd::save`] onto `device` (an AdamW state into an AdamW
    /// optimizer, momentum buffers into SGD).
    pub fn load(&mut self, path: &Path, device: &Device) -> Result<(), String> {
        let buf = std::fs::read(path).map_err(|e| e.to_string())?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(&buf).map_err(|e| e.to_string())?;
        let saved_adamw = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get("archc"))
            .is_some_and(|k| k == "adamw");
        if saved_adamw != self.adamw.is_some() {
            return Err(format!(
                "the file holds {} state, the run uses {}",
                if saved_adamw { "AdamW" } else { "SGD" },
                if self.adamw.is_some() { "AdamW" } else { "SGD" }
            ));
        }
        let st = safetensors::SafeTensors::deserialize(&buf).map_err(|e| e.to_string())?;
        let mut buffers = HashMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != safetensors::Dtype::F32 || view.shape().len() != 1 {
                return Err(format!("`{name}` is not a flat f32 tensor"));
            }
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let n = values.len();
            buffers.insert(
                name,
                Tensor::<1>::from_data(TensorData::new(values, [n]), device),
            );
        }
        match &mut self.adamw {
            None => self.buffers = buffers,
            Some(a) => {
                let part = |prefix: &str| -> HashMap<String, Tensor<1>> {
                    buffers
                        .iter()
                        .filter_map(|(k, t)| Some((k.strip_prefix(prefix)?.to_string(), t.clone())))
                        .collect()
                };
                a.exp_avg = part("exp_avg.");
                a.exp_avg_sq = part("exp_avg_sq.");
                let mut steps = HashMap::new();
                for (k, t) in part("step.") {
                    let v = t
                        .into_data()
                        .convert::<f32>()
                        .try_to_vec::<f32>()
                        .map_err(|e| format!("{e:?}"))?;
                    steps.insert(k, v.first().copied().unwrap_or(0.0) as u64);
                }
                a.steps = steps;
            }
        }
        Ok(())
    }
}

struct Mapper<'a> {
    sgd: &'a mut Sgd,
    grads: GradientsParams,
    lr: f64,
    path: Vec<String>,
}

impl ModuleMapper for Mapper<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            // No gradient (batch norm running statistics, frozen parameters): unchanged.
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let require_grad = tensor.is_require_grad();
        let p = tensor.inner();
        let grad = grad.to_device(&p.device());
        let key = self.path.join(".");
        // `layers.L....`: the layer's learning-rate factor.
        let scale = self
            .path
            .get(1)
            .and_then(|l| l.parse::<usize>().ok())
            .and_then(|l| self.sgd.lr_scale.get(l).copied())
            .unwrap_or(1.0);
        let lr = self.lr * scale;
        let s = &mut *self.sgd;
        if let Some(a) = &mut s.adamw {
            let updated = adamw_step(a, s.weight_decay, key, p, grad, lr);
            let mut t = Tensor::from_inner(updated);
            if require_grad {
                t = t.require_grad();
            }
            return Param::from_mapped_value(id, t, mapper);
        }
        let mut g = if s.weight_decay != 0.0 {
            grad + p.clone().mul_scalar(s.weight_decay)
        } else {
            grad
        };
        if s.momentum != 0.0 {
            let dims = g.dims();
            let n = dims.iter().product::<usize>();
            let b = match s.buffers.remove(&key) {
                Some(b) if b.dims()[0] == n => {
                    b.reshape(dims).mul_scalar(s.momentum) + g.clone().mul_scalar(1.0 - s.dampening)
                }
                _ => g.clone(),
            };
            g = if s.nesterov {
                g + b.clone().mul_scalar(s.momentum)
            } else {
                b.clone()
            };
            s.buffers.insert(key, b.reshape([n]));
        }
        let updated = p - g.mul_scalar(lr);
        let mut t = Tensor::from_inner(updated);
        if require_grad {
            t = t.require_grad();
        }
        Param::from_mapped_value(id, t, mapper)
    }
}

/// One AdamW step of parameter `key` (see the module docs), in torch.optim.AdamW's order of
/// operations.
fn adamw_step<const D: usize>(
    a: &mut AdamW,
    weight_decay: f64,
    key: String,
    p: Tensor<D>,
    g: Tensor<D>,
    lr: f64,
) -> Tensor<D> {
    let dims = g.dims();
    let n = dims.iter().product::<usize>();
    let fits = |t: &Tensor<1>| t.dims()[0] == n;
    let t = a.steps.get(&key).copied().unwrap_or(0) + 1;
    let p = if weight_decay != 0.0 {
        p.mul_scalar(1.0 - lr * weight_decay)
    } else {
        p
    };
    let m = match a.exp_avg.remove(&key).filter(fits) {
        Some(m) => m.reshape(dims).mul_scalar(a.beta1) + g.clone().mul_scalar(1.0 - a.beta1),
        None => g.clone().mul_scalar(1.0 - a.beta1),
    };
    let v = match a.exp_avg_sq.remove(&key).filter(fits) {
        Some(v) => v.reshape(dims).mul_scalar(a.beta2) + (g.clone() * g).mul_scalar(1.0 - a.beta2),
        None => (g.clone() * g).mul_scalar(1.0 - a.beta2),
    };
    let bias1 = 1.0 - a.beta1.powi(t as i32);
    let bias2 = 1.0 - a.beta2.powi(t as i32);
    let denom = v.clone().sqrt().div_scalar(bias2.sqrt()).add_scalar(a.eps);
    let updated = p - (m.clone() / denom).mul_scalar(lr / bias1);
    a.exp_avg.insert(key.clone(), m.reshape([n]));
    a.exp_avg_sq.insert(key.clone(), v.reshape([n]));
    a.steps.insert(key, t);
    updated
}
