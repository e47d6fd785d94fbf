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
    /// For `googlenet`, `densenet` and `nested`: every weight-bearing node's name, worked out
    /// before lowering (an index or a suffix depends on the other nodes of its container).
    precomputed: Vec<Option<String>>,
}

/// Whether node `n` holds weights once lowered.
fn weighted(n: &Node) -> bool {
    match &n.op {
        Op::Conv2d(_) | Op::BatchNorm { .. } | Op::Linear { .. } => true,
        Op::Act(a) => !a.param_shapes(1).is_empty(),
        Op::Unit(u) => crate::layers::rules(u.kind).is_some(),
        _ => false,
    }
}

/// The container a node sits in: its stage, repetition and branch path.
type Container<'a> = (Option<&'a str>, Option<u64>, &'a [String]);

fn container(n: &Node) -> Container<'_> {
    (n.path.stage.as_deref(), n.path.rep, &n.path.branch)
}

/// The nodes of each container, in order.
fn containers(nodes: &[Node]) -> HashMap<Container<'_>, Vec<usize>> {
    let mut m: HashMap<Container, Vec<usize>> = HashMap::new();
    for n in nodes {
        m.entry(container(n)).or_default().push(n.id.0);
    }
    m
}

/// A container's elements as torchvision groups them into `BasicConv2d`s: a conv with the BN
/// that reads it (and the activation after) is one element; any other node one of its own.
/// Each node's (element index, role): role `conv`, `bn` or `` (a node standing alone).
fn basic_conv_elements(nodes: &[Node], ids: &[usize]) -> Vec<(usize, &'static str)> {
    let mut out = Vec::with_capacity(ids.len());
    let mut k = 0;
    let mut i = 0;
    while i < ids.len() {
        let n = &nodes[ids[i]];
        let bn_next = ids.get(i + 1).is_some_and(|&j| {
            matches!(nodes[j].op, Op::BatchNorm { .. }) && nodes[j].inputs == [n.id]
        });
        if matches!(n.op, Op::Conv2d(_)) && bn_next {
            out.push((k, "conv"));
            out.push((k, "bn"));
            i += 2;
            if ids
                .get(i)
                .is_some_and(|&j| matches!(nodes[j].op, Op::Act(_)))
            {
                out.push((k, "relu"));
                i += 1;
            }
        } else {
            out.push((k, ""));
            i += 1;
        }
        k += 1;
    }
    out
}

/// torchvision's GoogLeNet names (see [`Naming::Googlenet`]).
fn googlenet_names(nodes: &[Node]) -> Vec<Option<String>> {
    let mut names = vec![None; nodes.len()];
    for ((stage, rep, branch), ids) in containers(nodes) {
        let Some(stage) = stage else { continue };
        let els = basic_conv_elements(nodes, &ids);
        let count = els.last().map_or(0, |e| e.0 + 1);
        for (&id, &(k, role)) in ids.iter().zip(&els) {
            let n = &nodes[id];
            if !weighted(n) {
                continue;
            }
            let name = if !branch.is_empty() {
                // A branch: one BasicConv2d, or a Sequential of them (a pool counts too).
                let b = format!("{stage}.{}", branch.join("."));
                let el = if count == 1 { b } else { format!("{b}.{k}") };
                format!("{el}.{role}")
            } else if rep.is_some() {
                // A block without branches (the auxiliary classifier): its BasicConv2d is
                // `conv`, its fcs keep their names.
                match role {
                    "" => format!("{stage}.{}", n.path.local),
                    r => format!("{stage}.conv.{r}"),
                }
            } else {
                match role {
                    "" if matches!(n.op, Op::Linear { .. }) => "fc".to_string(),
                    "" => format!("{stage}.{}", n.path.local),
                    r => format!("{stage}.{r}"),
                }
            };
            names[id] = Some(name);
        }
    }
    names
}

/// torchvision's Inception-v3 names (see [`Naming::Inception`]).
fn inception_names(nodes: &[Node]) -> Vec<Option<String>> {
    let mut names = vec![None; nodes.len()];
    let all = containers(nodes);
    // The convs of each container, in order (a pool or dropout is not a BasicConv2d).
    let conv_count = |ids: &[usize]| {
        basic_conv_elements(nodes, ids)
            .iter()
            .filter(|e| e.1 == "conv")
            .count()
    };
    for (&(stage, rep, branch), ids) in &all {
        let Some(stage) = stage else { continue };
        let els = basic_conv_elements(nodes, ids);
        let convs = conv_count(ids);
        // A branch that nested branches follow is numbered even with one conv of its own
        // (Inception-E's `branch3x3_1` before `branch3x3_2a`).
        let has_nested = all.keys().any(|&(s, r, b)| {
            s == Some(stage) && r == rep && b.len() > branch.len() && b.starts_with(branch)
        });
        let mut ordinal = 0;
        let mut last_element = usize::MAX;
        for (&id, &(k, role)) in ids.iter().zip(&els) {
            if role == "conv" && k != last_element {
                ordinal += 1;
                last_element = k;
            }
            let n = &nodes[id];
            if !weighted(n) {
                continue;
            }
            let linear = matches!(n.op, Op::Linear { .. });
            let name = match (branch, role) {
                ([], "") if linear && rep.is_some() => format!("{stage}.fc"),
                ([], "") if linear => "fc".to_string(),
                ([], "") => format!("{stage}.{}", n.path.local),
                ([], r) if rep.is_some() => format!("{stage}.conv{}.{r}", ordinal - 1),
                ([], r) => format!("{stage}.{r}"),
                ([b], r) if convs == 1 && !has_nested => format!("{stage}.{b}.{r}"),
                ([b], r) => format!("{stage}.{b}_{ordinal}.{r}"),
                ([b, sub], r) if convs == 1 => {
                    // After the parent branch's own convs.
                    let parent: &[String] = std::slice::from_ref(b);
                    let before = all
                        .get(&(Some(stage), rep, parent))
                        .map_or(0, |p| conv_count(p));
                    format!("{stage}.{b}_{}{sub}.{r}", before + 1)
                }
                _ => n.name.clone(),
            };
            names[id] = Some(name);
        }
    }
    names
}

/// torchvision's DenseNet names (see [`Naming::Densenet`]): a stage line's conv is
/// `features.STAGE` and its BN `features.normD` (D the stage name's digits) or, without a conv,
/// `features.STAGE`; a block repetition is `features.STAGE.denseblockR` when the stage repeats
/// it (`denselayer`, counted from 1), else `features.STAGE`, and in it the k-th conv and BN are
/// `convk`, `normk` (no k when there is one); a stage line's fc is `STAGE`.
fn densenet_names(nodes: &[Node]) -> Vec<Option<String>> {
    let mut names = vec![None; nodes.len()];
    let mut reps: HashMap<&str, u64> = HashMap::new();
    for n in nodes {
        if let (Some(s), Some(r)) = (n.path.stage.as_deref(), n.path.rep) {
            let e = reps.entry(s).or_insert(0);
            *e = (*e).max(r + 1);
        }
    }
    for ((stage, rep, _), ids) in containers(nodes) {
        let Some(stage) = stage else { continue };
        let digits: String = stage.chars().filter(char::is_ascii_digit).collect();
        let has_conv = ids.iter().any(|&i| matches!(nodes[i].op, Op::Conv2d(_)));
        let (mut convs, mut bns) = (0, 0);
        let total = |kind: fn(&Op) -> bool| ids.iter().filter(|&&i| kind(&nodes[i].op)).count();
        let n_convs = total(|o| matches!(o, Op::Conv2d(_)));
        let n_bns = total(|o| matches!(o, Op::BatchNorm { .. }));
        for &id in &ids {
            let n = &nodes[id];
            if !weighted(n) {
                continue;
            }
            let name = match (rep, &n.op) {
                (None, Op::Conv2d(_)) => format!("features.{stage}"),
                (None, Op::BatchNorm { .. }) if has_conv => format!("features.norm{digits}"),
                (None, Op::BatchNorm { .. }) => format!("features.{stage}"),
                (None, _) => stage.to_string(),
                (Some(r), op) => {
                    let c = if reps.get(stage).copied().unwrap_or(1) > 1 {
                        format!("features.{stage}.denselayer{}", r + 1)
                    } else {
                        format!("features.{stage}")
                    };
                    let (what, k, n_of) = match op {
                        Op::Conv2d(_) => {
                            convs += 1;
                            ("conv", convs, n_convs)
                        }
                        Op::BatchNorm { .. } => {
                            bns += 1;
                            ("norm", bns, n_bns)
                        }
                        _ => (n.path.local.as_str(), 0, 0),
                    };
                    if n_of > 1 {
                        format!("{c}.{what}{k}")
                    } else {
                        format!("{c}.{what}")
                    }
                }
            };
            names[id] = Some(name);
        }
    }
    names
}

/// torchvision's MobileNetV3 (`per_stage` false) and EfficientNet (`per_stage` true) names:
/// see [`Naming::MobilenetV3`] and [`Naming::Efficientnet`].
fn features_names(nodes: &[Node], per_stage: bool) -> Vec<Option<String>> {
    let mut names = vec![None; nodes.len()];
    let (mut features, mut classifier, mut in_classifier) = (0usize, 0usize, false);
    // The current block repetition, its `features…` prefix and its next entry; the current
    // stage line of blocks (per stage) and its features index.
    let mut block: Option<(&str, u64)> = None;
    let mut stage_of_blocks: Option<(&str, usize)> = None;
    let (mut prefix, mut entry) = (String::new(), 0usize);
    // A merge's branch nodes (a gate) belong to the entry of the merge that follows them.
    let mut gate_entry: Option<usize> = None;
    let mut i = 0;
    while i < nodes.len() {
        let n = &nodes[i];
        match n.op {
            Op::Input | Op::Flatten | Op::Softmax => {
                i += 1;
                continue;
            }
            Op::AdaptiveAvgPool2d { .. } if !in_classifier && n.path.branch.is_empty() => {
                in_classifier = true;
                i += 1;
                continue;
            }
            _ => {}
        }
        if in_classifier {
            if weighted(n) {
                names[i] = Some(format!("classifier.{classifier}"));
            }
            classifier += 1;
            i += 1;
            continue;
        }
        let (stage, rep) = (n.path.stage.as_deref(), n.path.rep);
        match (stage, rep) {
            (Some(s), Some(r)) => {
                if block != Some((s, r)) {
                    block = Some((s, r));
                    entry = 0;
                    gate_entry = None;
                    prefix = if per_stage {
                        let at = match stage_of_blocks {
                            Some((t, at)) if t == s => at,
                            _ => {
                                features += 1;
                                stage_of_blocks = Some((s, features - 1));
                                features - 1
                            }
                        };
                        format!("features.{at}.{r}")
                    } else {
                        features += 1;
                        format!("features.{}", features - 1)
                    };
                }
                if !n.path.branch.is_empty() {
                    // A gate: its convs are `fc1`, `fc2` of one entry.
                    let j = *gate_entry.get_or_insert_with(|| {
                        entry += 1;
                        entry - 1
                    });
                    if weighted(n) {
                        let k = nodes[..=i]
                            .iter()
                            .filter(|m| {
                                m.path.branch == n.path.branch
                                    && m.path.rep == n.path.rep
                                    && m.path.stage == n.path.stage
                                    && weighted(m)
                            })
                            .count();
                        names[i] = Some(format!("{prefix}.block.{j}.fc{k}"));
                    }
                    i += 1;
                    continue;
                }
                if matches!(n.op, Op::Merge(_)) {
                    gate_entry = None;
                    i += 1;
                    continue;
                }
                if !weighted(n) {
                    i += 1;
                    continue;
                }
                let len = conv_unit_bn(nodes, i);
                for k in 0..len {
                    if weighted(&nodes[i + k]) {
                        names[i + k] = Some(format!("{prefix}.block.{entry}.{k}"));
                    }
                }
                entry += 1;
                i += len;
            }
            _ => {
                block = None;
                stage_of_blocks = None;
                if !weighted(n) {
                    i += 1;
                    continue;
                }
                let len = conv_unit_bn(nodes, i);
                features += 1;
                for k in 0..len {
                    if weighted(&nodes[i + k]) {
                        names[i + k] = Some(format!("features.{}.{k}", features - 1));
                    }
                }
                i += len;
            }
        }
    }
    names
}

/// The length of a `Conv2dNormActivation` at node `i`: a conv, the BN that reads it, and an
/// activation after (3), without one (2), or the node alone (1).
fn conv_unit_bn(nodes: &[Node], i: usize) -> usize {
    let reads = |j: usize, from: usize| {
        nodes
            .get(j)
            .is_some_and(|n| n.inputs.len() == 1 && n.inputs[0].0 == from)
    };
    if !(matches!(nodes[i].op, Op::Conv2d(_))
        && reads(i + 1, i)
        && matches!(nodes[i + 1].op, Op::BatchNorm { .. }))
    {
        return 1;
    }
    if reads(i + 2, i + 1) && matches!(nodes[i + 2].op, Op::Act(_)) {
        3
    } else {
        2
    }
}

/// Every stage line, block repetition and branch a `nn.Sequential` (see [`Naming::Nested`]):
/// the k-th node of a container is `PATH.k`, PATH its stage, repetition and branches; a stage
/// line whose only weights are one fc names it `fc`.
fn nested_names(nodes: &[Node]) -> Vec<Option<String>> {
    let mut names = vec![None; nodes.len()];
    for ((stage, rep, branch), ids) in containers(nodes) {
        let Some(stage) = stage else { continue };
        let mut path = stage.to_string();
        if let Some(r) = rep {
            path += &format!(".{r}");
        }
        for b in branch {
            path += &format!(".{b}");
        }
        // Merges, splits and adds are functions in torchvision, not entries.
        let entries: Vec<usize> = ids
            .iter()
            .copied()
            .filter(|&i| !matches!(nodes[i].op, Op::Merge(_) | Op::Split { .. } | Op::Add))
            .collect();
        let lone_fc = rep.is_none()
            && entries.iter().filter(|&&i| weighted(&nodes[i])).count() == 1
            && entries
                .iter()
                .any(|&i| matches!(nodes[i].op, Op::Linear { .. }));
        for (k, &id) in entries.iter().enumerate() {
            if !weighted(&nodes[id]) {
                continue;
            }
            names[id] = Some(if lone_fc {
                "fc".to_string()
            } else {
                format!("{path}.{k}")
            });
        }
    }
    names
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

/// torchvision's ConvNeXt names (see [`Naming::Convnext`]): each stage line is the next
/// `features.S`; a stage line of blocks holds repetitions `features.S.R`, whose residual
/// branch is `block.J` with torchvision's entry indices (the depthwise conv is `block.0`;
/// torchvision permutes to channels-last after it, so every later entry is one further on:
/// `block.2` layer norm, `block.3` and `block.5` the pointwise layers) and whose layer scale
/// is `features.S.R` itself (its tensor `features.S.R.layer_scale`); any other stage line's
/// k-th layer is `features.S.k`. After the adaptive pool, `classifier.K`, counting the
/// flatten torchvision puts before the fc (`classifier.0` layer norm, `classifier.2` fc).
fn convnext_names(nodes: &[Node]) -> Vec<Option<String>> {
    let mut names = vec![None; nodes.len()];
    let (mut features, mut classifier, mut in_classifier) = (0usize, 0usize, false);
    let mut stage_at: Option<(&str, usize)> = None;
    // Entries so far in the current container (stage line, or a repetition's branch).
    let mut entries: HashMap<Container, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        match n.op {
            Op::Input | Op::Flatten | Op::Softmax => continue,
            Op::AdaptiveAvgPool2d { .. } if !in_classifier && n.path.branch.is_empty() => {
                in_classifier = true;
                continue;
            }
            _ => {}
        }
        if in_classifier {
            if matches!(n.op, Op::Linear { .. }) {
                // torchvision's `nn.Flatten()` entry before the fc.
                classifier += 1;
            }
            if weighted(n) {
                names[i] = Some(format!("classifier.{classifier}"));
            }
            classifier += 1;
            continue;
        }
        let Some(stage) = n.path.stage.as_deref() else {
            continue;
        };
        let at = match stage_at {
            Some((s, at)) if s == stage => at,
            _ => {
                features += 1;
                stage_at = Some((stage, features - 1));
                features - 1
            }
        };
        if matches!(n.op, Op::Merge(_) | Op::Add | Op::Split { .. }) {
            continue;
        }
        let k = entries.entry(container(n)).or_insert(0);
        let entry = *k;
        *k += 1;
        names[i] = match (n.path.rep, n.path.branch.first()) {
            (Some(r), Some(_)) if matches!(&n.op, Op::Unit(u) if u.kind == "layer_scale") => {
                Some(format!("features.{at}.{r}"))
            }
            (Some(r), Some(b)) => {
                let j = if entry == 0 { 0 } else { entry + 1 };
                Some(format!("features.{at}.{r}.{b}.{j}"))
            }
            (Some(r), None) => Some(format!("features.{at}.{r}.{entry}")),
            (None, _) => Some(format!("features.{at}.{entry}")),
        };
        if !weighted(n) {
            names[i] = None;
        }
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
            precomputed: match t.graph.naming {
                Naming::Googlenet => googlenet_names(&t.graph.nodes),
                Naming::Densenet => densenet_names(&t.graph.nodes),
                Naming::Nested => nested_names(&t.graph.nodes),
                Naming::MobilenetV3 => features_names(&t.graph.nodes, false),
                Naming::Efficientnet => features_names(&t.graph.nodes, true),
                Naming::Convnext => convnext_names(&t.graph.nodes),
                Naming::Inception => inception_names(&t.graph.nodes),
                _ => Vec::new(),
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
            Naming::Googlenet
            | Naming::Densenet
            | Naming::Nested
            | Naming::MobilenetV3
            | Naming::Efficientnet
            | Naming::Convnext
            | Naming::Inception => {
                // Weight-bearing nodes by the scheme; the rest keep archc's (unique) names.
                match (&self.precomputed[n.id.0], suffix) {
                    (Some(base), None) => base.clone(),
                    (_, Some(s)) => format!("{}.{s}", n.name),
                    (None, None) => n.name.clone(),
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
