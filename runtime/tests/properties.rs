//! Property: a random valid network (small: `gen::RUN`), built as a Burn module on the test
//! device, has the compiler's trainable-parameter count (and the count made from the
//! description), and a forward pass gives the compiler's logits shape, finite.
//!
//! The generator is the compiler's (`compiler/tests/gen/mod.rs`). 128 cases keep this to a few
//! seconds in a debug build; `PROPTEST_CASES` raises the count.

mod common;

#[path = "../../compiler/tests/gen/mod.rs"]
mod gen;

use archc_compiler::lower::lower;
use archc_compiler::{compile_str, Overrides};
use archc_runtime::Network;
use burn::tensor::{Distribution, Tensor};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn burn_agrees_with_the_compiler_on_random_networks(net in gen::net(gen::RUN), seed in 0u64..1000) {
        let text = net.text(&gen::blocks_path());
        let (sources, r) = compile_str("gen.arch", &text, &Overrides::default());
        let nets = r.map_err(|d| TestCaseError::fail(format!("{}\n{text}", d.render_plain(&sources))))?;
        let t = nets
            .iter()
            .find(|t| t.graph.network == "gen")
            .ok_or_else(|| TestCaseError::fail("no network `gen`"))?;
        let g = lower(t);
        prop_assert_eq!(g.params, net.params(), "{}", text);

        let device = common::device().autodiff();
        let model = Network::new(&g, &device, seed)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(model.num_trainable_params(), g.params, "{}", text);

        let [c, h, w] = net.input.map(|d| d as usize);
        let x = Tensor::<4>::random([2, c, h, w], Distribution::Normal(0.0, 1.0), &device);
        let y = model
            .try_forward(x)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(y.dims().to_vec(), vec![2, net.classes as usize], "{}", text);
        prop_assert_eq!(g.output.clone(), vec![net.classes as usize], "{}", text);
        let v = y
            .inner()
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert!(v.iter().all(|x| x.is_finite()), "non-finite logits\n{}", text);
    }
}
