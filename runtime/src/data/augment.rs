//! From raw images to f32 batches: mean subtraction and the paper's augmentation.
//!
//! - CIFAR-style (images already the network's size, section 4.2): subtract the per-pixel mean
//!   of the training split, then (training only) pad 4 zero pixels on each side, take a random
//!   32x32 crop and flip horizontally with probability 1/2.
//! - ImageNet-style (image folders, section 3.4): resize the shorter side to a random length in
//!   [256, 480] (scaled by input/224 for other input sizes), take a random crop of the input
//!   size, flip with probability 1/2, subtract the per-channel mean; for evaluation resize the
//!   shorter side to 256 (scaled likewise) and take the centre crop, whatever the image's size.
//!   Resizing is torchvision's default: bilinear with antialiasing (`antialias=True`, as PIL),
//!   the output size and the centre crop's offset rounded as torchvision rounds them;
//!   `runtime/tests/reference.rs` compares it with torchvision on float tensors and on PIL
//!   images.
//!
//! Pixel values are scaled to [0, 1] before the mean is subtracted. Randomness comes from a
//! stream keyed by `(seed, epoch, position in the epoch)`, so a batch is the same whichever
//! thread builds it and whether or not the run was resumed.

use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

use super::rng::Rng;
use super::{DataError, Dataset, RawImage};

/// Training-time augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Augment {
    /// None: the evaluation transform.
    None,
    /// Zero-pad `pad` pixels, random crop, horizontal flip (CIFAR).
    PadCropFlip { pad: usize },
    /// Shorter side to a random length in `[min, max]`, random crop, flip (ImageNet).
    ScaleCropFlip { min: usize, max: usize },
    /// [`Augment::PadCropFlip`] without the flip (`--no-flip`: digits, text).
    PadCrop { pad: usize },
    /// [`Augment::ScaleCropFlip`] without the flip.
    ScaleCrop { min: usize, max: usize },
}

/// The augmentation a run asks for (`--augment`); `Auto` until the data and the input size
/// pick one ([`AugmentKind::resolve`]). `config.json` records the resolved kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AugmentKind {
    Auto,
    /// Pad 4 zero pixels, random crop of the input size (section 4.2).
    Cifar,
    /// Random shorter side in [256, 480] scaled by input/224, random crop (section 3.4).
    Imagenet,
    None,
}

/// Inputs at most this many pixels a side get the CIFAR augmentation by default.
pub const SMALL_IMAGE_SIDE: usize = 64;

impl AugmentKind {
    pub fn name(self) -> &'static str {
        match self {
            AugmentKind::Auto => "auto",
            AugmentKind::Cifar => "cifar",
            AugmentKind::Imagenet => "imagenet",
            AugmentKind::None => "none",
        }
    }

    /// The kind itself, or for `Auto` the default: `cifar` for inputs of at most
    /// [`SMALL_IMAGE_SIDE`] pixels a side (28x28 digits, 32x32 CIFAR as PNG folders, under
    /// either recipe); for larger ones `imagenet` under the ImageNet recipe or on an image
    /// folder (images of any size), else `cifar` (fixed-size images at the input's size).
    pub fn resolve(self, imagenet_recipe: bool, data: &Dataset, input: [usize; 3]) -> Self {
        if self != AugmentKind::Auto {
            return self;
        }
        if input[1].min(input[2]) <= SMALL_IMAGE_SIDE {
            AugmentKind::Cifar
        } else if imagenet_recipe || data.is_folder() {
            AugmentKind::Imagenet
        } else {
            AugmentKind::Cifar
        }
    }
}

/// `config.json` of runs before `--augment` held `"augment": true|false`: true reads as
/// `auto`, false as `none`.
impl<'de> serde::Deserialize<'de> for AugmentKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Any {
            Bool(bool),
            Name(String),
        }
        Ok(match Any::deserialize(d)? {
            Any::Bool(true) => AugmentKind::Auto,
            Any::Bool(false) => AugmentKind::None,
            Any::Name(s) => match s.as_str() {
                "auto" => AugmentKind::Auto,
                "cifar" => AugmentKind::Cifar,
                "imagenet" => AugmentKind::Imagenet,
                "none" => AugmentKind::None,
                _ => {
                    return Err(serde::de::Error::custom(format!(
                        "unknown augmentation `{s}` (cifar, imagenet or none)"
                    )))
                }
            },
        })
    }
}

impl Augment {
    /// The transform of a resolved `kind` (`Auto` resolves as for `data`), with or without
    /// the horizontal flip.
    pub fn of(
        kind: AugmentKind,
        flip: bool,
        imagenet_recipe: bool,
        data: &Dataset,
        input: [usize; 3],
    ) -> Augment {
        match (kind.resolve(imagenet_recipe, data, input), flip) {
            (AugmentKind::Cifar, true) => Augment::PadCropFlip { pad: 4 },
            (AugmentKind::Cifar, false) => Augment::PadCrop { pad: 4 },
            (AugmentKind::Imagenet, flip) => {
                let (min, max) = scale_range(input);
                if flip {
                    Augment::ScaleCropFlip { min, max }
                } else {
                    Augment::ScaleCrop { min, max }
                }
            }
            (AugmentKind::None | AugmentKind::Auto, _) => Augment::None,
        }
    }

    /// The paper's augmentation for `data` feeding a network of input `[C, H, W]`.
    pub fn paper(data: &Dataset, input: [usize; 3]) -> Augment {
        if data.is_folder() {
            let (min, max) = scale_range(input);
            Augment::ScaleCropFlip { min, max }
        } else {
            Augment::PadCropFlip { pad: 4 }
        }
    }
}

pub(super) fn scale_range(input: [usize; 3]) -> (usize, usize) {
    let side = input[1].min(input[2]) as f64;
    (
        (side * 256.0 / 224.0).round() as usize,
        (side * 480.0 / 224.0).round() as usize,
    )
}

/// The mean subtracted from every input: per pixel (`[C, H, W]`) or per channel (`[C]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Mean {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl Mean {
    /// The mean of the training split: per pixel for fixed-size images (all of them), per
    /// channel for image folders (over up to 256 images, evenly spaced, evaluation transform).
    pub fn of(data: &Dataset, input: [usize; 3]) -> Result<Mean, DataError> {
        let [c, h, w] = input;
        if data.fixed_shape().is_some() {
            let n = data.len();
            let chunk = 512;
            let sums: Vec<Vec<f64>> = (0..n.div_ceil(chunk))
                .into_par_iter()
                .map(|k| {
                    let mut s = vec![0f64; c * h * w];
                    for i in k * chunk..((k + 1) * chunk).min(n) {
                        if let Ok(img) = data.image(i) {
                            for (a, &p) in s.iter_mut().zip(&img.pixels) {
                                *a += p as f64;
                            }
                        }
                    }
                    s
                })
                .collect();
            let mut total = vec![0f64; c * h * w];
            for s in sums {
                for (t, v) in total.iter_mut().zip(s) {
                    *t += v;
                }
            }
            let values = total
                .iter()
                .map(|&t| (t / (n.max(1) as f64 * 255.0)) as f32)
                .collect();
            Ok(Mean {
                shape: vec![c, h, w],
                values,
            })
        } else {
            let n = data.len().min(256);
            let step = data.len() as f64 / n.max(1) as f64;
            let picks: Vec<usize> = (0..n).map(|k| (k as f64 * step) as usize).collect();
            let sums: Result<Vec<Vec<f64>>, DataError> = picks
                .par_iter()
                .map(|&i| {
                    let img = data.image(i)?;
                    let mut out = vec![0f32; c * h * w];
                    let mut rng = Rng::new(0);
                    let how = Transform::plain(Augment::None, true);
                    transform(&img, input, how, &mut rng, &mut out, None);
                    let per = h * w;
                    Ok((0..c)
                        .map(|ch| {
                            out[ch * per..(ch + 1) * per]
                                .iter()
                                .map(|&v| v as f64)
                                .sum()
                        })
                        .collect())
                })
                .collect();
            let mut total = vec![0f64; c];
            for s in sums? {
                for (t, v) in total.iter_mut().zip(s) {
                    *t += v;
                }
            }
            let values = total
                .iter()
                .map(|&t| (t / (n.max(1) * h * w) as f64) as f32)
                .collect();
            Ok(Mean {
                shape: vec![c],
                values,
            })
        }
    }

    /// Subtract the mean from a batch `[N, C, H, W]` of inputs scaled to [0, 1], as training
    /// and evaluation do to every image: per pixel when the mean is `[C, H, W]` (the batch's
    /// image shape), per channel when it is `[C]`. Another shape is an error saying both.
    pub fn subtract(&self, x: Tensor<4>) -> Result<Tensor<4>, String> {
        let [n, c, h, w] = x.dims();
        let device = x.device();
        let m = Tensor::<1>::from_data(
            TensorData::new(self.values.clone(), [self.values.len()]),
            &device,
        );
        let m: Tensor<4> = match self.shape[..] {
            [mc, mh, mw] if [mc, mh, mw] == [c, h, w] && self.values.len() == c * h * w => {
                m.reshape([1, c, h, w])
            }
            [mc] if mc == c && self.values.len() == c => m.reshape([1, c, 1, 1]),
            _ => {
                return Err(format!(
                    "the input mean has shape {:?}, which does not fit images of shape [{c}, \
                     {h}, {w}]",
                    self.shape
                ))
            }
        };
        Ok(x - m.expand([n, c, h, w]))
    }
}

/// A batch ready for the network: `images` is `[N, C, H, W]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Vec<i64>,
    pub shape: [usize; 4],
}

/// Turns images of a data set into batches.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub input: [usize; 3],
    pub mean: Mean,
    pub augment: Augment,
    /// AlexNet's PCA lighting noise on training images (`paper-imagenet`): the standard
    /// deviation of its three coefficients, 0 for none. See [`lighting_shift`].
    pub lighting: f32,
    pub seed: u64,
}

/// The eigenvalues of the RGB covariance of ImageNet's training pixels (scaled to [0, 1]) and
/// their eigenvectors (columns), as fb.resnet.torch's `datasets/imagenet.lua` publishes them
/// for its `Lighting` transform (Krizhevsky et al. 2012, section 4.1; the augmentation the
/// ResNet paper's section 3.4 cites as "the standard colour augmentation in [21]").
pub const IMAGENET_EIGVAL: [f32; 3] = [0.2175, 0.0188, 0.0045];
pub const IMAGENET_EIGVEC: [[f32; 3]; 3] = [
    [-0.5675, 0.7192, 0.4009],
    [-0.5808, -0.0045, -0.8140],
    [-0.5836, -0.6948, 0.4203],
];

/// Seed key of the lighting stream, apart from the crop and flip stream (so that turning
/// lighting on or off leaves every crop and flip as it was).
const LIGHTING_STREAM: u64 = 0x4c49_4748_5400;

/// The colour shift AlexNet's lighting adds to every pixel of one image: `V (alpha * lambda)`
/// with `alpha` drawn from N(0, std) per eigenvector (one draw per image, as fb.resnet.torch
/// and AlexNet). RGB channel order.
pub fn lighting_shift(std: f32, rng: &mut Rng) -> [f32; 3] {
    let alpha: [f32; 3] = std::array::from_fn(|_| rng.normal() * std);
    std::array::from_fn(|ch| {
        (0..3)
            .map(|k| IMAGENET_EIGVEC[ch][k] * alpha[k] * IMAGENET_EIGVAL[k])
            .sum()
    })
}

impl Pipeline {
    /// The batch of the data set's images `items` (indices into `data`). With `train`, the
    /// augmentation is applied with randomness keyed by `(seed, epoch, first + k)` for the
    /// `k`-th item; otherwise the evaluation transform. Built in parallel.
    pub fn batch(
        &self,
        data: &Dataset,
        items: &[u32],
        train: bool,
        epoch: u64,
        first: u64,
    ) -> Result<Batch, DataError> {
        let [c, h, w] = self.input;
        let per = c * h * w;
        let mut images = vec![0f32; items.len() * per];
        let augment = if train { self.augment } else { Augment::None };
        // Folder images are resized ImageNet-style, unless the run pads and crops as for
        // CIFAR (then an image of the input's size is used as it is, in training and
        // evaluation alike).
        let folder = data.is_folder()
            && !matches!(
                self.augment,
                Augment::PadCropFlip { .. } | Augment::PadCrop { .. }
            );
        images
            .par_chunks_mut(per.max(1))
            .zip(items.par_iter().enumerate())
            .try_for_each(|(out, (k, &i))| {
                let img = data.image(i as usize)?;
                let mut rng = Rng::keyed(self.seed, &[epoch, first + k as u64]);
                let mean = Some(&self.mean);
                let shift = if train && self.lighting > 0.0 && c == 3 {
                    let key = [epoch, first + k as u64, LIGHTING_STREAM];
                    lighting_shift(self.lighting, &mut Rng::keyed(self.seed, &key))
                } else {
                    [0.0; 3]
                };
                let how = Transform {
                    augment,
                    folder,
                    shift,
                };
                transform(&img, self.input, how, &mut rng, out, mean);
                Ok::<(), DataError>(())
            })?;
        let labels = items
            .iter()
            .map(|&i| data.label(i as usize) as i64)
            .collect();
        Ok(Batch {
            images,
            labels,
            shape: [items.len(), c, h, w],
        })
    }
}

/// How [`transform`] treats one image.
#[derive(Debug, Clone, Copy)]
struct Transform {
    augment: Augment,
    /// An image folder's image: always resized (see [`transform`]).
    folder: bool,
    /// Added to every image pixel of channel `k` (not to padding): the lighting noise.
    shift: [f32; 3],
}

impl Transform {
    fn plain(augment: Augment, folder: bool) -> Self {
        Transform {
            augment,
            folder,
            shift: [0.0; 3],
        }
    }
}

/// Write one transformed image of shape `input` into `out`. An image of a `folder` is always
/// resized and cropped (ImageNet-style), even one that already has the input's size, as
/// torchvision's `Resize` and `CenterCrop` do; fixed-size data (CIFAR), and folder images of
/// a run with the CIFAR augmentation (`folder` false), are not resized when they have the
/// input's size.
fn transform(
    img: &RawImage,
    input: [usize; 3],
    how: Transform,
    rng: &mut Rng,
    out: &mut [f32],
    mean: Option<&Mean>,
) {
    let Transform {
        augment,
        folder,
        shift,
    } = how;
    let [c, h, w] = input;
    let same_size = img.height == h && img.width == w && img.channels == c;
    let per_pixel = mean.filter(|m| m.shape.len() == 3 && m.values.len() == c * h * w);
    let per_channel = mean.filter(|m| m.shape.len() == 1 && m.values.len() == c);
    let sub = |ch: usize, y: usize, x: usize| -> f32 {
        if let Some(m) = per_pixel {
            m.values[(ch * h + y) * w + x]
        } else if let Some(m) = per_channel {
            m.values[ch]
        } else {
            0.0
        }
    };
    let lit = |ch: usize| shift.get(ch).copied().unwrap_or(0.0);
    let scales = matches!(
        augment,
        Augment::ScaleCropFlip { .. } | Augment::ScaleCrop { .. }
    );
    if same_size && !folder && !scales {
        let (pad, flip) = match augment {
            Augment::PadCropFlip { pad } => (pad, rng.coin()),
            Augment::PadCrop { pad } => (pad, false),
            _ => (0, false),
        };
        let (oy, ox) = if pad > 0 {
            (rng.below(2 * pad + 1), rng.below(2 * pad + 1))
        } else {
            (pad, pad)
        };
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let xx = if flip { w - 1 - x } else { x };
                    let sy = (y + oy) as isize - pad as isize;
                    let sx = (xx + ox) as isize - pad as isize;
                    let v = if sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < w {
                        let (sy, sx) = (sy as usize, sx as usize);
                        img.pixels[(ch * h + sy) * w + sx] as f32 / 255.0 + lit(ch)
                            - sub(ch, sy, sx)
                    } else {
                        0.0
                    };
                    out[(ch * h + y) * w + x] = v;
                }
            }
        }
        return;
    }
    // Resize (shorter side to `side`, antialiased bilinear) and crop, as torchvision does.
    let (eval_side, _) = scale_range(input);
    let (side, random, flip) = match augment {
        Augment::ScaleCropFlip { min, max } => {
            let s = min + rng.below(max.saturating_sub(min) + 1);
            (s, true, rng.coin())
        }
        Augment::ScaleCrop { min, max } => {
            let s = min + rng.below(max.saturating_sub(min) + 1);
            (s, true, false)
        }
        _ => (eval_side.max(h.max(w)), false, false),
    };
    let (rh, rw) = resized_size(img.height, img.width, side);
    let (rh, rw) = (rh.max(h), rw.max(w));
    let (oy, ox) = if random {
        (rng.below(rh - h + 1), rng.below(rw - w + 1))
    } else {
        (centre_offset(rh - h), centre_offset(rw - w))
    };
    let resized = resize(img, rh, rw);
    let plane = rh * rw;
    for y in 0..h {
        for x in 0..w {
            let xx = if flip { w - 1 - x } else { x };
            let at = (y + oy) * rw + xx + ox;
            let sample = |ch: usize| resized[ch * plane + at];
            if c == 1 && img.channels >= 3 {
                let v = 0.299 * sample(0) + 0.587 * sample(1) + 0.114 * sample(2);
                out[y * w + x] = v - sub(0, y, x);
            } else {
                for ch in 0..c {
                    let v = sample(ch.min(img.channels - 1));
                    out[(ch * h + y) * w + x] = v + lit(ch) - sub(ch, y, x);
                }
            }
        }
    }
}

/// The size torchvision's `Resize(side)` gives an `ih` x `iw` image: the shorter side `side`,
/// the longer `side * long / short` rounded down (`int(...)` in torchvision).
pub(super) fn resized_size(ih: usize, iw: usize, side: usize) -> (usize, usize) {
    if iw <= ih {
        (side * ih / iw, side)
    } else {
        (side, side * iw / ih)
    }
}

/// Where torchvision's `center_crop` starts a crop that leaves `margin` pixels:
/// `int(round(margin / 2.0))`, and Python rounds half to even (a margin of 3 starts at 2, of 5
/// at 2, of 7 at 4).
pub(super) fn centre_offset(margin: usize) -> usize {
    let half = margin / 2;
    if margin % 2 == 1 && half % 2 == 1 {
        half + 1
    } else {
        half
    }
}

/// The image resized to `rh` x `rw`, scaled to [0, 1], `[channels, rh, rw]`: bilinear with
/// antialiasing, as torchvision's `resize(..., antialias=True)` (its default) and PIL's
/// bilinear resize: a triangle filter whose support widens by the factor when an image
/// shrinks (so every source pixel counts), and plain bilinear interpolation when it grows.
/// The `image` crate's `Triangle` filter is that filter; it runs in f32 here, without PIL's
/// rounding to 8 bits (`runtime/tests/reference.rs` compares both).
pub(super) fn resize(img: &RawImage, rh: usize, rw: usize) -> Vec<f32> {
    use image::imageops::{self, FilterType};
    use image::{ImageBuffer, Luma, Rgb};
    let (ih, iw, channels) = (img.height, img.width, img.channels);
    let plane = ih * iw;
    let scaled = |i: usize| img.pixels[i] as f32 / 255.0;
    if channels == 3 {
        // One pass over the three channels together.
        let hwc: Vec<f32> = (0..plane)
            .flat_map(|p| (0..3).map(move |ch| ch * plane + p))
            .map(scaled)
            .collect();
        let src = ImageBuffer::<Rgb<f32>, _>::from_raw(iw as u32, ih as u32, hwc)
            .expect("3 values a pixel");
        let out = imageops::resize(&src, rw as u32, rh as u32, FilterType::Triangle).into_raw();
        (0..3)
            .flat_map(|ch| out.iter().skip(ch).step_by(3).copied())
            .collect()
    } else {
        (0..channels)
            .flat_map(|ch| {
                let values = (ch * plane..(ch + 1) * plane).map(scaled).collect();
                let src =
                    ImageBuffer::<Luma<f32>, Vec<f32>>::from_raw(iw as u32, ih as u32, values)
                        .expect("1 value a pixel");
                imageops::resize(&src, rw as u32, rh as u32, FilterType::Triangle).into_raw()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(h: usize, w: usize) -> RawImage {
        RawImage {
            channels: 3,
            height: h,
            width: w,
            pixels: (0..3 * h * w).map(|i| (i % 251) as u8).collect(),
        }
    }

    #[test]
    fn evaluation_transform_of_a_same_size_image_is_scaling() {
        let i = img(4, 4);
        let mut out = vec![0f32; 48];
        transform(
            &i,
            [3, 4, 4],
            Transform::plain(Augment::None, false),
            &mut Rng::new(1),
            &mut out,
            None,
        );
        let want: Vec<f32> = i.pixels.iter().map(|&p| p as f32 / 255.0).collect();
        assert_eq!(out, want);
    }

    #[test]
    fn pad_crop_flip_keeps_pixels_or_zeros() {
        let i = img(8, 8);
        let mut out = vec![0f32; 3 * 64];
        let mut differs = false;
        for s in 0..20 {
            transform(
                &i,
                [3, 8, 8],
                Transform::plain(Augment::PadCropFlip { pad: 4 }, false),
                &mut Rng::new(s),
                &mut out,
                None,
            );
            let allowed: Vec<f32> = i.pixels.iter().map(|&p| p as f32 / 255.0).collect();
            assert!(out.iter().all(|v| *v == 0.0 || allowed.contains(v)));
            differs |= out != allowed;
        }
        assert!(differs, "augmentation changes the image");
    }

    #[test]
    fn sizes_and_crop_offsets_round_as_torchvisions() {
        // torchvision: new_long = int(side * long / short); crop_top = int(round(margin / 2)).
        assert_eq!(resized_size(27, 40, 18), (18, 26));
        assert_eq!(resized_size(12, 13, 18), (18, 19));
        assert_eq!(resized_size(46, 36, 18), (23, 18));
        assert_eq!(resized_size(375, 500, 256), (256, 341));
        let offsets: Vec<usize> = (0..9).map(centre_offset).collect();
        assert_eq!(offsets, [0, 0, 1, 2, 2, 2, 3, 4, 4]);
    }

    #[test]
    fn shrinking_weighs_every_source_pixel() {
        // A white column (x = 7) on black, 16 columns shrunk to 4. Plain bilinear samples at
        // x = 1.5, 5.5, 9.5, 13.5 and never sees column 7 (all outputs 0); the antialiased
        // triangle, half-width 4 around 6 and 10 (outputs 1 and 2, weights summing to 4
        // there), gives it 0.625 / 4 and 0.375 / 4.
        let (h, w) = (4, 16);
        let mut pixels = vec![0u8; 3 * h * w];
        for ch in 0..3 {
            for y in 0..h {
                pixels[(ch * h + y) * w + 7] = 255;
            }
        }
        let i = RawImage {
            channels: 3,
            height: h,
            width: w,
            pixels,
        };
        let out = resize(&i, 2, 4);
        let want = [0.0, 5.0 / 32.0, 3.0 / 32.0, 0.0];
        for row in out.chunks(4) {
            let d = row
                .iter()
                .zip(want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(d < 1e-6, "{row:?}, not {want:?}");
        }
    }

    #[test]
    fn resize_and_centre_crop_give_the_input_size() {
        let i = img(30, 50);
        let mut out = vec![-1f32; 3 * 16 * 16];
        transform(
            &i,
            [3, 16, 16],
            Transform::plain(Augment::None, false),
            &mut Rng::new(0),
            &mut out,
            None,
        );
        assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
        let mut out2 = out.clone();
        transform(
            &i,
            [3, 16, 16],
            Transform::plain(Augment::ScaleCropFlip { min: 18, max: 34 }, false),
            &mut Rng::new(3),
            &mut out2,
            None,
        );
        assert!(out2.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    #[allow(clippy::needless_range_loop)] // matrix indices read best as indices
    fn lighting_draws_alexnets_coefficients_along_imagenets_eigenvectors() {
        // The published eigenvectors are orthonormal (to their four decimals) ...
        for a in 0..3 {
            for b in 0..3 {
                let dot: f32 = (0..3)
                    .map(|ch| IMAGENET_EIGVEC[ch][a] * IMAGENET_EIGVEC[ch][b])
                    .sum();
                let want = if a == b { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-3, "columns {a}, {b}: {dot}");
            }
        }
        // ... so each shift V (alpha * lambda) gives back alpha = V^T shift / lambda, drawn
        // from N(0, std).
        let mut rng = Rng::new(5);
        let n = 4000;
        let (mut sum, mut sq) = ([0f64; 3], [0f64; 3]);
        for _ in 0..n {
            let s = lighting_shift(0.1, &mut rng);
            for k in 0..3 {
                let a: f32 = (0..3).map(|ch| IMAGENET_EIGVEC[ch][k] * s[ch]).sum::<f32>()
                    / IMAGENET_EIGVAL[k];
                sum[k] += a as f64;
                sq[k] += (a * a) as f64;
            }
        }
        for k in 0..3 {
            let mean = sum[k] / n as f64;
            let sd = (sq[k] / n as f64 - mean * mean).sqrt();
            assert!(
                mean.abs() < 0.01 && (sd - 0.1).abs() < 0.01,
                "alpha {k}: {mean} ± {sd}"
            );
        }
    }

    #[test]
    fn lighting_shifts_the_image_pixels_not_the_padding() {
        let mut i = img(8, 8);
        i.pixels.iter_mut().for_each(|p| *p = (*p).max(1));
        let shift = [0.05, -0.1, 0.2];
        let run = |shift: [f32; 3]| {
            let mut out = vec![0f32; 3 * 64];
            let how = Transform {
                augment: Augment::PadCropFlip { pad: 4 },
                folder: false,
                shift,
            };
            transform(&i, [3, 8, 8], how, &mut Rng::new(7), &mut out, None);
            out
        };
        let (plain, lit) = (run([0.0; 3]), run(shift));
        let padded = plain.iter().filter(|&&v| v == 0.0).count();
        assert!(padded > 0 && padded < 3 * 64, "the crop shows some padding");
        for (k, (a, b)) in plain.iter().zip(&lit).enumerate() {
            let want = if *a == 0.0 { 0.0 } else { shift[k / 64] };
            assert!((b - a - want).abs() < 1e-6, "pixel {k}: {a} -> {b}");
        }
    }
}
