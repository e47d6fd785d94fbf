//! Choosing a device from a command-line string.
//!
//! `cpu` is burn-flex (pure Rust, always compiled in). With the cargo feature `tch`,
//! `libtorch-cpu` is LibTorch on the CPU and `cuda` / `cuda:N` LibTorch on GPU `N`; without
//! it those names give an error saying so, never a panic.

use burn::tensor::Device;

/// A device name that is unknown or whose backend was not compiled in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device `{0}` (expected cpu, libtorch-cpu, cuda or cuda:N)")]
    Unknown(String),
    #[error("device `{0}` needs the LibTorch backend; rebuild archc with `--features tch`")]
    NotCompiled(String),
}

/// Parse `cpu`, `libtorch-cpu`, `cuda` or `cuda:N`.
pub fn parse_device(name: &str) -> Result<Device, DeviceError> {
    let cuda_index = match name {
        "cpu" => return Ok(Device::flex()),
        "libtorch-cpu" | "tch-cpu" => None,
        "cuda" => Some(0),
        _ => match name.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => Some(i),
            _ => return Err(DeviceError::Unknown(name.to_string())),
        },
    };
    libtorch(name, cuda_index)
}

#[cfg(feature = "tch")]
#[allow(deprecated)] // burn-tch devices are deprecated in Burn 0.22 but still supported
fn libtorch(_name: &str, cuda_index: Option<usize>) -> Result<Device, DeviceError> {
    Ok(match cuda_index {
        Some(i) => Device::libtorch_cuda(i),
        None => Device::libtorch(),
    })
}

#[cfg(not(feature = "tch"))]
fn libtorch(name: &str, _cuda_index: Option<usize>) -> Result<Device, DeviceError> {
    Err(DeviceError::NotCompiled(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(parse_device("cpu").is_ok());
        assert!(matches!(parse_device("gpu"), Err(DeviceError::Unknown(_))));
        assert!(matches!(
            parse_device("cuda:x"),
            Err(DeviceError::Unknown(_))
        ));
        #[cfg(not(feature = "tch"))]
        assert!(matches!(
            parse_device("cuda:1"),
            Err(DeviceError::NotCompiled(_))
        ));
    }
}
