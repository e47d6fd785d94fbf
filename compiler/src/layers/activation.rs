//! `relu`: the rectifier. Applied after every conv by default; in a residual block the last
//! one comes after the addition.

use super::{Cost, Signature};
use crate::graph::Shape;

pub static SIGNATURE: Signature = Signature {
    positional: &[],
    required: 0,
    named: &[],
    example: "relu",
};

/// One comparison per element.
pub fn infer(input: Shape) -> (Shape, Cost) {
    (
        input,
        Cost {
            flops: input.numel(),
            ..Cost::default()
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_op_per_element() {
        let (_, c) = super::infer(crate::graph::Shape::Flat { n: 10 });
        assert_eq!(c.flops, 10);
        assert_eq!(c.params, 0);
    }
}
