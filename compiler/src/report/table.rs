//! The terminal report of one network: stages (or every layer), then the totals.

use super::{bytes, si, thousands, TextTable};
use crate::analysis::{dims_text, NetworkReport};

pub fn render(r: &NetworkReport, per_layer: bool) -> String {
    let mut out = format!(
        "{}: input {} → output {}, shortcut {}\n\n",
        r.network,
        dims_text(&r.input),
        dims_text(&r.output),
        r.shortcut
    );
    if per_layer {
        let mut t = TextTable::new(
            &["layer", "kind", "detail", "output", "params", "MACs"],
            &[false, false, false, false, true, true],
        );
        for l in &r.layers {
            t.row(vec![
                l.name.clone(),
                l.kind.clone(),
                l.detail.clone(),
                dims_text(&l.output),
                thousands(l.params),
                thousands(l.macs),
            ]);
        }
        t.rule();
        t.row(vec![
            "total".into(),
            String::new(),
            String::new(),
            dims_text(&r.output),
            thousands(r.params),
            thousands(r.macs),
        ]);
        out.push_str(&t.render());
    } else {
        let mut t = TextTable::new(
            &["stage", "output", "nodes", "params", "MACs", "share"],
            &[false, false, true, true, true, true],
        );
        for s in &r.stages {
            let share = if r.macs > 0 {
                format!("{:.1}%", s.macs as f64 * 100.0 / r.macs as f64)
            } else {
                "-".into()
            };
            t.row(vec![
                s.name.clone(),
                dims_text(&s.output),
                s.nodes.to_string(),
                thousands(s.params),
                si(s.macs),
                share,
            ]);
        }
        t.rule();
        t.row(vec![
            "total".into(),
            dims_text(&r.output),
            r.layers.len().to_string(),
            thousands(r.params),
            si(r.macs),
            "100.0%".into(),
        ]);
        out.push_str(&t.render());
    }
    out.push('\n');
    if !r.outputs.is_empty() {
        out.push_str(&outputs(r));
        out.push('\n');
    }
    out.push_str(&totals(r));
    out
}

/// A network's outputs: shape, loss weight, and what each costs on its own.
pub fn outputs(r: &NetworkReport) -> String {
    let mut t = TextTable::new(
        &[
            "output",
            "shape",
            "loss weight",
            "own params",
            "MACs alone",
            "",
        ],
        &[false, false, true, true, true, false],
    );
    for (i, o) in r.outputs.iter().enumerate() {
        t.row(vec![
            o.name.clone(),
            dims_text(&o.output),
            o.weight.to_string(),
            thousands(o.params),
            si(o.macs),
            if i == 0 {
                "main: evaluation runs this one alone".into()
            } else {
                "params of its own head; MACs with the layers it shares".into()
            },
        ]);
    }
    t.render()
}

/// The summary lines every report ends with.
pub fn totals(r: &NetworkReport) -> String {
    let mut t = TextTable::new(&["figure", "value", ""], &[false, true, false]);
    t.row(vec![
        "parameters".into(),
        thousands(r.params),
        format!("trainable; {} as f32", bytes(r.param_bytes)),
    ]);
    t.row(vec![
        "buffers".into(),
        thousands(r.buffers),
        "BN running mean and variance".into(),
    ]);
    t.row(vec![
        "mult-adds".into(),
        thousands(r.macs),
        format!("{} MACs of conv and fc: the paper's \"FLOPs\"", si(r.macs)),
    ]);
    t.row(vec![
        "FLOPs (full)".into(),
        thousands(r.flops),
        format!(
            "{}: every multiply and add, BN, ReLU, add and pool included",
            si(r.flops)
        ),
    ]);
    if r.batch_size > 1 {
        t.row(vec![
            format!("at batch {}", r.batch_size),
            thousands(r.macs_per_batch),
            format!(
                "mult-adds per batch ({}); FLOPs (full) {} ({}); the figures above are per sample",
                si(r.macs_per_batch),
                thousands(r.flops_per_batch),
                si(r.flops_per_batch)
            ),
        ]);
    }
    t.row(vec![
        "activations".into(),
        thousands(r.activations),
        format!(
            "elements per sample; {} at batch {} (f32)",
            bytes(r.activation_bytes),
            r.batch_size
        ),
    ]);
    t.render()
}
