//! Choosing a device from a command-line string.
//!
//! `cpu` is burn-flex (pure Rust, always compiled in). With the cargo feature `tch`,
//! `libtorch-cpu` is LibTorch on the CPU and `cuda` / `cuda:N` LibTorch on GPU `N`; without
//! it those names give an error saying so, never a panic.
//!
//! [`parse_devices`] reads the list of a data-parallel run (`--devices cpu,cpu`): names that
//! [`parse_device`] accepts, all of one kind (every `cuda:N` is one kind;
//! `cpu` and `libtorch-cpu` are two). A name may repeat: `cpu,cpu` is two workers on one CPU.

use burn::tensor::Device;

/// A device name that is unknown or whose backend was not compiled in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device `{0}` (expected cpu, libtorch-cpu, cuda or cuda:N)")]
    Unknown(String),
    #[error("device `{0}` needs the LibTorch backend; rebuild archc with `--features tch`")]
    NotCompiled(String),
    #[error("--devices needs at least one device")]
    Empty,
    #[error("--devices {list}: `{a}` and `{b}` are devices of different kinds; a data-parallel run uses devices of one kind (all cpu, all libtorch-cpu or all cuda:N)")]
    Mixed { list: String, a: String, b: String },
}

/// What a device name selects. The one reading of names, for [`parse_device`] and the kinds
/// of [`check_devices`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    /// `cpu`: burn-flex.
    Flex,
    /// `libtorch-cpu` (or `tch-cpu`).
    LibTorchCpu,
    /// `cuda` (GPU 0) or `cuda:N`.
    Cuda(usize),
}

impl Name {
    fn read(name: &str) -> Option<Name> {
        match name {
            "cpu" => Some(Name::Flex),
            "libtorch-cpu" | "tch-cpu" => Some(Name::LibTorchCpu),
            "cuda" => Some(Name::Cuda(0)),
            _ => name
                .strip_prefix("cuda:")
                .and_then(|i| i.parse::<usize>().ok())
                .map(Name::Cuda),
        }
    }

    /// The kind, for the data-parallel rule "all of one kind" (every `cuda:N` is one kind).
    fn kind(self) -> &'static str {
        match self {
            Name::Flex => "cpu",
            Name::LibTorchCpu => "libtorch-cpu",
            Name::Cuda(_) => "cuda",
        }
    }
}

/// Check the device list of a data-parallel run without opening the devices: at least one
/// name, all known, all of one kind. [`parse_devices`] then opens them.
pub fn check_devices(names: &[String]) -> Result<(), DeviceError> {
    let list = names.join(",");
    if names.is_empty() {
        return Err(DeviceError::Empty);
    }
    let mut first: Option<(&str, &'static str)> = None;
    for n in names {
        let kind = Name::read(n)
            .ok_or_else(|| DeviceError::Unknown(n.clone()))?
            .kind();
        match first {
            None => first = Some((n, kind)),
            Some((a, k)) if k != kind => {
                return Err(DeviceError::Mixed {
                    list,
                    a: a.to_string(),
                    b: n.clone(),
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The devices of a data-parallel run ([`check_devices`], then [`parse_device`] on each), in
/// the order given: the first is the main device (model, optimiser, evaluation).
pub fn parse_devices(names: &[String]) -> Result<Vec<Device>, DeviceError> {
    check_devices(names)?;
    names.iter().map(|n| parse_device(n)).collect()
}

/// Parse `cpu`, `libtorch-cpu`, `cuda` or `cuda:N`.
pub fn parse_device(name: &str) -> Result<Device, DeviceError> {
    match Name::read(name) {
        None => Err(DeviceError::Unknown(name.to_string())),
        Some(Name::Flex) => Ok(Device::flex()),
        Some(Name::LibTorchCpu) => libtorch(name, None),
        Some(Name::Cuda(i)) => libtorch(name, Some(i)),
    }
}

/// Whether `device` is LibTorch (CPU or CUDA), where `--precision` and `--memory-format` apply.
pub fn is_libtorch(device: &Device) -> bool {
    #[cfg(feature = "tch")]
    {
        matches!(
            device.clone().inner().as_dispatch(),
            burn::backend::DispatchDevice::LibTorch(_)
        )
    }
    #[cfg(not(feature = "tch"))]
    {
        let _ = device;
        false
    }
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

    fn list(s: &str) -> Vec<String> {
        s.split(',').map(str::to_string).collect()
    }

    #[test]
    fn lists() {
        let two = parse_devices(&list("cpu,cpu")).expect("two CPU workers");
        assert_eq!(two.len(), 2);
        assert!(check_devices(&list("cuda:0,cuda:1,cuda")).is_ok());
        assert_eq!(parse_devices(&list("cpu")).map(|d| d.len()), Ok(1));
        assert!(matches!(parse_devices(&[]), Err(DeviceError::Empty)));
        assert!(matches!(
            parse_devices(&list("cpu,gpu")),
            Err(DeviceError::Unknown(n)) if n == "gpu"
        ));
        let e = parse_devices(&list("cpu,libtorch-cpu")).expect_err("mixed kinds");
        assert!(
            e.to_string()
                .contains("`cpu` and `libtorch-cpu` are devices of different kinds"),
            "{e}"
        );
        assert!(matches!(
            check_devices(&list("cuda:0,cpu")),
            Err(DeviceError::Mixed { .. })
        ));
        #[cfg(not(feature = "tch"))]
        assert!(matches!(
            parse_devices(&list("cuda:0,cuda:1")),
            Err(DeviceError::NotCompiled(n)) if n == "cuda:0"
        ));
    }
}
