//! SGD with momentum and weight decay, PyTorch's semantics, with its state kept by parameter
//! path so it can be saved next to the weights and restored into a freshly built network.
//!
//! For a parameter `p` with gradient `g`: `g += weight_decay * p`; with momentum,
//! `b = g` on the first step, else `b = momentum * b + (1 - dampening) * g`; the step uses
//! `b` (or `g + momentum * b` with Nesterov); `p -= lr * step`. That is `torch.optim.SGD`
//! (dampening 0 by default). Burn's own `Sgd` is the same maths, but keys its state by
//! `ParamId`, which a network rebuilt from a checkpoint does not keep.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::module::{Module, ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use crate::Network;

/// SGD's hyper-parameters and momentum buffers.
#[derive(Debug, Clone)]
pub struct Sgd {
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    /// Momentum buffers by parameter path (flattened).
    buffers: HashMap<String, Tensor<1>>,
}

impl Sgd {
    pub fn new(momentum: f64, dampening: f64, nesterov: bool, weight_decay: f64) -> Self {
        Sgd {
            momentum,
            dampening,
            nesterov,
            weight_decay,
            buffers: HashMap::new(),
        }
    }

    /// Number of momentum buffers held (one per parameter after the first step).
    pub fn num_buffers(&self) -> usize {
        self.buffers.len()
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

    /// Write the momentum buffers as safetensors (key = parameter path).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let mut data: BTreeMap<&str, (Vec<usize>, Vec<u8>)> = BTreeMap::new();
        for (k, t) in &self.buffers {
            let d = t.to_data().convert::<f32>();
            data.insert(k, (t.dims().to_vec(), d.as_bytes().to_vec()));
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
        meta.insert("archc".to_string(), "sgd-momentum".to_string());
        safetensors::serialize_to_file(views, Some(meta), path).map_err(|e| e.to_string())
    }

    /// Read momentum buffers written by [`Sgd::save`] onto `device`.
    pub fn load(&mut self, path: &Path, device: &Device) -> Result<(), String> {
        let buf = std::fs::read(path).map_err(|e| e.to_string())?;
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
        self.buffers = buffers;
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
        let s = &mut *self.sgd;
        let mut g = if s.weight_decay != 0.0 {
            grad + p.clone().mul_scalar(s.weight_decay)
        } else {
            grad
        };
        if s.momentum != 0.0 {
            let key = self.path.join(".");
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
        let updated = p - g.mul_scalar(self.lr);
        let mut t = Tensor::from_inner(updated);
        if require_grad {
            t = t.require_grad();
        }
        Param::from_mapped_value(id, t, mapper)
    }
}
