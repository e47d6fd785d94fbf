//! Properties over random valid networks (proptest; `gen/mod.rs` generates them): every one
//! compiles without a diagnostic; the per-layer and per-stage parameters add up to the
//! network's; the total, the stage shapes and the numbers of convs and batch norms equal what the description
//! says, counted independently; the lowered graph has the same count; and formatting the text
//! changes none of it.
//!
//! A failing case prints the generated `.arch` text. `PROPTEST_CASES` raises the case count.

mod gen;

use archc_compiler::analysis::analyse;
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_valid_networks_compile_and_their_counts_add_up(net in gen::net(gen::COMPILE)) {
        let text = net.text(&gen::blocks_path());
        let t = compile(&text).map_err(|d| TestCaseError::fail(format!("{d}\n{text}")))?;
        let r = analyse(&t, 1);

        // Parameters: the layers add up to the total, so do the stages, and the total is the
        // count made from the description.
        let layers: u128 = r.layers.iter().map(|l| l.params).sum();
        let stages: u128 = r.stages.iter().map(|s| s.params).sum();
        prop_assert_eq!(layers, r.params, "{}", text);
        prop_assert_eq!(stages, r.params, "{}", text);
        prop_assert_eq!(r.params, u128::from(net.params()), "{}", text);
        prop_assert_eq!(lower(&t).params, net.params(), "{}", text);

        // Shapes: the stem's and every stage's output, and the logits.
        let outputs: Vec<Vec<u64>> = r
            .stages
            .iter()
            .filter(|s| s.name != "head")
            .map(|s| s.output.clone())
            .collect();
        let expected: Vec<Vec<u64>> = net.stage_outputs().iter().map(|o| o.to_vec()).collect();
        prop_assert_eq!(outputs, expected, "{}", text);
        prop_assert_eq!(r.output.clone(), vec![net.classes], "{}", text);

        // One conv node per conv the description has (projections are shortcut nodes), each
        // with its batch norm when `norm` is on.
        let count = |kind: &str| r.layers.iter().filter(|l| l.kind == kind).count();
        prop_assert_eq!(count("conv"), net.convs_count(), "{}", text);
        prop_assert_eq!(count("bn"), if net.norm { net.convs_count() } else { 0 }, "{}", text);

        // `archc fmt` keeps the meaning.
        let formatted = archc_compiler::fmt::format(&text);
        let f = compile(&formatted).map_err(|d| TestCaseError::fail(format!("{d}\n{formatted}")))?;
        prop_assert_eq!(analyse(&f, 1).params, r.params, "{}", formatted);
    }
}
