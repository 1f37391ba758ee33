//! Recording dispatches: the workgroup grid within the per-dimension limits, and one
//! dispatch with its parameter block.

use super::{GpuContext, Kernel, ParamArena};
use crate::error::{Error, Result};
use std::cell::Cell;

/// Splits `groups` workgroups into an (x, y) grid within the 65535-per-dimension limit;
/// kernels rebuild the flat index as `wid.x + wid.y * nwg.x` and skip indices past the end.
pub fn grid(groups: u32) -> (u32, u32) {
    const MAX: u32 = 65535;
    if groups <= MAX {
        (groups.max(1), 1)
    } else {
        (MAX, groups.div_ceil(MAX))
    }
}

/// Most rows one [`Step::dispatch_rows`] covers (the per-dimension workgroup limit).
pub const MAX_ROWS: usize = 65535;

/// Dispatches and queue submits, counted by every [`Step`] that records into them (and
/// by read-backs, [`Counts::add_submits`]): what a session reports as its cost.
#[derive(Debug, Default)]
pub struct Counts {
    dispatches: Cell<u64>,
    submits: Cell<u64>,
}

impl Counts {
    /// (dispatches, submits) so far.
    pub fn get(&self) -> (u64, u64) {
        (self.dispatches.get(), self.submits.get())
    }

    /// Counts `n` submits made outside a [`Step`] (read-backs).
    pub fn add_submits(&self, n: u64) {
        self.submits.set(self.submits.get() + n);
    }

    fn add_dispatch(&self) {
        self.dispatches.set(self.dispatches.get() + 1);
    }
}

/// The GPU work of one submit: the command encoder, the compute pass being recorded into
/// it, and the parameter arena its dispatches take their blocks from. Every place that
/// records GPU work does it through one: [`Step::new`], dispatches (and copies through
/// [`Step::encoder`]), then [`Step::submit`], which ends the pass, uploads the
/// parameter blocks once and submits.
#[derive(Debug)]
pub struct Step<'a> {
    ctx: &'a GpuContext,
    encoder: wgpu::CommandEncoder,
    /// Begun on the encoder with its lifetime forgotten: wgpu then keeps the encoder
    /// locked until the pass is dropped ([`Step::end_pass`]).
    pass: Option<wgpu::ComputePass<'static>>,
    arena: &'a mut ParamArena,
    counts: Option<&'a Counts>,
}

impl<'a> Step<'a> {
    /// A step on `ctx` whose dispatches take their parameters from `arena`.
    pub fn new(ctx: &'a GpuContext, arena: &'a mut ParamArena) -> Self {
        Step {
            ctx,
            encoder: ctx.device.create_command_encoder(&Default::default()),
            pass: None,
            arena,
            counts: None,
        }
    }

    /// The same step, counting its dispatches and its submit in `counts`.
    pub fn counted(mut self, counts: &'a Counts) -> Self {
        self.counts = Some(counts);
        self
    }

    /// The open compute pass (one is begun if none is open).
    #[cfg(any(test, feature = "internals"))]
    pub fn pass(&mut self) -> &mut wgpu::ComputePass<'static> {
        open_pass(&mut self.encoder, &mut self.pass)
    }

    /// Ends the open compute pass; the next dispatch begins a new one.
    pub fn end_pass(&mut self) {
        self.pass = None;
    }

    /// The command encoder, for copies and passes of its own (the open compute pass is
    /// ended first).
    pub fn encoder(&mut self) -> &mut wgpu::CommandEncoder {
        self.end_pass();
        &mut self.encoder
    }

    /// The parameter arena (for recorders that push their own blocks).
    pub fn arena(&mut self) -> &mut ParamArena {
        self.arena
    }

    /// Records one dispatch of `kernel` with its parameter block `params` over
    /// `groups` workgroups for each of `rows` rows (at most [`MAX_ROWS`]): kernels read the row
    /// as `workgroup_id.z`.
    pub fn dispatch_rows<P: bytemuck::Pod>(
        &mut self,
        kernel: &Kernel,
        storage: &wgpu::BindGroup,
        params: &P,
        (groups, rows): (u32, u32),
    ) -> Result<()> {
        if groups == 0 || rows == 0 {
            return Ok(());
        }
        if rows as usize > MAX_ROWS {
            return Err(Error::gpu(format!(
                "{rows} rows in one dispatch (at most {MAX_ROWS})"
            )));
        }
        let off = self.arena.push(params)?;
        if let Some(c) = self.counts {
            c.add_dispatch();
        }
        let (x, y) = grid(groups);
        let pass = open_pass(&mut self.encoder, &mut self.pass);
        pass.set_pipeline(&kernel.pipeline);
        pass.set_bind_group(0, self.arena.bind_group(), &[off]);
        pass.set_bind_group(1, storage, &[]);
        pass.dispatch_workgroups(x, y, rows);
        Ok(())
    }

    /// Records one dispatch of `kernel` with its parameter block `params` (a
    /// `ParamBlock`) over `groups` workgroups.
    pub fn dispatch<P: bytemuck::Pod>(
        &mut self,
        kernel: &Kernel,
        storage: &wgpu::BindGroup,
        params: &P,
        groups: u32,
    ) -> Result<()> {
        self.dispatch_rows(kernel, storage, params, (groups, 1))
    }

    /// Ends the pass, uploads the parameter blocks and submits the step.
    pub fn submit(self) {
        let ctx = self.ctx;
        ctx.queue.submit([self.finish()]);
    }

    /// [`Step::submit`] without the submit: the parameter blocks are uploaded (they
    /// reach the GPU with the next submit) and the finished commands returned, for a
    /// caller that submits them itself (a benchmark timing the submit alone). Counted
    /// as a submit.
    pub fn finish(self) -> wgpu::CommandBuffer {
        let Step {
            ctx,
            encoder,
            pass,
            arena,
            counts,
        } = self;
        drop(pass);
        arena.upload(ctx);
        if let Some(c) = counts {
            c.add_submits(1);
        }
        encoder.finish()
    }
}

/// The open pass of `encoder`, begun if there is none.
fn open_pass<'p>(
    encoder: &mut wgpu::CommandEncoder,
    pass: &'p mut Option<wgpu::ComputePass<'static>>,
) -> &'p mut wgpu::ComputePass<'static> {
    pass.get_or_insert_with(|| {
        encoder
            .begin_compute_pass(&Default::default())
            .forget_lifetime()
    })
}
