//! Typed parameter blocks: every WGSL parameter struct a runtime kernel reads has a
//! `#[repr(C)]` `bytemuck::Pod` twin in Rust, declared with `param_block!`, which also
//! lists its fields' names and byte offsets (`ParamBlock::fields`); a CPU test checks
//! them against naga's layout of the shader's struct, so the two cannot drift apart.

/// A Rust twin of a WGSL parameter struct (one dispatch's block of the
/// [`ParamArena`](super::ParamArena), at most [`PARAM_WORDS`](super::PARAM_WORDS) words).
/// Only the layout test reads it, so it exists in test builds alone.
#[cfg(test)]
pub(crate) trait ParamBlock: bytemuck::Pod {
    /// The struct's name in the shader.
    const WGSL_NAME: &'static str;
    /// Every field as (name, byte offset), in declaration order.
    fn fields() -> Vec<(&'static str, usize)>;
}

/// Declares a parameter block: the struct (`#[repr(C)]`, `Pod`, `Default`) and its
/// `ParamBlock` impl naming the WGSL struct it mirrors. Field names must be the
/// shader's.
macro_rules! param_block {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident as $wgsl:literal {
            $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        $vis struct $name {
            $($(#[$fmeta])* pub(crate) $field: $ty),*
        }

        #[cfg(test)]
        impl $crate::gpu::ParamBlock for $name {
            const WGSL_NAME: &'static str = $wgsl;
            fn fields() -> Vec<(&'static str, usize)> {
                vec![$((stringify!($field), std::mem::offset_of!($name, $field))),*]
            }
        }

        const _: () = assert!(
            std::mem::size_of::<$name>() <= $crate::gpu::PARAM_WORDS * 4,
            "a parameter block is at most PARAM_WORDS words"
        );
    };
}
pub(crate) use param_block;

/// The layout naga gives struct `name` of `source` (WGSL), as (size, [(member name,
/// byte offset)]), for comparing a `ParamBlock` with its shader.
#[cfg(test)]
pub(crate) fn wgsl_struct_layout(source: &str, name: &str) -> Option<(u32, Vec<(String, u32)>)> {
    let module = naga::front::wgsl::parse_str(source).ok()?;
    let ty = module
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some(name))?
        .1;
    match &ty.inner {
        naga::TypeInner::Struct { members, span } => Some((
            *span,
            members
                .iter()
                .map(|m| (m.name.clone().unwrap_or_default(), m.offset))
                .collect(),
        )),
        _ => None,
    }
}
