//! The residual addition `F(x) + shortcut(x)`: one add per element.

use super::Cost;
use crate::graph::Shape;

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
    fn one_add_per_element() {
        let (_, c) = super::infer(crate::graph::Shape::Map { c: 2, h: 3, w: 3 });
        assert_eq!(c.flops, 18);
    }
}
