//! The layout of the paper's Table 1: one row per stage (layer name, output size, then each
//! network's layers, blocks shown as `[3×3, 64 / 3×3, 64] ×2`), and a FLOPs row.

use super::TextTable;
use crate::analysis::spatial_text;
use crate::graph::{SegmentInfo, Shape};
use crate::infer::TypedGraph;

/// The FLOPs row's figure: mult-adds in units of 10⁹. Two decimals, one more than the paper
/// prints, because the paper's own row is not one rounding of exact counts (3.664 G is printed
/// 3.6, 7.570 G is printed 7.6; see docs/reproduction.md).
pub fn flops_cell(macs: u128) -> String {
    format!("{:.2}×10⁹", macs as f64 / 1e9)
}

fn segment_text(seg: &SegmentInfo) -> String {
    match seg {
        SegmentInfo::Layer { text } => text.clone(),
        SegmentInfo::Blocks { layers, repeat, .. } => {
            let w = layers.iter().map(|l| l.chars().count()).max().unwrap_or(0);
            let mid = layers.len().saturating_sub(1) / 2;
            layers
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let pad = " ".repeat(w - l.chars().count());
                    let (open, close) = match (i, layers.len()) {
                        (_, 1) => ('[', ']'),
                        (0, _) => ('┌', '┐'),
                        (k, n) if k + 1 == n => ('└', '┘'),
                        _ => ('│', '│'),
                    };
                    let times = if i == mid {
                        format!(" ×{repeat}")
                    } else {
                        String::new()
                    };
                    format!("{open}{l}{pad}{close}{times}")
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}

/// The output size of a stage as Table 1 shows it: its last feature map's H×W.
fn stage_output(t: &TypedGraph, stage: usize) -> String {
    let mut last_map = None;
    let mut last = None;
    for (n, tn) in t.graph.nodes.iter().zip(&t.nodes) {
        if n.stage == Some(stage) {
            last = Some(tn.output);
            if matches!(tn.output, Shape::Map { .. }) {
                last_map = Some(tn.output);
            }
        }
    }
    last_map
        .or(last)
        .map(|s| spatial_text(&s))
        .unwrap_or_default()
}

pub fn render(nets: &[(&TypedGraph, u128)]) -> String {
    let mut header = vec!["layer name", "output size"];
    let names: Vec<String> = nets.iter().map(|(t, _)| t.graph.network.clone()).collect();
    header.extend(names.iter().map(String::as_str));
    let mut t = TextTable::new(&header, &[]);
    // Stage rows in the order of the first network, then any stage only later ones have.
    let mut order: Vec<String> = vec![];
    for (tg, _) in nets {
        for s in &tg.graph.stages {
            if !order.contains(&s.name) {
                order.push(s.name.clone());
            }
        }
    }
    for (k, name) in order.iter().enumerate() {
        let mut row = vec![name.clone()];
        let mut size = String::new();
        for (tg, _) in nets {
            if let Some(i) = tg.graph.stages.iter().position(|s| &s.name == name) {
                size = stage_output(tg, i);
                break;
            }
        }
        row.push(size);
        for (tg, _) in nets {
            let cell = tg
                .graph
                .stages
                .iter()
                .find(|s| &s.name == name)
                .map(|s| {
                    s.segments
                        .iter()
                        .map(segment_text)
                        .collect::<Vec<_>>()
                        .join(
                            if s.segments
                                .iter()
                                .all(|x| matches!(x, SegmentInfo::Layer { .. }))
                            {
                                ", "
                            } else {
                                "\n"
                            },
                        )
                })
                .unwrap_or_else(|| "-".into());
            row.push(cell);
        }
        if k > 0 {
            t.rule();
        }
        t.row(row);
    }
    t.rule();
    let mut flops = vec!["FLOPs".to_string(), String::new()];
    flops.extend(nets.iter().map(|(_, macs)| flops_cell(*macs)));
    t.row(flops);
    t.render()
}
