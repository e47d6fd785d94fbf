//! `archc forward`: one eval-mode forward pass from and to safetensors files, with a
//! checkpoint's input mean subtracted when the weights come with one. Without
//! `--input-shape`, a network is compiled at the input tensor's shape when that leaves every
//! parameter's shape as declared (any network with global pooling before its classifier).

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
    let declared = super::lowered(file, network, ov)?;
    let device = super::device(device)?;
    let mut x = tensors::read4(input, "input", &device).map_err(|e| input_error(&e))?;
    let graph = if ov.input.is_some() {
        declared
    } else {
        at_input_shape(file, network, ov, declared, &x.dims())?
    };
    // A checkpoint folder, or weights with the checkpoint's mean beside them: the input
    // mean is subtracted as training and `eval` subtract it.
    let at = checkpoint::weights_at(weights);
    let mut net = Network::new(&graph, &device, 0).map_err(|e| input_error(&e))?;
    net.load_weights(&at.model).map_err(|e| input_error(&e))?;
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

/// The network compiled at the input tensor's shape `[N, C, H, W]`: `declared` itself when
/// the shapes agree, else the network recompiled at `CxHxW` when every parameter keeps its
/// declared shape (the weights fit); otherwise the error names the first parameter that
/// would change, or the compile error at that shape.
#[cfg(feature = "runtime")]
fn at_input_shape(
    file: &Path,
    network: &str,
    ov: &Overrides,
    declared: archc_compiler::lower::LoweredGraph,
    dims: &[usize; 4],
) -> Result<archc_compiler::lower::LoweredGraph, Failure> {
    let chw = &dims[1..];
    if declared.input == chw || dims[0] == 0 {
        // A batch of zero is refused by the forward pass with the usual message.
        return Ok(declared);
    }
    let shape = chw
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x");
    let refuse = |why: String| {
        let expected = declared
            .input
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        eprintln!(
            "archc: network `{network}` takes input [N, {expected}] (N >= 1), got {dims:?}; \
             it cannot be compiled at {shape}: {why}"
        );
        Failure::Input
    };
    let at = super::AtSize::new(file, network, ov, declared.clone())?;
    let chw: [usize; 3] = chw.try_into().map_err(|_| Failure::Usage)?;
    at.graph(chw).map_err(refuse)
}
