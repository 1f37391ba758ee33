//! Per-dispatch parameters: the uniform arena every dispatch of a submit takes its block
//! from ([`ParamArena`]), and the rewrite that hides a block behind an index no compiler
//! can fold ([`unfoldable_params`]).

use super::GpuContext;
use crate::error::{Error, Result};

/// Number of u32 words in one parameter block (all kernels share the size).
pub const PARAM_WORDS: usize = 16;

/// Bytes each dispatch binds from its parameter slot: two blocks, of which the second is
/// always zeros ([`ParamArena::push`] pads every slot with them): see
/// [`unfoldable_params`].
const PARAM_BINDING: u64 = 2 * PARAM_WORDS as u64 * 4;

/// `source` with its parameter block `@group(0) @binding(0) var<uniform> NAME: TYPE;`
/// turned into two slots, `NAME_slots: array<TYPE, 2>`, and a private `NAME` that every
/// entry point fills first: the entry points named in `protected` with
/// `NAME_slots[min(NAME_slots[1].FIRST, 1u)]` (FIRST: the struct's first field, a u32;
/// slot 1 holds zeros, so this is slot 0), the others with `NAME_slots[0]`, which
/// compiles to what the plain block does.
///
/// Why: lavapipe (Mesa 22.3) "inlines" uniform values that branch and loop conditions
/// read, when the loads sit at constant offsets in a uniform buffer, and when that
/// shrinks the kernel enough it compiles the kernel again at every dispatch. It did so
/// for lazy's gate (whose `mode` test removes most of it): 1 to 2 ms a token, 4x lazy's
/// whole time at L = 1024. Behind an index no compiler can fold, no load has a constant
/// offset. Only where needed: llvmpipe then fetches the block with gathers in every
/// SIMD batch and treats its values as varying; applied to every kernel, it changed
/// neither flash's mixer time nor the FFT's beyond this machine's run-to-run noise, so
/// the others keep plain blocks. Sources without such a block, or whose struct does not
/// start with a u32 field, are returned unchanged.
pub fn unfoldable_params(source: &str, protected: &[&str]) -> String {
    const DECL: &str = "@group(0) @binding(0) var<uniform> ";
    let Some(line) = source.lines().find(|l| l.starts_with(DECL)) else {
        return source.to_string();
    };
    let Some((name, ty)) = line[DECL.len()..]
        .trim_end()
        .trim_end_matches(';')
        .split_once(": ")
    else {
        return source.to_string();
    };
    let Some(first) = first_u32_field(source, ty) else {
        return source.to_string();
    };
    let slots = format!("{DECL}{name}_slots: array<{ty}, 2>;\nvar<private> {name}: {ty};");
    let source = source.replacen(line, &slots, 1);
    let mut out = String::with_capacity(source.len() + 64 * 32);
    let mut rest = source.as_str();
    // Entry points: a line that starts with @compute, then `fn NAME(`, then the body.
    while let Some(at) = rest.find("\n@compute") {
        let Some(f) = rest[at..].find("\nfn ").map(|f| at + f + 4) else {
            break;
        };
        let Some(body) = rest[f..].find('{').map(|b| f + b + 1) else {
            break;
        };
        let entry = rest[f..].split('(').next().unwrap_or("").trim();
        let index = if protected.contains(&entry) {
            format!("min({name}_slots[1].{first}, 1u)")
        } else {
            "0".to_string()
        };
        out.push_str(&rest[..body]);
        out.push_str(&format!("\n    {name} = {name}_slots[{index}];"));
        rest = &rest[body..];
    }
    out.push_str(rest);
    out
}

/// The first field of `struct ty { ... }` in `source` if it is a u32.
fn first_u32_field<'a>(source: &'a str, ty: &str) -> Option<&'a str> {
    let open = source.find(&format!("struct {ty} {{"))?;
    let body = &source[open..];
    let field = body[body.find('{')? + 1..].trim_start();
    let (name, rest) = field.split_once(':')?;
    rest.trim_start().starts_with("u32").then_some(name.trim())
}

/// A uniform buffer of parameter slots, one per dispatch, filled on the CPU while a step
/// is recorded and uploaded once before submit. Kernels read their slot through a dynamic
/// offset, so one bind group serves every dispatch.
#[derive(Debug)]
pub struct ParamArena {
    buffer: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    stride: u64,
    capacity: usize,
    staged: Vec<u8>,
}

impl ParamArena {
    /// An arena of `capacity` slots, laid out for `layout` (any kernel's `param_layout`:
    /// they are all identical).
    pub fn new(ctx: &GpuContext, layout: &wgpu::BindGroupLayout, capacity: usize) -> Self {
        let align = ctx.limits.min_uniform_buffer_offset_alignment.max(64) as u64;
        let stride = PARAM_BINDING.div_ceil(align) * align;
        let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params"),
            size: stride * capacity.max(1) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("params"),
            layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &buffer,
                    offset: 0,
                    size: std::num::NonZeroU64::new(PARAM_BINDING),
                }),
            }],
        });
        ParamArena {
            buffer,
            bind_group,
            stride,
            capacity: capacity.max(1),
            staged: Vec::new(),
        }
    }

    /// Slots left before [`ParamArena::upload`] must be called.
    pub fn remaining(&self) -> usize {
        self.capacity - self.staged.len() / self.stride as usize
    }

    /// Stages one parameter block (a `ParamBlock`, or plain words
    /// for a test kernel) and returns its dynamic offset. The rest of the slot, the
    /// second block that every dispatch binds included, is zeros
    /// ([`unfoldable_params`] relies on it).
    pub fn push<P: bytemuck::Pod>(&mut self, block: &P) -> Result<u32> {
        let bytes = bytemuck::bytes_of(block);
        if bytes.len() > PARAM_WORDS * 4 {
            return Err(Error::gpu(format!(
                "a parameter block of {} bytes exceeds the {} of a slot",
                bytes.len(),
                PARAM_WORDS * 4
            )));
        }
        if self.remaining() == 0 {
            return Err(Error::gpu(format!(
                "parameter arena full ({} dispatches in one submit)",
                self.capacity
            )));
        }
        let offset = self.staged.len() as u32;
        self.staged.extend_from_slice(bytes);
        self.staged
            .resize(offset as usize + self.stride as usize, 0);
        Ok(offset)
    }

    /// Writes the staged blocks to the GPU (call once before submitting) and resets.
    pub fn upload(&mut self, ctx: &GpuContext) {
        if !self.staged.is_empty() {
            ctx.queue.write_buffer(&self.buffer, 0, &self.staged);
        }
        self.staged.clear();
    }

    /// The bind group for group 0.
    pub fn bind_group(&self) -> &wgpu::BindGroup {
        &self.bind_group
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parameter block moves behind the unfoldable index in the protected entry
    /// points, to slot 0 in the others (and nowhere else); sources without a block are
    /// left alone; every shader module still validates after the rewrite.
    #[test]
    fn params_behind_an_unfoldable_index() {
        let src = "struct P {\n    n: u32,\n    t: u32,\n}\n\
                   @group(0) @binding(0) var<uniform> p: P;\n\
                   fn helper() -> u32 { return p.t; }\n\
                   // @compute in a comment\n\
                   @compute @workgroup_size(64)\nfn a(@builtin(global_invocation_id) g: vec3<u32>,\n     @builtin(num_workgroups) w: vec3<u32>) {\n    let x = p.n;\n}\n\
                   @compute @workgroup_size(8)\nfn b() {\n}\n";
        let out = unfoldable_params(src, &["a"]);
        assert!(out.contains("var<uniform> p_slots: array<P, 2>;\nvar<private> p: P;"));
        assert!(!out.contains("var<uniform> p: P;"));
        let hidden = "w: vec3<u32>) {\n    p = p_slots[min(p_slots[1].n, 1u)];\n";
        assert!(out.contains(hidden), "{out}");
        assert!(out.contains("fn b() {\n    p = p_slots[0];\n}"), "{out}");
        assert_eq!(out.matches("p = p_slots[").count(), 2, "{out}");
        assert!(out.contains("fn helper() -> u32 { return p.t; }"));
        let plain = "@compute @workgroup_size(1)\nfn c() {}\n";
        assert_eq!(unfoldable_params(plain, &["c"]), plain);
        for (name, source) in crate::wgsl_modules() {
            let rewritten = unfoldable_params(&source, &["gate", "gate4", "lazy4"]);
            let module = naga::front::wgsl::parse_str(&rewritten)
                .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&rewritten)));
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::all(),
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
    }
}
