//! Infer: one forward sweep over the expanded graph gives every node its output shape and
//! its cost. Shape and cost come from the same layer rule (`layers::*`).
//!
//! Contract: on success every node has a shape and a cost, and every shortcut a plan
//! (identity, zero-pad/subsample, or projection). A shape error stops the sweep for that
//! network (everything after it would only repeat the same mistake).

use serde::Serialize;

use crate::diag::{CompileError, Diagnostics};
use crate::graph::{Graph, Node, NodeId, Op, Shape};
use crate::layers::args::too_large;
use crate::layers::shortcut::{self, ShortcutPlan};
use crate::layers::{self, merge, Cost, ShapeCtx};

/// The most elements one tensor (per sample) may have.
pub const MAX_ELEMENTS: u128 = 1 << 48;

#[derive(Debug, Clone, Serialize)]
pub struct TypedNode {
    /// The shape of the node's (first) input; the input node's own shape for the input.
    pub input: Shape,
    pub output: Shape,
    pub cost: Cost,
    /// For shortcut nodes: what the shortcut turned out to be. The add of an absent shortcut
    /// (option `identity` where the shape changes) is marked `Absent` too: it passes its first
    /// input through.
    pub plan: Option<ShortcutPlan>,
}

/// A graph with a shape on every edge and a cost on every node.
#[derive(Debug, Clone, Serialize)]
pub struct TypedGraph {
    pub graph: Graph,
    pub nodes: Vec<TypedNode>,
}

impl TypedGraph {
    pub fn input_shape(&self) -> Shape {
        self.nodes[0].output
    }

    pub fn output_shape(&self) -> Shape {
        self.nodes[self.graph.output.0].output
    }

    pub fn typed(&self, id: NodeId) -> &TypedNode {
        &self.nodes[id.0]
    }
}

/// A residual mismatch also labels the layer inside the block that changed the shape: the
/// last one between the block's input and its output whose output differs from its input in
/// the dimension that does not match (the map's size, else the channels).
fn with_cause(
    e: CompileError,
    nodes: &[Node],
    typed: &[TypedNode],
    input: NodeId,
    target: NodeId,
) -> CompileError {
    let CompileError::ResidualMismatch {
        option,
        input: block_in,
        output,
        at,
        reason,
        help,
        ..
    } = e
    else {
        return e;
    };
    let hw = |s: Shape| match s {
        Shape::Map { h, w, .. } => Some((h, w)),
        Shape::Flat { .. } => None,
    };
    let spatial = hw(typed[input.0].output) != hw(typed[target.0].output);
    let changes = |n: &Node| {
        let t = &typed[n.id.0];
        if spatial {
            hw(t.input) != hw(t.output)
        } else {
            t.input.channels() != t.output.channels()
        }
    };
    let file = nodes[target.0].span.file;
    let cause = nodes[input.0 + 1..=target.0].iter().rev().find(|n| {
        n.inputs.len() == 1
            && changes(n)
            && n.span.file == file
            && n.span != nodes[target.0].stage_span
    });
    let (cause, cause_text) = match cause {
        Some(n) => {
            let t = &typed[n.id.0];
            (
                Some(crate::diag::at(n.span)),
                format!("`{}` changes {} to {}", n.name, t.input, t.output),
            )
        }
        None => (None, String::new()),
    };
    CompileError::ResidualMismatch {
        option,
        input: block_in,
        output,
        at,
        reason,
        cause,
        cause_text,
        help,
    }
}

pub fn infer(graph: Graph) -> Result<TypedGraph, Diagnostics> {
    let mut typed: Vec<TypedNode> = Vec::with_capacity(graph.nodes.len());
    for node in &graph.nodes {
        match infer_node(&graph.nodes, graph.input, &typed, node) {
            Ok(t) => typed.push(t),
            Err(e) => {
                let mut d = Diagnostics::new();
                d.push(node.span.file, e);
                return Err(d);
            }
        }
    }
    Ok(TypedGraph {
        graph,
        nodes: typed,
    })
}

/// The shape and cost of `node`, given the typed nodes before it (`typed[i]` is `nodes[i]`'s).
/// The sweep of [`infer`], one step; `expand` calls it too where a block reads `in.c`.
pub(crate) fn infer_node(
    nodes: &[Node],
    input: Shape,
    typed: &[TypedNode],
    node: &Node,
) -> Result<TypedNode, CompileError> {
    let network_hw = match input {
        Shape::Map { h, w, .. } => Some((h, w)),
        Shape::Flat { .. } => None,
    };
    let in_shape = match node.inputs.first() {
        Some(i) => typed[i.0].output,
        None => input,
    };
    let ctx = ShapeCtx {
        name: &node.name,
        span: node.span,
        network_hw,
    };
    let result = match &node.op {
        Op::Shortcut {
            option,
            stride,
            target,
        } => shortcut::infer(&ctx, *option, *stride, in_shape, typed[target.0].output)
            .map(|(s, c, p)| (s, c, Some(p)))
            .map_err(|e| with_cause(e, nodes, typed, node.inputs[0], *target)),
        Op::Add
            if node
                .inputs
                .get(1)
                .is_some_and(|i| typed[i.0].plan == Some(ShortcutPlan::Absent)) =>
        {
            Ok((in_shape, Cost::default(), Some(ShortcutPlan::Absent)))
        }
        Op::Merge(kind) => {
            let inputs: Vec<Shape> = node.inputs.iter().map(|i| typed[i.0].output).collect();
            merge::infer(*kind, &inputs, node.span, &node.branches).map(|(s, c)| (s, c, None))
        }
        op => {
            let inputs: Vec<Shape> = if node.inputs.is_empty() {
                vec![input]
            } else {
                node.inputs.iter().map(|i| typed[i.0].output).collect()
            };
            layers::infer(&ctx, op, &inputs).map(|(s, c)| (s, c, None))
        }
    };
    // A tensor beyond 2^48 elements per sample is no network anyone can run; refusing it
    // keeps every later product far from overflow.
    let (output, cost, plan) = result?;
    if output.numel() > MAX_ELEMENTS {
        return Err(too_large(
            &format!("the output of `{}` ({output}), in elements,", node.name),
            output.numel(),
            MAX_ELEMENTS,
            node.span,
        ));
    }
    Ok(TypedNode {
        input: in_shape,
        output,
        cost,
        plan,
    })
}
