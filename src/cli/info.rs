//! `flashconv info` (adapters, limits, features, the tuned FFT threshold) and
//! `flashconv random` (a random model of any shape, in the HF layout).

use super::common::device;
use clap::Args;
use flashconv::session::WeightStorage;
use flashconv::{device, Config, Model, Result};
use std::path::PathBuf;

#[derive(Args)]
pub(crate) struct RandomArgs {
    /// Layers.
    #[arg(long)]
    pub(crate) layers: usize,
    /// Width.
    #[arg(long)]
    pub(crate) dim: usize,
    /// Vocabulary size (12 = HyenaDNA's DNA vocabulary).
    #[arg(long, default_value_t = 12)]
    pub(crate) vocab: usize,
    /// max_seq_len of the model.
    #[arg(long)]
    pub(crate) max_len: usize,
    /// Filter MLP width.
    #[arg(long, default_value_t = 64)]
    pub(crate) filter_order: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Output directory.
    #[arg(long)]
    pub(crate) out: PathBuf,
}

pub(crate) fn info() -> Result<()> {
    let instance = device::instance_from_env();
    let adapters = device::list_adapters(&instance);
    println!("adapters found: {}", adapters.len());
    for a in &adapters {
        let i = a.get_info();
        println!(
            "  - {} ({:?}, {:?}, driver: {} {})",
            i.name, i.backend, i.device_type, i.driver, i.driver_info
        );
    }
    let ctx = device()?;
    let l = &ctx.limits;
    println!("chosen: {}", ctx.describe());
    println!("  max_buffer_size: {}", l.max_buffer_size);
    println!(
        "  max_storage_buffer_binding_size: {}",
        l.max_storage_buffer_binding_size
    );
    println!(
        "  max_storage_buffers_per_shader_stage: {}",
        l.max_storage_buffers_per_shader_stage
    );
    println!(
        "  max_compute_workgroup_storage_size: {}",
        l.max_compute_workgroup_storage_size
    );
    println!(
        "  max_compute_invocations_per_workgroup: {}",
        l.max_compute_invocations_per_workgroup
    );
    println!(
        "  max_compute_workgroups_per_dimension: {}",
        l.max_compute_workgroups_per_dimension
    );
    println!("  features: {:?}", ctx.features);
    match ctx.check_requirements() {
        Ok(()) => println!("  meets flashconv's requirements (WebGPU default limits)"),
        Err(e) => println!("  {e}"),
    }
    let storage = if WeightStorage::Auto.prefers_textures(&ctx) {
        "in textures (a CPU adapter; where they fit max_texture_dimension_2d)"
    } else {
        "in storage buffers"
    };
    println!("  weights (--weight-storage auto): {storage}");
    let cache = flashconv::tuning::cache_path();
    let cache = cache
        .as_ref()
        .map_or("no cache directory".into(), |p| p.display().to_string());
    match flashconv::tuning::cached(&ctx) {
        Some(t) => {
            println!(
                "  flash FFT tiles from U = {} (tuned; {cache})",
                t.fft_min_tile
            );
            for m in &t.timings {
                println!(
                    "    U = {:>3}: direct {:.3} ms, FFT {:.3} ms",
                    m.size,
                    m.direct * 1e3,
                    m.fft * 1e3
                );
            }
        }
        None => println!(
            "  flash FFT threshold not tuned yet (the first flash run measures it; {cache})"
        ),
    }
    Ok(())
}

pub(crate) fn random(a: RandomArgs) -> Result<()> {
    let mut cfg = Config::new(a.layers, a.dim, a.vocab, a.max_len);
    cfg.filter_order = a.filter_order;
    let model = Model::random(cfg, a.seed)?;
    model.save(&a.out)?;
    println!(
        "wrote {} ({} parameters)",
        a.out.display(),
        model.param_count()
    );
    Ok(())
}
