//! Raw tensors in `.safetensors` files for `archc forward`: an input named `input`
//! (`[N, C, H, W]`, f32) and an output named `output`.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};

use super::DataError;

/// Read the f32 tensor `name` of rank 4 from `path`.
pub fn read4(path: &Path, name: &str, device: &Device) -> Result<Tensor<4>, DataError> {
    let buf = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let st = safetensors::SafeTensors::deserialize(&buf)
        .map_err(|e| DataError::invalid(path, format!("not a safetensors file: {e}")))?;
    let t = st.tensor(name).map_err(|_| {
        let names: Vec<String> = st.names().into_iter().map(|s| format!("`{s}`")).collect();
        DataError::invalid(
            path,
            format!(
                "no tensor named `{name}` (it has {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
        )
    })?;
    if t.dtype() != safetensors::Dtype::F32 {
        return Err(DataError::invalid(
            path,
            format!("`{name}` is {:?}; f32 is needed", t.dtype()),
        ));
    }
    let shape: [usize; 4] = t.shape().try_into().map_err(|_| {
        DataError::invalid(
            path,
            format!("`{name}` has shape {:?}; [N, C, H, W] is needed", t.shape()),
        )
    })?;
    let values: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if values.iter().any(|v| !v.is_finite()) {
        return Err(DataError::invalid(
            path,
            format!("`{name}` holds NaN or infinite values"),
        ));
    }
    Ok(Tensor::from_data(TensorData::new(values, shape), device))
}

/// Write `t` as the f32 tensor `name` to `path`.
pub fn write<const D: usize>(path: &Path, name: &str, t: Tensor<D>) -> Result<(), DataError> {
    let shape = t.dims().to_vec();
    let data = t.into_data().convert::<f32>();
    let bytes = data.as_bytes().to_vec();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape, &bytes)
        .map_err(|e| DataError::invalid(path, e.to_string()))?;
    safetensors::serialize_to_file([(name, view)], None, path)
        .map_err(|e| DataError::invalid(path, format!("cannot write: {e}")))
}
