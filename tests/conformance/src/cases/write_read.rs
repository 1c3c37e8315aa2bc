//! BINDER_WRITE_READ itself: the two halves, consumed counts, blocking and errors, and the
//! commands that need no transaction (loopers, reference counts, freeing).

use std::{os::fd::AsRawFd, sync::mpsc, thread, time::Duration};

use binder_client::{uapi, Binder, Commands, Return};

use crate::{
    ensure,
    harness::{
        expect_errno, expect_null_arg_errno, in_child, Case, Driver, Env, Exit, GuardedPage,
        Outcome, Step, BINDER,
    },
};

use super::context_mgr::become_manager;

pub const CASES: &[Case] = &[
    Case::new("write_read_null_arg_efault", write_read_null_arg_efault),
    Case::new("write_read_nothing_to_do", write_read_nothing_to_do),
    Case::new("read_new_thread_returns_noop", read_new_thread_returns_noop),
    Case::new("read_nonblock_eagain", read_nonblock_eagain),
    Case::new("read_bad_buffer_efault", read_bad_buffer_efault),
    Case::new("read_woken_by_flush", read_woken_by_flush),
    Case::new(
        "read_interrupted_by_signal_eintr",
        read_interrupted_by_signal_eintr,
    ),
    Case::new("write_bad_buffer_efault", write_bad_buffer_efault),
    Case::new("write_unknown_command_einval", write_unknown_command_einval),
    Case::new("write_attempt_acquire_einval", write_attempt_acquire_einval),
    Case::new(
        "write_resumes_at_write_consumed",
        write_resumes_at_write_consumed,
    ),
    Case::new("write_error_skips_read", write_error_skips_read),
    Case::new(
        "write_commands_up_to_a_guard_page",
        write_commands_up_to_a_guard_page,
    ),
    Case::new("looper_commands_accepted", looper_commands_accepted),
    Case::new(
        "refcount_on_unknown_handle_ignored",
        refcount_on_unknown_handle_ignored,
    ),
    Case::new("free_unknown_buffer_ignored", free_unknown_buffer_ignored),
    Case::new("manager_ref_to_itself_einval", manager_ref_to_itself_einval),
    Case::new("refcounts_on_manager_handle", refcounts_on_manager_handle),
    Case::only(
        Driver::Rust,
        "write_argument_past_write_size_efault",
        write_argument_past_write_size_efault,
    ),
    Case::only(
        Driver::Rust,
        "read_buffer_under_four_bytes_gets_nothing",
        read_buffer_under_four_bytes_gets_nothing,
    ),
];

/// Opens the device and makes one ioctl, so that the thread no longer has its initial "return
/// to userspace" flag set and a read really waits.
fn open_settled(flags: i32) -> Outcome<Binder> {
    let binder = Binder::open_with_flags(BINDER, flags).step("open")?;
    binder.version().step("BINDER_VERSION")?;
    Ok(binder)
}

fn write_read_null_arg_efault(_: &Env) -> Outcome {
    expect_null_arg_errno(BINDER, uapi::BINDER_WRITE_READ, libc::EFAULT)
}

fn write_read_nothing_to_do(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let mut bwr = uapi::binder_write_read::default();
    binder
        .write_read_raw(&mut bwr)
        .step("BINDER_WRITE_READ with empty halves")?;
    ensure!(
        bwr.write_consumed == 0 && bwr.read_consumed == 0,
        "consumed counts moved: {bwr:?}"
    );
    Ok(())
}

/// A new thread has "return to userspace" set, so its first read returns at once with the
/// BR_NOOP every fresh read buffer starts with.
fn read_new_thread_returns_noop(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let returns = binder.read().step("first read")?;
    ensure!(returns == [Return::Noop], "first read returned {returns:?}");
    Ok(())
}

/// Nothing to read on a non-blocking file: EAGAIN, and nothing reported as read.
fn read_nonblock_eagain(_: &Env) -> Outcome {
    let binder = open_settled(libc::O_NONBLOCK)?;
    let mut buffer = [0u8; 64];
    let done = binder.write_read_at(&[], 0, &mut buffer, 0);
    expect_errno(done.result, libc::EAGAIN, "non-blocking read")?;
    ensure!(
        done.read_consumed == 0,
        "read_consumed {} after EAGAIN",
        done.read_consumed
    );
    Ok(())
}

fn read_bad_buffer_efault(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let mut bwr = uapi::binder_write_read {
        read_size: 64,
        ..Default::default()
    };
    expect_errno(
        binder.write_read_raw(&mut bwr),
        libc::EFAULT,
        "read into NULL",
    )
}

/// Closing a descriptor of the file wakes a thread blocked reading.
fn read_woken_by_flush(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let (ready_tx, ready_rx) = mpsc::channel();
    thread::scope(|s| {
        let reader = s.spawn(|| -> Outcome<Vec<Return>> {
            binder.version().step("BINDER_VERSION on the reader")?;
            ready_tx.send(()).map_err(|e| e.to_string())?;
            binder.read().step("blocking read")
        });
        ready_rx.recv().map_err(|e| e.to_string())?;
        // SAFETY: `dup` of an open descriptor; the duplicate is closed right away.
        let dup = unsafe { libc::dup(binder.as_raw_fd()) };
        ensure!(dup >= 0, "dup: {}", std::io::Error::last_os_error());
        // SAFETY: `dup` is ours and not used after this.
        unsafe { libc::close(dup) };
        let returns = reader.join().map_err(|_| "reader panicked".to_string())??;
        ensure!(returns == [Return::Noop], "woken read returned {returns:?}");
        Ok(())
    })
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// A signal ends a blocked read with EINTR (the handler is installed without SA_RESTART).
fn read_interrupted_by_signal_eintr(_: &Env) -> Outcome {
    // SAFETY: Installs a handler that does nothing, for SIGUSR1 only.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ignore_signal as extern "C" fn(libc::c_int) as usize;
        ensure!(
            libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()) == 0,
            "sigaction"
        );
    }
    let binder = open_settled(0)?;
    let (tid_tx, tid_rx) = mpsc::channel();
    thread::scope(|s| {
        let reader = s.spawn(|| -> Outcome<std::io::Result<Vec<Return>>> {
            binder.version().step("BINDER_VERSION on the reader")?;
            // SAFETY: Plain syscall.
            tid_tx
                .send(unsafe { libc::gettid() })
                .map_err(|e| e.to_string())?;
            Ok(binder.read())
        });
        let tid = tid_rx.recv().map_err(|e| e.to_string())?;
        // The reader may not be waiting yet when a signal comes; signal until it returns.
        while !reader.is_finished() {
            // SAFETY: Plain syscall; `tid` is the reader thread of this process.
            unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGUSR1) };
            thread::sleep(Duration::from_millis(20));
        }
        let result = reader.join().map_err(|_| "reader panicked".to_string())??;
        expect_errno(result, libc::EINTR, "interrupted read")
    })
}

fn write_bad_buffer_efault(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let mut bwr = uapi::binder_write_read {
        write_size: 4,
        ..Default::default()
    };
    expect_errno(
        binder.write_read_raw(&mut bwr),
        libc::EFAULT,
        "write from NULL",
    )?;
    ensure!(
        bwr.write_consumed == 0,
        "write_consumed {}",
        bwr.write_consumed
    );
    Ok(())
}

/// An unknown command fails the ioctl; the commands before it stay consumed.
fn write_unknown_command_einval(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let done = binder.write(&Commands::new().enter_looper().word(0x1234_5678));
    expect_errno(done.result, libc::EINVAL, "unknown command")?;
    ensure!(
        done.write_consumed == 4,
        "write_consumed {}, expected 4",
        done.write_consumed
    );
    Ok(())
}

/// No binder driver implements BC_ATTEMPT_ACQUIRE or BC_ACQUIRE_RESULT.
fn write_attempt_acquire_einval(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let attempt = Commands::new()
        .word(uapi::BC_ATTEMPT_ACQUIRE)
        .word(0)
        .word(0);
    let done = binder.write(&attempt);
    expect_errno(done.result, libc::EINVAL, "BC_ATTEMPT_ACQUIRE")?;
    ensure!(
        done.write_consumed == 0,
        "write_consumed {}",
        done.write_consumed
    );
    let done = binder.write(&Commands::new().word(uapi::BC_ACQUIRE_RESULT).word(0));
    expect_errno(done.result, libc::EINVAL, "BC_ACQUIRE_RESULT")
}

/// The write half starts at `write_consumed`, so a caller can resume after a failure.
fn write_resumes_at_write_consumed(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let commands = Commands::new().word(0xbad).enter_looper().exit_looper();
    let done = binder.write_read_at(commands.as_bytes(), 4, &mut [], 0);
    done.result.step("write from offset 4")?;
    ensure!(
        done.write_consumed == 12,
        "write_consumed {}, expected 12",
        done.write_consumed
    );
    Ok(())
}

/// A failed write half reads nothing.
fn write_error_skips_read(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let mut buffer = [0u8; 64];
    let done = binder.write_read_at(Commands::new().word(0xbad).as_bytes(), 0, &mut buffer, 0);
    expect_errno(done.result, libc::EINVAL, "bad command")?;
    ensure!(
        done.read_consumed == 0,
        "read_consumed {}",
        done.read_consumed
    );
    Ok(())
}

/// Looper commands never fail, in or out of order (misuse only marks the thread).
fn looper_commands_accepted(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    for commands in [
        Commands::new().enter_looper().enter_looper(),
        Commands::new().register_looper(),
        Commands::new().exit_looper().enter_looper(),
    ] {
        let done = binder.write(&commands);
        done.result.step("looper commands")?;
        ensure!(
            done.write_consumed == commands.len() as u64,
            "write_consumed {}",
            done.write_consumed
        );
    }
    Ok(())
}

/// Reference counting on a handle the process does not have is skipped, not an error.
fn refcount_on_unknown_handle_ignored(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let commands = Commands::new()
        .increfs(5)
        .acquire(6)
        .release(7)
        .decrefs(8)
        .release(0);
    let done = binder.write(&commands);
    done.result.step("reference counts on unknown handles")?;
    ensure!(
        done.write_consumed == commands.len() as u64,
        "write_consumed {}",
        done.write_consumed
    );
    Ok(())
}

fn free_unknown_buffer_ignored(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let _mapping = binder.map(1 << 20, libc::PROT_READ).step("mmap")?;
    let done = binder.write(&Commands::new().free_buffer(0x1000).free_buffer(0));
    done.result.step("BC_FREE_BUFFER of unknown buffers")
}

/// The context manager may not take a reference on itself through handle 0.
fn manager_ref_to_itself_einval(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    become_manager(&binder)?;
    for commands in [Commands::new().acquire(0), Commands::new().increfs(0)] {
        let done = binder.write(&commands);
        expect_errno(
            done.result,
            libc::EINVAL,
            "manager taking a reference to handle 0",
        )?;
        ensure!(
            done.write_consumed == 0,
            "write_consumed {}",
            done.write_consumed
        );
    }
    // Releasing a reference it never had is merely skipped.
    binder
        .write(&Commands::new().release(0).decrefs(0))
        .result
        .step("release on handle 0")
}

/// Another process takes and drops references to the manager through handle 0.
fn refcounts_on_manager_handle(_: &Env) -> Outcome {
    let manager = Binder::open(BINDER).step("open")?;
    become_manager(&manager)?;
    let exit = in_child(|| {
        let binder = Binder::open(BINDER).step("open in child")?;
        let commands = Commands::new()
            .increfs(0)
            .acquire(0)
            .acquire(0)
            .release(0)
            .release(0)
            .release(0) // One too many: skipped.
            .decrefs(0)
            .decrefs(0); // The handle is gone by now: skipped.
        let done = binder.write(&commands);
        done.result.step("reference counts on handle 0")?;
        ensure!(
            done.write_consumed == commands.len() as u64,
            "write_consumed {}",
            done.write_consumed
        );
        Ok(())
    })?;
    ensure!(exit == Exit::Ok, "child: {exit:?}");
    Ok(())
}

/// Commands that end where a page nobody may read starts, with `write_size` running 8 bytes
/// into that page: every command before the page is carried out (the driver reads each when
/// it comes to it, not further ahead), and the write fails with EFAULT at the first command
/// in the page, with exactly the commands before it consumed.
fn write_commands_up_to_a_guard_page(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let guarded = GuardedPage::new()?;
    // Commands of 4 to 12 bytes, none a transaction. A weak reference on a handle nobody has
    // and a death confirmation nobody waits for are logged and skipped.
    let commands = Commands::new()
        .enter_looper()
        .increfs(7)
        .exit_looper()
        .dead_binder_done(0x1234);
    let len = commands.len() as u64;
    let start = guarded.guard() - len;
    // SAFETY: `start..guard` lies in the writable first page of `guarded`, which lives until
    // the end of this function.
    unsafe {
        std::ptr::copy_nonoverlapping(
            commands.as_bytes().as_ptr(),
            start as *mut u8,
            commands.len(),
        )
    };
    let mut bwr = uapi::binder_write_read {
        write_buffer: start,
        write_size: len + 8,
        ..Default::default()
    };
    expect_errno(
        binder.write_read_raw(&mut bwr),
        libc::EFAULT,
        "a write that runs into the guard page",
    )?;
    ensure!(
        bwr.write_consumed == len,
        "write_consumed {}, expected {len} (every command before the guard page)",
        bwr.write_consumed
    );
    Ok(())
}

/// A command whose argument runs past `write_size`. The C driver reads the argument from
/// beyond the end of the write buffer; rust_binder, deliberately stricter (see the README),
/// fails the write with EFAULT, having consumed the whole commands before it.
fn write_argument_past_write_size_efault(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let commands = Commands::new().enter_looper().increfs(1);
    // BC_ENTER_LOOPER, then BC_INCREFS without its handle.
    let cut = &commands.as_bytes()[..8];
    let done = binder.write_read_at(cut, 0, &mut [], 0);
    expect_errno(
        done.result,
        libc::EFAULT,
        "BC_INCREFS cut off by write_size",
    )?;
    ensure!(
        done.write_consumed == 4,
        "write_consumed {}, expected 4 (BC_ENTER_LOOPER alone)",
        done.write_consumed
    );
    Ok(())
}

/// A read buffer with room for less than one return word. The C driver writes a whole
/// 4-byte BR_NOOP into it anyway; rust_binder, deliberately stricter (see the README), writes
/// nothing there and fails the read with EFAULT.
fn read_buffer_under_four_bytes_gets_nothing(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let mut buffer = [0xa5u8; 8];
    let done = binder.write_read_at(&[], 0, &mut buffer[..3], 0);
    expect_errno(done.result, libc::EFAULT, "a read into 3 bytes")?;
    ensure!(
        done.read_consumed == 0 && buffer == [0xa5; 8],
        "read_consumed {}, buffer {buffer:x?}: the driver wrote into a 3-byte read buffer",
        done.read_consumed
    );
    Ok(())
}
