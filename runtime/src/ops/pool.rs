//! The pools: `MaxPool2d`, `AvgPool2d` (validated with the compiler's window rule, in
//! `ceil_mode` too) and `AdaptiveAvgPool2d`; their Burn modules, forward and codegen text.

use burn::nn::pool::{
    AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, AvgPool2d, AvgPool2dConfig, MaxPool2d,
    MaxPool2dConfig,
};

use super::conv::{arr, explicit, padding_text, window};
use super::{inputs, layer, map_shape, value, Gen, Init, Layer, NodeOp, Rust, Value};

/// A pool's window (the fields `MaxPool2d` and `AvgPool2d` share).
pub struct Window {
    pub kernel_size: [usize; 2],
    pub strides: [usize; 2],
    pub padding: [usize; 2],
    pub ceil_mode: bool,
}

impl Window {
    /// `[C, OH, OW]` from the input, or why the window does not fit.
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [x] = inputs(ins)?;
        let [c, h, w] = map_shape(x)?;
        let Window {
            kernel_size,
            strides,
            padding,
            ceil_mode,
        } = *self;
        if kernel_size.contains(&0) || strides.contains(&0) {
            return Err("a size is zero".into());
        }
        if padding[0] > kernel_size[0] / 2 || padding[1] > kernel_size[1] / 2 {
            return Err("padding exceeds half the kernel".into());
        }
        let oh = window(h, kernel_size[0], strides[0], padding[0], 1, ceil_mode);
        let ow = window(w, kernel_size[1], strides[1], padding[1], 1, ceil_mode);
        match (oh, ow) {
            (Some(oh), Some(ow)) => Ok(vec![c, oh, ow]),
            _ => Err(format!("window does not fit the {h}x{w} input")),
        }
    }

    /// The config's text after `new`: strides, padding, and ceil mode where it is on (Burn's
    /// default is off); `extra` between padding and ceil mode.
    fn rust(&self, config: &str, extra: &str) -> String {
        let ceil = if self.ceil_mode {
            "\n                .with_ceil_mode(true)"
        } else {
            ""
        };
        format!(
            "{config}::new({})\n                .with_strides({})\n                .with_padding({}){extra}{ceil}\n                .init()",
            arr(self.kernel_size),
            arr(self.strides),
            padding_text(self.padding),
        )
    }
}

/// `LoweredOp::MaxPool2d`.
pub struct MaxPoolOp(pub Window);

impl NodeOp for MaxPoolOp {
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        self.0.check(ins)
    }

    fn build(&self, _: &Init) -> Option<Layer> {
        let w = &self.0;
        Some(Layer::MaxPool(
            MaxPool2dConfig::new(w.kernel_size)
                .with_strides(w.strides)
                .with_padding(explicit(w.padding))
                .with_ceil_mode(w.ceil_mode)
                .init(),
        ))
    }

    fn forward(&self, l: Option<&Layer>, ins: Vec<Value>) -> Value {
        let m: &MaxPool2d = layer(l, |l| match l {
            Layer::MaxPool(m) => Some(m),
            _ => None,
        });
        Value::Map(m.forward(value(ins).map()))
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        let init = self.0.rust("MaxPool2dConfig", "");
        Ok(Rust::module("MaxPool2d", init, g.forward()))
    }
}

/// `LoweredOp::AvgPool2d`.
pub struct AvgPoolOp {
    pub window: Window,
    pub count_include_pad: bool,
}

impl NodeOp for AvgPoolOp {
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        self.window.check(ins)
    }

    fn build(&self, _: &Init) -> Option<Layer> {
        let w = &self.window;
        Some(Layer::AvgPool(
            AvgPool2dConfig::new(w.kernel_size)
                .with_strides(w.strides)
                .with_padding(explicit(w.padding))
                .with_count_include_pad(self.count_include_pad)
                .with_ceil_mode(w.ceil_mode)
                .init(),
        ))
    }

    fn forward(&self, l: Option<&Layer>, ins: Vec<Value>) -> Value {
        let m: &AvgPool2d = layer(l, |l| match l {
            Layer::AvgPool(m) => Some(m),
            _ => None,
        });
        Value::Map(m.forward(value(ins).map()))
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        let extra = format!(
            "\n                .with_count_include_pad({})",
            self.count_include_pad
        );
        let init = self.window.rust("AvgPool2dConfig", &extra);
        Ok(Rust::module("AvgPool2d", init, g.forward()))
    }
}

/// `LoweredOp::AdaptiveAvgPool2d`: its output size.
pub struct AdaptiveAvgPoolOp(pub [usize; 2]);

impl NodeOp for AdaptiveAvgPoolOp {
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [x] = inputs(ins)?;
        let [c, _, _] = map_shape(x)?;
        Ok(vec![c, self.0[0], self.0[1]])
    }

    fn build(&self, _: &Init) -> Option<Layer> {
        Some(Layer::AdaptiveAvgPool(
            AdaptiveAvgPool2dConfig::new(self.0).init(),
        ))
    }

    fn forward(&self, l: Option<&Layer>, ins: Vec<Value>) -> Value {
        let m: &AdaptiveAvgPool2d = layer(l, |l| match l {
            Layer::AdaptiveAvgPool(m) => Some(m),
            _ => None,
        });
        Value::Map(m.forward(value(ins).map()))
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        let init = format!("AdaptiveAvgPool2dConfig::new({}).init()", arr(self.0));
        Ok(Rust::module("AdaptiveAvgPool2d", init, g.forward()))
    }
}
