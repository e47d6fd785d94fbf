//! The training report (`archc report --training`): per stage (or per layer) the forward and
//! backward FLOPs and the bytes kept for the backward at the first batch size, then the totals,
//! one column per batch size, the largest batch that fits and the roofline estimate.

use super::{bytes, si, thousands, TextTable};
use crate::analysis::{dims_text, NetworkReport};
use crate::training::{Estimate, Fit, TrainingReport, TrainingTotals};

/// One network's training figures as the report prints them.
#[derive(Debug, Clone)]
pub struct TrainingView {
    /// The first batch size, with its stages and layers (and the fit).
    pub main: TrainingReport,
    /// With several batch sizes: every size's totals, in the order given.
    pub sweep: Vec<TrainingTotals>,
}

impl TrainingView {
    fn columns(&self) -> Vec<&TrainingTotals> {
        if self.sweep.is_empty() {
            vec![&self.main.totals]
        } else {
            self.sweep.iter().collect()
        }
    }
}

/// `812 µs`, `12.3 ms`, `1.23 s`, `12.3 min`, `3.4 h`, `2.1 days`.
pub fn duration(seconds: f64) -> String {
    if seconds < 1e-3 {
        format!("{:.0} µs", seconds * 1e6)
    } else if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1e3)
    } else if seconds < 60.0 {
        format!("{seconds:.2} s")
    } else if seconds < 3600.0 {
        format!("{:.1} min", seconds / 60.0)
    } else if seconds < 48.0 * 3600.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else {
        format!("{:.1} days", seconds / 86400.0)
    }
}

/// `3.35 TB/s`, `900 GB/s`.
fn bandwidth(b: f64) -> String {
    if b >= 1e12 {
        format!("{:.3} TB/s", b / 1e12)
    } else {
        format!("{:.0} GB/s", b / 1e9)
    }
}

fn optimizer_text(name: &str) -> &'static str {
    match name {
        "sgd" => "SGD, no state",
        "momentum" => "SGD with momentum, one buffer per parameter",
        _ => "Adam, two moments per parameter",
    }
}

fn header(r: &NetworkReport, v: &TrainingView) -> String {
    format!(
        "{}: training step, input {} → output {}, {}, {}\n\n",
        r.network,
        dims_text(&r.input),
        dims_text(&r.output),
        v.main.precision,
        optimizer_text(v.main.optimizer)
    )
}

/// The totals, one row per figure and one column per batch size.
fn figures(v: &TrainingView) -> Vec<(&'static str, Vec<String>, String)> {
    let cols = v.columns();
    let row = |f: fn(&TrainingTotals) -> String| cols.iter().map(|t| f(t)).collect::<Vec<_>>();
    let mut rows = vec![
        (
            "forward FLOPs",
            row(|t| si(t.forward_flops)),
            "training mode (BN's batch statistics), the loss included".to_string(),
        ),
        (
            "backward FLOPs",
            row(|t| si(t.backward_flops)),
            "input and weight gradients".into(),
        ),
        (
            "  input gradients",
            row(|t| si(t.backward_input_flops)),
            "none for the network's input".into(),
        ),
        (
            "  weight gradients",
            row(|t| si(t.backward_weight_flops)),
            String::new(),
        ),
        (
            "optimizer FLOPs",
            row(|t| si(t.optimizer_flops)),
            "the update, weight decay included".into(),
        ),
        (
            "saved for backward",
            row(|t| bytes(t.saved_activation_bytes)),
            "as PyTorch eager keeps them, each tensor once".into(),
        ),
        (
            "parameters",
            row(|t| bytes(t.parameter_bytes)),
            String::new(),
        ),
        ("gradients", row(|t| bytes(t.gradient_bytes)), String::new()),
        (
            "optimizer state",
            row(|t| bytes(t.optimizer_state_bytes)),
            optimizer_text(v.main.optimizer).into(),
        ),
        (
            "buffers",
            row(|t| bytes(t.buffer_bytes)),
            "BN running statistics".into(),
        ),
    ];
    if cols.iter().any(|t| t.weight_copy_bytes > 0) {
        rows.push((
            "weight copies",
            row(|t| bytes(t.weight_copy_bytes)),
            "autocast's f16 copies of conv and fc weights".into(),
        ));
    }
    let last = cols.last().expect("a batch size");
    let at = if cols.len() > 1 {
        format!("at batch {}: ", last.batch_size)
    } else {
        String::new()
    };
    rows.push((
        "peak memory",
        row(|t| bytes(t.peak_bytes)),
        if last.peak_layer.is_empty() {
            format!("{at}in the {}", last.peak_phase)
        } else {
            format!("{at}in the {}, at `{}`", last.peak_phase, last.peak_layer)
        },
    ));
    if let Some(e) = last.estimate.as_ref() {
        rows.push((
            "step (estimate)",
            cols.iter()
                .map(|t| {
                    t.estimate
                        .as_ref()
                        .map_or(String::new(), |e| duration(e.step_seconds))
                })
                .collect(),
            format!(
                "roofline: each layer at the slower of {} TFLOP/s and {}",
                e.peak_flops / 1e12,
                bandwidth(e.bandwidth)
            ),
        ));
        rows.push((
            "epoch (estimate)",
            cols.iter()
                .map(|t| {
                    t.estimate
                        .as_ref()
                        .map_or(String::new(), |e| duration(e.epoch_seconds))
                })
                .collect(),
            format!("{} images", thousands(e.dataset_size as u128)),
        ));
    }
    rows
}

/// Bytes to four decimals (`79.9873 GiB`), where one sample more is a small step.
fn bytes_fine(n: u128) -> String {
    let f = n as f64;
    if n >= 1 << 30 {
        format!("{:.4} GiB", f / (1u64 << 30) as f64)
    } else {
        format!("{:.4} MiB", f / (1u64 << 20) as f64)
    }
}

fn fit_text(f: &Fit) -> String {
    match f.max_batch_size {
        Some(b) => format!(
            "Fits in {}: batch {} at most (peak {}{}).\n",
            bytes(f.memory_bytes),
            thousands(b as u128),
            bytes_fine(f.peak_bytes),
            f.next_peak_bytes.map_or(String::new(), |n| format!(
                "; batch {} needs {}",
                thousands(b as u128 + 1),
                bytes_fine(n)
            ))
        ),
        None => format!(
            "Does not fit in {}: batch 1 needs {}.\n",
            bytes(f.memory_bytes),
            bytes(f.peak_bytes)
        ),
    }
}

fn estimate_text(b: u64, e: &Estimate) -> String {
    format!(
        "Estimate (roofline, a lower bound: real kernels reach a fraction of the peak): at batch {b}, a step {} (forward {}, backward {}, optimizer {}; {:.0}% of it bound by compute), an epoch of {} images in {} steps {}.\n",
        duration(e.step_seconds),
        duration(e.forward_seconds),
        duration(e.backward_seconds),
        duration(e.optimizer_seconds),
        e.compute_bound_fraction * 100.0,
        thousands(e.dataset_size as u128),
        thousands(e.steps_per_epoch as u128),
        duration(e.epoch_seconds)
    )
}

/// A row of the stage table: name, forward, backward (inputs), backward (weights), saved.
type Row = (String, u128, u128, u128, u128);

fn stage_rows(m: &TrainingReport) -> impl Iterator<Item = Row> + '_ {
    m.stages.iter().map(|s| {
        (
            s.name.clone(),
            s.forward_flops,
            s.backward_input_flops,
            s.backward_weight_flops,
            s.saved_bytes,
        )
    })
}

/// The rows of the layers outside every stage: the input (first), the loss (last).
fn unstaged(m: &TrainingReport) -> (Vec<Row>, Vec<Row>) {
    let row = |l: &crate::training::TrainingLayer| {
        (
            l.name.clone(),
            l.forward_flops,
            l.backward_input_flops,
            l.backward_weight_flops,
            l.saved_bytes,
        )
    };
    let outside: Vec<_> = m.layers.iter().filter(|l| l.stage.is_none()).collect();
    let (loss, input): (Vec<_>, Vec<_>) = outside.into_iter().partition(|l| l.name == "loss");
    (
        input.into_iter().map(row).collect(),
        loss.into_iter().map(row).collect(),
    )
}

/// The terminal report.
pub fn render(r: &NetworkReport, v: &TrainingView, per_layer: bool) -> String {
    let m = &v.main;
    let mut out = header(r, v);
    let batch = m.totals.batch_size;
    let mut t = TextTable::new(
        &[
            if per_layer { "layer" } else { "stage" },
            "forward",
            "backward (inputs)",
            "backward (weights)",
            &format!("saved at batch {batch}"),
        ],
        &[false, true, true, true, true],
    );
    if per_layer {
        for l in &m.layers {
            t.row(vec![
                l.name.clone(),
                si(l.forward_flops),
                si(l.backward_input_flops),
                si(l.backward_weight_flops),
                bytes(l.saved_bytes),
            ]);
        }
    } else {
        // The input and the loss belong to no stage: first and last.
        let (input, loss) = unstaged(m);
        for r in input.into_iter().chain(stage_rows(m)).chain(loss) {
            t.row(vec![r.0, si(r.1), si(r.2), si(r.3), bytes(r.4)]);
        }
    }
    t.rule();
    t.row(vec![
        "total".into(),
        si(m.totals.forward_flops),
        si(m.totals.backward_input_flops),
        si(m.totals.backward_weight_flops),
        bytes(m.totals.saved_activation_bytes),
    ]);
    out.push_str(&t.render());
    out.push('\n');
    let cols = v.columns();
    let mut header: Vec<String> = vec!["figure".into()];
    header.extend(cols.iter().map(|c| format!("batch {}", c.batch_size)));
    header.push(String::new());
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut right = vec![false];
    right.extend(cols.iter().map(|_| true));
    right.push(false);
    let mut f = TextTable::new(&header_refs, &right);
    for (name, values, note) in figures(v) {
        let mut row = vec![name.to_string()];
        row.extend(values);
        row.push(note);
        f.row(row);
    }
    out.push_str(&f.render());
    if let Some(fit) = &m.fit {
        out.push('\n');
        out.push_str(&fit_text(fit));
    }
    if let Some(e) = &m.totals.estimate {
        out.push('\n');
        out.push_str(&estimate_text(batch, e));
    }
    out
}

/// The Markdown report: the same figures as GitHub tables.
pub fn markdown(r: &NetworkReport, v: &TrainingView, per_layer: bool) -> String {
    let m = &v.main;
    let mut out = format!(
        "## {} (training)\n\nInput {}, output {}, {}, {}.\n\n",
        r.network,
        dims_text(&r.input),
        dims_text(&r.output),
        m.precision,
        optimizer_text(m.optimizer)
    );
    out.push_str(&format!(
        "| {} | forward FLOPs | backward (inputs) | backward (weights) | saved at batch {} |\n|---|---:|---:|---:|---:|\n",
        if per_layer { "layer" } else { "stage" },
        m.totals.batch_size
    ));
    let mut line = |name: &str, a: u128, b: u128, c: u128, d: u128| {
        out.push_str(&format!(
            "| `{name}` | {} | {} | {} | {} |\n",
            si(a),
            si(b),
            si(c),
            bytes(d)
        ));
    };
    if per_layer {
        for l in &m.layers {
            line(
                &l.name,
                l.forward_flops,
                l.backward_input_flops,
                l.backward_weight_flops,
                l.saved_bytes,
            );
        }
    } else {
        let (input, loss) = unstaged(m);
        for r in input.into_iter().chain(stage_rows(m)).chain(loss) {
            line(&r.0, r.1, r.2, r.3, r.4);
        }
    }
    out.push_str(&format!(
        "| **total** | **{}** | **{}** | **{}** | **{}** |\n\n",
        si(m.totals.forward_flops),
        si(m.totals.backward_input_flops),
        si(m.totals.backward_weight_flops),
        bytes(m.totals.saved_activation_bytes)
    ));
    let cols = v.columns();
    out.push_str("| figure |");
    for c in &cols {
        out.push_str(&format!(" batch {} |", c.batch_size));
    }
    out.push_str(" |\n|---|");
    out.push_str(&"---:|".repeat(cols.len()));
    out.push_str("---|\n");
    for (name, values, note) in figures(v) {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            name.trim(),
            values.join(" | "),
            note
        ));
    }
    if let Some(fit) = &m.fit {
        out.push('\n');
        out.push_str(&fit_text(fit));
    }
    if let Some(e) = &m.totals.estimate {
        out.push('\n');
        out.push_str(&estimate_text(m.totals.batch_size, e));
    }
    out
}
