//! OpenBLAS (whisper.cpp's encoder products) picks its kernels by the CPU model it knows; on a
//! CPU newer than its table it falls back to generic SSE3 kernels. This picks them by the CPU's
//! features instead, as `OPENBLAS_CORETYPE` would.
//!
//! Debian 12's OpenBLAS 0.3.21 on an Intel Xeon of model 207 (Emerald Rapids, AVX-512) took
//! its "Prescott" kernels: the `espeak15` benchmark call took 10.2 s, with the AVX-512
//! ("SkylakeX") kernels 5.7 s.

use std::ffi::{c_char, c_void, CStr};
use std::sync::Once;

/// What the CPU can run: OpenBLAS's core for AVX-512 or for AVX2, if either.
fn core_for_cpu() -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            return Some("SkylakeX");
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Some("Haswell");
        }
    }
    None
}

/// Whether OpenBLAS's core name is one of its pre-AVX2 cores, the fallback for CPUs it does
/// not know. Cores it chose for AVX2 or AVX-512 (Haswell, Zen, SkylakeX, ...) are kept.
fn is_fallback(core: &str) -> bool {
    const FALLBACKS: [&str; 11] = [
        "unknown",
        "katmai",
        "coppermine",
        "northwood",
        "prescott",
        "banias",
        "core2",
        "penryn",
        "dunnington",
        "nehalem",
        "sandybridge",
    ];
    FALLBACKS.contains(&core.to_ascii_lowercase().as_str())
}

/// A symbol of the process's libraries, if one exports it.
fn symbol(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT only looks the name up.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

/// Moves OpenBLAS to the kernels this CPU supports when it fell back to generic ones, unless
/// `OPENBLAS_CORETYPE` is set. Call it at the start of `main`, before other threads start (it
/// sets `OPENBLAS_CORETYPE` for OpenBLAS to read) and before any matrix product. A build
/// without OpenBLAS, or with one built for a single CPU (no run-time choice), is left alone.
pub fn select_kernels() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        reselect();
    });
}

fn reselect() -> Option<()> {
    if std::env::var_os("OPENBLAS_CORETYPE").is_some() {
        return None;
    }
    let corename = symbol(c"openblas_get_corename")?;
    let quit = symbol(c"gotoblas_dynamic_quit")?;
    let init = symbol(c"gotoblas_dynamic_init")?;
    // SAFETY: the symbols are OpenBLAS's, with these C signatures (driver/others/dynamic.c).
    let (corename, quit, init) = unsafe {
        (
            std::mem::transmute::<*mut c_void, extern "C" fn() -> *const c_char>(corename),
            std::mem::transmute::<*mut c_void, extern "C" fn()>(quit),
            std::mem::transmute::<*mut c_void, extern "C" fn()>(init),
        )
    };
    let current = || {
        let p = corename();
        // SAFETY: OpenBLAS returns a static NUL-terminated name.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    };
    let before = current()?;
    if !is_fallback(&before) {
        return None;
    }
    let want = core_for_cpu()?;
    std::env::set_var("OPENBLAS_CORETYPE", want);
    // gotoblas_dynamic_init keeps a core already chosen: forget it, then choose again by
    // OPENBLAS_CORETYPE, as OpenBLAS does at load time.
    quit();
    init();
    let after = current()?;
    tracing::debug!(
        from = before,
        to = after,
        "OpenBLAS kernels chosen by the CPU's features"
    );
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pre_avx2_cores_are_replaced() {
        assert!(is_fallback("Prescott"));
        assert!(is_fallback("Sandybridge"));
        assert!(!is_fallback("Haswell"));
        assert!(!is_fallback("Zen"));
        assert!(!is_fallback("SkylakeX"));
        assert!(!is_fallback("SapphireRapids"));
    }
}
