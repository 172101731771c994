//! The only `unsafe` in percept: two C calls that no safe binding offers, each small enough to
//! check by reading. Everything else in the workspace is safe Rust (`unsafe_code` is denied
//! workspace-wide and allowed only in this module).
//!
//! - [`share_cpu_arena`] gives every ONNX Runtime session of the process one CPU arena instead
//!   of one each: holistic's seven sessions each kept the activations of their own largest run
//!   (31 MB of arenas at peak in a heaptrack profile); sharing took holistic's peak RSS from
//!   173–178 to 139–151 MiB at the same speed (three alternating rounds, BENCHMARKS.md). The `ort` crate has the session switch
//!   (`session.use_env_allocators`) but not the environment call that registers the arena.
//! - [`release_free_heap`] hands glibc's free pages back to the kernel after a model load, whose
//!   transient copies (protobuf, graph, unoptimised weights) glibc otherwise keeps resident.

#![allow(unsafe_code)]

use ort::AsPointer;
use ort::environment::Environment;
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};

/// `OrtArenaCfg::arena_extend_strategy`: grow by what is asked rather than by doubling, so the
/// shared arena stays near the largest concurrent demand instead of the next power of two.
const EXTEND_SAME_AS_REQUESTED: std::ffi::c_int = 1;

/// Registers one arena-backed CPU allocator on `env`; sessions built with
/// `with_env_allocators()` then take their activations (and initializers, when not read from
/// the model bytes) from it. Call once per environment.
pub(crate) fn share_cpu_arena(env: &Environment) -> Result<(), ort::Error> {
    let info = MemoryInfo::new(
        AllocationDevice::CPU,
        0,
        AllocatorType::Arena,
        MemoryType::Default,
    )?;
    let api = ort::api();
    let mut config: *mut ort::sys::OrtArenaCfg = std::ptr::null_mut();
    // SAFETY: `CreateArenaCfg` only writes the new config's address to `config`, a valid local;
    // 0 / -1 select ONNX Runtime's defaults for total size, first chunk and dead bytes. Its
    // status is owned by `result_from_status`, which frees it.
    unsafe {
        ort::Error::result_from_status((api.CreateArenaCfg)(
            0,
            EXTEND_SAME_AS_REQUESTED,
            -1,
            -1,
            &mut config,
        ))?;
    }
    // SAFETY: `env.ptr()` and `info.ptr()` are live, non-null handles owned by values borrowed
    // for the whole call, and `config` is the live handle created above. The C API takes the
    // environment as mutable to add the allocator to its list; no Rust reference to the
    // `OrtEnv` exists (ort holds it by pointer), and the one caller (`ort::runtime`) makes this
    // call once, under its lock, before any session of the environment exists, so nothing else
    // touches the list meanwhile. ONNX Runtime copies what it needs from `info` and `config`
    // before returning. The status is freed by `result_from_status`.
    let registered = unsafe {
        ort::Error::result_from_status((api.CreateAndRegisterAllocator)(
            env.ptr().cast_mut(),
            info.ptr(),
            config,
        ))
    };
    // SAFETY: `config` came from `CreateArenaCfg` above (which succeeded, so it is non-null),
    // is released exactly once, and nothing holds it: the allocator copied its fields.
    unsafe { (api.ReleaseArenaCfg)(config) };
    registered
}

/// Returns the free pages of every malloc arena to the kernel (glibc only; elsewhere nothing).
pub(crate) fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` takes a byte count to keep and touches only the allocator's own free
    // lists, under the allocator's locks; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
