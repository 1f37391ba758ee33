//! Flash's tiles: the tile of each step over every layer's channels, direct or through
//! the FFT levels (side U, with the filter spectra precomputed in f64 or computed on the
//! fly), spread tiles' parts, and the prefill's whole-prompt convolution and seeding.

use super::kernels::MixerKernels;
use super::plan::{fft_tile_sizes, precomputed_levels};
use super::{conv_tap, GroupWork, Method, Mixer, MixerIo, MixerParams, GATE_TILE_MAX};
use crate::error::{Error, Result};
use crate::fft::{Direction, FftBinding, FftPlan, FftPlanner, MAX_WG_FFT};
use crate::gpu::{param_block, DeferredKernel, GpuContext, Step, Bind};
use crate::tiling;
use std::collections::BTreeMap;

/// One FFT tile level (side U) of one group: bind group over its spectra and, above the
/// one-workgroup size, the plan bound to its work buffer (with a scratch buffer).
#[derive(Debug)]
pub(super) struct FftLevel {
    pub(super) bind: wgpu::BindGroup,
    pub(super) large: Option<(FftPlan, FftBinding)>,
    /// For spectra computed on the fly: the bind group of their kernels (filter arena
    /// in, spectra buffer out) and the number of taps present (min(2U, len)).
    pub(super) spectra: Option<(wgpu::BindGroup, usize)>,
}

/// Flash's state over one channel group: the bindings of the direct tiles and of the
/// urgent outputs of spread tiles, and the FFT tile levels by side.
#[derive(Debug)]
pub(super) struct FlashGroup {
    pub(super) direct: wgpu::BindGroup,
    pub(super) urgent: wgpu::BindGroup,
    pub(super) levels: BTreeMap<usize, FftLevel>,
}

impl FlashGroup {
    /// The kernels its tiles and a prefill's convolution in a session of `len`
    /// positions can dispatch.
    pub(super) fn kernels<'k>(&self, k: &'k MixerKernels, len: usize) -> Vec<&'k DeferredKernel> {
        let mut need = vec![&k.tile_direct, &k.tile_urgent, &k.tile_fft];
        // The large path, for tiles or a prefill's convolution (of side
        // nextpow2(P) <= nextpow2(len)) whose 2U exceeds workgroup memory.
        if 2 * len.next_power_of_two() > MAX_WG_FFT {
            need.extend([&k.tile_gather, &k.tile_pointwise, &k.tile_scatter]);
        }
        if self.levels.values().any(|l| l.spectra.is_some()) {
            need.extend([&k.spectra_fft, &k.spectra_store]);
        }
        need
    }
}

/// Where a level's filter spectra come from.
pub(super) enum Spectra<'a> {
    /// Computed on the CPU in f64 ([`level_spectra`]) and uploaded once.
    Host(Vec<[f32; 2]>),
    /// Computed on the GPU before every use, from the time-major filter arena `k` with
    /// `taps` taps present, into `scratch` (shared by a group's on-the-fly levels).
    OnTheFly {
        k: &'a wgpu::Buffer,
        taps: usize,
        scratch: &'a wgpu::Buffer,
    },
}

param_block! {
    /// The parameter block of the tile kernels (`TileParams` in `tile.wgsl`).
    pub(crate) struct TileParams as "TileParams" {
        /// Columns transformed (C).
        chans: u32,
        /// The tile side U.
        size: u32,
        in_start: u32,
        out_start: u32,
        outputs: u32,
        /// log2(2U).
        log2n: u32,
        /// ceil(C / 2): channel pairs.
        pairs: u32,
        /// tile_fft: log2 of the channel pairs per workgroup.
        log2count: u32,
        /// Row stride of the arenas (columns of the group).
        stride: u32,
        /// First column (also the first spectrum).
        col0: u32,
        /// Inputs read (U for tiles; the prompt length in prefill).
        valid: u32,
        /// Convolution entry of the first output (U for tiles, 0 in prefill).
        out_base: u32,
        pad2: [u32; 4],
    }
}

/// One convolution through FFTs of side `size` (transform 2U) over the columns
/// `columns = (col0, count)` of a group's arenas: inputs `v[in_start ..][.. valid]`
/// (zeros up to U), outputs `z[out_start ..][.. outputs]` += entries `out_base ..` of the
/// linear convolution with the level's spectra (tile.wgsl).
#[derive(Clone, Copy, Debug)]
pub(super) struct FftJob {
    pub(super) size: usize,
    pub(super) in_start: usize,
    pub(super) valid: usize,
    pub(super) out_start: usize,
    pub(super) outputs: usize,
    pub(super) out_base: usize,
    pub(super) columns: (usize, usize),
    pub(super) stride: usize,
}

impl FftJob {
    /// The parameter block of tile.wgsl.
    /// The job's parameter block.
    pub(super) fn params(&self) -> TileParams {
        let (col0, count) = self.columns;
        let u = self.size as u32;
        TileParams {
            chans: count as u32,
            size: u,
            in_start: self.in_start as u32,
            out_start: self.out_start as u32,
            outputs: self.outputs as u32,
            log2n: (2 * u).trailing_zeros(),
            pairs: count.div_ceil(2) as u32,
            // Channel pairs per workgroup for the in-workgroup tiles: fill fft_sh.
            log2count: (MAX_WG_FFT as u32 / (2 * u).min(MAX_WG_FFT as u32)).trailing_zeros(),
            stride: self.stride as u32,
            col0: col0 as u32,
            valid: self.valid as u32,
            out_base: self.out_base as u32,
            pad2: [0; 4],
        }
    }

    /// Records the job: fused in one workgroup per channel pair (or several) when 2U
    /// fits, else gather, multi-pass FFT, pointwise, inverse FFT, scatter. A level
    /// without stored spectra first computes those of the job's columns.
    pub(super) fn record(
        &self,
        step: &mut Step<'_>,
        k: &MixerKernels,
        level: &FftLevel,
    ) -> Result<()> {
        if let Some((bind, taps)) = &level.spectra {
            self.record_spectra(step, k, level, (bind, *taps))?;
        }
        let w = self.params();
        let pairs = w.pairs;
        let Some((plan, binding)) = &level.large else {
            let groups = pairs.div_ceil(1 << w.log2count);
            return step.dispatch(k.tile_fft.get()?, &level.bind, &w, groups);
        };
        let groups = |threads: u64| threads.div_ceil(256) as u32;
        let (u, pairs64) = (self.size as u64, pairs as u64);
        let gather = groups(pairs64 * 2 * u);
        step.dispatch(k.tile_gather.get()?, &level.bind, &w, gather)?;
        plan.encode_bound(step, binding, pairs, Direction::Forward)?;
        let pointwise = groups(pairs64 * (u + 1));
        step.dispatch(k.tile_pointwise.get()?, &level.bind, &w, pointwise)?;
        plan.encode_bound(step, binding, pairs, Direction::Inverse)?;
        let scatter = groups(pairs64 * self.outputs as u64);
        step.dispatch(k.tile_scatter.get()?, &level.bind, &w, scatter)
    }

    /// The filter spectra of the job's columns (tile.wgsl's spectra_fft, or gather,
    /// multi-pass FFT and spectra_store): the taps k[0 .. taps) loaded like inputs.
    pub(super) fn record_spectra(
        &self,
        step: &mut Step<'_>,
        k: &MixerKernels,
        level: &FftLevel,
        (bind, taps): (&wgpu::BindGroup, usize),
    ) -> Result<()> {
        let w = FftJob {
            in_start: 0,
            valid: taps,
            ..*self
        }
        .params();
        let pairs = w.pairs;
        let Some((plan, binding)) = &level.large else {
            let groups = pairs.div_ceil(1 << w.log2count);
            return step.dispatch(k.spectra_fft.get()?, bind, &w, groups);
        };
        let groups = |threads: u64| threads.div_ceil(256) as u32;
        let (u, pairs64) = (self.size as u64, pairs as u64);
        step.dispatch(k.tile_gather.get()?, bind, &w, groups(pairs64 * 2 * u))?;
        plan.encode_bound(step, binding, pairs, Direction::Forward)?;
        step.dispatch(k.spectra_store.get()?, bind, &w, groups(pairs64 * u))
    }
}

/// The prefill's long convolution, built for one prompt length
/// ([`Mixer::prefill_conv`]): per channel group, a level of side U = the prompt length
/// rounded up to a power of two, with the spectra of k[1 .. U).
#[derive(Debug)]
pub struct PrefillConv {
    pub(super) prompt: usize,
    pub(super) size: usize,
    pub(super) levels: Vec<FftLevel>,
}

/// Builds the FFT tile levels of one group of a flash session: the sides
/// U >= `fft_min_tile` that occur in a sequence of length `len`, with their spectra.
pub(super) fn fft_levels(
    ctx: &GpuContext,
    kernels: &MixerKernels,
    io: &MixerIo<'_>,
    (d, len): (usize, usize),
    (start, width): (usize, usize),
    [v_hist, z_acc, k, unused]: [&wgpu::Buffer; 4],
) -> Result<BTreeMap<usize, FftLevel>> {
    let mut levels = BTreeMap::new();
    let sizes = fft_tile_sizes(len, io.fft_min_tile);
    let Some(&largest) = sizes.last() else {
        return Ok(levels);
    };
    let mut planner = kernels
        .planner
        .lock()
        .map_err(|_| Error::gpu("FFT planner lock poisoned"))?;
    // The largest plan's twiddle table covers every smaller size.
    let twiddles = planner.plan(2 * largest)?.twiddles().clone();
    let stored = precomputed_levels(&sizes, io.filters.len() * d, io.spectra_budget);
    // One buffer for the spectra of every level computed on the fly, sized for the
    // largest (each tile part computes the spectra of its columns right before use).
    let scratch = if stored < sizes.len() {
        Some(ctx.buffer_zeroed("spectra (on the fly)", 8 * width as u64 * largest as u64)?)
    } else {
        None
    };
    for (i, u) in sizes.into_iter().enumerate() {
        let spectra = match &scratch {
            Some(scratch) if i >= stored => Spectra::OnTheFly {
                k,
                taps: (2 * u).min(len),
                scratch,
            },
            _ => Spectra::Host(level_spectra(
                io.filters,
                (d, len),
                (start, width),
                u,
                Taps::Tile,
            )),
        };
        let bufs = [&twiddles, v_hist, z_acc, unused];
        let level = FftLevel::new(ctx, kernels, &mut planner, bufs, spectra, (u, width))?;
        levels.insert(u, level);
    }
    Ok(levels)
}

impl FftLevel {
    /// The level of side `u` over `width` columns: its spectra uploaded, bound with the
    /// arenas, and above the one-workgroup size a plan bound to its own work buffers.
    pub(super) fn new(
        ctx: &GpuContext,
        kernels: &MixerKernels,
        planner: &mut FftPlanner,
        [twiddles, v_hist, z_acc, unused]: [&wgpu::Buffer; 4],
        spectra: Spectra<'_>,
        (u, width): (usize, usize),
    ) -> Result<Self> {
        let (buffer, on_the_fly) = match spectra {
            Spectra::Host(host) => (ctx.buffer_init("spectra", &host)?, None),
            Spectra::OnTheFly { k, taps, scratch } => (scratch.clone(), Some((k, taps))),
        };
        let (work, large) = if 2 * u <= MAX_WG_FFT {
            (unused.clone(), None)
        } else {
            let bytes = width.div_ceil(2) as u64 * 2 * u as u64 * 8;
            let work = ctx.buffer_zeroed("tile work", bytes)?;
            let scratch = ctx.buffer_zeroed("tile scratch", bytes)?;
            let plan = planner.plan(2 * u)?;
            let binding = plan.bind(ctx, &work, &scratch)?;
            (work, Some((plan, binding)))
        };
        // Every tile kernel has the same layout (TILE_ACCESS), so one bind group serves
        // the whole pipeline.
        let bufs = [twiddles, v_hist, &buffer, z_acc, &work];
        let spectra = on_the_fly.map(|(k, taps)| {
            // t_spec is not read here: the twiddles fill it (read-only, like binding 0).
            let bufs = [twiddles, k, twiddles, &buffer, &work];
            (kernels.tile_fft.bind(ctx, &bufs), taps)
        });
        Ok(FftLevel {
            bind: kernels.tile_fft.bind(ctx, &bufs),
            large,
            spectra,
        })
    }
}

/// Which filter taps a level's spectra transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Taps {
    /// k[0 .. 2U): a tile of the schedule.
    Tile,
    /// k[1 .. U), k[0] and the rest zero: the prefill's causal convolution of up to U
    /// inputs, whose first U outputs then have no wrap-around.
    Prefill,
}

/// Filter spectra of level `u` for the channels `start .. start + width` (over all
/// layers; filters channel-major `[D][len]` per layer): FFT of the taps `taps` selects
/// (zero past the session's length, and at the lags flash's gate adds: [`conv_tap`])
/// in f64, scaled by 1 / 2U, frequencies 0 .. U with slot 0 packing (K[0], K[U]) (both
/// real), as f32 pairs.
pub(super) fn level_spectra(
    filters: &[Vec<f32>],
    (d, len): (usize, usize),
    (start, width): (usize, usize),
    u: usize,
    taps: Taps,
) -> Vec<[f32; 2]> {
    use rustfft::num_complex::Complex;
    let n = 2 * u;
    let fft = rustfft::FftPlanner::<f64>::new().plan_fft_forward(n);
    let mut out = Vec::with_capacity(width * u);
    let mut buf = vec![Complex::new(0.0, 0.0); n];
    for g in start..start + width {
        for (i, slot) in buf.iter_mut().enumerate() {
            let used = match taps {
                Taps::Tile => i < len,
                Taps::Prefill => (1..u.min(len)).contains(&i),
            };
            let k = if used {
                conv_tap(Method::Flash, filters, (d, len), g, i)
            } else {
                0.0
            };
            *slot = Complex::new(k as f64, 0.0);
        }
        fft.process(&mut buf);
        let scale = 1.0 / n as f64;
        out.push([(buf[0].re * scale) as f32, (buf[u].re * scale) as f32]);
        for b in &buf[1..u] {
            out.push([(b.re * scale) as f32, (b.im * scale) as f32]);
        }
    }
    out
}

impl Mixer {
    /// Records the flash work due after step `t` ([`tiling::work_at`]): the tile of
    /// step `t` over every layer's channels (one dispatch, or one FFT pipeline, per
    /// channel group), or with spread tiles its urgent outputs, plus the chunks of
    /// earlier spread tiles due now; a no-op for the other methods.
    pub fn record_tiles(&self, step: &mut Step<'_>, k: &MixerKernels, t: usize) -> Result<()> {
        if self.method != Method::Flash {
            return Ok(());
        }
        for (tile, part) in tiling::work_at(t, self.len, self.spread) {
            self.record_part(step, k, &tile, part)?;
        }
        Ok(())
    }

    /// One part of a tile in every channel group: through the level's FFTs when the
    /// tile has one (whole, or a channel chunk of the outputs after the urgent ones),
    /// else (and for the urgent outputs) the direct product.
    fn record_part(
        &self,
        step: &mut Step<'_>,
        k: &MixerKernels,
        tile: &tiling::Tile,
        part: tiling::Part,
    ) -> Result<()> {
        use tiling::Part;
        if tile.size <= GATE_TILE_MAX {
            // All its pairs have lags the gate adds (conv_tap).
            return Ok(());
        }
        for (gi, group) in self.groups.iter().enumerate() {
            let GroupWork::Flash(flash) = &group.work else {
                continue;
            };
            let level = flash.levels.get(&tile.size);
            let fft = |skip: usize, (c0, c1): (usize, usize)| FftJob {
                size: tile.size,
                in_start: tile.in_start,
                valid: tile.size,
                out_start: tile.out_start + skip,
                outputs: tile.outputs() - skip,
                out_base: tile.size + skip,
                columns: (c0, c1 - c0),
                stride: group.width,
            };
            let direct_outputs = match (part, level) {
                (Part::Whole, Some(level)) => {
                    fft(0, (0, group.width)).record(step, k, level)?;
                    continue;
                }
                (Part::Chunk { index, of, skip }, Some(level)) => {
                    let cols = tiling::chunk_channels(group.width, index, of);
                    if cols.1 > cols.0 {
                        fft(skip, cols).record(step, k, level)?;
                    }
                    continue;
                }
                (Part::Chunk { .. }, None) => {
                    // Spread applies only from fft_min_tile on (Mixer::new).
                    return Err(Error::gpu(format!("spread tile {tile:?} has no FFT level")));
                }
                (Part::Whole, None) => tile.outputs(),
                (Part::Urgent { outputs }, _) => outputs,
            };
            let w = MixerParams {
                size: tile.size as u32,
                in_start: tile.in_start as u32,
                out_start: tile.out_start as u32,
                outputs: direct_outputs as u32,
                ..self.params(0, tile.step, gi, None)
            };
            if let Part::Urgent { .. } = part {
                // One thread per channel for all the urgent outputs.
                let groups = (group.width as u32).div_ceil(64);
                step.dispatch(k.tile_urgent.get()?, &flash.urgent, &w, groups)?;
                continue;
            }
            let threads = group.width as u64 * direct_outputs as u64;
            let groups = threads.div_ceil(256) as u32;
            step.dispatch(k.tile_direct.get()?, &flash.direct, &w, groups)?;
        }
        Ok(())
    }

    /// Builds the prefill convolution for a prompt of `prompt` positions (flash only;
    /// None for the other methods, whose prompt goes token by token or, for `none`,
    /// needs no history term). `filters`: each layer's filter `[D][prompt]`.
    pub fn prefill_conv(
        &self,
        kernels: &MixerKernels,
        filters: &[Vec<f32>],
        prompt: usize,
    ) -> Result<Option<PrefillConv>> {
        if self.method != Method::Flash || prompt == 0 {
            return Ok(None);
        }
        let size = prompt.next_power_of_two();
        let mut planner = kernels
            .planner
            .lock()
            .map_err(|_| Error::gpu("FFT planner lock poisoned"))?;
        let twiddles = planner.plan(2 * size)?.twiddles().clone();
        let unused = self.ctx.buffer_zeroed("unused", 16)?;
        let mut levels = Vec::with_capacity(self.groups.len());
        for g in &self.groups {
            let cols = (g.start, g.width);
            let spectra = level_spectra(filters, (self.d, prompt), cols, size, Taps::Prefill);
            let bufs = [&twiddles, &g.v_hist, &g.z_acc, &unused];
            let sizes = (size, g.width);
            levels.push(FftLevel::new(
                &self.ctx,
                kernels,
                &mut planner,
                bufs,
                Spectra::Host(spectra),
                sizes,
            )?);
        }
        Ok(Some(PrefillConv {
            prompt,
            size,
            levels,
        }))
    }

    /// Records the prefill convolution of the adjacent `layers` (their v history over
    /// the whole prompt must be written): `z_acc[j] += sum_{s<j} k[j - s] v_s` for every
    /// prompt position j. One job per channel group the layers' channels touch.
    pub fn record_prefill_conv(
        &self,
        step: &mut Step<'_>,
        k: &MixerKernels,
        conv: &PrefillConv,
        layers: std::ops::Range<usize>,
    ) -> Result<()> {
        for (group, g) in self.groups.iter().enumerate() {
            // Adjacent layers' slices in one group are adjacent columns.
            let mut cols = self.slices[layers.clone()]
                .iter()
                .flatten()
                .filter(|s| s.group == group)
                .map(|s| (s.col0, s.col0 + s.count));
            let Some(first) = cols.next() else { continue };
            let (start, end) = cols.fold(first, |(a, b), (c, d)| (a.min(c), b.max(d)));
            let job = FftJob {
                size: conv.size,
                in_start: 0,
                valid: conv.prompt,
                out_start: 0,
                outputs: conv.prompt,
                out_base: 0,
                columns: (start, end - start),
                stride: g.width,
            };
            job.record(step, k, &conv.levels[group])?;
        }
        Ok(())
    }

    /// After a prefill of `prompt` positions: the tiles of the steps t < prompt that
    /// reach past the prompt, which add to z_acc exactly the pairs (s, j), s < prompt
    /// <= j, that token-by-token processing of the prompt would have added. (They also
    /// add to positions inside the prompt, which nothing reads any more.) Later tiles
    /// add the other pairs, so nothing is counted twice.
    pub fn record_prefill_tiles(
        &self,
        step: &mut Step<'_>,
        k: &MixerKernels,
        prompt: usize,
    ) -> Result<()> {
        if self.method != Method::Flash {
            return Ok(());
        }
        for (tile, part) in tiling::seeding_work(prompt, self.len, self.spread) {
            self.record_part(step, k, &tile, part)?;
        }
        Ok(())
    }

    /// Upper bound on the dispatches of a prefill of `prompt` positions that the mixer
    /// records (the convolutions of every layer and the seeding tiles).
    pub fn prefill_dispatches(&self, prompt: usize) -> usize {
        let slices: usize = self.slices.iter().map(Vec::len).sum();
        let parts = tiling::seeding_work(prompt, self.len, self.spread).len();
        (slices + parts * self.groups.len()) * 16
    }
}
