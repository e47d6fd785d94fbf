//! Image classification data for training and evaluation.
//!
//! Contract:
//! - a [`DataSpec`] names a data set: `cifar10:DIR`, `cifar100:DIR` (the published binary
//!   format), `mnist:DIR` (MNIST's IDX files, plain or gzipped), `folder:DIR` (one sub-folder
//!   per class) or `synthetic[:N]` (seeded, no download);
//! - [`open`] reads and validates it into [`Splits`] (a training split and, where the data has
//!   one, a test split); every error is a [`DataError`] naming the file and what is wrong,
//!   never a panic;
//! - a [`Dataset`] yields raw 8-bit images by index (CIFAR and synthetic from memory or
//!   generated, folders decoded on demand); [`Pipeline`] turns them into f32 batches with the
//!   paper's augmentation, in parallel, deterministically from `(seed, epoch, position)`.

mod augment;
mod cifar;
mod folder;
mod mnist;
pub mod rng;
mod synthetic;
pub mod tensors;
mod views;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

pub use augment::{Augment, AugmentKind, Batch, Mean, Pipeline, SMALL_IMAGE_SIDE};
pub use synthetic::SYNTHETIC_DEFAULT_LEN;
pub use views::{ten_crop_offsets, CropAt, TestViews, View};

/// A data set named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSpec {
    Cifar10(PathBuf),
    Cifar100(PathBuf),
    /// MNIST's IDX files (Fashion-MNIST's too), plain or gzipped.
    Mnist(PathBuf),
    Folder(PathBuf),
    /// `len` training images (the test split has a fifth as many).
    Synthetic {
        len: usize,
    },
    /// `textures[:N]`: the harder synthetic set (each class a pair of textures in random
    /// regions, with a distractor patch); `len` training images, a fifth as many test images.
    Textures {
        len: usize,
    },
}

impl FromStr for DataSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s, None),
        };
        let dir = |a: Option<&str>| match a {
            Some(d) if !d.is_empty() => Ok(PathBuf::from(d)),
            _ => Err(format!("`{s}`: write {kind}:DIR")),
        };
        match kind {
            "cifar10" => Ok(DataSpec::Cifar10(dir(arg)?)),
            "cifar100" => Ok(DataSpec::Cifar100(dir(arg)?)),
            "mnist" => Ok(DataSpec::Mnist(dir(arg)?)),
            "folder" => Ok(DataSpec::Folder(dir(arg)?)),
            "synthetic" | "textures" => {
                let len = match arg {
                    None => SYNTHETIC_DEFAULT_LEN,
                    Some(n) => match n.parse::<usize>() {
                        Ok(n) if (1..=10_000_000).contains(&n) => n,
                        _ => {
                            return Err(format!(
                                "`{s}`: the {kind} set's size must be a number from 1 to 10000000"
                            ))
                        }
                    },
                };
                Ok(if kind == "synthetic" {
                    DataSpec::Synthetic { len }
                } else {
                    DataSpec::Textures { len }
                })
            }
            _ => Err(format!(
                "unknown data `{s}`: expected cifar10:DIR, cifar100:DIR, mnist:DIR, folder:DIR, synthetic[:N] or textures[:N]"
            )),
        }
    }
}

impl fmt::Display for DataSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSpec::Cifar10(d) => write!(f, "cifar10:{}", d.display()),
            DataSpec::Cifar100(d) => write!(f, "cifar100:{}", d.display()),
            DataSpec::Mnist(d) => write!(f, "mnist:{}", d.display()),
            DataSpec::Folder(d) => write!(f, "folder:{}", d.display()),
            DataSpec::Synthetic { len } => write!(f, "synthetic:{len}"),
            DataSpec::Textures { len } => write!(f, "textures:{len}"),
        }
    }
}

/// Why data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}`: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("{0}")]
    Mismatch(String),
}

impl DataError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn invalid(path: &Path, message: impl Into<String>) -> Self {
        DataError::Invalid {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// An 8-bit image, channels first (`[C, H, W]`).
#[derive(Debug, Clone, PartialEq)]
pub struct RawImage {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<u8>,
}

/// Where a data set's images come from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// Decoded images of one size, `[len, C, H, W]` bytes (CIFAR).
    Memory {
        pixels: Arc<Vec<u8>>,
        shape: [usize; 3],
    },
    /// Image files, decoded on demand.
    Files { paths: Arc<Vec<PathBuf>> },
    /// Generated from the index.
    Synthetic(synthetic::Synthetic),
}

/// A set of labelled images: a source and the indices of it that belong to this set.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub(crate) name: String,
    pub(crate) source: Source,
    pub(crate) labels: Arc<Vec<u16>>,
    pub(crate) indices: Arc<Vec<u32>>,
    pub(crate) classes: usize,
    /// Whether the storage order is already a random order (CIFAR's files), so that the last
    /// images are a fair validation sample.
    pub(crate) random_order: bool,
}

impl Dataset {
    pub(crate) fn new(name: String, source: Source, labels: Vec<u16>, classes: usize) -> Self {
        let indices = (0..labels.len() as u32).collect();
        Dataset {
            name,
            source,
            labels: Arc::new(labels),
            indices: Arc::new(indices),
            classes,
            random_order: false,
        }
    }

    /// Mark the storage order as random (see [`Dataset::hold_out`]).
    pub(crate) fn in_random_order(mut self) -> Self {
        self.random_order = true;
        self
    }

    /// A human-readable name, such as `cifar10 train (45000 images)`.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The label of the `i`-th image.
    pub fn label(&self, i: usize) -> usize {
        self.labels[self.indices[i] as usize] as usize
    }

    /// The shape `[C, H, W]` of every image, when all have one (not for image folders).
    pub fn fixed_shape(&self) -> Option<[usize; 3]> {
        match &self.source {
            Source::Memory { shape, .. } => Some(*shape),
            Source::Synthetic(s) => Some(s.shape),
            Source::Files { .. } => None,
        }
    }

    /// Whether images are decoded from files of any size (ImageNet-style preprocessing).
    pub fn is_folder(&self) -> bool {
        matches!(self.source, Source::Files { .. })
    }

    /// The `i`-th image.
    pub fn image(&self, i: usize) -> Result<RawImage, DataError> {
        let j = self.indices[i] as usize;
        match &self.source {
            Source::Memory { pixels, shape } => {
                let n = shape[0] * shape[1] * shape[2];
                Ok(RawImage {
                    channels: shape[0],
                    height: shape[1],
                    width: shape[2],
                    pixels: pixels[j * n..(j + 1) * n].to_vec(),
                })
            }
            Source::Files { paths } => folder::decode(&paths[j]),
            Source::Synthetic(s) => Ok(s.image(j, self.labels[j] as usize)),
        }
    }

    /// Split off a validation part of about `fraction` of the images: returns (kept, held out).
    ///
    /// Where the storage order is already random (CIFAR's files), the held-out part is the last
    /// `round(n * fraction)` images, as the paper's 45k/5k split of CIFAR-10 is. Elsewhere (an
    /// image folder is stored class by class) it is a class-stratified random subset drawn
    /// from `seed`: each class gives `floor` or `ceil` of its share (the totals still add up to
    /// `round(n * fraction)`), and a class of two images or more keeps at least one in each
    /// part. Both parts keep the storage order. The same seed gives the same split, so a
    /// resumed run validates on the images it validated on before.
    pub fn hold_out(&self, fraction: f64, seed: u64) -> (Dataset, Dataset) {
        let n = self.len();
        let held = (((n as f64) * fraction).round() as usize).min(n);
        let (kept_idx, held_idx, how) = if self.random_order {
            (
                self.indices[..n - held].to_vec(),
                self.indices[n - held..].to_vec(),
                "the last",
            )
        } else {
            let (k, h) = stratified(self, held, seed);
            (k, h, "stratified")
        };
        let mut a = self.clone();
        let mut b = self.clone();
        a.name = format!("{} ({} for training)", self.name, kept_idx.len());
        b.name = format!("{} ({how} {} for validation)", self.name, held_idx.len());
        a.indices = Arc::new(kept_idx);
        b.indices = Arc::new(held_idx);
        (a, b)
    }

    /// The first `n` images only.
    pub fn take(&self, n: usize) -> Dataset {
        let mut a = self.clone();
        let n = n.min(self.len());
        a.indices = Arc::new(self.indices[..n].to_vec());
        a
    }
}

/// The class-stratified split of [`Dataset::hold_out`]: `held` positions of `d`'s indices,
/// spread over the classes by largest remainder, drawn at random within each class.
fn stratified(d: &Dataset, held: usize, seed: u64) -> (Vec<u32>, Vec<u32>) {
    let n = d.len();
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); d.classes.max(1)];
    for i in 0..n {
        let c = d.label(i);
        if c >= by_class.len() {
            by_class.resize(c + 1, Vec::new());
        }
        by_class[c].push(i);
    }
    // Each class's exact share, its floor, and the remainders that decide who gets one more.
    let share = |len: usize| len as f64 * held as f64 / n.max(1) as f64;
    let mut take: Vec<usize> = by_class
        .iter()
        .map(|v| share(v.len()).floor() as usize)
        .collect();
    let mut order: Vec<usize> = (0..by_class.len()).collect();
    order.sort_by(|&a, &b| {
        let ra = share(by_class[a].len()) - take[a] as f64;
        let rb = share(by_class[b].len()) - take[b] as f64;
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let mut left = held - take.iter().sum::<usize>().min(held);
    for &c in order.iter().cycle().take(order.len() * 2) {
        if left == 0 {
            break;
        }
        if take[c] < by_class[c].len() {
            take[c] += 1;
            left -= 1;
        }
    }
    // Every class of two or more images in both parts, where the total allows it: a class with
    // none held gets one from the class with the most held, and a class with all held gives
    // one back to the class with the most kept (still within one image of its share).
    if held > 0 {
        for c in 0..by_class.len() {
            let len = by_class[c].len();
            if len >= 2 && take[c] == 0 {
                if let Some(d) = (0..take.len())
                    .filter(|&d| take[d] >= 2)
                    .max_by_key(|&d| take[d])
                {
                    take[d] -= 1;
                    take[c] = 1;
                }
            } else if len >= 2 && take[c] == len {
                if let Some(d) = (0..take.len())
                    .filter(|&d| take[d] + 1 < by_class[d].len())
                    .max_by_key(|&d| by_class[d].len() - take[d])
                {
                    take[d] += 1;
                    take[c] -= 1;
                }
            }
        }
    }
    let mut is_held = vec![false; n];
    for (c, members) in by_class.iter().enumerate() {
        let mut m = members.clone();
        let mut rng = rng::Rng::keyed(seed, &[0x7661_6c69_6461_7465, c as u64]);
        // Partial Fisher-Yates: the first take[c] of a uniform shuffle.
        for i in 0..take[c] {
            let j = i + rng.below(m.len() - i);
            m.swap(i, j);
        }
        for &i in &m[..take[c]] {
            is_held[i] = true;
        }
    }
    let mut kept = Vec::with_capacity(n - held);
    let mut out = Vec::with_capacity(held);
    for (i, &h) in is_held.iter().enumerate() {
        if h {
            out.push(d.indices[i]);
        } else {
            kept.push(d.indices[i]);
        }
    }
    (kept, out)
}

/// A data set's splits.
#[derive(Debug, Clone)]
pub struct Splits {
    pub train: Dataset,
    /// A validation split of the data's own (an image folder's `val/` beside `test/`); else
    /// the validation images are held out of `train`.
    pub val: Option<Dataset>,
    /// The test split, where the data has one.
    pub test: Option<Dataset>,
}

/// What the network expects, to shape generated data and check loaded data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    /// `[C, H, W]`
    pub input: [usize; 3],
    pub classes: usize,
}

/// Read (and validate) the data set `spec`.
pub fn open(spec: &DataSpec, expect: Expect) -> Result<Splits, DataError> {
    let splits = match spec {
        DataSpec::Cifar10(dir) => cifar::open(dir, cifar::Kind::Ten)?,
        DataSpec::Cifar100(dir) => cifar::open(dir, cifar::Kind::Hundred)?,
        DataSpec::Mnist(dir) => mnist::open(dir)?,
        DataSpec::Folder(dir) => folder::open(dir)?,
        DataSpec::Synthetic { len } => synthetic::open(*len, expect, synthetic::Kind::Gratings),
        DataSpec::Textures { len } => synthetic::open(*len, expect, synthetic::Kind::Textures),
    };
    check(&splits, expect, spec)?;
    Ok(splits)
}

fn check(s: &Splits, expect: Expect, spec: &DataSpec) -> Result<(), DataError> {
    if s.train.classes() > expect.classes {
        return Err(DataError::Mismatch(format!(
            "`{spec}` has {} classes but the network has {} outputs; use --classes {}",
            s.train.classes(),
            expect.classes,
            s.train.classes()
        )));
    }
    if let Some([c, h, w]) = s.train.fixed_shape() {
        if [c, h, w] != expect.input {
            let [ec, eh, ew] = expect.input;
            return Err(DataError::Mismatch(format!(
                "`{spec}` holds {c}x{h}x{w} images but the network takes {ec}x{eh}x{ew}; use --input {c}x{h}x{w}"
            )));
        }
    } else if !(expect.input[0] == 3 || expect.input[0] == 1) {
        return Err(DataError::Mismatch(format!(
            "image folders give 1 or 3 channels, but the network takes {}",
            expect.input[0]
        )));
    }
    Ok(())
}
