//! BINDER_SET_CONTEXT_MGR and _EXT: one manager per device, and the euid latch.

use binder_client::{uapi, Binder};

use crate::{
    ensure,
    harness::{
        eventually, expect_errno, expect_null_arg_errno, in_child, Case, Env, Exit, Outcome, Step,
        BINDER, HWBINDER, VNDBINDER,
    },
};

pub const CASES: &[Case] = &[
    Case::new("context_mgr_set_once", context_mgr_set_once),
    Case::new(
        "context_mgr_busy_for_other_process",
        context_mgr_busy_for_other_process,
    ),
    Case::new(
        "context_mgr_busy_for_second_open",
        context_mgr_busy_for_second_open,
    ),
    Case::new("context_mgr_ext", context_mgr_ext),
    Case::new(
        "context_mgr_ext_bad_pointer_einval",
        context_mgr_ext_bad_pointer_einval,
    ),
    Case::new("context_mgr_per_device", context_mgr_per_device),
    Case::new(
        "context_mgr_freed_when_manager_closes",
        context_mgr_freed_when_manager_closes,
    ),
    Case::new("context_mgr_euid_latched", context_mgr_euid_latched),
];

/// Becomes the manager of `binder`'s device, waiting while an earlier case's manager is
/// still being released (the C driver releases a closed process from a workqueue).
pub fn become_manager(binder: &Binder) -> Outcome {
    eventually("BINDER_SET_CONTEXT_MGR", || {
        match binder.set_context_mgr() {
            Ok(()) => Ok(Some(())),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(None),
            Err(e) => Err(format!("BINDER_SET_CONTEXT_MGR: {e}")),
        }
    })
}

fn context_mgr_set_once(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    become_manager(&binder)?;
    expect_errno(
        binder.set_context_mgr(),
        libc::EBUSY,
        "second BINDER_SET_CONTEXT_MGR",
    )?;
    expect_errno(
        binder.set_context_mgr_ext(0, 0, 0),
        libc::EBUSY,
        "BINDER_SET_CONTEXT_MGR_EXT after BINDER_SET_CONTEXT_MGR",
    )
}

fn context_mgr_busy_for_other_process(_: &Env) -> Outcome {
    let manager = Binder::open(BINDER).step("open")?;
    become_manager(&manager)?;
    let exit = in_child(|| {
        let other = Binder::open(BINDER).step("open in child")?;
        expect_errno(
            other.set_context_mgr(),
            libc::EBUSY,
            "BINDER_SET_CONTEXT_MGR in child",
        )
    })?;
    ensure!(exit == Exit::Ok, "{exit:?}");
    Ok(())
}

/// Two opens of a device by one process are two binder processes.
fn context_mgr_busy_for_second_open(_: &Env) -> Outcome {
    let first = Binder::open(BINDER).step("first open")?;
    let second = Binder::open(BINDER).step("second open")?;
    become_manager(&first)?;
    expect_errno(
        second.set_context_mgr(),
        libc::EBUSY,
        "BINDER_SET_CONTEXT_MGR on second open",
    )
}

fn context_mgr_ext(_: &Env) -> Outcome {
    let binder = Binder::open(HWBINDER).step("open")?;
    let flags = uapi::FLAT_BINDER_FLAG_ACCEPTS_FDS | 0x7f;
    eventually("BINDER_SET_CONTEXT_MGR_EXT", || {
        match binder.set_context_mgr_ext(0x1000, 0x2000, flags) {
            Ok(()) => Ok(Some(())),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(None),
            Err(e) => Err(format!("BINDER_SET_CONTEXT_MGR_EXT: {e}")),
        }
    })?;
    expect_errno(
        binder.set_context_mgr(),
        libc::EBUSY,
        "BINDER_SET_CONTEXT_MGR after _EXT",
    )
}

/// The C driver answers a bad pointer with EINVAL, not EFAULT.
fn context_mgr_ext_bad_pointer_einval(_: &Env) -> Outcome {
    expect_null_arg_errno(VNDBINDER, uapi::BINDER_SET_CONTEXT_MGR_EXT, libc::EINVAL)
}

/// Each device is a context of its own, with its own manager.
fn context_mgr_per_device(_: &Env) -> Outcome {
    let devices = [BINDER, HWBINDER, VNDBINDER];
    let mut managers = Vec::new();
    for path in devices {
        let binder = Binder::open(path).step(path)?;
        become_manager(&binder).map_err(|e| format!("{path}: {e}"))?;
        managers.push(binder);
    }
    for path in devices {
        let other = Binder::open(path).step(path)?;
        expect_errno(
            other.set_context_mgr(),
            libc::EBUSY,
            &format!("second manager of {path}"),
        )?;
    }
    Ok(())
}

fn context_mgr_freed_when_manager_closes(_: &Env) -> Outcome {
    let exit = in_child(|| {
        let binder = Binder::open(BINDER).step("open in child")?;
        become_manager(&binder)
    })?;
    ensure!(exit == Exit::Ok, "child manager: {exit:?}");
    // The child's file is closed; its manager slot must become free again.
    let binder = Binder::open(BINDER).step("open")?;
    become_manager(&binder)
}

/// The first manager's euid is latched for the device: later, with the slot free, another
/// euid gets EPERM while the latched one may become manager again.
fn context_mgr_euid_latched(_: &Env) -> Outcome {
    // SAFETY: Plain syscall, no memory involved.
    ensure!(
        unsafe { libc::geteuid() } == 0,
        "the suite must run as root"
    );
    let exit = in_child(|| {
        let binder = Binder::open(VNDBINDER).step("open")?;
        become_manager(&binder)
    })?;
    ensure!(exit == Exit::Ok, "root manager: {exit:?}");

    let binder = Binder::open(VNDBINDER).step("open")?;
    // Wait for the slot to be free, then give it back at once, so that the EPERM below cannot
    // be an EBUSY in disguise.
    let probe = Binder::open(VNDBINDER).step("open probe")?;
    become_manager(&probe)?;
    drop(probe);
    // SAFETY: Plain syscall, no memory involved.
    ensure!(
        unsafe { libc::seteuid(1000) } == 0,
        "seteuid(1000): {}",
        std::io::Error::last_os_error()
    );
    let as_user = eventually("manager slot free for uid 1000", || {
        match binder.set_context_mgr() {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(None),
            other => Ok(Some(other)),
        }
    });
    // SAFETY: Plain syscall, no memory involved.
    ensure!(
        unsafe { libc::seteuid(0) } == 0,
        "seteuid(0): {}",
        std::io::Error::last_os_error()
    );
    expect_errno(as_user?, libc::EPERM, "BINDER_SET_CONTEXT_MGR as euid 1000")?;
    become_manager(&binder)
}
