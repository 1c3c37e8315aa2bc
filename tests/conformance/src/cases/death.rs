//! Death notifications on handle 0: request, clear, BR_DEAD_BINDER when the context manager
//! dies, BC_DEAD_BINDER_DONE, and the misuse the C driver skips.

use std::{os::fd::AsRawFd, thread};

use binder_client::{Binder, Commands, Return};

use crate::{
    ensure,
    harness::{expect_errno, park, spawn_ready, Case, Child, Env, Epoll, Outcome, Step, BINDER},
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
    Case::new(
        "death_done_answers_the_first_delivered_of_its_cookie",
        death_done_answers_the_first_delivered,
    ),
    Case::new("death_misuse_is_skipped", death_misuse_is_skipped),
    Case::new("death_wakes_poll", death_wakes_poll),
    Case::new(
        "death_clear_while_dead_binder_queued_gets_done",
        death_clear_while_dead_binder_queued_gets_done,
    ),
    Case::new(
        "death_clear_while_late_dead_binder_queued_gets_done",
        death_clear_while_late_dead_binder_queued_gets_done,
    ),
    Case::new(
        "death_request_while_cleared_death_awaits_done",
        death_request_while_cleared_death_awaits_done,
    ),
    Case::new(
        "death_request_clear_race_then_holder_exits",
        death_request_clear_race_then_holder_exits,
    ),
    Case::new(
        "cve_2019_2215_thread_exit_with_epoll",
        thread_exit_with_epoll,
    ),
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
            park()
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

/// The manager dies while its BR_DEAD_BINDER is still unread on the holder's todo list, and
/// the holder then clears its request (same cookie). The C driver still delivers the
/// BR_DEAD_BINDER, alone in its read, holds the clear's confirmation back until
/// BC_DEAD_BINDER_DONE, and then queues BR_CLEAR_DEATH_NOTIFICATION_DONE for the looper that
/// sent the done before its write returns.
fn death_clear_while_dead_binder_queued_gets_done(_: &Env) -> Outcome {
    let manager = Manager::start()?;
    let binder = client()?;
    binder
        .send(&Commands::new().request_death_notification(0, 21))
        .step("request")?;
    let epoll = Epoll::watch(binder.as_raw_fd())?;
    manager.kill()?;
    // Readable: the BR_DEAD_BINDER is queued. It stays unread until after the clear.
    epoll.wait()?;
    drop(epoll);
    binder
        .send(&Commands::new().clear_death_notification(0, 21))
        .step("clear")?;
    expect_dead_binder_then_clear_done(&binder, 21)
}

/// Reads, on the looper `binder`, the BR_DEAD_BINDER of a request cleared before it was read;
/// then checks that the confirmation of the clear comes after BC_DEAD_BINDER_DONE, and only
/// then (the reads after the first do not wait).
fn expect_dead_binder_then_clear_done(binder: &Binder, cookie: u64) -> Outcome {
    expect_read(
        binder,
        &[Return::Noop, Return::DeadBinder(cookie)],
        "read after the clear",
    )?;
    binder.set_nonblocking(true).step("O_NONBLOCK")?;
    expect_errno(binder.read(), libc::EAGAIN, "read before the done")?;
    binder
        .send(&Commands::new().dead_binder_done(cookie))
        .step("done")?;
    expect_read(
        binder,
        &[Return::Noop, Return::ClearDeathNotificationDone(cookie)],
        "read after the done",
    )?;
    expect_errno(binder.read(), libc::EAGAIN, "read after the confirmation")
}

/// As [`death_clear_while_dead_binder_queued_gets_done`], with a request made after the node
/// died, whose BR_DEAD_BINDER the C driver queues at once.
fn death_clear_while_late_dead_binder_queued_gets_done(_: &Env) -> Outcome {
    let manager = Manager::start()?;
    let binder = client()?;
    // A first request, answered in full, shows that the node is dead.
    binder
        .send(&Commands::new().request_death_notification(0, 22))
        .step("first request")?;
    manager.kill()?;
    expect_read(
        &binder,
        &[Return::Noop, Return::DeadBinder(22)],
        "read after the death",
    )?;
    binder
        .send(
            &Commands::new()
                .dead_binder_done(22)
                .clear_death_notification(0, 22),
        )
        .step("done and clear")?;
    expect_read(
        &binder,
        &[Return::Noop, Return::ClearDeathNotificationDone(22)],
        "read after the first clear",
    )?;
    binder
        .send(
            &Commands::new()
                .request_death_notification(0, 23)
                .clear_death_notification(0, 23),
        )
        .step("late request and clear")?;
    expect_dead_binder_then_clear_done(&binder, 23)
}

/// A client whose request with cookie `first` on handle 0 got its BR_DEAD_BINDER, and which
/// then withdrew it and asked again with cookie `second`: the new request's BR_DEAD_BINDER is
/// read too, so both await BC_DEAD_BINDER_DONE. The client is left non-blocking.
fn withdrawn_after_the_death_and_asked_again(first: u64, second: u64) -> Outcome<Binder> {
    let manager = Manager::start()?;
    let binder = client()?;
    binder
        .send(&Commands::new().request_death_notification(0, first))
        .step("request")?;
    manager.kill()?;
    expect_read(
        &binder,
        &[Return::Noop, Return::DeadBinder(first)],
        "read after the death",
    )?;
    binder
        .send(
            &Commands::new()
                .clear_death_notification(0, first)
                .request_death_notification(0, second),
        )
        .step("clear, then a new request")?;
    binder.set_nonblocking(true).step("O_NONBLOCK")?;
    expect_read(
        &binder,
        &[Return::Noop, Return::DeadBinder(second)],
        "read after the new request",
    )?;
    Ok(binder)
}

/// A request withdrawn after its BR_DEAD_BINDER was read no longer occupies the handle in the
/// C driver: a new request on the handle, while the old one still awaits BC_DEAD_BINDER_DONE,
/// is taken, and (the node being dead) answered at once with its own BR_DEAD_BINDER. Each
/// cookie then gets its own confirmation.
fn death_request_while_cleared_death_awaits_done(_: &Env) -> Outcome {
    let binder = withdrawn_after_the_death_and_asked_again(31, 32)?;
    binder
        .send(&Commands::new().dead_binder_done(31))
        .step("done with the first")?;
    expect_read(
        &binder,
        &[Return::Noop, Return::ClearDeathNotificationDone(31)],
        "read after the first done",
    )?;
    binder
        .send(
            &Commands::new()
                .dead_binder_done(32)
                .clear_death_notification(0, 32),
        )
        .step("done with the second, and clear it")?;
    expect_read(
        &binder,
        &[Return::Noop, Return::ClearDeathNotificationDone(32)],
        "read after the second clear",
    )?;
    expect_errno(binder.read(), libc::EAGAIN, "read at the end")
}

/// With two BR_DEAD_BINDERs of one cookie awaiting BC_DEAD_BINDER_DONE, a done answers the one
/// delivered first, as C walks its delivered deaths in order: here a withdrawn request's,
/// whose clear is then confirmed, rather than the newer request's on the same handle. (Seed 1
/// of the fuzzer, operation 11611.)
fn death_done_answers_the_first_delivered(_: &Env) -> Outcome {
    let binder = withdrawn_after_the_death_and_asked_again(41, 41)?;
    binder
        .send(&Commands::new().dead_binder_done(41))
        .step("the first done")?;
    expect_read(
        &binder,
        &[Return::Noop, Return::ClearDeathNotificationDone(41)],
        "read after the first done",
    )?;
    // The second done answers the newer request, whose clear is then confirmed at once.
    binder
        .send(
            &Commands::new()
                .dead_binder_done(41)
                .clear_death_notification(0, 41),
        )
        .step("the second done, and clear")?;
    expect_read(
        &binder,
        &[Return::Noop, Return::ClearDeathNotificationDone(41)],
        "read after the second clear",
    )?;
    expect_errno(binder.read(), libc::EAGAIN, "read at the end")
}

/// Threads of one holder request and clear a death notification on handle 0 (one cookie)
/// as fast as they can, racing each other, and the holder exits while the node lives. Nothing
/// the race leaves behind may keep the holder's state alive (the census check at unload
/// catches that on rust_binder), and the node's death still reaches a later holder.
fn death_request_clear_race_then_holder_exits(_: &Env) -> Outcome {
    const THREADS: usize = 4;
    const ROUNDS: usize = 3000;
    let manager = Manager::start()?;
    let holder = Child::spawn(|| {
        let binder = Binder::open(BINDER).step("open")?;
        binder.send(&Commands::new().acquire(0)).step("acquire 0")?;
        let request = Commands::new().request_death_notification(0, 41);
        let clear = Commands::new().clear_death_notification(0, 41);
        thread::scope(|s| {
            let racers: Vec<_> = (0..THREADS)
                .map(|_| {
                    s.spawn(|| -> Outcome {
                        for _ in 0..ROUNDS {
                            binder.send(&request).step("request")?;
                            binder.send(&clear).step("clear")?;
                        }
                        Ok(())
                    })
                })
                .collect();
            racers
                .into_iter()
                .try_for_each(|racer| racer.join().map_err(|_| "racer panicked".to_string())?)
        })
    })?;
    holder.join()?;
    let binder = client()?;
    binder
        .send(&Commands::new().request_death_notification(0, 42))
        .step("request of a later holder")?;
    manager.kill()?;
    expect_read(
        &binder,
        &[Return::Noop, Return::DeadBinder(42)],
        "read after the death",
    )
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
