// SPDX-License-Identifier: GPL-2.0

//! The registry of open processes, for the ioctls that name a process by its pid.
//!
//! `BINDER_FREEZE` and `BINDER_GET_FROZEN_INFO` act on every binder process of a thread group,
//! whichever device it opened, as the C driver does with its global list of procs. A process
//! is registered when its file is opened and leaves the registry when its release begins, so
//! the registry's reference to it is never the last one and never part of a cycle.
//!
//! The registry's mutex is the outermost lock of the driver: under it, only a process's
//! `inner` lock is taken (see [`for_each_of`]).

use kernel::{
    prelude::*,
    sync::Arc, //
};

use crate::process::Process;

kernel::sync::global_lock! {
    // SAFETY: `init` is called by the module's initialiser, before any device is registered
    // and so before anything else uses the lock.
    unsafe(uninit) static PROCESSES: Mutex<KVec<Arc<Process>>> = KVec::new();
}

/// Initialises the registry's lock; called once, when the module is loaded.
pub(crate) fn init() {
    // SAFETY: Called once, from the module's initialiser, before any other use of the lock.
    unsafe { PROCESSES.init() };
}

/// Registers a newly opened process; returns whether another process of its thread group
/// was registered already (the C driver then makes no second debugfs file for the pid).
pub(crate) fn add(process: &Arc<Process>) -> Result<bool> {
    let mut list = PROCESSES.lock();
    let pid_was_open = list.iter().any(|p| p.pid() == process.pid());
    list.push(process.clone(), GFP_KERNEL)?;
    Ok(pid_was_open)
}

/// Every registered process, oldest first, for the log files to walk without the registry's
/// lock. The caller drops the list without holding any lock (it may hold the last reference
/// to a released process).
pub(crate) fn snapshot() -> Result<KVec<Arc<Process>>> {
    let list = PROCESSES.lock();
    let mut all = KVec::with_capacity(list.len(), GFP_KERNEL)?;
    for process in list.iter() {
        all.push(process.clone(), GFP_KERNEL)?;
    }
    Ok(all)
}

/// Takes `process` out of the registry, if it is there; returns the registry's reference, for
/// the caller to drop after the lock.
pub(crate) fn remove(process: &Process) -> Option<Arc<Process>> {
    let mut list = PROCESSES.lock();
    let index = list
        .iter()
        .position(|p| core::ptr::eq::<Process>(&**p, process))?;
    list.remove(index).ok()
}

/// The processes of the thread group `pid`, newest first (the C driver's order), or `EINVAL`
/// if there is none.
pub(crate) fn processes_of(pid: u32) -> Result<KVec<Arc<Process>>> {
    let list = PROCESSES.lock();
    let mut found = KVec::new();
    for process in list.iter().rev().filter(|p| p.has_pid(pid)) {
        found.push(process.clone(), GFP_KERNEL)?;
    }
    if found.is_empty() {
        return Err(EINVAL);
    }
    Ok(found)
}

/// Runs `f` on each process of the thread group `pid`, with the registry locked (`f` may take
/// the process's `inner` lock, nothing else); `EINVAL` if there is none.
pub(crate) fn for_each_of(pid: u32, mut f: impl FnMut(&Process)) -> Result {
    let list = PROCESSES.lock();
    let mut found = false;
    for process in list.iter().filter(|p| p.has_pid(pid)) {
        found = true;
        f(process);
    }
    if found {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// Empties the registry when the module is unloaded: by then every process was released, so
/// there is nothing left but the list's memory, freed here.
pub(crate) fn shutdown() {
    let list = core::mem::take(&mut *PROCESSES.lock());
    if !list.is_empty() {
        pr_err!("{} processes still registered at unload\n", list.len());
    }
    drop(list);
}
