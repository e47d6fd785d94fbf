//! The Highway combination of a block under `shortcut gated` (Srivastava et al. 2015):
//! `y = F(x)·T + x·(1 − T)` with `T = sigmoid(g)`, where `g` is the gate's pre-activation
//! (`shortcut.rs`, plan `Gate`). Its inputs are `[F(x), x, g]`, all of one shape; the shortcut
//! rule has already checked that the block keeps its input's shape.

use super::Cost;
use crate::graph::Shape;

/// FLOPs per element: the sigmoid (exponential, add, division: 3, as softmax counts them) and
/// the mix written as `x + T·(F − x)` (subtract, multiply, add: 3).
pub const FLOPS_PER_ELEMENT: u128 = 6;

pub fn infer(input: Shape) -> (Shape, Cost) {
    (
        input,
        Cost {
            flops: FLOPS_PER_ELEMENT * input.numel(),
            ..Cost::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_and_mix_per_element_no_parameters() {
        let (s, c) = infer(Shape::Map { c: 16, h: 4, w: 4 });
        assert_eq!(s, Shape::Map { c: 16, h: 4, w: 4 });
        assert_eq!(
            c,
            Cost {
                flops: 6 * 256,
                ..Cost::default()
            }
        );
    }
}
