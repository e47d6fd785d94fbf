//! Merges of parallel branches (`concat`, `add`, `mul`, `max`) and the channel split that feeds
//! `concat split`. Shape rules are n-ary; a mismatch names every branch with its shape.
//!
//! Costs (docs/language.md): `concat` and `split` move data and count no operations; `add`
//! and `max` count one operation per output element for each branch after the first; `mul`
//! counts one multiplication per output element for each branch after the first (a C×1×1
//! gate broadcasts over the map, as squeeze-and-excitation's scaling does). None of them has
//! parameters or multiply-adds.

use archc_grammar::ast::{MergeKind, Span};

use super::{Cost, Keep, TrainCost, Work};
use crate::diag::{at, CompileError};
use crate::graph::Shape;

/// One branch as the diagnostics name it: its name and its span.
pub type BranchSpan = (String, Span);

fn spatial(s: Shape) -> Option<(u64, u64)> {
    match s {
        Shape::Map { h, w, .. } => Some((h, w)),
        Shape::Flat { .. } => None,
    }
}

/// The output of merging `inputs` (one per branch, in order) by `kind`.
pub fn infer(
    kind: MergeKind,
    inputs: &[Shape],
    merge_span: Span,
    branches: &[BranchSpan],
) -> Result<(Shape, Cost), CompileError> {
    let first = inputs[0];
    let out = match kind {
        MergeKind::Concat => {
            let same_kind = inputs.iter().all(|s| spatial(*s) == spatial(first));
            if !same_kind {
                return Err(mismatch(
                    kind,
                    inputs,
                    merge_span,
                    branches,
                    "concatenation along the channels needs one map size (or all vectors)",
                ));
            }
            let c: u64 = inputs.iter().map(|s| s.channels()).sum();
            match first {
                Shape::Map { h, w, .. } => Shape::Map { c, h, w },
                Shape::Flat { .. } => Shape::Flat { n: c },
            }
        }
        MergeKind::Add | MergeKind::Max => {
            if inputs.iter().any(|s| *s != first) {
                return Err(mismatch(
                    kind,
                    inputs,
                    merge_span,
                    branches,
                    "an elementwise merge needs one shape on every branch",
                ));
            }
            first
        }
        MergeKind::Mul => {
            // The largest shape; every other one equals it or is a gate over its channels. A
            // map wins over a vector of as many elements: a C gate over a C×1×1 map gives the
            // map (the runtime views the vector as C×1×1), in either order.
            let big = *inputs
                .iter()
                .max_by_key(|s| (s.numel(), matches!(s, Shape::Map { .. })))
                .expect("a merge has branches");
            let fits = |s: &Shape| {
                *s == big
                    || (s.channels() == big.channels()
                        && match *s {
                            Shape::Flat { .. } => true,
                            Shape::Map { h, w, .. } => h == 1 && w == 1,
                        })
            };
            if !inputs.iter().all(fits) {
                return Err(mismatch(
                    kind,
                    inputs,
                    merge_span,
                    branches,
                    "a product needs one shape, or a C×1×1 (or C) gate and a C×H×W map",
                ));
            }
            big
        }
    };
    let ops = match kind {
        MergeKind::Concat => 0,
        _ => out.numel() * (inputs.len() as u128 - 1),
    };
    Ok((
        out,
        Cost {
            flops: ops,
            ..Cost::default()
        },
    ))
}

/// Training of a merge: `concat` and `add` keep nothing (their backward slices or passes the
/// gradient on: no FLOPs); `mul` and `max` keep every input. `mul`'s input gradients are
/// the output gradient times the other inputs (k·(k − 1) multiplies per output element for k
/// branches), plus one add per output element for each branch broadcast over the map (a
/// squeeze-and-excitation gate's gradient is summed over H and W); `max` routes the gradient
/// with the forward's comparisons.
pub fn training(kind: MergeKind, inputs: &[Shape], output: Shape) -> TrainCost {
    let e = output.numel();
    let k = inputs.len() as u128;
    match kind {
        MergeKind::Concat | MergeKind::Add => TrainCost::default(),
        MergeKind::Max => TrainCost::elementwise(Some(Keep::Inputs), k - 1, e),
        MergeKind::Mul => {
            let broadcast = inputs.iter().filter(|s| s.numel() < e).count() as u128;
            TrainCost {
                keeps: vec![Keep::Inputs],
                input_grad: Work::elementwise(k * (k - 1) + broadcast, e),
                ..TrainCost::default()
            }
        }
    }
}

/// Training of a channel split (`concat split`): a view of its input's channels, as
/// `torch.chunk` gives (what keeps a part keeps the whole input's tensor).
pub fn training_split() -> TrainCost {
    TrainCost::view()
}

fn mismatch(
    kind: MergeKind,
    inputs: &[Shape],
    merge_span: Span,
    branches: &[BranchSpan],
    why: &str,
) -> CompileError {
    let shapes: Vec<String> = inputs.iter().map(Shape::to_string).collect();
    CompileError::MergeMismatch {
        kind: kind.word(),
        shapes: shapes.join(", "),
        at: at(merge_span),
        branches: branches
            .iter()
            .zip(&shapes)
            .map(|((name, span), s)| {
                miette::LabeledSpan::new_with_span(Some(format!("{name}: {s}")), at(*span))
            })
            .collect(),
        help: why.to_string(),
    }
}

/// Part `index` of `parts` equal parts of the input's channels (ShuffleNetV2's split).
pub fn infer_split(
    parts: u64,
    input: Shape,
    merge_span: Span,
) -> Result<(Shape, Cost), CompileError> {
    let c = input.channels();
    if parts == 0 || !c.is_multiple_of(parts) {
        return Err(CompileError::SplitChannels {
            parts,
            channels: c,
            at: at(merge_span),
            help: format!(
                "`split` gives each of the {parts} branches an equal part of the channels; make the input's channels a multiple of {parts}"
            ),
        });
    }
    let out = match input {
        Shape::Map { h, w, .. } => Shape::Map { c: c / parts, h, w },
        Shape::Flat { .. } => Shape::Flat { n: c / parts },
    };
    Ok((out, Cost::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(c: u64, h: u64) -> Shape {
        Shape::Map { c, h, w: h }
    }

    fn branches(n: usize) -> Vec<BranchSpan> {
        (0..n).map(|i| (format!("b{i}"), Span::default())).collect()
    }

    #[test]
    fn concat_sums_channels_and_costs_nothing() {
        // GoogLeNet's inception3a: 64 + 128 + 32 + 32 = 256 channels at 28x28.
        let ins = [map(64, 28), map(128, 28), map(32, 28), map(32, 28)];
        let (s, c) = infer(MergeKind::Concat, &ins, Span::default(), &branches(4)).unwrap();
        assert_eq!(s, map(256, 28));
        assert_eq!(c, Cost::default());
    }

    #[test]
    fn mul_broadcasts_a_gate_and_counts_one_product_per_element() {
        let ins = [map(64, 14), map(64, 1)];
        let (s, c) = infer(MergeKind::Mul, &ins, Span::default(), &branches(2)).unwrap();
        assert_eq!(s, map(64, 14));
        assert_eq!(c.flops, 64 * 14 * 14);
        let flat_gate = [map(64, 14), Shape::Flat { n: 64 }];
        assert!(infer(MergeKind::Mul, &flat_gate, Span::default(), &branches(2)).is_ok());
        // On a 1x1 map, a vector gate keeps the map, whichever branch comes first.
        for ins in [
            [map(64, 1), Shape::Flat { n: 64 }],
            [Shape::Flat { n: 64 }, map(64, 1)],
        ] {
            let (s, _) = infer(MergeKind::Mul, &ins, Span::default(), &branches(2)).unwrap();
            assert_eq!(s, map(64, 1));
        }
        let wrong = [map(64, 14), map(32, 1)];
        assert!(infer(MergeKind::Mul, &wrong, Span::default(), &branches(2)).is_err());
    }

    #[test]
    fn add_of_three_counts_two_per_element() {
        let ins = [map(8, 2); 3];
        let (_, c) = infer(MergeKind::Add, &ins, Span::default(), &branches(3)).unwrap();
        assert_eq!(c.flops, 2 * 8 * 4);
    }

    #[test]
    fn mismatched_branches_name_each_shape() {
        let ins = [map(64, 28), map(64, 14)];
        let e = infer(MergeKind::Concat, &ins, Span::default(), &branches(2)).unwrap_err();
        let CompileError::MergeMismatch {
            shapes, branches, ..
        } = e
        else {
            panic!("{e:?}")
        };
        assert_eq!(shapes, "64x28x28, 64x14x14");
        assert_eq!(branches[1].label(), Some("b1: 64x14x14"));
    }

    #[test]
    fn split_needs_a_multiple() {
        assert_eq!(
            infer_split(2, map(116, 28), Span::default()).unwrap().0,
            map(58, 28)
        );
        assert!(infer_split(2, map(115, 28), Span::default()).is_err());
    }
}
