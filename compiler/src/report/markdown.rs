//! The Markdown report: the same figures as the terminal table, as GitHub tables.

use super::{bytes, si, thousands};
use crate::analysis::{dims_text, NetworkReport};

pub fn render(r: &NetworkReport, per_layer: bool) -> String {
    let mut out = format!(
        "## {}\n\nInput {}, output {}, shortcut {}.\n\n",
        r.network,
        dims_text(&r.input),
        dims_text(&r.output),
        r.shortcut
    );
    if per_layer {
        out.push_str(
            "| layer | kind | detail | output | params | MACs |\n|---|---|---|---|---:|---:|\n",
        );
        for l in &r.layers {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} |\n",
                l.name,
                l.kind,
                l.detail,
                dims_text(&l.output),
                thousands(l.params),
                thousands(l.macs)
            ));
        }
    } else {
        out.push_str("| stage | output | nodes | params | MACs |\n|---|---|---:|---:|---:|\n");
        for s in &r.stages {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                s.name,
                dims_text(&s.output),
                s.nodes,
                thousands(s.params),
                si(s.macs)
            ));
        }
    }
    if per_layer {
        out.push_str(&format!(
            "| **total** | | | {} | **{}** | **{}** |\n\n",
            dims_text(&r.output),
            thousands(r.params),
            thousands(r.macs)
        ));
    } else {
        out.push_str(&format!(
            "| **total** | {} | | **{}** | **{}** |\n\n",
            dims_text(&r.output),
            thousands(r.params),
            si(r.macs)
        ));
    }
    out.push_str(&format!(
        "- parameters: {} ({} as f32)\n- buffers (BN running statistics): {}\n- mult-adds (the paper's \"FLOPs\"): {} ({})\n- FLOPs, full count: {} ({})\n- activations: {} elements per sample, {} at batch {}\n",
        thousands(r.params),
        bytes(r.param_bytes),
        thousands(r.buffers),
        thousands(r.macs),
        si(r.macs),
        thousands(r.flops),
        si(r.flops),
        thousands(r.activations),
        bytes(r.activation_bytes),
        r.batch_size
    ));
    if r.batch_size > 1 {
        out.push_str(&format!(
            "- at batch {}: mult-adds {} ({}), FLOPs {} ({}); the figures above are per sample\n",
            r.batch_size,
            thousands(r.macs_per_batch),
            si(r.macs_per_batch),
            thousands(r.flops_per_batch),
            si(r.flops_per_batch)
        ));
    }
    out
}
