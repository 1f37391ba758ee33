//! The one registry of the shader variants flashconv compiles ([`Shader`]): every kernel
//! the runtime builds takes its source from an entry here, and [`Shader::all`] lists
//! every entry, which the tests validate with naga and translate to MSL, HLSL and
//! SPIR-V (`tests/shaders.rs`), so no variant escapes validation. The parameter blocks
//! the kernels read are checked against the shaders' structs here too.

use crate::session::{WeightFormat, WeightStorage, PREFILL_ROWS};

/// One compiled WGSL module: a file of `shaders/`, with the libraries it needs in front
/// and the variant's substitutions made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    /// `session.wgsl`: the embedding.
    Embed,
    /// `gate_lib.wgsl` + `session_matvec.wgsl`: the matrix products, for weights of
    /// `format` in `storage` (buffers or textures), `rows` rows per workgroup (1, or
    /// [`PREFILL_ROWS`]).
    Matvec {
        /// The weights' format.
        format: WeightFormat,
        /// Where they live (never [`WeightStorage::Auto`]).
        storage: WeightStorage,
        /// Rows per workgroup.
        rows: u32,
    },
    /// `sampling.wgsl`: the GPU sampler.
    Sampling,
    /// `mixer_params.wgsl` + `gate_lib.wgsl` + `mixer.wgsl`: the gate, lazy's scalar sum,
    /// eager and the direct tiles; with `textures`, the gates that also store v_t in
    /// lazy's v texture.
    Mixer {
        /// Lazy's v history in a texture.
        textures: bool,
    },
    /// [`Shader::Mixer`] + `mixer_bench.wgsl`: the mixer-only benchmark's steps.
    MixerBench {
        /// The variant that also stores v_t in lazy's v texture.
        textures: bool,
    },
    /// `mixer_params.wgsl` + `mixer_vec4.wgsl`: lazy's four-channel sum; with
    /// `textures`, over the v history and filter taps in textures.
    MixerVec4 {
        /// The v history and the taps in textures.
        textures: bool,
    },
    /// `fft_lib.wgsl` + `fft.wgsl`: the standalone FFT passes; `staged` reads through a
    /// texture the data was copied into.
    Fft {
        /// The staged variant.
        staged: bool,
    },
    /// `fft_lib.wgsl` + `tile.wgsl`: flash's FFT tiles.
    Tile,
    /// `bench.wgsl`: the bandwidth kernels.
    Bench,
}

impl Shader {
    /// The matrix products for weights of `format` in `storage` (resolved), `rows` rows
    /// per workgroup. Textures convert their texel format on load, so f16 weights in
    /// textures use the f32 kernels' source.
    pub fn matvec(format: WeightFormat, storage: WeightStorage, rows: u32) -> Shader {
        let format = match storage {
            WeightStorage::Texture => WeightFormat::F32,
            _ => format,
        };
        Shader::Matvec {
            format,
            storage,
            rows,
        }
    }

    /// Every variant the runtime can build.
    pub fn all() -> Vec<Shader> {
        let mut all = vec![Shader::Embed, Shader::Sampling, Shader::Tile, Shader::Bench];
        for format in [WeightFormat::F32, WeightFormat::F16] {
            for storage in [WeightStorage::Buffer, WeightStorage::Texture] {
                for rows in [1, PREFILL_ROWS] {
                    let shader = Shader::matvec(format, storage, rows);
                    if !all.contains(&shader) {
                        all.push(shader);
                    }
                }
            }
        }
        for flag in [false, true] {
            all.push(Shader::Mixer { textures: flag });
            all.push(Shader::MixerBench { textures: flag });
            all.push(Shader::MixerVec4 { textures: flag });
            all.push(Shader::Fft { staged: flag });
        }
        all
    }

    /// A name naming the files of the module and the variant (f16 variants say
    /// "f16").
    pub fn name(&self) -> String {
        match *self {
            Shader::Embed => "session.wgsl".into(),
            Shader::Matvec {
                format,
                storage,
                rows,
            } => format!(
                "gate_lib.wgsl + session_matvec.wgsl ({} weights in {}s, {rows} rows)",
                format.name(),
                storage.name()
            ),
            Shader::Sampling => "sampling.wgsl".into(),
            Shader::Mixer { textures } | Shader::MixerBench { textures } => format!(
                "mixer_params.wgsl + gate_lib.wgsl + mixer.wgsl{}{}",
                if let Shader::MixerBench { .. } = self {
                    " + mixer_bench.wgsl"
                } else {
                    ""
                },
                variant(textures, "v stored in a texture")
            ),
            Shader::MixerVec4 { textures } => format!(
                "mixer_params.wgsl + mixer_vec4.wgsl{}",
                variant(textures, "v and filters in textures")
            ),
            Shader::Fft { staged } => format!(
                "fft_lib.wgsl + fft.wgsl{}",
                variant(staged, "staged through a texture")
            ),
            Shader::Tile => "fft_lib.wgsl + tile.wgsl".into(),
            Shader::Bench => "bench.wgsl".into(),
        }
    }

    /// The complete WGSL source.
    pub fn source(&self) -> String {
        match *self {
            Shader::Embed => crate::session::SESSION_WGSL.to_string(),
            Shader::Matvec {
                format,
                storage,
                rows,
            } => crate::session::matvec_source(format, storage, rows),
            Shader::Sampling => crate::sampling::SAMPLING_WGSL.to_string(),
            Shader::Mixer { textures } => crate::mixer::mixer_source(textures),
            Shader::MixerBench { textures } => crate::mixer::bench_source(textures),
            Shader::MixerVec4 { textures } => crate::mixer::mixer_vec4_source(textures),
            Shader::Fft { staged } => crate::fft::fft_source(staged),
            Shader::Tile => crate::mixer::tile_source(),
            Shader::Bench => crate::bench::BENCH_WGSL.to_string(),
        }
    }
}

/// The suffix of a variant's name: ` (what)` where `on`, else nothing.
fn variant(on: bool, what: &str) -> String {
    if on {
        format!(" ({what})")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::{wgsl_struct_layout, ParamBlock};

    /// `P`'s size and fields (names and byte offsets, in order) are those naga lays out
    /// for its struct in `shader`.
    fn check<P: ParamBlock>(shader: Shader) {
        let source = shader.source();
        let name = P::WGSL_NAME;
        let (size, members) = wgsl_struct_layout(&source, name)
            .unwrap_or_else(|| panic!("{}: no struct {name}", shader.name()));
        let rust: Vec<(String, u32)> = P::fields()
            .into_iter()
            .map(|(n, off)| (n.to_string(), off as u32))
            .collect();
        assert_eq!(rust, members, "{}: fields of {name}", shader.name());
        assert_eq!(
            std::mem::size_of::<P>() as u32,
            size,
            "{}: size of {name}",
            shader.name()
        );
    }

    /// Every parameter block matches its shader's struct. (A renamed, missing or moved
    /// field fails: `ln_off` and `side_off` swapped in `Matvec` did; a field added to a
    /// full block already fails to compile, over the slot's 16 words.)
    #[test]
    fn param_blocks_match_their_shaders() {
        let matvec = Shader::Matvec {
            format: WeightFormat::F32,
            storage: WeightStorage::Buffer,
            rows: 1,
        };
        check::<crate::session::EmbedParams>(Shader::Embed);
        check::<crate::session::MatvecParams>(matvec);
        check::<crate::sampling::SampleParams>(Shader::Sampling);
        check::<crate::mixer::MixerParams>(Shader::Mixer { textures: false });
        check::<crate::mixer::MixerParams>(Shader::MixerVec4 { textures: false });
        check::<crate::mixer::TileParams>(Shader::Tile);
        check::<crate::fft::FgParams>(Shader::Fft { staged: false });
        check::<crate::bench::BenchParams>(Shader::Bench);
    }

    /// The registry lists every variant once.
    #[test]
    fn registry_has_no_duplicates() {
        let all = Shader::all();
        let names: std::collections::BTreeSet<String> = all.iter().map(Shader::name).collect();
        assert_eq!(names.len(), all.len());
    }
}
