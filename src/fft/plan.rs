//! FFT plans ([`FftPlan`]): the chain of Stockham passes of one size, their parameter
//! blocks, bindings over a data and a scratch buffer (staged through a texture on CPU
//! adapters), and recording them into a [`Step`].

use super::{Direction, FG_WG};
#[cfg(any(test, feature = "internals"))]
use super::FftPlanner;
use crate::error::{Error, Result};
use crate::gpu::{self, param_block, GpuContext, Kernel, ParamArena, Step, Bind};
use std::sync::Arc;

param_block! {
    /// The standalone FFT passes' parameter block (`FgParams` in `fft.wgsl`).
    pub(crate) struct FgParams as "FgParams" {
        /// Transform size N (log2).
        log2n: u32,
        /// log2 Ns: product of the earlier passes' radices.
        lns: u32,
        /// Butterfly pairs in all (batch * N / (2 R)); fg_small: transforms.
        count: u32,
        /// 1: conjugate the input (first pass of an inverse).
        conj_in: u32,
        /// 1: conjugate the output (last pass of an inverse).
        conj_out: u32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
        _pad3: [u32; 4],
        _pad4: [u32; 4],
    }
}

/// One dispatch of a plan: a barrier-free Stockham pass (`fg_*` in `shaders/fft.wgsl`),
/// or the whole transform for sizes 2, 4 and 8.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pass {
    pub(super) log2n: u32,
    /// Radix (log2).
    pub(super) lr: u32,
    /// Product of the earlier passes' radices (log2); 0 for the first pass.
    pub(super) lns: u32,
    pub(super) first: bool,
    pub(super) last: bool,
}

impl Pass {
    /// The entry point of pass `i` (from 0): passes alternate data -> scratch,
    /// scratch -> data; the last one is in place when that leaves the result in data.
    pub(super) fn entry(&self, i: usize) -> String {
        let r = 1u32 << self.lr;
        if self.log2n < 4 {
            return format!("fg_small_n{r}");
        }
        if self.first {
            return format!("fg_first_r{r}");
        }
        let even = i.is_multiple_of(2);
        let dir = match (even, self.last) {
            (true, true) => "a_a",
            (true, false) => "a_b",
            (false, _) => "b_a",
        };
        format!("fg_{dir}_r{r}")
    }

    /// The entry point of this pass in a staged plan: it reads the texture and writes
    /// the data buffer, whatever its place in the chain.
    pub(super) fn staged_entry(&self) -> String {
        let r = 1u32 << self.lr;
        if self.first {
            format!("fg_first_r{r}")
        } else {
            format!("fg_a_b_r{r}")
        }
    }

    fn params(&self, batch: u32, dir: Direction) -> Result<(FgParams, u32)> {
        let count = if self.log2n < 4 {
            batch as u64
        } else {
            (batch as u64) << (self.log2n - self.lr - 1)
        };
        let count = u32::try_from(count).map_err(|_| {
            Error::Limit(format!(
                "FFT batch of {batch} x {} elements is too large",
                1u64 << self.log2n
            ))
        })?;
        let inv = dir == Direction::Inverse;
        let w = FgParams {
            log2n: self.log2n,
            lns: self.lns,
            count,
            conj_in: (inv && self.first) as u32,
            conj_out: (inv && self.last) as u32,
            ..Default::default()
        };
        Ok((w, count.div_ceil(FG_WG)))
    }
}

/// Batched transforms of one size; made by [`FftPlanner::plan`].
#[derive(Debug, Clone)]
pub struct FftPlan {
    pub(super) n: usize,
    pub(super) passes: Vec<Pass>,
    pub(super) kernels: Vec<Arc<Kernel>>,
    /// The passes' staged kernels, in a staged plan on a CPU adapter.
    pub(super) staged: Option<Vec<Arc<Kernel>>>,
    pub(super) twiddles: wgpu::Buffer,
    /// Bound as the unused scratch of single-pass plans.
    pub(super) dummy: wgpu::Buffer,
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

    /// Dispatches per transform: 1 for sizes 2 to 8, 2 to 4 from 16 up.
    pub fn passes(&self) -> usize {
        self.passes.len()
    }

    /// The radix of each pass, in order (one pass of radix n for sizes 2 to 8).
    pub fn radices(&self) -> Vec<usize> {
        self.passes.iter().map(|p| 1 << p.lr).collect()
    }

    /// Whether [`FftPlan::encode`] uses its scratch buffer (sizes 16 and up).
    pub fn needs_scratch(&self) -> bool {
        self.passes.len() > 1
    }

    /// Bind groups of this plan over `data` and `scratch`, made once so that
    /// [`FftPlan::encode_bound`] and [`FftPlan::encode_into`] allocate nothing; for a
    /// staged plan on a CPU adapter also the staging texture, as large as `data`. `scratch` must be distinct from
    /// `data` when [`FftPlan::needs_scratch`] (it is not touched otherwise and may be
    /// any buffer).
    pub fn bind(
        &self,
        ctx: &GpuContext,
        data: &wgpu::Buffer,
        scratch: &wgpu::Buffer,
    ) -> Result<FftBinding> {
        if self.needs_scratch() && scratch == data {
            return Err(Error::input(format!(
                "FFT of size {} needs a scratch buffer distinct from the data buffer",
                self.n
            )));
        }
        let scratch = if self.needs_scratch() {
            scratch
        } else {
            &self.dummy
        };
        let groups = self
            .kernels
            .iter()
            .map(|k| k.bind(ctx, &[&self.twiddles, data, scratch]))
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
            staged: self.bind_staged(ctx, data)?,
        })
    }

    /// The staging texture of a staged plan (as many whole rows as `data` fills) and
    /// the staged passes' bind groups; none for other plans, or where `data` cannot be
    /// copied from, fills no texture row or needs more rows than the device allows.
    fn bind_staged(&self, ctx: &GpuContext, data: &wgpu::Buffer) -> Result<Option<Staged>> {
        let Some(kernels) = &self.staged else {
            return Ok(None);
        };
        let rows = data.size() / STAGE_ROW_BYTES;
        let copyable = data.usage().contains(wgpu::BufferUsages::COPY_SRC);
        let max = ctx.limits.max_texture_dimension_2d as u64;
        if rows == 0 || rows > max || !copyable {
            return Ok(None);
        }
        let texture = ctx.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("fft staging"),
            size: wgpu::Extent3d {
                width: gpu::TEXTURE_WIDTH + STAGE_PAD,
                height: rows as u32,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba32Float,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let view = texture.create_view(&Default::default());
        let groups = kernels
            .iter()
            .map(|k| {
                k.bind_resources(
                    ctx,
                    vec![
                        self.twiddles.as_entire_binding(),
                        data.as_entire_binding(),
                        self.dummy.as_entire_binding(),
                        wgpu::BindingResource::TextureView(&view),
                    ],
                )
            })
            .collect();
        Ok(Some(Staged {
            data: data.clone(),
            texture,
            rows: rows as u32,
            groups,
        }))
    }

    /// Records `batch` transforms over the buffers of `binding` (made by this plan's
    /// [`FftPlan::bind`]) into the step's open compute pass. Pushes
    /// [`FftPlan::passes`] parameter slots onto the step's arena.
    pub fn encode_bound(
        &self,
        step: &mut Step<'_>,
        binding: &FftBinding,
        batch: u32,
        dir: Direction,
    ) -> Result<()> {
        if batch == 0 {
            return Ok(());
        }
        self.check(step.arena(), binding, batch)?;
        for ((p, kernel), bg) in self.passes.iter().zip(&self.kernels).zip(&binding.groups) {
            let (w, groups) = p.params(batch, dir)?;
            step.dispatch(kernel, bg, &w, groups)?;
        }
        Ok(())
    }

    /// Records `batch` transforms over the buffers of `binding` into `step`, each pass
    /// in a compute pass of its own: through the staging texture where the plan is
    /// staged ([`FftPlanner::plan_staged`]) and the batch fills whole rows of the texture
    /// (`batch · n` a multiple of 4096), else as [`FftPlan::encode_bound`] in one compute
    /// pass. Pushes [`FftPlan::passes`] parameter slots onto the step's arena.
    pub fn encode_into(
        &self,
        step: &mut Step<'_>,
        binding: &FftBinding,
        batch: u32,
        dir: Direction,
    ) -> Result<()> {
        if batch == 0 {
            return Ok(());
        }
        let bytes = (batch as u64) * (self.n as u64) * 8;
        let rows = bytes / STAGE_ROW_BYTES;
        let staged = binding.staged.as_ref().filter(|s| {
            self.staged.is_some() && bytes.is_multiple_of(STAGE_ROW_BYTES) && rows <= s.rows as u64
        });
        let Some(st) = staged else {
            step.end_pass();
            self.encode_bound(step, binding, batch, dir)?;
            step.end_pass();
            return Ok(());
        };
        self.check(step.arena(), binding, batch)?;
        let size = wgpu::Extent3d {
            width: gpu::TEXTURE_WIDTH,
            height: rows as u32,
            depth_or_array_layers: 1,
        };
        let layout = wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(STAGE_ROW_BYTES as u32),
            rows_per_image: Some(rows as u32),
        };
        let kernels = self.staged.iter().flatten();
        for ((p, kernel), bg) in self.passes.iter().zip(kernels).zip(&st.groups) {
            let source = wgpu::TexelCopyBufferInfo {
                buffer: &st.data,
                layout,
            };
            // The copy ends the previous pass; the dispatch begins a new one.
            step.encoder()
                .copy_buffer_to_texture(source, st.texture.as_image_copy(), size);
            let (w, groups) = p.params(batch, dir)?;
            step.dispatch(kernel, bg, &w, groups)?;
        }
        step.end_pass();
        Ok(())
    }

    /// What [`FftPlan::encode_bound`] and [`FftPlan::encode_into`] check before
    /// recording: buffer sizes, the element count and the arena's free slots.
    fn check(&self, arena: &ParamArena, binding: &FftBinding, batch: u32) -> Result<()> {
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
        Ok(())
    }
}

/// Bytes of one row of the staging texture (`rgba32float`, [`gpu::TEXTURE_WIDTH`]
/// texels): two complex values a texel.
pub(super) const STAGE_ROW_BYTES: u64 = gpu::TEXTURE_WIDTH as u64 * 16;

/// Texels of padding at the end of every row of the staging texture: without them the
/// rows lie a power of two of bytes apart, and the loads of a pass that fall on
/// successive rows (N = 2^16: its 16 loads are one row apart) compete for the same
/// cache sets.
pub(super) const STAGE_PAD: u32 = 8;

/// The staging texture of a staged binding and the staged passes' bind groups.
#[derive(Debug)]
pub(super) struct Staged {
    /// The data buffer, copied into `texture` before every pass.
    data: wgpu::Buffer,
    texture: wgpu::Texture,
    /// Rows of `texture`.
    rows: u32,
    groups: Vec<wgpu::BindGroup>,
}

/// An [`FftPlan`]'s bind groups over one data and scratch buffer ([`FftPlan::bind`]).
#[derive(Debug)]
pub struct FftBinding {
    groups: Vec<wgpu::BindGroup>,
    data_size: u64,
    scratch_size: u64,
    /// Staged plans on CPU adapters: what [`FftPlan::encode_into`] stages through.
    staged: Option<Staged>,
}

impl FftBinding {
    /// Whether [`FftPlan::encode_into`] can stage through a texture with this binding
    /// (a staged plan on a CPU adapter; batches must still fill whole texture rows).
    pub fn is_staged(&self) -> bool {
        self.staged.is_some()
    }
}

/// Uploads `data` (`data.len() / n` transforms of size `n`), transforms it on the GPU
/// (with a staged plan, [`FftPlanner::plan_staged`]) and reads the result back, blocking
/// (for the tests).
#[cfg(any(test, feature = "internals"))]
pub fn fft_blocking(
    ctx: &GpuContext,
    planner: &mut FftPlanner,
    data: &[[f32; 2]],
    n: usize,
    dir: Direction,
) -> Result<Vec<[f32; 2]>> {
    let plan = planner.plan_staged(n)?;
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
    let binding = plan.bind(ctx, &buf, &scratch)?;
    let mut step = Step::new(ctx, &mut arena);
    plan.encode_into(&mut step, &binding, batch, dir)?;
    step.submit();
    let flat = ctx.read_f32(&buf, 0, (data.len() * 2) as u64)?;
    Ok(flat.chunks_exact(2).map(|c| [c[0], c[1]]).collect())
}
