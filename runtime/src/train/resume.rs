//! Resuming a run: every rule of `--resume` is here.
//!
//! - The folder ([`check_folder`]): a new run needs a folder that holds no run (no
//!   `config.json`, no `checkpoints/last`); a resumed one needs a folder that holds one. A run
//!   killed before its first checkpoint has a `config.json` and nothing to lose: resuming it
//!   starts again at iteration 0.
//! - The configuration ([`resumed_config`]): a resumed run keeps its stored `config.json`. The
//!   invocation may change the run's length (`--iterations`, `--epochs`) and its devices
//!   (`--device`, `--devices`: a choice of the invocation, recorded anew); another
//!   hyper-parameter, network, data or `--input`/`--classes` is refused.
//! - The state ([`restore`]): weights, momentum buffers, data position and metric
//!   accumulators come from `checkpoints/last`; the metric rows written after its iteration
//!   are dropped (those steps are trained again and their rows written again, once).

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use super::checkpoint::{self, State};
use super::config::RunConfig;
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

/// The configuration of a resumed run: `saved` (its `config.json`, in `out`) with the length
/// and devices of `flags`. Refused when `flags` give another hyper-parameter, or another
/// network, data or `--input`/`--classes`.
pub fn resumed_config(
    saved: RunConfig,
    flags: &Flags,
    out: &Path,
) -> Result<RunConfig, TrainError> {
    let changed: Vec<&str> = [
        ("--batch-size", flags.batch_size.is_some()),
        ("--lr", flags.lr.is_some()),
        ("--milestones", flags.milestones.is_some()),
        ("--weight-decay", flags.weight_decay.is_some()),
        ("--momentum", flags.momentum.is_some()),
        ("--warmup", flags.warmup.is_some()),
        ("--val-fraction", flags.val_fraction.is_some()),
        ("--no-augment", flags.augment.is_some()),
        ("--log-every", flags.log_every.is_some()),
        ("--eval-every", flags.eval_every.is_some()),
        ("--seed", flags.seed.is_some()),
    ]
    .iter()
    .filter(|(_, given)| *given)
    .map(|(n, _)| *n)
    .collect();
    if !changed.is_empty() {
        return Err(TrainError::Config(format!(
            "a resumed run keeps its configuration ({}); only --iterations, --epochs and \
             --device/--devices may change: drop {}",
            out.join("config.json").display(),
            changed.join(", ")
        )));
    }
    if saved.network != flags.network || saved.data != flags.data_spec() {
        return Err(TrainError::Config(format!(
            "`{}` trained `{}` on `{}`; resume it with the same --network and --data",
            out.display(),
            saved.network,
            saved.data
        )));
    }
    if (flags.input_override.is_some() && flags.input_override != saved.input_override)
        || (flags.classes_override.is_some() && flags.classes_override != saved.classes_override)
    {
        return Err(TrainError::Config(
            "a resumed run rebuilds its network with the --input/--classes it was trained with"
                .to_string(),
        ));
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
