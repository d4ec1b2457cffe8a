//! Links `cox` as a position-dependent executable.
//!
//! `cox` starts once per step (it is the in-step wrapper, `cox __step`), and as a PIE the
//! dynamic loader first applies ~68,000 relative relocations, which copies ~1.6 MB of
//! `.data.rel.ro` page by page: 2.5 ms of CPU and 565 page faults per start, against
//! 0.8 ms and 133 faults without (`perf stat -r 200 cox --version`, see BENCHMARKS.md).
//! The cost is address-space randomisation of the executable's own image; the heap, the
//! stack and the shared libraries stay randomised.
fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os == "linux" && target_env == "gnu" {
        println!("cargo:rustc-link-arg-bin=cox=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
