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

use super::rng::Rng;
use super::{Dataset, Expect, RawImage, Source, Splits};

/// Training images when `synthetic` has no `:N`.
pub const SYNTHETIC_DEFAULT_LEN: usize = 5000;

const DATA_SEED: u64 = 0x5EED_A7C4;
/// Test images are drawn from indices above this, so they differ from training images.
const TEST_OFFSET: u64 = 1 << 40;

#[derive(Debug, Clone)]
pub(crate) struct Synthetic {
    pub(crate) shape: [usize; 3],
    classes: usize,
    offset: u64,
}

pub(crate) fn open(len: usize, expect: Expect) -> Splits {
    let make = |n: usize, offset: u64, split: &str| {
        let labels = (0..n).map(|j| (j % expect.classes) as u16).collect();
        let s = Synthetic {
            shape: expect.input,
            classes: expect.classes,
            offset,
        };
        let [c, h, w] = expect.input;
        Dataset::new(
            format!(
                "synthetic {split} ({n} images, {c}x{h}x{w}, {} classes)",
                expect.classes
            ),
            Source::Synthetic(s),
            labels,
            expect.classes,
        )
    };
    Splits {
        train: make(len, 0, "train"),
        test: Some(make((len / 5).max(1), TEST_OFFSET, "test")),
    }
}

impl Synthetic {
    pub(crate) fn image(&self, j: usize, label: usize) -> RawImage {
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
