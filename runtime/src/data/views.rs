//! Test-time views of an image: the paper's ImageNet testing (section 3.4).
//!
//! - **10-crop** (`archc eval --ten-crop`, AlexNet's testing): the image resized so that its
//!   shorter side is the evaluation side (256 for a 224 input, scaled as the centre crop's),
//!   then the four corner crops and the centre crop of the input's size, and the same five
//!   crops of the horizontally flipped image: torchvision's `ten_crop` (`five_crop` gives
//!   top-left, top-right, bottom-left, bottom-right, centre; the flipped image's five follow).
//! - **Multi-scale, fully convolutional** (`--scales 224,256,384,480,640`): the whole image,
//!   resized so that its shorter side is each scale in turn, goes through the network at that
//!   size. A network with global average pooling before its classifier computes, at a larger
//!   size, the classifier's scores averaged over every position of its last feature map: the
//!   fully convolutional form of [Sermanet et al. 2014; Simonyan & Zisserman 2015] that the
//!   paper cites.
//! - Both: the ten crops at each scale (the shorter side resized to the scale first).
//!
//! The caller averages the views' class probabilities (softmax of the logits). Resizing is the
//! training pipeline's (antialiased bilinear, torchvision's rounding); pixels are scaled to
//! [0, 1] and the mean subtracted as in evaluation. A per-pixel mean (`[C, H, W]`, fixed-size
//! data) fits only views of the input's size.

use super::augment::{centre_offset, resize, resized_size, scale_range};
use super::{Mean, RawImage};

/// Which views `archc eval` averages for each image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TestViews {
    /// The ten crops (corners, centre, and their mirror images).
    pub ten_crop: bool,
    /// Shorter sides to test at; empty: the evaluation side only.
    pub scales: Vec<usize>,
}

/// One view: an image of shape `[C, H, W]`, ready for the network.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub shape: [usize; 3],
    pub pixels: Vec<f32>,
}

/// Where a crop starts in the resized image, and whether it is mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropAt {
    pub top: usize,
    pub left: usize,
    pub flip: bool,
}

impl TestViews {
    /// The plain evaluation transform (resize and centre crop): no extra view.
    pub fn is_plain(&self) -> bool {
        !self.ten_crop && self.scales.is_empty()
    }

    /// How many views an image gives.
    pub fn per_image(&self) -> usize {
        self.scales.len().max(1) * if self.ten_crop { 10 } else { 1 }
    }

    /// The shorter sides to resize to, for a network of input `[C, H, W]`.
    fn sides(&self, input: [usize; 3]) -> Vec<usize> {
        if self.scales.is_empty() {
            vec![scale_range(input).0.max(input[1].max(input[2]))]
        } else {
            self.scales.clone()
        }
    }

    /// Say what is wrong with these views for a network of input `[C, H, W]` (a scale too
    /// small for a ten-crop, a scale of zero), before any image is read.
    pub fn check(&self, input: [usize; 3]) -> Result<(), String> {
        let [_, h, w] = input;
        for &s in &self.scales {
            if s == 0 {
                return Err("a scale of 0 pixels".into());
            }
            if self.ten_crop && s < h.max(w) {
                return Err(format!(
                    "scale {s} is smaller than the {h}x{w} crops of --ten-crop (each scale must \
                     be at least {})",
                    h.max(w)
                ));
            }
        }
        Ok(())
    }

    /// The views of `img` for a network of input `[C, H, W]`, in order: per scale, the ten
    /// crops (torchvision's order) or the whole resized image.
    pub fn views(
        &self,
        img: &RawImage,
        input: [usize; 3],
        mean: &Mean,
    ) -> Result<Vec<View>, String> {
        let [c, h, w] = input;
        let mut out = Vec::with_capacity(self.per_image());
        for side in self.sides(input) {
            let (rh, rw) = resized_size(img.height, img.width, side);
            let planes = channels(&resize(img, rh, rw), img.channels, c, rh * rw);
            if self.ten_crop {
                let (rh, rw) = (rh.max(h), rw.max(w));
                for at in ten_crop_offsets(rh, rw, h, w) {
                    let pixels = crop(&planes, [c, rh, rw], [h, w], at);
                    out.push(subtract(
                        View {
                            shape: input,
                            pixels,
                        },
                        mean,
                    )?);
                }
            } else {
                out.push(subtract(
                    View {
                        shape: [c, rh, rw],
                        pixels: planes,
                    },
                    mean,
                )?);
            }
        }
        Ok(out)
    }
}

/// torchvision's `ten_crop` of an `rh` x `rw` image into `h` x `w` crops: `five_crop`'s
/// top-left, top-right, bottom-left, bottom-right and centre (the centre rounded as
/// `center_crop` rounds it), then the same five of the mirrored image. A crop of the mirrored
/// image at `left` is the mirror of the original's crop at `rw - w - left`.
pub fn ten_crop_offsets(rh: usize, rw: usize, h: usize, w: usize) -> [CropAt; 10] {
    let (dy, dx) = (rh - h, rw - w);
    let five = [
        (0, 0),
        (0, dx),
        (dy, 0),
        (dy, dx),
        (centre_offset(dy), centre_offset(dx)),
    ];
    std::array::from_fn(|k| {
        let (top, left) = five[k % 5];
        if k < 5 {
            CropAt {
                top,
                left,
                flip: false,
            }
        } else {
            CropAt {
                top,
                left: dx - left,
                flip: true,
            }
        }
    })
}

/// `[C, H, W]` planes of the network's channel count from the resized image's: a grey input
/// from colour (ITU-R 601 luma, as the training pipeline), else channel `k` from `min(k, last)`.
fn channels(resized: &[f32], have: usize, want: usize, plane: usize) -> Vec<f32> {
    if want == have {
        return resized.to_vec();
    }
    let mut out = vec![0f32; want * plane];
    for p in 0..plane {
        if want == 1 && have >= 3 {
            out[p] =
                0.299 * resized[p] + 0.587 * resized[plane + p] + 0.114 * resized[2 * plane + p];
        } else {
            for ch in 0..want {
                out[ch * plane + p] = resized[ch.min(have - 1) * plane + p];
            }
        }
    }
    out
}

/// The `h` x `w` crop of `[C, RH, RW]` planes at `at`, mirrored when `at.flip`.
fn crop(planes: &[f32], [c, rh, rw]: [usize; 3], [h, w]: [usize; 2], at: CropAt) -> Vec<f32> {
    let mut out = vec![0f32; c * h * w];
    for ch in 0..c {
        for y in 0..h {
            let row = &planes[(ch * rh + at.top + y) * rw + at.left..][..w];
            let dst = &mut out[(ch * h + y) * w..][..w];
            if at.flip {
                for (d, s) in dst.iter_mut().zip(row.iter().rev()) {
                    *d = *s;
                }
            } else {
                dst.copy_from_slice(row);
            }
        }
    }
    out
}

fn subtract(mut v: View, mean: &Mean) -> Result<View, String> {
    let [c, h, w] = v.shape;
    let plane = h * w;
    match mean.shape[..] {
        [mc] if mc == c => {
            for ch in 0..c {
                for p in &mut v.pixels[ch * plane..(ch + 1) * plane] {
                    *p -= mean.values[ch];
                }
            }
        }
        [mc, mh, mw] if [mc, mh, mw] == [c, h, w] => {
            for (p, m) in v.pixels.iter_mut().zip(&mean.values) {
                *p -= m;
            }
        }
        _ => {
            return Err(format!(
                "the input mean has shape {:?} (per pixel, from fixed-size training images), \
                 which does not fit a {c}x{h}x{w} view; testing at other scales needs a \
                 per-channel mean (image folders)",
                mean.shape
            ))
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `h` x `w` colour image whose red channel is its row, green its column, blue 7.
    fn coords(h: usize, w: usize) -> RawImage {
        let mut pixels = vec![7u8; 3 * h * w];
        for y in 0..h {
            for x in 0..w {
                pixels[y * w + x] = y as u8;
                pixels[h * w + y * w + x] = x as u8;
            }
        }
        RawImage {
            channels: 3,
            height: h,
            width: w,
            pixels,
        }
    }

    fn zero_mean() -> Mean {
        Mean {
            shape: vec![3],
            values: vec![0.0; 3],
        }
    }

    #[test]
    fn ten_crops_land_at_the_corners_the_centre_and_their_mirrors() {
        // An image already at the evaluation side (shorter side 9 for a 8x8 input: 8 * 256 /
        // 224 = 9.14, rounded to 9) is not rescaled, so each crop's pixels say where it is.
        let img = coords(9, 12);
        let views = TestViews {
            ten_crop: true,
            scales: vec![],
        };
        let input = [3, 8, 8];
        let v = views.views(&img, input, &zero_mean()).unwrap();
        assert_eq!(v.len(), 10);
        // (top, left) of each crop in the original image, and whether it is mirrored.
        let want = [
            (0, 0, false),
            (0, 4, false),
            (1, 0, false),
            (1, 4, false),
            (0, 2, false), // centre: margin 1 rounds to 0 (half to even), margin 4 to 2
            (0, 4, true),  // the mirrored image's top-left is the original's top-right
            (0, 0, true),
            (1, 4, true),
            (1, 0, true),
            (0, 2, true),
        ];
        for (k, (view, (top, left, flip))) in v.iter().zip(want).enumerate() {
            assert_eq!(view.shape, input);
            let px = |ch: usize, y: usize, x: usize| {
                (view.pixels[(ch * 8 + y) * 8 + x] * 255.0).round() as usize
            };
            for y in 0..8 {
                for x in 0..8 {
                    let sx = if flip { left + 7 - x } else { left + x };
                    assert_eq!(px(0, y, x), top + y, "view {k} row at ({y}, {x})");
                    assert_eq!(px(1, y, x), sx, "view {k} column at ({y}, {x})");
                    assert_eq!(px(2, y, x), 7);
                }
            }
        }
    }

    #[test]
    fn offsets_follow_torchvision_five_crop() {
        // torchvision.transforms.functional.five_crop on 256x341 for 224: tl (0,0),
        // tr (0,117), bl (32,0), br (32,117), centre (16, round(58.5) = 58). Checked with
        // torchvision 0.24's `ten_crop` on a tensor whose channels are its row and column
        // numbers (the mirrored five start at columns 117, 0, 117, 0, 59).
        let o = ten_crop_offsets(256, 341, 224, 224);
        let five: Vec<(usize, usize)> = o[..5].iter().map(|c| (c.top, c.left)).collect();
        assert_eq!(five, [(0, 0), (0, 117), (32, 0), (32, 117), (16, 58)]);
        // Mirrored: the flipped image's crop at x is the original's at 117 - x.
        let mirrored: Vec<(usize, usize, bool)> =
            o[5..].iter().map(|c| (c.top, c.left, c.flip)).collect();
        assert_eq!(
            mirrored,
            [
                (0, 117, true),
                (0, 0, true),
                (32, 117, true),
                (32, 0, true),
                (16, 59, true)
            ]
        );
    }

    #[test]
    fn scales_resize_the_whole_image() {
        let img = coords(30, 40);
        let views = TestViews {
            ten_crop: false,
            scales: vec![16, 24],
        };
        let v = views.views(&img, [3, 8, 8], &zero_mean()).unwrap();
        let shapes: Vec<[usize; 3]> = v.iter().map(|v| v.shape).collect();
        // Shorter side to the scale, the longer int(side * 40 / 30).
        assert_eq!(shapes, [[3, 16, 21], [3, 24, 32]]);
        let both = TestViews {
            ten_crop: true,
            scales: vec![16, 24],
        };
        let v = both.views(&img, [3, 8, 8], &zero_mean()).unwrap();
        assert_eq!(v.len(), 20);
        assert!(v.iter().all(|v| v.shape == [3, 8, 8]));
    }

    #[test]
    fn bad_scales_and_means_are_refused() {
        let both = TestViews {
            ten_crop: true,
            scales: vec![6],
        };
        assert!(both.check([3, 8, 8]).unwrap_err().contains("smaller"));
        let zero = TestViews {
            ten_crop: false,
            scales: vec![0],
        };
        assert!(zero.check([3, 8, 8]).is_err());
        let per_pixel = Mean {
            shape: vec![3, 8, 8],
            values: vec![0.0; 192],
        };
        let scales = TestViews {
            ten_crop: false,
            scales: vec![12],
        };
        let e = scales
            .views(&coords(8, 8), [3, 8, 8], &per_pixel)
            .unwrap_err();
        assert!(e.contains("per-channel mean"), "{e}");
    }
}
