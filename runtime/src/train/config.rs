//! Recipes and the resolved configuration of a run (what `config.json` holds).

use serde::{Deserialize, Serialize};

use crate::precision::{MemoryFormat, Precision};

pub use crate::data::AugmentKind;

/// A preset of the paper's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recipe {
    /// Section 4.2: batch 128, lr 0.1 ÷10 at 32k and 48k iterations, stop at 64k, momentum 0.9,
    /// weight decay 1e-4, 45k/5k train/validation split.
    PaperCifar,
    /// Section 3.4: batch 256, lr 0.1 ÷10 at 150k, 300k and 450k iterations, stop at 600k,
    /// momentum 0.9, weight decay 1e-4. The paper divides "when the error plateaus"; these
    /// fixed steps are torchvision's 30/60/90 epochs at batch 256 on ImageNet's 1.28M images.
    PaperImagenet,
}

impl Recipe {
    pub fn name(self) -> &'static str {
        match self {
            Recipe::PaperCifar => "paper-cifar",
            Recipe::PaperImagenet => "paper-imagenet",
        }
    }

    pub fn parse(s: &str) -> Option<Recipe> {
        match s {
            "paper-cifar" => Some(Recipe::PaperCifar),
            "paper-imagenet" => Some(Recipe::PaperImagenet),
            _ => None,
        }
    }

    /// The recipe's configuration (the run's seed 0).
    pub fn config(self) -> TrainConfig {
        match self {
            Recipe::PaperCifar => TrainConfig {
                recipe: self,
                iterations: 64_000,
                epochs: None,
                batch_size: 128,
                lr: 0.1,
                milestones: vec![32_000, 48_000],
                lr_factor: 0.1,
                momentum: 0.9,
                dampening: 0.0,
                nesterov: false,
                weight_decay: 1e-4,
                warmup: None,
                seed: 0,
                val_fraction: 0.1,
                augment: AugmentKind::Auto,
                flip: true,
                lighting: 0.0,
                log_every: 100,
                eval_every: 1000,
                adamw: None,
                freeze: Vec::new(),
                lr_scale: Vec::new(),
            },
            Recipe::PaperImagenet => TrainConfig {
                recipe: self,
                iterations: 600_000,
                epochs: None,
                batch_size: 256,
                lr: 0.1,
                milestones: vec![150_000, 300_000, 450_000],
                lr_factor: 0.1,
                momentum: 0.9,
                dampening: 0.0,
                nesterov: false,
                weight_decay: 1e-4,
                warmup: None,
                seed: 0,
                val_fraction: 0.0,
                augment: AugmentKind::Auto,
                flip: true,
                lighting: 0.1,
                log_every: 100,
                eval_every: 5000,
                adamw: None,
                freeze: Vec::new(),
                lr_scale: Vec::new(),
            },
        }
    }
}

/// A constant learning rate for the first iterations (ResNet-110: 0.01 for ~400 iterations).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Warmup {
    pub iterations: u64,
    pub lr: f64,
}

impl Warmup {
    /// `ITERS:LR`, such as `400:0.01`.
    pub fn parse(s: &str) -> Result<Warmup, String> {
        let bad = || format!("`{s}` is not a warm-up: write ITERS:LR, such as 400:0.01");
        let (a, b) = s.split_once(':').ok_or_else(bad)?;
        let iterations = a.trim().parse::<u64>().map_err(|_| bad())?;
        let lr = b.trim().parse::<f64>().map_err(|_| bad())?;
        if !(lr.is_finite() && lr > 0.0) {
            return Err(bad());
        }
        Ok(Warmup { iterations, lr })
    }
}

/// `--optimizer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    AdamW,
}

impl OptimizerKind {
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::AdamW => "adamw",
        }
    }
}

/// AdamW's hyper-parameters besides the learning rate and weight decay (`--optimizer adamw`,
/// `--betas`, `--eps`); PyTorch's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// `--lr-scale PREFIX=F`: the layers whose weight names start with `PREFIX` learn at `F`
/// times the learning rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrScale {
    pub prefix: String,
    pub factor: f64,
}

impl LrScale {
    /// `PREFIX=F`, such as `layer1=0.1`.
    pub fn parse(s: &str) -> Result<LrScale, String> {
        let bad = || {
            format!(
                "`{s}` is not a learning-rate scale: write PREFIX=F, such as layer1=0.1 (F a \
                 number >= 0)"
            )
        };
        let (a, b) = s.split_once('=').ok_or_else(bad)?;
        let factor = b.trim().parse::<f64>().map_err(|_| bad())?;
        let prefix = a.trim();
        if prefix.is_empty() || !(factor.is_finite() && factor >= 0.0) {
            return Err(bad());
        }
        Ok(LrScale {
            prefix: prefix.to_string(),
            factor,
        })
    }
}

impl std::fmt::Display for LrScale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.prefix, self.factor)
    }
}

/// Whether a layer's weight name `name` (`layer1.0.conv1`) lies under `prefix`: equal to it,
/// or starting with it followed by a dot (`layer1` covers `layer1.0.conv1`, not `layer10`).
pub fn under(name: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('.');
    name == prefix
        || name
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.'))
}

fn flip_default() -> bool {
    true
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// Every hyper-parameter of a run, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub recipe: Recipe,
    /// Iterations (SGD steps) to run.
    pub iterations: u64,
    /// When the length was given in epochs (then `iterations` = epochs × batches per epoch).
    pub epochs: Option<u64>,
    pub batch_size: usize,
    /// The base learning rate.
    pub lr: f64,
    /// Iterations at which the learning rate is multiplied by `lr_factor`.
    pub milestones: Vec<u64>,
    pub lr_factor: f64,
    pub momentum: f64,
    /// 0 as in PyTorch's SGD (Burn's `MomentumConfig` defaults to 0.1).
    pub dampening: f64,
    pub nesterov: bool,
    /// L2 penalty added to the gradient (PyTorch's coupled weight decay), on every parameter.
    pub weight_decay: f64,
    pub warmup: Option<Warmup>,
    pub seed: u64,
    /// The fraction of the training split held out for validation (its last images).
    pub val_fraction: f64,
    /// The training augmentation, resolved from `auto` when the data are opened.
    pub augment: AugmentKind,
    /// Whether the augmentation flips images horizontally (`--no-flip`: off).
    #[serde(default = "flip_default")]
    pub flip: bool,
    /// AlexNet's PCA lighting noise on training images (`--lighting`): the standard deviation
    /// of its coefficients (`paper-imagenet` 0.1; 0: none; runs before it had none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lighting: f64,
    /// Iterations between metric rows (training loss and error averaged over the interval).
    pub log_every: u64,
    /// Iterations between evaluations (validation/test error) and checkpoints.
    pub eval_every: u64,
    /// `--optimizer adamw`: AdamW with these betas and eps (then `weight_decay` is AdamW's
    /// decoupled decay and the momentum is unused); absent: SGD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adamw: Option<AdamWConfig>,
    /// `--freeze`: weight-name prefixes of the layers that are not trained (no update, batch
    /// norm in eval mode: running statistics used and kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub freeze: Vec<String>,
    /// `--lr-scale`: per weight-name prefix, a factor on the learning rate (the longest
    /// matching prefix counts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lr_scale: Vec<LrScale>,
}

impl TrainConfig {
    /// The learning rate of iteration `it` (0-based).
    pub fn lr_at(&self, it: u64) -> f64 {
        if let Some(w) = self.warmup {
            if it < w.iterations {
                return w.lr;
            }
        }
        let steps = self.milestones.iter().filter(|&&m| m <= it).count();
        self.lr * self.lr_factor.powi(steps as i32)
    }

    /// Fit the intervals left to their defaults to the run's length (`log`: `log_every`,
    /// `eval`: `eval_every`): at most a tenth of the run between metric rows and a fifth
    /// between evaluations (at least 1), so that a short run shows ten rows and five
    /// evaluations. The recipes' own runs keep the recipes' intervals.
    pub fn fit_intervals(&mut self, log: bool, eval: bool) {
        if log {
            self.log_every = self.log_every.min((self.iterations / 10).max(1));
        }
        if eval {
            self.eval_every = self.eval_every.min((self.iterations / 5).max(1));
        }
    }

    /// What is most likely not meant: learning-rate milestones at or past the run's last
    /// iteration (the rate is never divided at them).
    pub fn warnings(&self) -> Vec<String> {
        let past: Vec<String> = self
            .milestones
            .iter()
            .filter(|&&m| m >= self.iterations)
            .map(u64::to_string)
            .collect();
        if past.is_empty() {
            return Vec::new();
        }
        let one = past.len() == 1;
        vec![format!(
            "the learning-rate milestone{} {} {} past the end of the run ({} iterations), so \
             the rate is never divided {}; give --milestones within the run",
            if one { "" } else { "s" },
            past.join(", "),
            if one { "lies" } else { "lie" },
            self.iterations,
            if one { "there" } else { "at them" },
        )]
    }

    /// Check values a user may have got wrong; the message says which.
    pub fn validate(&self) -> Result<(), String> {
        let pos = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("{name} must be a finite number >= 0, got {v}"))
            }
        };
        if self.batch_size == 0 {
            return Err("the batch size must be at least 1".into());
        }
        if self.iterations == 0 {
            return Err("a run needs at least 1 iteration".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!("the learning rate must be > 0, got {}", self.lr));
        }
        pos("--weight-decay", self.weight_decay)?;
        pos("--momentum", self.momentum)?;
        pos("--lighting", self.lighting)?;
        pos("the lr factor", self.lr_factor)?;
        if !(0.0..1.0).contains(&self.val_fraction) {
            return Err(format!(
                "the validation fraction must be in [0, 1), got {}",
                self.val_fraction
            ));
        }
        if self.milestones.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!("milestones must increase: {:?}", self.milestones));
        }
        if self.log_every == 0 || self.eval_every == 0 {
            return Err("--log-every and --eval-every must be at least 1".into());
        }
        if let Some(a) = self.adamw {
            for (name, v) in [("beta1", a.beta1), ("beta2", a.beta2)] {
                if !(0.0..1.0).contains(&v) {
                    return Err(format!("--betas: {name} must be in [0, 1), got {v}"));
                }
            }
            if !(a.eps.is_finite() && a.eps > 0.0) {
                return Err(format!("--eps must be > 0, got {}", a.eps));
            }
        }
        Ok(())
    }
}

/// What `config.json` holds: the run's inputs and its resolved hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub archc_version: String,
    /// The `.arch` file and network.
    pub file: String,
    pub network: String,
    /// `--input` and `--classes` as given (to rebuild the same network on resume).
    pub input_override: Option<Vec<u64>>,
    pub classes_override: Option<u64>,
    /// The network's input `[C, H, W]`, classes and trainable parameters.
    pub input: Vec<usize>,
    pub classes: usize,
    pub params: u64,
    /// The data spec (`synthetic:5000`, `cifar10:DIR`, ...).
    pub data: String,
    /// The device (`cpu`, `cuda:0`); with `devices`, the first of them (the main device).
    pub device: String,
    /// `--devices`: the devices of a data-parallel run, in order; empty (and left out of
    /// `config.json`) for a run on one device. Like `device`, a choice of the invocation: a
    /// resumed run may change it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// `--init`: the weights the run started from (absent: archc's own initialisation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitSource>,
    /// `--precision` and `--memory-format` (LibTorch only; left out of `config.json` when f32
    /// and contiguous). Like `device`, choices of the invocation: a resumed run may change them.
    #[serde(default, skip_serializing_if = "is_default")]
    pub precision: Precision,
    #[serde(default, skip_serializing_if = "is_default")]
    pub memory_format: MemoryFormat,
    pub train: TrainConfig,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Where a run's initial weights came from (`--init`, `--init-partial`): the file's path as
/// given and its SHA-256 (of the weights file itself, `model.safetensors` for a checkpoint
/// folder), so the start of a run can be checked later; a resumed run does not read it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitSource {
    pub path: String,
    pub sha256: String,
    /// `--init-partial`: weights whose name matches but shape does not were initialised
    /// afresh (outside the classifier too).
    #[serde(default)]
    pub partial: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_schedule() {
        let c = Recipe::PaperCifar.config();
        assert_eq!(c.lr_at(0), 0.1);
        assert_eq!(c.lr_at(31_999), 0.1);
        assert!((c.lr_at(32_000) - 0.01).abs() < 1e-12);
        assert!((c.lr_at(48_000) - 0.001).abs() < 1e-12);
        let w = TrainConfig {
            warmup: Some(Warmup::parse("400:0.01").expect("parses")),
            ..c
        };
        assert_eq!(w.lr_at(399), 0.01);
        assert_eq!(w.lr_at(400), 0.1);
        assert!(Warmup::parse("400").is_err());
        assert!(Warmup::parse("x:0.1").is_err());
        assert!(Warmup::parse("10:-1").is_err());
    }

    #[test]
    fn short_runs_fit_the_default_intervals_and_warn_of_late_milestones() {
        let mut c = Recipe::PaperCifar.config();
        assert!(c.warnings().is_empty());
        c.fit_intervals(true, true);
        assert_eq!((c.log_every, c.eval_every), (100, 1000), "the paper's run");
        c.iterations = 50;
        let mut given = c.clone();
        c.fit_intervals(true, true);
        assert_eq!((c.log_every, c.eval_every), (5, 10));
        given.fit_intervals(false, false);
        assert_eq!((given.log_every, given.eval_every), (100, 1000));
        c.iterations = 3;
        c.fit_intervals(true, true);
        assert_eq!((c.log_every, c.eval_every), (1, 1));
        let w = c.warnings();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("milestones 32000, 48000 lie past the end of the run (3 iterations)"));
        c.iterations = 40_000;
        assert!(c.warnings()[0].contains("milestone 48000 lies past"));
    }
}
