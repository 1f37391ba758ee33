// Parameter block shared by the mixer kernels (mixer.wgsl, mixer_vec4.wgsl), which
// src/mixer/kernels.rs compiles with this file in front.
//
// The arenas of a session are split by channel into groups that each fit the device's
// binding limit (usually one group: all channels). Per-layer kernels run on a slice:
// the `count` channels of layer `layer` from channel `c0` on, which sit in the bound
// group's arenas from column `col0` on. Per-layer buffers (u ring, params, x0, y) are
// indexed by the channel within the layer, arenas by the column within the group.

struct Params {
    d: u32,          // channels per layer (D)
    len: u32,        // session length L (stride of the arenas)
    t: u32,          // current position
    layer: u32,      // layer index (gate, lazy, eager) or channel count (tiles)
    mode: u32,       // gate: 0 = z from z_acc (flash, eager), 1 = diagonal only, 2 = lazy
    spare: u32,      // unused (the gate's ring row of u_t is t % 3, see urow)
    size: u32,       // tile side U
    in_start: u32,   // tile: first input position
    out_start: u32,  // tile: first output position
    outputs: u32,    // tile: number of outputs; eager: number of future positions
    chans: u32,      // channels of this channel group (the arenas' row stride)
    col0: u32,       // gate, lazy, eager: arena column of the slice's first channel
    c0: u32,         // gate, lazy, eager: the slice's first channel within the layer
    count: u32,      // gate, lazy, eager: channels in the slice
    pad: vec2<u32>,
}

@group(0) @binding(0) var<uniform> p: Params;
