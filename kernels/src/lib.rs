//! archc's CPU kernels for burn-flex, on plain `f32` slices in NCHW order (no Burn types here:
//! the runtime's `flex` module wraps them as Burn operations with their backward steps). A crate
//! of its own so that debug builds optimise it (the workspace's `Cargo.toml`).
//!
//! - Convolution: per image, `im2col` into a buffer of `[C_in/g · kh · kw, H_out · W_out]` (none
//!   for a 1x1 convolution with stride 1 and no padding: the image is that matrix already) and
//!   one GEMM per group on the `gemm` crate (the one burn-flex uses). The input gradient is the
//!   transposed GEMM followed by `col2im`; the weight gradient is the GEMM of the output gradient
//!   with the same `im2col` matrix. Depthwise convolutions (one input channel per group) have a
//!   direct loop instead: a GEMM of one row would be all overhead.
//! - Batch norm: the statistics in two passes over each channel (the mean, then the squared
//!   deviations: no cancellation), accumulated in f64; the normalisation in one pass. Its
//!   backward: the two sums per channel in one pass, the input gradient in another.
//! - ReLU's backward in one pass over the gradient and the output.
//! - Max, average and adaptive average pooling, forward and backward ([`pool`]).
//!
//! Everything is parallel over images or channels with rayon (which burn-flex runs its own
//! kernels on). Reductions over the batch are split into a fixed number of chunks, summed in
//! chunk order: for a given thread count the results do not depend on scheduling.

use rayon::prelude::*;

pub mod pool;
pub use pool::PoolShape;

/// The shape of a 2-d convolution: input `[n, c_in, h, w]`, weight `[c_out, c_in / groups, kh,
/// kw]`, output `[n, c_out, ho, wo]`, symmetric padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    pub n: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub ho: usize,
    pub wo: usize,
}

impl ConvShape {
    /// The shape of a convolution of `x` (`[n, c_in, h, w]`) with `weight` (`[c_out, c_in /
    /// groups, kh, kw]`), or `None` when they do not fit together or the output would be empty.
    pub fn new(
        x: [usize; 4],
        weight: [usize; 4],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        groups: usize,
    ) -> Option<Self> {
        let [n, c_in, h, w] = x;
        let [c_out, cig, kh, kw] = weight;
        if groups == 0
            || c_in % groups != 0
            || c_out % groups != 0
            || cig != c_in / groups
            || stride.contains(&0)
            || dilation.contains(&0)
        {
            return None;
        }
        let out = |size: usize, k: usize, s: usize, p: usize, d: usize| {
            let span = d * (k.checked_sub(1)?) + 1;
            (size + 2 * p).checked_sub(span).map(|r| r / s + 1)
        };
        let ho = out(h, kh, stride[0], padding[0], dilation[0])?;
        let wo = out(w, kw, stride[1], padding[1], dilation[1])?;
        (ho > 0 && wo > 0).then_some(Self {
            n,
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            stride,
            padding,
            dilation,
            groups,
            ho,
            wo,
        })
    }

    /// Input channels per group.
    fn cig(&self) -> usize {
        self.c_in / self.groups
    }

    /// Output channels per group.
    fn cog(&self) -> usize {
        self.c_out / self.groups
    }

    /// Rows of the `im2col` matrix: the weights of one output channel.
    fn k(&self) -> usize {
        self.cig() * self.kh * self.kw
    }

    fn in_plane(&self) -> usize {
        self.h * self.w
    }

    fn out_plane(&self) -> usize {
        self.ho * self.wo
    }

    /// A 1x1 convolution with stride 1 and no padding: the image is its own `im2col` matrix.
    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.padding == [0, 0]
    }

    /// One input channel per group: the direct depthwise loop.
    fn is_depthwise(&self) -> bool {
        self.cig() == 1 && self.groups > 1
    }

    /// The output positions `o` whose input position `o·s + off` lies in `0..size`.
    fn valid(size: usize, out: usize, s: usize, off: isize) -> std::ops::Range<usize> {
        // o·s + off >= 0  ⇔  o >= ceil(-off / s);  o·s + off < size  ⇔  o < ceil((size - off) / s)
        let lo = if off >= 0 {
            0
        } else {
            ((-off) as usize).div_ceil(s)
        };
        let hi = if (size as isize) <= off {
            0
        } else {
            ((size as isize - off) as usize).div_ceil(s).min(out)
        };
        lo.min(hi)..hi
    }
}

/// How the batch is cut for the GEMMs: `per` images side by side in one GEMM (enough columns
/// for an efficient GEMM when the output maps are small: 7x7 or 2x2 late in a network), and the
/// chunks of images given to the threads.
#[derive(Debug, Clone, Copy)]
struct Batching {
    /// Images per GEMM.
    per: usize,
    /// Workers: at most one per thread; worker `w` does GEMMs `w·each .. (w+1)·each`.
    workers: usize,
    each: usize,
}

/// Columns a GEMM is given at least, where the batch allows.
const GEMM_COLUMNS: usize = 512;

impl Batching {
    fn new(s: &ConvShape) -> Self {
        let per = GEMM_COLUMNS.div_ceil(s.out_plane()).clamp(1, s.n.max(1));
        let groups = s.n.div_ceil(per).max(1);
        let workers = rayon::current_num_threads().clamp(1, groups);
        let each = groups.div_ceil(workers);
        // Every worker has work: with `each` rounded up, fewer may be needed.
        let workers = groups.div_ceil(each);
        Batching { per, workers, each }
    }

    /// The images of worker `w`.
    fn images(&self, w: usize, n: usize) -> std::ops::Range<usize> {
        (w * self.each * self.per).min(n)..((w + 1) * self.each * self.per).min(n)
    }

    /// The GEMM's own parallelism: none when the workers keep every thread busy.
    fn parallelism(&self) -> gemm::Parallelism {
        if self.workers >= rayon::current_num_threads() {
            gemm::Parallelism::None
        } else {
            gemm::Parallelism::Rayon(0)
        }
    }
}

/// `len` values, made in parallel `chunk` at a time by `f(chunk index, its values)`, which must
/// write every value of its chunk (and read none before writing it): the buffer is not zeroed
/// first, a pass over memory that every output would otherwise pay.
fn written(len: usize, chunk: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) -> Vec<f32> {
    written_with(len, chunk, || (), |_, i, c| f(i, c))
}

/// [`written`] with a scratch value per worker (`init`), passed to `f` first.
fn written_with<T>(
    len: usize,
    chunk: usize,
    init: impl Fn() -> T + Sync + Send,
    f: impl Fn(&mut T, usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let mut v: Vec<f32> = Vec::with_capacity(len);
    let spare = &mut v.spare_capacity_mut()[..len];
    // SAFETY: the slice is the vector's own allocation of `len` values; f32 has no invalid bit
    // patterns, and the callers' `f` write each value before anything reads it.
    let values = unsafe { &mut *(spare as *mut [std::mem::MaybeUninit<f32>] as *mut [f32]) };
    values
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .for_each_init(init, |t, (i, c)| f(t, i, c));
    // SAFETY: every value was written above.
    unsafe { v.set_len(len) };
    v
}

/// A row-major or transposed view of a matrix: `(pointer, row stride, column stride)`.
#[derive(Clone, Copy)]
struct Mat {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}

impl Mat {
    /// Row-major `rows × cols` in `s`.
    fn rows(s: &[f32], cols: usize) -> Self {
        Mat {
            ptr: s.as_ptr(),
            rs: cols as isize,
            cs: 1,
        }
    }

    /// The transpose of the row-major `rows × cols` matrix in `s` (a `cols × rows` view).
    fn transposed(s: &[f32], cols: usize) -> Self {
        Mat {
            ptr: s.as_ptr(),
            rs: 1,
            cs: cols as isize,
        }
    }
}

/// `dst (m × n, row-major) = lhs (m × k) · rhs (k × n)`, or `+=` when `accumulate`.
///
/// The caller guarantees the views lie within their slices (`dst.len() >= m·n`).
#[allow(clippy::too_many_arguments)]
fn gemm(
    dst: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    lhs: Mat,
    rhs: Mat,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    assert!(dst.len() >= m * n);
    // SAFETY: `dst` holds m·n values written row-major; `lhs` and `rhs` come from slices the
    // callers sized for these views (checked by the tests against a naive convolution).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.ptr,
            lhs.cs,
            lhs.rs,
            rhs.ptr,
            rhs.cs,
            rhs.rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `col` (`[k, ho·wo]` at columns `off ..`, rows `ld` apart) from one group's input channels
/// `x` (`[cig, h, w]`); zeros where the window is in the padding.
fn im2col(x: &[f32], s: &ConvShape, col: &mut [f32], ld: usize, off: usize) {
    let (ho, wo) = (s.ho, s.wo);
    let [sh, sw] = s.stride;
    let [ph, pw] = s.padding;
    let [dh, dw] = s.dilation;
    let mut row = 0;
    for ci in 0..s.cig() {
        let plane = &x[ci * s.in_plane()..][..s.in_plane()];
        for ki in 0..s.kh {
            let off_h = (ki * dh) as isize - ph as isize;
            let rows = ConvShape::valid(s.h, ho, sh, off_h);
            for kj in 0..s.kw {
                let off_w = (kj * dw) as isize - pw as isize;
                let cols = ConvShape::valid(s.w, wo, sw, off_w);
                let dst = &mut col[row * ld + off..][..ho * wo];
                row += 1;
                for (oh, line) in dst.chunks_exact_mut(wo).enumerate() {
                    if !rows.contains(&oh) || cols.is_empty() {
                        line.fill(0.0);
                        continue;
                    }
                    let ih = (oh * sh) as isize + off_h;
                    let src = &plane[ih as usize * s.w..][..s.w];
                    line[..cols.start].fill(0.0);
                    line[cols.end..].fill(0.0);
                    let first = (cols.start * sw) as isize + off_w;
                    if sw == 1 {
                        let a = first as usize;
                        line[cols.clone()].copy_from_slice(&src[a..a + cols.len()]);
                    } else {
                        for (j, v) in line[cols.clone()].iter_mut().enumerate() {
                            *v = src[(first + (j * sw) as isize) as usize];
                        }
                    }
                }
            }
        }
    }
}

/// Adds `col` (`[k, ho·wo]` at columns `off ..`, rows `ld` apart) back onto one group's input
/// channels `dx` (`[cig, h, w]`): the transpose of [`im2col`].
fn col2im(col: &[f32], s: &ConvShape, dx: &mut [f32], ld: usize, off: usize) {
    let (ho, wo) = (s.ho, s.wo);
    let [sh, sw] = s.stride;
    let [ph, pw] = s.padding;
    let [dh, dw] = s.dilation;
    let mut row = 0;
    for ci in 0..s.cig() {
        let plane = &mut dx[ci * s.in_plane()..][..s.in_plane()];
        for ki in 0..s.kh {
            let off_h = (ki * dh) as isize - ph as isize;
            let rows = ConvShape::valid(s.h, ho, sh, off_h);
            for kj in 0..s.kw {
                let off_w = (kj * dw) as isize - pw as isize;
                let cols = ConvShape::valid(s.w, wo, sw, off_w);
                let src = &col[row * ld + off..][..ho * wo];
                row += 1;
                if cols.is_empty() {
                    continue;
                }
                for oh in rows.clone() {
                    let ih = (oh * sh) as isize + off_h;
                    let dst = &mut plane[ih as usize * s.w..][..s.w];
                    let line = &src[oh * wo..][..wo];
                    let first = (cols.start * sw) as isize + off_w;
                    if sw == 1 {
                        let a = first as usize;
                        for (d, v) in dst[a..a + cols.len()].iter_mut().zip(&line[cols.clone()]) {
                            *d += v;
                        }
                    } else {
                        for (j, v) in line[cols.clone()].iter().enumerate() {
                            dst[(first + (j * sw) as isize) as usize] += v;
                        }
                    }
                }
            }
        }
    }
}

/// The convolution of `x` (`[n, c_in, h, w]`) with `weight` (`[c_out, c_in / groups, kh, kw]`)
/// plus `bias` (`[c_out]`): `[n, c_out, ho, wo]`.
pub fn conv2d(x: &[f32], weight: &[f32], bias: Option<&[f32]>, s: &ConvShape) -> Vec<f32> {
    assert_eq!(x.len(), s.n * s.c_in * s.in_plane());
    assert_eq!(weight.len(), s.c_out * s.k());
    let len = s.n * s.c_out * s.out_plane();
    if len == 0 {
        return Vec::new();
    }
    let mut out = if s.is_depthwise() {
        let mut out = vec![0.0f32; len];
        depthwise_forward(x, weight, s, &mut out);
        out
    } else {
        let bt = Batching::new(s);
        let (k, hwo, cog, cig) = (s.k(), s.out_plane(), s.cog(), s.cig());
        let (in_b, out_b) = (s.c_in * s.in_plane(), s.c_out * hwo);
        let par = bt.parallelism();
        // Every value is written: by the GEMM (not accumulating) or the copy back to NCHW.
        let scratch = || (Vec::new(), Vec::new());
        written_with(len, bt.per * out_b, scratch, |(col, tmp), c, out_c| {
            let first = c * bt.per;
            let nb = out_c.len() / out_b;
            let cols = nb * hwo;
            for g in 0..s.groups {
                let w_g = Mat::rows(&weight[g * cog * k..][..cog * k], k);
                let x_g = |i: usize| {
                    &x[(first + i) * in_b + g * cig * s.in_plane()..][..cig * s.in_plane()]
                };
                if nb == 1 {
                    let rhs = if s.is_pointwise() {
                        x_g(0)
                    } else {
                        col.resize(k * hwo, 0.0);
                        im2col(x_g(0), s, col, hwo, 0);
                        &col[..]
                    };
                    let dst = &mut out_c[g * cog * hwo..][..cog * hwo];
                    gemm(dst, cog, hwo, k, w_g, Mat::rows(rhs, hwo), false, par);
                    continue;
                }
                // The images side by side: [k, nb·hwo], then the result back to NCHW.
                col.resize(k * cols, 0.0);
                for i in 0..nb {
                    im2col(x_g(i), s, col, cols, i * hwo);
                }
                tmp.resize(cog * cols, 0.0);
                gemm(tmp, cog, cols, k, w_g, Mat::rows(col, cols), false, par);
                for i in 0..nb {
                    for co in 0..cog {
                        out_c[i * out_b + (g * cog + co) * hwo..][..hwo]
                            .copy_from_slice(&tmp[co * cols + i * hwo..][..hwo]);
                    }
                }
            }
        })
    };
    if let Some(bias) = bias {
        let hwo = s.out_plane();
        out.par_chunks_mut(hwo).enumerate().for_each(|(i, plane)| {
            let b = bias[i % s.c_out];
            plane.iter_mut().for_each(|v| *v += b);
        });
    }
    out
}

/// The gradients of [`conv2d`] with respect to the input, the weight and the bias, each only
/// when asked for (`need`), from the output gradient `dy` (`[n, c_out, ho, wo]`).
///
/// The weight gradient is summed per worker (one partial sum each, over its images in order),
/// then over the workers in order: for a given thread count, the same result every time.
#[allow(clippy::type_complexity)]
pub fn conv2d_backward(
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    s: &ConvShape,
    need: [bool; 3],
) -> (Option<Vec<f32>>, Option<Vec<f32>>, Option<Vec<f32>>) {
    assert_eq!(dy.len(), s.n * s.c_out * s.out_plane());
    let db = need[2].then(|| bias_grad(dy, s.n, s.c_out, s.out_plane()));
    if s.is_depthwise() {
        let dx = need[0].then(|| depthwise_input_grad(dy, weight, s));
        let dw = need[1].then(|| depthwise_weight_grad(x, dy, s));
        return (dx, dw, db);
    }
    let (k, hwo, cog, cig) = (s.k(), s.out_plane(), s.cog(), s.cig());
    let (in_b, out_b) = (s.c_in * s.in_plane(), s.c_out * hwo);
    let (need_dx, need_dw) = (need[0], need[1]);
    let bt = Batching::new(s);
    let par = bt.parallelism();
    let mut dx = need_dx.then(|| vec![0.0f32; s.n * in_b]);
    let dw_len = s.c_out * k;
    let mut dw_parts = vec![0.0f32; if need_dw { bt.workers * dw_len } else { 0 }];
    // Worker `w`: the input gradients of its images (`dx_w`, theirs only) and its partial sum of
    // the weight gradient (`dw_w`).
    let work = |w: usize, mut dx_w: Option<&mut [f32]>, mut dw_w: Option<&mut [f32]>| {
        let (mut col, mut dcol, mut dy_c) = (Vec::new(), Vec::new(), Vec::new());
        let images = bt.images(w, s.n);
        let mut first = images.start;
        while first < images.end {
            let nb = bt.per.min(images.end - first);
            let cols = nb * hwo;
            for g in 0..s.groups {
                let w_g = &weight[g * cog * k..][..cog * k];
                // The output gradient of the images side by side: [cog, nb·hwo].
                let dy_g: &[f32] = if nb == 1 {
                    &dy[(first * s.c_out + g * cog) * hwo..][..cog * hwo]
                } else {
                    dy_c.resize(cog * cols, 0.0);
                    for i in 0..nb {
                        for co in 0..cog {
                            dy_c[co * cols + i * hwo..][..hwo].copy_from_slice(
                                &dy[(first + i) * out_b + (g * cog + co) * hwo..][..hwo],
                            );
                        }
                    }
                    &dy_c
                };
                if let Some(dx_w) = dx_w.as_deref_mut() {
                    let base = (first - images.start) * in_b + g * cig * s.in_plane();
                    let lhs = Mat::transposed(w_g, k);
                    if nb == 1 && s.is_pointwise() {
                        let dst = &mut dx_w[base..][..cig * s.in_plane()];
                        gemm(dst, k, hwo, cog, lhs, Mat::rows(dy_g, hwo), false, par);
                    } else {
                        dcol.resize(k * cols, 0.0);
                        gemm(
                            &mut dcol,
                            k,
                            cols,
                            cog,
                            lhs,
                            Mat::rows(dy_g, cols),
                            false,
                            par,
                        );
                        for i in 0..nb {
                            let dx_g = &mut dx_w[base + i * in_b..][..cig * s.in_plane()];
                            col2im(&dcol, s, dx_g, cols, i * hwo);
                        }
                    }
                }
                if let Some(dw_w) = dw_w.as_deref_mut() {
                    let x_g = |i: usize| {
                        &x[(first + i) * in_b + g * cig * s.in_plane()..][..cig * s.in_plane()]
                    };
                    let cols_m: &[f32] = if nb == 1 && s.is_pointwise() {
                        x_g(0)
                    } else {
                        col.resize(k * cols, 0.0);
                        for i in 0..nb {
                            im2col(x_g(i), s, &mut col, cols, i * hwo);
                        }
                        &col
                    };
                    gemm(
                        &mut dw_w[g * cog * k..][..cog * k],
                        cog,
                        k,
                        cols,
                        Mat::rows(dy_g, cols),
                        Mat::transposed(cols_m, cols),
                        true,
                        par,
                    );
                }
            }
            first += nb;
        }
    };
    let dx_chunk = bt.each * bt.per * in_b;
    match (dx.as_deref_mut(), need_dw) {
        (Some(dx), true) => dx
            .par_chunks_mut(dx_chunk)
            .zip(dw_parts.par_chunks_mut(dw_len))
            .enumerate()
            .for_each(|(w, (dx_w, dw_w))| work(w, Some(dx_w), Some(dw_w))),
        (Some(dx), false) => dx
            .par_chunks_mut(dx_chunk)
            .enumerate()
            .for_each(|(w, dx_w)| work(w, Some(dx_w), None)),
        (None, true) => dw_parts
            .par_chunks_mut(dw_len)
            .enumerate()
            .for_each(|(w, dw_w)| work(w, None, Some(dw_w))),
        (None, false) => {}
    }
    let dw = need_dw.then(|| sum_parts(dw_parts, dw_len));
    (dx, dw, db)
}

/// The sum of the consecutive `len`-long parts of `parts`, in order.
fn sum_parts(mut parts: Vec<f32>, len: usize) -> Vec<f32> {
    let (first, rest) = parts.split_at_mut(len);
    for part in rest.chunks_exact(len) {
        first.iter_mut().zip(part).for_each(|(a, b)| *a += b);
    }
    parts.truncate(len);
    parts
}

/// `Σ` over images and positions of `dy`, per channel.
fn bias_grad(dy: &[f32], n: usize, c: usize, plane: usize) -> Vec<f32> {
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let mut sum = 0.0f64;
            for b in 0..n {
                sum += dy[(b * c + ch) * plane..][..plane]
                    .iter()
                    .map(|&v| v as f64)
                    .sum::<f64>();
            }
            sum as f32
        })
        .collect()
}

/// Output channel `co` of a depthwise convolution reads input channel `co / multiplier`.
fn depthwise_forward(x: &[f32], weight: &[f32], s: &ConvShape, out: &mut [f32]) {
    let (hwo, kk) = (s.out_plane(), s.kh * s.kw);
    let mult = s.cog();
    out.par_chunks_mut(hwo).enumerate().for_each(|(i, o)| {
        let (b, co) = (i / s.c_out, i % s.c_out);
        let ci = co / mult;
        let plane = &x[(b * s.c_in + ci) * s.in_plane()..][..s.in_plane()];
        let w = &weight[co * kk..][..kk];
        for_each_tap(s, |ki, kj, oh, cols, first| {
            let wv = w[ki * s.kw + kj];
            let line = &mut o[oh * s.wo..][..s.wo];
            let ih =
                (oh * s.stride[0]) as isize + (ki * s.dilation[0]) as isize - s.padding[0] as isize;
            let src = &plane[ih as usize * s.w..][..s.w];
            if s.stride[1] == 1 {
                let a = first as usize;
                for (d, v) in line[cols.clone()].iter_mut().zip(&src[a..a + cols.len()]) {
                    *d += wv * v;
                }
            } else {
                for (j, d) in line[cols.clone()].iter_mut().enumerate() {
                    *d += wv * src[(first + (j * s.stride[1]) as isize) as usize];
                }
            }
        });
    });
}

/// Calls `f(ki, kj, oh, valid output columns, input column of the first valid one)` for every
/// tap of the kernel and every output row whose input row is inside the image.
fn for_each_tap(
    s: &ConvShape,
    mut f: impl FnMut(usize, usize, usize, std::ops::Range<usize>, isize),
) {
    for ki in 0..s.kh {
        let off_h = (ki * s.dilation[0]) as isize - s.padding[0] as isize;
        let rows = ConvShape::valid(s.h, s.ho, s.stride[0], off_h);
        for kj in 0..s.kw {
            let off_w = (kj * s.dilation[1]) as isize - s.padding[1] as isize;
            let cols = ConvShape::valid(s.w, s.wo, s.stride[1], off_w);
            if cols.is_empty() {
                continue;
            }
            let first = (cols.start * s.stride[1]) as isize + off_w;
            for oh in rows.clone() {
                f(ki, kj, oh, cols.clone(), first);
            }
        }
    }
}

fn depthwise_input_grad(dy: &[f32], weight: &[f32], s: &ConvShape) -> Vec<f32> {
    let (hwo, kk, mult) = (s.out_plane(), s.kh * s.kw, s.cog());
    let mut dx = vec![0.0f32; s.n * s.c_in * s.in_plane()];
    dx.par_chunks_mut(s.in_plane())
        .enumerate()
        .for_each(|(i, d)| {
            let (b, ci) = (i / s.c_in, i % s.c_in);
            for co in ci * mult..(ci + 1) * mult {
                let g = &dy[(b * s.c_out + co) * hwo..][..hwo];
                let w = &weight[co * kk..][..kk];
                for_each_tap(s, |ki, kj, oh, cols, first| {
                    let wv = w[ki * s.kw + kj];
                    let ih = (oh * s.stride[0]) as isize + (ki * s.dilation[0]) as isize
                        - s.padding[0] as isize;
                    let dst = &mut d[ih as usize * s.w..][..s.w];
                    let line = &g[oh * s.wo..][..s.wo];
                    if s.stride[1] == 1 {
                        let a = first as usize;
                        for (dv, v) in dst[a..a + cols.len()].iter_mut().zip(&line[cols.clone()]) {
                            *dv += wv * v;
                        }
                    } else {
                        for (j, v) in line[cols.clone()].iter().enumerate() {
                            dst[(first + (j * s.stride[1]) as isize) as usize] += wv * v;
                        }
                    }
                });
            }
        });
    dx
}

fn depthwise_weight_grad(x: &[f32], dy: &[f32], s: &ConvShape) -> Vec<f32> {
    let (hwo, kk, mult) = (s.out_plane(), s.kh * s.kw, s.cog());
    let mut dw = vec![0.0f32; s.c_out * kk];
    dw.par_chunks_mut(kk).enumerate().for_each(|(co, w)| {
        let ci = co / mult;
        let mut acc = vec![0.0f64; kk];
        for b in 0..s.n {
            let plane = &x[(b * s.c_in + ci) * s.in_plane()..][..s.in_plane()];
            let g = &dy[(b * s.c_out + co) * hwo..][..hwo];
            for_each_tap(s, |ki, kj, oh, cols, first| {
                let ih = (oh * s.stride[0]) as isize + (ki * s.dilation[0]) as isize
                    - s.padding[0] as isize;
                let src = &plane[ih as usize * s.w..][..s.w];
                let line = &g[oh * s.wo..][..s.wo];
                let mut sum = 0.0f32;
                if s.stride[1] == 1 {
                    let a = first as usize;
                    for (v, xv) in line[cols.clone()].iter().zip(&src[a..a + cols.len()]) {
                        sum += v * xv;
                    }
                } else {
                    for (j, v) in line[cols.clone()].iter().enumerate() {
                        sum += v * src[(first + (j * s.stride[1]) as isize) as usize];
                    }
                }
                acc[ki * s.kw + kj] += sum as f64;
            });
        }
        w.iter_mut().zip(acc).for_each(|(w, a)| *w = a as f32);
    });
    dw
}

/// Per-channel mean and biased variance of `x` (`[n, c, plane]`), in f64, two passes.
pub fn batch_norm_stats(x: &[f32], n: usize, c: usize, plane: usize) -> (Vec<f64>, Vec<f64>) {
    let m = (n * plane) as f64;
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let blocks = || (0..n).map(move |b| &x[(b * c + ch) * plane..][..plane]);
            let mean = blocks()
                .map(|p| p.iter().map(|&v| v as f64).sum::<f64>())
                .sum::<f64>()
                / m;
            let var = blocks()
                .map(|p| {
                    p.iter()
                        .map(|&v| {
                            let d = v as f64 - mean;
                            d * d
                        })
                        .sum::<f64>()
                })
                .sum::<f64>()
                / m;
            (mean, var)
        })
        .unzip()
}

/// `gamma · (x − mean) / sqrt(var + ε) + beta`, per channel, from `scale = gamma / sqrt(var + ε)`
/// and `shift = beta − mean · scale`; followed by ReLU when `relu`.
pub fn batch_norm_apply(
    x: &[f32],
    scale: &[f32],
    shift: &[f32],
    c: usize,
    plane: usize,
    relu: bool,
) -> Vec<f32> {
    written(x.len(), plane, |i, o| {
        let xs = &x[i * plane..][..o.len()];
        {
            let (a, b) = (scale[i % c], shift[i % c]);
            if relu {
                o.iter_mut()
                    .zip(xs)
                    .for_each(|(o, &v)| *o = (v * a + b).max(0.0));
            } else {
                o.iter_mut().zip(xs).for_each(|(o, &v)| *o = v * a + b);
            }
        }
    })
}

/// The gradients of training-mode batch norm with respect to `x`, gamma and beta (each only
/// when asked for), from the output gradient `dy`, the input, gamma, the batch mean and
/// `invstd = 1 / sqrt(var + ε)`. With `relu_out` (the output of batch norm followed by ReLU),
/// the gradient of the pair: `dy` counts only where that output is positive.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
pub fn batch_norm_backward(
    dy: &[f32],
    relu_out: Option<&[f32]>,
    x: &[f32],
    gamma: &[f32],
    mean: &[f64],
    invstd: &[f64],
    n: usize,
    c: usize,
    plane: usize,
    need: [bool; 3],
) -> (Option<Vec<f32>>, Option<Vec<f32>>, Option<Vec<f32>>) {
    let m = (n * plane) as f64;
    // Σ dy and Σ dy·x̂ per channel, one pass.
    let (sum_dy, sum_dy_xhat): (Vec<f64>, Vec<f64>) = (0..c)
        .into_par_iter()
        .map(|ch| {
            let (mu, is) = (mean[ch], invstd[ch]);
            let (mut s1, mut s2) = (0.0f64, 0.0f64);
            for b in 0..n {
                let o = (b * c + ch) * plane;
                let (dy, x) = (&dy[o..o + plane], &x[o..o + plane]);
                let mut add = |g: f32, v: f32| {
                    s1 += g as f64;
                    s2 += g as f64 * (v as f64 - mu);
                };
                match relu_out {
                    None => dy.iter().zip(x).for_each(|(&g, &v)| add(g, v)),
                    Some(out) => dy
                        .iter()
                        .zip(x)
                        .zip(&out[o..o + plane])
                        .for_each(|((&g, &v), &y)| add(if y > 0.0 { g } else { 0.0 }, v)),
                }
            }
            (s1, s2 * is)
        })
        .unzip();
    let dx = need[0].then(|| {
        // dx = gamma·invstd · (dy − Σdy/m − x̂ · Σ(dy·x̂)/m), x̂ = (x − mean)·invstd
        let coef: Vec<[f32; 3]> = (0..c)
            .map(|ch| {
                let k = gamma[ch] as f64 * invstd[ch];
                [
                    k as f32,
                    (k * sum_dy[ch] / m) as f32,
                    (k * invstd[ch] * sum_dy_xhat[ch] / m) as f32,
                ]
            })
            .collect();
        written(x.len(), plane, |i, d| {
            let ch = i % c;
            let [k, a, bq] = coef[ch];
            let mu = mean[ch] as f32;
            let o = i * plane;
            let (dy, x) = (&dy[o..o + plane], &x[o..o + plane]);
            match relu_out {
                None => {
                    for ((d, &g), &v) in d.iter_mut().zip(dy).zip(x) {
                        *d = k * g - a - (v - mu) * bq;
                    }
                }
                Some(out) => {
                    let out = &out[o..o + plane];
                    for (((d, &g), &v), &y) in d.iter_mut().zip(dy).zip(x).zip(out) {
                        let g = if y > 0.0 { g } else { 0.0 };
                        *d = k * g - a - (v - mu) * bq;
                    }
                }
            }
        })
    });
    let dgamma = need[1].then(|| sum_dy_xhat.iter().map(|&v| v as f32).collect());
    let dbeta = need[2].then(|| sum_dy.iter().map(|&v| v as f32).collect());
    (dx, dgamma, dbeta)
}

/// `max(x, 0)`.
pub fn relu(x: &[f32]) -> Vec<f32> {
    const CHUNK: usize = 1 << 14;
    written(x.len(), CHUNK, |i, o| {
        let xs = &x[i * CHUNK..][..o.len()];
        o.iter_mut().zip(xs).for_each(|(o, &v)| *o = v.max(0.0));
    })
}

/// ReLU's backward from its output: `dy` where the output is positive, else 0.
pub fn relu_backward(dy: &[f32], out: &[f32]) -> Vec<f32> {
    const CHUNK: usize = 1 << 14;
    written(dy.len(), CHUNK, |i, d| {
        let (g, o) = (&dy[i * CHUNK..][..d.len()], &out[i * CHUNK..][..d.len()]);
        for ((d, &g), &o) in d.iter_mut().zip(g).zip(o) {
            *d = if o > 0.0 { g } else { 0.0 };
        }
    })
}

/// What the tests of this crate share.
#[cfg(test)]
mod testing {
    /// `len` values in [-0.5, 0.5) from a small LCG: deterministic, no dependency.
    pub fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(1664525).wrapping_add(1013904223);
                (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// `⟨a, b⟩` in f64.
    pub fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(&p, &q)| p as f64 * q as f64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{dot, values};
    use super::*;

    /// The definition, in f64 loops.
    fn naive(x: &[f32], w: &[f32], s: &ConvShape) -> Vec<f64> {
        let mut out = vec![0.0f64; s.n * s.c_out * s.ho * s.wo];
        for b in 0..s.n {
            for co in 0..s.c_out {
                let g = co / s.cog();
                for oh in 0..s.ho {
                    for ow in 0..s.wo {
                        let mut acc = 0.0;
                        for ci in 0..s.cig() {
                            for ki in 0..s.kh {
                                for kj in 0..s.kw {
                                    let ih = (oh * s.stride[0] + ki * s.dilation[0]) as isize
                                        - s.padding[0] as isize;
                                    let iw = (ow * s.stride[1] + kj * s.dilation[1]) as isize
                                        - s.padding[1] as isize;
                                    if ih < 0 || iw < 0 || ih >= s.h as isize || iw >= s.w as isize
                                    {
                                        continue;
                                    }
                                    let xi = ((b * s.c_in + g * s.cig() + ci) * s.h + ih as usize)
                                        * s.w
                                        + iw as usize;
                                    let wi = ((co * s.cig() + ci) * s.kh + ki) * s.kw + kj;
                                    acc += x[xi] as f64 * w[wi] as f64;
                                }
                            }
                        }
                        out[((b * s.c_out + co) * s.ho + oh) * s.wo + ow] = acc;
                    }
                }
            }
        }
        out
    }

    fn cases() -> Vec<ConvShape> {
        let mut v = Vec::new();
        // (x, weight, stride, padding, dilation, groups)
        for (x, w, st, p, d, g) in [
            ([2, 3, 7, 6], [4, 3, 3, 3], [1, 1], [1, 1], [1, 1], 1),
            ([3, 4, 9, 8], [6, 4, 3, 3], [2, 2], [1, 1], [1, 1], 1),
            ([2, 4, 8, 8], [4, 2, 3, 3], [1, 2], [2, 0], [2, 1], 2),
            ([2, 5, 6, 7], [3, 5, 1, 1], [1, 1], [0, 0], [1, 1], 1),
            ([2, 5, 6, 7], [3, 5, 1, 1], [2, 2], [0, 0], [1, 1], 1),
            ([2, 6, 9, 9], [6, 1, 3, 3], [1, 1], [1, 1], [1, 1], 6),
            ([2, 3, 9, 8], [6, 1, 5, 5], [2, 2], [2, 2], [1, 1], 3),
            ([1, 3, 11, 10], [4, 3, 7, 7], [2, 2], [3, 3], [1, 1], 1),
            ([2, 2, 3, 3], [2, 2, 3, 3], [1, 1], [0, 0], [1, 1], 1),
            // 576 output positions: one image per GEMM; 256: two, the last GEMM one.
            ([5, 2, 24, 24], [3, 2, 3, 3], [1, 1], [1, 1], [1, 1], 1),
            ([5, 2, 16, 16], [3, 2, 1, 1], [1, 1], [0, 0], [1, 1], 1),
            ([5, 4, 16, 16], [4, 2, 3, 3], [1, 1], [1, 1], [1, 1], 2),
        ] {
            v.push(ConvShape::new(x, w, st, p, d, g).expect("valid case"));
        }
        v
    }

    #[test]
    fn the_convolution_is_the_definition() {
        for s in cases() {
            let x = values(s.n * s.c_in * s.h * s.w, 1);
            let w = values(s.c_out * s.k(), 2);
            let got = conv2d(&x, &w, None, &s);
            let want = naive(&x, &w, &s);
            for (g, w) in got.iter().zip(&want) {
                assert!((*g as f64 - w).abs() <= 1e-5, "{s:?}: {g} against {w}");
            }
        }
    }

    /// The input and weight gradients are the adjoints of the convolution:
    /// ⟨dy, conv(x, w)⟩ = ⟨dx, x⟩ (linear in x) and = ⟨dw, w⟩ (linear in w).
    #[test]
    fn the_gradients_are_the_adjoints() {
        for s in cases() {
            let x = values(s.n * s.c_in * s.h * s.w, 3);
            let w = values(s.c_out * s.k(), 4);
            let dy = values(s.n * s.c_out * s.ho * s.wo, 5);
            let y = naive(&x, &w, &s);
            let lhs: f64 = y.iter().zip(&dy).map(|(p, &q)| p * q as f64).sum();
            let (dx, dw, db) = conv2d_backward(&x, &w, &dy, &s, [true, true, true]);
            let (dx, dw, db) = (dx.unwrap(), dw.unwrap(), db.unwrap());
            let tol = 1e-4 * lhs.abs().max(1.0);
            assert!(
                (dot(&dx, &x) - lhs).abs() <= tol,
                "{s:?} dx: {} against {lhs}",
                dot(&dx, &x)
            );
            assert!(
                (dot(&dw, &w) - lhs).abs() <= tol,
                "{s:?} dw: {} against {lhs}",
                dot(&dw, &w)
            );
            // Adjointness checks one direction; each gradient entry is checked against a
            // one-hot probe of the naive convolution on the first case sizes only below.
            let hwo = s.ho * s.wo;
            for co in 0..s.c_out {
                let want: f64 = (0..s.n)
                    .map(|b| {
                        dy[(b * s.c_out + co) * hwo..][..hwo]
                            .iter()
                            .map(|&v| v as f64)
                            .sum::<f64>()
                    })
                    .sum();
                assert!((db[co] as f64 - want).abs() <= 1e-5, "{s:?} db");
            }
            // Every weight-gradient entry, and every 7th input-gradient entry: the derivative of
            // ⟨dy, conv⟩ along that value is ⟨dy, conv(…, e_i)⟩, exactly linear.
            let along = |i: usize, len: usize, conv: &dyn Fn(&[f32]) -> Vec<f64>| {
                let mut e = vec![0.0f32; len];
                e[i] = 1.0;
                conv(&e)
                    .iter()
                    .zip(&dy)
                    .map(|(p, &q)| p * q as f64)
                    .sum::<f64>()
            };
            for (i, &got) in dw.iter().enumerate() {
                let want = along(i, w.len(), &|e| naive(&x, e, &s));
                assert!(
                    (got as f64 - want).abs() <= 1e-5,
                    "{s:?} dw[{i}]: {got} against {want}"
                );
            }
            for i in (0..x.len()).step_by(7) {
                let want = along(i, x.len(), &|e| naive(e, &w, &s));
                assert!(
                    (dx[i] as f64 - want).abs() <= 1e-5,
                    "{s:?} dx[{i}]: {} against {want}",
                    dx[i]
                );
            }
        }
    }

    #[test]
    fn impossible_shapes_are_refused() {
        assert!(ConvShape::new([1, 3, 2, 2], [4, 3, 3, 3], [1, 1], [0, 0], [1, 1], 1).is_none());
        assert!(ConvShape::new([1, 3, 5, 5], [4, 2, 3, 3], [1, 1], [0, 0], [1, 1], 1).is_none());
        assert!(ConvShape::new([1, 4, 5, 5], [3, 2, 3, 3], [1, 1], [0, 0], [1, 1], 2).is_none());
        assert!(ConvShape::new([1, 3, 5, 5], [4, 3, 3, 3], [0, 1], [0, 0], [1, 1], 1).is_none());
    }
}
