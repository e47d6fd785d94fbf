//! `synthetic[:N]`: a seeded image classification set that needs no download.
//!
//! Each class is an oriented sinusoidal grating with its own orientation (classes spread over
//! 180°), spatial frequency (1.5, 2.5 or 3.5 cycles per image width) and colour; each image
//! draws its own phase, contrast (0.6–1.0), brightness shift (±0.1) and Gaussian pixel noise
//! (σ = 0.12 of the range). A convolutional network learns it in a few hundred steps, yet one
//! pixel alone says little about the class. The images are the network's input size
//! (3x32x32 and 10 classes for the CIFAR networks); `N` training images (default 5000) and N/5
//! test images (at least 1), labels balanced (`index mod classes`). The data are the same for
//! every run (a fixed data seed), so runs with different `--seed` see the same images.
//!
//! `textures[:N]` is a harder set of the same size and shape, for experiments in which the
//! gratings are learned too fast to tell networks apart. Its difficulty comes from three
//! principles, not from tuning against any network: (1) a class is a *conjunction* of two
//! textures (class k shows texture k and texture k+1, mod the class count), so every texture
//! appears in two classes and no single texture detector names the class; (2) the two textures
//! fill the two sides of a random straight boundary, so where each one is varies from image
//! to image; (3) less signal: a distractor patch of a random texture (possibly one of another
//! class) covers a random disc, contrasts are lower (0.4–0.8) and the noise is higher (σ = 0.15).
//! The textures themselves are gratings of 10 orientations and 3 frequencies, as above.

use super::rng::Rng;
use super::{Dataset, Expect, RawImage, Source, Splits};

/// Training images when `synthetic` has no `:N`.
pub const SYNTHETIC_DEFAULT_LEN: usize = 5000;

const DATA_SEED: u64 = 0x5EED_A7C4;
/// Test images are drawn from indices above this, so they differ from training images.
const TEST_OFFSET: u64 = 1 << 40;

/// Which generated set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `synthetic`: one grating per class.
    Gratings,
    /// `textures`: two textures per class in random regions, and a distractor.
    Textures,
}

#[derive(Debug, Clone)]
pub(crate) struct Synthetic {
    pub(crate) shape: [usize; 3],
    classes: usize,
    offset: u64,
    kind: Kind,
}

pub(crate) fn open(len: usize, expect: Expect, kind: Kind) -> Splits {
    let make = |n: usize, offset: u64, split: &str| {
        let labels = (0..n).map(|j| (j % expect.classes) as u16).collect();
        let s = Synthetic {
            shape: expect.input,
            classes: expect.classes,
            offset,
            kind,
        };
        let [c, h, w] = expect.input;
        let name = match kind {
            Kind::Gratings => "synthetic",
            Kind::Textures => "textures",
        };
        Dataset::new(
            format!(
                "{name} {split} ({n} images, {c}x{h}x{w}, {} classes)",
                expect.classes
            ),
            Source::Synthetic(s),
            labels,
            expect.classes,
        )
    };
    Splits {
        train: make(len, 0, "train"),
        val: None,
        test: Some(make((len / 5).max(1), TEST_OFFSET, "test")),
    }
}

impl Synthetic {
    pub(crate) fn image(&self, j: usize, label: usize) -> RawImage {
        match self.kind {
            Kind::Gratings => self.grating_image(j, label),
            Kind::Textures => self.texture_image(j, label),
        }
    }

    fn grating_image(&self, j: usize, label: usize) -> RawImage {
        let [c, h, w] = self.shape;
        let k = label.min(self.classes.saturating_sub(1)) as u64;
        let mut class = Rng::keyed(DATA_SEED, &[k]);
        let theta = std::f32::consts::PI * (k as f32 + 0.3 * class.unit()) / self.classes as f32;
        let freq = 1.5 + (k % 3) as f32;
        let colour: Vec<f32> = (0..c).map(|_| 0.3 + 0.7 * class.unit()).collect();
        let sign: Vec<f32> = (0..c)
            .map(|_| if class.coin() { 1.0 } else { -1.0 })
            .collect();
        let mut r = Rng::keyed(DATA_SEED, &[1 + k, self.offset + j as u64]);
        let phase = std::f32::consts::TAU * r.unit();
        let contrast = 0.6 + 0.4 * r.unit();
        let shift = 0.2 * r.unit() - 0.1;
        let (sin_t, cos_t) = theta.sin_cos();
        let scale = std::f32::consts::TAU * freq / w.max(1) as f32;
        let mut pixels = vec![0u8; c * h * w];
        for y in 0..h {
            for x in 0..w {
                let wave = (scale * (x as f32 * cos_t + y as f32 * sin_t) + phase).sin();
                for ch in 0..c {
                    let v = 0.5
                        + 0.3 * contrast * sign[ch] * colour[ch] * wave
                        + shift
                        + 0.12 * r.normal();
                    pixels[(ch * h + y) * w + x] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                }
            }
        }
        RawImage {
            channels: c,
            height: h,
            width: w,
            pixels,
        }
    }
}

/// Keeps the textures' random streams apart from the gratings'.
const TEXTURE_SEED: u64 = DATA_SEED ^ 0x7E47_0000;

/// One texture of the `textures` set: a grating with its own orientation, frequency and colour.
struct Texture {
    sin_t: f32,
    cos_t: f32,
    /// Radians per pixel.
    scale: f32,
    /// Per channel: sign × colour weight.
    colour: Vec<f32>,
}

impl Texture {
    fn new(m: u64, count: usize, channels: usize, width: usize) -> Self {
        let mut r = Rng::keyed(TEXTURE_SEED, &[m]);
        let theta = std::f32::consts::PI * (m as f32 + 0.5 * r.unit()) / count as f32;
        let freq = 2.0 + (m % 3) as f32;
        let colour = (0..channels)
            .map(|_| {
                let c = 0.3 + 0.7 * r.unit();
                if r.coin() {
                    c
                } else {
                    -c
                }
            })
            .collect();
        let (sin_t, cos_t) = theta.sin_cos();
        Texture {
            sin_t,
            cos_t,
            scale: std::f32::consts::TAU * freq / width.max(1) as f32,
            colour,
        }
    }

    fn wave(&self, x: f32, y: f32, phase: f32) -> f32 {
        (self.scale * (x * self.cos_t + y * self.sin_t) + phase).sin()
    }
}

impl Synthetic {
    fn texture_image(&self, j: usize, label: usize) -> RawImage {
        let [c, h, w] = self.shape;
        let count = self.classes.max(1);
        let k = label.min(count - 1) as u64;
        let tex = |m: u64| Texture::new(m, count, c, w);
        let (a, b) = (tex(k), tex((k + 1) % count as u64));
        let mut r = Rng::keyed(TEXTURE_SEED, &[1 + k, self.offset + j as u64]);
        let decoy = tex((r.unit() * count as f32) as u64 % count as u64);
        // The boundary: a line at a random angle, within a quarter of the size of the centre.
        let phi = std::f32::consts::TAU * r.unit();
        let (sin_p, cos_p) = phi.sin_cos();
        let size = w.min(h).max(1) as f32;
        let d = (r.unit() - 0.5) * 0.5 * size;
        let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
        // The distractor disc.
        let (dx, dy) = (r.unit() * w as f32, r.unit() * h as f32);
        let radius = size * (0.2 + 0.05 * r.unit());
        let phases = [
            std::f32::consts::TAU * r.unit(),
            std::f32::consts::TAU * r.unit(),
            std::f32::consts::TAU * r.unit(),
        ];
        let contrast = [
            0.4 + 0.4 * r.unit(),
            0.4 + 0.4 * r.unit(),
            0.4 + 0.4 * r.unit(),
        ];
        let shift = 0.2 * r.unit() - 0.1;
        let mut pixels = vec![0u8; c * h * w];
        for y in 0..h {
            for x in 0..w {
                let (xf, yf) = (x as f32, y as f32);
                let (t, i) = if (xf - dx).powi(2) + (yf - dy).powi(2) < radius * radius {
                    (&decoy, 2)
                } else if (xf - cx) * cos_p + (yf - cy) * sin_p > d {
                    (&a, 0)
                } else {
                    (&b, 1)
                };
                let wave = t.wave(xf, yf, phases[i]);
                for ch in 0..c {
                    let v =
                        0.5 + 0.3 * contrast[i] * t.colour[ch] * wave + shift + 0.15 * r.normal();
                    pixels[(ch * h + y) * w + x] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                }
            }
        }
        RawImage {
            channels: c,
            height: h,
            width: w,
            pixels,
        }
    }
}
