//! Batch norm's running statistics in data-parallel training (`--devices cpu,cpu`) are the
//! average of the workers' updates, as docs/training.md and runtime/src/train/parallel.rs say:
//! after one step of batch 4 on two workers, each worker normalises its 2 images with their own
//! statistics, and the running mean and variance saved are
//! `0.9 * initial + 0.1 * (shard a + shard b) / 2` (unbiased variances). Computed here by hand
//! from the images, for the batch the step read.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use archc_runtime::data::Mean;
use archc_runtime::train::{self, checkpoint, ProgressMode, Run};

/// Batch norm straight on the (mean-subtracted) input, so its statistics are the images'.
const BN_FIRST: &str = r#"
network bnfirst {
    input    3x4x4
    classes  10
    head     bn, relu, avgpool, fc classes
}
"#;

fn tensors(path: &Path) -> BTreeMap<String, Vec<f32>> {
    common::f32_values(path)
}

/// Per-channel mean and unbiased variance over the images `x` (each `[3, 4, 4]`), in f64.
fn stats(x: &[&Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
    let per = 16;
    let n = (x.len() * per) as f64;
    let mut mean = vec![0.0; 3];
    let mut var = vec![0.0; 3];
    for c in 0..3 {
        let vals = || x.iter().flat_map(|img| img[c * per..(c + 1) * per].iter());
        mean[c] = vals().sum::<f64>() / n;
        var[c] = vals().map(|v| (v - mean[c]).powi(2)).sum::<f64>() / (n - 1.0);
    }
    (mean, var)
}

#[test]
fn running_statistics_of_two_workers_are_the_average_of_their_updates() {
    let g = common::lowered_str(BN_FIRST);
    let mut c = common::run_config(&g, "synthetic:10", 1);
    c.train.batch_size = 4;
    c.train.val_fraction = 0.0;
    c.train.augment = archc_runtime::data::AugmentKind::None;
    c.devices = vec!["cpu".into(), "cpu".into()];
    let p = train::prepare(&g, c).expect("prepares");
    let images = p.train.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    train::train(Run {
        graph: &g,
        prepared: p,
        out: dir.path().to_path_buf(),
        device: common::device(),
        devices: vec![common::device(), common::device()],
        resume: false,
        progress: ProgressMode::Quiet,
        interrupt: None,
        pause_after: None,
        group: None,
    })
    .expect("trains");
    let ck = dir.path().join("checkpoints/last");
    let w = tensors(&ck.join("model.safetensors"));
    let key = w
        .keys()
        .find(|k| k.ends_with(".running_mean"))
        .expect("a batch norm")
        .trim_end_matches(".running_mean")
        .to_string();
    let (got_mean, got_var) = (
        &w[&format!("{key}.running_mean")],
        &w[&format!("{key}.running_var")],
    );

    // The network's inputs: pixels / 255 minus the run's per-pixel mean (no augmentation).
    let mean: Mean = checkpoint::load_mean(&ck.join("mean.safetensors")).expect("mean");
    let x: Vec<Vec<f64>> = (0..images.len())
        .map(|i| {
            let img = images.image(i).expect("image");
            img.pixels
                .iter()
                .zip(&mean.values)
                .map(|(&p, &m)| (p as f32 / 255.0 - m) as f64)
                .collect()
        })
        .collect();
    assert_eq!(x.len(), 10);

    // Which 4 images the step read depends on the run's shuffle: try every batch of 4 split
    // into two shards of 2, and find the one whose average update is what was saved.
    let close = |a: &[f64], b: &[f32]| a.iter().zip(b).all(|(x, &y)| (x - y as f64).abs() < 1e-5);
    let mut matches = Vec::new();
    let mut whole_batch_matches = 0;
    for a in 0..10 {
        for b in a + 1..10 {
            for c in b + 1..10 {
                for d in c + 1..10 {
                    let all = [&x[a], &x[b], &x[c], &x[d]];
                    let (wm, wv) = stats(&all);
                    let mean_of = |m: &[f64]| m.iter().map(|v| 0.1 * v).collect::<Vec<_>>();
                    let var_of = |v: &[f64]| v.iter().map(|v| 0.9 + 0.1 * v).collect::<Vec<_>>();
                    if close(&mean_of(&wm), got_mean) && close(&var_of(&wv), got_var) {
                        whole_batch_matches += 1;
                    }
                    for (s1, s2) in [([a, b], [c, d]), ([a, c], [b, d]), ([a, d], [b, c])] {
                        let (m1, v1) = stats(&[&x[s1[0]], &x[s1[1]]]);
                        let (m2, v2) = stats(&[&x[s2[0]], &x[s2[1]]]);
                        let avg = |p: &[f64], q: &[f64]| {
                            p.iter()
                                .zip(q)
                                .map(|(p, q)| (p + q) / 2.0)
                                .collect::<Vec<_>>()
                        };
                        if close(&mean_of(&avg(&m1, &m2)), got_mean)
                            && close(&var_of(&avg(&v1, &v2)), got_var)
                        {
                            matches.push((s1, s2));
                        }
                    }
                }
            }
        }
    }
    println!("running mean {got_mean:?}, variance {got_var:?}: shards {matches:?}");
    assert_eq!(
        matches.len(),
        1,
        "exactly one split of a batch of 4 into two shards of 2 gives the saved statistics \
         (mean {got_mean:?}, variance {got_var:?})"
    );
    // Not the statistics of the whole batch (that would be synchronised batch norm).
    assert_eq!(whole_batch_matches, 0);
}
