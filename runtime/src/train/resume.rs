//! Resuming a run: every rule of `--resume` is here.
//!
//! - The folder ([`check_folder`]): a new run needs a folder that holds no run (no
//!   `config.json`, no `checkpoints/last`); a resumed one needs a folder that holds one. A run
//!   killed before its first checkpoint has a `config.json` and nothing to lose: resuming it
//!   starts again at iteration 0.
//! - The configuration ([`resumed_config`]): a resumed run keeps its stored `config.json`. The
//!   invocation may change the run's length (`--iterations`, `--epochs`) and its devices
//!   (`--device`, `--devices`: a choice of the invocation, recorded anew); every other flag it
//!   gives must equal the stored value (re-typing the first command with `--resume` added is
//!   fine), and a value that differs is refused, naming the flag, the stored value and the
//!   given one. That includes the fine-tuning flags (`--init`, `--init-partial`,
//!   `--freeze`, `--lr-scale`, `--optimizer`, `--betas`, `--eps`); a resumed run does not
//!   read the `--init` file again (the checkpoint holds the weights), except when it had not
//!   saved one yet (then it starts again, from the same file: its SHA-256 is checked).
//! - The state (`restore`): weights, momentum buffers, data position and metric
//!   accumulators come from `checkpoints/last`; the metric rows written after its iteration
//!   are dropped (those steps are trained again and their rows written again, once).

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use super::checkpoint::{self, State};
use super::config::{AugmentKind, OptimizerKind, RunConfig, Warmup};
use super::metrics::{self, Row};
use super::plan::Flags;
use super::sgd::Sgd;
use super::TrainError;
use crate::Network;

/// Check `out` against the kind of run asked for, without writing anything. Returns the
/// checkpoint to continue from (`None` for a new run, or a resumed one that had not saved
/// one yet).
pub fn check_folder(out: &Path, resume: bool) -> Result<Option<PathBuf>, TrainError> {
    let last = checkpoint::find(&out.join("checkpoints"), "last");
    let has_config = out.join("config.json").is_file();
    if !resume && (last.is_some() || out.join("config.json").exists()) {
        return Err(TrainError::Config(format!(
            "`{}` already holds a run: continue it with --resume, or choose another --out",
            out.display()
        )));
    }
    if resume && last.is_none() && !has_config {
        return Err(TrainError::Config(format!(
            "`{}` has no checkpoint to resume from (checkpoints/last)",
            out.display()
        )));
    }
    Ok(last.filter(|_| resume))
}

/// One flag of the invocation against the stored configuration.
struct Differs {
    flag: &'static str,
    stored: String,
    given: String,
}

/// `Some` when `given` is there and is not `stored`.
fn differs<T: PartialEq>(
    flag: &'static str,
    stored: &T,
    given: Option<&T>,
    show: impl Fn(&T) -> String,
) -> Option<Differs> {
    let given = given?;
    (given != stored).then(|| Differs {
        flag,
        stored: show(stored),
        given: show(given),
    })
}

fn plain<T: ToString>(v: &T) -> String {
    v.to_string()
}

fn dims(v: &Option<Vec<u64>>) -> String {
    v.as_ref()
        .map_or("none (the network's own)".to_string(), |d| {
            d.iter().map(u64::to_string).collect::<Vec<_>>().join("x")
        })
}

fn warmup(w: &Option<Warmup>) -> String {
    w.map_or("none".to_string(), |w| format!("{}:{}", w.iterations, w.lr))
}

/// The configuration of a resumed run: `saved` (its `config.json`, in `out`) with the length
/// and devices of `flags`. Refused when another flag of `flags` differs from `saved`.
pub fn resumed_config(
    saved: RunConfig,
    flags: &Flags,
    out: &Path,
) -> Result<RunConfig, TrainError> {
    let t = &saved.train;
    let data = flags.data_spec();
    let list = |v: &Vec<u64>| v.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let augment = |k: &AugmentKind| k.name().to_string();
    let on_off = |on: &bool| if *on { "on" } else { "off" }.to_string();
    let stored_optimizer = if t.adamw.is_some() {
        OptimizerKind::AdamW
    } else {
        OptimizerKind::Sgd
    };
    let found: Vec<Differs> = [
        differs("--network", &saved.network, Some(&flags.network), plain),
        differs("--data", &saved.data, Some(&data), plain),
        differs(
            "--input",
            &saved.input_override,
            flags
                .input_override
                .is_some()
                .then_some(&flags.input_override),
            dims,
        ),
        differs(
            "--classes",
            &saved.classes_override,
            flags
                .classes_override
                .is_some()
                .then_some(&flags.classes_override),
            |c| c.map_or("none (the network's own)".to_string(), |c| c.to_string()),
        ),
        differs("--recipe", &t.recipe, flags.recipe.as_ref(), |r| {
            r.name().to_string()
        }),
        differs(
            "--batch-size",
            &t.batch_size,
            flags.batch_size.as_ref(),
            plain,
        ),
        differs("--lr", &t.lr, flags.lr.as_ref(), plain),
        differs(
            "--milestones",
            &t.milestones,
            flags.milestones.as_ref(),
            list,
        ),
        differs(
            "--weight-decay",
            &t.weight_decay,
            flags.weight_decay.as_ref(),
            plain,
        ),
        differs("--momentum", &t.momentum, flags.momentum.as_ref(), plain),
        differs(
            "--warmup",
            &t.warmup,
            flags.warmup.is_some().then_some(&flags.warmup),
            warmup,
        ),
        differs(
            "--val-fraction",
            &t.val_fraction,
            flags.val_fraction.as_ref(),
            plain,
        ),
        differs("--augment", &t.augment, flags.augment.as_ref(), augment),
        differs("the flip (--no-flip)", &t.flip, flags.flip.as_ref(), on_off),
        differs("--lighting", &t.lighting, flags.lighting.as_ref(), plain),
        differs("--log-every", &t.log_every, flags.log_every.as_ref(), plain),
        differs(
            "--eval-every",
            &t.eval_every,
            flags.eval_every.as_ref(),
            plain,
        ),
        differs("--seed", &t.seed, flags.seed.as_ref(), plain),
        differs(
            "--optimizer",
            &stored_optimizer,
            flags.optimizer.as_ref(),
            |k: &OptimizerKind| k.name().to_string(),
        ),
        differs(
            "--betas",
            &t.adamw.map(|a| (a.beta1, a.beta2)),
            flags.betas.is_some().then_some(&flags.betas),
            |b| b.map_or("none (SGD)".to_string(), |(a, b)| format!("{a},{b}")),
        ),
        differs(
            "--eps",
            &t.adamw.map(|a| a.eps),
            flags.eps.is_some().then_some(&flags.eps),
            |e| e.map_or("none (SGD)".to_string(), |e| e.to_string()),
        ),
        differs("--freeze", &t.freeze, flags.freeze.as_ref(), |v| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(",")
            }
        }),
        differs("--lr-scale", &t.lr_scale, flags.lr_scale.as_ref(), |v| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        }),
        differs(
            "--init",
            &saved.init.as_ref().map(|i| i.path.clone()),
            flags.init.is_some().then_some(&flags.init),
            |p| p.clone().unwrap_or_else(|| "none".to_string()),
        ),
        differs(
            "--init-partial",
            &saved.init.as_ref().is_some_and(|i| i.partial),
            flags.init_partial.then_some(&true),
            on_off,
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !found.is_empty() {
        let each: Vec<String> = found
            .iter()
            .map(|d| format!("{} is {} in the run, {} here", d.flag, d.stored, d.given))
            .collect();
        return Err(TrainError::Config(format!(
            "a resumed run keeps its configuration (`{}`): {}. Only --iterations, --epochs, \
             --device, --devices, --precision and --memory-format may change on resume",
            out.join("config.json").display(),
            each.join("; "),
        )));
    }
    let mut c = saved;
    if let Some(i) = flags.iterations {
        c.train.iterations = i;
        c.train.epochs = None;
    }
    if let Some(e) = flags.epochs {
        c.train.epochs = Some(e);
    }
    c.device = flags.device.clone();
    c.devices = flags.devices.clone();
    c.precision = flags.precision;
    c.memory_format = flags.memory_format;
    Ok(c)
}

/// Load the checkpoint `ck` of the run in `out` into `model` and `sgd`: the state to continue
/// from and the metric rows up to its iteration.
pub(crate) fn restore(
    ck: &Path,
    out: &Path,
    model: &mut Network,
    sgd: &mut Sgd,
    device: &Device,
) -> Result<(State, Vec<Row>), TrainError> {
    let state = checkpoint::load_state(ck).map_err(TrainError::Checkpoint)?;
    model.load_weights(ck.join("model.safetensors"))?;
    let opt = ck.join("optimizer.safetensors");
    sgd.load(&opt, &device.clone().without_autodiff())
        .map_err(|e| TrainError::Checkpoint(format!("`{}`: {e}", opt.display())))?;
    let mut rows = if out.join("metrics.jsonl").exists() {
        metrics::read(out).map_err(TrainError::Checkpoint)?
    } else {
        Vec::new()
    };
    rows.retain(|r| r.iteration <= state.iteration);
    Ok((state, rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::config::Recipe;

    fn flags() -> Flags {
        Flags {
            network: "tiny".into(),
            data: "synthetic".into(),
            device: "cpu".into(),
            ..Flags::default()
        }
    }

    #[test]
    fn equal_flags_are_accepted_and_differing_ones_named() {
        let stored = flags().new_config();
        assert_eq!(stored.data, "synthetic:5000", "the canonical spelling");
        let out = Path::new("run");
        // The first command again, with a new length and devices.
        let again = Flags {
            recipe: Some(Recipe::PaperCifar),
            batch_size: Some(128),
            lr: Some(0.1),
            milestones: Some(vec![32_000, 48_000]),
            seed: Some(0),
            iterations: Some(10),
            devices: vec!["cpu".into(), "cpu".into()],
            ..flags()
        };
        let c = resumed_config(stored.clone(), &again, out).expect("accepted");
        assert_eq!((c.train.iterations, c.devices.len()), (10, 2));
        assert_eq!(c.train.batch_size, stored.train.batch_size);
        let differ = Flags {
            batch_size: Some(64),
            input_override: Some(vec![3, 64, 64]),
            augment: Some(AugmentKind::None),
            flip: Some(false),
            ..flags()
        };
        let e = resumed_config(stored, &differ, out)
            .expect_err("refused")
            .to_string();
        for says in [
            "--batch-size is 128 in the run, 64 here",
            "--input is none (the network's own) in the run, 3x64x64 here",
            "--augment is auto in the run, none here",
            "the flip (--no-flip) is on in the run, off here",
        ] {
            assert!(e.contains(says), "{e}");
        }
    }
}
