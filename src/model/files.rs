//! Plain f32 tensor files: every tensor of a safetensors file read as f32, and f32
//! tensors written as one (the CLI's `--logits` / `--hidden`, test fixtures).

use super::checked::{check_safetensors, safetensors_error};
use crate::error::{Error, Result};
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::path::Path;

/// Tensors by name: (shape, values as f32).
pub type TensorMap = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// Reads every tensor of a safetensors file as f32 (for tests and tools); errors name
/// the file and tensor.
pub fn read_all_f32(path: &Path) -> Result<TensorMap> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    check_safetensors(&bytes, path)?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| safetensors_error(e, path))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let vals: Vec<f32> = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::I64 => view
                .data()
                .chunks_exact(8)
                .map(|b| {
                    i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
                })
                .collect(),
            other => {
                return Err(Error::Weights {
                    path: path.to_path_buf(),
                    msg: format!("tensor '{name}' has unsupported dtype {other:?}"),
                })
            }
        };
        out.insert(name, (view.shape().to_vec(), vals));
    }
    Ok(out)
}

/// Writes f32 tensors to a safetensors file (for `score --logits/--hidden`).
pub fn write_f32(path: &Path, tensors: &[(&str, Vec<usize>, &[f32])]) -> Result<()> {
    let views = tensors
        .iter()
        .map(|(name, shape, data)| {
            safetensors::tensor::TensorView::new(
                Dtype::F32,
                shape.clone(),
                bytemuck::cast_slice(data),
            )
            .map(|v| (name.to_string(), v))
            .map_err(|e| Error::Weights {
                path: path.to_path_buf(),
                msg: format!("tensor {name}: {e}"),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let bytes = safetensors::serialize(views, None).map_err(|e| Error::Weights {
        path: path.to_path_buf(),
        msg: format!("serialize: {e}"),
    })?;
    std::fs::write(path, bytes).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}
