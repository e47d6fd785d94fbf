//! The training loop as named steps: [`Trainer::prepare`] (the run folder, the model, the
//! state to continue from), [`Trainer::step`] (one SGD step), [`Trainer::evaluate`] (a metric
//! row: training averages, validation and test error), [`Trainer::checkpoint`] (`last`,
//! `best`) and [`Trainer::plot`]. [`train`](super::train) strings them together.
//!
//! The model moves through the steps by value (`step` takes it and returns the stepped one,
//! as [`Sgd::step`] does); everything else of the run is the [`Trainer`]'s.
//!
//! Over several processes ([`dist`]): every process runs these steps; rank 0 alone claims and
//! writes the run folder, evaluates, checkpoints and prints; the others read the folder only
//! to resume (it must then be visible to them: one machine or a shared file system).

use std::path::PathBuf;
use std::time::Instant;

use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use super::checkpoint::{self, State};
use super::config::{AugmentKind, Recipe, RunConfig, TrainConfig};
use super::dist::{self, Group};
use super::metrics::{self, Row};
use super::parallel::{self, DataParallel};
use super::progress::Progress;
use super::sgd::Sgd;
use super::{
    amp, evaluate, expect_of, init, plot, remove_stale_temporaries, resume, write_atomic, Outcome,
    Prepared, Run, Summary, TrainError,
};
use crate::data::rng::{permutation, stream, Rng};
use crate::data::{Augment, Dataset, Mean, Pipeline};
use crate::precision::{self, LossScaler, Policy, PolicyGuard, Precision};
use crate::Network;

const PERMUTATION: u64 = 0x5045_524D;
const STEP: u64 = 0x5354_4550;

/// A run under way: its data, optimiser, state, rows and clocks (the model is passed along).
pub(crate) struct Trainer {
    out: PathBuf,
    ckpt_dir: PathBuf,
    config: RunConfig,
    train_set: Dataset,
    val: Option<Dataset>,
    test: Option<Dataset>,
    mean: Mean,
    pipeline: Pipeline,
    /// The main device in its autodiff form.
    device: Device,
    parallel: Option<DataParallel>,
    /// The process group of a run over several processes.
    group: Option<Group>,
    sgd: Sgd,
    state: State,
    rows: Vec<Row>,
    progress: Progress,
    /// The permutation of the epoch being read.
    perm: Option<(u64, Vec<u32>)>,
    /// Training time before this invocation, and when it began.
    elapsed0: f64,
    started: Instant,
    /// Since the last metric row: when it was written, images trained; the interval's
    /// training seconds once the row is measured.
    interval_start: Instant,
    interval_images: u64,
    interval_secs: f64,
    /// A plot failed (warned once).
    plot_failed: bool,
    /// f16's dynamic loss scaling (`None` in f32 and bf16).
    scaler: Option<LossScaler>,
    /// `--precision` and `--memory-format` for the run's duration.
    _policy: PolicyGuard,
}

/// What is due after a step: a metric row of training averages (`log`), an evaluation and
/// checkpoint (`eval`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Due {
    pub log: bool,
    pub eval: bool,
}

/// What [`Trainer::step`] did.
pub(crate) struct Stepped {
    pub model: Network,
    /// The learning rate the step used.
    pub lr: f64,
    /// A process of the group asked to stop: `model` is not stepped, nothing advanced.
    pub stopped: bool,
}

impl Trainer {
    /// Check and claim the run folder, build the model, load the `--init` weights into it (a
    /// new run), write `config.json`, load the last checkpoint when resuming, and freeze the
    /// `--freeze` layers.
    pub(crate) fn prepare(mut run: Run) -> Result<(Trainer, Network), TrainError> {
        let policy = Policy {
            precision: run.prepared.config.precision,
            memory_format: run.prepared.config.memory_format,
        };
        if !policy.is_default() && !crate::device::is_libtorch(&run.device) {
            return Err(TrainError::Config(format!(
                "--precision {} --memory-format {} needs LibTorch (--device libtorch-cpu or \
                 cuda:N, archc built with --features tch); burn-flex trains in f32, contiguous",
                policy.precision.name(),
                policy.memory_format.name()
            )));
        }
        let out = run.out.clone();
        let group = run.group.take();
        // Rank 0 (or the only process) owns the run folder; the others never write it.
        let writer = group.as_ref().is_none_or(|g| g.rank == 0);
        let ckpt_dir = out.join("checkpoints");
        let Prepared {
            mut config,
            train: train_set,
            val,
            test,
        } = run.prepared;
        let tc = config.train.clone();
        if let Some(g) = &group {
            if !(tc.batch_size as u64).is_multiple_of(g.world as u64) {
                return Err(TrainError::Config(format!(
                    "the batch size {} is not a multiple of the {} processes",
                    tc.batch_size, g.world
                )));
            }
            if run.devices.len() > 1 {
                return Err(TrainError::Config(
                    "--devices cannot be combined with a launch of several processes (one \
                     device per process: --device)"
                        .to_string(),
                ));
            }
        }
        let last_ckpt = if writer {
            super::check_writable(&out)?;
            let last = resume::check_folder(&out, run.resume)?;
            remove_stale_temporaries(&out);
            last
        } else if run.resume {
            // Rank 0 does not write `last` before the first step, which needs every rank.
            checkpoint::find(&ckpt_dir, "last")
        } else {
            None
        };

        let expect = expect_of(run.graph)?;
        let mean = Mean::of(&train_set, expect.input)?;
        let augment = Augment::of(
            tc.augment,
            tc.flip,
            tc.recipe == Recipe::PaperImagenet,
            &train_set,
            expect.input,
        );
        let pipeline = Pipeline {
            input: expect.input,
            mean: mean.clone(),
            augment,
            lighting: tc.lighting as f32,
            seed: tc.seed,
        };
        let device = run.device.clone().autodiff();
        let mut model = Network::new(run.graph, &device, tc.seed)?;
        let mut sgd = match tc.adamw {
            Some(a) => Sgd::adamw(a.beta1, a.beta2, a.eps, tc.weight_decay),
            None => Sgd::new(tc.momentum, tc.dampening, tc.nesterov, tc.weight_decay),
        };
        sgd.set_lr_scale(init::lr_scales(&model, &tc));
        // `--init` before config.json is written: weights that do not fit leave no run behind.
        // Over several processes rank 0 loads them and sends them to the others below.
        let init_report = match (&last_ckpt, config.init.as_mut()) {
            (None, Some(i)) if writer => Some(init::load(&mut model, i)?),
            _ => None,
        };
        if writer {
            let json = serde_json::to_string_pretty(&config)
                .map_err(|e| TrainError::Config(e.to_string()))?;
            write_atomic(&out.join("config.json"), format!("{json}\n").as_bytes()).map_err(
                |source| TrainError::Output {
                    path: out.clone(),
                    source,
                },
            )?;
        }
        let (state, rows) = match &last_ckpt {
            Some(ck) => resume::restore(ck, &out, &mut model, &mut sgd, &device)?,
            None => {
                Network::materialize(&model);
                (State::default(), Vec::new())
            }
        };
        // Every rank starts from rank 0's weights (and buffers), as DistributedDataParallel.
        if let Some(g) = &group {
            model = dist::broadcast_model(g, model)?;
        }
        // After every load: loading replaces the parameters.
        let frozen = init::freeze(&mut model, &tc);

        let parallel = (run.devices.len() > 1).then(|| DataParallel::new(&run.devices));
        let mode = if writer {
            run.progress
        } else {
            super::ProgressMode::Quiet
        };
        let progress = Progress::new(mode, state.iteration, tc.iterations);
        progress.message(&format!(
            "training `{}` ({} parameters) on {} ({}), {} iterations of batch {}{}",
            config.network,
            config.params,
            train_set.name(),
            if parallel.is_some() {
                format!("data-parallel on {}", config.devices.join(","))
            } else if let Some(g) = &group {
                format!(
                    "{} processes, {} each, gradients summed by c10d's Gloo",
                    g.world, config.device
                )
            } else {
                config.device.clone()
            },
            tc.iterations,
            tc.batch_size,
            if run.resume && last_ckpt.is_none() {
                ", resuming: no checkpoint was saved yet, starting again".to_string()
            } else if run.resume {
                format!(", resuming at iteration {}", state.iteration)
            } else {
                String::new()
            }
        ));
        // Which part of the data does what, and how training images are augmented.
        progress.message(&format!(
            "data: training on {}; validation on {}; test on {}; augmentation {}{}{}",
            train_set.name(),
            val.as_ref().map_or("none", |v| v.name()),
            test.as_ref().map_or("none", |t| t.name()),
            tc.augment.name(),
            if tc.flip || tc.augment == AugmentKind::None {
                ""
            } else {
                " without flips"
            },
            if tc.lighting > 0.0 {
                format!(", PCA lighting noise (std {})", tc.lighting)
            } else {
                String::new()
            }
        ));
        if let (Some(r), Some(i)) = (&init_report, &config.init) {
            for line in init::describe(i, r) {
                progress.message(&line);
            }
        }
        if frozen > 0 || !tc.lr_scale.is_empty() || tc.adamw.is_some() {
            progress.message(&format!(
                "optimizer {}{}{}",
                if tc.adamw.is_some() { "adamw" } else { "sgd" },
                if frozen > 0 {
                    format!("; {frozen} layers frozen ({})", tc.freeze.join(", "))
                } else {
                    String::new()
                },
                if tc.lr_scale.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; learning-rate scales {}",
                        tc.lr_scale
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ));
        }
        if writer {
            for w in tc.warnings() {
                progress.warn(&w);
            }
        }
        let elapsed0 = state.elapsed_s;
        let trainer = Trainer {
            out,
            ckpt_dir,
            config,
            train_set,
            val,
            test,
            mean,
            pipeline,
            device,
            parallel,
            group,
            sgd,
            state,
            rows,
            progress,
            perm: None,
            elapsed0,
            started: Instant::now(),
            interval_start: Instant::now(),
            interval_images: 0,
            interval_secs: 0.0,
            plot_failed: false,
            scaler: (policy.precision == Precision::F16).then(LossScaler::default),
            _policy: precision::set_policy(policy),
        };
        Ok((trainer, model))
    }

    /// Whether the run spans several processes.
    pub(crate) fn distributed(&self) -> bool {
        self.group.is_some()
    }

    /// Whether this process writes the run folder (rank 0, or the only process).
    fn writer(&self) -> bool {
        self.group.as_ref().is_none_or(|g| g.rank == 0)
    }

    fn tc(&self) -> &TrainConfig {
        &self.config.train
    }

    /// Whether the run has done all its iterations.
    pub(crate) fn done(&self) -> bool {
        self.state.iteration >= self.tc().iterations
    }

    fn elapsed(&self) -> f64 {
        self.elapsed0 + self.started.elapsed().as_secs_f64()
    }

    /// One SGD step on the next batch of the data order. A non-finite loss is an error (the
    /// model is not stepped, nothing is saved). Over several processes, each takes its shard
    /// of the batch (consecutive, in rank order) and the gradients are summed over them with
    /// `stop` (this process wants to stop): when any process does, no step is taken and
    /// [`Stepped::stopped`] is set on every process.
    pub(crate) fn step(&mut self, model: Network, stop: bool) -> Result<Stepped, TrainError> {
        let n = self.train_set.len() as u64;
        let b = self.tc().batch_size as u64;
        let seed = self.tc().seed;
        let state = &mut self.state;
        if state.position + b > n {
            state.epoch += 1;
            state.position = 0;
        }
        if self.perm.as_ref().map(|p| p.0) != Some(state.epoch) {
            let mut rng = Rng::keyed(seed, &[PERMUTATION, state.epoch]);
            self.perm = Some((state.epoch, permutation(n as usize, &mut rng)));
        }
        let order = self.perm.as_ref().map(|p| &p.1[..]).unwrap_or(&[]);
        // This process's shard: all of the batch, or the rank's share of it (the same
        // augmentation draws as in one process: they are keyed by the position in the epoch).
        let (first, len) = match &self.group {
            Some(g) => (g.rank as u64 * (b / g.world as u64), b / g.world as u64),
            None => (0, b),
        };
        let start = state.position + first;
        let items = &order[start as usize..(start + len) as usize];
        let batch = self
            .pipeline
            .batch(&self.train_set, items, true, state.epoch, start)?;
        // Dropout: each rank draws its own masks.
        let rank = self.group.as_ref().map_or(0, |g| g.rank as u64);
        self.device.seed(if rank == 0 {
            stream(seed, &[STEP, state.iteration])
        } else {
            stream(seed, &[STEP, state.iteration, rank])
        });
        let scale = self.scaler.as_ref().map_or(1.0, |s| s.scale);
        let (loss_value, wrong, mut grads) = if let Some(g) = &self.group {
            let shard = parallel::Shard {
                images: Tensor::from_data(TensorData::new(batch.images, batch.shape), &self.device),
                labels: batch.labels,
                weight: len as f64 / b as f64,
                index: g.rank,
            };
            let (loss, out) = model.shard_loss(shard)?;
            let loss = if scale == 1.0 {
                loss
            } else {
                loss.mul_scalar(scale)
            };
            // Every rank takes part in the all-reduce, whatever its loss (a non-finite one
            // included: the summed loss then stops every rank below).
            let mut grads = GradientsParams::from_grads(loss.backward(), &model);
            let mut extra = [
                out.loss * (len as f32 / b as f32),
                out.wrong as f32,
                f32::from(u8::from(stop)),
            ];
            dist::all_reduce_grads(g, &model, &mut grads, &mut extra)?;
            if extra[2] > 0.0 {
                return Ok(Stepped {
                    model,
                    lr: self.tc().lr_at(self.state.iteration),
                    stopped: true,
                });
            }
            (extra[0], extra[1].round() as usize, grads)
        } else if let Some(p) = &self.parallel {
            let r = p.step(&model, batch, scale)?;
            (r.loss, r.wrong, r.grads)
        } else {
            let whole = parallel::Shard {
                images: Tensor::from_data(TensorData::new(batch.images, batch.shape), &self.device),
                labels: batch.labels,
                weight: 1.0,
                index: 0,
            };
            let (loss, out) = model.shard_loss(whole)?;
            let loss = if scale == 1.0 {
                loss
            } else {
                loss.mul_scalar(scale)
            };
            let grads = if out.loss.is_finite() {
                GradientsParams::from_grads(loss.backward(), &model)
            } else {
                GradientsParams::new()
            };
            (out.loss, out.wrong, grads)
        };
        if !loss_value.is_finite() {
            self.progress.finish();
            return Err(TrainError::NonFinite {
                iteration: self.state.iteration,
                loss: loss_value,
            });
        }
        let lr = self.tc().lr_at(self.state.iteration);
        // f16: gradients unscaled; a step whose gradients overflowed is skipped (the iteration
        // still counts, as with torch.amp.GradScaler) and the scale halves.
        let take = match &mut self.scaler {
            Some(s) => {
                let finite = amp::unscale(&model, &mut grads, 1.0 / s.scale);
                if !finite {
                    self.progress.message(&format!(
                        "iteration {}: f16 gradients overflowed at loss scale {}; step skipped",
                        self.state.iteration + 1,
                        s.scale
                    ));
                }
                s.update(finite)
            }
            None => true,
        };
        let model = if take {
            self.sgd.step(model, grads, lr)
        } else {
            model
        };
        let state = &mut self.state;
        state.iteration += 1;
        state.position += b;
        state.loss_sum += loss_value as f64 * b as f64;
        state.error_sum += wrong as f64;
        state.seen += b;
        self.interval_images += b;
        self.progress.step(state.iteration);
        Ok(Stepped {
            model,
            lr,
            stopped: false,
        })
    }

    /// What is due at the iteration reached: every `log_every` a row, every `eval_every` an
    /// evaluation, both at the end.
    pub(crate) fn due(&self) -> Due {
        let tc = self.tc();
        let it = self.state.iteration;
        let end = it == tc.iterations;
        Due {
            log: it.is_multiple_of(tc.log_every) || end,
            eval: it.is_multiple_of(tc.eval_every) || end,
        }
    }

    /// The metric row of the iteration reached, after a step with learning rate `lr`: the
    /// training averages since the last row when `due.log`, the validation and test error of
    /// `model` when `due.eval`. The rows so far are written to `metrics.csv` and
    /// `metrics.jsonl`. Over several processes only rank 0 evaluates and writes (the others
    /// only start the next interval).
    pub(crate) fn evaluate(
        &mut self,
        model: &Network,
        lr: f64,
        due: Due,
    ) -> Result<Row, TrainError> {
        let it = self.state.iteration;
        let eval_batch = self.tc().batch_size.max(100);
        let secs = self.interval_start.elapsed().as_secs_f64();
        self.interval_secs = secs;
        let mut row = Row {
            iteration: it,
            lr,
            epoch: self.state.epoch,
            elapsed_s: self.elapsed(),
            ..Row::default()
        };
        let state = &mut self.state;
        if due.log && state.seen > 0 {
            row.train_loss = Some(state.loss_sum / state.seen as f64);
            row.train_error = Some(state.error_sum / state.seen as f64);
            row.images_per_s = (secs > 0.0).then(|| self.interval_images as f64 / secs);
            state.loss_sum = 0.0;
            state.error_sum = 0.0;
            state.seen = 0;
        }
        if !self.writer() {
            return Ok(row);
        }
        if due.eval {
            if let Some(v) = &self.val {
                row.val_error =
                    Some(evaluate(model, v, &self.pipeline, eval_batch, &self.device)?.top1_error);
            }
            if let Some(t) = &self.test {
                let r = evaluate(model, t, &self.pipeline, eval_batch, &self.device)?;
                row.test_error = Some(r.top1_error);
                row.test_top5_error = r.top5_error;
            }
        }
        self.rows.push(row.clone());
        metrics::write(&self.out, &self.rows).map_err(|source| TrainError::Output {
            path: self.out.clone(),
            source,
        })?;
        Ok(row)
    }

    /// After an evaluation row: save `best` when the row's validation (else test) error is
    /// the lowest so far, then `last`.
    pub(crate) fn checkpoint(&mut self, model: &Network, row: &Row) -> Result<(), TrainError> {
        if !self.writer() {
            return Ok(());
        }
        self.state.elapsed_s = self.elapsed();
        if let Some(e) = row.val_error.or(row.test_error) {
            if self.state.best.is_none_or(|(b, _)| e < b) {
                self.state.best = Some((e, row.iteration));
                self.save(model, "best")?;
            }
        }
        self.save(model, "last")?;
        Ok(())
    }

    /// Draw `error.svg` and `error.png` from the rows so far. A plot that cannot be drawn or
    /// written stops nothing (the rows are in the metrics files, `archc plot` draws them
    /// later): the first failure is a warning.
    pub(crate) fn plot(&mut self) {
        if !self.writer() {
            return;
        }
        let label = self.config.network.as_str();
        let series = [plot::Series {
            label,
            rows: &self.rows,
        }];
        if let Err(e) = plot::plot(&series, &self.out.join("error")) {
            if !self.plot_failed {
                self.progress.warn(&format!(
                    "cannot draw the error plot: {e}; training goes on (the rows are in \
                     metrics.csv: `archc plot {}` draws them)",
                    self.out.display()
                ));
            }
            self.plot_failed = true;
        }
    }

    fn save(&self, model: &Network, name: &str) -> Result<(), TrainError> {
        checkpoint::save(
            &self.ckpt_dir,
            name,
            model,
            &self.sgd,
            &self.mean,
            &self.state,
        )
        .map(|_| ())
        .map_err(TrainError::Checkpoint)
    }

    /// Show `row` and start the next interval.
    pub(crate) fn report(&mut self, row: &Row) {
        let b = self.tc().batch_size as u64;
        let rate = self.interval_secs / (self.interval_images.max(1) as f64 / b as f64);
        let eta = (self.tc().iterations - row.iteration) as f64 * rate;
        self.progress.row(row, Some(eta));
        self.interval_start = Instant::now();
        self.interval_images = 0;
    }

    /// Stop early (an interrupt, or `pause_after`): save `last` and say how to continue.
    pub(crate) fn interrupt(&mut self, model: &Network) -> Result<(), TrainError> {
        if !self.writer() {
            return Ok(());
        }
        self.state.elapsed_s = self.elapsed();
        self.save(model, "last")?;
        self.progress.message(&format!(
            "interrupted at iteration {}: saved {}; continue with --resume",
            self.state.iteration,
            self.ckpt_dir.join("last").display()
        ));
        Ok(())
    }

    /// End the progress output and sum the run up.
    pub(crate) fn finish(self, outcome: Outcome) -> Summary {
        self.progress.finish();
        Summary {
            outcome,
            iteration: self.state.iteration,
            last: self.rows.last().cloned(),
            best: self.state.best,
        }
    }
}
