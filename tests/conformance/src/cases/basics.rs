//! Opening devices and the small ioctls: version, thread limits, threads, poll and flush.

use std::{os::fd::AsRawFd, thread};

use binder_client::{uapi, Binder, PROTOCOL_VERSION};

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
