//! Training and evaluation: the paper's recipe, a run folder, checkpoints, resume, plots.
//!
//! Contract:
//! - [`plan()`] turns an invocation's [`Flags`] into a configuration (a new run's from the
//!   recipe, a resumed run's from its `config.json`: the rules of resuming are all in
//!   [`resume`]); [`prepare`] opens and splits the data and resolves the configuration (epochs
//!   to iterations); [`train`] runs it into a run folder: `config.json`, `metrics.csv` /
//!   `metrics.jsonl` ([`metrics`]), `checkpoints/{last,best}/` ([`checkpoint`]) and
//!   `error.svg` / `error.png` ([`plot`]), through the named steps of `run::Trainer`
//!   (prepare, step, evaluate, checkpoint);
//! - the loop is archc's own: softmax cross-entropy on the logits, [`Sgd`] (SGD or AdamW)
//!   with PyTorch's semantics, the learning rate of [`TrainConfig::lr_at`] (times a layer's
//!   `--lr-scale`); a run may start from other weights and freeze layers ([`init`]);
//! - everything random (data order, augmentation, dropout) is keyed by the seed and the
//!   iteration or `(epoch, position)`, and the checkpoint holds the data position and the
//!   metric accumulators, so on CPU a resumed run's metrics equal an uninterrupted run's
//!   (timing columns aside);
//! - the output folder is checked writable before anything is trained; a non-finite loss
//!   stops the run with [`TrainError::NonFinite`], leaving the last good checkpoint; an
//!   interrupt (Ctrl-C / SIGTERM through [`interrupt_flag`]) saves `last` and returns
//!   [`Outcome::Interrupted`];
//! - with two or more [`Run::devices`], each step's batch is split over them and run through
//!   burn-train's multi-device step ([`parallel`]); the gradients are summed on the main
//!   device and the same SGD steps once; everything else (data order, metrics, checkpoints,
//!   resume) is the one-device loop's;
//! - with a [`Run::group`] (several processes: torchrun, srun), each process trains its shard
//!   of every batch and the gradients are summed over the processes by c10d ([`dist`]); rank 0
//!   alone evaluates and writes the run folder, and the processes agree at each step whether
//!   to stop.

mod amp;
pub mod checkpoint;
pub mod config;
pub mod dist;
pub mod init;
pub mod metrics;
pub mod parallel;
pub mod plan;
pub mod plot;
mod progress;
pub mod resume;
mod run;
pub mod sgd;
mod testing;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use archc_compiler::lower::LoweredGraph;
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};

use crate::data::{self, Augment, DataError, DataSpec, Dataset, Expect, Mean, Pipeline};
use crate::{BuildError, Network, WeightError};

pub use config::{
    AdamWConfig, AugmentKind, InitSource, LrScale, OptimizerKind, Recipe, RunConfig, TrainConfig,
    Warmup,
};
pub use metrics::Row;
pub use plan::{plan, Flags, Plan};
pub use progress::ProgressMode;
pub use sgd::Sgd;
pub use testing::{evaluate_views, Testing};

use run::Trainer;

/// Why a run or an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("cannot write to the output folder `{}`: {source}", path.display())]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Weights(Box<WeightError>),
    #[error("{0}")]
    Config(String),
    #[error("the training loss became {loss} at iteration {iteration}; stopped (the last good checkpoint is kept). Try a lower --lr or a --warmup")]
    NonFinite { iteration: u64, loss: f32 },
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("{0}")]
    Input(String),
    /// A collective of a run over several processes failed: a peer ended or stopped answering.
    #[error("distributed training: {0}")]
    Distributed(String),
}

impl From<WeightError> for TrainError {
    fn from(e: WeightError) -> Self {
        TrainError::Weights(Box::new(e))
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    /// Stopped by an interrupt (or `pause_after`); `last` holds where it stopped.
    Interrupted,
}

/// What [`train`] returns.
#[derive(Debug, Clone)]
pub struct Summary {
    pub outcome: Outcome,
    pub iteration: u64,
    pub last: Option<Row>,
    /// Best validation (or test) error and its iteration.
    pub best: Option<(f64, u64)>,
}

/// Data opened and split for a run, with the configuration resolved.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub config: RunConfig,
    pub train: Dataset,
    pub val: Option<Dataset>,
    pub test: Option<Dataset>,
}

/// A run to make.
pub struct Run<'a> {
    pub graph: &'a LoweredGraph,
    pub prepared: Prepared,
    /// The run folder.
    pub out: PathBuf,
    /// A plain device (`cpu`, `cuda:0`); training uses its autodiff form. With `devices`, the
    /// main one: it holds the model and the optimiser and evaluates.
    pub device: Device,
    /// Data-parallel devices (plain; `device` should be the first), or empty: one device.
    /// The batch size must be a multiple of their number.
    pub devices: Vec<Device>,
    /// Continue from `out/checkpoints/last`.
    pub resume: bool,
    pub progress: ProgressMode,
    /// Checked between steps: when set, save `last` and stop.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Save and stop (as if interrupted) after this many steps of this invocation.
    pub pause_after: Option<u64>,
    /// The process group of a run over several processes ([`dist`]), or `None`.
    pub group: Option<dist::Group>,
}

/// The network's input `[C, H, W]` and class count as the data expects them.
pub fn expect_of(graph: &LoweredGraph) -> Result<Expect, TrainError> {
    let input: [usize; 3] = graph.input.as_slice().try_into().map_err(|_| {
        TrainError::Config(format!(
            "`{}` takes a flat input {:?}; training needs an image input CxHxW",
            graph.network, graph.input
        ))
    })?;
    let classes = graph.output.iter().product::<usize>();
    Ok(Expect { input, classes })
}

/// Open and split the data of `config` and resolve epochs to iterations.
pub fn prepare(graph: &LoweredGraph, mut config: RunConfig) -> Result<Prepared, TrainError> {
    config.train.validate().map_err(TrainError::Config)?;
    init::check_prefixes(graph, &config.train)?;
    let expect = expect_of(graph)?;
    let spec: DataSpec = config.data.parse().map_err(TrainError::Config)?;
    let splits = data::open(&spec, expect)?;
    let (train, val) = if let Some(v) = splits.val {
        // The data's own validation split (a folder's `val/` beside `test/`).
        (splits.train, Some(v))
    } else if config.train.val_fraction > 0.0 {
        let (a, b) = splits
            .train
            .hold_out(config.train.val_fraction, config.train.seed);
        (a, (!b.is_empty()).then_some(b))
    } else {
        (splits.train, None)
    };
    let b = config.train.batch_size;
    if train.len() < b {
        return Err(TrainError::Config(format!(
            "the batch size {b} is larger than the training split ({} images)",
            train.len()
        )));
    }
    let k = config.devices.len();
    if k > 1 && !b.is_multiple_of(k) {
        return Err(TrainError::Config(format!(
            "the batch size {b} is not a multiple of the {k} devices of --devices {}: each \
             device takes an equal share of every batch",
            config.devices.join(",")
        )));
    }
    if let Some(e) = config.train.epochs {
        config.train.iterations = e * (train.len() / b) as u64;
    }
    config.train.augment = config.train.augment.resolve(
        config.train.recipe == Recipe::PaperImagenet,
        &train,
        expect.input,
    );
    config.input = expect.input.to_vec();
    config.classes = expect.classes;
    config.params = graph.params;
    config.data = spec.to_string();
    Ok(Prepared {
        config,
        train,
        val,
        test: splits.test,
    })
}

/// Read a run folder's `config.json`.
pub fn read_config(out: &Path) -> Result<RunConfig, TrainError> {
    let p = out.join("config.json");
    let text = std::fs::read_to_string(&p)
        .map_err(|e| TrainError::Config(format!("cannot read `{}`: {e}", p.display())))?;
    serde_json::from_str(&text).map_err(|e| TrainError::Config(format!("`{}`: {e}", p.display())))
}

/// A flag set by Ctrl-C and SIGTERM (installed once per process, with the first call's
/// `on_second`). A second signal calls `on_second`: the `archc` binary exits there with status
/// 130; the library itself never ends the process.
pub fn interrupt_flag(on_second: fn()) -> Result<Arc<AtomicBool>, String> {
    static FLAG: OnceLock<Result<Arc<AtomicBool>, String>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        ctrlc::set_handler(move || {
            if f.swap(true, Ordering::SeqCst) {
                on_second();
            }
        })
        .map(|()| flag)
        .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))
    })
    .clone()
}

/// Write `bytes` to `path` through a temporary file, flushed to the disk, and a rename (the
/// folder is flushed too): after a crash or a power cut `path` holds the old bytes or the new.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Flush a file's contents to the disk.
pub(crate) fn sync_file(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

/// Flush a folder's entries (the names created, renamed or removed in it) to the disk. Where
/// a folder cannot be opened for that (not Unix), nothing is done.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Remove what [`write_atomic`] and [`check_writable`] leave in `out` when a process is killed
/// while writing (`.metrics.csv.tmp1234`, `.error.png.tmp1234`, `.archc-write-test-1234`).
fn remove_stale_temporaries(out: &Path) {
    let Ok(entries) = std::fs::read_dir(out) else {
        return;
    };
    let pid =
        |s: Option<&str>| s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let stale = pid(name.strip_prefix(".archc-write-test-"))
            || [
                "config.json",
                "metrics.csv",
                "metrics.jsonl",
                "error.svg",
                "error.png",
            ]
            .iter()
            .any(|f| pid(name.strip_prefix(&format!(".{f}.tmp"))));
        if stale {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Fail early when `out` cannot be created or written.
pub fn check_writable(out: &Path) -> Result<(), TrainError> {
    let err = |source| TrainError::Output {
        path: out.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(out).map_err(err)?;
    let probe = out.join(format!(".archc-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"ok").map_err(err)?;
    std::fs::remove_file(&probe).map_err(err)
}

/// Top-1 (and top-5) mistakes and summed loss of a batch of logits `[n, classes]`.
fn score(logits: &[f32], labels: &[i64], classes: usize) -> (f64, usize, usize) {
    let mut loss = 0.0f64;
    let (mut top1, mut top5) = (0, 0);
    for (row, &y) in logits.chunks_exact(classes.max(1)).zip(labels) {
        let y = y as usize;
        let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let lse = max
            + row
                .iter()
                .map(|&v| (v as f64 - max).exp())
                .sum::<f64>()
                .ln();
        let target = row.get(y).copied().unwrap_or(f32::NAN);
        loss += lse - target as f64;
        let above = row.iter().filter(|&&v| v > target).count();
        top1 += usize::from(above >= 1 || target.is_nan());
        top5 += usize::from(above >= 5 || target.is_nan());
    }
    (loss, top1, top5)
}

fn to_vec_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, TrainError> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| TrainError::Input(format!("cannot read a tensor back: {e:?}")))
}

/// What [`evaluate`] measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalResult {
    pub images: usize,
    pub loss: f64,
    pub top1_error: f64,
    /// Reported when there are more than 10 classes.
    pub top5_error: Option<f64>,
}

/// Evaluate `model` (in eval mode: running batch norm statistics) on all of `data`.
pub fn evaluate(
    model: &Network,
    data: &Dataset,
    pipeline: &Pipeline,
    batch_size: usize,
    device: &Device,
) -> Result<EvalResult, TrainError> {
    evaluate_into(model, data, pipeline, batch_size, device, None)
}

/// Per-class counts of an evaluation: `counts[label * classes + predicted]`. The predicted
/// class is the label where no logit exceeds the label's (as top-1 error counts a tie as
/// right), else the first largest other logit; so the off-diagonal total is top-1's error
/// count (but for a one-class network with a NaN logit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confusion {
    pub classes: usize,
    pub counts: Vec<u64>,
}

impl Confusion {
    pub fn new(classes: usize) -> Self {
        Confusion {
            classes,
            counts: vec![0; classes * classes],
        }
    }

    /// Count one batch of logits (`classes` per row) against its labels.
    pub fn add(&mut self, logits: &[f32], labels: &[i64]) {
        let k = self.classes.max(1);
        for (row, &y) in logits.chunks_exact(k).zip(labels) {
            let y = y as usize;
            if y >= self.classes {
                continue;
            }
            let target = row[y];
            let right = !target.is_nan() && !row.iter().any(|&v| v > target);
            // Wrong: the first largest other logit (a NaN counts as the smallest).
            let key = |v: f32| if v.is_nan() { f32::NEG_INFINITY } else { v };
            let predicted = if right {
                y
            } else {
                (0..row.len())
                    .filter(|&i| i != y)
                    .fold(None, |best: Option<usize>, i| match best {
                        Some(b) if key(row[b]) >= key(row[i]) => Some(b),
                        _ => Some(i),
                    })
                    .unwrap_or(y)
            };
            self.counts[y * self.classes + predicted] += 1;
        }
    }

    /// The counts of the images labelled `class`, by predicted class.
    pub fn row(&self, class: usize) -> &[u64] {
        &self.counts[class * self.classes..(class + 1) * self.classes]
    }

    /// How many images are labelled `class`.
    pub fn images(&self, class: usize) -> u64 {
        self.row(class).iter().sum()
    }

    /// The top-1 error on the images labelled `class`; none when there are none.
    pub fn error(&self, class: usize) -> Option<f64> {
        let n = self.images(class);
        (n > 0).then(|| 1.0 - self.row(class)[class] as f64 / n as f64)
    }
}

/// [`evaluate`], also counting into `confusion` when given one.
pub fn evaluate_into(
    model: &Network,
    data: &Dataset,
    pipeline: &Pipeline,
    batch_size: usize,
    device: &Device,
    mut confusion: Option<&mut Confusion>,
) -> Result<EvalResult, TrainError> {
    let device = device.clone().without_autodiff();
    // On `device` as a whole: the batch norm running statistics of a data-parallel run are
    // shared with the workers' forks and may have been left on another worker's device.
    let model = model.valid().to_device(&device);
    let classes = model.graph().output.iter().product::<usize>();
    let order: Vec<u32> = (0..data.len() as u32).collect();
    let mut tally = Tally::default();
    for chunk in order.chunks(batch_size.max(1)) {
        let b = pipeline.batch(data, chunk, false, 0, 0)?;
        let x = Tensor::<4>::from_data(TensorData::new(b.images, b.shape), &device);
        let logits = model
            .try_forward(x)
            .map_err(|e| TrainError::Input(e.to_string()))?;
        let logits = to_vec_f32(logits)?;
        tally.add(&logits, &b.labels, classes, confusion.as_deref_mut());
    }
    Ok(tally.result(data.len(), classes))
}

/// Sums of an evaluation's loss and top-1 and top-5 errors over its batches.
#[derive(Default)]
struct Tally {
    loss: f64,
    top1: usize,
    top5: usize,
}

impl Tally {
    /// Score a batch's `logits` (`classes` a row) against `labels`, into `confusion` too.
    fn add(
        &mut self,
        logits: &[f32],
        labels: &[i64],
        classes: usize,
        confusion: Option<&mut Confusion>,
    ) {
        let (l, t1, t5) = score(logits, labels, classes);
        if let Some(c) = confusion {
            c.add(logits, labels);
        }
        self.loss += l;
        self.top1 += t1;
        self.top5 += t5;
    }

    /// The means over `images` images (top-5 above 10 classes).
    fn result(&self, images: usize, classes: usize) -> EvalResult {
        let n = images.max(1) as f64;
        EvalResult {
            images,
            loss: self.loss / n,
            top1_error: self.top1 as f64 / n,
            top5_error: (classes > 10).then_some(self.top5 as f64 / n),
        }
    }
}

/// Train: see the module docs. The steps are `run::Trainer`'s.
pub fn train(run: Run) -> Result<Summary, TrainError> {
    let interrupt = run.interrupt.clone();
    let pause_after = run.pause_after;
    let (mut trainer, mut model) = Trainer::prepare(run)?;
    let mut steps_here = 0u64;
    while !trainer.done() {
        let stop = interrupt.as_ref().is_some_and(|f| f.load(Ordering::SeqCst))
            || pause_after.is_some_and(|p| steps_here >= p);
        // Over several processes the step itself tells every process whether any must stop.
        if stop && !trainer.distributed() {
            trainer.interrupt(&model)?;
            return Ok(trainer.finish(Outcome::Interrupted));
        }
        let stepped = trainer.step(model, stop)?;
        model = stepped.model;
        if stepped.stopped {
            trainer.interrupt(&model)?;
            return Ok(trainer.finish(Outcome::Interrupted));
        }
        steps_here += 1;
        let due = trainer.due();
        if due.log || due.eval {
            let row = trainer.evaluate(&model, stepped.lr, due)?;
            if due.eval {
                trainer.checkpoint(&model, &row)?;
                trainer.plot();
            }
            trainer.report(&row);
        }
    }
    Ok(trainer.finish(Outcome::Finished))
}

/// Evaluate weights (a `.safetensors`/`.pth` file, or a checkpoint folder) on a data set's
/// test split (the training split when there is none). The input mean is the checkpoint's
/// `mean.safetensors` when it sits beside the weights, else computed from the training split.
pub fn evaluate_weights(
    graph: &LoweredGraph,
    weights: &Path,
    spec: &DataSpec,
    device: &Device,
    batch_size: usize,
    mut confusion: Option<&mut Confusion>,
    testing: Option<&Testing>,
) -> Result<(EvalResult, String), TrainError> {
    let at = checkpoint::weights_at(weights);
    let expect = expect_of(graph)?;
    let splits = data::open(spec, expect)?;
    let mean = match &at.mean {
        Some(p) => checkpoint::load_mean(p).map_err(TrainError::Checkpoint)?,
        None => Mean::of(&splits.train, expect.input)?,
    };
    let mut model = Network::new(graph, device, 0)?;
    model.load_weights(&at.model)?;
    // A run trained with the CIFAR augmentation evaluates folder images of the input's size
    // as they are, as its own evaluations did (its `config.json` says so, two folders above a
    // checkpoint folder).
    let run_config = at
        .model
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .and_then(|run| read_config(run).ok());
    let augment = match run_config {
        Some(c) if at.mean.is_some() && c.train.augment == AugmentKind::Cifar => {
            Augment::PadCrop { pad: 4 }
        }
        _ => Augment::None,
    };
    let data = splits.test.unwrap_or(splits.train);
    let pipeline = Pipeline {
        input: expect.input,
        mean,
        augment,
        lighting: 0.0,
        seed: 0,
    };
    if let Some(c) = confusion.as_deref_mut() {
        *c = Confusion::new(model.graph().output.iter().product());
    }
    let r = match testing.filter(|t| !t.views.is_plain()) {
        Some(t) => evaluate_views(&model, &data, &pipeline, t, batch_size, device, confusion)?,
        None => evaluate_into(&model, &data, &pipeline, batch_size, device, confusion)?,
    };
    Ok((r, data.name().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_count_top1_and_top5() {
        // 6 classes; label 0 is the largest in row 1, sixth largest in row 2.
        let logits = [
            5.0, 1.0, 2.0, 3.0, 0.0, 0.0, //
            0.0, 1.0, 2.0, 3.0, 4.0, 5.0,
        ];
        let (loss, top1, top5) = score(&logits, &[0, 0], 6);
        assert_eq!((top1, top5), (1, 1));
        assert!(loss > 0.0);
        let mut c = Confusion::new(6);
        c.add(&logits, &[0, 0]);
        // Row 1 is right; row 2 predicts class 5. Off the diagonal: top-1's one error.
        assert_eq!(c.row(0), [1, 0, 0, 0, 0, 1]);
        assert_eq!(c.error(0), Some(0.5));
        assert_eq!(c.error(1), None);
    }
}
