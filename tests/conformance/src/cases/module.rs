//! rust_binder as a module: unloading, reloading, and its `devices` parameter.
//!
//! These cases unload the driver under test, so they run last and always leave it loaded
//! with its default parameters.

use std::{fs, path::Path};

use binder_client::Binder;

use crate::{
    ensure,
    harness::{expect_errno, Case, Driver, Env, Outcome, Step, BINDER, HWBINDER, VNDBINDER},
    kmod,
};

use super::context_mgr::become_manager;

pub const CASES: &[Case] = &[
    Case::only(
        Driver::Rust,
        "module_unload_waits_for_files",
        module_unload_waits_for_files,
    ),
    Case::only(Driver::Rust, "module_reload_loop", module_reload_loop),
    Case::only(Driver::Rust, "module_devices_param", module_devices_param),
    Case::only(
        Driver::Rust,
        "module_devices_param_invalid",
        module_devices_param_invalid,
    ),
];

const MODULE_NAME: &str = "rust_binder";

/// Reloads rust_binder with its defaults when dropped, so a failed case leaves it loaded.
struct Reload<'a>(&'a Path);

impl Drop for Reload<'_> {
    fn drop(&mut self) {
        if !Path::new(BINDER).exists() {
            let _ = kmod::unload(MODULE_NAME);
            let _ = kmod::load(self.0, "");
        }
    }
}

fn module_path(env: &Env) -> Outcome<&Path> {
    env.module
        .as_deref()
        .ok_or_else(|| "no --module given".to_string())
}

/// An open file, and a mapping that outlives its descriptor, keep the module loaded.
fn module_unload_waits_for_files(env: &Env) -> Outcome {
    let path = module_path(env)?;
    let _reload = Reload(path);
    let binder = Binder::open(BINDER).step("open")?;
    expect_errno(
        kmod::unload(MODULE_NAME),
        libc::EAGAIN,
        "unload with a file open",
    )?;
    let mapping = binder.map(1 << 20, libc::PROT_READ).step("mmap")?;
    drop(binder);
    expect_errno(
        kmod::unload(MODULE_NAME),
        libc::EAGAIN,
        "unload with a mapping left",
    )?;
    mapping.unmap().step("munmap")?;
    kmod::unload(MODULE_NAME).step("unload with nothing open")?;
    ensure!(
        !Path::new(BINDER).exists(),
        "{BINDER} still exists after unload"
    );
    kmod::load(path, "").step("load")?;
    Binder::open(BINDER)
        .step("open after reload")?
        .version()
        .step("version")
        .map(drop)
}

/// Load and unload many times, using every device each time; the kernel log check after the
/// suite catches what this leaks.
fn module_reload_loop(env: &Env) -> Outcome {
    let path = module_path(env)?;
    let _reload = Reload(path);
    for round in 0..20 {
        kmod::unload(MODULE_NAME).step(&format!("unload, round {round}"))?;
        kmod::load(path, "").step(&format!("load, round {round}"))?;
        for device in [BINDER, HWBINDER, VNDBINDER] {
            let binder = Binder::open(device).step(device)?;
            binder.version().step(device)?;
            binder
                .set_context_mgr()
                .step(&format!("{device}: set context manager"))?;
            let _mapping = binder.map(1 << 20, libc::PROT_READ).step(device)?;
        }
    }
    Ok(())
}

fn module_devices_param(env: &Env) -> Outcome {
    let path = module_path(env)?;
    let _reload = Reload(path);
    kmod::unload(MODULE_NAME).step("unload")?;
    kmod::load(path, "devices=rbtest_a,rbtest_b").step("load with devices=")?;
    ensure!(
        !Path::new(BINDER).exists(),
        "{BINDER} exists without being asked for"
    );
    let param =
        fs::read_to_string("/sys/module/rust_binder/parameters/devices").step("read param")?;
    ensure!(
        param.trim_end() == "rbtest_a,rbtest_b",
        "devices parameter reads {param:?}"
    );
    let a = Binder::open("/dev/rbtest_a").step("open rbtest_a")?;
    let b = Binder::open("/dev/rbtest_b").step("open rbtest_b")?;
    become_manager(&a)?;
    become_manager(&b).map_err(|e| format!("rbtest_b is not a context of its own: {e}"))?;
    drop((a, b));
    kmod::unload(MODULE_NAME).step("unload")?;
    kmod::load(path, "").step("load with defaults")?;
    ensure!(
        Path::new(BINDER).exists(),
        "{BINDER} missing after reload with defaults"
    );
    Ok(())
}

fn module_devices_param_invalid(env: &Env) -> Outcome {
    let path = module_path(env)?;
    let _reload = Reload(path);
    kmod::unload(MODULE_NAME).step("unload")?;
    for params in ["devices=twin,twin", "devices=bad/name"] {
        expect_errno(kmod::load(path, params), libc::EINVAL, params)?;
    }
    kmod::load(path, "").step("load with defaults")?;
    ensure!(Path::new(BINDER).exists(), "{BINDER} missing after reload");
    Ok(())
}
