//! `archc eval` and `archc forward` on a trained checkpoint give what the library gives on the
//! same weights: the test builds the evaluation batch itself (pixels / 255 minus the
//! checkpoint's per-pixel mean, read from `mean.safetensors`), runs `Network::forward`, and
//! scores the logits by hand (log-softmax, arg max). The checkpoint's mean is moved first, so
//! an `eval` that used another mean (the data's own, or none) would give another loss.
//! Only with the `runtime` feature (the default).
#![cfg(feature = "runtime")]

use std::path::Path;

use archc_compiler::lower::lower;
use archc_compiler::{compile_str, Overrides};
use archc_runtime::data::{self, tensors, DataSpec, Expect};
use archc_runtime::train::checkpoint;
use archc_runtime::Network;
use assert_cmd::Command;

const TINY: &str = include_str!("../runtime/tests/fixtures/tiny.arch");
const INPUT: [usize; 3] = [3, 16, 16];

fn archc() -> Command {
    let mut c = Command::cargo_bin("archc").unwrap();
    c.env("NO_COLOR", "1");
    c
}

fn stdout_of(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// The number after `label` on its line of `archc eval`'s output (`top-1 error  12.50%`).
fn figure(out: &str, label: &str) -> f64 {
    let line = out
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` line in {out}"));
    line[label.len()..]
        .trim()
        .trim_end_matches('%')
        .parse()
        .unwrap_or_else(|e| panic!("{line}: {e}"))
}

/// Write f32 `values` of `shape` as the tensor `name` of a safetensors file (no Burn needed
/// here: a compiler-only build of this crate's tests stays without it).
fn write_f32(path: &Path, name: &str, values: &[f32], shape: &[usize]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.to_vec(), &bytes)
            .unwrap();
    safetensors::serialize_to_file([(name, view)], None, path).unwrap();
}

/// Mean cross-entropy and top-1 error of `[n, classes]` logits, computed here.
fn score(logits: &[f32], labels: &[usize], classes: usize) -> (f64, f64) {
    let mut loss = 0.0;
    let mut wrong = 0;
    for (row, &label) in logits.chunks_exact(classes).zip(labels) {
        let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
        let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
        loss += max + sum.ln() - row[label] as f64;
        let best = (0..classes)
            .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
            .unwrap();
        wrong += usize::from(best != label);
    }
    let n = labels.len() as f64;
    (loss / n, wrong as f64 / n)
}

#[test]
fn eval_and_forward_on_a_trained_checkpoint_equal_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("tiny.arch");
    std::fs::write(&f, TINY).unwrap();
    let f = f.to_str().unwrap();
    let run = dir.path().join("run");
    stdout_of(archc().args([
        "train",
        f,
        "-n",
        "tiny",
        "--data",
        "synthetic:200",
        "--iterations",
        "6",
        "--batch-size",
        "16",
        "--eval-every",
        "3",
        "--log-every",
        "3",
        "--out",
        run.to_str().unwrap(),
    ]));
    let ck = run.join("checkpoints/last");

    // The checkpoint's mean, moved by +0.25 (and a little more along the image), written back.
    let mean_path = ck.join("mean.safetensors");
    let trained = checkpoint::load_mean(&mean_path).unwrap();
    assert_eq!(trained.shape, INPUT.to_vec());
    let moved: Vec<f32> = trained
        .values
        .iter()
        .enumerate()
        .map(|(k, v)| v + 0.25 + 0.001 * (k % 97) as f32)
        .collect();
    let device = archc_runtime::Device::flex();
    write_f32(&mean_path, "mean", &moved, &INPUT);
    assert_eq!(checkpoint::load_mean(&mean_path).unwrap().values, moved);

    // The library: the weights, the test split, the batch and the scores made here.
    let (_, nets) = compile_str("tiny.arch", TINY, &Overrides::default());
    let g = lower(&nets.unwrap_or_else(|_| panic!("tiny compiles"))[0]);
    let mut net = Network::new(&g, &device, 0).unwrap();
    net.load_weights(ck.join("model.safetensors")).unwrap();
    let spec: DataSpec = "synthetic:200".parse().unwrap();
    let test = data::open(
        &spec,
        Expect {
            input: INPUT,
            classes: 10,
        },
    )
    .unwrap()
    .test
    .expect("a test split");
    let n = test.len();
    let per: usize = INPUT.iter().product();
    let batch = |mean: &[f32]| -> Vec<f32> {
        (0..n)
            .flat_map(|i| {
                let img = test.image(i).unwrap();
                assert_eq!(img.pixels.len(), per);
                img.pixels
                    .iter()
                    .zip(mean)
                    .map(|(&p, m)| p as f32 / 255.0 - m)
                    .collect::<Vec<f32>>()
            })
            .collect()
    };
    let labels: Vec<usize> = (0..n).map(|i| test.label(i)).collect();
    let shape = [n, INPUT[0], INPUT[1], INPUT[2]];
    let input = dir.path().join("input.safetensors");
    let logits = |x: &[f32]| -> Vec<f32> {
        write_f32(&input, "input", x, &shape);
        let t = tensors::read4(&input, "input", &device).unwrap();
        net.forward(t).into_data().try_to_vec::<f32>().unwrap()
    };
    let (loss_trained_mean, _) = score(&logits(&batch(&trained.values)), &labels, 10);
    // Last, so that input.safetensors holds this batch for `archc forward` below.
    let ours = logits(&batch(&moved));
    let (loss, top1) = score(&ours, &labels, 10);
    assert!(
        (loss - loss_trained_mean).abs() > 1e-3,
        "the moved mean changes the loss ({loss} vs {loss_trained_mean}), so the check below sees which mean eval used"
    );

    // archc eval on the checkpoint folder, in batches of 7 (not a divisor of the split).
    let out = stdout_of(archc().args([
        "eval",
        f,
        "-n",
        "tiny",
        "--weights",
        ck.to_str().unwrap(),
        "--data",
        "synthetic:200",
        "--batch-size",
        "7",
    ]));
    let cli_top1 = figure(&out, "top-1 error");
    let cli_loss = figure(&out, "loss");
    println!(
        "eval: top-1 {cli_top1}% (here {:.4}%), loss {cli_loss} (here {loss:.6})",
        top1 * 100.0
    );
    assert_eq!(
        format!("{:.2}", top1 * 100.0),
        format!("{cli_top1:.2}"),
        "{out}"
    );
    assert!(
        (cli_loss - loss).abs() < 1e-4,
        "eval's loss {cli_loss}, here {loss}: {out}"
    );

    // archc forward on the checkpoint's weights: the logits of the same batch. The weights sit
    // in the checkpoint folder beside its mean, so forward subtracts that (moved) mean itself
    // (issue 23, item 14): it is given the images with no mean subtracted.
    write_f32(&input, "input", &batch(&vec![0.0; per]), &shape);
    let output = dir.path().join("output.safetensors");
    stdout_of(archc().args([
        "forward",
        f,
        "-n",
        "tiny",
        "--weights",
        ck.join("model.safetensors").to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]));
    let bytes = std::fs::read(&output).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let y = st.tensor("output").unwrap();
    assert_eq!(y.shape(), [n, 10]);
    let theirs: Vec<f32> = y
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let d = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        d <= 1e-6,
        "archc forward differs from Network::forward by {d}"
    );
}
