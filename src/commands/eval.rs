//! `archc eval`: top-1 (and top-5) error of weights on a data set.

use std::path::Path;

use archc_compiler::Overrides;

use super::Failure;

#[cfg(not(feature = "runtime"))]
pub fn run(
    _file: &Path,
    _network: &str,
    _weights: &Path,
    _data: &str,
    _device: &str,
    _batch_size: usize,
    _ov: &Overrides,
) -> Result<(), Failure> {
    super::needs_runtime("eval")
}

#[cfg(feature = "runtime")]
pub fn run(
    file: &Path,
    network: &str,
    weights: &Path,
    data: &str,
    device: &str,
    batch_size: usize,
    ov: &Overrides,
) -> Result<(), Failure> {
    use archc_runtime::data::DataSpec;
    use archc_runtime::train;

    if batch_size == 0 {
        eprintln!("archc: --batch-size must be at least 1");
        return Err(Failure::Usage);
    }
    let spec: DataSpec = data.parse().map_err(|e| {
        eprintln!("archc: {e}");
        Failure::Usage
    })?;
    let graph = super::lowered(file, network, ov)?;
    let device = super::device(device)?;
    let (r, name) =
        train::evaluate_weights(&graph, weights, &spec, &device, batch_size).map_err(|e| {
            eprintln!("archc: {e}");
            Failure::Input
        })?;
    println!("{network} on {name}");
    println!("top-1 error  {:.2}%", r.top1_error * 100.0);
    if let Some(t5) = r.top5_error {
        println!("top-5 error  {:.2}%", t5 * 100.0);
    }
    println!("loss         {:.4}", r.loss);
    Ok(())
}
