//! The relaxed tiling schedule of Flash Inference (arXiv 2410.12982; how the mixer runs
//! it: ARCHITECTURE.md, "One token through the GPU", step 4). Pure index arithmetic, no
//! GPU code, so it can be tested exhaustively.
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

/// For a prefill of `p` prompt positions (whose own pairs a full convolution computes):
/// the tiles of the steps `t < p` that reach position `p` or later. They add exactly the
/// pairs `(s, j)`, `s < p <= j`, that the accumulators must hold when generation resumes
/// at step `p`, all with `j < 2p`; every later tile reads inputs from `p` on or writes
/// only past what these cover, so nothing is counted twice.
pub fn seeding_tiles(p: usize, len: usize) -> impl Iterator<Item = Tile> {
    (0..p.min(len)).filter_map(move |t| tile_at(t, len).filter(|tile| tile.out_end > p))
}

/// The work a prefill of `p` positions records in place of steps `0 .. p`: of the work
/// due at those steps ([`work_at`]), the parts of the tiles that reach position `p` or
/// later ([`seeding_tiles`]). Parts of those tiles due at `p` or later are left to the
/// token steps, which record them as usual.
pub fn seeding_work(p: usize, len: usize, spread: Spread) -> Vec<(Tile, Part)> {
    (0..p.min(len))
        .flat_map(|t| work_at(t, len, spread))
        .filter(|(tile, _)| tile.out_end > p)
        .collect()
}

/// How large tiles are spread over the steps after them (asynchronous tiles): a tile of
/// side `U >= min_size` delivers only its first `steps` outputs at its own step, by a
/// direct product, and computes the rest (through FFTs) in `steps` channel chunks, one
/// per step, so no single step carries the whole tile. Off when `steps <= 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spread {
    /// Smallest tile side that is spread.
    pub min_size: usize,
    /// Steps a spread tile is divided over (K): urgent outputs and channel chunks.
    pub steps: usize,
}

impl Spread {
    /// No spreading: every tile runs whole at its step.
    pub const OFF: Spread = Spread {
        min_size: usize::MAX,
        steps: 1,
    };

    /// The default of sessions: tiles of side 256 and up spread over 8 steps.
    pub const DEFAULT: Spread = Spread {
        min_size: 256,
        steps: 8,
    };

    /// Most steps a tile is spread over (the urgent outputs' kernel keeps one
    /// accumulator per output).
    pub const MAX_STEPS: usize = 16;

    /// Tiles of side `min_size` and up over `steps` steps (0 or 1: [`Spread::OFF`];
    /// at most [`Spread::MAX_STEPS`]).
    pub fn over(steps: usize, min_size: usize) -> Spread {
        if steps <= 1 {
            return Spread::OFF;
        }
        Spread {
            min_size,
            steps: steps.min(Self::MAX_STEPS),
        }
    }

    /// Whether `tile` is spread (it also needs more outputs than `steps`).
    pub fn applies(&self, tile: &Tile) -> bool {
        (2..=Self::MAX_STEPS).contains(&self.steps)
            && tile.size >= self.min_size
            && tile.size > self.steps
    }
}

/// Which part of a tile a piece of work is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The whole tile.
    Whole,
    /// Outputs `out_start .. out_start + outputs` for every channel, by a direct product.
    Urgent {
        /// How many outputs (at most `Spread::steps`).
        outputs: usize,
    },
    /// Outputs `out_start + skip .. out_end` for channel chunk `index` of `of`.
    Chunk {
        /// Which chunk (the step after the tile's own at which it runs).
        index: usize,
        /// Number of chunks.
        of: usize,
        /// Outputs the urgent part delivered.
        skip: usize,
    },
}

/// The work recorded after step `t` of a sequence of length `len`: the tile of step `t`
/// (whole, or its urgent part and first chunk when spread) and the chunks of earlier
/// spread tiles that fall due at `t`. Each chunk falls due at least one step before
/// the first output it writes is read.
pub fn work_at(t: usize, len: usize, spread: Spread) -> Vec<(Tile, Part)> {
    let mut out = Vec::new();
    let k = spread.steps.max(1);
    for i in 0..k {
        let Some(step) = t.checked_sub(i) else { break };
        let Some(tile) = tile_at(step, len) else {
            continue;
        };
        let spread_here = spread.applies(&tile);
        if i == 0 && !spread_here {
            out.push((tile, Part::Whole));
            continue;
        }
        if !spread_here {
            continue;
        }
        let skip = k.min(tile.outputs());
        if i == 0 {
            out.push((tile, Part::Urgent { outputs: skip }));
        }
        if skip < tile.outputs() {
            out.push((
                tile,
                Part::Chunk {
                    index: i,
                    of: k,
                    skip,
                },
            ));
        }
    }
    out
}

/// The channels `start .. end` of chunk `index` of `of` over `channels` channels: equal
/// runs of whole channel pairs (the FFT tiles pack two channels per transform), the
/// last one shorter or empty.
pub fn chunk_channels(channels: usize, index: usize, of: usize) -> (usize, usize) {
    let pairs = channels.div_ceil(2);
    let per = pairs.div_ceil(of.max(1));
    let start = (index * per * 2).min(channels);
    (start, ((index + 1) * per * 2).min(channels))
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

    /// The seeding tiles stay below 2p and cover pairs across the prompt at most once
    /// (`seeding_then_steps_cover_the_rest_once` checks the exact cover with the steps
    /// after the prompt).
    #[test]
    fn seeding_tiles_are_the_pairs_across_the_prompt() {
        for p in [1usize, 2, 3, 63, 64, 65, 100, 1000] {
            for len in [p, p + 1, 2 * p, 4 * p + 8] {
                let mut count = vec![0u8; p * len];
                for tile in seeding_tiles(p, len) {
                    assert!(tile.out_end <= 2 * p, "p={p} {tile:?}");
                    assert!(tile.step < p && tile.out_end > p);
                    for s in tile.in_start..=tile.step {
                        for j in tile.out_start.max(p)..tile.out_end {
                            count[s * len + j] += 1;
                        }
                    }
                }
                assert!(count.iter().all(|&c| c <= 1), "p={p} len={len}");
            }
        }
    }

    /// The spread schedule covers every pair exactly once per channel chunk, writes an
    /// output only before it is read (work after step t is done before step t + 1
    /// reads z_{t+1}), and reads only inputs that exist at its step.
    fn check_spread(len: usize, spread: Spread) {
        let k = spread.steps.max(1);
        // count[s][j] for the urgent and whole parts; chunk parts count per chunk index.
        let mut count = vec![0u32; len * len];
        let mut chunks = vec![0u32; len * len];
        for t in 0..len {
            for (tile, part) in work_at(t, len, spread) {
                assert!(tile.step <= t, "{tile:?} before its inputs");
                let (lo, hi) = match part {
                    Part::Whole => (tile.out_start, tile.out_end),
                    Part::Urgent { outputs } => {
                        assert_eq!(t, tile.step);
                        (tile.out_start, tile.out_start + outputs)
                    }
                    Part::Chunk { index, of, skip } => {
                        assert_eq!((of, t), (k, tile.step + index));
                        (tile.out_start + skip, tile.out_end)
                    }
                };
                assert!(
                    lo > t,
                    "{tile:?} {part:?} at step {t} writes z_{lo}, already read"
                );
                for s in tile.in_start..=tile.step {
                    for j in lo..hi {
                        match part {
                            Part::Chunk { index, .. } => chunks[s * len + j] |= 1 << index,
                            _ => count[s * len + j] += 1,
                        }
                    }
                }
            }
        }
        let all = (1u32 << k) - 1;
        for s in 0..len {
            for j in 0..len {
                let whole = count[s * len + j] + u32::from(chunks[s * len + j] == all);
                assert_eq!(
                    whole,
                    u32::from(s < j),
                    "pair ({s},{j}) len {len} {spread:?}"
                );
                let c = chunks[s * len + j];
                assert!(c == 0 || c == all, "pair ({s},{j}): chunks {c:b}");
            }
        }
    }

    /// After a prefill of p positions (whose pairs with j < p the full convolution
    /// computes), the seeding work and the work of steps p.. cover each pair with
    /// j >= p exactly once (all chunks of a spread tile, whole tiles once).
    #[test]
    fn seeding_then_steps_cover_the_rest_once() {
        for spread in [
            Spread::OFF,
            Spread {
                min_size: 8,
                steps: 4,
            },
            Spread {
                min_size: 2,
                steps: 3,
            },
        ] {
            for p in [1usize, 2, 7, 8, 9, 33, 64, 100] {
                for len in [p, p + 1, 2 * p + 3, 4 * p + 40] {
                    let mut whole = vec![0u32; len * len];
                    let mut chunks = vec![0u32; len * len];
                    let later = (p..len).flat_map(|t| work_at(t, len, spread));
                    for (tile, part) in seeding_work(p, len, spread).into_iter().chain(later) {
                        let (lo, hi) = match part {
                            Part::Whole => (tile.out_start, tile.out_end),
                            Part::Urgent { outputs } => (tile.out_start, tile.out_start + outputs),
                            Part::Chunk { skip, .. } => (tile.out_start + skip, tile.out_end),
                        };
                        for s in tile.in_start..=tile.step {
                            for j in lo.max(p)..hi {
                                match part {
                                    Part::Chunk { index, .. } => chunks[s * len + j] |= 1 << index,
                                    _ => whole[s * len + j] += 1,
                                }
                            }
                        }
                    }
                    let all = (1u32 << spread.steps.max(1)) - 1;
                    for s in 0..len {
                        for j in p..len {
                            let n = whole[s * len + j] + u32::from(chunks[s * len + j] == all);
                            assert_eq!(n, u32::from(s < j), "p={p} len={len} ({s},{j}) {spread:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn spread_covers_every_pair_once() {
        for len in [0usize, 1, 2, 5, 17, 64, 100, 129, 257, 300] {
            check_spread(len, Spread::OFF);
            for (min_size, steps) in [(4, 2), (8, 4), (16, 8), (2, 3), (32, 8), (64, 16)] {
                check_spread(len, Spread { min_size, steps });
            }
        }
    }

    #[test]
    fn chunks_partition_channel_pairs() {
        for channels in [1usize, 2, 7, 8, 100, 1024, 1025] {
            for of in [1usize, 2, 3, 8, 16] {
                let mut next = 0;
                for i in 0..of {
                    let (a, b) = chunk_channels(channels, i, of);
                    assert_eq!(a, next.min(channels));
                    assert!((a % 2 == 0 || a == channels) && a <= b);
                    next = b;
                }
                assert_eq!(next, channels);
            }
        }
    }
}
