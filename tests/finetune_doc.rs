//! docs/training.md's fine-tuning example runs: its ```sh block under "Fine-tuning from
//! pretrained weights" is run with bash, with the archc under test first on PATH, in a folder
//! holding a generated image folder `flowers/` (five classes of small PNGs, `train/` and
//! `val/`), a generated `resnet18.safetensors` (archc's own initialisation of the zoo's
//! resnet18, saved with torchvision's names and shapes, 1000 classes: no download) and a link to
//! `architectures/`. To take seconds, `--input 3x32x32` is added after each `--classes 5`,
//! `--batch-size 64` becomes 4, and `--epochs N` becomes `--iterations 2` (a substitution that
//! does not happen fails the test, so the doc and the test stay together). Then the run folders
//! are checked: the init lines the doc shows, config.json's records, the frozen layers.

#![cfg(feature = "runtime")]

use std::path::Path;
use std::process::Command;

/// The ```sh block of the fine-tuning section.
fn example(md: &str) -> String {
    let section = md
        .split("\n## Fine-tuning from pretrained weights\n")
        .nth(1)
        .expect("the section")
        .split("\n## ")
        .next()
        .unwrap();
    let start = section.find("```sh\n").expect("a ```sh block") + "```sh\n".len();
    let end = start + section[start..].find("```").expect("its end");
    section[start..end].to_string()
}

fn replace_all(s: &str, from: &str, to: &str) -> String {
    assert!(s.contains(from), "the example has no `{from}`:\n{s}");
    s.replace(from, to)
}

fn write_flowers(dir: &Path) {
    for (split, n) in [("train", 6), ("val", 2)] {
        for k in 0..5u32 {
            let d = dir.join("flowers").join(split).join(format!("class{k}"));
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..n {
                let img = image::RgbImage::from_fn(40, 36, |x, y| {
                    image::Rgb([(k * 50 + x) as u8, (i * 30 + y) as u8, (k * i) as u8])
                });
                img.save(d.join(format!("{i}.png"))).unwrap();
            }
        }
    }
}

fn write_resnet18(path: &Path) {
    let arch = Path::new(env!("CARGO_MANIFEST_DIR")).join("architectures/resnet.arch");
    let (_, prog) = archc_compiler::load_path(&arch);
    let prog = prog.unwrap_or_else(|_| panic!("resnet.arch loads"));
    let net = archc_compiler::build_network(&prog, "resnet18", &Default::default())
        .unwrap_or_else(|_| panic!("resnet18 builds"));
    let g = archc_compiler::lower::lower(&net);
    let device = archc_runtime::Device::flex();
    let model = archc_runtime::Network::new(&g, &device, 7).expect("builds");
    model.save_weights(path).expect("saves");
}

#[test]
fn the_fine_tuning_example_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let md = std::fs::read_to_string(root.join("docs/training.md")).unwrap();
    let mut script = example(&md);
    script = replace_all(&script, "--classes 5", "--classes 5 --input 3x32x32");
    script = replace_all(&script, "--batch-size 64", "--batch-size 4");
    script = replace_all(&script, "--epochs 5", "--iterations 2");
    script = replace_all(&script, "--epochs 10", "--iterations 2");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_flowers(d);
    write_resnet18(&d.join("resnet18.safetensors"));
    std::os::unix::fs::symlink(root.join("architectures"), d.join("architectures")).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_archc"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = Command::new("bash")
        .args(["-eo", "pipefail", "-c", &script])
        .current_dir(d)
        .env("PATH", &path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{script}\n{err}");

    // The first run's init lines, as the doc shows them (but the hash).
    for line in [
        "init: 100 tensors loaded from resnet18.safetensors (sha256 ",
        "init: loaded bn1 (4), conv1 (1), layer1 (20), layer2 (25), layer3 (25), layer4 (25)",
        "init: re-initialised fc.weight: [1000, 512] in the file, [5, 512] here (the classifier)",
        "init: re-initialised fc.bias: [1000] in the file, [5] here (the classifier)",
        "init: ignored 20 num_batches_tracked (archc's batch norm does not count batches)",
    ] {
        assert!(err.contains(line), "`{line}` not in:\n{err}");
        assert!(md.contains(line), "docs/training.md does not show `{line}`");
    }
    // The second run loads all 102 tensors of the first run's checkpoint.
    assert!(
        err.contains("init: 102 tensors loaded from runs/flowers-head/checkpoints/best"),
        "{err}"
    );
    assert!(out.contains("top-1 error"), "eval prints its error:\n{out}");

    let config = |run: &str| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(d.join("runs").join(run).join("config.json")).unwrap(),
        )
        .unwrap()
    };
    let head = config("flowers-head");
    assert_eq!(head["init"]["path"], "resnet18.safetensors");
    assert_eq!(head["init"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(
        head["train"]["freeze"],
        serde_json::json!(["conv1", "bn1", "layer1", "layer2", "layer3"])
    );
    assert_eq!(head["train"]["adamw"]["beta2"], 0.999);
    let all = config("flowers-all");
    assert_eq!(all["train"]["lr_scale"][2]["prefix"], "layer1");
    assert_eq!(all["train"]["lr_scale"][2]["factor"], 0.1);

    // The frozen backbone left as loaded; layer4 and the classifier trained.
    let tensors = |p: &Path| {
        let bytes = std::fs::read(p).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        st.tensors()
            .into_iter()
            .map(|(k, v)| (k, v.data().to_vec()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let start = tensors(&d.join("resnet18.safetensors"));
    let tuned = tensors(&d.join("runs/flowers-head/checkpoints/last/model.safetensors"));
    for key in [
        "conv1.weight",
        "bn1.running_mean",
        "layer1.0.bn1.running_var",
        "layer3.1.conv2.weight",
    ] {
        assert_eq!(start[key], tuned[key], "{key} is frozen");
    }
    for key in ["layer4.1.conv2.weight", "layer4.0.bn1.running_mean"] {
        assert_ne!(start[key], tuned[key], "{key} trains");
    }
}
