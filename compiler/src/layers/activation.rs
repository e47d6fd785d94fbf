//! `relu` and `relu6`: the rectifiers. ReLU follows every conv by default; in a residual block
//! the last one comes after the addition. ReLU6 (`min(max(x, 0), 6)`, MobileNetV2) is chosen
//! with `act relu6`, `act: relu6` or a `relu6` layer.

use super::{Cost, Signature};
use crate::graph::{Activation, Shape};

pub static SIGNATURE: Signature = Signature {
    positional: &[],
    required: 0,
    named: &[],
    example: "relu",
};

pub static SIGNATURE6: Signature = Signature {
    positional: &[],
    required: 0,
    named: &[],
    example: "relu6",
};

/// ReLU: one comparison per element. ReLU6: two (the clamp at 0 and at 6).
pub fn infer(act: Activation, input: Shape) -> (Shape, Cost) {
    let per_element = match act {
        Activation::Relu => 1,
        Activation::Relu6 => 2,
    };
    (
        input,
        Cost {
            flops: per_element * input.numel(),
            ..Cost::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_op_per_element() {
        let (_, c) = infer(Activation::Relu, Shape::Flat { n: 10 });
        assert_eq!(c.flops, 10);
        assert_eq!(c.params, 0);
    }

    #[test]
    fn relu6_clamps_twice_per_element() {
        let (s, c) = infer(Activation::Relu6, Shape::Map { c: 2, h: 3, w: 3 });
        assert_eq!(s, Shape::Map { c: 2, h: 3, w: 3 });
        assert_eq!((c.params, c.flops), (0, 36));
    }
}
