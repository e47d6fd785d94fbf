//! Data-parallel training (`--devices a,b,...`) through burn-train's multi-device step.
//!
//! Contract:
//! - the batch is made as on one device (same permutation, same augmentation draws), then cut
//!   into equal consecutive shards, shard `i` for device `i`; each device is fed its shard by a
//!   one-item [`DataLoaderIterator`] ([`OneShard`]);
//! - [`burn_train::train::MultiDevicesTrainStep`] runs the step: one worker thread per device
//!   forks the model onto its device (`Module::fork`) and calls [`TrainStep::step`] (forward,
//!   softmax cross-entropy, backward) on its shard; this is the step of Burn's multi-device
//!   `Learner` (`run_optim_main`), with archc's loop around it;
//! - each shard's loss is its mean cross-entropy times `shard / batch`, so the gradients of the
//!   shards summed (moved to the main device, added with Burn's `GradientsAccumulator` in
//!   device order) are the gradient of the whole batch's mean loss: PyTorch
//!   `DistributedDataParallel`'s semantics (it averages the shards' mean gradients). Burn's own
//!   Learner sums unweighted shard gradients, i.e. `k` times the mean gradient for `k` devices;
//! - archc's SGD then steps once, on the main device (the first of the list), as Burn's
//!   `run_optim_main` does; weight decay and momentum are applied once per step;
//! - batch norm normalises each shard with that shard's statistics (PyTorch `DataParallel` or
//!   DDP without `SyncBatchNorm`). The running statistics are Burn `RunningState`s, shared by
//!   the forked replicas: each worker thread records its update (`update`), and the next read
//!   (`value_sync` on a worker, `valid()` or `save_weights` on the main thread) replaces the
//!   value with the mean of the workers' updates. With equal shards the running mean then
//!   follows the whole batch's mean exactly and the running variance follows the mean of the
//!   shards' (unbiased) variances, which leaves out the spread between shard means (PyTorch
//!   DDP keeps rank 0's statistics instead).
use std::sync::Arc;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_train::train::MultiDevicesTrainStep;
use burn_train::{InferenceStep, ItemLazy, TrainOutput, TrainStep};

use burn::data::dataloader::{DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;

use super::TrainError;
use crate::data::Batch;
use crate::Network;

/// One device's part of a batch: what [`TrainStep::step`] of [`Network`] takes.
pub struct Shard {
    /// `[n, C, H, W]`, on the worker's device.
    pub images: Tensor<4>,
    pub labels: Vec<i64>,
    /// `n / batch`: the shard's share of the batch's mean loss.
    pub weight: f64,
    /// The shard's place in the batch (its device's place in the list).
    pub index: usize,
}

/// What a worker returns besides the gradients: enough for archc's metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShardOutput {
    pub index: usize,
    pub images: usize,
    /// The shard's mean cross-entropy (not weighted by the shard; with several outputs, their
    /// weighted sum).
    pub loss: f32,
    /// Top-1 mistakes in the shard.
    pub wrong: usize,
}

impl ItemLazy for ShardOutput {
    fn sync(self) -> Result<Self, burn::tensor::ExecutionError> {
        Ok(self)
    }
}

impl Network {
    /// Forward, softmax cross-entropy and top-1 mistakes of a shard: the loss to differentiate
    /// (its mean times `weight`) and what the metrics need. The one-device step is the shard
    /// of the whole batch with weight 1.
    pub(super) fn shard_loss(&self, s: Shard) -> Result<(Tensor<1>, ShardOutput), TrainError> {
        let device = s.images.device();
        let n = s.labels.len();
        let y = Tensor::<1, Int>::from_data(TensorData::new(s.labels.clone(), [n]), &device);
        // Every output's cross-entropy, weighted as the file says (GoogLeNet: 1, 0.3, 0.3);
        // top-1 mistakes are the main output's.
        let mut outputs = self
            .try_forward_outputs(s.images)
            .map_err(|e| TrainError::Input(e.to_string()))?
            .into_iter();
        let logits = outputs.next().expect("a network has an output");
        let ce = CrossEntropyLossConfig::new().init(&device);
        let mut loss = ce.forward(logits.clone(), y.clone());
        for (out, w) in outputs.zip(self.output_weights().into_iter().skip(1)) {
            loss = loss + ce.forward(out, y.clone()).mul_scalar(w);
        }
        let loss_value = loss.clone().inner().into_scalar::<f32>();
        let classes = self.graph().output.iter().product::<usize>();
        let logits = super::to_vec_f32(logits.inner())?;
        let (_, wrong, _) = super::score(&logits, &s.labels, classes);
        let out = ShardOutput {
            index: s.index,
            images: n,
            loss: loss_value,
            wrong,
        };
        let loss = if s.weight == 1.0 {
            loss
        } else {
            loss.mul_scalar(s.weight)
        };
        Ok((loss, out))
    }

    /// [`Network::shard_loss`] on a worker: a panic there is caught by burn-train and returned
    /// as the step's error.
    fn worker_shard_loss(&self, s: Shard) -> (Tensor<1>, ShardOutput) {
        self.shard_loss(s).unwrap_or_else(|e| panic!("{e}"))
    }
}

impl TrainStep for Network {
    type Input = Shard;
    type Output = ShardOutput;

    fn step(&self, item: Shard) -> TrainOutput<ShardOutput> {
        let (loss, out) = self.worker_shard_loss(item);
        TrainOutput::new(self, loss.backward(), out)
    }
}

impl InferenceStep for Network {
    type Input = Shard;
    type Output = ShardOutput;

    fn step(&self, item: Shard) -> ShardOutput {
        self.worker_shard_loss(item).1
    }
}

/// A [`DataLoaderIterator`] that yields one shard: a device's part of the current batch.
pub struct OneShard(Option<Shard>);

impl Iterator for OneShard {
    type Item = Result<Shard, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.take().map(Ok)
    }
}

impl DataLoaderIterator<Shard> for OneShard {
    fn progress(&self) -> Progress {
        let left = usize::from(self.0.is_some());
        Progress::new(1 - left, 1, Some("shards".to_string()))
    }
}

/// The workers of a data-parallel run and their devices.
pub struct DataParallel {
    step: MultiDevicesTrainStep<Network>,
    /// Autodiff devices, the main one first.
    devices: Vec<Device>,
}

/// What one data-parallel step measured, and the summed gradients (on the main device).
pub struct StepResult {
    /// The batch's mean loss (the shards' losses weighted by their sizes).
    pub loss: f32,
    pub wrong: usize,
    pub grads: GradientsParams,
}

impl DataParallel {
    /// One worker thread per device (plain devices; training uses their autodiff form).
    pub fn new(devices: &[Device]) -> Self {
        let devices: Vec<Device> = devices.iter().map(|d| d.clone().autodiff()).collect();
        DataParallel {
            step: MultiDevicesTrainStep::new(&devices),
            devices,
        }
    }

    /// Forward and backward of `batch` split over the devices; `model` lives on the main
    /// device. The batch size must be a multiple of the device count ([`TrainError::Config`]
    /// otherwise). `loss_scale` multiplies every shard's loss before its backward (f16's loss
    /// scaling; 1 otherwise): the gradients come back scaled, the loss reported does not.
    pub fn step(
        &self,
        model: &Network,
        batch: Batch,
        loss_scale: f64,
    ) -> Result<StepResult, TrainError> {
        let k = self.devices.len();
        let [b, c, h, w] = batch.shape;
        if k == 0 || !b.is_multiple_of(k) {
            return Err(TrainError::Config(format!(
                "the batch size {b} is not a multiple of the {k} devices of --devices"
            )));
        }
        let s = b / k;
        let per_image = c * h * w;
        let images = Arc::new(batch.images);
        let mut feeds: Vec<Box<dyn DataLoaderIterator<Shard>>> = self
            .devices
            .iter()
            .enumerate()
            .map(|(i, device)| {
                let data = images[i * s * per_image..(i + 1) * s * per_image].to_vec();
                let shard = Shard {
                    images: Tensor::<4>::from_data(TensorData::new(data, [s, c, h, w]), device),
                    labels: batch.labels[i * s..(i + 1) * s].to_vec(),
                    weight: s as f64 / b as f64 * loss_scale,
                    index: i,
                };
                Box::new(OneShard(Some(shard))) as Box<dyn DataLoaderIterator<Shard>>
            })
            .collect();
        let (mut outputs, _) = self
            .step
            .step(&mut feeds, model)
            .map_err(|e| TrainError::Input(format!("data-parallel step: {e}")))?;
        // Workers answer in the order they finish: add their gradients in device order, so
        // that the sum does not depend on timing.
        outputs.sort_by_key(|o| o.output.item.index);
        let main = &self.devices[0];
        let mut acc = GradientsAccumulator::<Network>::new();
        let (mut loss, mut wrong) = (0.0f64, 0usize);
        for o in outputs {
            let item = o.output.item;
            loss += item.loss as f64 * item.images as f64;
            wrong += item.wrong;
            acc.accumulate(model, o.output.grads.to_device(main, model));
        }
        Ok(StepResult {
            loss: (loss / b as f64) as f32,
            wrong,
            grads: acc.grads(),
        })
    }
}
