//! The mixer alone (`bench --mixer-only`): the long-convolution schedule of one method
//! over M·D chained channels, without the model around it.

use super::{result, BenchResult, STEPS_PER_SUBMIT};
use crate::error::Result;
use crate::gpu::{Counts, GpuContext, ParamArena, Step};
use crate::mixer::{bench_mixer, BenchKernels, Chain, Mixer};
use crate::Instant;

pub(super) fn run_mixer_steps(
    ctx: &GpuContext,
    kernels: &BenchKernels,
    mixer: &Mixer,
    arena: &mut ParamArena,
    len: usize,
    counts: &Counts,
) -> Result<()> {
    let mut t = 0;
    while t < len {
        let mut step = Step::new(ctx, arena).counted(counts);
        for _ in 0..STEPS_PER_SUBMIT.min(len - t) {
            mixer.record_bench_step(&mut step, kernels, t)?;
            t += 1;
        }
        step.submit();
    }
    ctx.wait()
}

pub(super) fn time_mixer(
    ctx: &GpuContext,
    kernels: &BenchKernels,
    chain: Chain<'_>,
) -> Result<BenchResult> {
    let arena = |m: &Mixer| {
        let slots = STEPS_PER_SUBMIT * m.dispatches_per_token();
        ParamArena::new(ctx, kernels.param_layout(), slots)
    };
    let mixer_of = |len| bench_mixer(ctx, kernels, Chain { len, ..chain });
    let (method, len, channels) = (chain.method, chain.len, chain.channels);
    let warm = len.min(256);
    let (wm, _keep) = mixer_of(warm)?;
    run_mixer_steps(ctx, kernels, &wm, &mut arena(&wm), warm, &Counts::default())?;
    drop(wm);
    let (mixer, _keep) = mixer_of(len)?;
    let mut arena = arena(&mixer);
    let counts = Counts::default();
    ctx.wait()?;
    let start = Instant::now();
    run_mixer_steps(ctx, kernels, &mixer, &mut arena, len, &counts)?;
    let seconds = start.elapsed().as_secs_f64();
    let mut r = result(method, "mixer", len, seconds, channels);
    let (dispatches, submits) = counts.get();
    r.dispatches_per_token = Some(dispatches as f64 / len as f64);
    r.submits_per_token = Some(submits as f64 / len as f64);
    r.mixer_bytes = mixer.memory().total();
    r.channel_groups = mixer.group_widths().len();
    Ok(r)
}
