//! `archc eval --ten-crop` and `--scales` (the paper's ImageNet testing) on small image
//! folders: the ten crops are checked against crops cut here from the definition and run
//! through `archc forward`; a network that ignores position scores the same under every view;
//! networks that cannot run at other sizes, and scales too small for the crops, are refused.
#![cfg(feature = "runtime")]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

const TINY: &str = include_str!("../runtime/tests/fixtures/tiny.arch");

/// Pointwise layers, then global pooling: the scores depend on the colours, not on where they
/// are nor on the image's size.
const POINT: &str = "network point {\n    input 3x16x16\n    classes 10\n    \
                     stem conv 1x1, 8\n    head avgpool, fc classes\n}\n";

/// Images of 18x22 pixels: a 16x16 input's evaluation side is round(16 * 256 / 224) = 18, so
/// the resize before cropping leaves them as they are.
const H: u32 = 18;
const W: u32 = 22;

fn archc() -> Command {
    let mut c = Command::cargo_bin("archc").unwrap();
    c.env("NO_COLOR", "1");
    c
}

/// `train/` and `val/` with 10 classes; `pixel(class, image, x, y)` colours each image.
fn folder(dir: &Path, pixel: impl Fn(u32, u32, u32, u32) -> [u8; 3]) -> PathBuf {
    let data = dir.join("images");
    for (split, n) in [("train", 3u32), ("val", 2)] {
        for k in 0..10u32 {
            let cd = data.join(split).join(format!("c{k}"));
            std::fs::create_dir_all(&cd).unwrap();
            for i in 0..n {
                let i = i + if split == "val" { 10 } else { 0 };
                let img = image::RgbImage::from_fn(W, H, |x, y| image::Rgb(pixel(k, i, x, y)));
                img.save(cd.join(format!("{i}.png"))).unwrap();
            }
        }
    }
    data
}

/// A network trained for two steps on `data`: its checkpoint folder (weights and mean).
fn trained(dir: &Path, file: &Path, net: &str, data: &Path) -> PathBuf {
    let run = dir.join(format!("run-{net}"));
    let o = archc()
        .arg("train")
        .arg(file)
        .args(["-n", net, "--data"])
        .arg(format!("folder:{}", data.display()))
        .arg("--out")
        .arg(&run)
        .args([
            "--iterations",
            "2",
            "--batch-size",
            "10",
            "--eval-every",
            "2",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    run.join("checkpoints/last")
}

fn eval(file: &Path, net: &str, data: &Path, weights: &Path, extra: &[&str]) -> serde_json::Value {
    let o = eval_raw(file, net, data, weights, extra);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn eval_raw(
    file: &Path,
    net: &str,
    data: &Path,
    weights: &Path,
    extra: &[&str],
) -> std::process::Output {
    archc()
        .arg("eval")
        .arg(file)
        .args(["-n", net, "--data"])
        .arg(format!("folder:{}", data.display()))
        .arg("--weights")
        .arg(weights)
        .args(["--format", "json", "--batch-size", "7"])
        .args(extra)
        .output()
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn random_pixel(k: u32, i: u32, x: u32, y: u32) -> [u8; 3] {
    let h = |s: u32| {
        let mut z = (k * 7919 + i * 104_729 + x * 31 + y * 1009 + s * 7) as u64;
        z = (z ^ (z >> 15)).wrapping_mul(0x2c1b_3c6d);
        z = (z ^ (z >> 12)).wrapping_mul(0x297a_2d39);
        ((z ^ (z >> 15)) % 256) as u8
    };
    [h(1), h(2), h(3)]
}

/// Gradients and a bright band on the left: corners, centre and mirror images differ.
fn structured_pixel(k: u32, i: u32, x: u32, y: u32) -> [u8; 3] {
    let band = if x < 5 { 255 } else { (k * 25) as u8 };
    [(x * 11 + k * 7) as u8, (y * 13 + i * 17) as u8, band]
}

/// The ten crops cut here from torchvision's definition (five_crop of the image, then of its
/// mirror image), through `archc forward`; the probabilities averaged per image give the loss
/// and top-1 error that `eval --ten-crop` reports. The plain evaluation (one centre crop)
/// differs, so the flag is not ignored.
#[test]
fn ten_crops_are_the_corners_the_centre_and_their_mirrors() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "tiny.arch", TINY);
    let data = folder(dir.path(), structured_pixel);
    let weights = trained(dir.path(), &file, "tiny", &data);

    let ten = eval(&file, "tiny", &data, &weights, &["--ten-crop"]);
    let plain = eval(&file, "tiny", &data, &weights, &[]);
    assert_eq!(ten["images"], 20);
    assert_eq!(ten["views"]["per_image"], 10);
    assert_eq!(plain["views"]["per_image"], 1);
    assert!(
        (ten["loss"].as_f64().unwrap() - plain["loss"].as_f64().unwrap()).abs() > 1e-4,
        "ten crops {ten}, one {plain}"
    );

    // The crops, from the definition: (top, left) in the 18x22 image, and mirrored or not.
    let (dy, dx) = (H as usize - 16, W as usize - 16);
    let mut corners = [(0, 0), (0, dx), (dy, 0), (dy, dx), (1, 3)];
    // torchvision's centre: int(round(2 / 2)) = 1, int(round(6 / 2)) = 3.
    let mut crops: Vec<(usize, usize, bool)> =
        corners.iter().map(|&(t, l)| (t, l, false)).collect();
    // The mirror image's five: its crop at left l is the mirror of the original's at dx - l.
    corners.iter_mut().for_each(|c| c.1 = dx - c.1);
    crops.extend(corners.iter().map(|&(t, l)| (t, l, true)));

    let (mut loss, mut wrong, mut n) = (0.0f64, 0, 0);
    for (k, img) in val_images(&data) {
        let mut x = Vec::new();
        for &(top, left, flip) in &crops {
            for ch in 0..3 {
                for y in 0..16 {
                    for c in 0..16 {
                        let sx = if flip { left + 15 - c } else { left + c };
                        let p = img.get_pixel(sx as u32, (top + y) as u32)[ch];
                        x.push(p as f32 / 255.0);
                    }
                }
            }
        }
        let logits = forward(dir.path(), &file, "tiny", &weights, &[10, 3, 16, 16], &x);
        let mut mean = [0f64; 10];
        for row in logits.chunks(10) {
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            let e: Vec<f64> = row.iter().map(|&v| (v as f64 - m).exp()).collect();
            let s: f64 = e.iter().sum();
            for (a, v) in mean.iter_mut().zip(e) {
                *a += v / s / 10.0;
            }
        }
        loss -= mean[k as usize].ln();
        let best = (0..10)
            .max_by(|&a, &b| mean[a].total_cmp(&mean[b]))
            .unwrap();
        wrong += usize::from(best != k as usize);
        n += 1;
    }
    let (loss, top1) = (loss / n as f64, wrong as f64 / n as f64);
    let got = ten["loss"].as_f64().unwrap();
    assert!(
        (got - loss).abs() < 1e-6 * loss.max(1.0),
        "eval {got}, crops here {loss}"
    );
    assert_eq!(ten["top1_error"].as_f64().unwrap(), top1);

    // At the evaluation side given as a scale: the same ten crops.
    let same = eval(
        &file,
        "tiny",
        &data,
        &weights,
        &["--ten-crop", "--scales", "18"],
    );
    assert!(
        (same["loss"].as_f64().unwrap() - got).abs() < 1e-6,
        "{same}"
    );
    assert_eq!(same["views"]["per_image"], 10);

    // The whole image at its own size (scale 18), fully convolutional: what `forward` gives
    // on the whole 18x22 image.
    let whole = eval(&file, "tiny", &data, &weights, &["--scales", "18"]);
    let mut loss = 0.0f64;
    for (k, img) in val_images(&data) {
        let mut x = Vec::new();
        for ch in 0..3 {
            for y in 0..H {
                for c in 0..W {
                    x.push(img.get_pixel(c, y)[ch] as f32 / 255.0);
                }
            }
        }
        let shape = [1, 3, H as usize, W as usize];
        let row = forward(dir.path(), &file, "tiny", &weights, &shape, &x);
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let lse = m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
        loss += lse - row[k as usize] as f64;
    }
    let loss = loss / 20.0;
    let got = whole["loss"].as_f64().unwrap();
    assert!(
        (got - loss).abs() < 1e-6 * loss.max(1.0),
        "eval {got}, forward {loss}"
    );
}

/// The test images of `folder`, each with its class.
fn val_images(data: &Path) -> Vec<(u32, image::RgbImage)> {
    let mut out = Vec::new();
    for k in 0..10u32 {
        for i in 10..12u32 {
            let png = data
                .join("val")
                .join(format!("c{k}"))
                .join(format!("{i}.png"));
            out.push((k, image::open(&png).unwrap().to_rgb8()));
        }
    }
    out
}

/// Logits of `archc forward` on `x` (the checkpoint's mean subtracted by forward itself).
fn forward(
    dir: &Path,
    file: &Path,
    net: &str,
    weights: &Path,
    shape: &[usize],
    x: &[f32],
) -> Vec<f32> {
    let input = dir.join("x.safetensors");
    let output = dir.join("y.safetensors");
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.to_vec(), &bytes)
            .unwrap();
    safetensors::serialize_to_file([("input", view)], None, &input).unwrap();
    let o = archc()
        .arg("forward")
        .arg(file)
        .args(["-n", net, "--weights"])
        .arg(weights)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let buf = std::fs::read(&output).unwrap();
    let st = safetensors::SafeTensors::deserialize(&buf).unwrap();
    st.tensor("output")
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// One colour per image: every crop, mirror image and scale shows the same colours, so a
/// network of pointwise layers and global pooling scores each view alike, and the averaged
/// scores equal the single centre crop's.
#[test]
fn a_network_that_ignores_position_scores_every_view_alike() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "point.arch", POINT);
    let data = folder(dir.path(), |k, i, _, _| random_pixel(k, i, 0, 0));
    let weights = trained(dir.path(), &file, "point", &data);
    let plain = eval(&file, "point", &data, &weights, &[]);
    let loss = plain["loss"].as_f64().unwrap();
    for extra in [
        &["--ten-crop"][..],
        &["--scales", "16,24,40"],
        &["--ten-crop", "--scales", "18,24"],
    ] {
        let v = eval(&file, "point", &data, &weights, extra);
        assert!(
            (v["loss"].as_f64().unwrap() - loss).abs() < 1e-5,
            "{extra:?}: {v} vs {plain}"
        );
        assert_eq!(v["top1_error"], plain["top1_error"], "{extra:?}");
    }
}

/// What cannot be: a network whose classifier reads a flattened map cannot run at other
/// sizes (exit 1, naming why), ten crops of 16x16 need scales of at least 16 (exit 1), and a
/// scale of 0 is a usage error (exit 2). Nothing panics.
#[test]
fn views_that_cannot_be_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = folder(dir.path(), random_pixel);
    let tiny = write(dir.path(), "tiny.arch", TINY);
    let weights = trained(dir.path(), &tiny, "tiny", &data);
    let flat = write(
        dir.path(),
        "flat.arch",
        "network flat {\n    input 3x16x16\n    classes 10\n    stem conv 3x3, 8\n    \
         head flatten, fc classes\n}\n",
    );
    let flat_weights = trained(dir.path(), &flat, "flat", &data);

    let o = eval_raw(&flat, "flat", &data, &flat_weights, &["--scales", "24"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`flat` cannot test at 3x24x")
            && err.contains("global pooling")
            && err.contains("weight` would be")
            && !err.contains("panicked"),
        "{err}"
    );
    // Ten crops of the declared size need no other size: fine for `flat` too.
    let o = eval_raw(&flat, "flat", &data, &flat_weights, &["--ten-crop"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let o = eval_raw(
        &tiny,
        "tiny",
        &data,
        &weights,
        &["--ten-crop", "--scales", "12"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("scale 12 is smaller than the 16x16 crops"),
        "{err}"
    );

    let o = eval_raw(&tiny, "tiny", &data, &weights, &["--scales", "0,224"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("a scale of 0 pixels"), "{err}");
}

/// The paper's colour augmentation: `paper-imagenet` turns AlexNet's PCA lighting noise on
/// (std 0.1) and records it in the configuration; `--lighting 0` turns it off (then, as under
/// `paper-cifar`, the configuration does not mention it); a negative value is refused.
#[test]
fn paper_imagenet_adds_the_lighting_noise() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "tiny.arch", TINY);
    let dry = |extra: &[&str]| {
        archc()
            .arg("train")
            .arg(&file)
            .args([
                "-n",
                "tiny",
                "--data",
                "synthetic:200",
                "--batch-size",
                "16",
                "--dry-run",
                "--out",
            ])
            .arg(dir.path().join("run"))
            .args(extra)
            .output()
            .unwrap()
    };
    let config = |o: std::process::Output| -> serde_json::Value {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // The configuration, then lines naming the data.
        let mut values = serde_json::Deserializer::from_slice(&o.stdout).into_iter();
        values.next().unwrap().unwrap()
    };
    let c = config(dry(&["--recipe", "paper-imagenet"]));
    assert_eq!(c["train"]["lighting"], 0.1, "{c}");
    let c = config(dry(&["--recipe", "paper-imagenet", "--lighting", "0"]));
    assert!(c["train"].get("lighting").is_none(), "{c}");
    let c = config(dry(&["--lighting", "0.2"]));
    assert_eq!(c["train"]["lighting"], 0.2, "{c}");
    let c = config(dry(&[]));
    assert!(c["train"].get("lighting").is_none(), "{c}");
    let o = dry(&["--lighting=-1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--lighting must be a finite number >= 0"),
        "{err}"
    );
}
