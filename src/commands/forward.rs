//! `archc forward`: one eval-mode forward pass from and to safetensors files.

use std::path::Path;

use archc_compiler::Overrides;

use super::Failure;

#[cfg(not(feature = "runtime"))]
pub fn run(
    _file: &Path,
    _network: &str,
    _weights: &Path,
    _input: &Path,
    _output: &Path,
    _device: &str,
    _ov: &Overrides,
) -> Result<(), Failure> {
    super::needs_runtime("forward")
}

#[cfg(feature = "runtime")]
pub fn run(
    file: &Path,
    network: &str,
    weights: &Path,
    input: &Path,
    output: &Path,
    device: &str,
    ov: &Overrides,
) -> Result<(), Failure> {
    use archc_runtime::data::tensors;
    use archc_runtime::Network;

    let input_error = |e: &dyn std::fmt::Display| {
        eprintln!("archc: {e}");
        Failure::Input
    };
    let graph = super::lowered(file, network, ov)?;
    let device = super::device(device)?;
    let mut net = Network::new(&graph, &device, 0).map_err(|e| input_error(&e))?;
    net.load_weights(weights).map_err(|e| input_error(&e))?;
    let x = tensors::read4(input, "input", &device).map_err(|e| input_error(&e))?;
    let y = net.try_forward(x).map_err(|e| input_error(&e))?;
    tensors::write(output, "output", y).map_err(|e| input_error(&e))?;
    Ok(())
}
