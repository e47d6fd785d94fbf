//! CIFAR-10 and CIFAR-100 in their published binary format.
//!
//! CIFAR-10 (`cifar-10-batches-bin/`): `data_batch_1.bin` … `data_batch_5.bin` (training) and
//! `test_batch.bin`, each a sequence of 3073-byte records: one label byte (0–9), then
//! 1024 red, 1024 green and 1024 blue bytes of a 32x32 image, row by row.
//! CIFAR-100 (`cifar-100-binary/`): `train.bin` and `test.bin`, 3074-byte records: the coarse
//! label (0–19), the fine label (0–99), then the 3072 pixel bytes. archc trains on the fine
//! labels. `DIR` may be the folder holding the files or its parent.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{DataError, Dataset, Source, Splits};

const PIXELS: usize = 3 * 32 * 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Ten,
    Hundred,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ten => "cifar10",
            Kind::Hundred => "cifar100",
        }
    }
    fn folder(self) -> &'static str {
        match self {
            Kind::Ten => "cifar-10-batches-bin",
            Kind::Hundred => "cifar-100-binary",
        }
    }
    fn label_bytes(self) -> usize {
        match self {
            Kind::Ten => 1,
            Kind::Hundred => 2,
        }
    }
    fn classes(self) -> usize {
        match self {
            Kind::Ten => 10,
            Kind::Hundred => 100,
        }
    }
    fn train_files(self) -> Vec<&'static str> {
        match self {
            Kind::Ten => vec![
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
            ],
            Kind::Hundred => vec!["train.bin"],
        }
    }
    fn test_file(self) -> &'static str {
        match self {
            Kind::Ten => "test_batch.bin",
            Kind::Hundred => "test.bin",
        }
    }
}

pub(crate) fn open(dir: &Path, kind: Kind) -> Result<Splits, DataError> {
    let nested = dir.join(kind.folder());
    let dir = if nested.is_dir() {
        nested
    } else {
        dir.to_path_buf()
    };
    if !dir.is_dir() {
        return Err(DataError::invalid(&dir, "not a folder"));
    }
    let train_paths: Vec<PathBuf> = kind.train_files().iter().map(|f| dir.join(f)).collect();
    let train = read(&train_paths, kind, "train")?;
    let test = read(&[dir.join(kind.test_file())], kind, "test")?;
    Ok(Splits {
        train,
        val: None,
        test: Some(test),
    })
}

/// Read and validate record files into one in-memory data set.
pub(crate) fn read(paths: &[PathBuf], kind: Kind, split: &str) -> Result<Dataset, DataError> {
    let record = kind.label_bytes() + PIXELS;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for path in paths {
        if !path.exists() {
            return Err(DataError::invalid(
                path,
                format!(
                    "missing: {} in the binary format needs {} and {}",
                    kind.name(),
                    kind.train_files().join(", "),
                    kind.test_file()
                ),
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        if bytes.is_empty() {
            return Err(DataError::invalid(path, "the file is empty"));
        }
        if bytes.len() % record != 0 {
            return Err(DataError::invalid(
                path,
                format!(
                    "{} bytes is not a whole number of {record}-byte records ({} records and {} bytes left over): the file is truncated or not {} binary data",
                    bytes.len(),
                    bytes.len() / record,
                    bytes.len() % record,
                    kind.name()
                ),
            ));
        }
        pixels.reserve(bytes.len() / record * PIXELS);
        for (r, rec) in bytes.chunks_exact(record).enumerate() {
            let (label, limit, what) = match kind {
                Kind::Ten => (rec[0], 10, "label"),
                Kind::Hundred => {
                    if rec[0] >= 20 {
                        return Err(DataError::invalid(
                            path,
                            format!("record {r}: coarse label {} is out of range 0..20", rec[0]),
                        ));
                    }
                    (rec[1], 100, "fine label")
                }
            };
            if label >= limit {
                return Err(DataError::invalid(
                    path,
                    format!("record {r}: {what} {label} is out of range 0..{limit}"),
                ));
            }
            labels.push(label as u16);
            pixels.extend_from_slice(&rec[kind.label_bytes()..]);
        }
    }
    let n = labels.len();
    Ok(Dataset::new(
        format!("{} {split} ({n} images)", kind.name()),
        Source::Memory {
            pixels: Arc::new(pixels),
            shape: [3, 32, 32],
        },
        labels,
        kind.classes(),
    )
    // CIFAR's files hold the images in a random order: the last 5,000 are a fair sample.
    .in_random_order())
}
