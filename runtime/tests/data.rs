//! Data sets: the CIFAR binary readers on files written here (good, truncated, bad labels),
//! image folders, the synthetic set, and the batch pipeline's determinism.

use std::path::Path;

use archc_runtime::data::{self, Augment, DataError, DataSpec, Expect, Mean, Pipeline};

const CIFAR: Expect = Expect {
    input: [3, 32, 32],
    classes: 10,
};

/// A CIFAR-10 record: label, then 3072 pixel bytes (channel `c` filled with `label * 10 + c`).
fn record10(label: u8) -> Vec<u8> {
    let mut r = vec![label];
    for c in 0..3u8 {
        r.extend(std::iter::repeat_n(label * 10 + c, 1024));
    }
    r
}

fn write_cifar10(dir: &Path, per_file: usize) {
    for f in 1..=5 {
        let bytes: Vec<u8> = (0..per_file)
            .flat_map(|i| record10((i % 10) as u8))
            .collect();
        std::fs::write(dir.join(format!("data_batch_{f}.bin")), bytes).expect("write");
    }
    let bytes: Vec<u8> = (0..per_file)
        .flat_map(|i| record10((9 - i % 10) as u8))
        .collect();
    std::fs::write(dir.join("test_batch.bin"), bytes).expect("write");
}

fn err(spec: &str) -> String {
    let spec: DataSpec = spec.parse().expect("spec");
    match data::open(&spec, CIFAR) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn cifar10_reads_every_batch_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nested = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&nested).expect("mkdir");
    write_cifar10(&nested, 12);
    // DIR may be the folder itself or its parent.
    for d in [dir.path(), nested.as_path()] {
        let spec = DataSpec::Cifar10(d.to_path_buf());
        let s = data::open(&spec, CIFAR).expect("opens");
        assert_eq!(s.train.len(), 60);
        let test = s.test.expect("test split");
        assert_eq!(test.len(), 12);
        assert_eq!(s.train.label(15), 3);
        assert_eq!(test.label(0), 9);
        let img = s.train.image(15).expect("image");
        assert_eq!((img.channels, img.height, img.width), (3, 32, 32));
        assert_eq!(
            (img.pixels[0], img.pixels[1024], img.pixels[3071]),
            (30, 31, 32)
        );
    }
}

#[test]
fn cifar_errors_name_the_file_and_the_fault() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_cifar10(d, 4);
    let spec = format!("cifar10:{}", d.display());
    // Truncated: one byte short.
    let p = d.join("data_batch_3.bin");
    let mut bytes = std::fs::read(&p).expect("read");
    bytes.pop();
    std::fs::write(&p, &bytes).expect("write");
    let e = err(&spec);
    assert!(
        e.contains("data_batch_3.bin") && e.contains("3073-byte records"),
        "{e}"
    );
    // A label out of range.
    write_cifar10(d, 4);
    let p = d.join("test_batch.bin");
    let mut bytes = std::fs::read(&p).expect("read");
    bytes[2 * 3073] = 12;
    std::fs::write(&p, &bytes).expect("write");
    let e = err(&spec);
    assert!(
        e.contains("test_batch.bin") && e.contains("record 2: label 12"),
        "{e}"
    );
    // Empty and missing files.
    write_cifar10(d, 4);
    std::fs::write(d.join("data_batch_1.bin"), b"").expect("write");
    let e = err(&spec);
    assert!(e.contains("data_batch_1.bin") && e.contains("empty"), "{e}");
    std::fs::remove_file(d.join("data_batch_1.bin")).expect("rm");
    let e = err(&spec);
    assert!(
        e.contains("data_batch_1.bin") && e.contains("missing"),
        "{e}"
    );
    let e = err(&format!("cifar10:{}", d.join("nope").display()));
    assert!(e.contains("nope") && e.contains("not a folder"), "{e}");
}

#[test]
fn cifar100_uses_fine_labels_and_checks_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let rec = |coarse: u8, fine: u8| {
        let mut r = vec![coarse, fine];
        r.extend(std::iter::repeat_n(7u8, 3072));
        r
    };
    let train: Vec<u8> = (0..5).flat_map(|i| rec(i, 90 + i)).collect();
    std::fs::write(d.join("train.bin"), &train).expect("write");
    std::fs::write(d.join("test.bin"), rec(1, 2)).expect("write");
    let spec = DataSpec::Cifar100(d.to_path_buf());
    let exp = Expect {
        input: [3, 32, 32],
        classes: 100,
    };
    let s = data::open(&spec, exp).expect("opens");
    assert_eq!(
        (s.train.len(), s.train.label(4), s.train.classes()),
        (5, 94, 100)
    );
    // 100 classes do not fit a 10-way network.
    let e = data::open(&spec, CIFAR)
        .expect_err("too many classes")
        .to_string();
    assert!(e.contains("--classes 100"), "{e}");
    std::fs::write(d.join("test.bin"), rec(1, 100)).expect("write");
    let e = data::open(&spec, exp)
        .expect_err("bad fine label")
        .to_string();
    assert!(
        e.contains("test.bin") && e.contains("fine label 100"),
        "{e}"
    );
    std::fs::write(d.join("test.bin"), rec(20, 1)).expect("write");
    let e = data::open(&spec, exp)
        .expect_err("bad coarse label")
        .to_string();
    assert!(e.contains("coarse label 20"), "{e}");
}

#[test]
fn image_folders_decode_resize_and_name_bad_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    for (k, class) in ["cat", "dog"].iter().enumerate() {
        for split in ["train", "val"] {
            let cd = d.join(split).join(class);
            std::fs::create_dir_all(&cd).expect("mkdir");
            for i in 0..3 {
                let img = image::RgbImage::from_fn(40 + i * 7, 30, |x, _| {
                    image::Rgb([(k * 200) as u8, x as u8, 50])
                });
                img.save(cd.join(format!("{i}.png"))).expect("save");
            }
            std::fs::write(cd.join("notes.txt"), "skipped").expect("write");
        }
    }
    let exp = Expect {
        input: [3, 24, 24],
        classes: 2,
    };
    let spec: DataSpec = format!("folder:{}", d.display()).parse().expect("spec");
    let s = data::open(&spec, exp).expect("opens");
    assert_eq!((s.train.len(), s.train.classes()), (6, 2));
    assert_eq!(s.test.as_ref().map(|t| t.len()), Some(6));
    let mean = Mean::of(&s.train, exp.input).expect("mean");
    assert_eq!(mean.shape, vec![3]);
    let p = Pipeline {
        input: exp.input,
        mean,
        augment: Augment::paper(&s.train, exp.input),
        lighting: 0.0,
        seed: 1,
    };
    let b = p
        .batch(&s.train, &[0, 1, 2, 3, 4, 5], true, 0, 0)
        .expect("batch");
    assert_eq!(b.shape, [6, 3, 24, 24]);
    assert_eq!(b.labels, vec![0, 0, 0, 1, 1, 1]);
    // A file that does not decode is named.
    std::fs::write(d.join("train/dog/1.png"), b"not a png").expect("write");
    let e = p
        .batch(&s.train, &[4], false, 0, 0)
        .expect_err("bad image")
        .to_string();
    assert!(e.contains("1.png") && e.contains("decode"), "{e}");
    let e: DataError = data::open(
        &format!("folder:{}", d.join("train/cat").display())
            .parse()
            .expect("spec"),
        exp,
    )
    .expect_err("no class folders");
    assert!(e.to_string().contains("class folders"), "{e}");
}

#[test]
fn specs_parse_or_say_what_is_wrong() {
    assert_eq!("synthetic".parse(), Ok(DataSpec::Synthetic { len: 5000 }));
    assert_eq!("synthetic:64".parse(), Ok(DataSpec::Synthetic { len: 64 }));
    for bad in [
        "synthetic:0",
        "synthetic:x",
        "cifar10",
        "cifar10:",
        "imagenet:/x",
    ] {
        assert!(bad.parse::<DataSpec>().is_err(), "{bad}");
    }
}

#[test]
fn synthetic_data_is_deterministic_and_batches_reproduce() {
    let spec = DataSpec::Synthetic { len: 100 };
    let a = data::open(&spec, CIFAR).expect("opens");
    let b = data::open(&spec, CIFAR).expect("opens");
    assert_eq!(
        a.train.image(7).expect("img"),
        b.train.image(7).expect("img")
    );
    assert_eq!(a.test.as_ref().map(|t| t.len()), Some(20));
    assert_ne!(
        a.train.image(7).expect("img"),
        a.test.as_ref().expect("test").image(7).expect("img"),
        "test images differ from training images"
    );
    let mean = Mean::of(&a.train, CIFAR.input).expect("mean");
    assert_eq!(mean.values.len(), 3 * 32 * 32);
    let p = Pipeline {
        input: CIFAR.input,
        mean,
        augment: Augment::PadCropFlip { pad: 4 },
        lighting: 0.0,
        seed: 5,
    };
    let x = p.batch(&a.train, &[1, 2, 3], true, 2, 30).expect("batch");
    let y = p.batch(&a.train, &[1, 2, 3], true, 2, 30).expect("batch");
    let z = p.batch(&a.train, &[1, 2, 3], true, 3, 30).expect("batch");
    assert_eq!(x, y);
    assert_ne!(x.images, z.images, "another epoch, other crops");
    let (kept, held) = a.train.hold_out(0.1, 0);
    assert_eq!((kept.len(), held.len()), (90, 10));
}

#[test]
fn cifar_files_too_long_or_unreadable_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let spec = format!("cifar10:{}", d.display());
    // One byte, then part of a record, past the last whole record.
    for extra in [1usize, 1000] {
        write_cifar10(d, 4);
        let p = d.join("data_batch_2.bin");
        let mut bytes = std::fs::read(&p).expect("read");
        bytes.extend(std::iter::repeat_n(3u8, extra));
        std::fs::write(&p, &bytes).expect("write");
        let e = err(&spec);
        assert!(
            e.contains("data_batch_2.bin")
                && e.contains(&format!("4 records and {extra} bytes left over")),
            "{e}"
        );
    }
    // A folder where a file should be: cannot be read, and named.
    write_cifar10(d, 4);
    let p = d.join("test_batch.bin");
    std::fs::remove_file(&p).expect("rm");
    std::fs::create_dir(&p).expect("mkdir");
    let e = err(&spec);
    assert!(
        e.contains("test_batch.bin") && e.contains("cannot read"),
        "{e}"
    );
    // CIFAR-100: a label byte past the range in the last record of a longer file.
    let rec = |coarse: u8, fine: u8| {
        let mut r = vec![coarse, fine];
        r.extend(std::iter::repeat_n(1u8, 3072));
        r
    };
    let c100 = tempfile::tempdir().expect("tempdir");
    let mut train: Vec<u8> = (0..7).flat_map(|i| rec(i, i)).collect();
    train.extend(rec(3, 255));
    std::fs::write(c100.path().join("train.bin"), &train).expect("write");
    std::fs::write(c100.path().join("test.bin"), rec(0, 0)).expect("write");
    let e = data::open(
        &DataSpec::Cifar100(c100.path().to_path_buf()),
        Expect {
            input: [3, 32, 32],
            classes: 100,
        },
    )
    .expect_err("bad label")
    .to_string();
    assert!(
        e.contains("train.bin") && e.contains("record 7: fine label 255"),
        "{e}"
    );
}

/// A PNG chunk: length, type, data, CRC-32 of type and data.
fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in kind.iter().chain(data) {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    c.extend((!crc).to_be_bytes());
    c
}

#[test]
fn image_folders_take_any_size_and_channel_count_and_name_bad_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let a = d.join("a");
    let b = d.join("b");
    std::fs::create_dir_all(&a).expect("mkdir");
    std::fs::create_dir_all(&b).expect("mkdir");
    // Gray, gray with alpha, RGBA, 16-bit RGB; 1x1 up to 50x9: each is converted to RGB and
    // resized to the input.
    image::GrayImage::from_fn(7, 5, |x, _| image::Luma([x as u8 * 30]))
        .save(a.join("0-gray.png"))
        .expect("save");
    image::GrayAlphaImage::from_pixel(1, 1, image::LumaA([200, 128]))
        .save(a.join("1-gray-alpha.png"))
        .expect("save");
    image::RgbaImage::from_pixel(50, 9, image::Rgba([10, 20, 30, 40]))
        .save(b.join("0-rgba.png"))
        .expect("save");
    image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::from_pixel(12, 12, image::Rgb([65535, 0, 0]))
        .save(b.join("1-rgb16.png"))
        .expect("save");
    let spec: DataSpec = format!("folder:{}", d.display()).parse().expect("spec");
    for input in [[3, 8, 8], [1, 8, 8]] {
        let exp = Expect { input, classes: 2 };
        let s = data::open(&spec, exp).expect("opens");
        assert_eq!(s.train.len(), 4);
        let p = Pipeline {
            input,
            mean: Mean::of(&s.train, input).expect("mean"),
            augment: Augment::paper(&s.train, input),
            lighting: 0.0,
            seed: 0,
        };
        for train in [true, false] {
            let batch = p
                .batch(&s.train, &[0, 1, 2, 3], train, 0, 0)
                .expect("batch");
            assert_eq!(batch.shape, [4, input[0], 8, 8]);
            assert!(batch.images.iter().all(|v| v.is_finite()));
        }
    }
    // A red 16-bit image stays red in 8 bits.
    let s = data::open(
        &spec,
        Expect {
            input: [3, 12, 12],
            classes: 2,
        },
    )
    .expect("opens");
    let img = s.train.image(3).expect("image");
    assert_eq!(
        (img.pixels[0], img.pixels[144], img.pixels[288]),
        (255, 0, 0)
    );

    // Files that cannot be decoded: each an error naming it, from the batch that reads it.
    let exp = Expect {
        input: [3, 8, 8],
        classes: 2,
    };
    let mut truncated = std::fs::read(a.join("0-gray.png")).expect("read");
    truncated.truncate(truncated.len() / 2);
    let mut huge = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = 60_000u32.to_be_bytes().to_vec();
    ihdr.extend(60_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    huge.extend(png_chunk(b"IHDR", &ihdr));
    huge.extend(png_chunk(b"IEND", &[]));
    let bad: [(&str, Vec<u8>); 5] = [
        ("empty.png", Vec::new()),
        ("text.png", b"this is not a picture".to_vec()),
        ("truncated.png", truncated),
        (
            "gray-as.jpg",
            std::fs::read(a.join("0-gray.png")).expect("read")[..40].to_vec(),
        ),
        ("huge.png", huge),
    ];
    for (name, bytes) in bad {
        let c = d.join("c");
        std::fs::create_dir_all(&c).expect("mkdir");
        std::fs::write(c.join(name), &bytes).expect("write");
        let s = data::open(
            &spec,
            Expect {
                input: exp.input,
                classes: 3,
            },
        )
        .expect("opens");
        let i = (0..s.train.len())
            .find(|&i| s.train.label(i) == 2)
            .expect("the bad file is listed") as u32;
        let e = Pipeline {
            input: exp.input,
            mean: Mean {
                shape: vec![3],
                values: vec![0.0; 3],
            },
            augment: Augment::None,
            lighting: 0.0,
            seed: 0,
        }
        .batch(&s.train, &[0, i], false, 0, 0)
        .expect_err(name)
        .to_string();
        assert!(e.contains(name), "{name}: {e}");
        std::fs::remove_dir_all(&c).expect("rm");
    }
    // A file removed after the folder was listed: cannot be read, and named.
    let s = data::open(&spec, exp).expect("opens");
    std::fs::remove_file(b.join("0-rgba.png")).expect("rm");
    let e = s.train.image(2).expect_err("gone").to_string();
    assert!(e.contains("0-rgba.png") && e.contains("cannot read"), "{e}");
}

/// The labels of a split, counted per class.
fn class_counts(d: &data::Dataset) -> Vec<usize> {
    let mut c = vec![0; d.classes()];
    for i in 0..d.len() {
        c[d.label(i)] += 1;
    }
    c
}

/// Issue 23, item 0: an image folder is stored class by class, and the validation split was
/// its last images, so the last class was missing from training. The split is now stratified:
/// every class is in both parts, each within one image of its share, the same for one seed.
#[test]
fn validation_split_of_a_class_sorted_folder_keeps_every_class_in_both_parts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // Four classes of unequal size (7, 13, 10, 4 images), stored class by class.
    let sizes = [7usize, 13, 10, 4];
    for (k, &n) in sizes.iter().enumerate() {
        let cd = d.join(format!("class{k}"));
        std::fs::create_dir_all(&cd).expect("mkdir");
        for i in 0..n {
            let img = image::GrayImage::from_fn(8, 8, |x, y| {
                image::Luma([(k * 50 + i + x as usize + y as usize) as u8])
            });
            img.save(cd.join(format!("{i:02}.png"))).expect("save");
        }
    }
    let exp = Expect {
        input: [1, 8, 8],
        classes: 4,
    };
    let spec: DataSpec = format!("folder:{}", d.display()).parse().expect("spec");
    let s = data::open(&spec, exp).expect("opens");
    assert_eq!(class_counts(&s.train), sizes);
    for fraction in [0.1, 0.15, 0.25, 0.5] {
        let (kept, held) = s.train.hold_out(fraction, 3);
        let total: usize = sizes.iter().sum();
        assert_eq!(held.len(), ((total as f64) * fraction).round() as usize);
        assert_eq!(kept.len() + held.len(), total);
        let (k, h) = (class_counts(&kept), class_counts(&held));
        for c in 0..4 {
            // Every class trains; every class validates where there are images enough
            // (at 0.1 only 3 are held out for 4 classes).
            assert!(k[c] > 0, "class {c} in training at {fraction}: {k:?} {h:?}");
            assert!(
                h[c] > 0 || held.len() < sizes.len(),
                "class {c} in validation at {fraction}: {k:?} {h:?}"
            );
            let share = sizes[c] as f64 * held.len() as f64 / total as f64;
            assert!(
                (h[c] as f64 - share).abs() < 1.0 + 1e-9,
                "class {c} holds {} of a share {share} at {fraction}",
                h[c]
            );
        }
        // The same seed, the same images (a resumed run validates on what it did before).
        let (_, again) = s.train.hold_out(fraction, 3);
        let images = |d: &data::Dataset| {
            (0..d.len())
                .map(|i| d.image(i).expect("img"))
                .collect::<Vec<_>>()
        };
        assert_eq!(images(&held), images(&again));
        // No image in both parts.
        let kept_images = images(&kept);
        assert!(images(&held).iter().all(|x| !kept_images.contains(x)));
    }
    // Another seed, another draw.
    let (_, a) = s.train.hold_out(0.5, 3);
    let (_, b) = s.train.hold_out(0.5, 4);
    let images = |d: &data::Dataset| {
        (0..d.len())
            .map(|i| d.image(i).expect("img"))
            .collect::<Vec<_>>()
    };
    assert_ne!(images(&a), images(&b));
}

/// CIFAR's files are in a random order: the held-out part stays the paper's "last N".
#[test]
fn validation_split_of_cifar_is_the_last_images() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_cifar10(dir.path(), 20);
    let spec: DataSpec = format!("cifar10:{}", dir.path().display())
        .parse()
        .expect("spec");
    let s = data::open(&spec, CIFAR).expect("opens");
    let (kept, held) = s.train.hold_out(0.1, 9);
    assert_eq!((kept.len(), held.len()), (90, 10));
    for i in 0..10 {
        assert_eq!(
            held.image(i).expect("img"),
            s.train.image(90 + i).expect("img")
        );
    }
}

/// Class folders `a`, `b` under `dir/split` for each split, `n` `side`x`side` PNGs each (image
/// `i` of class `k` is a horizontal ramp starting at `k * 60 + i`).
fn write_folder_splits(dir: &Path, splits: &[&str], n: u32, side: u32) {
    for split in splits {
        for (k, class) in ["a", "b"].iter().enumerate() {
            let cd = dir.join(split).join(class);
            std::fs::create_dir_all(&cd).expect("mkdir");
            for i in 0..n {
                let img = image::RgbImage::from_fn(side, side, |x, _| {
                    image::Rgb([(k as u32 * 60 + i + x * 5) as u8, 0, 0])
                });
                img.save(cd.join(format!("{i}.png"))).expect("save");
            }
        }
    }
}

/// A folder with `train/`, `val/` and `test/` gives `val/` as the validation split (it was
/// ignored); `train/` + `val/` gives `val/` as the test split, named so.
#[test]
fn a_folder_with_val_and_test_uses_val_for_validation() {
    let exp = Expect {
        input: [3, 8, 8],
        classes: 2,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    write_folder_splits(dir.path(), &["train", "val", "test"], 3, 8);
    // One more test image per class, so the two splits are told apart by size.
    write_folder_splits(&dir.path().join("test"), &[""], 4, 8);
    let spec: DataSpec = format!("folder:{}", dir.path().display())
        .parse()
        .expect("spec");
    let s = data::open(&spec, exp).expect("opens");
    let val = s.val.as_ref().expect("val/ is the validation split");
    assert_eq!(val.len(), 6);
    assert!(val.name().contains("val/"), "{}", val.name());
    let test = s.test.as_ref().expect("test/ is the test split");
    assert_eq!(test.len(), 8);
    assert!(test.name().contains("test/"), "{}", test.name());

    let dir = tempfile::tempdir().expect("tempdir");
    write_folder_splits(dir.path(), &["train", "val"], 3, 8);
    let spec: DataSpec = format!("folder:{}", dir.path().display())
        .parse()
        .expect("spec");
    let s = data::open(&spec, exp).expect("opens");
    assert!(s.val.is_none());
    let test = s.test.as_ref().expect("val/ alone is the test split");
    assert!(test.name().contains("val/"), "{}", test.name());
}

/// The default augmentation follows the image size: CIFAR's for small inputs (also image
/// folders of digits or CIFAR PNGs, which got ImageNet's scale augmentation before), ImageNet's
/// for large folder images; `--no-flip` never flips, and a CIFAR-augmented folder of input-size
/// images is evaluated as it is (not resized and centre-cropped).
#[test]
fn augmentation_defaults_follow_the_image_size_and_flips_can_be_off() {
    use data::AugmentKind;

    let dir = tempfile::tempdir().expect("tempdir");
    write_folder_splits(dir.path(), &["train"], 2, 28);
    let spec: DataSpec = format!("folder:{}", dir.path().display())
        .parse()
        .expect("spec");
    let small = Expect {
        input: [3, 28, 28],
        classes: 2,
    };
    let s = data::open(&spec, small).expect("opens");
    for imagenet_recipe in [false, true] {
        assert_eq!(
            AugmentKind::Auto.resolve(imagenet_recipe, &s.train, small.input),
            AugmentKind::Cifar
        );
    }
    assert_eq!(
        Augment::of(AugmentKind::Auto, true, false, &s.train, small.input),
        Augment::PadCropFlip { pad: 4 }
    );
    assert_eq!(
        Augment::of(AugmentKind::Auto, false, false, &s.train, small.input),
        Augment::PadCrop { pad: 4 }
    );
    assert_eq!(
        AugmentKind::Auto.resolve(false, &s.train, [3, 224, 224]),
        AugmentKind::Imagenet
    );
    assert_eq!(
        AugmentKind::Imagenet.resolve(false, &s.train, small.input),
        AugmentKind::Imagenet
    );
    let syn = data::open(&"synthetic:20".parse().expect("spec"), CIFAR).expect("opens");
    assert_eq!(
        AugmentKind::Auto.resolve(false, &syn.train, [3, 96, 96]),
        AugmentKind::Cifar
    );
    assert_eq!(
        AugmentKind::Auto.resolve(true, &syn.train, [3, 96, 96]),
        AugmentKind::Imagenet
    );

    // Pad-and-crop folder images of the input's size: evaluation leaves them as they are.
    let zero = Mean {
        shape: vec![3],
        values: vec![0.0; 3],
    };
    let pipeline = |augment| Pipeline {
        input: small.input,
        mean: zero.clone(),
        augment,
        lighting: 0.0,
        seed: 5,
    };
    let items: Vec<u32> = (0..4).collect();
    let raw: Vec<f32> = (0..4)
        .flat_map(|i| {
            let img = s.train.image(i).expect("decodes");
            img.pixels
                .iter()
                .map(|&p| p as f32 / 255.0)
                .collect::<Vec<_>>()
        })
        .collect();
    let eval = pipeline(Augment::PadCrop { pad: 4 })
        .batch(&s.train, &items, false, 0, 0)
        .expect("batch");
    assert_eq!(eval.images, raw);
    // Flips: with PadCropFlip some of 8 epochs mirror an image (the ramp then falls); with
    // PadCrop none does.
    let falls = |augment| {
        (0..8).any(|epoch| {
            let b = pipeline(augment)
                .batch(&s.train, &items, true, epoch, 0)
                .expect("batch");
            b.images.chunks(3 * 28 * 28).any(|img| {
                // Row 14 of the red channel, away from the zero padding: 4 pixels in.
                let row = &img[14 * 28..15 * 28];
                row[8] > row[20]
            })
        })
    };
    assert!(falls(Augment::PadCropFlip { pad: 4 }));
    assert!(!falls(Augment::PadCrop { pad: 4 }));

    // Lighting noise: a training batch differs from the same batch without it by one shift
    // per image and channel (on the image's pixels; the padding's zeros stay), each image its
    // own; evaluation batches have none.
    let lit = |lighting: f32, train: bool| {
        Pipeline {
            lighting,
            ..pipeline(Augment::PadCrop { pad: 4 })
        }
        .batch(&s.train, &items, train, 3, 0)
        .expect("batch")
        .images
    };
    let (plain, noisy) = (lit(0.0, true), lit(0.1, true));
    let plane = 28 * 28;
    let mut shifts = Vec::new();
    for (ch, (a, b)) in plain.chunks(plane).zip(noisy.chunks(plane)).enumerate() {
        let d: Vec<f32> = a
            .iter()
            .zip(b)
            .filter(|(a, _)| **a != 0.0)
            .map(|(a, b)| b - a)
            .collect();
        // (A plane whose pixels are all 0 cannot tell padding from image: skipped.)
        if let Some(&first) = d.first() {
            assert!(
                d.iter().all(|v| (v - first).abs() < 1e-6),
                "plane {ch}: one shift"
            );
            assert!(first != 0.0, "plane {ch} shifted");
            shifts.push((ch / 3, ch % 3, first));
        }
    }
    let images: std::collections::BTreeSet<usize> = shifts.iter().map(|s| s.0).collect();
    assert_eq!(images.len(), 4, "every image shifted: {shifts:?}");
    // One channel's shift across images: not all the same.
    let c = shifts[0].1;
    let across: Vec<f32> = shifts.iter().filter(|s| s.1 == c).map(|s| s.2).collect();
    assert!(
        across.len() >= 2 && across.windows(2).any(|w| w[0] != w[1]),
        "each image its own draw: {shifts:?}"
    );
    assert_eq!(lit(0.1, false), lit(0.0, false), "no noise in evaluation");
}

/// An IDX image file: the header (magic 0x803, count, rows, cols), then the pixels; image `i`
/// is filled with `i`.
fn idx_images(n: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0x803, n, rows, cols] {
        b.extend(v.to_be_bytes());
    }
    for i in 0..n {
        b.extend(std::iter::repeat_n(i as u8, (rows * cols) as usize));
    }
    b
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0x801, labels.len() as u32] {
        b.extend(v.to_be_bytes());
    }
    b.extend(labels);
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

/// The four MNIST files in `dir`: 12 training and 5 test images of 4x3, gzipped or plain.
fn write_mnist(dir: &Path, zipped: bool) {
    let train_labels: Vec<u8> = (0..12).map(|i| (i * 7 % 10) as u8).collect();
    let files = [
        ("train-images-idx3-ubyte", idx_images(12, 4, 3)),
        ("train-labels-idx1-ubyte", idx_labels(&train_labels)),
        ("t10k-images-idx3-ubyte", idx_images(5, 4, 3)),
        ("t10k-labels-idx1-ubyte", idx_labels(&[9, 8, 7, 6, 5])),
    ];
    for (name, bytes) in files {
        if zipped {
            std::fs::write(dir.join(format!("{name}.gz")), gzip(&bytes)).expect("write");
        } else {
            std::fs::write(dir.join(name), bytes).expect("write");
        }
    }
}

const DIGITS: Expect = Expect {
    input: [1, 4, 3],
    classes: 10,
};

#[test]
fn mnist_idx_files_read_gzipped_or_plain() {
    assert_eq!(
        "mnist:/d".parse(),
        Ok(DataSpec::Mnist(std::path::PathBuf::from("/d")))
    );
    assert_eq!(DataSpec::Mnist("/d".into()).to_string(), "mnist:/d");
    assert!("mnist".parse::<DataSpec>().is_err());
    for zipped in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        // torchvision's layout: DIR/raw holds the files.
        let raw = dir.path().join("raw");
        std::fs::create_dir(&raw).expect("mkdir");
        write_mnist(&raw, zipped);
        for d in [dir.path(), raw.as_path()] {
            let s = data::open(&DataSpec::Mnist(d.to_path_buf()), DIGITS).expect("opens");
            assert_eq!(s.train.len(), 12);
            assert_eq!(s.train.classes(), 10);
            let test = s.test.expect("a test split");
            assert_eq!(test.len(), 5);
            assert_eq!((s.train.label(3), test.label(4)), (1, 5));
            let img = s.train.image(7).expect("image");
            assert_eq!((img.channels, img.height, img.width), (1, 4, 3));
            assert_eq!(img.pixels, vec![7; 12]);
            assert_eq!(test.image(2).expect("image").pixels, vec![2; 12]);
        }
        // 28x28 digits against a 3x32x32 network: the mismatch is named.
        let e = data::open(&DataSpec::Mnist(raw.clone()), CIFAR).expect_err("shape");
        assert!(e.to_string().contains("1x4x3"), "{e}");
    }
}

#[test]
fn mnist_errors_name_the_file_and_the_fault() {
    let open = |dir: &Path| match data::open(&DataSpec::Mnist(dir.to_path_buf()), DIGITS) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    };
    let case = |file: &str, bytes: Vec<u8>, want: &[&str]| {
        let dir = tempfile::tempdir().expect("tempdir");
        write_mnist(dir.path(), false);
        std::fs::write(dir.path().join(file), bytes).expect("write");
        let e = open(dir.path());
        assert!(e.contains(file), "{file}: {e}");
        for w in want {
            assert!(e.contains(w), "{file}: `{w}` in {e}");
        }
    };
    let mut truncated = idx_images(12, 4, 3);
    truncated.truncate(16 + 12 * 12 - 5);
    case(
        "train-images-idx3-ubyte",
        truncated,
        &["truncated", "155 bytes", "160"],
    );
    let mut long = idx_images(5, 4, 3);
    long.push(0);
    case(
        "t10k-images-idx3-ubyte",
        long,
        &["longer than its header says"],
    );
    let mut magic = idx_images(12, 4, 3);
    magic[3] = 0x01;
    case(
        "train-images-idx3-ubyte",
        magic,
        &["magic number 0x00000801", "0x00000803"],
    );
    case("train-images-idx3-ubyte", vec![0, 0, 8], &["header"]);
    case(
        "train-labels-idx1-ubyte",
        idx_labels(&[1; 11]),
        &["11 labels for the 12 images"],
    );
    case(
        "t10k-labels-idx1-ubyte",
        idx_labels(&[1, 2, 10, 3, 4]),
        &["label 2 is 10", "0..10"],
    );
    case(
        "t10k-images-idx3-ubyte",
        idx_images(5, 4, 4),
        &["4x3", "4x4"],
    );
    case("train-images-idx3-ubyte", idx_images(0, 4, 3), &["empty"]);
    // A damaged gzip file, and a missing one.
    let dir = tempfile::tempdir().expect("tempdir");
    write_mnist(dir.path(), true);
    let gz = dir.path().join("t10k-labels-idx1-ubyte.gz");
    let mut bytes = std::fs::read(&gz).expect("read");
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&gz, bytes).expect("write");
    let e = open(dir.path());
    assert!(
        e.contains("t10k-labels-idx1-ubyte.gz") && e.contains("gzip"),
        "{e}"
    );
    std::fs::remove_file(&gz).expect("rm");
    let e = open(dir.path());
    assert!(
        e.contains("t10k-labels-idx1-ubyte") && e.contains("missing"),
        "{e}"
    );
    let e = open(&dir.path().join("nowhere"));
    assert!(e.contains("not a folder"), "{e}");
}
