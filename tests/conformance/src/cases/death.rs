//! Death notifications on handle 0: request, clear, BR_DEAD_BINDER when the context manager
//! dies, BC_DEAD_BINDER_DONE, and the misuse the C driver skips.

use std::{os::fd::AsRawFd, thread};

use binder_client::{Binder, Commands, Return};

use crate::{
    ensure,
    harness::{expect_errno, spawn_ready, Case, Child, Env, Epoll, Outcome, Step, BINDER},
};

use super::context_mgr::become_manager;

pub const CASES: &[Case] = &[
    Case::new("death_request_then_clear", death_request_then_clear),
    Case::new(
        "death_delivered_when_manager_dies",
        death_delivered_when_manager_dies,
    ),
    Case::new(
        "death_requested_after_the_death",
        death_requested_after_the_death,
    ),
    Case::new("death_clear_waits_for_done", death_clear_waits_for_done),
    Case::new(
        "death_done_from_non_looper_thread",
        death_done_from_non_looper_thread,
    ),
    Case::new("death_misuse_is_skipped", death_misuse_is_skipped),
    Case::new("death_wakes_poll", death_wakes_poll),
    Case::new("thread_exit_with_epoll", thread_exit_with_epoll),
];

/// A context manager running in a child process until it is killed.
struct Manager(Child);

impl Manager {
    /// Starts a child that becomes the manager of BINDER and then waits to be killed.
    fn start() -> Outcome<Self> {
        spawn_ready(|ready| {
            let binder = Binder::open(BINDER).step("open in manager")?;
            become_manager(&binder)?;
            ready();
            loop {
                // SAFETY: Plain syscall; the child sleeps until killed.
                unsafe { libc::pause() };
            }
        })
        .map(Self)
    }

    /// Kills the manager's process, which makes its node die.
    fn kill(self) -> Outcome {
        self.0.kill()
    }
}

/// A client with a strong reference to handle 0, on a looper thread.
fn client() -> Outcome<Binder> {
    let binder = Binder::open(BINDER).step("open")?;
    binder
        .send(&Commands::new().enter_looper().acquire(0))
        .step("enter looper, acquire 0")?;
    Ok(binder)
}

fn expect_read(binder: &Binder, expected: &[Return], what: &str) -> Outcome {
    let returns = binder.read().step(what)?;
    ensure!(
        returns == expected,
        "{what}: read {returns:?}, expected {expected:?}"
    );
    Ok(())
}

/// On a live node, clearing the request is confirmed straight away.
fn death_request_then_clear(_: &Env) -> Outcome {
    let manager = Manager::start()?;
    let binder = client()?;
    binder
        .send(
            &Commands::new()
                .request_death_notification(0, 0x1234)
                .clear_death_notification(0, 0x1234),
        )
        .step("request and clear")?;
    expect_read(
        &binder,
        &[Return::Noop, Return::ClearDeathNotificationDone(0x1234)],
        "read",
    )?;
    manager.kill()
}

fn death_delivered_when_manager_dies(_: &Env) -> Outcome {
    let manager = Manager::start()?;
    let binder = client()?;
    binder
        .send(&Commands::new().request_death_notification(0, 7))
        .step("request")?;
    manager.kill()?;
    expect_read(
        &binder,
        &[Return::Noop, Return::DeadBinder(7)],
        "read after the death",
    )?;
    binder
        .send(
            &Commands::new()
                .dead_binder_done(7)
                .clear_death_notification(0, 7),
        )
        .step("done and clear")?;
    expect_read(
        &binder,
        &[Return::Noop, Return::ClearDeathNotificationDone(7)],
        "read after clear",
    )
}

/// Asking after the node died is answered at once.
fn death_requested_after_the_death(_: &Env) -> Outcome {
    let manager = Manager::start()?;
    let binder = client()?;
    manager.kill()?;
    binder
        .send(&Commands::new().request_death_notification(0, 9))
        .step("request")?;
    expect_read(&binder, &[Return::Noop, Return::DeadBinder(9)], "read")
}

/// A request withdrawn while its BR_DEAD_BINDER awaits BC_DEAD_BINDER_DONE is confirmed
/// only after the done.
fn death_clear_waits_for_done(_: &Env) -> Outcome {
    let manager = Manager::start()?;
    let binder = client()?;
    binder
        .send(&Commands::new().request_death_notification(0, 5))
        .step("request")?;
    manager.kill()?;
    expect_read(
        &binder,
        &[Return::Noop, Return::DeadBinder(5)],
        "read after the death",
    )?;
    binder
        .send(&Commands::new().clear_death_notification(0, 5))
        .step("clear")?;
    binder.set_nonblocking(true).step("O_NONBLOCK")?;
    expect_errno(binder.read(), libc::EAGAIN, "read before done")?;
    binder.set_nonblocking(false).step("blocking again")?;
    binder
        .send(&Commands::new().dead_binder_done(5))
        .step("done")?;
    expect_read(
        &binder,
        &[Return::Noop, Return::ClearDeathNotificationDone(5)],
        "read after done",
    )
}

/// BC_DEAD_BINDER_DONE and the clear may come from a thread that is not a looper; the clear's
/// confirmation then goes to the process, where the looper reads it.
fn death_done_from_non_looper_thread(_: &Env) -> Outcome {
    let manager = Manager::start()?;
    let binder = client()?;
    binder
        .send(&Commands::new().request_death_notification(0, 11))
        .step("request")?;
    manager.kill()?;
    expect_read(
        &binder,
        &[Return::Noop, Return::DeadBinder(11)],
        "read after the death",
    )?;
    thread::scope(|s| {
        s.spawn(|| {
            binder.send(
                &Commands::new()
                    .dead_binder_done(11)
                    .clear_death_notification(0, 11),
            )
        })
        .join()
        .map_err(|_| "helper thread panicked".to_string())?
        .step("done and clear from a non-looper thread")
    })?;
    expect_read(
        &binder,
        &[Return::Noop, Return::ClearDeathNotificationDone(11)],
        "looper read",
    )
}

/// Requests on handles without a reference, a second request, a clear with the wrong cookie
/// and an unknown done are all skipped without an error.
fn death_misuse_is_skipped(_: &Env) -> Outcome {
    let manager = Manager::start()?;
    let binder = client()?;
    let misuse = Commands::new()
        .request_death_notification(42, 1)
        .clear_death_notification(42, 1)
        .request_death_notification(0, 1)
        .request_death_notification(0, 2)
        .clear_death_notification(0, 2)
        .dead_binder_done(3);
    binder.send(&misuse).step("misused death commands")?;
    binder
        .send(&Commands::new().clear_death_notification(0, 1))
        .step("clear")?;
    expect_read(
        &binder,
        &[Return::Noop, Return::ClearDeathNotificationDone(1)],
        "read",
    )?;
    manager.kill()
}

/// A death notification makes the file readable for a polling looper.
fn death_wakes_poll(_: &Env) -> Outcome {
    let manager = Manager::start()?;
    let binder = client()?;
    binder
        .send(&Commands::new().request_death_notification(0, 13))
        .step("request")?;
    let epoll = Epoll::watch(binder.as_raw_fd())?;
    manager.kill()?;
    epoll.wait()?;
    drop(epoll);
    expect_read(&binder, &[Return::Noop, Return::DeadBinder(13)], "read")
}

/// BINDER_THREAD_EXIT on a thread whose wait queue epoll holds, then epoll goes away: the
/// CVE-2019-2215 pattern. The kernel log check catches a use-after-free.
fn thread_exit_with_epoll(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let epoll = Epoll::watch(binder.as_raw_fd())?;
    binder.thread_exit().step("BINDER_THREAD_EXIT")?;
    epoll.unwatch();
    drop(epoll);
    binder
        .version()
        .step("BINDER_VERSION after all that")
        .map(drop)
}
