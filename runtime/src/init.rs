//! Initialisation as torchvision does it, reproducible from a seed on every backend.
//!
//! Contract:
//! - convolution weights: Kaiming normal, `mode="fan_out"`, `nonlinearity="relu"`, i.e.
//!   `N(0, 2 / fan_out)` with PyTorch's `fan_out = out_channels * kh * kw` (no division by
//!   `groups`, unlike Burn's own `KaimingNormal`); convolution biases 0 (torchvision's VGG);
//! - batch norm: weight (Burn's `gamma`) 1, bias (`beta`) 0, running mean 0, running var 1;
//! - linear: PyTorch's default, weight and bias `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`.
//!
//! The numbers come from archc's own generator (SplitMix64 + Box–Muller), not from the backend's
//! RNG: every parameter draws from its own stream, keyed by `(seed, node id, slot)`. So the same
//! seed gives bit-identical weights on burn-flex and LibTorch, whatever order parameters are
//! first touched in (Burn parameters are lazy), and concurrent threads cannot interfere (the
//! flex backend's RNG is one global). The values do not equal PyTorch's for the same seed.

use burn::module::{Param, ParamId};
use burn::tensor::{Device, Shape, Tensor, TensorData};

/// How a parameter tensor is filled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Fill {
    /// `N(0, std^2)`.
    Normal { std: f64 },
    /// `U(-bound, bound)`.
    Uniform { bound: f64 },
    /// Every element equal.
    Constant(f32),
}

/// A small, fast, well-mixed 64-bit generator (Steele, Lea & Flood's SplitMix64).
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// The stream of one parameter: `slot` 0 is a weight, 1 a bias.
fn stream(seed: u64, node: usize, slot: u64) -> SplitMix64 {
    let mut k = SplitMix64::new(seed);
    let a = k.next_u64();
    let mut k = SplitMix64::new(a ^ (node as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ slot);
    SplitMix64::new(k.next_u64())
}

/// `n` values of `fill` from the stream of `(seed, node, slot)`.
pub(crate) fn values(fill: Fill, n: usize, seed: u64, node: usize, slot: u64) -> Vec<f32> {
    match fill {
        Fill::Constant(c) => vec![c; n],
        Fill::Uniform { bound } => {
            let mut r = stream(seed, node, slot);
            (0..n)
                .map(|_| ((r.next_f64() * 2.0 - 1.0) * bound) as f32)
                .collect()
        }
        Fill::Normal { std } => {
            let mut r = stream(seed, node, slot);
            let mut out = Vec::with_capacity(n);
            while out.len() < n {
                // Box–Muller: u1 in (0, 1] so the log is finite.
                let u1 = 1.0 - r.next_f64();
                let u2 = r.next_f64();
                let radius = (-2.0 * u1.ln()).sqrt() * std;
                let angle = std::f64::consts::TAU * u2;
                out.push((radius * angle.cos()) as f32);
                if out.len() < n {
                    out.push((radius * angle.sin()) as f32);
                }
            }
            out
        }
    }
}

/// A lazy parameter of shape `dims` on `device`, filled on first use from its own stream.
pub(crate) fn param<const D: usize>(
    dims: [usize; D],
    fill: Fill,
    seed: u64,
    node: usize,
    slot: u64,
    device: &Device,
) -> Param<Tensor<D>> {
    let n: usize = dims.iter().product();
    Param::uninitialized(
        ParamId::new(),
        move |device, require_grad| {
            tensor(
                TensorData::new(values(fill, n, seed, node, slot), dims),
                device,
                require_grad,
            )
        },
        device.clone(),
        true,
        Shape::new(dims),
    )
}

/// A lazy parameter holding `data` (loaded weights), keeping the id of the parameter it replaces
/// so an optimiser's state stays attached.
pub(crate) fn param_from<const D: usize>(
    id: ParamId,
    data: Vec<f32>,
    dims: [usize; D],
    device: &Device,
) -> Param<Tensor<D>> {
    Param::uninitialized(
        id,
        move |device, require_grad| tensor(TensorData::new(data, dims), device, require_grad),
        device.clone(),
        true,
        Shape::new(dims),
    )
}

fn tensor<const D: usize>(data: TensorData, device: &Device, require_grad: bool) -> Tensor<D> {
    let t = Tensor::<D>::from_data(data, device);
    if require_grad {
        t.require_grad()
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_independent_and_reproducible() {
        let a = values(Fill::Normal { std: 1.0 }, 1000, 7, 3, 0);
        assert_eq!(a, values(Fill::Normal { std: 1.0 }, 1000, 7, 3, 0));
        assert_ne!(a, values(Fill::Normal { std: 1.0 }, 1000, 8, 3, 0));
        assert_ne!(a, values(Fill::Normal { std: 1.0 }, 1000, 7, 4, 0));
        assert_ne!(a, values(Fill::Normal { std: 1.0 }, 1000, 7, 3, 1));
    }

    #[test]
    fn moments_match_the_distributions() {
        let n = 200_000;
        let v = values(Fill::Normal { std: 0.5 }, n, 1, 0, 0);
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var.sqrt() - 0.5).abs() < 0.01, "std {}", var.sqrt());
        let u = values(Fill::Uniform { bound: 0.2 }, n, 1, 0, 0);
        assert!(u.iter().all(|&x| (-0.2..0.2).contains(&x)));
        let var = u.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / n as f64;
        // Var of U(-b, b) is b^2 / 3.
        assert!((var - 0.04 / 3.0).abs() < 0.0005, "var {var}");
    }
}
