//! GPU Stockham FFT: batched complex transforms of any power-of-two size from 2 to 2^22,
//! unnormalised both ways like rustfft.
//!
//! Sizes up to [`MAX_WG_FFT`] run in one pass, each workgroup transforming one or more
//! whole sequences (packed up to 2048 elements) in workgroup memory. Larger sizes use
//! the four-step algorithm, N = N1·N2: pass 1 transforms the N1 strided columns
//! x[n1 + N1·n2] (size N2), multiplies by W_N^{n1·k2} and writes them contiguously to a
//! scratch buffer; pass 2 transforms the N2 strided columns of the scratch buffer (size
//! N1) and writes the result in natural order back to the data buffer.
//!
//! Inside a workgroup: decimation-in-time Stockham, one twiddle-free radix-2/4/8 first
//! stage, then radix-8 stages (2048 = 4·8·8·8), 256 threads each holding 8 values per
//! stage. The standalone kernels load the first stage straight from the buffer and store
//! the last stage straight back, so workgroup memory is only used between stages.
//!
//! The workgroup transform itself lives in [`FFT_LIB_WGSL`], which other shaders include
//! by concatenation (see its header comment): it exposes
//! `fn fft_wg(lid: u32, n: u32, log2n: u32, inverse: bool)` (and the packed
//! `fn fft_wg_batch(lid: u32, log2n: u32, log2count: u32, inverse: bool)`) over
//! `var<workgroup> fft_sh: array<vec2<f32>, 2048>`, and reads a twiddle table
//! `fft_twiddles` (laid out by [`twiddle_table`]) that the including shader declares.

use crate::error::{Error, Result};
use crate::gpu::{self, Access, GpuContext, Kernel, ParamArena};
use std::sync::Arc;

/// The reusable workgroup FFT (`fft_wg`, `fft_wg_batch`, `fft_sh`, `FFT_WG`).
pub const FFT_LIB_WGSL: &str = include_str!("../shaders/fft_lib.wgsl");

/// Entry points for batched standalone transforms; compile as
/// `format!("{FFT_LIB_WGSL}\n{FFT_WGSL}")`.
pub const FFT_WGSL: &str = include_str!("../shaders/fft.wgsl");

/// Largest transform one workgroup does in workgroup memory (16 KiB of `vec2<f32>`).
pub const MAX_WG_FFT: usize = 2048;

/// Largest transform size a plan accepts.
pub const MAX_FFT: usize = 1 << 22;

/// Threads per workgroup of every FFT kernel (`FFT_WG` in the WGSL).
pub const FFT_WG: u32 = 256;

const LOG2_MAX_WG: u32 = MAX_WG_FFT.trailing_zeros();

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

/// The specialised entry points: `by_mode[mode][lr0 - 1]`, and `single[lr0 - 1]` for
/// sizes 2, 4, 8 (see `shaders/fft.wgsl`).
#[derive(Debug)]
struct Kernels {
    by_mode: [[Kernel; 3]; 3],
    single: [Kernel; 3],
    /// Bound as the unused scratch of single-pass transforms.
    dummy: wgpu::Buffer,
}

impl Kernels {
    /// The kernel for a pass of size 2^log2n.
    fn get(&self, mode: Mode, log2n: u32) -> &Kernel {
        let lr0 = first_radix(log2n);
        if log2n == lr0 && mode == Mode::InPlace {
            &self.single[lr0 as usize - 1]
        } else {
            &self.by_mode[mode as usize][lr0 as usize - 1]
        }
    }
}

/// Compiles the FFT kernels once and hands out [`FftPlan`]s sharing them and a twiddle
/// table on the GPU that grows to the largest planned size.
#[derive(Debug)]
pub struct FftPlanner {
    kernels: Arc<Kernels>,
    twiddles: Option<(wgpu::Buffer, usize)>,
    ctx: GpuContext,
}

impl FftPlanner {
    /// Compiles the kernels (WGSL errors come back as [`Error::Gpu`]).
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        let src = format!("{FFT_LIB_WGSL}\n{FFT_WGSL}");
        let access = [Access::Read, Access::ReadWrite, Access::ReadWrite];
        let make = |mode: &str| -> Result<[Kernel; 3]> {
            Ok([
                Kernel::new(ctx, &src, &format!("fft_{mode}_r2"), &access)?,
                Kernel::new(ctx, &src, &format!("fft_{mode}_r4"), &access)?,
                Kernel::new(ctx, &src, &format!("fft_{mode}_r8"), &access)?,
            ])
        };
        let kernels = Kernels {
            by_mode: [make("inplace")?, make("a_to_b")?, make("b_to_a")?],
            single: make("single")?,
            dummy: ctx.buffer_zeroed("fft dummy scratch", 16)?,
        };
        Ok(FftPlanner {
            kernels: Arc::new(kernels),
            twiddles: None,
            ctx: ctx.clone(),
        })
    }

    /// Layout of the kernels' parameter group (group 0), for [`ParamArena::new`].
    pub fn param_layout(&self) -> &wgpu::BindGroupLayout {
        &self.kernels.by_mode[0][0].param_layout
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
        let passes = if n <= MAX_WG_FFT {
            vec![PassDesc::single(log2n)]
        } else {
            let (l1, l2) = split(log2n);
            PassDesc::four_step(log2n, l1, l2).to_vec()
        };
        Ok(FftPlan {
            n,
            passes,
            kernels: self.kernels.clone(),
            twiddles,
        })
    }
}

/// Radix (log2) of the first stage of a size-2^l workgroup transform: the rest are
/// radix 8 (`fft_first_radix` in the WGSL).
fn first_radix(l: u32) -> u32 {
    (l + 2) % 3 + 1
}

/// Stages of a size-2^l workgroup transform.
fn stages(l: u32) -> u32 {
    l.div_ceil(3)
}

/// Smallest four-step pass (log2): keeps every pass multi-stage, which the fused
/// last stage (and its four-step twiddles) needs.
const MIN_PASS_LOG2: u32 = 4;

/// Splits log2 N (> 11) into (log2 N1, log2 N2), both in 4..=11: fewest stages, then
/// the most balanced.
fn split(l: u32) -> (u32, u32) {
    let lo = l.saturating_sub(LOG2_MAX_WG).max(MIN_PASS_LOG2);
    let hi = LOG2_MAX_WG.min(l - MIN_PASS_LOG2);
    (lo..=hi)
        .map(|l2| (l - l2, l2))
        .min_by_key(|&(l1, l2)| (stages(l1) + stages(l2), l1.abs_diff(l2)))
        .unwrap_or((l - l / 2, l / 2))
}

/// Which buffers a pass reads and writes (the `mode` of `shaders/fft.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// data -> data
    InPlace = 0,
    /// data -> scratch, with four-step twiddles
    AToB = 1,
    /// scratch -> data
    BToA = 2,
}

/// One column pass; `transforms` and `groups` depend on the batch and are filled at
/// encode time.
#[derive(Clone, Copy, Debug)]
struct PassDesc {
    mode: Mode,
    log2n: u32,
    log2cols: u32,
    big_n: u32,
    in_elem: u32,
    in_col: u32,
    out_elem: u32,
    out_col: u32,
    in_minor: bool,
    out_minor: bool,
}

impl PassDesc {
    fn single(log2n: u32) -> Self {
        PassDesc {
            mode: Mode::InPlace,
            log2n,
            log2cols: 0,
            big_n: 1 << log2n,
            in_elem: 1,
            in_col: 0,
            out_elem: 1,
            out_col: 0,
            in_minor: false,
            out_minor: false,
        }
    }

    fn four_step(log2n: u32, l1: u32, l2: u32) -> [Self; 2] {
        let (n1, n2) = (1u32 << l1, 1u32 << l2);
        [
            // columns n1: x[n1 + N1·n2] -> FFT over n2 -> ·W_N^{n1·k2} -> scratch[n1·N2 + k2]
            PassDesc {
                mode: Mode::AToB,
                log2n: l2,
                log2cols: l1,
                big_n: 1 << log2n,
                in_elem: n1,
                in_col: 1,
                out_elem: 1,
                out_col: n2,
                in_minor: true,
                out_minor: false,
            },
            // columns k2: scratch[n1·N2 + k2] -> FFT over n1 -> x[k2 + N2·k1]
            PassDesc {
                mode: Mode::BToA,
                log2n: l1,
                log2cols: l2,
                big_n: 1 << log2n,
                in_elem: n2,
                in_col: 1,
                out_elem: n2,
                out_col: 1,
                in_minor: true,
                out_minor: true,
            },
        ]
    }

    fn words(&self, batch: u32, dir: Direction) -> Result<([u32; gpu::PARAM_WORDS], u32)> {
        let transforms = batch.checked_mul(1 << self.log2cols).ok_or_else(|| {
            Error::input(format!(
                "FFT batch {batch} of size {} is too large",
                self.big_n
            ))
        })?;
        let max_pack_log = LOG2_MAX_WG - self.log2n;
        let log2pack = max_pack_log.min(
            transforms
                .checked_next_power_of_two()
                .map_or(32, |p| p.trailing_zeros()),
        );
        let groups = transforms.div_ceil(1 << log2pack);
        let w = [
            1 << self.log2n,
            self.log2n,
            (dir == Direction::Inverse) as u32,
            transforms,
            self.log2cols,
            self.big_n,
            log2pack,
            groups,
            self.in_elem,
            self.in_col,
            self.out_elem,
            self.out_col,
            self.in_minor as u32,
            self.out_minor as u32,
            0,
            0,
        ];
        Ok((w, groups))
    }
}

/// Batched transforms of one size; made by [`FftPlanner::plan`].
#[derive(Debug, Clone)]
pub struct FftPlan {
    n: usize,
    passes: Vec<PassDesc>,
    kernels: Arc<Kernels>,
    twiddles: wgpu::Buffer,
}

impl FftPlan {
    /// The transform size.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The twiddle table on the GPU (covers every size up to this plan's), for other
    /// shaders that include `fft_lib.wgsl` and call `fft_wg`.
    pub fn twiddles(&self) -> &wgpu::Buffer {
        &self.twiddles
    }

    /// Dispatches per transform: 1 up to [`MAX_WG_FFT`], 2 above (four-step).
    pub fn passes(&self) -> usize {
        self.passes.len()
    }

    /// Whether [`FftPlan::encode`] uses its scratch buffer (sizes above [`MAX_WG_FFT`]).
    pub fn needs_scratch(&self) -> bool {
        self.passes.len() > 1
    }

    /// Bind groups of this plan over `data` and `scratch`, made once so that
    /// [`FftPlan::encode_bound`] allocates nothing. `scratch` must be distinct from
    /// `data` when [`FftPlan::needs_scratch`] (it is not touched otherwise and may be
    /// any buffer but `data`).
    pub fn bind(
        &self,
        ctx: &GpuContext,
        data: &wgpu::Buffer,
        scratch: &wgpu::Buffer,
    ) -> Result<FftBinding> {
        let k = &self.kernels;
        let scratch = if self.needs_scratch() {
            if scratch == data {
                return Err(Error::input(format!(
                    "FFT of size {} needs a scratch buffer distinct from the data buffer",
                    self.n
                )));
            }
            scratch
        } else {
            &k.dummy
        };
        let groups = self
            .passes
            .iter()
            .map(|p| {
                k.get(p.mode, p.log2n)
                    .bind(ctx, &[&self.twiddles, data, scratch])
            })
            .collect();
        let scratch_size = if self.needs_scratch() {
            scratch.size()
        } else {
            u64::MAX
        };
        Ok(FftBinding {
            groups,
            data_size: data.size(),
            scratch_size,
        })
    }

    /// Records `batch` transforms of `data` in place: transform b is the complex
    /// (`vec2<f32>`) elements [b·n, (b+1)·n). Binds `data` and `scratch` for this call
    /// ([`FftPlan::bind`] says what they must be); where the same buffers are
    /// transformed again, bind once and use [`FftPlan::encode_bound`].
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        ctx: &GpuContext,
        pass: &mut wgpu::ComputePass<'_>,
        arena: &mut ParamArena,
        data: &wgpu::Buffer,
        scratch: &wgpu::Buffer,
        batch: u32,
        dir: Direction,
    ) -> Result<()> {
        let binding = self.bind(ctx, data, scratch)?;
        self.encode_bound(pass, arena, &binding, batch, dir)
    }

    /// Records `batch` transforms over the buffers of `binding` (made by this plan's
    /// [`FftPlan::bind`]). Pushes [`FftPlan::passes`] parameter slots onto `arena`;
    /// call [`ParamArena::upload`] before submitting.
    pub fn encode_bound(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        arena: &mut ParamArena,
        binding: &FftBinding,
        batch: u32,
        dir: Direction,
    ) -> Result<()> {
        if batch == 0 {
            return Ok(());
        }
        let bytes = (batch as u64) * (self.n as u64) * 8;
        if binding.data_size < bytes {
            return Err(Error::input(format!(
                "FFT data buffer holds {} bytes but {batch} transforms of size {} need {bytes}",
                binding.data_size, self.n
            )));
        }
        if binding.scratch_size < bytes {
            return Err(Error::input(format!(
                "FFT scratch buffer holds {} bytes but {batch} transforms of size {} need {bytes}",
                binding.scratch_size, self.n
            )));
        }
        if bytes / 8 > u32::MAX as u64 {
            return Err(Error::Limit(format!(
                "FFT batch of {batch} x {} elements exceeds 2^32 elements",
                self.n
            )));
        }
        if arena.remaining() < self.passes.len() || binding.groups.len() != self.passes.len() {
            return Err(Error::gpu(format!(
                "parameter arena has {} slots left and the binding {} passes; the FFT needs {}",
                arena.remaining(),
                binding.groups.len(),
                self.passes.len()
            )));
        }
        for (p, bg) in self.passes.iter().zip(&binding.groups) {
            let kernel = self.kernels.get(p.mode, p.log2n);
            let (w, groups) = p.words(batch, dir)?;
            gpu::dispatch(pass, arena, kernel, bg, &w, groups)?;
        }
        Ok(())
    }
}

/// An [`FftPlan`]'s bind groups over one data and scratch buffer ([`FftPlan::bind`]).
#[derive(Debug)]
pub struct FftBinding {
    groups: Vec<wgpu::BindGroup>,
    data_size: u64,
    scratch_size: u64,
}

/// Uploads `data` (`data.len() / n` transforms of size `n`), transforms it on the GPU and
/// reads the result back, blocking.
pub fn fft_blocking(
    ctx: &GpuContext,
    planner: &mut FftPlanner,
    data: &[[f32; 2]],
    n: usize,
    dir: Direction,
) -> Result<Vec<[f32; 2]>> {
    let plan = planner.plan(n)?;
    if data.is_empty() || !data.len().is_multiple_of(n) {
        return Err(Error::input(format!(
            "FFT input has {} elements, not a positive multiple of the size {n}",
            data.len()
        )));
    }
    let batch = u32::try_from(data.len() / n)
        .map_err(|_| Error::input(format!("FFT batch {} is too large", data.len() / n)))?;
    let buf = ctx.buffer_init("fft data", data)?;
    let scratch = if plan.needs_scratch() {
        ctx.buffer_zeroed("fft scratch", (data.len() * 8) as u64)?
    } else {
        ctx.buffer_zeroed("fft scratch (unused)", 16)?
    };
    let mut arena = ParamArena::new(ctx, planner.param_layout(), plan.passes());
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("fft"),
            timestamp_writes: None,
        });
        plan.encode(ctx, &mut pass, &mut arena, &buf, &scratch, batch, dir)?;
    }
    arena.upload(ctx);
    ctx.queue.submit([enc.finish()]);
    let flat = ctx.read_f32(&buf, 0, (data.len() * 2) as u64)?;
    Ok(flat.chunks_exact(2).map(|c| [c[0], c[1]]).collect())
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
    fn size_checks_and_splits() {
        for bad in [0usize, 1, 3, 6, 1000, MAX_FFT * 2] {
            assert!(check_size(bad).is_err(), "{bad}");
        }
        for l in 12..=22u32 {
            let (l1, l2) = split(l);
            assert_eq!(l1 + l2, l);
            assert!(l1 <= LOG2_MAX_WG && l2 <= LOG2_MAX_WG);
            assert!(l1 >= MIN_PASS_LOG2 && l2 >= MIN_PASS_LOG2);
        }
        assert_eq!(split(16), (8, 8));
        assert_eq!(split(18), (9, 9));
        assert_eq!(split(12), (6, 6));
        for l in 1..=11 {
            let r = first_radix(l);
            assert!((1..=3).contains(&r) && (l - r).is_multiple_of(3), "{l}");
        }
    }
}
