//! Any text through the whole compiler: parse → resolve → expand → infer → analyse → report →
//! lower → format. Nothing may panic, overflow, hang or exhaust memory; errors must render.
//! On valid input the per-layer and per-stage parameters add up to the total, the lowered
//! graph has that count, the training report's saved bytes add up and its peak holds them,
//! and `fmt` is idempotent.
#![no_main]

use archc_compiler::analysis::analyse;
use archc_compiler::lower::{lower, to_text};
use archc_compiler::report::training::TrainingView;
use archc_compiler::training::{Machine, Options, TrainingModel};
use archc_compiler::{compile_str, fmt, report, Overrides};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (sources, result) = compile_str("fuzz.arch", text, &Overrides::default());
    match result {
        Ok(nets) => {
            for t in &nets {
                let r = analyse(t, 8);
                // The layers and the stages add up to the total (merges, auxiliary heads and
                // every output included).
                let layers: u128 = r.layers.iter().map(|l| l.params).sum();
                let stages: u128 = r.stages.iter().map(|s| s.params).sum();
                assert_eq!(layers, r.params, "layer parameters do not add up");
                assert_eq!(stages, r.params, "stage parameters do not add up");
                let _ = report::json(std::slice::from_ref(&r));
                let _ = report::table::render(&r, true);
                let _ = report::markdown::render(&r, false);
                let m = TrainingModel::new(t, Options::default());
                let mut main = m.report(8);
                let saved: u128 = main.layers.iter().map(|l| l.saved_bytes).sum();
                assert_eq!(
                    saved, main.totals.saved_activation_bytes,
                    "saved bytes do not add up"
                );
                assert!(main.totals.peak_bytes >= main.totals.saved_activation_bytes);
                main.fit = Some(m.fit(1 << 34));
                let machine = Machine {
                    peak_flops: 1e14,
                    bandwidth: 1e12,
                    dataset_size: m.default_dataset_size(),
                };
                main.totals.estimate = Some(m.estimate(8, &machine));
                let view = TrainingView {
                    main,
                    sweep: vec![m.totals(1)],
                };
                let _ = report::training::render(&r, &view, true);
                let _ = report::training::markdown(&r, &view, false);
                let l = lower(t);
                assert_eq!(l.params as u128, r.params, "lowered parameters differ");
                let _ = to_text(&l);
            }
            // Formatting a valid file keeps it valid and is idempotent.
            let once = fmt::format(text);
            assert_eq!(fmt::format(&once), once, "fmt is not idempotent");
        }
        Err(d) => {
            let _ = d.render_plain(&sources);
        }
    }
});
