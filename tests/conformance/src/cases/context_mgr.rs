//! BINDER_SET_CONTEXT_MGR and _EXT: one manager per device, and the euid latch.

use binder_client::{uapi, Binder, Commands, FlatObject, Payload, Return};

use crate::{
    ensure,
    harness::{
        eventually, expect_errno, expect_null_arg_errno, in_child, park, spawn_ready, Case, Env,
        Exit, Outcome, Step, BINDER, HWBINDER, VNDBINDER,
    },
};

use super::peer::{spawn_manager, Peer};

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
    Case::new(
        "context_mgr_former_node_sent_as_ordinary_handle",
        context_mgr_former_node_sent_as_ordinary_handle,
    ),
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

/// Becomes the manager of `binder`'s device with BINDER_SET_CONTEXT_MGR_EXT, waiting like
/// [`become_manager`].
pub fn become_manager_ext(binder: &Binder, ptr: u64, cookie: u64, flags: u32) -> Outcome {
    eventually("BINDER_SET_CONTEXT_MGR_EXT", || {
        match binder.set_context_mgr_ext(ptr, cookie, flags) {
            Ok(()) => Ok(Some(())),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(None),
            Err(e) => Err(format!("BINDER_SET_CONTEXT_MGR_EXT: {e}")),
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

/// A client takes handle 0 while M1 is the manager and keeps it after M1 died: the handle now
/// names M1's dead node, which is no longer the manager's. M2 becomes the manager, and the
/// client calls it (a call to handle 0 always goes to the current manager) with its handle 0
/// as a BINDER_TYPE_HANDLE object. The C driver translates the object through the client's
/// reference, to M1's node, and gives M2 an ordinary handle for it, the lowest from 1: handle
/// 1, on which a death notification is answered at once.
fn context_mgr_former_node_sent_as_ordinary_handle(_: &Env) -> Outcome {
    let first = spawn_ready(|ready| {
        let _manager = Peer::manager()?;
        ready();
        park()
    })?;
    let c = Peer::open()?;
    c.send(
        Commands::new()
            .enter_looper()
            .acquire(0)
            .request_death_notification(0, 0x81),
        "take handle 0 and watch it",
    )?;
    first.kill()?;
    while !c.read()?.contains(&Return::DeadBinder(0x81)) {}
    c.send(
        Commands::new().dead_binder_done(0x81),
        "done with the first manager's death",
    )?;

    let second = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        let objects = m.objects(&call)?;
        ensure!(
            objects == [FlatObject::handle(1)],
            "the new manager got {objects:?} for the client's handle to the old manager's node"
        );
        m.send(
            Commands::new().acquire(1).free_buffer(call.buffer),
            "keep handle 1",
        )?;
        m.reply(&call, &Payload::new())?;
        m.send(
            Commands::new().request_death_notification(1, 0x82),
            "watch handle 1",
        )?;
        let returns = m.pending()?;
        ensure!(
            returns == [Return::DeadBinder(0x82)],
            "a death request on handle 1 read {returns:?}"
        );
        m.send(
            Commands::new().dead_binder_done(0x82).release(1),
            "done with handle 1",
        )
    })?;
    let exchange = c.call(0, 1, &Payload::new().object(FlatObject::handle(0)))?;
    // The manager's verdict first: it fails the call by ending when the object is wrong.
    second.join()?;
    let reply = exchange
        .reply
        .ok_or_else(|| format!("the call failed: {:?}", exchange.returns))?;
    c.free(&reply)
}
