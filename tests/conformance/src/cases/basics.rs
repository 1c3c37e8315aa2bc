//! Opening devices and the small ioctls: version, thread limits, threads, poll and flush.

use std::{
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    thread,
};

use binder_client::{uapi, Binder, Commands, Return, PROTOCOL_VERSION};

use crate::{
    ensure,
    harness::{
        eventually, expect_errno, expect_null_arg_errno, Case, Env, Outcome, Step, BINDER,
        HWBINDER, VNDBINDER,
    },
};

pub const CASES: &[Case] = &[
    Case::new("open_each_device", open_each_device),
    Case::new("version_is_8", version_is_8),
    Case::new("version_bad_pointer_einval", version_bad_pointer_einval),
    Case::new("set_max_threads", set_max_threads),
    Case::new(
        "set_max_threads_bad_pointer_einval",
        set_max_threads_bad_pointer_einval,
    ),
    Case::new("unknown_ioctl_einval", unknown_ioctl_einval),
    Case::new("idle_ioctls_einval", idle_ioctls_einval),
    Case::new("thread_exit_then_continue", thread_exit_then_continue),
    Case::new(
        "thread_exit_from_other_thread",
        thread_exit_from_other_thread,
    ),
    Case::new("poll_new_thread_needs_return", poll_new_thread_needs_return),
    Case::new("flush_makes_threads_return", flush_makes_threads_return),
    Case::new(
        "epoll_woken_by_own_failed_transaction",
        epoll_woken_by_own_failed_transaction,
    ),
];

fn open_each_device(_: &Env) -> Outcome {
    for path in [BINDER, HWBINDER, VNDBINDER] {
        let binder = Binder::open(path).step(path)?;
        binder.version().step(path)?;
    }
    Ok(())
}

fn version_is_8(_: &Env) -> Outcome {
    let version = Binder::open(BINDER)
        .step("open")?
        .version()
        .step("BINDER_VERSION")?;
    ensure!(
        version == PROTOCOL_VERSION,
        "version {version}, expected {PROTOCOL_VERSION}"
    );
    ensure!(version == 8, "protocol version {version}");
    Ok(())
}

/// The C driver answers a bad pointer with EINVAL, not EFAULT.
fn version_bad_pointer_einval(_: &Env) -> Outcome {
    expect_null_arg_errno(BINDER, uapi::BINDER_VERSION, libc::EINVAL)
}

fn set_max_threads(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    for max in [0, 1, 15, u32::MAX] {
        binder
            .set_max_threads(max)
            .step(&format!("BINDER_SET_MAX_THREADS({max})"))?;
    }
    Ok(())
}

fn set_max_threads_bad_pointer_einval(_: &Env) -> Outcome {
    expect_null_arg_errno(BINDER, uapi::BINDER_SET_MAX_THREADS, libc::EINVAL)
}

fn unknown_ioctl_einval(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let mut arg = 0u64;
    // 'b' ioctls that binder never defined, and a number of another subsystem.
    for request in [0xc0086263u32, 0x40046200, 0x5401] {
        expect_errno(
            binder.ioctl(request, &mut arg),
            libc::EINVAL,
            &format!("ioctl {request:#x}"),
        )?;
    }
    Ok(())
}

/// Defined in the uapi header, implemented by no driver.
fn idle_ioctls_einval(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let mut timeout = 0i64;
    expect_errno(
        binder.ioctl(uapi::BINDER_SET_IDLE_TIMEOUT, &mut timeout),
        libc::EINVAL,
        "BINDER_SET_IDLE_TIMEOUT",
    )?;
    let mut priority = 0i32;
    expect_errno(
        binder.ioctl(uapi::BINDER_SET_IDLE_PRIORITY, &mut priority),
        libc::EINVAL,
        "BINDER_SET_IDLE_PRIORITY",
    )
}

fn thread_exit_then_continue(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    binder.version().step("BINDER_VERSION")?;
    binder.thread_exit().step("BINDER_THREAD_EXIT")?;
    // The next ioctl makes the task a binder thread again.
    binder.version().step("BINDER_VERSION after exit")?;
    binder.thread_exit().step("second BINDER_THREAD_EXIT")?;
    binder
        .thread_exit()
        .step("BINDER_THREAD_EXIT of a fresh thread")
}

fn thread_exit_from_other_thread(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    binder.version().step("BINDER_VERSION")?;
    thread::scope(|s| {
        s.spawn(|| -> Outcome {
            binder.version().step("BINDER_VERSION on second thread")?;
            binder
                .thread_exit()
                .step("BINDER_THREAD_EXIT on second thread")
        })
        .join()
        .map_err(|_| "second thread panicked".to_string())?
    })?;
    binder
        .version()
        .step("BINDER_VERSION on first thread")
        .map(drop)
}

/// Polls `binder` without waiting; returns the events.
fn poll_now(binder: &Binder) -> Outcome<i16> {
    let mut pfd = libc::pollfd {
        fd: binder.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    ensure!(n >= 0, "poll: {}", std::io::Error::last_os_error());
    Ok(pfd.revents)
}

/// A thread is created with "needs to return to userspace" set, which poll reports as
/// readable; the end of its first ioctl clears it.
fn poll_new_thread_needs_return(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let events = poll_now(&binder)?;
    ensure!(
        events == libc::POLLIN,
        "first poll of a new thread: events {events:#x}, expected POLLIN"
    );
    binder.version().step("BINDER_VERSION")?;
    let events = poll_now(&binder)?;
    ensure!(
        events == 0,
        "poll after an ioctl: events {events:#x}, expected none"
    );
    Ok(())
}

/// Closing a descriptor of the file (flush) tells every thread to return to userspace.
fn flush_makes_threads_return(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    binder.version().step("BINDER_VERSION")?;
    ensure!(poll_now(&binder)? == 0, "poll before flush reports work");
    // SAFETY: `dup` of our open descriptor; the duplicate is closed right away.
    let dup = unsafe { libc::dup(binder.as_raw_fd()) };
    ensure!(dup >= 0, "dup: {}", std::io::Error::last_os_error());
    // SAFETY: `dup` is ours and not used after this.
    unsafe { libc::close(dup) };
    eventually("POLLIN after flush", || {
        Ok((poll_now(&binder)? == libc::POLLIN).then_some(()))
    })?;
    binder
        .version()
        .step("BINDER_VERSION after flush")
        .map(drop)
}

/// Waits on `epoll` without blocking; returns how many events it reported.
fn epoll_now(epoll: &OwnedFd) -> Outcome<i32> {
    let mut event = libc::epoll_event { events: 0, u64: 0 };
    // SAFETY: `event` has room for the one event asked for.
    let n = unsafe { libc::epoll_wait(epoll.as_raw_fd(), &mut event, 1, 0) };
    ensure!(n >= 0, "epoll_wait: {}", std::io::Error::last_os_error());
    Ok(n)
}

/// A thread that waits through an edge-triggered epoll queues work for itself (the
/// BR_FAILED_REPLY of a transaction to a handle it does not have): C wakes a polling thread
/// for its own work, so the epoll reports the file readable without any read.
fn epoll_woken_by_own_failed_transaction(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    // Clears the new thread's "needs to return", which reads as readable.
    binder.version().step("BINDER_VERSION")?;
    // SAFETY: Plain syscall.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    ensure!(
        fd >= 0,
        "epoll_create1: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `fd` was just created and is owned by nothing else.
    let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut event = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET) as u32,
        u64: 1,
    };
    // SAFETY: Both descriptors are open; `event` is valid for the call.
    let added = unsafe {
        libc::epoll_ctl(
            epoll.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            binder.as_raw_fd(),
            &mut event,
        )
    };
    ensure!(added == 0, "epoll_ctl: {}", std::io::Error::last_os_error());
    ensure!(epoll_now(&epoll)? == 0, "readable before any work");
    binder
        .send(&Commands::new().transaction(false, 99, 1, 0, b"x"))
        .step("transaction to an unknown handle")?;
    ensure!(
        epoll_now(&epoll)? == 1,
        "the thread's own BR_FAILED_REPLY did not wake its epoll"
    );
    let returns = binder.read().step("read")?;
    ensure!(
        returns.contains(&Return::FailedReply),
        "read {returns:?}, expected BR_FAILED_REPLY"
    );
    Ok(())
}
