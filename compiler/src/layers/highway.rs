//! The Highway combination of a block under `shortcut gated` (Srivastava et al. 2015):
//! `y = F(x)·T + x·(1 − T)` with `T = sigmoid(g)`, where `g` is the gate's pre-activation
//! (`shortcut.rs`, plan `Gate`). Its inputs are `[F(x), x, g]`, all of one shape; the shortcut
//! rule has already checked that the block keeps its input's shape.

use super::{Cost, Dtype, Extra, Keep, TrainCost, Work};
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

/// Training, as `h * t + x * (1 - t)` with `t = sigmoid(g)` runs in PyTorch: it keeps `F(x)`
/// and `x` (inputs 0 and 1), `t` and `1 − t` (each of the output's size). Backward per
/// element: `dy·t`, `dy·(1 − t)`, `dt = dy·(F − x)` (2) and `dg = dt·t·(1 − t)` (2): 6.
pub fn training(output: Shape) -> TrainCost {
    let e = output.numel();
    let kept = |what| Extra {
        what,
        elements: e,
        per_sample: true,
        dtype: Dtype::Activation,
    };
    TrainCost {
        keeps: vec![Keep::Input(0), Keep::Input(1)],
        extras: vec![kept("gate T"), kept("1 - T")],
        input_grad: Work::elementwise(6, e),
        ..TrainCost::default()
    }
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
