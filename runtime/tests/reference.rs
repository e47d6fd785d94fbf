//! Against independent references: the per-pixel mean against numpy's average, the
//! pad-crop-flip geometry against torchvision's pad, crop and hflip of a known image, the
//! image-folder resize and centre crop against torchvision's functional transforms, and the
//! Highway, pre-activation and MLP networks of the zoo against PyTorch models written from
//! their published descriptions in scripts/reference.py (as scripts/parity.py does for the
//! torchvision networks). One test needs no reference: a Highway gate's bias starts at -2.
//!
//! The references come from `scripts/reference.py` (numpy, torch 2.9.0, torchvision 0.24.0),
//! which CI runs first; these tests are `#[ignore]`d in a plain `cargo test` (there is no
//! PyTorch there) and CI runs them with `ARCHC_REFERENCE_DIR=... cargo test -p archc-runtime
//! --test reference -- --ignored`. Without the references they fail: they never pass vacuously.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use archc_runtime::data::{self, Augment, DataSpec, Dataset, Expect, Mean, Pipeline};
use archc_runtime::train::{self, checkpoint, ProgressMode, Run};
use archc_runtime::Network;
use burn::tensor::{Tensor, TensorData};

fn dir() -> PathBuf {
    let d = std::env::var("ARCHC_REFERENCE_DIR").expect(
        "ARCHC_REFERENCE_DIR must name the folder scripts/reference.py wrote (scripts/libtorch.sh python scripts/reference.py DIR)",
    );
    PathBuf::from(d)
}

/// Every float32 tensor of a safetensors file, by name (batch norm's i64
/// `num_batches_tracked` left out).
fn read_all(path: &Path) -> BTreeMap<String, Vec<f32>> {
    common::f32_values(path)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

const CIFAR: [usize; 3] = [3, 32, 32];

fn cifar() -> data::Splits {
    let spec: DataSpec = format!("cifar10:{}", dir().display())
        .parse()
        .expect("spec");
    data::open(
        &spec,
        Expect {
            input: CIFAR,
            classes: 10,
        },
    )
    .expect("the reference CIFAR-10 files open")
}

/// The training part of a run with 10% validation: CIFAR's last 10 of 100 images are held out.
fn cifar_train() -> Dataset {
    let (train, val) = cifar().train.hold_out(0.1, 3);
    assert_eq!((train.len(), val.len()), (90, 10));
    train
}

#[test]
#[ignore = "needs the references of scripts/reference.py in ARCHC_REFERENCE_DIR; CI runs it"]
fn the_per_pixel_mean_is_numpys_average_of_the_training_part() {
    let want = read_all(&dir().join("cifar_mean.safetensors"));
    let mean = Mean::of(&cifar_train(), CIFAR).expect("mean");
    assert_eq!(mean.shape, CIFAR.to_vec());
    let d = max_diff(&mean.values, &want["mean"]);
    println!("Mean::of: max |archc - numpy| = {d:e}");
    assert!(d < 1e-6, "per-pixel mean differs from numpy's by {d}");

    // The evaluation transform of the test images: pixels / 255 minus that mean.
    let test = cifar().test.expect("a test split");
    let pipeline = Pipeline {
        input: CIFAR,
        mean: mean.clone(),
        augment: Augment::None,
        lighting: 0.0,
        seed: 0,
    };
    let items: Vec<u32> = (0..test.len() as u32).collect();
    let b = pipeline.batch(&test, &items, false, 0, 0).expect("batch");
    let d = max_diff(&b.images, &want["test"]);
    println!("evaluation batch: max |archc - numpy| = {d:e}");
    assert!(d < 1e-6, "mean-subtracted test images differ by {d}");

    // What a training run stores as its checkpoint's mean (and `archc eval` subtracts).
    let g = common::lowered_str(&common::TINY.replace("3x16x16", "3x32x32"));
    let mut c = common::run_config(&g, &format!("cifar10:{}", dir().display()), 1);
    c.train.eval_every = 1;
    let p = train::prepare(&g, c).expect("prepares");
    let out = tempfile::tempdir().expect("tempdir");
    train::train(Run {
        graph: &g,
        prepared: p,
        out: out.path().to_path_buf(),
        device: common::device(),
        devices: vec![],
        resume: false,
        progress: ProgressMode::Quiet,
        interrupt: None,
        pause_after: None,
        group: None,
    })
    .expect("trains");
    let stored = checkpoint::load_mean(&out.path().join("checkpoints/last/mean.safetensors"))
        .expect("the checkpoint's mean");
    let d = max_diff(&stored.values, &want["mean"]);
    println!("checkpoint mean: max |archc - numpy| = {d:e}");
    assert!(
        d < 1e-6,
        "the checkpoint's mean differs from numpy's by {d}"
    );
}

#[test]
#[ignore = "needs the references of scripts/reference.py in ARCHC_REFERENCE_DIR; CI runs it"]
fn pad_crop_flip_gives_a_crop_of_the_padded_image_or_its_mirror() {
    let cands = &read_all(&dir().join("crops.safetensors"))["candidates"];
    let per = 3 * 32 * 32;
    let test = cifar().test.expect("a test split");
    // No mean: the crop's pixels are the image's, / 255, and the padding is 0.
    let pipeline = Pipeline {
        input: CIFAR,
        mean: Mean {
            shape: CIFAR.to_vec(),
            values: vec![0.0; per],
        },
        augment: Augment::PadCropFlip { pad: 4 },
        lighting: 0.0,
        seed: 5,
    };
    // Which of torchvision's 162 crops (flip, top, left) each augmented copy of image 0 is.
    let draws = 400;
    let mut flips = [0usize; 2];
    let mut tops = [0usize; 9];
    let mut lefts = [0usize; 9];
    for k in 0..draws {
        let b = pipeline.batch(&test, &[0], true, 0, k).expect("batch");
        let found: Vec<usize> = (0..2 * 81)
            .filter(|&j| cands[j * per..(j + 1) * per] == b.images[..])
            .collect();
        assert_eq!(
            found.len(),
            1,
            "draw {k}: the augmented image is exactly one of torchvision's crops (found {found:?})"
        );
        let j = found[0];
        flips[j / 81] += 1;
        tops[j % 81 / 9] += 1;
        lefts[j % 9] += 1;
    }
    println!("flips {flips:?}, tops {tops:?}, lefts {lefts:?}");
    // Each of the 9 offsets per axis about 44 times in 400, each flip about 200: far from 0.
    assert!(flips.iter().all(|&n| n > 150), "flips {flips:?}");
    assert!(
        tops.iter().chain(&lefts).all(|&n| n > 15),
        "{tops:?} {lefts:?}"
    );
}

#[test]
#[ignore = "needs the references of scripts/reference.py in ARCHC_REFERENCE_DIR; CI runs it"]
fn folder_resize_and_centre_crop_equal_torchvisions() {
    #[derive(serde::Deserialize)]
    struct Image {
        name: String,
        height: usize,
        width: usize,
    }
    #[derive(serde::Deserialize)]
    struct Manifest {
        folder: Vec<Image>,
    }
    let manifest: Manifest = serde_json::from_str(
        &std::fs::read_to_string(dir().join("manifest.json")).expect("manifest.json"),
    )
    .expect("manifest parses");
    let want = read_all(&dir().join("folder.safetensors"));
    let input = [3, 16, 16];
    let spec: DataSpec = format!("folder:{}", dir().join("folder").display())
        .parse()
        .expect("spec");
    let splits = data::open(&spec, Expect { input, classes: 2 }).expect("the folder opens");
    let train = splits.train;
    assert_eq!(train.len(), manifest.folder.len());
    let pipeline = Pipeline {
        input,
        mean: Mean {
            shape: vec![3],
            values: vec![0.0; 3],
        },
        augment: Augment::None,
        lighting: 0.0,
        seed: 0,
    };
    let mut wrong = Vec::new();
    for i in 0..train.len() {
        let raw = train.image(i).expect("decodes");
        let img = manifest
            .folder
            .iter()
            .find(|m| (m.height, m.width) == (raw.height, raw.width))
            .expect("an image of the manifest (their sizes differ)");
        let b = pipeline
            .batch(&train, &[i as u32], false, 0, 0)
            .expect("batch");
        // The float tensor path computes what archc computes (the same triangle weights, in
        // f32): only rounding separates them (at most 2.4e-7 of the range measured over these
        // images, a few units of f32's 6e-8 at 1), so 1e-5 is far below one level (1/255)
        // and far above rounding. The code before antialiasing differed by 0.22 to 0.53.
        let d = max_diff(&b.images, &want[&img.name]);
        // PIL rounds to 8 bits after its horizontal pass and again at the end: at most half a
        // level each, the second pass's weights summing to 1, so at most 1/255 in all.
        let pil = max_diff(&b.images, &want[&format!("{}.pil", img.name)]);
        println!(
            "{}: max |archc - torchvision| = {d:e} (float tensor), {pil:e} (PIL, 8 bits; {:.2} levels)",
            img.name,
            pil * 255.0
        );
        if d >= 1e-5 || pil > 1.0 / 255.0 + 1e-5 {
            wrong.push(img.name.as_str());
        }
    }
    // Every image is compared (and printed) before the verdict.
    assert!(wrong.is_empty(), "differ from torchvision: {wrong:?}");
}

#[test]
#[ignore = "needs the references of scripts/reference.py in ARCHC_REFERENCE_DIR; CI runs it"]
fn highway_preact_and_mlp_networks_agree_with_pytorch() {
    #[derive(serde::Deserialize)]
    struct Net {
        name: String,
        file: String,
        network: String,
        params: u64,
    }
    #[derive(serde::Deserialize)]
    struct Manifest {
        nets: Vec<Net>,
    }
    let manifest: Manifest = serde_json::from_str(
        &std::fs::read_to_string(dir().join("manifest.json")).expect("manifest.json"),
    )
    .expect("manifest parses");
    let names: Vec<&str> = manifest.nets.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "cifar_highway19",
            "cifar_preact_resnet20",
            "mlp_fc20",
            "mlp_res20"
        ],
        "the networks of scripts/reference.py"
    );
    let device = common::device();
    for n in &manifest.nets {
        let file = Path::new(&n.file).file_name().unwrap().to_str().unwrap();
        let g = common::lowered(file, &n.network, None);
        assert_eq!(g.params, n.params, "{}: PyTorch's parameter count", n.name);
        let mut net = Network::new(&g, &device, 0).expect("builds");
        net.load_weights(dir().join(format!("nets/{}.safetensors", n.name)))
            .unwrap_or_else(|e| panic!("{}: {e}", n.name));
        let io = read_all(&dir().join(format!("nets/{}.io.safetensors", n.name)));
        let x = Tensor::<4>::from_data(
            TensorData::new(io["input"].clone(), [2, 3, 32, 32]),
            &device,
        );
        let ours = net
            .try_forward(x)
            .unwrap_or_else(|e| panic!("{}: {e}", n.name))
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 logits");
        let y = &io["output"];
        let d = max_diff(&ours, y);
        let scale = y.iter().map(|v| v.abs()).fold(0.0, f32::max);
        println!(
            "{}: max |archc - pytorch| = {d:e} (max |pytorch| = {scale:.3})",
            n.name
        );
        assert!(scale > 0.1, "{}: logits of a useful size", n.name);
        assert!(d < 1e-4, "{}: outputs differ by {d}", n.name);
    }
}

/// Srivastava et al. 2015 (and architectures/highway.arch): a gate's bias starts at -2, so a
/// fresh highway layer mostly carries its input (T = sigmoid(-2 + ...) near 0.12).
#[test]
fn a_highway_gate_starts_with_its_bias_at_minus_two() {
    let g = common::lowered("highway.arch", "cifar_highway19", None);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("init.safetensors");
    Network::new(&g, &common::device(), 11)
        .expect("builds")
        .save_weights(&path)
        .expect("saves");
    let w = read_all(&path);
    let gates: Vec<&String> = w.keys().filter(|k| k.ends_with(".gate.bias")).collect();
    assert_eq!(gates.len(), 15, "15 highway layers: {gates:?}");
    for k in gates {
        assert!(w[k].iter().all(|&b| b == -2.0), "{k}: {:?}", &w[k][..4]);
        let weight = &w[&k.replace(".bias", ".weight")];
        assert!(
            weight.iter().any(|&v| v != 0.0),
            "{k}: the gate's weights are drawn"
        );
    }
    // Every other bias (the fc's) is not -2: the value is the gates' own.
    assert!(w["head.fc1.bias"].iter().all(|&b| b != -2.0));
}
