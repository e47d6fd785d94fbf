//! Max, average and adaptive average pooling over NCHW planes, forward and backward, with
//! PyTorch's rules: windows that start in the padding, `ceil_mode`'s last window (kept only when
//! it starts inside the input or its left padding), `count_include_pad`'s divisor (the window
//! clipped to the padded input), the max's first index on ties and NaN winning, adaptive bins
//! `floor(i·H/OH) … ceil((i+1)·H/OH)`.
//!
//! Every plane is independent: the work is split over groups of whole planes (images ×
//! channels), so the backward passes write their planes without atomics or locks. The max
//! pool's indices are `u32` positions within the input plane (burn-flex stores `i64` positions:
//! half the memory kept for the backward).

use rayon::prelude::*;

use super::written;

/// Planes per parallel task: at least this many values, so that small planes (2x2 at the end of
/// a network) are not one task each.
const MIN_TASK: usize = 1 << 12;

/// Whole planes of `plane` values per task.
fn planes_per_task(plane: usize) -> usize {
    MIN_TASK.div_ceil(plane.max(1))
}

/// A 2-d pooling window over an input `[n, c, h, w]`; output `[n, c, ho, wo]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolShape {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub ho: usize,
    pub wo: usize,
}

/// One axis's output size with PyTorch's rule, or `None` when the window does not fit.
fn out_size(input: usize, kernel: usize, stride: usize, pad: usize, ceil: bool) -> Option<usize> {
    let padded = input + 2 * pad;
    if kernel == 0 || stride == 0 || padded < kernel || pad > kernel / 2 {
        return None;
    }
    let span = padded - kernel;
    let mut out = if ceil {
        span.div_ceil(stride)
    } else {
        span / stride
    } + 1;
    // The last window must start inside the input or its left padding.
    if ceil && (out - 1) * stride >= input + pad {
        out -= 1;
    }
    Some(out)
}

impl PoolShape {
    /// The pool of `x` (`[n, c, h, w]`) with this window; `None` when a size is zero, the
    /// padding exceeds half the kernel (PyTorch refuses it too) or the window does not fit.
    pub fn new(
        x: [usize; 4],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        ceil_mode: bool,
    ) -> Option<Self> {
        let [n, c, h, w] = x;
        let ho = out_size(h, kernel[0], stride[0], padding[0], ceil_mode)?;
        let wo = out_size(w, kernel[1], stride[1], padding[1], ceil_mode)?;
        Some(PoolShape {
            n,
            c,
            h,
            w,
            kernel,
            stride,
            padding,
            ho,
            wo,
        })
    }

    fn planes(&self) -> usize {
        self.n * self.c
    }

    fn in_plane(&self) -> usize {
        self.h * self.w
    }

    fn out_plane(&self) -> usize {
        self.ho * self.wo
    }

    /// Output row `o`'s input rows: `(first, end)` clipped to the input, and the divisor's
    /// extent with the padding counted (clipped to the padded input, as PyTorch's).
    fn rows(&self, o: usize) -> (usize, usize, usize) {
        span(o, self.kernel[0], self.stride[0], self.padding[0], self.h)
    }

    fn cols(&self, o: usize) -> (usize, usize, usize) {
        span(o, self.kernel[1], self.stride[1], self.padding[1], self.w)
    }
}

/// `(first, end, padded extent)` of output position `o`'s window along one axis.
fn span(o: usize, kernel: usize, stride: usize, pad: usize, input: usize) -> (usize, usize, usize) {
    let start = (o * stride) as isize - pad as isize;
    let padded_end = (start + kernel as isize).min((input + pad) as isize);
    let extent = (padded_end - start) as usize;
    let first = start.max(0) as usize;
    let end = (padded_end.min(input as isize) as usize).max(first);
    (first, end, extent)
}

/// Max pooling: the output and, for each output value, the position within its input plane of
/// the value it took (the first of equal maxima; a NaN wins, the last one).
pub fn max_pool2d(x: &[f32], s: &PoolShape) -> (Vec<f32>, Vec<u32>) {
    assert!(
        s.in_plane() <= u32::MAX as usize,
        "a plane of over 2^32 values"
    );
    let (ip, op) = (s.in_plane(), s.out_plane());
    let per = planes_per_task(op);
    let len = s.planes() * op;
    let (mut out, mut indices) = (vec![0.0f32; len], vec![0u32; len]);
    out.par_chunks_mut(per * op)
        .zip(indices.par_chunks_mut(per * op))
        .enumerate()
        .for_each(|(t, (out, idx))| {
            for (j, (o, id)) in out.chunks_mut(op).zip(idx.chunks_mut(op)).enumerate() {
                let plane = &x[(t * per + j) * ip..][..ip];
                for oh in 0..s.ho {
                    let (r0, r1, _) = s.rows(oh);
                    for ow in 0..s.wo {
                        let (c0, c1, _) = s.cols(ow);
                        let (mut best, mut at) = (plane[r0 * s.w + c0], r0 * s.w + c0);
                        for r in r0..r1 {
                            for (c, &v) in plane[r * s.w..][c0..c1].iter().enumerate() {
                                if v > best || v.is_nan() {
                                    (best, at) = (v, r * s.w + c0 + c);
                                }
                            }
                        }
                        o[oh * s.wo + ow] = best;
                        id[oh * s.wo + ow] = at as u32;
                    }
                }
            }
        });
    (out, indices)
}

/// Max pooling's input gradient: each output gradient added at its index.
pub fn max_pool2d_backward(dy: &[f32], indices: &[u32], s: &PoolShape) -> Vec<f32> {
    let (ip, op) = (s.in_plane(), s.out_plane());
    let per = planes_per_task(ip);
    written(s.planes() * ip, per * ip, |t, dx| {
        dx.fill(0.0);
        for (j, d) in dx.chunks_mut(ip).enumerate() {
            let at = (t * per + j) * op;
            for (&g, &i) in dy[at..at + op].iter().zip(&indices[at..at + op]) {
                d[i as usize] += g;
            }
        }
    })
}

/// A window of the input plane, `rows × cols`, and what its sum is divided by.
struct Window {
    rows: (usize, usize),
    cols: (usize, usize),
    divisor: f32,
}

/// The averages of every plane's windows: `window(oh, ow)` gives output `(oh, ow)`'s. The sums
/// are in f64 (a global pool sums a whole plane, up to 112x112 values).
fn average(
    x: &[f32],
    planes: usize,
    [h, w]: [usize; 2],
    [oh, ow]: [usize; 2],
    window: impl Fn(usize, usize) -> Window + Sync,
) -> Vec<f32> {
    let (ip, op) = (h * w, oh * ow);
    let per = planes_per_task(ip);
    written(planes * op, per * op, |t, out| {
        for (j, o) in out.chunks_mut(op).enumerate() {
            let plane = &x[(t * per + j) * ip..][..ip];
            for i in 0..oh {
                for k in 0..ow {
                    let Window {
                        rows,
                        cols,
                        divisor,
                    } = window(i, k);
                    let mut sum = 0.0f64;
                    for r in rows.0..rows.1 {
                        sum += plane[r * w + cols.0..r * w + cols.1]
                            .iter()
                            .map(|&v| v as f64)
                            .sum::<f64>();
                    }
                    o[i * ow + k] = (sum / divisor as f64) as f32;
                }
            }
        }
    })
}

/// [`average`]'s input gradient: each output gradient over its divisor, added to every input
/// value of its window.
fn average_backward(
    dy: &[f32],
    planes: usize,
    [h, w]: [usize; 2],
    [oh, ow]: [usize; 2],
    window: impl Fn(usize, usize) -> Window + Sync,
) -> Vec<f32> {
    let (ip, op) = (h * w, oh * ow);
    let per = planes_per_task(ip);
    written(planes * ip, per * ip, |t, dx| {
        dx.fill(0.0);
        for (j, d) in dx.chunks_mut(ip).enumerate() {
            let g = &dy[(t * per + j) * op..][..op];
            for i in 0..oh {
                for k in 0..ow {
                    let Window {
                        rows,
                        cols,
                        divisor,
                    } = window(i, k);
                    let v = g[i * ow + k] / divisor;
                    for r in rows.0..rows.1 {
                        d[r * w + cols.0..r * w + cols.1]
                            .iter_mut()
                            .for_each(|d| *d += v);
                    }
                }
            }
        }
    })
}

/// Average pooling's window of output `(oh, ow)`: its divisor counts the padding inside the
/// padded input when `count_include_pad`, else only the input's values.
fn pool_window(s: &PoolShape, oh: usize, ow: usize, count_include_pad: bool) -> Window {
    let (r0, r1, rext) = s.rows(oh);
    let (c0, c1, cext) = s.cols(ow);
    let n = if count_include_pad {
        rext * cext
    } else {
        (r1 - r0) * (c1 - c0)
    };
    Window {
        rows: (r0, r1),
        cols: (c0, c1),
        divisor: n.max(1) as f32,
    }
}

/// Average pooling.
pub fn avg_pool2d(x: &[f32], s: &PoolShape, count_include_pad: bool) -> Vec<f32> {
    average(x, s.planes(), [s.h, s.w], [s.ho, s.wo], |i, k| {
        pool_window(s, i, k, count_include_pad)
    })
}

/// Average pooling's input gradient.
pub fn avg_pool2d_backward(dy: &[f32], s: &PoolShape, count_include_pad: bool) -> Vec<f32> {
    average_backward(dy, s.planes(), [s.h, s.w], [s.ho, s.wo], |i, k| {
        pool_window(s, i, k, count_include_pad)
    })
}

/// Adaptive bin `i` of `out` over `input`: PyTorch's `floor(i·input/out) … ceil((i+1)·input/out)`.
fn bin(i: usize, out: usize, input: usize) -> (usize, usize) {
    (i * input / out, ((i + 1) * input).div_ceil(out))
}

/// Adaptive bin `(i, k)` of an `h × w` plane pooled to `oh × ow`.
fn adaptive_window([h, w]: [usize; 2], [oh, ow]: [usize; 2], i: usize, k: usize) -> Window {
    let (rows, cols) = (bin(i, oh, h), bin(k, ow, w));
    Window {
        rows,
        cols,
        divisor: ((rows.1 - rows.0) * (cols.1 - cols.0)) as f32,
    }
}

/// Adaptive average pooling of `planes` planes of `h × w` to `oh × ow` bins (global average
/// pooling at 1x1).
pub fn adaptive_avg_pool2d(x: &[f32], planes: usize, hw: [usize; 2], out: [usize; 2]) -> Vec<f32> {
    average(x, planes, hw, out, |i, k| adaptive_window(hw, out, i, k))
}

/// Adaptive average pooling's input gradient.
pub fn adaptive_avg_pool2d_backward(
    dy: &[f32],
    planes: usize,
    hw: [usize; 2],
    out: [usize; 2],
) -> Vec<f32> {
    average_backward(dy, planes, hw, out, |i, k| adaptive_window(hw, out, i, k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{dot, values};

    /// The windows the tests run: (input, kernel, stride, padding, ceil_mode).
    fn cases() -> Vec<PoolShape> {
        [
            ([2, 3, 8, 8], [2, 2], [2, 2], [0, 0], false),
            ([2, 3, 9, 7], [3, 3], [2, 2], [1, 1], false),
            ([1, 2, 9, 7], [3, 3], [2, 2], [1, 1], true),
            ([2, 2, 6, 6], [3, 3], [2, 2], [0, 0], true),
            ([1, 3, 5, 10], [3, 2], [1, 3], [1, 0], true),
            ([3, 2, 7, 7], [3, 3], [1, 1], [1, 1], false),
            ([300, 2, 4, 4], [2, 2], [2, 2], [0, 0], false),
        ]
        .into_iter()
        .map(|(x, k, st, p, ceil)| PoolShape::new(x, k, st, p, ceil).expect("valid case"))
        .collect()
    }

    /// The window of output `(oh, ow)` by the definition: every padded position `oh·s − p + i`,
    /// `i < k`, and whether it lies in the input; the padded ones past the padded input's end
    /// (a `ceil_mode` window) are not in PyTorch's divisor.
    fn window(s: &PoolShape, oh: usize, ow: usize) -> (Vec<(usize, usize)>, usize) {
        let mut inside = Vec::new();
        let mut counted = 0;
        for i in 0..s.kernel[0] {
            for j in 0..s.kernel[1] {
                let r = (oh * s.stride[0] + i) as isize - s.padding[0] as isize;
                let c = (ow * s.stride[1] + j) as isize - s.padding[1] as isize;
                let in_padded =
                    r < (s.h + s.padding[0]) as isize && c < (s.w + s.padding[1]) as isize;
                counted += in_padded as usize;
                if r >= 0 && c >= 0 && (r as usize) < s.h && (c as usize) < s.w {
                    inside.push((r as usize, c as usize));
                }
            }
        }
        (inside, counted)
    }

    #[test]
    fn output_sizes_are_pytorchs() {
        // torch.nn.functional.max_pool2d's output sizes.
        let size = |h, k, st, p, ceil| PoolShape::new([1, 1, h, h], [k, k], [st, st], [p, p], ceil);
        assert_eq!(size(112, 3, 2, 1, false).map(|s| s.ho), Some(56));
        assert_eq!(size(112, 3, 2, 0, true).map(|s| s.ho), Some(56)); // GoogLeNet's
        assert_eq!(size(112, 3, 2, 0, false).map(|s| s.ho), Some(55));
        assert_eq!(size(6, 3, 2, 1, true).map(|s| s.ho), Some(4));
        // A fourth window would start in the right padding: dropped.
        assert_eq!(size(5, 2, 2, 1, true).map(|s| s.ho), Some(3));
        assert_eq!(size(2, 3, 1, 0, false), None);
        assert_eq!(size(8, 3, 1, 2, false), None);
        assert_eq!(size(8, 0, 1, 0, false), None);
    }

    #[test]
    fn pools_are_the_definition() {
        for s in cases() {
            let x = values(s.n * s.c * s.h * s.w, 7);
            let (mx, idx) = max_pool2d(&x, &s);
            for inc in [true, false] {
                let avg = avg_pool2d(&x, &s, inc);
                for p in 0..s.n * s.c {
                    let plane = &x[p * s.h * s.w..][..s.h * s.w];
                    for oh in 0..s.ho {
                        for ow in 0..s.wo {
                            let o = p * s.ho * s.wo + oh * s.wo + ow;
                            let (inside, counted) = window(&s, oh, ow);
                            let vals: Vec<f32> =
                                inside.iter().map(|&(r, c)| plane[r * s.w + c]).collect();
                            let want = vals.iter().map(|&v| v as f64).sum::<f64>()
                                / if inc { counted } else { inside.len() } as f64;
                            assert!((avg[o] as f64 - want).abs() < 1e-6, "{s:?} avg {inc}");
                            let best = vals.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                            assert_eq!(mx[o], best, "{s:?} max");
                            assert_eq!(plane[idx[o] as usize], best, "{s:?} index");
                        }
                    }
                }
            }
        }
    }

    /// The backward passes are the adjoints of the forwards (linear in `x` for the average;
    /// for the max, linear in `x` with the indices held).
    #[test]
    fn the_gradients_are_the_adjoints() {
        for s in cases() {
            let x = values(s.n * s.c * s.h * s.w, 8);
            let dy = values(s.n * s.c * s.ho * s.wo, 9);
            for inc in [true, false] {
                let lhs = dot(&avg_pool2d(&x, &s, inc), &dy);
                let rhs = dot(&x, &avg_pool2d_backward(&dy, &s, inc));
                assert!((lhs - rhs).abs() < 1e-4, "{s:?} avg {inc}: {lhs} {rhs}");
            }
            let (y, idx) = max_pool2d(&x, &s);
            let dx = max_pool2d_backward(&dy, &idx, &s);
            assert!((dot(&y, &dy) - dot(&x, &dx)).abs() < 1e-4, "{s:?} max");
        }
    }

    #[test]
    fn ties_take_the_first_and_nan_wins() {
        let s = PoolShape::new([1, 1, 2, 2], [2, 2], [2, 2], [0, 0], false).unwrap();
        let (y, idx) = max_pool2d(&[1.0, 3.0, 3.0, 0.0], &s);
        assert_eq!((y, idx), (vec![3.0], vec![1]));
        let (y, idx) = max_pool2d(&[1.0, f32::NAN, 3.0, f32::NAN], &s);
        assert!(y[0].is_nan());
        assert_eq!(idx, vec![3]);
        // Every value of a ReLU's zeros is a tie: the gradient goes to the first.
        let dx = max_pool2d_backward(&[2.0], &max_pool2d(&[0.0; 4], &s).1, &s);
        assert_eq!(dx, vec![2.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn adaptive_bins_are_pytorchs() {
        // torch's adaptive_avg_pool2d of 5 rows into 3 bins: rows 0-1, 1-3, 3-4.
        assert_eq!(
            (0..3).map(|i| bin(i, 3, 5)).collect::<Vec<_>>(),
            vec![(0, 2), (1, 4), (3, 5)]
        );
        for (h, w, oh, ow) in [(7, 7, 1, 1), (5, 6, 3, 4), (4, 4, 2, 2), (3, 3, 5, 5)] {
            let planes = 600;
            let x = values(planes * h * w, 10);
            let y = adaptive_avg_pool2d(&x, planes, [h, w], [oh, ow]);
            for p in [0, 1, planes - 1] {
                for i in 0..oh {
                    for k in 0..ow {
                        let ((r0, r1), (c0, c1)) = (bin(i, oh, h), bin(k, ow, w));
                        let mut sum = 0.0f64;
                        for r in r0..r1 {
                            for c in c0..c1 {
                                sum += x[p * h * w + r * w + c] as f64;
                            }
                        }
                        let want = sum / ((r1 - r0) * (c1 - c0)) as f64;
                        assert!((y[p * oh * ow + i * ow + k] as f64 - want).abs() < 1e-6);
                    }
                }
            }
            let dy = values(planes * oh * ow, 11);
            let dx = adaptive_avg_pool2d_backward(&dy, planes, [h, w], [oh, ow]);
            assert!(
                (dot(&y, &dy) - dot(&x, &dx)).abs() < 1e-3,
                "{h}x{w} to {oh}x{ow}"
            );
        }
    }
}
