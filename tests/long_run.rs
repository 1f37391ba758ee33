//! Long runs keep memory flat: generating 2^16 tokens allocates no GPU buffers, bind
//! groups or GPU memory per token (wgpu's internal counters), and the host's live heap
//! grows by no more than the returned token list.

mod common;

use flashconv::session::{session_len, GenerateOptions};
use flashconv::{Config, GpuModel, Method, Model, Session, SessionOptions};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// Counts the bytes currently allocated on the host (this test binary only).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// What is allocated at one moment: host live bytes and wgpu's object/memory counts.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    host: isize,
    buffers: isize,
    bind_groups: isize,
    buffer_memory: isize,
}

fn snapshot(device: &wgpu::Device) -> Snapshot {
    let c = device.get_internal_counters().hal;
    Snapshot {
        host: LIVE.load(Ordering::Relaxed),
        buffers: c.buffers.read(),
        bind_groups: c.bind_groups.read(),
        buffer_memory: c.buffer_memory.read(),
    }
}

#[test]
fn generating_2_pow_16_tokens_keeps_memory_flat() {
    const TOKENS: usize = 1 << 16;
    const FIRST: usize = 1 << 10;
    let ctx = common::ctx();
    let cfg = Config::new(1, 8, 12, TOKENS + 2);
    let model = Model::random(cfg, 77).expect("random model");
    let gm = GpuModel::new(&ctx, model).expect("upload");
    let len = session_len(gm.config(), 1, TOKENS).expect("len");
    let mut s = Session::new(&gm, SessionOptions::new(Method::Flash, len)).expect("session");
    let opts = GenerateOptions {
        max_tokens: TOKENS,
        ..Default::default()
    };
    let mut n = 0usize;
    let mut first = None;
    let mut peak_host = 0isize;
    let stats = s
        .generate(&[7], &opts, |_| {
            n += 1;
            let snap = snapshot(&ctx.device);
            if n == FIRST {
                first = Some(snap);
            }
            if n > FIRST {
                peak_host = peak_host.max(snap.host);
            }
        })
        .expect("generate");
    let last = snapshot(&ctx.device);
    let first = first.expect("reached the first checkpoint");
    assert_eq!(stats.tokens.len(), TOKENS);
    eprintln!("after {FIRST} tokens: {first:?}");
    eprintln!("after {TOKENS} tokens: {last:?} (host peak {peak_host})");
    assert_eq!(
        last.buffers, first.buffers,
        "GPU buffers allocated per token"
    );
    assert_eq!(
        last.bind_groups, first.bind_groups,
        "bind groups created per token"
    );
    assert_eq!(last.buffer_memory, first.buffer_memory, "GPU memory grew");
    // The only host growth allowed: the list of generated ids (4 bytes per token, and
    // at most doubling capacity), plus 256 KiB for allocator and driver noise.
    let allowed = (2 * 4 * TOKENS + (256 << 10)) as isize;
    let growth = peak_host - first.host;
    eprintln!("host live-heap growth: {growth} bytes (allowed {allowed})");
    assert!(growth <= allowed, "host heap grew by {growth} bytes");
}
