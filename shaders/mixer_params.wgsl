// Parameter block shared by the mixer kernels (mixer.wgsl, mixer_vec4.wgsl), which
// src/mixer.rs compiles with this file in front.

struct Params {
    d: u32,          // channels per layer (D)
    len: u32,        // session length L (stride of the arenas)
    t: u32,          // current position
    layer: u32,      // layer index (gate, lazy, eager) or channel count (tiles)
    mode: u32,       // gate: 0 = z from z_acc (flash, eager), 1 = diagonal only, 2 = lazy
    slot: u32,       // gate: ring slot of u_t (t % 3); older slots follow
    size: u32,       // tile side U
    in_start: u32,   // tile: first input position
    out_start: u32,  // tile: first output position
    outputs: u32,    // tile: number of outputs; eager: number of future positions
    chans: u32,      // C: channels of all layers (the arenas' row stride)
    pad1: u32,
    pad2: vec4<u32>,
}

@group(0) @binding(0) var<uniform> p: Params;
