//! Mixed precision and memory format of training on LibTorch (`archc train --precision`,
//! `--memory-format`), and the dynamic loss scaler of f16 training.
//!
//! The policy ([`Policy`]) is process-wide: a training run sets it for its duration
//! ([`PolicyGuard`]) and LibTorch's training path (`crate::fused`, feature `tch`) reads it in
//! every convolution and linear layer:
//!
//! - `bf16` / `f16`: a convolution or linear layer casts its input, weight and bias to that
//!   type, computes in it (LibTorch's bf16/f16 kernels, accumulating in f32 as they do) and
//!   casts its output back to f32. The casts are Burn's own (`Tensor::cast`), so they are in
//!   Burn's autodiff graph: the backward of the layer runs in the low type and its weight
//!   gradient is cast back to f32. Everything else (batch norm and its statistics, activations,
//!   pools, adds, the loss) stays f32, and so do the parameters (f32 master weights), the
//!   optimiser state and the checkpoints. PyTorch's autocast keeps a convolution's output in
//!   the low type up to the next op that wants f32; archc casts back at once, one more
//!   elementwise pass per layer, so that no op of Burn's ever sees two float types.
//! - channels-last: a convolution's input and weight are laid out NHWC (strides; the shape
//!   stays NCHW), as `x.to(memory_format=torch.channels_last)` does; LibTorch's kernels keep
//!   that layout in their outputs and gradients.
//!
//! The policy only applies where LibTorch trains (an autodiff LibTorch device); evaluation and
//! burn-flex are unaffected. The CLI refuses the options on burn-flex.

use std::sync::atomic::{AtomicU8, Ordering};

/// The compute type of convolutions and linear layers in training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    Bf16,
    F16,
}

impl Precision {
    /// `f32`, `bf16` or `f16`.
    pub fn parse(s: &str) -> Option<Precision> {
        match s {
            "f32" | "fp32" => Some(Precision::F32),
            "bf16" => Some(Precision::Bf16),
            "f16" | "fp16" => Some(Precision::F16),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }

    /// The low type, if any.
    pub fn dtype(self) -> Option<burn::tensor::FloatDType> {
        match self {
            Precision::F32 => None,
            Precision::Bf16 => Some(burn::tensor::FloatDType::BF16),
            Precision::F16 => Some(burn::tensor::FloatDType::F16),
        }
    }
}

/// The memory layout of convolutions' inputs and weights in training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryFormat {
    /// NCHW, contiguous (LibTorch's default).
    #[default]
    Contiguous,
    /// NHWC strides (`torch.channels_last`).
    ChannelsLast,
}

impl MemoryFormat {
    /// `contiguous` or `channels-last`.
    pub fn parse(s: &str) -> Option<MemoryFormat> {
        match s {
            "contiguous" => Some(MemoryFormat::Contiguous),
            "channels-last" | "channels_last" => Some(MemoryFormat::ChannelsLast),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MemoryFormat::Contiguous => "contiguous",
            MemoryFormat::ChannelsLast => "channels-last",
        }
    }
}

/// What LibTorch's training path does: compute type and memory format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    pub precision: Precision,
    pub memory_format: MemoryFormat,
}

impl Policy {
    /// f32 and contiguous: what training did before these options.
    pub fn is_default(self) -> bool {
        self == Policy::default()
    }
}

static POLICY: AtomicU8 = AtomicU8::new(0);

fn encode(p: Policy) -> u8 {
    let precision = match p.precision {
        Precision::F32 => 0,
        Precision::Bf16 => 1,
        Precision::F16 => 2,
    };
    precision | (u8::from(p.memory_format == MemoryFormat::ChannelsLast) << 2)
}

fn decode(v: u8) -> Policy {
    Policy {
        precision: match v & 3 {
            1 => Precision::Bf16,
            2 => Precision::F16,
            _ => Precision::F32,
        },
        memory_format: if v & 4 != 0 {
            MemoryFormat::ChannelsLast
        } else {
            MemoryFormat::Contiguous
        },
    }
}

/// The policy in force.
pub fn policy() -> Policy {
    decode(POLICY.load(Ordering::Relaxed))
}

/// Sets the policy until the guard is dropped (then the one before it is back). One training
/// run at a time per process: two runs with different policies in one process would see each
/// other's.
pub fn set_policy(p: Policy) -> PolicyGuard {
    PolicyGuard {
        before: POLICY.swap(encode(p), Ordering::Relaxed),
    }
}

/// Restores the policy before [`set_policy`] when dropped.
#[must_use = "the policy is reset when the guard is dropped"]
pub struct PolicyGuard {
    before: u8,
}

impl Drop for PolicyGuard {
    fn drop(&mut self) {
        POLICY.store(self.before, Ordering::Relaxed);
    }
}

/// Dynamic loss scaling for f16 training, as `torch.amp.GradScaler` with its defaults: the loss
/// is multiplied by `scale` before the backward, the gradients divided by it before the step;
/// a step whose gradients hold an inf or NaN is skipped and halves the scale, and every
/// `growth_interval` steps in a row without one double it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LossScaler {
    pub scale: f64,
    /// Good steps since the last change of scale.
    pub good_steps: u32,
    pub growth_interval: u32,
}

impl Default for LossScaler {
    fn default() -> Self {
        LossScaler {
            scale: 65536.0,
            good_steps: 0,
            growth_interval: 2000,
        }
    }
}

impl LossScaler {
    /// Records a step's outcome: `finite` when every gradient was finite (the step is taken).
    /// Returns whether to take the step.
    pub fn update(&mut self, finite: bool) -> bool {
        if finite {
            self.good_steps += 1;
            if self.good_steps >= self.growth_interval {
                self.scale *= 2.0;
                self.good_steps = 0;
            }
        } else {
            self.scale *= 0.5;
            self.good_steps = 0;
        }
        finite
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in [Precision::F32, Precision::Bf16, Precision::F16] {
            assert_eq!(Precision::parse(p.name()), Some(p));
        }
        for m in [MemoryFormat::Contiguous, MemoryFormat::ChannelsLast] {
            assert_eq!(MemoryFormat::parse(m.name()), Some(m));
        }
        assert_eq!(Precision::parse("f64"), None);
        assert_eq!(MemoryFormat::parse("nhwc"), None);
        for precision in [Precision::F32, Precision::Bf16, Precision::F16] {
            for memory_format in [MemoryFormat::Contiguous, MemoryFormat::ChannelsLast] {
                let p = Policy {
                    precision,
                    memory_format,
                };
                assert_eq!(decode(encode(p)), p);
            }
        }
    }

    #[test]
    fn scaler_halves_on_overflow_and_grows_after_good_steps() {
        let mut s = LossScaler {
            growth_interval: 3,
            ..LossScaler::default()
        };
        assert!(s.update(true));
        assert!(s.update(true));
        assert!(!s.update(false), "an overflow skips the step");
        assert_eq!(s.scale, 32768.0);
        assert_eq!(s.good_steps, 0, "an overflow restarts the count");
        for _ in 0..2 {
            assert!(s.update(true));
        }
        assert_eq!(s.scale, 32768.0);
        assert!(s.update(true));
        assert_eq!(s.scale, 65536.0, "three good steps in a row double it");
        assert_eq!(LossScaler::default().growth_interval, 2000);
    }
}
