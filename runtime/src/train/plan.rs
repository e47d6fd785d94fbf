//! From an invocation to a run: the flags given ([`Flags`]), the configuration they resolve to
//! ([`plan`]: a new run's from the recipe, a resumed run's from its `config.json` through
//! the `resume` module), and the data opened ([`Plan::prepare`]).
//!
//! Defaults that depend on the run's length are settled in [`Plan::prepare`], once `--epochs`
//! has become iterations: `log_every` and `eval_every`, when not given, are the recipe's but
//! at most a tenth and a fifth of the run ([`TrainConfig::fit_intervals`]).

use std::path::Path;

use archc_compiler::lower::LoweredGraph;

#[cfg(doc)]
use super::config::TrainConfig;
use super::config::{
    AdamWConfig, AugmentKind, InitSource, LrScale, OptimizerKind, Recipe, RunConfig, Warmup,
};
use super::{prepare, read_config, resume, Prepared, TrainError};
use crate::data::DataSpec;
use crate::precision::{MemoryFormat, Precision};

/// What an invocation gives: the network, data and devices, and each hyper-parameter as
/// given (`None`: left to the recipe for a new run, to `config.json` for a resumed one).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// The `.arch` file and network.
    pub file: String,
    pub network: String,
    /// The data spec as given (`synthetic`, `cifar10:DIR`, ...).
    pub data: String,
    pub input_override: Option<Vec<u64>>,
    pub classes_override: Option<u64>,
    /// The (main) device and, for a data-parallel run, the list (else empty).
    pub device: String,
    pub devices: Vec<String>,
    pub recipe: Option<Recipe>,
    pub iterations: Option<u64>,
    pub epochs: Option<u64>,
    pub batch_size: Option<usize>,
    pub lr: Option<f64>,
    pub milestones: Option<Vec<u64>>,
    pub weight_decay: Option<f64>,
    pub momentum: Option<f64>,
    pub warmup: Option<Warmup>,
    pub val_fraction: Option<f64>,
    /// `--augment` (`Some(None)` for `--no-augment`).
    pub augment: Option<AugmentKind>,
    /// `Some(false)` for `--no-flip`.
    pub flip: Option<bool>,
    /// `--lighting STD`.
    pub lighting: Option<f64>,
    pub log_every: Option<u64>,
    pub eval_every: Option<u64>,
    pub seed: Option<u64>,
    /// `--optimizer`, `--betas` and `--eps` (the last two for AdamW only).
    pub optimizer: Option<OptimizerKind>,
    pub betas: Option<(f64, f64)>,
    pub eps: Option<f64>,
    /// `--freeze` and `--lr-scale` (`Some` when given).
    pub freeze: Option<Vec<String>>,
    pub lr_scale: Option<Vec<LrScale>>,
    /// `--init` (the path as given) and `--init-partial`.
    pub init: Option<String>,
    pub init_partial: bool,
    /// `--precision` and `--memory-format` (defaults: f32, contiguous).
    pub precision: Precision,
    pub memory_format: MemoryFormat,
}

impl Flags {
    /// The data spec in its canonical spelling (`synthetic` → `synthetic:5000`), or as given
    /// when it does not parse (opening the data says why).
    pub fn data_spec(&self) -> String {
        self.data
            .parse::<DataSpec>()
            .map(|s| s.to_string())
            .unwrap_or_else(|_| self.data.clone())
    }

    /// A new run's configuration: the recipe's, with the flags given.
    pub fn new_config(&self) -> RunConfig {
        let mut t = self.recipe.unwrap_or(Recipe::PaperCifar).config();
        if let Some(i) = self.iterations {
            t.iterations = i;
        }
        t.epochs = self.epochs;
        if let Some(v) = self.batch_size {
            t.batch_size = v;
        }
        if let Some(v) = self.lr {
            t.lr = v;
        }
        if let Some(m) = &self.milestones {
            t.milestones = m.clone();
        }
        if let Some(v) = self.weight_decay {
            t.weight_decay = v;
        }
        if let Some(v) = self.momentum {
            t.momentum = v;
        }
        if self.warmup.is_some() {
            t.warmup = self.warmup;
        }
        if let Some(v) = self.val_fraction {
            t.val_fraction = v;
        }
        if let Some(a) = self.augment {
            t.augment = a;
        }
        if let Some(f) = self.flip {
            t.flip = f;
        }
        if let Some(v) = self.lighting {
            t.lighting = v;
        }
        if let Some(v) = self.log_every {
            t.log_every = v;
        }
        if let Some(v) = self.eval_every {
            t.eval_every = v;
        }
        if let Some(v) = self.seed {
            t.seed = v;
        }
        if self.optimizer == Some(OptimizerKind::AdamW) {
            let d = AdamWConfig::default();
            let (beta1, beta2) = self.betas.unwrap_or((d.beta1, d.beta2));
            t.adamw = Some(AdamWConfig {
                beta1,
                beta2,
                eps: self.eps.unwrap_or(d.eps),
            });
        }
        if let Some(f) = &self.freeze {
            t.freeze = f.clone();
        }
        if let Some(s) = &self.lr_scale {
            t.lr_scale = s.clone();
        }
        RunConfig {
            archc_version: env!("CARGO_PKG_VERSION").to_string(),
            file: self.file.clone(),
            network: self.network.clone(),
            input_override: self.input_override.clone(),
            classes_override: self.classes_override,
            input: Vec::new(),
            classes: 0,
            params: 0,
            data: self.data_spec(),
            device: self.device.clone(),
            devices: self.devices.clone(),
            init: self.init.as_ref().map(|p| InitSource {
                path: p.clone(),
                sha256: String::new(),
                partial: self.init_partial,
            }),
            precision: self.precision,
            memory_format: self.memory_format,
            train: t,
        }
    }
}

/// A run resolved from an invocation, its data not yet opened.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The configuration: the new run's, or the resumed run's (its network is built with
    /// `input_override` and `classes_override`).
    pub config: RunConfig,
    pub resume: bool,
    /// The intervals left to their defaults (a new run's, when not given).
    fit_log: bool,
    fit_eval: bool,
}

/// Resolve what `flags` ask for in the run folder `out`: check the folder ([`resume::check_folder`])
/// and build the configuration. Writes nothing.
pub fn plan(flags: &Flags, out: &Path, resume: bool) -> Result<Plan, TrainError> {
    resume::check_folder(out, resume)?;
    let mut config = if resume {
        resume::resumed_config(read_config(out)?, flags, out)?
    } else {
        flags.new_config()
    };
    if (flags.betas.is_some() || flags.eps.is_some()) && config.train.adamw.is_none() {
        return Err(TrainError::Config(
            "--betas and --eps are AdamW's: give them with --optimizer adamw".into(),
        ));
    }
    if flags.init_partial && config.init.is_none() {
        return Err(TrainError::Config(
            "--init-partial says how --init loads weights: give it with --init FILE".into(),
        ));
    }
    if let Some(init) = config.init.as_mut().filter(|_| !resume) {
        init.sha256 = super::init::sha256_file(Path::new(&init.path))?;
    }
    let mut plan = Plan {
        config,
        resume,
        fit_log: !resume && flags.log_every.is_none(),
        fit_eval: !resume && flags.eval_every.is_none(),
    };
    // The length is known unless it is given in epochs (then `Plan::prepare` fits again).
    if plan.config.train.epochs.is_none() {
        plan.config.train.fit_intervals(plan.fit_log, plan.fit_eval);
    }
    Ok(plan)
}

impl Plan {
    /// Open and split the data ([`prepare`]) and settle the defaults that depend on the run's
    /// length.
    pub fn prepare(self, graph: &LoweredGraph) -> Result<Prepared, TrainError> {
        let mut p = prepare(graph, self.config)?;
        p.config.train.fit_intervals(self.fit_log, self.fit_eval);
        Ok(p)
    }
}
