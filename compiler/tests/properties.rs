//! Properties over random valid networks (proptest; `gen/mod.rs` generates them, merges,
//! `in.c`, stage lines, auxiliary heads and `outputs` included): every one compiles without a
//! diagnostic; the per-layer and per-stage parameters add up to the network's; the total, the
//! stage shapes, the outputs and the numbers of convs and batch norms equal what the
//! description says, counted independently; the lowered graph has the same count; and
//! formatting the text changes none of it.
//!
//! A failing case prints the generated `.arch` text. `PROPTEST_CASES` raises the case count.

mod gen;

use archc_compiler::analysis::{analyse, NetworkReport};
use archc_compiler::lower::lower;
use archc_compiler::{compile_str, Overrides, TypedGraph};
use proptest::prelude::*;

fn compile(text: &str) -> Result<TypedGraph, String> {
    let (sources, r) = compile_str("gen.arch", text, &Overrides::default());
    match r {
        Ok(nets) => nets
            .into_iter()
            .find(|t| t.graph.network == "gen")
            .ok_or_else(|| "no network `gen`".to_string()),
        Err(d) => Err(d.render_plain(&sources)),
    }
}

/// Each layer's name, kind, output shape and parameters.
fn layer_rows(r: &NetworkReport) -> Vec<(String, String, Vec<u64>, u128)> {
    r.layers
        .iter()
        .map(|l| (l.name.clone(), l.kind.clone(), l.output.clone(), l.params))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_valid_networks_compile_and_their_counts_add_up(net in gen::net(gen::COMPILE)) {
        let text = net.text(&gen::blocks_path());
        let t = compile(&text).map_err(|d| TestCaseError::fail(format!("{d}\n{text}")))?;
        let r = analyse(&t, 1);
        let walk = net.walk();

        // Parameters: the layers add up to the total, so do the stages, and the total is the
        // count made from the description.
        let layers: u128 = r.layers.iter().map(|l| l.params).sum();
        let stages: u128 = r.stages.iter().map(|s| s.params).sum();
        prop_assert_eq!(layers, r.params, "{}", text);
        prop_assert_eq!(stages, r.params, "{}", text);
        prop_assert_eq!(r.params, u128::from(walk.params), "{}", text);
        prop_assert_eq!(lower(&t).params, walk.params, "{}", text);

        // Shapes: the stem's and every stage's output (auxiliary heads included), and the
        // logits.
        let outputs: Vec<Vec<u64>> = r
            .stages
            .iter()
            .filter(|s| s.name != "head")
            .map(|s| s.output.clone())
            .collect();
        prop_assert_eq!(outputs, walk.stage_outputs.clone(), "{}", text);
        prop_assert_eq!(r.output.clone(), vec![net.classes], "{}", text);

        // The outputs the `outputs` line names, the main one first, with their weights.
        if net.outputs != 0 {
            let got: Vec<(String, Vec<u64>, f64)> = r
                .outputs
                .iter()
                .map(|o| (o.name.clone(), o.output.clone(), o.weight))
                .collect();
            prop_assert_eq!(got, walk.outputs.clone(), "{}", text);
        }

        // One conv node per conv the description has (projections are shortcut nodes), each
        // with its batch norm when `norm` is on (the gates' convs have none).
        let count = |kind: &str| r.layers.iter().filter(|l| l.kind == kind).count();
        prop_assert_eq!(count("conv"), walk.convs, "{}", text);
        prop_assert_eq!(count("bn"), walk.bns, "{}", text);

        // `archc fmt` keeps the meaning: the same layers with the same shapes and counts, and
        // formatting again changes nothing.
        let formatted = archc_compiler::fmt::format(&text);
        let f = compile(&formatted).map_err(|d| TestCaseError::fail(format!("{d}\n{formatted}")))?;
        let fr = analyse(&f, 1);
        prop_assert_eq!(fr.params, r.params, "{}", formatted);
        prop_assert_eq!(layer_rows(&fr), layer_rows(&r), "{}", formatted);
        prop_assert_eq!(archc_compiler::fmt::format(&formatted), formatted.clone(), "{}", text);
    }
}
