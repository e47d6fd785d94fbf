//! `bn`: batch normalisation over channels. Two trainable vectors (scale, shift) and two
//! buffers (running mean and variance). Applied after a conv by default.

use super::{Cost, Signature};
use crate::graph::Shape;

pub static SIGNATURE: Signature = Signature {
    positional: &[],
    required: 0,
    named: &[],
    example: "bn",
};

/// Inference-time cost: one multiply and one add per element (scale and shift folded).
pub fn infer(input: Shape) -> (Shape, Cost) {
    let c = input.channels() as u128;
    (
        input,
        Cost {
            params: 2 * c,
            buffers: 2 * c,
            macs: 0,
            flops: 2 * input.numel(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_scale_shift_and_running_stats() {
        let (s, c) = infer(Shape::Map { c: 64, h: 2, w: 2 });
        assert_eq!(s, Shape::Map { c: 64, h: 2, w: 2 });
        assert_eq!((c.params, c.buffers, c.flops), (128, 128, 512));
    }
}
