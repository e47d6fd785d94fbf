//! Fine-tuning: where a run starts from (`--init`: weights loaded by name and shape, the
//! file's SHA-256 recorded), which layers it trains (`--freeze`) and at what rate
//! (`--lr-scale`). Layers are named by their weight names' prefixes (`conv1`, `layer1`,
//! `layer4.1`, `features.0`, `classifier`), see [`under`].

use std::collections::BTreeMap;
use std::path::Path;

use archc_compiler::lower::LoweredGraph;
use burn::module::Module;
use sha2::{Digest, Sha256};

use super::checkpoint;
use super::config::{under, InitSource, TrainConfig};
use super::TrainError;
use crate::{InitReport, Network};

/// The weights file `--init PATH` names: the file itself, or a checkpoint folder's
/// `model.safetensors` (`RUN/checkpoints/best`).
pub fn weights_file(path: &Path) -> std::path::PathBuf {
    checkpoint::weights_at(path).model
}

/// The SHA-256 of the weights `--init PATH` names, in hex.
pub fn sha256_file(path: &Path) -> Result<String, TrainError> {
    let file = weights_file(path);
    let mut f = std::fs::File::open(&file)
        .map_err(|e| TrainError::Input(format!("--init: cannot read `{}`: {e}", file.display())))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)
        .map_err(|e| TrainError::Input(format!("--init: cannot read `{}`: {e}", file.display())))?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Check that every `--freeze` and `--lr-scale` prefix names some layer of `graph`; the
/// error lists the names a prefix may take.
pub fn check_prefixes(graph: &LoweredGraph, t: &TrainConfig) -> Result<(), TrainError> {
    let names: Vec<&str> = graph
        .nodes
        .iter()
        .filter(|n| !n.op.param_shapes().is_empty())
        .map(|n| n.name.as_str())
        .collect();
    let given = t
        .freeze
        .iter()
        .map(|p| ("--freeze", p.as_str()))
        .chain(t.lr_scale.iter().map(|s| ("--lr-scale", s.prefix.as_str())));
    for (flag, p) in given {
        if !names.iter().any(|n| under(n, p)) {
            let mut tops: Vec<&str> = names
                .iter()
                .map(|n| n.split('.').next().unwrap_or(n))
                .collect();
            tops.dedup();
            return Err(TrainError::Config(format!(
                "{flag} `{p}` names no layer with weights of `{}`: a prefix of the weight \
                 names, such as {} (a stage or block is everything under it, `layer1` covers \
                 `layer1.0.conv1`)",
                graph.network,
                tops.iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(())
}

/// The learning-rate factor of each of `model`'s layers: the longest `--lr-scale` prefix
/// that covers the layer's name, else 1.
pub fn lr_scales(model: &Network, t: &TrainConfig) -> Vec<f64> {
    model
        .layer_names()
        .iter()
        .map(|name| {
            t.lr_scale
                .iter()
                .filter(|s| under(name, &s.prefix))
                .max_by_key(|s| s.prefix.trim_end_matches('.').len())
                .map_or(1.0, |s| s.factor)
        })
        .collect()
}

/// Freeze the layers under a `--freeze` prefix (Burn's `Module::freeze`: no gradient, so
/// no update and no weight decay; batch norm in eval mode, its running statistics used and
/// kept). Returns how many layers were frozen.
pub fn freeze(model: &mut Network, t: &TrainConfig) -> usize {
    if t.freeze.is_empty() {
        return 0;
    }
    let names = model.layer_names();
    let mut n = 0;
    for (l, name) in names.iter().enumerate() {
        if t.freeze.iter().any(|p| under(name, p)) {
            let layer = model.layers[l].clone();
            model.layers[l] = layer.freeze();
            n += 1;
        }
    }
    n
}

/// Load the weights of `init` into `model` ([`Network::load_init`]), after checking that the
/// file is still the one `config.json` recorded (its SHA-256 is filled in when not yet).
pub fn load(model: &mut Network, init: &mut InitSource) -> Result<InitReport, TrainError> {
    let path = Path::new(&init.path);
    let sha = sha256_file(path)?;
    if init.sha256.is_empty() {
        init.sha256 = sha.clone();
    }
    if sha != init.sha256 {
        return Err(TrainError::Input(format!(
            "--init `{}` has changed since the run began: its SHA-256 is {sha}, config.json \
             recorded {}",
            init.path, init.sha256
        )));
    }
    Ok(model.load_init(weights_file(path), init.partial)?)
}

/// The lines that say what `--init` did: counts, then the loaded tensors grouped by their
/// first name part, and every re-initialised and ignored key (`num_batches_tracked` counted).
pub fn describe(init: &InitSource, r: &InitReport) -> Vec<String> {
    let mut groups: BTreeMap<&str, usize> = BTreeMap::new();
    for k in &r.loaded {
        *groups.entry(k.split('.').next().unwrap_or(k)).or_default() += 1;
    }
    let mut lines = vec![format!(
        "init: {} tensors loaded from {} (sha256 {}), {} re-initialised, {} ignored",
        r.loaded.len(),
        init.path,
        init.sha256,
        r.reinitialised.len(),
        r.ignored.len()
    )];
    lines.push(format!(
        "init: loaded {}",
        groups
            .iter()
            .map(|(g, n)| format!("{g} ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for (k, why) in &r.reinitialised {
        lines.push(format!("init: re-initialised {k}: {why}"));
    }
    let tracked = r
        .ignored
        .iter()
        .filter(|k| k.ends_with(".num_batches_tracked"))
        .count();
    for k in r
        .ignored
        .iter()
        .filter(|k| !k.ends_with(".num_batches_tracked"))
    {
        lines.push(format!("init: ignored {k} (no such weight in the network)"));
    }
    if tracked > 0 {
        lines.push(format!(
            "init: ignored {tracked} num_batches_tracked (archc's batch norm does not count \
             batches)"
        ));
    }
    lines
}
