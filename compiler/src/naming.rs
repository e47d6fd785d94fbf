//! Weight names: the pass that gives every lowered node the name its parameters are loaded and
//! saved under. `names archc` keeps the report's names (`conv3_x.0.conv1`); `resnet`,
//! `sequential` and `mobilenet` give torchvision's (`layer2.0.conv1`, `features.N`,
//! `features.N.conv.J`). It reads each node's [`NodePath`](crate::graph::NodePath) (stage,
//! repetition, local name), never a dotted name split again.

use std::collections::HashMap;

use crate::graph::{Naming, Node, NodePath, Op};
use crate::infer::TypedGraph;
use crate::lower::LoweredOp;

/// The parts of an expanded node's name: stage, repetition (inside a block) and local name,
/// as expansion recorded them.
fn parts(n: &Node) -> (Option<&str>, Option<u64>, &str) {
    (n.path.stage.as_deref(), n.path.rep, n.path.local.as_str())
}

pub(crate) struct Namer<'a> {
    naming: Naming,
    /// For `resnet`: the layer index (1-based) of each stage that holds blocks.
    layer_of_stage: HashMap<&'a str, usize>,
    linear_count: usize,
    /// For `sequential`: whether the features part has ended, and the running indices.
    in_classifier: bool,
    features: usize,
    classifier: usize,
    /// For `mobilenet`: every graph node's name, worked out before lowering (whether a conv
    /// is `J.0` or `J` depends on the nodes after it).
    mobilenet: Vec<String>,
}

/// The length of the torchvision `Conv2dNormActivation` starting at node `i`: 3 if it is a
/// conv whose BN and activation follow it, else 1 (the node stands alone).
fn conv_unit(nodes: &[Node], i: usize) -> usize {
    let reads = |j: usize, from: usize| {
        nodes
            .get(j)
            .is_some_and(|n| n.inputs.len() == 1 && n.inputs[0].0 == from)
    };
    let unit = matches!(nodes[i].op, Op::Conv2d(_))
        && reads(i + 1, i)
        && matches!(nodes[i + 1].op, Op::BatchNorm { .. })
        && reads(i + 2, i + 1)
        && matches!(nodes[i + 2].op, Op::Act(_));
    if unit {
        3
    } else {
        1
    }
}

/// torchvision's MobileNetV2 names for every node of `nodes`: up to the adaptive pool (or the
/// first fc) each stage layer is `features.N` and each block (one repetition) is
/// `features.N.conv.J`, counting conv units as torchvision does: a conv with its BN and
/// activation is one `Conv2dNormActivation` (`J.0`, `J.1`, `J.2`); any other node is an
/// entry of its own (the linear bottleneck's conv and BN are `J` and `J+1`). A block's add is
/// `features.N.add`. Then `avgpool`, and `classifier.N` for the rest (`classifier.0` is the
/// dropout, `classifier.1` the fc); flatten and softmax are functions in torchvision.
fn mobilenet_names(nodes: &[Node]) -> Vec<String> {
    let mut names = vec![String::new(); nodes.len()];
    let (mut features, mut classifier, mut in_classifier) = (0, 0, false);
    // The current block repetition (stage, repetition), its features index and next entry.
    let mut block: Option<(&str, u64)> = None;
    let (mut at, mut entry) = (0, 0);
    let mut i = 0;
    while i < nodes.len() {
        let n = &nodes[i];
        let fixed = match n.op {
            Op::Input => Some("input"),
            Op::Flatten => Some("flatten"),
            Op::Softmax => Some("softmax"),
            Op::AdaptiveAvgPool2d { .. } if !in_classifier => {
                in_classifier = true;
                Some("avgpool")
            }
            _ => None,
        };
        if let Some(f) = fixed {
            names[i] = f.to_string();
            i += 1;
            continue;
        }
        if matches!(n.op, Op::Linear { .. }) {
            in_classifier = true;
        }
        if in_classifier {
            names[i] = format!("classifier.{classifier}");
            classifier += 1;
            i += 1;
            continue;
        }
        let len = conv_unit(nodes, i);
        let (stage, rep, local) = parts(n);
        let prefix = match (stage, rep) {
            (Some(s), Some(r)) => {
                if block != Some((s, r)) {
                    block = Some((s, r));
                    at = features;
                    entry = 0;
                    features += 1;
                }
                if matches!(n.op, Op::Add | Op::Shortcut { .. } | Op::Highway) {
                    names[i] = format!("features.{at}.{local}");
                    i += 1;
                    continue;
                }
                entry += 1;
                format!("features.{at}.conv.{}", entry - 1)
            }
            _ => {
                block = None;
                features += 1;
                format!("features.{}", features - 1)
            }
        };
        if len == 1 {
            names[i] = prefix;
        } else {
            for k in 0..len {
                names[i + k] = format!("{prefix}.{k}");
            }
        }
        i += len;
    }
    names
}

impl<'a> Namer<'a> {
    pub(crate) fn new(t: &'a TypedGraph) -> Self {
        let mut layer_of_stage = HashMap::new();
        let mut k = 0;
        for s in &t.graph.stages {
            if s.segments
                .iter()
                .any(|x| matches!(x, crate::graph::SegmentInfo::Blocks { .. }))
            {
                k += 1;
                layer_of_stage.insert(s.name.as_str(), k);
            }
        }
        let linear_count = t
            .graph
            .nodes
            .iter()
            .filter(|n| matches!(n.op, Op::Linear { .. }))
            .count();
        Namer {
            naming: t.graph.naming,
            layer_of_stage,
            linear_count,
            in_classifier: false,
            features: 0,
            classifier: 0,
            mobilenet: if t.graph.naming == Naming::Mobilenet {
                mobilenet_names(&t.graph.nodes)
            } else {
                Vec::new()
            },
        }
    }

    /// The name of a lowered node made from `n`; `suffix` distinguishes the parts of a
    /// projection shortcut ("downsample.0", "downsample.1") or an inserted flatten.
    pub(crate) fn name(&mut self, n: &Node, op: &LoweredOp, suffix: Option<&str>) -> String {
        let (stage, rep, local) = parts(n);
        match self.naming {
            // A projection shortcut's parts replace its `shortcut` (`conv3_x.0.downsample.0`);
            // any other suffix (an inserted flatten) follows the node's name.
            Naming::Archc => match suffix {
                Some(s) if local == "shortcut" => NodePath {
                    local: s.to_string(),
                    ..n.path.clone()
                }
                .dotted(),
                Some(s) => format!("{}.{s}", n.name),
                None => n.name.clone(),
            },
            Naming::Resnet => {
                let layer = stage.and_then(|s| self.layer_of_stage.get(s)).copied();
                match (layer, rep) {
                    (Some(k), Some(r)) => match suffix {
                        Some(s) => format!("layer{k}.{r}.{s}"),
                        None => format!("layer{k}.{r}.{local}"),
                    },
                    _ => {
                        if let Some(s) = suffix {
                            return format!("{}.{s}", n.name);
                        }
                        match op {
                            LoweredOp::Linear { .. } if self.linear_count == 1 => "fc".into(),
                            LoweredOp::Conv2d { .. }
                            | LoweredOp::BatchNorm { .. }
                            | LoweredOp::Linear { .. } => local.to_string(),
                            LoweredOp::AdaptiveAvgPool2d { .. } => "avgpool".into(),
                            _ => n.name.clone(),
                        }
                    }
                }
            }
            Naming::Sequential => {
                // torchvision's VGG: `features` up to the adaptive pool, then `avgpool`, then
                // `classifier`; flatten and softmax are functions there, not modules.
                match op {
                    LoweredOp::Flatten => return "flatten".into(),
                    LoweredOp::Softmax => return "softmax".into(),
                    LoweredOp::AdaptiveAvgPool2d { .. } if !self.in_classifier => {
                        self.in_classifier = true;
                        return "avgpool".into();
                    }
                    LoweredOp::Linear { .. } => self.in_classifier = true,
                    _ => {}
                }
                if self.in_classifier {
                    self.classifier += 1;
                    format!("classifier.{}", self.classifier - 1)
                } else {
                    self.features += 1;
                    format!("features.{}", self.features - 1)
                }
            }
            Naming::Mobilenet => {
                let base = &self.mobilenet[n.id.0];
                match suffix {
                    None => base.clone(),
                    // The flatten torchvision calls before the classifier.
                    Some(_) if matches!(op, LoweredOp::Flatten) => "flatten".into(),
                    // A projection shortcut (torchvision's MobileNetV2 has none).
                    Some(s) => match base.strip_suffix(".shortcut") {
                        Some(block) => format!("{block}.{s}"),
                        None => format!("{base}.{s}"),
                    },
                }
            }
        }
    }
}
