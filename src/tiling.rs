//! The relaxed tiling schedule of Flash Inference (DESIGN.md section 2). Pure index
//! arithmetic, no GPU code, so it can be tested exhaustively.
//!
//! Positions are 0-indexed. Once `v_t` is known (step `t`), the diagonal term completes
//! `z_t`, and a tile of side `U = lowbit(t + 1)` adds
//! `sum_{s = t-U+1 ..= t} k[j - s] * v_s` to every `z_j`, `j = t+1 ..= min(t+U, L-1)`.
//! The tiles of all steps cover every pair `(s, j)` with `s < j < L` exactly once, and a
//! tile only reads inputs that exist at its step.

/// One tile of the schedule: the inputs `v[in_start .. in_start + size]` contribute to
/// the outputs `z[out_start .. out_end]` through the filter taps `k[1 .. 2 * size]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    /// The step after which the tile runs (its last input is `v_step`).
    pub step: usize,
    /// Side `U` of the tile: the lowest set bit of `step + 1`.
    pub size: usize,
    /// First input position, `step + 1 - size`.
    pub in_start: usize,
    /// First output position, `step + 1`.
    pub out_start: usize,
    /// One past the last output position, `min(step + 1 + size, len)`.
    pub out_end: usize,
}

impl Tile {
    /// Number of outputs (`size`, fewer where the sequence ends).
    pub fn outputs(&self) -> usize {
        self.out_end - self.out_start
    }

    /// The filter taps the tile reads: `k[lo ..= hi]` with `lo = out_start - (in_start +
    /// size - 1)` and `hi = out_end - 1 - in_start`, a sub-range of `1 ..= 2 * size - 1`.
    pub fn filter_range(&self) -> (usize, usize) {
        let last_in = self.in_start + self.size - 1;
        (self.out_start - last_in, self.out_end - 1 - self.in_start)
    }
}

/// Side of the tile at step `t`: the lowest set bit of `t + 1`.
pub fn tile_size(t: usize) -> usize {
    let n = t + 1;
    n & n.wrapping_neg()
}

/// The tile that runs after step `t` of a sequence of length `len`, or `None` at the
/// last position (nothing is left to update).
///
/// ```
/// use flashconv::tiling::tile_at;
/// let tile = tile_at(3, 100).expect("a tile");
/// assert_eq!((tile.size, tile.in_start, tile.out_start, tile.out_end), (4, 0, 4, 8));
/// assert!(tile_at(99, 100).is_none());
/// ```
pub fn tile_at(t: usize, len: usize) -> Option<Tile> {
    if t + 1 >= len {
        return None;
    }
    let size = tile_size(t);
    Some(Tile {
        step: t,
        size,
        in_start: t + 1 - size,
        out_start: t + 1,
        out_end: (t + 1 + size).min(len),
    })
}

/// All tiles of a sequence of length `len`, in step order.
pub fn schedule(len: usize) -> impl Iterator<Item = Tile> {
    (0..len).filter_map(move |t| tile_at(t, len))
}

/// Largest tile side that occurs in a sequence of length `len` (0 if none).
pub fn max_tile_size(len: usize) -> usize {
    schedule_sizes(len).last().copied().unwrap_or(0)
}

/// The distinct tile sides occurring for length `len`, ascending (powers of two).
pub fn schedule_sizes(len: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut u = 1;
    // A tile of side u first occurs at t = u - 1, which needs t + 1 < len.
    while u < len {
        sizes.push(u);
        u *= 2;
    }
    sizes
}

/// For prefill of `p` prompt positions: the tiles of steps `t < p` (all of them end
/// below `2p`), i.e. exactly the pairs the accumulators must hold when generation
/// resumes at step `p`.
pub fn prefill_tiles(p: usize, len: usize) -> impl Iterator<Item = Tile> {
    (0..p.min(len)).filter_map(move |t| tile_at(t, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that the tiles of length `len` cover each pair (s, j), s < j < len,
    /// exactly once, only read inputs available at their step, and only read filter
    /// taps within 1 ..= 2U-1.
    fn check(len: usize) {
        let mut count = vec![0u8; len * len];
        for tile in schedule(len) {
            assert!(tile.size.is_power_of_two());
            assert_eq!(tile.in_start + tile.size, tile.step + 1, "{tile:?}");
            assert!(
                tile.out_start > tile.step,
                "{tile:?} writes a finished output"
            );
            let (lo, hi) = tile.filter_range();
            assert!(lo >= 1 && hi < 2 * tile.size, "{tile:?} taps {lo}..={hi}");
            for s in tile.in_start..=tile.step {
                for j in tile.out_start..tile.out_end {
                    count[s * len + j] += 1;
                }
            }
        }
        for s in 0..len {
            for j in 0..len {
                let want = u8::from(s < j);
                assert_eq!(count[s * len + j], want, "pair ({s},{j}) of len {len}");
            }
        }
    }

    #[test]
    fn covers_every_pair_once_small() {
        for len in 0..=256 {
            check(len);
        }
    }

    #[test]
    fn covers_every_pair_once_large() {
        for len in [1000, 1023, 1024, 1025, 4095, 4096] {
            check(len);
        }
    }

    #[test]
    fn sizes_follow_lowest_set_bit() {
        let got: Vec<usize> = (0..8).map(tile_size).collect();
        assert_eq!(got, vec![1, 2, 1, 4, 1, 2, 1, 8]);
        assert_eq!(max_tile_size(8192), 4096);
        assert_eq!(max_tile_size(8193), 8192);
        assert_eq!(max_tile_size(1), 0);
        assert!(tile_at(7, 8).is_none());
    }

    #[test]
    fn prefill_pairs_stay_below_twice_the_prompt() {
        for p in [1usize, 2, 63, 64, 65, 100, 1000] {
            for tile in prefill_tiles(p, 4 * p + 8) {
                assert!(tile.out_end <= 2 * p, "p={p} {tile:?}");
            }
        }
    }
}
