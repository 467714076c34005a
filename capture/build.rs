//! Builds the eBPF programs in `ebpf/` for bpfel-unknown-none with aya-build on the
//! stable toolchain (see `scripts/install-ebpf-toolchain` for what that needs).

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let ebpf = manifest.join("ebpf");
    let common = manifest.join("common");
    println!("cargo:rerun-if-changed={}", common.display());
    println!("cargo::rustc-check-cfg=cfg(lanner_no_ebpf)");
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
    if std::env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true")) {
        println!("cargo:rustc-cfg=lanner_no_ebpf");
        println!(
            "cargo:warning=AYA_BUILD_SKIP is set: building lanner-capture without its eBPF programs"
        );
        return Ok(());
    }
    // The eBPF crate is its own workspace (excluded from the main one): aya-build runs
    // `cargo build --package lanner-capture-ebpf` in the current directory.
    std::env::set_current_dir(&ebpf)?;
    // `-Z build-std=core` on the stable toolchain needs RUSTC_BOOTSTRAP; set it for the
    // nested build only, so the rest of the workspace keeps stable semantics.
    set_bootstrap();
    let root = ebpf
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("non-UTF-8 path {}", ebpf.display()))?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "lanner-capture-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom("stable"),
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "building the eBPF programs failed ({e:#}); run scripts/install-ebpf-toolchain \
             (rust-src and bpf-linker 0.13.0), or set AYA_BUILD_SKIP=1 to build without them"
        )
    })
}

#[allow(unsafe_code)]
fn set_bootstrap() {
    // SAFETY: the build script is single-threaded at this point.
    unsafe { std::env::set_var("RUSTC_BOOTSTRAP", "1") };
}
