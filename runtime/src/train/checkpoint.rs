//! Checkpoints: a folder `checkpoints/{last,best}/` in the run folder holding
//! `model.safetensors` (torchvision names: `archc eval --weights` and
//! `Network::load_weights` read it as it is), `optimizer.safetensors` (momentum buffers),
//! `mean.safetensors` (the input mean) and `state.json` (iteration, data order position,
//! metric accumulators, best so far).
//!
//! Written atomically: into `.NAME.tmp/`, then the old folder is renamed to `.NAME.old/`, the
//! new one to `NAME/`, and the old one removed. If a crash leaves only `.NAME.old/`, it is
//! the checkpoint: a later save keeps it until the new `NAME/` is in place, so at every
//! instant one complete checkpoint is there for [`find`] (SIGKILL at random points in a
//! running `archc train`: `scripts/killloop.sh`, docs/reliability.md). A failed write leaves
//! the previous checkpoint as it was ([`save_with`] takes a fault-injection hook for tests).
//! The files are flushed to the disk before `state.json` is written and the folder renamed, so
//! a power cut, too, leaves one complete checkpoint.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::Mean;
use crate::Network;

use super::sgd::Sgd;

/// Where a run stands: enough to continue it exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct State {
    /// SGD steps done.
    pub iteration: u64,
    /// The epoch being read and the position in its permutation (data order).
    pub epoch: u64,
    pub position: u64,
    /// Training loss and error sums and image count since the last metric row.
    pub loss_sum: f64,
    pub error_sum: f64,
    pub seen: u64,
    /// The best validation (or test) error so far and its iteration.
    pub best: Option<(f64, u64)>,
    /// Seconds of training before this checkpoint.
    pub elapsed_s: f64,
}

/// A checkpoint's folder `NAME` under `dir`, or the leftover of an interrupted swap.
pub fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    let p = dir.join(name);
    if p.join("state.json").is_file() {
        return Some(p);
    }
    let old = dir.join(format!(".{name}.old"));
    old.join("state.json").is_file().then_some(old)
}

/// Write checkpoint `name` under `dir` atomically.
pub fn save(
    dir: &Path,
    name: &str,
    model: &Network,
    sgd: &Sgd,
    mean: &Mean,
    state: &State,
) -> Result<PathBuf, String> {
    save_with(dir, name, model, sgd, mean, state, &mut |_| Ok(()))
}

/// A point of [`save_with`] where a fault can be injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// A file of the new checkpoint has just been written (in `.NAME.tmp/`).
    Wrote(&'a Path),
    /// A folder is about to be renamed or removed.
    Move(&'a Path),
}

/// [`save`], calling `hook` after each file is written and before each rename or removal. An
/// error from `hook` is taken as the failure of that write or move (a test may first damage
/// the file, as a full disk would): the save stops there and returns an error naming the
/// path. Production code passes a hook that does nothing.
pub fn save_with(
    dir: &Path,
    name: &str,
    model: &Network,
    sgd: &Sgd,
    mean: &Mean,
    state: &State,
    hook: &mut dyn FnMut(Step) -> std::io::Result<()>,
) -> Result<PathBuf, String> {
    let io = |p: &Path, e: std::io::Error| format!("`{}`: {e}", p.display());
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    let mut wrote = |p: &Path| hook(Step::Wrote(p)).map_err(|e| io(p, e));
    let p = tmp.join("model.safetensors");
    model.save_weights(&p).map_err(|e| e.to_string())?;
    wrote(&p)?;
    let p = tmp.join("optimizer.safetensors");
    sgd.save(&p)
        .map_err(|e| format!("`{}`: {e}", p.display()))?;
    wrote(&p)?;
    let p = tmp.join("mean.safetensors");
    save_mean(&p, mean)?;
    wrote(&p)?;
    // On the disk before state.json marks the folder complete (a power cut, not only a kill).
    for f in [
        "model.safetensors",
        "optimizer.safetensors",
        "mean.safetensors",
    ] {
        let p = tmp.join(f);
        super::sync_file(&p).map_err(|e| io(&p, e))?;
    }
    // state.json last: a folder holding it is complete (`find`).
    let p = tmp.join("state.json");
    let json = serde_json::to_string_pretty(state).map_err(|e| e.to_string())?;
    super::write_atomic(&p, json.as_bytes()).map_err(|e| io(&p, e))?;
    wrote(&p)?;
    let dest = dir.join(name);
    let old = dir.join(format!(".{name}.old"));
    let mut moving = |p: &Path| hook(Step::Move(p)).map_err(|e| io(p, e));
    // While `NAME/` is complete, `.NAME.old/` is a leftover; without `NAME/`, `.NAME.old/` is
    // the checkpoint and stays until the new one is in place.
    if dest.join("state.json").is_file() {
        if old.exists() {
            moving(&old)?;
            std::fs::remove_dir_all(&old).map_err(|e| io(&old, e))?;
        }
        moving(&dest)?;
        std::fs::rename(&dest, &old).map_err(|e| io(&dest, e))?;
    } else if dest.exists() {
        moving(&dest)?;
        std::fs::remove_dir_all(&dest).map_err(|e| io(&dest, e))?;
    }
    moving(&tmp)?;
    std::fs::rename(&tmp, &dest).map_err(|e| io(&dest, e))?;
    super::sync_dir(dir).map_err(|e| io(dir, e))?;
    // The new checkpoint is in place: a leftover that cannot be removed now is removed by the
    // next save.
    if old.exists() && moving(&old).is_ok() {
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(dest)
}

/// Weights named on the command line (`--weights` of `eval` and `forward`): a weights file,
/// or a checkpoint folder (its `model.safetensors`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightsAt {
    pub model: PathBuf,
    /// The checkpoint's input mean: `mean.safetensors` beside the weights file, when there.
    pub mean: Option<PathBuf>,
}

/// Where the weights named `path` and their input mean are.
pub fn weights_at(path: &Path) -> WeightsAt {
    let model = if path.is_dir() {
        path.join("model.safetensors")
    } else {
        path.to_path_buf()
    };
    let mean = model.with_file_name("mean.safetensors");
    WeightsAt {
        mean: mean.is_file().then_some(mean),
        model,
    }
}

/// Read a checkpoint's state.
pub fn load_state(ckpt: &Path) -> Result<State, String> {
    let p = ckpt.join("state.json");
    let text = std::fs::read_to_string(&p).map_err(|e| format!("`{}`: {e}", p.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("`{}`: {e}", p.display()))
}

/// Write the input mean as safetensors (`mean`, f32).
pub fn save_mean(path: &Path, mean: &Mean) -> Result<(), String> {
    let bytes: Vec<u8> = mean.values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, mean.shape.clone(), &bytes)
            .map_err(|e| e.to_string())?;
    safetensors::serialize_to_file([("mean", view)], None, path)
        .map_err(|e| format!("`{}`: {e}", path.display()))
}

/// Read a mean written by [`save_mean`].
pub fn load_mean(path: &Path) -> Result<Mean, String> {
    let buf = std::fs::read(path).map_err(|e| format!("`{}`: {e}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&buf)
        .map_err(|e| format!("`{}`: {e}", path.display()))?;
    let t = st
        .tensor("mean")
        .map_err(|e| format!("`{}`: {e}", path.display()))?;
    if t.dtype() != safetensors::Dtype::F32 {
        return Err(format!("`{}`: `mean` is not f32", path.display()));
    }
    let values = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(Mean {
        shape: t.shape().to_vec(),
        values,
    })
}
