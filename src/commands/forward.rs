//! `archc forward`: one eval-mode forward pass from and to safetensors files, with a
//! checkpoint's input mean subtracted when the weights come with one.

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
    use archc_runtime::train::checkpoint;
    use archc_runtime::Network;

    let input_error = |e: &dyn std::fmt::Display| {
        eprintln!("archc: {e}");
        Failure::Input
    };
    let graph = super::lowered(file, network, ov)?;
    let device = super::device(device)?;
    // A checkpoint folder, or weights with the checkpoint's mean beside them: the input
    // mean is subtracted as training and `eval` subtract it.
    let at = checkpoint::weights_at(weights);
    let mut net = Network::new(&graph, &device, 0).map_err(|e| input_error(&e))?;
    net.load_weights(&at.model).map_err(|e| input_error(&e))?;
    let mut x = tensors::read4(input, "input", &device).map_err(|e| input_error(&e))?;
    if let Some(p) = &at.mean {
        let mean = checkpoint::load_mean(p).map_err(|e| input_error(&e))?;
        x = mean
            .subtract(x)
            .map_err(|e| input_error(&format!("`{}`: {e}", p.display())))?;
    }
    let y = net.try_forward(x).map_err(|e| input_error(&e))?;
    tensors::write(output, "output", y).map_err(|e| input_error(&e))?;
    Ok(())
}
