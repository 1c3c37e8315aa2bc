//! Generates the binder uapi bindings from the kernel's installed uapi headers.
//!
//! The headers must come from `make headers_install`: the raw kernel header uses `__packed`,
//! which only the installed copy spells as `__attribute__((packed))`. Without it
//! `struct binder_handle_cookie` is 16 bytes instead of 12, and the death notification
//! commands get the wrong numbers.
//!
//! `BINDER_UAPI_INCLUDE` names the installed `include` directory; the project's Makefile sets
//! it. bindgen's layout assertions in the generated file check every struct's size and field
//! offsets at compile time.

use std::{env, path::PathBuf, process::Command};

fn main() {
    let include = env::var_os("BINDER_UAPI_INCLUDE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/rust_binder/build-debug/usr/include")
        });
    let header = include.join("linux/android/binder.h");
    println!("cargo:rerun-if-env-changed=BINDER_UAPI_INCLUDE");
    println!("cargo:rerun-if-changed={}", header.display());
    println!("cargo:rerun-if-changed=wrapper.h");
    if !header.exists() {
        panic!(
            "{} not found: run `make setup` (or set BINDER_UAPI_INCLUDE to the `usr/include` \
             of a kernel tree after `make headers_install`)",
            header.display()
        );
    }

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("uapi.rs");
    let bindgen = env::var_os("BINDGEN").unwrap_or_else(|| "bindgen".into());
    let status = Command::new(&bindgen)
        .arg("wrapper.h")
        .args([
            "--use-core",
            "--no-prepend-enum-name",
            "--rust-target",
            "1.82",
        ])
        .args(["--allowlist-file", ".*/linux/android/binder.h"])
        .args(["--allowlist-file", ".*/linux/android/binderfs.h"])
        .args(["--allowlist-file", ".*wrapper.h"])
        .args(["--with-derive-default", "--no-doc-comments"])
        .arg("-o")
        .arg(&out)
        .arg("--")
        .arg(format!("-I{}", include.display()))
        .arg("--target=x86_64-linux-gnu")
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run {bindgen:?} ({e}): `make setup` installs bindgen-cli")
        });
    assert!(status.success(), "bindgen failed on {}", header.display());
}
