//! Planning a mixer (pure: no GPU work): how its arenas split into channel groups that
//! fit the device's binding limit, which slices of a layer each group holds, which FFT
//! tile sides occur and how many spectra are precomputed, and the memory all of it takes.

use super::{Method, Tiles, GATE_TILE_MAX};
use crate::error::{Error, Result};
use crate::fft::MAX_WG_FFT;
use crate::gpu::{self, GpuContext};
use crate::tiling;

/// How a mixer's arenas are split by channel: `widths[i]` channels in group i, in order,
/// each group's buffers within the device's per-binding limit. One group when they fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelGroups {
    /// Channels per group (they add up to the channel count).
    pub widths: Vec<usize>,
    /// Bytes of the largest buffer of a group of the first width.
    pub largest_buffer: u64,
}

/// Bytes of the largest per-group buffer for a group of `width` channels: the arenas
/// (4 bytes per channel and position), and with FFT tiles the largest level's spectra and
/// multi-pass work buffers (channel pairs x 2U complex numbers).
pub fn group_buffer_bytes(width: usize, len: usize, largest_fft_tile: usize) -> u64 {
    let arena = 4 * width as u64 * len as u64;
    let spectra = 8 * width as u64 * largest_fft_tile as u64;
    let work = if 2 * largest_fft_tile > MAX_WG_FFT {
        16 * width.div_ceil(2) as u64 * largest_fft_tile as u64
    } else {
        0
    };
    arena.max(spectra).max(work)
}

/// Splits `channels` into groups whose buffers each fit `limit` bytes (widths a multiple
/// of 4 when there is more than one group and 4 channels fit, so that the four-channel
/// kernels and the channel pairs of the FFT tiles stay aligned). Fails only when a single
/// channel does not fit.
pub fn plan_groups(
    channels: usize,
    len: usize,
    largest_fft_tile: usize,
    limit: u64,
) -> Result<ChannelGroups> {
    let bytes = |w| group_buffer_bytes(w, len, largest_fft_tile);
    if bytes(channels) <= limit {
        return Ok(ChannelGroups {
            widths: vec![channels],
            largest_buffer: bytes(channels),
        });
    }
    // bytes() grows linearly (up to pair rounding) with the width: start from the
    // proportional guess and step down until it fits.
    let per = bytes(2).div_ceil(2).max(1);
    let mut w = ((limit / per) as usize).min(channels);
    w = match w {
        0..=1 => w,
        2 | 3 => 2,
        _ => w / 4 * 4,
    };
    while w > 0 && bytes(w) > limit {
        w -= if w > 4 { 4 } else { 1 };
    }
    if w == 0 {
        return Err(Error::Limit(format!(
            "one channel's buffers for {len} positions need {} bytes, but this device \
             binds at most {limit} bytes per storage buffer; use a shorter session \
             (--max-tokens) or a device with a larger max_storage_buffer_binding_size",
            bytes(1)
        )));
    }
    let mut widths = vec![w; channels / w];
    if !channels.is_multiple_of(w) {
        widths.push(channels % w);
    }
    Ok(ChannelGroups {
        widths,
        largest_buffer: bytes(w),
    })
}

/// The channel groups of a mixer of `method` over `layers` layers of `d` channels: the
/// widest groups that fit `limit` ([`plan_groups`]), except for lazy, whose groups never
/// span two layers. Lazy reads one layer's whole history per dispatch; with rows of D
/// (not M·D) columns that history is one contiguous block the CPU (lavapipe) or the GPU
/// streams through, instead of a quarter of every row.
pub fn plan_mixer_groups(
    method: Method,
    (layers, d): (usize, usize),
    len: usize,
    fft_min_tile: usize,
    limit: u64,
) -> Result<ChannelGroups> {
    let largest = largest_fft_tile(method, len, fft_min_tile);
    if method != Method::Lazy || layers < 2 {
        return plan_groups(layers * d, len, largest, limit);
    }
    let layer = plan_groups(d, len, largest, limit)?;
    Ok(ChannelGroups {
        widths: layer.widths.repeat(layers),
        largest_buffer: layer.largest_buffer,
    })
}

/// Whether lazy keeps the v history and filter taps of a group of `width` channels (of
/// layers of `d`) in textures: asked for (`textures`, as on CPU adapters), all quads
/// aligned for `lazy4`, and the textures within the device's size limit.
pub(super) fn lazy_textures(
    ctx: &GpuContext,
    method: Method,
    textures: bool,
    (width, d): (usize, usize),
    len: usize,
) -> bool {
    method == Method::Lazy
        && textures
        && width % 4 == 0
        && d % 4 == 0
        && ctx.linear_texture_fits(width * len / 4)
}

/// Bytes of lazy's v textures over channel groups of `widths` (on top of the arenas;
/// [`MixerMemory::history`] counts them).
pub fn lazy_texture_bytes(
    ctx: &GpuContext,
    method: Method,
    textures: bool,
    (d, len): (usize, usize),
    widths: &[usize],
) -> u64 {
    let texel_rows = |w: usize| gpu::texture_rows(w * len / 4) as u64;
    widths
        .iter()
        .filter(|&&w| lazy_textures(ctx, method, textures, (w, d), len))
        .map(|&w| texel_rows(w) * gpu::TEXTURE_WIDTH as u64 * 16)
        .sum()
}

/// The largest buffer size flashconv binds on this device (also keeps every index of a
/// binding within 32 bits).
pub fn binding_limit(ctx: &GpuContext) -> u64 {
    ctx.limits
        .max_buffer_size
        .min(ctx.limits.max_storage_buffer_binding_size)
        .min(1 << 31)
}

/// The flash tile sides done with FFTs in a session of `len`, ascending: those of the
/// schedule from `fft_min_tile` on, past the sides the gate covers ([`GATE_TILE_MAX`]).
pub(super) fn fft_tile_sizes(len: usize, fft_min_tile: usize) -> Vec<usize> {
    tiling::schedule_sizes(len)
        .into_iter()
        .filter(|&u| u >= fft_min_tile && u > GATE_TILE_MAX)
        .collect()
}

/// Largest flash tile side done with FFTs for a session of `len` (0 if none).
pub fn largest_fft_tile(method: Method, len: usize, fft_min_tile: usize) -> usize {
    match method {
        Method::Flash => fft_tile_sizes(len, fft_min_tile)
            .last()
            .copied()
            .unwrap_or(0),
        _ => 0,
    }
}

/// GPU memory of a mixer, by kind of buffer (bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MixerMemory {
    /// v history arenas (and lazy's v textures on CPU adapters).
    pub history: u64,
    /// z accumulator arenas (flash, eager).
    pub accumulators: u64,
    /// Time-major filter arenas.
    pub filters: u64,
    /// FFT tile filter spectra (flash).
    pub spectra: u64,
    /// Work buffers of the multi-pass FFT tiles (flash).
    pub scratch: u64,
}

impl MixerMemory {
    /// Everything together.
    pub fn total(&self) -> u64 {
        self.history + self.accumulators + self.filters + self.spectra + self.scratch
    }

    /// What a mixer of `channels` channels over `len` positions allocates.
    pub fn estimate(method: Method, channels: usize, len: usize, tiles: &Tiles) -> Self {
        let fft_min_tile = tiles.fft_min_tile;
        let arena = 4 * channels as u64 * len as u64;
        let mut m = MixerMemory {
            history: arena,
            accumulators: if matches!(method, Method::Flash | Method::Eager) {
                arena
            } else {
                0
            },
            filters: arena,
            ..Default::default()
        };
        if method == Method::Flash {
            let sizes = fft_tile_sizes(len, fft_min_tile);
            let stored = precomputed_levels(&sizes, channels, tiles.spectra_budget);
            let level = |u: usize| 8 * channels as u64 * u as u64;
            m.spectra = sizes[..stored].iter().map(|&u| level(u)).sum();
            // The buffer the others share.
            if let Some(&largest) = sizes.get(stored).and(sizes.last()) {
                m.spectra += level(largest);
            }
            for &u in &sizes {
                {
                    if 2 * u > MAX_WG_FFT {
                        // Two buffers (data and scratch) of channel pairs x 2U complex.
                        m.scratch += 2 * 16 * channels.div_ceil(2) as u64 * u as u64;
                    }
                }
            }
        }
        m
    }
}

/// How many of the FFT tile sides `sizes` (ascending) keep precomputed spectra under
/// `budget` bytes for `channels` channels (8 bytes per channel and unit of side): the
/// smallest ones that fit together; the others are computed on the fly. All when
/// there is no budget.
pub fn precomputed_levels(sizes: &[usize], channels: usize, budget: Option<u64>) -> usize {
    let Some(budget) = budget else {
        return sizes.len();
    };
    let mut used = 0u64;
    sizes
        .iter()
        .take_while(|&&u| {
            used += 8 * channels as u64 * u as u64;
            used <= budget
        })
        .count()
}

/// The slices of layer `layer` (channels `layer * d ..` over all layers) in `groups`.
pub(super) fn layer_slices(
    layer: usize,
    d: usize,
    widths: &[usize],
) -> Vec<(usize, usize, usize, usize)> {
    let (lo, hi) = (layer * d, (layer + 1) * d);
    let mut out = Vec::new();
    let mut start = 0;
    for (gi, &w) in widths.iter().enumerate() {
        let (a, b) = (lo.max(start), hi.min(start + w));
        if a < b {
            out.push((gi, a - lo, b - a, a - start));
        }
        start += w;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_fit_and_cover() {
        for channels in [1usize, 2, 3, 7, 8, 9, 42, 84, 256, 1024, 1027] {
            for len in [1usize, 5, 100, 2100, 5000] {
                for largest in [0usize, 64, 1024, 2048, 4096] {
                    for limit in [16u64, 4000, 40_000, 1 << 20, 1 << 27] {
                        let Ok(g) = plan_groups(channels, len, largest, limit) else {
                            assert!(group_buffer_bytes(1, len, largest) > limit);
                            continue;
                        };
                        assert_eq!(g.widths.iter().sum::<usize>(), channels);
                        let w = g.widths[0];
                        assert!(group_buffer_bytes(w, len, largest) <= limit);
                        assert_eq!(g.largest_buffer, group_buffer_bytes(w, len, largest));
                        if g.widths.len() > 1 {
                            assert!(w < 4 || w % 4 == 0, "{w}");
                            assert!(g.widths[..g.widths.len() - 1].iter().all(|&x| x == w));
                            let wider = if w >= 4 { w + 4 } else { w + 1 };
                            assert!(group_buffer_bytes(wider, len, largest) > limit);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn lazy_groups_stay_within_layers() {
        for (layers, d) in [(1usize, 8usize), (3, 8), (4, 256), (5, 11)] {
            for limit in [4000u64, 40_000, 1 << 27] {
                let len = 100;
                let lazy = plan_mixer_groups(Method::Lazy, (layers, d), len, 16, limit).unwrap();
                assert_eq!(lazy.widths.iter().sum::<usize>(), layers * d);
                assert!(lazy.largest_buffer <= limit);
                let mut start = 0;
                for w in &lazy.widths {
                    assert_eq!(start / d, (start + w - 1) / d, "{:?}", lazy.widths);
                    start += w;
                }
                let flash = plan_mixer_groups(Method::Flash, (layers, d), len, 16, limit).unwrap();
                let widest = plan_groups(
                    layers * d,
                    len,
                    largest_fft_tile(Method::Flash, len, 16),
                    limit,
                );
                assert_eq!(flash, widest.unwrap());
            }
        }
    }

    #[test]
    fn slices_partition_each_layer() {
        let widths = [8, 8, 8, 8, 8, 4];
        let d = 11;
        let mut seen = [0u32; 44];
        for layer in 0..4 {
            for (g, c0, count, col0) in layer_slices(layer, d, &widths) {
                let start: usize = widths[..g].iter().sum();
                assert!(col0 + count <= widths[g]);
                for i in 0..count {
                    assert_eq!(start + col0 + i, layer * d + c0 + i);
                    seen[layer * d + c0 + i] += 1;
                }
            }
        }
        assert!(seen.iter().all(|&n| n == 1));
    }
}
