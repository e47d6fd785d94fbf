//! Image folders: one sub-folder per class (sorted by name), as ImageNet is usually laid out.
//!
//! `folder:DIR` uses `DIR/train` for training and `DIR/val` or `DIR/test` as the test split when
//! one of them exists; with both, `DIR/val` is the validation split (nothing is held out of
//! `DIR/train`) and `DIR/test` the test split. Each holds the class folders. Without
//! `DIR/train`, `DIR` itself holds the class folders and there is no test split.
//! Files with the extensions the `image` crate decodes here (png, jpg/jpeg, bmp, gif, webp,
//! tiff, ppm/pgm) are images; other files are skipped. Images are decoded when a batch needs
//! them; a file that does not decode is an error naming it.

use std::path::Path;
use std::sync::Arc;

use super::{DataError, Dataset, RawImage, Source, Splits};

const EXTENSIONS: [&str; 10] = [
    "png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff", "ppm", "pgm",
];

pub(crate) fn open(dir: &Path) -> Result<Splits, DataError> {
    if !dir.is_dir() {
        return Err(DataError::invalid(dir, "not a folder"));
    }
    let train_dir = dir.join("train");
    let (val_dir, test_dir) = (dir.join("val"), dir.join("test"));
    if train_dir.is_dir() {
        let train = read(&train_dir, "train/", None)?;
        let classes = class_names(&train_dir)?;
        // `val/` and `test/`: validation and test; one of them alone: the test split.
        let (val, test) = match (val_dir.is_dir(), test_dir.is_dir()) {
            (true, true) => (
                Some(read(&val_dir, "val/", Some(&classes))?),
                Some(read(&test_dir, "test/", Some(&classes))?),
            ),
            (true, false) => (None, Some(read(&val_dir, "val/", Some(&classes))?)),
            (false, true) => (None, Some(read(&test_dir, "test/", Some(&classes))?)),
            (false, false) => (None, None),
        };
        Ok(Splits { train, val, test })
    } else {
        Ok(Splits {
            train: read(dir, "train", None)?,
            val: None,
            test: None,
        })
    }
}

fn class_names(dir: &Path) -> Result<Vec<String>, DataError> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let e = e.map_err(|e| DataError::io(dir, e))?;
        if e.path().is_dir() {
            names.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The images under `dir`'s class folders; `classes` fixes the class order (a test split
/// uses the training split's classes).
fn read(dir: &Path, split: &str, classes: Option<&[String]>) -> Result<Dataset, DataError> {
    let own = class_names(dir)?;
    let names: Vec<String> = classes.map(<[String]>::to_vec).unwrap_or(own.clone());
    if names.is_empty() {
        return Err(DataError::invalid(
            dir,
            "no class folders: put each class's images in a sub-folder of its own",
        ));
    }
    if let Some(extra) = own.iter().find(|n| !names.contains(n)) {
        return Err(DataError::invalid(
            &dir.join(extra),
            "a class folder that the training split does not have",
        ));
    }
    let mut paths = Vec::new();
    let mut labels = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let class_dir = dir.join(name);
        if !class_dir.is_dir() {
            continue;
        }
        let mut files = Vec::new();
        for e in std::fs::read_dir(&class_dir).map_err(|e| DataError::io(&class_dir, e))? {
            let p = e.map_err(|e| DataError::io(&class_dir, e))?.path();
            let ext = p
                .extension()
                .map(|x| x.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            if p.is_file() && EXTENSIONS.contains(&ext.as_str()) {
                files.push(p);
            }
        }
        files.sort();
        labels.extend(std::iter::repeat_n(k as u16, files.len()));
        paths.extend(files);
    }
    if paths.is_empty() {
        return Err(DataError::invalid(dir, "no images in the class folders"));
    }
    if names.len() > u16::MAX as usize {
        return Err(DataError::invalid(dir, "more than 65535 classes"));
    }
    let n = paths.len();
    Ok(Dataset::new(
        format!("folder {split} ({n} images, {} classes)", names.len()),
        Source::Files {
            paths: Arc::new(paths),
        },
        labels,
        names.len(),
    ))
}

/// Decode one image file to 8-bit RGB.
pub(crate) fn decode(path: &Path) -> Result<RawImage, DataError> {
    let img = image::ImageReader::open(path)
        .map_err(|e| DataError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?
        .decode()
        .map_err(|e| DataError::invalid(path, format!("cannot decode the image: {e}")))?;
    let rgb = img.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    if w == 0 || h == 0 {
        return Err(DataError::invalid(path, "the image is empty"));
    }
    let hwc = rgb.into_raw();
    let mut chw = vec![0u8; 3 * h * w];
    for (p, px) in hwc.chunks_exact(3).enumerate() {
        for c in 0..3 {
            chw[c * h * w + p] = px[c];
        }
    }
    Ok(RawImage {
        channels: 3,
        height: h,
        width: w,
        pixels: chw,
    })
}
