//! Random valid `.arch` networks for property tests, with the figures they must have computed
//! independently of the compiler (from the description, not from the graph).
//!
//! A [`Net`] is a ResNet-shaped description: a stem conv (and maybe a 2x2 max pool), one to
//! four stages of repeated blocks (`basic`, `bottleneck`, `bottleneck_tv` from
//! `architectures/blocks.arch`, or blocks generated inline, some with nested calls), strides 1
//! to 3, shortcut options none/A/B/C per network and per stage, `norm bn` or `none`, and a
//! global average pool, maybe a dropout, and `fc classes`. [`Net::text`] writes it as `.arch`;
//! [`Net::params`] and [`Net::stage_outputs`] count what it must have.
//!
//! Shared by `compiler/tests/properties.rs` and `runtime/tests/properties.rs` (`#[path]`).
#![allow(dead_code)]

use std::fmt::Write as _;

use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortcut {
    None,
    A,
    B,
    C,
}

impl Shortcut {
    fn word(self) -> &'static str {
        match self {
            Shortcut::None => "none",
            Shortcut::A => "A",
            Shortcut::B => "B",
            Shortcut::C => "C",
        }
    }
}

/// One line of a generated block: a conv, or a nested call of `basic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// `conv KxK, mult*c`
    Conv { kernel: u64, mult: u64 },
    /// `basic(mult*c)`: two 3x3 convs, the stride on the first.
    Basic { mult: u64 },
}

/// A block written inline: its items, and which of them takes the stage stride.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineBlock {
    pub items: Vec<Item>,
    pub strided: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    Basic,
    Bottleneck,
    BottleneckTv,
    /// Index into [`Net::blocks`].
    Inline(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub block: Block,
    pub width: u64,
    pub repeat: u64,
    pub stride: u64,
    pub shortcut: Option<Shortcut>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Net {
    /// `[C, H, W]`
    pub input: [u64; 3],
    pub classes: u64,
    pub shortcut: Shortcut,
    /// Written as a network derived from a plain base (`network gen = base with shortcut X`).
    pub derived: bool,
    pub norm: bool,
    pub stem_width: u64,
    pub stem_pool: bool,
    pub blocks: Vec<InlineBlock>,
    pub stages: Vec<Stage>,
    pub dropout: bool,
}

/// One conv of a block: kernel, output channels, stride.
type Conv = (u64, u64, u64);

impl Net {
    /// The convs of one repetition of `block` at width `c` with stride `s`, in order.
    fn convs(&self, block: Block, c: u64, s: u64) -> Vec<Conv> {
        match block {
            Block::Basic => vec![(3, c, s), (3, c, 1)],
            Block::Bottleneck => vec![(1, c, s), (3, c, 1), (1, 4 * c, 1)],
            Block::BottleneckTv => vec![(1, c, 1), (3, c, s), (1, 4 * c, 1)],
            Block::Inline(i) => {
                let b = &self.blocks[i];
                let mut v = Vec::new();
                for (j, item) in b.items.iter().enumerate() {
                    let st = if j == b.strided { s } else { 1 };
                    match *item {
                        Item::Conv { kernel, mult } => v.push((kernel, mult * c, st)),
                        Item::Basic { mult } => {
                            v.push((3, mult * c, st));
                            v.push((3, mult * c, 1));
                        }
                    }
                }
                v
            }
        }
    }

    fn block_out(&self, block: Block, c: u64) -> u64 {
        self.convs(block, c, 1).last().map_or(0, |x| x.1)
    }

    fn option(&self, st: &Stage) -> Shortcut {
        st.shortcut.unwrap_or(self.shortcut)
    }

    /// Option A cannot drop channels: such a stage takes B instead.
    fn fix_option_a(mut self) -> Self {
        let mut cin = self.stem_width;
        for i in 0..self.stages.len() {
            let out = self.block_out(self.stages[i].block, self.stages[i].width);
            if self.option(&self.stages[i]) == Shortcut::A && out < cin {
                self.stages[i].shortcut = Some(Shortcut::B);
            }
            cin = out;
        }
        self
    }

    /// Trainable parameters, counted from the description. Option B projects where the
    /// block's output shape differs from its input's (docs/language.md): a stride on a 1-pixel
    /// map changes nothing, so it keeps the identity.
    pub fn params(&self) -> u64 {
        let conv = |k: u64, cin: u64, cout: u64| {
            k * k * cin * cout + if self.norm { 2 * cout } else { cout }
        };
        let projection = |cin: u64, cout: u64| cin * cout + 2 * cout;
        let mut total = conv(3, self.input[0], self.stem_width);
        let mut shape = self.stage_outputs()[0];
        for st in &self.stages {
            for r in 0..st.repeat {
                let s = if r == 0 { st.stride } else { 1 };
                let block_in = shape;
                for (k, cout, stride) in self.convs(st.block, st.width, s) {
                    total += conv(k, shape[0], cout);
                    shape = [cout, shape[1].div_ceil(stride), shape[2].div_ceil(stride)];
                }
                total += match self.option(st) {
                    Shortcut::B if block_in != shape => projection(block_in[0], shape[0]),
                    Shortcut::C => projection(block_in[0], shape[0]),
                    _ => 0,
                };
            }
        }
        total + shape[0] * self.classes + self.classes
    }

    /// Each stage's output `[C, H, W]`, computed from the description: a conv of kernel 1 or
    /// 3 (padding 0 or 1) with stride `s` maps `n` to `ceil(n / s)`; a 2x2 max pool to `n / 2`.
    pub fn stage_outputs(&self) -> Vec<[u64; 3]> {
        let [_, mut h, mut w] = self.input;
        if self.stem_pool {
            h /= 2;
            w /= 2;
        }
        let mut c = self.stem_width;
        let mut out = vec![[c, h, w]];
        for st in &self.stages {
            for r in 0..st.repeat {
                let s = if r == 0 { st.stride } else { 1 };
                for (_, cout, stride) in self.convs(st.block, st.width, s) {
                    h = h.div_ceil(stride);
                    w = w.div_ceil(stride);
                    c = cout;
                }
            }
            out.push([c, h, w]);
        }
        out
    }

    /// Number of conv layers (each with its own BN or bias), shortcut projections aside.
    pub fn convs_count(&self) -> usize {
        1 + self
            .stages
            .iter()
            .map(|st| st.repeat as usize * self.convs(st.block, st.width, 1).len())
            .sum::<usize>()
    }

    /// The description as `.arch` text; `blocks` is the path `use` names for blocks.arch.
    pub fn text(&self, blocks: &str) -> String {
        let mut s = format!("# generated\nuse \"{blocks}\"\n\n");
        for (i, b) in self.blocks.iter().enumerate() {
            let _ = writeln!(s, "block gen{i}(c) {{");
            for (j, item) in b.items.iter().enumerate() {
                let stride = if j == b.strided {
                    ", stride: stride"
                } else {
                    ""
                };
                let mult = |m: u64| {
                    if m == 1 {
                        "c".to_string()
                    } else {
                        format!("{m}*c")
                    }
                };
                match *item {
                    Item::Conv { kernel, mult: m } => {
                        let _ = writeln!(s, "    conv {kernel}x{kernel}, {}{stride}", mult(m));
                    }
                    Item::Basic { mult: m } => {
                        let _ = writeln!(s, "    basic({}){stride}", mult(m));
                    }
                }
            }
            s.push_str("}\n\n");
        }
        let name = if self.derived { "base" } else { "gen" };
        let [c, h, w] = self.input;
        let _ = writeln!(s, "network {name} {{");
        let _ = writeln!(s, "    input {c}x{h}x{w}");
        let _ = writeln!(s, "    classes {}", self.classes);
        let top = if self.derived {
            Shortcut::None
        } else {
            self.shortcut
        };
        let _ = writeln!(s, "    shortcut {}", top.word());
        if !self.norm {
            s.push_str("    norm none\n");
        }
        let pool = if self.stem_pool { ", maxpool 2x2" } else { "" };
        let _ = writeln!(s, "    stem conv 3x3, {}{pool}", self.stem_width);
        for (i, st) in self.stages.iter().enumerate() {
            let block = match st.block {
                Block::Basic => "basic".to_string(),
                Block::Bottleneck => "bottleneck".to_string(),
                Block::BottleneckTv => "bottleneck_tv".to_string(),
                Block::Inline(k) => format!("gen{k}"),
            };
            let _ = write!(s, "    stage{} {block}({})", i + 1, st.width);
            if st.repeat != 1 {
                let _ = write!(s, " x {}", st.repeat);
            }
            if st.stride != 1 {
                let _ = write!(s, ", stride: {}", st.stride);
            }
            if let Some(o) = st.shortcut {
                let _ = write!(s, ", shortcut: {}", o.word());
            }
            s.push('\n');
        }
        let dropout = if self.dropout { "dropout 0.5, " } else { "" };
        let _ = writeln!(s, "    head avgpool, {dropout}fc classes");
        s.push_str("}\n");
        if self.derived {
            let _ = writeln!(
                s,
                "\nnetwork gen = base with shortcut {}",
                self.shortcut.word()
            );
        }
        s
    }
}

/// Limits of the generated sizes.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub channels: u64,
    pub spatial: u64,
    pub max_width: u64,
    pub max_repeat: u64,
    pub max_stages: usize,
}

/// Sizes for the compiler alone (nothing is run).
pub const COMPILE: Sizes = Sizes {
    channels: 3,
    spatial: 40,
    max_width: 64,
    max_repeat: 3,
    max_stages: 4,
};

/// Sizes small enough to build and run on a CPU in a debug build.
pub const RUN: Sizes = Sizes {
    channels: 3,
    spatial: 12,
    max_width: 6,
    max_repeat: 2,
    max_stages: 3,
};

fn shortcut() -> impl Strategy<Value = Shortcut> {
    prop_oneof![
        Just(Shortcut::None),
        Just(Shortcut::A),
        Just(Shortcut::B),
        Just(Shortcut::C)
    ]
}

fn inline_block() -> impl Strategy<Value = InlineBlock> {
    let item = prop_oneof![
        3 => (prop_oneof![Just(1u64), Just(3u64)], 1u64..=2)
            .prop_map(|(kernel, mult)| Item::Conv { kernel, mult }),
        1 => (1u64..=2).prop_map(|mult| Item::Basic { mult }),
    ];
    prop::collection::vec(item, 1..=3).prop_flat_map(|items| {
        let n = items.len();
        (Just(items), 0..n).prop_map(|(items, strided)| InlineBlock { items, strided })
    })
}

/// Random valid networks within `sz`.
pub fn net(sz: Sizes) -> impl Strategy<Value = Net> {
    let blocks = prop::collection::vec(inline_block(), 0..=2);
    let head = (
        prop_oneof![Just(1u64), Just(sz.channels)],
        4..=sz.spatial,
        4..=sz.spatial,
        2u64..=10,
        shortcut(),
        any::<bool>(),
        any::<bool>(),
        1..=sz.max_width,
        any::<bool>(),
        any::<bool>(),
    );
    (head, blocks).prop_flat_map(move |(h, blocks)| {
        let kinds = 3 + blocks.len();
        let stage = (
            0..kinds,
            1..=sz.max_width,
            1..=sz.max_repeat,
            1u64..=3,
            prop::option::weighted(0.25, shortcut()),
        )
            .prop_map(|(k, width, repeat, stride, shortcut)| Stage {
                block: match k {
                    0 => Block::Basic,
                    1 => Block::Bottleneck,
                    2 => Block::BottleneckTv,
                    i => Block::Inline(i - 3),
                },
                width,
                repeat,
                stride,
                shortcut,
            });
        let stages = prop::collection::vec(stage, 1..=sz.max_stages);
        (Just(h), Just(blocks), stages).prop_map(|(h, blocks, stages)| {
            let (c, height, width, classes, shortcut, derived, norm, stem, pool, dropout) = h;
            Net {
                input: [c, height, width],
                classes,
                shortcut,
                derived,
                norm,
                stem_width: stem,
                stem_pool: pool,
                blocks,
                stages,
                dropout,
            }
            .fix_option_a()
        })
    })
}

/// The path of `architectures/blocks.arch` for a `use` line.
pub fn blocks_path() -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../architectures/blocks.arch");
    p.canonicalize()
        .unwrap_or(p)
        .display()
        .to_string()
        .replace('\\', "/")
}
