//! GPU Stockham FFT: batched complex transforms of any power-of-two size from 2 to 2^22,
//! unnormalised both ways like rustfft.
//!
//! The standalone transforms ([`FftPlan`], kernels in `shaders/fft.wgsl`) are chains of
//! barrier-free Stockham passes, one dispatch each, of radix 4 to 64, ping-ponging
//! between the data buffer and a scratch buffer (the last pass runs in place where that
//! leaves the result in the data buffer). Every thread carries two adjacent butterflies
//! of one transform in the halves of `vec4`s, so every buffer access moves two complex
//! values. Sizes 2, 4 and 8 are one pass, one thread per transform. `pass_radices`
//! picks the fewest passes of radix at most 16 (at most four passes, so 2^17 and up get
//! larger radices; two passes up to 2^11 on CPU adapters); see
//! [`FftPlanner::set_max_radix_log2`].
//!
//! Why not workgroup memory, as the earlier design did (four-step with a radix-8
//! transform of up to 2048 points per workgroup): on Mesa's lavapipe, which CI and
//! CPU-only users run, a shader with a workgroupBarrier runs its invocations as
//! coroutines, which costs more than the extra trips through the buffers, and every
//! load or store is a loop over the SIMD lanes while arithmetic is vectorised, so the
//! count of memory accesses (not flops) sets the time.
//!
//! Staged plans ([`FftPlanner::plan_staged`], recorded with [`FftPlan::encode_into`],
//! which takes the command encoder rather than a compute pass) do the same passes on
//! CPU adapters through a texture: before every pass the data buffer is copied into a
//! texture, and the pass reads the texture (`textureLoad`, a vector gather on llvmpipe)
//! and writes the data buffer. On lavapipe a buffer load costs about three times a
//! texture fetch or a buffer store, and the copy runs at memcpy speed, so a transform
//! of 2^16 x 64 takes about 0.7 of the time. The results are bit-identical (same
//! arithmetic). Other adapters, and batches that do not fill whole texture rows, run
//! the plain passes.
//!
//! The workgroup transform for other shaders lives in [`FFT_LIB_WGSL`], which they
//! include by concatenation (see its header comment): it exposes
//! `fn fft_wg(lid: u32, n: u32, log2n: u32, inverse: bool)` (and the packed
//! `fn fft_wg_batch(lid: u32, log2n: u32, log2count: u32, inverse: bool)`) over
//! `var<workgroup> fft_sh: array<vec2<f32>, 2048>`, and reads a twiddle table
//! `fft_twiddles` (laid out by [`twiddle_table`]) that the including shader declares.

use crate::error::{Error, Result};
use crate::gpu::{self, Access, GpuContext, Kernel};
use crate::shaders::Shader;
use std::collections::HashMap;
use std::sync::Arc;

mod plan;

#[cfg(test)]
pub(crate) use plan::FgParams;
use plan::Pass;
#[cfg(any(test, feature = "internals"))]
pub use plan::fft_blocking;
pub use plan::{FftBinding, FftPlan};

/// The reusable workgroup FFT (`fft_wg`, `fft_wg_batch`, `fft_sh`, `FFT_WG`).
pub const FFT_LIB_WGSL: &str = include_str!("../../shaders/fft_lib.wgsl");

/// Entry points for batched standalone transforms; compile as
/// `format!("{FFT_LIB_WGSL}\n{FFT_WGSL}")`.
pub const FFT_WGSL: &str = include_str!("../../shaders/fft.wgsl");

/// Largest transform one workgroup does in workgroup memory (16 KiB of `vec2<f32>`).
pub const MAX_WG_FFT: usize = 2048;

/// Largest transform size a plan accepts.
pub const MAX_FFT: usize = 1 << 22;

/// Transform direction. Neither direction normalises: inverse(forward(x)) = n·x.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// X_k = Σ x_j e^{-2πijk/n}
    Forward,
    /// x_j = Σ X_k e^{+2πijk/n}
    Inverse,
}

/// Offset in the twiddle table of the size-`m` block (`m` a power of two, at least 2;
/// smaller `m` give 0).
pub fn twiddle_offset(m: usize) -> usize {
    m.saturating_sub(2)
}

/// The twiddle table the FFT shaders read: for every power of two m = 2, 4, ..., `max_n`
/// (rounded up to a power of two, at least 2), the full table
/// W_m^j = (cos(-2πj/m), sin(-2πj/m)) for j in 0..m, at [`twiddle_offset`]`(m)`.
/// Computed in f64 and rounded to f32; 2·max_n − 2 entries in all.
pub fn twiddle_table(max_n: usize) -> Vec<[f32; 2]> {
    let max_n = max_n.max(2).next_power_of_two();
    let mut out = Vec::with_capacity(2 * max_n - 2);
    let mut m = 2;
    while m <= max_n {
        debug_assert_eq!(out.len(), twiddle_offset(m));
        for j in 0..m {
            let a = -2.0 * std::f64::consts::PI * (j as f64) / (m as f64);
            out.push([a.cos() as f32, a.sin() as f32]);
        }
        m *= 2;
    }
    out
}

fn check_size(n: usize) -> Result<u32> {
    if !(2..=MAX_FFT).contains(&n) || !n.is_power_of_two() {
        return Err(Error::input(format!(
            "FFT size {n} is not supported: it must be a power of two from 2 to {MAX_FFT}"
        )));
    }
    Ok(n.trailing_zeros())
}

/// Threads per workgroup of the standalone kernels (`FG_WG` in `shaders/fft.wgsl`).
const FG_WG: u32 = 64;

/// Largest pass radix (log2) the kernels have.
const MAX_PASS_LOG2: u32 = 6;

/// Largest pass radix (log2) of a size-2^`l` plan unless set: 16, where 16 vec4 values
/// per thread keep register use moderate on GPUs. On lavapipe a radix-16 pass over 2^22
/// complex values takes about 7 ms, near what its loads and stores alone cost, while
/// radix 32 and 64 take 13 and 20 ms (with one butterfly per thread as with two), so
/// four passes of 16 beat three of 64/32/32 at N = 2^16 (27 against 37 ms). Up to 2^11
/// CPU adapters take two passes (radix up to 64) instead of three: the smaller radices
/// of a third pass cost more per element there.
fn default_radix_log2(l: u32, cpu: bool) -> u32 {
    if cpu && l <= 11 {
        MAX_PASS_LOG2
    } else {
        4
    }
}

/// Most passes a plan uses: the mixer sizes its parameter arena for two FFTs of at most
/// this many dispatches per tile.
const MAX_PASSES: u32 = 4;

/// Pass radices (log2) for a size-2^l transform, l >= 4: the fewest passes with radix at
/// most 2^`max_lr` (more where that would need more than [`MAX_PASSES`]), at least two,
/// as balanced as possible, larger radices first.
fn pass_radices(l: u32, max_lr: u32) -> Vec<u32> {
    let max_lr = max_lr.clamp(2, MAX_PASS_LOG2).max(l.div_ceil(MAX_PASSES));
    let count = l.div_ceil(max_lr).max(2);
    (0..count)
        .map(|i| l / count + u32::from(i < l % count))
        .collect()
}

/// Compiles the FFT kernels as plans need them and hands out [`FftPlan`]s sharing them
/// and a twiddle table on the GPU that grows to the largest planned size.
#[derive(Debug)]
pub struct FftPlanner {
    src: String,
    /// `src` for staged passes ([`staged_source`]).
    staged_src: String,
    /// Keyed by entry point; staged kernels by "staged " + entry point.
    kernels: HashMap<String, Arc<Kernel>>,
    /// Any kernel, for the parameter layout (all kernels share it).
    first: Arc<Kernel>,
    twiddles: Option<(wgpu::Buffer, usize)>,
    dummy: wgpu::Buffer,
    /// Set by [`FftPlanner::set_max_radix_log2`]; else [`default_radix_log2`].
    max_radix_log2: Option<u32>,
    ctx: GpuContext,
}

const ACCESS: [Access; 3] = [Access::Read, Access::ReadWrite, Access::ReadWrite];

/// Bindings of the staged passes: twiddles, data (written), an unused scratch and the
/// texture the pass reads.
const STAGED_ACCESS: [Access; 4] = [
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::Texture,
];

/// Markers of the buffer-access block of `shaders/fft.wgsl`.
const ACCESS_BEGIN: &str = "// ---- buffer access";
const ACCESS_END: &str = "// ---- end of buffer access ----\n";

/// The standalone kernels' source ([`crate::shaders::Shader::Fft`]); `staged`: with
/// the buffer-access block swapped, so that `fg_load` reads the texture at binding 3
/// (element i at texel (i mod 2048, i / 2048), as [`gpu::linear_texture_wgsl`] lays it
/// out) and `fg_store` writes the data buffer. (Without its markers, which a unit test
/// checks, fft.wgsl would come back unswapped, and a staged plan's pipeline would fail
/// to build over its texture binding.)
pub(crate) fn fft_source(staged: bool) -> String {
    let src = format!("{FFT_LIB_WGSL}\n{FFT_WGSL}");
    let (Some(begin), Some(end)) = (src.find(ACCESS_BEGIN), src.find(ACCESS_END)) else {
        return src;
    };
    if !staged {
        return src;
    }
    let texture = gpu::linear_texture_wgsl(3, "fg_t", "fg_tload");
    let block = format!(
        "{texture}\n\
         fn fg_load(src: u32, idx: u32) -> vec4<f32> {{ return fg_tload(idx); }}\n\
         fn fg_store(dst: u32, idx: u32, x: vec4<f32>) {{ fg_a[idx] = x; }}\n"
    );
    format!("{}{block}{}", &src[..begin], &src[end + ACCESS_END.len()..])
}

impl FftPlanner {
    /// Compiles the first kernel (WGSL errors come back as [`Error::Gpu`]); the others
    /// are compiled by the first plan that needs them.
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        let src = Shader::Fft { staged: false }.source();
        let first = Arc::new(Kernel::new(ctx, &src, "fg_small_n2", &ACCESS)?);
        let mut kernels = HashMap::new();
        kernels.insert("fg_small_n2".to_string(), first.clone());
        Ok(FftPlanner {
            staged_src: Shader::Fft { staged: true }.source(),
            src,
            kernels,
            first,
            twiddles: None,
            dummy: ctx.buffer_zeroed("fft dummy scratch", 16)?,
            max_radix_log2: None,
            ctx: ctx.clone(),
        })
    }

    /// Caps the radix of the plans made from now on at 2^`log2` (clamped to 4..=64;
    /// sizes that would need more than four passes still get larger radices). The
    /// default is 16, and 64 for sizes up to 2^11 on CPU adapters (two passes);
    /// `flashconv bench-fft --max-radix` compares the caps.
    pub fn set_max_radix_log2(&mut self, log2: u32) {
        self.max_radix_log2 = Some(log2.clamp(2, MAX_PASS_LOG2));
    }

    /// Layout of the kernels' parameter group (group 0), for [`ParamArena::new`](crate::gpu::ParamArena::new).
    pub fn param_layout(&self) -> &wgpu::BindGroupLayout {
        &self.first.param_layout
    }

    fn kernel(&mut self, entry: &str) -> Result<Arc<Kernel>> {
        if let Some(k) = self.kernels.get(entry) {
            return Ok(k.clone());
        }
        let k = Arc::new(Kernel::new(&self.ctx, &self.src, entry, &ACCESS)?);
        self.kernels.insert(entry.to_string(), k.clone());
        Ok(k)
    }

    fn staged_kernel(&mut self, entry: &str) -> Result<Arc<Kernel>> {
        let key = format!("staged {entry}");
        if let Some(k) = self.kernels.get(&key) {
            return Ok(k.clone());
        }
        let k = Arc::new(Kernel::new(
            &self.ctx,
            &self.staged_src,
            entry,
            &STAGED_ACCESS,
        )?);
        self.kernels.insert(key, k.clone());
        Ok(k)
    }

    /// Whether staged plans stage through a texture here: on CPU adapters, where that
    /// is faster ([`FftPlanner::plan_staged`]).
    pub fn stages_through_texture(&self) -> bool {
        self.ctx.info.device_type == wgpu::DeviceType::Cpu
    }

    /// A plan for size-`n` transforms recorded with [`FftPlan::encode_into`], which on
    /// CPU adapters copies the data into a texture before every pass and has the pass
    /// read it from there (see the module docs); elsewhere, and for sizes up to 8, the
    /// same as [`FftPlanner::plan`]. Bit-identical results either way.
    pub fn plan_staged(&mut self, n: usize) -> Result<FftPlan> {
        let mut plan = self.plan(n)?;
        if self.stages_through_texture() && plan.needs_scratch() {
            let staged = plan
                .passes
                .iter()
                .map(|p| self.staged_kernel(&p.staged_entry()))
                .collect::<Result<Vec<_>>>()?;
            plan.staged = Some(staged);
        }
        Ok(plan)
    }

    /// A plan for size-`n` transforms; `n` must be a power of two from 2 to 2^22
    /// ([`Error::Input`] otherwise). Grows the shared twiddle table when `n` needs more
    /// of it (plans made earlier keep the table they were made with).
    pub fn plan(&mut self, n: usize) -> Result<FftPlan> {
        let log2n = check_size(n)?;
        let need = n.max(MAX_WG_FFT);
        let twiddles = match &self.twiddles {
            Some((buf, have)) if *have >= need => buf.clone(),
            _ => {
                let buf = self.ctx.buffer_init("fft twiddles", &twiddle_table(need))?;
                self.twiddles = Some((buf.clone(), need));
                buf
            }
        };
        let passes = if log2n < 4 {
            vec![Pass {
                log2n,
                lr: log2n,
                lns: 0,
                first: true,
                last: true,
            }]
        } else {
            let cpu = self.ctx.info.device_type == wgpu::DeviceType::Cpu;
            let cap = self
                .max_radix_log2
                .unwrap_or_else(|| default_radix_log2(log2n, cpu));
            let radices = pass_radices(log2n, cap);
            let count = radices.len();
            let mut lns = 0;
            radices
                .into_iter()
                .enumerate()
                .map(|(i, lr)| {
                    let p = Pass {
                        log2n,
                        lr,
                        lns,
                        first: i == 0,
                        last: i + 1 == count,
                    };
                    lns += lr;
                    p
                })
                .collect::<Vec<_>>()
        };
        let kernels = passes
            .iter()
            .enumerate()
            .map(|(i, p)| self.kernel(&p.entry(i)))
            .collect::<Result<Vec<_>>>()?;
        Ok(FftPlan {
            n,
            passes,
            kernels,
            staged: None,
            twiddles,
            dummy: self.dummy.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twiddle_table_values_and_offsets() {
        assert_eq!(twiddle_offset(2), 0);
        assert_eq!(twiddle_offset(4), 2);
        assert_eq!(twiddle_offset(8), 6);
        for max_n in [2usize, 4, 64, 4096] {
            let t = twiddle_table(max_n);
            assert_eq!(t.len(), 2 * max_n - 2);
            let mut m = 2;
            while m <= max_n {
                let off = twiddle_offset(m);
                assert_eq!(t[off], [1.0, 0.0]);
                for (j, w) in t[off..off + m].iter().enumerate() {
                    let a = -2.0 * std::f64::consts::PI * j as f64 / m as f64;
                    assert!((w[0] as f64 - a.cos()).abs() <= 6e-8, "m={m} j={j}");
                    assert!((w[1] as f64 - a.sin()).abs() <= 6e-8, "m={m} j={j}");
                }
                if m >= 4 {
                    // W_m^{m/4} = -i, W_m^{m/2} = -1
                    assert!((t[off + m / 4][1] + 1.0).abs() < 1e-7);
                    assert!((t[off + m / 2][0] + 1.0).abs() < 1e-7);
                }
                m *= 2;
            }
        }
        // rounded up to a power of two
        assert_eq!(twiddle_table(5).len(), twiddle_table(8).len());
        assert_eq!(twiddle_table(0).len(), 2);
    }

    #[test]
    fn size_checks_and_pass_radices() {
        for bad in [0usize, 1, 3, 6, 1000, MAX_FFT * 2] {
            assert!(check_size(bad).is_err(), "{bad}");
        }
        for (l, max) in (4..=22u32).flat_map(|l| (2..=6).map(move |m| (l, m))) {
            let r = pass_radices(l, max);
            assert_eq!(r.iter().sum::<u32>(), l, "{l}");
            assert!((2..=MAX_PASSES as usize).contains(&r.len()), "{l}: {r:?}");
            assert!(r.iter().all(|&x| (1..=MAX_PASS_LOG2).contains(&x)), "{l}");
            assert!(r[0] <= max.max(l.div_ceil(MAX_PASSES)), "{l} {max}: {r:?}");
            assert!(
                r.windows(2).all(|w| w[0] >= w[1] && w[0] - w[1] <= 1),
                "{l}"
            );
        }
        assert_eq!(pass_radices(4, 6), [2, 2]);
        assert_eq!(pass_radices(10, 6), [5, 5]);
        assert_eq!(pass_radices(16, 6), [6, 5, 5]);
        assert_eq!(pass_radices(16, 4), [4, 4, 4, 4]);
        assert_eq!(pass_radices(18, 4), [5, 5, 4, 4]);
        assert_eq!(pass_radices(22, 4), [6, 6, 5, 5]);
    }

    #[test]
    fn default_radices() {
        let radices = |l, cpu| pass_radices(l, default_radix_log2(l, cpu));
        // Two passes up to 2^11 on CPU adapters, radix 16 from there on; radix 16
        // everywhere on GPUs; larger radices only where four passes of 16 fall short.
        assert_eq!(radices(10, true), [5, 5]);
        assert_eq!(radices(11, true), [6, 5]);
        assert_eq!(radices(10, false), [4, 3, 3]);
        for cpu in [true, false] {
            assert_eq!(radices(12, cpu), [4, 4, 4]);
            assert_eq!(radices(16, cpu), [4, 4, 4, 4]);
            assert_eq!(radices(17, cpu), [5, 4, 4, 4]);
        }
    }
}
