//! MNIST (and Fashion-MNIST, KMNIST, …) in LeCun's IDX format: `train-images-idx3-ubyte`,
//! `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each
//! plain or gzipped (`NAME.gz`; the plain file is read where both are present). `DIR` is the
//! folder holding them, or a folder whose `raw/` holds them (torchvision's `MNIST/raw`).
//!
//! An image file is a big-endian header (magic `0x00000803`: unsigned bytes, 3 dimensions;
//! the image count; rows; columns) and then the pixels, image by image, row by row. A label
//! file is magic `0x00000801`, the count, and one byte per label (0–9). Every size is checked:
//! the magic numbers, a file's length against its header, the two files' counts, the train
//! and test images' sizes, and each label's range.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{DataError, Dataset, Source, Splits};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
const CLASSES: usize = 10;
/// The largest file archc reads (plain or decompressed): 4 GiB.
const MAX_BYTES: u64 = 1 << 32;

pub(crate) fn open(dir: &Path) -> Result<Splits, DataError> {
    let raw = dir.join("raw");
    let dir = if !has_file(dir, "train-images-idx3-ubyte") && raw.is_dir() {
        raw
    } else {
        dir.to_path_buf()
    };
    if !dir.is_dir() {
        return Err(DataError::invalid(&dir, "not a folder"));
    }
    let train = read(&dir, "train")?;
    let test = read(&dir, "t10k")?;
    let (a, b) = (train.fixed_shape(), test.fixed_shape());
    if a != b {
        let show = |s: Option<[usize; 3]>| s.map_or(String::new(), |[_, h, w]| format!("{h}x{w}"));
        return Err(DataError::invalid(
            &dir,
            format!(
                "the training images (train-images-idx3-ubyte) are {} but the test images (t10k-images-idx3-ubyte) {}",
                show(a),
                show(b)
            ),
        ));
    }
    Ok(Splits {
        train,
        val: None,
        test: Some(test),
    })
}

fn has_file(dir: &Path, name: &str) -> bool {
    dir.join(name).is_file() || dir.join(format!("{name}.gz")).is_file()
}

/// The plain file `name` in `dir`, else `name.gz`, decompressed.
fn read_file(dir: &Path, name: &str) -> Result<(PathBuf, Vec<u8>), DataError> {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    let (path, zipped) = if plain.is_file() {
        (plain, false)
    } else if gz.is_file() {
        (gz, true)
    } else {
        return Err(DataError::invalid(
            &plain,
            "missing (nor is there a .gz): mnist:DIR needs train-images-idx3-ubyte, \
             train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, \
             each plain or gzipped",
        ));
    };
    let file = std::fs::File::open(&path).map_err(|e| DataError::io(&path, e))?;
    let mut bytes = Vec::new();
    let read = if zipped {
        flate2::read::GzDecoder::new(file)
            .take(MAX_BYTES + 1)
            .read_to_end(&mut bytes)
    } else {
        file.take(MAX_BYTES + 1).read_to_end(&mut bytes)
    };
    match read {
        Ok(_) if bytes.len() as u64 > MAX_BYTES => Err(DataError::invalid(
            &path,
            "larger than 4 GiB: not an IDX file archc reads",
        )),
        Ok(_) => Ok((path, bytes)),
        Err(e) if zipped => Err(DataError::invalid(
            &path,
            format!("not readable gzip data ({e}): a damaged or truncated download?"),
        )),
        Err(e) => Err(DataError::io(&path, e)),
    }
}

/// The big-endian header of an IDX file: its magic number checked, then `dims` sizes.
fn header(path: &Path, bytes: &[u8], magic: u32, dims: usize) -> Result<Vec<usize>, DataError> {
    let need = 4 + 4 * dims;
    if bytes.len() < need {
        return Err(DataError::invalid(
            path,
            format!(
                "{} bytes is shorter than the {need}-byte IDX header: the file is truncated",
                bytes.len()
            ),
        ));
    }
    let word = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    if word(0) != magic {
        return Err(DataError::invalid(
            path,
            format!(
                "magic number {:#010x}, expected {magic:#010x} (IDX {} of unsigned bytes): not this IDX file",
                word(0),
                if dims == 3 { "images" } else { "labels" }
            ),
        ));
    }
    Ok((0..dims).map(|d| word(4 + 4 * d) as usize).collect())
}

/// The body's length against the header's sizes.
fn check_length(path: &Path, bytes: &[u8], head: usize, body: usize) -> Result<(), DataError> {
    let want = head as u64 + body as u64;
    let got = bytes.len() as u64;
    if got != want {
        return Err(DataError::invalid(
            path,
            format!(
                "{got} bytes, but its header promises {want} ({head}-byte header and {body} bytes of data): the file is {}",
                if got < want { "truncated" } else { "longer than its header says" }
            ),
        ));
    }
    Ok(())
}

/// One split (`train` or `t10k`): its images and labels, checked against each other.
fn read(dir: &Path, split: &str) -> Result<Dataset, DataError> {
    let (ipath, images) = read_file(dir, &format!("{split}-images-idx3-ubyte"))?;
    let (lpath, labels) = read_file(dir, &format!("{split}-labels-idx1-ubyte"))?;
    let dims = header(&ipath, &images, IMAGES_MAGIC, 3)?;
    let (n, rows, cols) = (dims[0], dims[1], dims[2]);
    if n == 0 || rows == 0 || cols == 0 {
        return Err(DataError::invalid(
            &ipath,
            format!("{n} images of {rows}x{cols}: an empty set"),
        ));
    }
    let body = n
        .checked_mul(rows)
        .and_then(|x| x.checked_mul(cols))
        .filter(|&b| b as u64 <= MAX_BYTES)
        .ok_or_else(|| {
            DataError::invalid(&ipath, format!("{n} images of {rows}x{cols} is too large"))
        })?;
    check_length(&ipath, &images, 16, body)?;
    let count = header(&lpath, &labels, LABELS_MAGIC, 1)?[0];
    check_length(&lpath, &labels, 8, count)?;
    if count != n {
        return Err(DataError::invalid(
            &lpath,
            format!(
                "{count} labels for the {n} images of {}",
                ipath.file_name().unwrap_or_default().to_string_lossy()
            ),
        ));
    }
    let labels = &labels[8..];
    if let Some(i) = labels.iter().position(|&l| l as usize >= CLASSES) {
        return Err(DataError::invalid(
            &lpath,
            format!("label {i} is {}, out of range 0..{CLASSES}", labels[i]),
        ));
    }
    let name = if split == "train" { "train" } else { "test" };
    Ok(Dataset::new(
        format!("mnist {name} ({n} images)"),
        Source::Memory {
            pixels: Arc::new(images[16..].to_vec()),
            shape: [1, rows, cols],
        },
        labels.iter().map(|&l| l as u16).collect(),
        CLASSES,
    ))
}
