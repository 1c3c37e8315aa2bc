//! Mapping the receive buffer: the C driver's rules.

use binder_client::Binder;

use crate::{
    ensure,
    harness::{expect_errno, in_child, Case, Env, Exit, Outcome, Step, BINDER},
};

pub const CASES: &[Case] = &[
    Case::new("mmap_read_only", mmap_read_only),
    Case::new("mmap_writable_eperm", mmap_writable_eperm),
    Case::new("mmap_twice_ebusy", mmap_twice_ebusy),
    Case::new("mmap_after_munmap_ebusy", mmap_after_munmap_ebusy),
    Case::new("mmap_larger_than_4mib", mmap_larger_than_4mib),
    Case::new(
        "mmap_from_forked_child_einval",
        mmap_from_forked_child_einval,
    ),
    Case::new("mmap_pages_are_lazy_sigbus", mmap_pages_are_lazy_sigbus),
    Case::new("mmap_mprotect_write_eacces", mmap_mprotect_write_eacces),
    Case::new("mmap_not_inherited_by_fork", mmap_not_inherited_by_fork),
];

const MAP_SIZE: usize = 1 << 20;

fn mmap_read_only(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let mapping = binder.map(MAP_SIZE, libc::PROT_READ).step("mmap")?;
    ensure!(mapping.len() == MAP_SIZE, "mapped {} bytes", mapping.len());
    binder.version().step("BINDER_VERSION after mmap").map(drop)
}

fn mmap_writable_eperm(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    expect_errno(
        binder.map(MAP_SIZE, libc::PROT_READ | libc::PROT_WRITE),
        libc::EPERM,
        "mmap RW",
    )?;
    // A refused mapping does not use up the one mapping a file may have.
    binder
        .map(MAP_SIZE, libc::PROT_READ)
        .step("mmap read-only after refusal")
        .map(drop)
}

fn mmap_twice_ebusy(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let _first = binder.map(MAP_SIZE, libc::PROT_READ).step("first mmap")?;
    expect_errno(
        binder.map(MAP_SIZE, libc::PROT_READ),
        libc::EBUSY,
        "second mmap",
    )
}

fn mmap_after_munmap_ebusy(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    binder
        .map(MAP_SIZE, libc::PROT_READ)
        .step("first mmap")?
        .unmap()
        .step("munmap")?;
    expect_errno(
        binder.map(MAP_SIZE, libc::PROT_READ),
        libc::EBUSY,
        "mmap after munmap",
    )
}

/// A larger mapping is accepted; binder just uses the first 4 MiB of it.
fn mmap_larger_than_4mib(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    binder
        .map(8 << 20, libc::PROT_READ)
        .step("mmap 8 MiB")
        .map(drop)
}

/// Only the thread group that opened the device may map it.
fn mmap_from_forked_child_einval(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let exit = in_child(|| {
        expect_errno(
            binder.map(MAP_SIZE, libc::PROT_READ),
            libc::EINVAL,
            "mmap in forked child",
        )
    })?;
    ensure!(exit == Exit::Ok, "{exit:?}");
    // The parent may still map it.
    binder
        .map(MAP_SIZE, libc::PROT_READ)
        .step("mmap in parent")
        .map(drop)
}

/// No page is put in before a buffer needs it: touching the mapping faults with SIGBUS.
fn mmap_pages_are_lazy_sigbus(_: &Env) -> Outcome {
    let exit = in_child(|| {
        let binder = Binder::open(BINDER).step("open")?;
        let mapping = binder.map(MAP_SIZE, libc::PROT_READ).step("mmap")?;
        // SAFETY: The address is mapped (readable); the kernel is expected to refuse the page.
        let byte = unsafe { mapping.addr().read_volatile() };
        Err(format!("read {byte:#x} from an unused page"))
    })?;
    ensure!(
        exit == Exit::Signal(libc::SIGBUS),
        "reading an unused page: {exit:?}, expected SIGBUS"
    );
    Ok(())
}

/// The mapping can never become writable.
fn mmap_mprotect_write_eacces(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let mapping = binder.map(MAP_SIZE, libc::PROT_READ).step("mmap")?;
    expect_errno(
        mapping.protect(libc::PROT_READ | libc::PROT_WRITE),
        libc::EACCES,
        "mprotect RW",
    )
}

/// The mapping is not copied into a forked child.
fn mmap_not_inherited_by_fork(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let mapping = binder.map(MAP_SIZE, libc::PROT_READ).step("mmap")?;
    let addr = mapping.addr() as usize;
    let exit = in_child(|| {
        // SAFETY: Reading an address the parent mapped; the child is expected not to have it.
        let byte = unsafe { (addr as *const u8).read_volatile() };
        Err(format!(
            "child read {byte:#x} from the parent's binder mapping"
        ))
    })?;
    ensure!(
        exit == Exit::Signal(libc::SIGSEGV),
        "child touching the mapping: {exit:?}, expected SIGSEGV"
    );
    Ok(())
}
