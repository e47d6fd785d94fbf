//! The expanded network: a list of nodes in topological order (every input of a node comes
//! before it), each with the op it computes, its hierarchical name and the source span it came
//! from. Shapes are not known here; `infer` computes them in one forward sweep.

pub use archc_grammar::ast::MergeKind;
use archc_grammar::ast::Span;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct NodeId(pub usize);

/// A tensor shape per sample: a feature map C×H×W, or a flat vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Shape {
    Map { c: u64, h: u64, w: u64 },
    Flat { n: u64 },
}

impl Shape {
    pub fn dims(&self) -> Vec<u64> {
        match *self {
            Shape::Map { c, h, w } => vec![c, h, w],
            Shape::Flat { n } => vec![n],
        }
    }

    /// Elements per sample.
    pub fn numel(&self) -> u128 {
        self.dims().iter().map(|&d| d as u128).product()
    }

    pub fn channels(&self) -> u64 {
        match *self {
            Shape::Map { c, .. } => c,
            Shape::Flat { n } => n,
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shape::Map { c, h, w } => write!(f, "{c}x{h}x{w}"),
            Shape::Flat { n } => write!(f, "{n}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ShortcutOption {
    /// No shortcut: a plain network.
    None,
    /// Identity; zero-padded channels and strided subsampling where the shape changes.
    A,
    /// Identity; a 1x1 projection (conv + BN) where the shape changes.
    B,
    /// A 1x1 projection (conv + BN) on every block.
    C,
    /// Identity where the shapes match, no shortcut where they differ (torchvision's
    /// `InvertedResidual.use_res_connect`).
    Identity,
    /// Highway networks (Srivastava et al. 2015): `y = F(x)·T(x) + x·(1 − T(x))` with a learned
    /// gate `T(x) = sigmoid(conv1x1(x) + b)`; the block must keep its input's shape.
    Gated,
}

impl ShortcutOption {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => ShortcutOption::None,
            "A" => ShortcutOption::A,
            "B" => ShortcutOption::B,
            "C" => ShortcutOption::C,
            "identity" => ShortcutOption::Identity,
            "gated" => ShortcutOption::Gated,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ShortcutOption::None => "none",
            ShortcutOption::A => "A",
            ShortcutOption::B => "B",
            ShortcutOption::C => "C",
            ShortcutOption::Identity => "identity",
            ShortcutOption::Gated => "gated",
        }
    }
}

/// How lowering names the layers that carry weights (so a state dict can be loaded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Naming {
    /// archc's own hierarchical names: `conv3_x.0.conv1`.
    #[default]
    Archc,
    /// torchvision's ResNet names: `conv1`, `bn1`, `layer2.0.conv1`, `layer2.0.downsample.0`, `fc`.
    Resnet,
    /// torchvision's VGG names: `features.N`, `avgpool`, `classifier.N`.
    Sequential,
    /// torchvision's MobileNetV2 names: `features.N` (a block is `features.N.conv.J`, a conv
    /// with its BN and activation is `J.0`, `J.1`), `classifier.N`.
    Mobilenet,
    /// torchvision's GoogLeNet names: a conv with its BN is a `BasicConv2d` (`conv`, `bn`);
    /// `inception3a.branch2.0.conv`, `aux1.conv.conv`, `aux1.fc1`, `fc`.
    Googlenet,
    /// torchvision's DenseNet names: `features.conv0`, `features.norm0`,
    /// `features.denseblock1.denselayer1.norm1`, `features.transition1.conv`,
    /// `features.norm5`, `classifier`.
    Densenet,
    /// torchvision's MobileNetV3 names: each stage layer and block repetition the next
    /// `features.N`; in a block, `block.J` entries: a conv with its BN (and activation) is
    /// `block.J.0`, `.1`; a squeeze-and-excitation merge is `block.J.fc1`, `.fc2`; then
    /// `classifier.K`.
    MobilenetV3,
    /// torchvision's EfficientNet names: as `mobilenet_v3`, but each stage line of blocks is one
    /// `features.S` and its repetitions `features.S.R` (`features.2.0.block.3.1`).
    Efficientnet,
    /// torchvision's ConvNeXt names: each stage line the next `features.S` (`features.0.0`
    /// stem conv, `features.2.1` a downsampling conv), a block repetition `features.S.R` with
    /// its residual branch's `block.J` (`block.0` depthwise conv, `block.2` layer norm,
    /// `block.3`, `block.5` pointwise layers) and `layer_scale`, then `classifier.0` (layer
    /// norm) and `classifier.2` (fc).
    Convnext,
    /// torchvision's Inception-v3 names: a conv with its BN is a `BasicConv2d` (`.conv`, `.bn`);
    /// a stage line's is the stage's (`Conv2d_1a_3x3.conv`); in a branch with one conv the
    /// branch's (`Mixed_5b.branch1x1.conv`), else numbered from 1 (`branch5x5_2`), a nested
    /// branch after the number (`Mixed_7b.branch3x3_2a`, pools not counted); in a block without
    /// branches (the auxiliary classifier) `convK` from 0 and `fc`; a stage line's fc is `fc`.
    Inception,
    /// Every stage line, block repetition and branch a `nn.Sequential` of its layers:
    /// `conv1.0`, `stage2.0.branch2.3`, and `fc` for a stage line's single fc (torchvision's
    /// ShuffleNetV2).
    Nested,
}

impl Naming {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "archc" => Naming::Archc,
            "resnet" => Naming::Resnet,
            "sequential" => Naming::Sequential,
            "mobilenet" => Naming::Mobilenet,
            "googlenet" => Naming::Googlenet,
            "mobilenet_v3" => Naming::MobilenetV3,
            "efficientnet" => Naming::Efficientnet,
            "densenet" => Naming::Densenet,
            "nested" => Naming::Nested,
            "convnext" => Naming::Convnext,
            "inception" => Naming::Inception,
            _ => return None,
        })
    }
}

pub use crate::layers::activation::Activation;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Conv2d {
    pub out_channels: u64,
    pub kernel: [u64; 2],
    pub stride: [u64; 2],
    pub padding: [u64; 2],
    pub dilation: [u64; 2],
    pub groups: u64,
    pub bias: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pool2d {
    pub kernel: [u64; 2],
    pub stride: [u64; 2],
    pub padding: [u64; 2],
    /// Round the output size up, as PyTorch's `ceil_mode=True` (GoogLeNet's pools).
    pub ceil_mode: bool,
}

/// One numeric argument of a unit's op: a count or a decimal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Attr {
    Int(u64),
    Float(f64),
}

impl Attr {
    pub fn int(self) -> u64 {
        match self {
            Attr::Int(i) => i,
            Attr::Float(f) => f as u64,
        }
    }

    pub fn float(self) -> f64 {
        match self {
            Attr::Int(i) => i as f64,
            Attr::Float(f) => f,
        }
    }
}

impl std::fmt::Display for Attr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Attr::Int(i) => write!(f, "{i}"),
            Attr::Float(x) if *x != 0.0 && x.abs() < 1e-2 => write!(f, "{x:e}"),
            Attr::Float(x) => write!(f, "{x}"),
        }
    }
}

/// The op of a kind served wholly by its unit: the unit's word and its arguments, in the
/// order the unit gives them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct UnitOp {
    pub kind: &'static str,
    pub args: [Attr; 2],
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Input,
    Conv2d(Conv2d),
    /// Batch norm over channels (or features of a flat vector).
    BatchNorm {
        epsilon: f64,
        momentum: f64,
    },
    Act(Activation),
    MaxPool2d(Pool2d),
    AvgPool2d(Pool2d),
    /// Adaptive average pooling to a fixed output size; global pooling is 1x1.
    AdaptiveAvgPool2d {
        output: [u64; 2],
    },
    Linear {
        out_features: u64,
        bias: bool,
    },
    Dropout {
        p: f64,
    },
    Flatten,
    Softmax,
    /// The shortcut branch of a residual block: from the block's input to the shape of
    /// `target` (the block's output), as the option says. Inference decides whether it is an
    /// identity, a zero-pad-and-subsample (A) or a projection (B, C).
    Shortcut {
        option: ShortcutOption,
        stride: u64,
        #[serde(skip)]
        target: NodeId,
    },
    /// Elementwise sum of two tensors of one shape.
    Add,
    /// Parallel branches merged (`concat`, `add`, `mul`, `max`): inputs are the branches' ends,
    /// in order (`layers::merge`).
    Merge(MergeKind),
    /// Part `index` of `parts` equal parts of the input's channels (`concat split`).
    Split {
        parts: u64,
        index: u64,
    },
    /// A kind served wholly by its op unit (`layers::Unit::rules`): layer norm, group norm,
    /// maxout, drop path, channel shuffle.
    Unit(UnitOp),
    /// The Highway combination of a gated block: inputs `[F(x), x, g]`, all of one shape,
    /// give `F(x)·sigmoid(g) + x·(1 − sigmoid(g))`; `g` is the gate's pre-activation (the
    /// `Shortcut` node of option `gated`).
    Highway,
}

impl Op {
    /// The word used for this op in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Conv2d(_) => "conv",
            Op::BatchNorm { .. } => "bn",
            Op::Act(a) => a.name(),
            Op::MaxPool2d(_) => "maxpool",
            Op::AvgPool2d(_) => "avgpool",
            Op::AdaptiveAvgPool2d { .. } => "adaptive_avgpool",
            Op::Linear { .. } => "fc",
            Op::Dropout { .. } => "dropout",
            Op::Flatten => "flatten",
            Op::Softmax => "softmax",
            Op::Shortcut { .. } => "shortcut",
            Op::Add => "add",
            Op::Highway => "highway",
            Op::Unit(u) => u.kind,
            Op::Merge(m) => m.word(),
            Op::Split { .. } => "split",
        }
    }
}

/// Where a node sits: its stage line, the block repetition it belongs to (counted from 0
/// across the stage line; nested blocks share their outer repetition) and its local name
/// (`conv1`, `shortcut`, `add`). Passes that need the parts (torchvision naming) read them
/// here instead of splitting the dotted name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodePath {
    pub stage: Option<String>,
    pub rep: Option<u64>,
    /// The branches of merges the node sits in, outermost first (`branch2`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub branch: Vec<String>,
    pub local: String,
}

impl NodePath {
    /// The input node's path.
    pub fn input() -> Self {
        NodePath {
            stage: None,
            rep: None,
            branch: vec![],
            local: "input".into(),
        }
    }

    /// `stage[.repetition][.branch…].local`, the name reports print.
    pub fn dotted(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(s) = &self.stage {
            parts.push(s.clone());
            if let Some(r) = self.rep {
                parts.push(r.to_string());
            }
        }
        parts.extend(self.branch.iter().cloned());
        parts.push(self.local.clone());
        parts.join(".")
    }
}

/// The stage and repetition that nodes being expanded belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub stage: String,
    pub rep: Option<u64>,
    /// Inside merges: the branch path.
    pub branch: Vec<String>,
}

impl Scope {
    pub fn new(stage: &str, rep: Option<u64>) -> Self {
        Scope {
            stage: stage.to_string(),
            rep,
            branch: vec![],
        }
    }

    pub fn at(&self, local: impl Into<String>) -> NodePath {
        NodePath {
            stage: Some(self.stage.clone()),
            rep: self.rep,
            branch: self.branch.clone(),
            local: local.into(),
        }
    }

    /// The scope of branch `name` inside this one.
    pub fn branch(&self, name: &str) -> Scope {
        let mut s = self.clone();
        s.branch.push(name.to_string());
        s
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub id: NodeId,
    /// Hierarchical name: `stage[.repetition].local`, such as `conv3_x.0.conv1`
    /// (`path.dotted()`).
    pub name: String,
    /// The parts of the name.
    pub path: NodePath,
    pub op: Op,
    pub inputs: Vec<NodeId>,
    /// The source text this node came from (for a repeated block: the layer in the block).
    pub span: Span,
    /// The stage line this node was expanded from (also for nodes from blocks).
    pub stage_span: Span,
    /// Index into `Graph::stages`; the input node has none.
    pub stage: Option<usize>,
    /// For a merge: each branch's name and span, in the order of `inputs`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<(String, Span)>,
}

/// One output of a network with several (`outputs`): a stage's output and its loss weight.
#[derive(Debug, Clone, Serialize)]
pub struct GraphOutput {
    pub name: String,
    pub node: NodeId,
    pub weight: f64,
}

/// A description of one stage line, for Table 1-style reports.
#[derive(Debug, Clone, Serialize)]
pub struct StageInfo {
    pub name: String,
    pub span: Span,
    pub segments: Vec<SegmentInfo>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SegmentInfo {
    /// A single layer, described as the paper does: `7x7, 64, stride 2`, `3x3 max pool, stride 2`.
    Layer { text: String },
    /// A repeated block: its layers (first repetition) and the repeat count.
    Blocks {
        block: String,
        layers: Vec<String>,
        repeat: u64,
        stride: u64,
        shortcut: ShortcutOption,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Graph {
    pub network: String,
    /// The network's input shape per sample.
    pub input: Shape,
    pub nodes: Vec<Node>,
    pub stages: Vec<StageInfo>,
    /// The node whose output is the network's output (the main one, with several).
    pub output: NodeId,
    /// With `outputs`: every output, the main one first; empty for a network with one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<GraphOutput>,
    /// Whether `classes` was declared (so --classes applies).
    pub classes: Option<u64>,
    /// The network's span (its `network` line).
    pub span: Span,
    pub shortcut: ShortcutOption,
    pub naming: Naming,
}

impl Graph {
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_paths_print_as_the_reports_name_them() {
        let block = Scope::new("conv3_x", Some(0));
        assert_eq!(
            block.branch("branch2").at("conv1").dotted(),
            "conv3_x.0.branch2.conv1"
        );
        assert_eq!(block.at("conv1").dotted(), "conv3_x.0.conv1");
        let line = Scope::new("head", None);
        assert_eq!(line.at("fc1").dotted(), "head.fc1");
        assert_eq!(NodePath::input().dotted(), "input");
    }
}
