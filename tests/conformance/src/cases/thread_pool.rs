//! The thread pool: BR_SPAWN_LOOPER asks a process for another looper thread, within the
//! limit set by BINDER_SET_MAX_THREADS.

use std::thread;

use binder_client::{Binder, Commands, Return};

use crate::{
    ensure,
    harness::{Case, Env, Outcome, Step, BINDER},
};

pub const CASES: &[Case] = &[
    Case::new(
        "spawn_looper_within_max_threads",
        spawn_looper_within_max_threads,
    ),
    Case::new(
        "no_spawn_looper_without_max_threads",
        no_spawn_looper_without_max_threads,
    ),
    Case::new(
        "no_spawn_looper_for_non_looper",
        no_spawn_looper_for_non_looper,
    ),
    Case::new(
        "spawn_looper_register_after_enter_takes_no_request",
        register_after_enter_takes_no_request,
    ),
];

/// Writes `commands` and reads, in one ioctl, on a new thread of `binder`. A new thread's
/// first read returns at once (it has "return to userspace" set until its first ioctl ends),
/// which is what these cases rely on.
fn on_new_thread(binder: &Binder, commands: Commands) -> Outcome<Vec<Return>> {
    thread::scope(|s| {
        s.spawn(|| binder.write_then_read(&commands).step("write and read"))
            .join()
            .map_err(|_| "thread panicked".to_string())?
    })
}

/// One request at a time: the next comes only once a thread registered for the last, and
/// none once max_threads threads did.
fn spawn_looper_within_max_threads(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    binder.set_max_threads(2).step("BINDER_SET_MAX_THREADS")?;
    let steps = [
        (
            Commands::new().enter_looper(),
            Return::SpawnLooper,
            "main looper",
        ),
        (
            Commands::new().enter_looper(),
            Return::Noop,
            "second looper, request outstanding",
        ),
        (
            Commands::new().register_looper(),
            Return::SpawnLooper,
            "first requested thread",
        ),
        (
            Commands::new().register_looper(),
            Return::Noop,
            "second requested thread, at max",
        ),
        (
            Commands::new().enter_looper(),
            Return::Noop,
            "another looper, at max",
        ),
    ];
    for (commands, expected, what) in steps {
        let returns = on_new_thread(&binder, commands)?;
        ensure!(
            returns == [expected.clone()],
            "{what}: read {returns:?}, expected {expected:?}"
        );
    }
    Ok(())
}

fn no_spawn_looper_without_max_threads(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    let returns = on_new_thread(&binder, Commands::new().enter_looper())?;
    ensure!(
        returns == [Return::Noop],
        "read {returns:?} with max_threads 0"
    );
    Ok(())
}

fn no_spawn_looper_for_non_looper(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    binder.set_max_threads(4).step("BINDER_SET_MAX_THREADS")?;
    let returns = on_new_thread(&binder, Commands::new())?;
    ensure!(
        returns == [Return::Noop],
        "read {returns:?} by a thread that is no looper"
    );
    Ok(())
}

/// `BC_REGISTER_LOOPER` on a thread that sent `BC_ENTER_LOOPER` marks the thread invalid and
/// answers no request: with max_threads 2, the request the main looper got stays outstanding
/// (no BR_SPAWN_LOOPER for that thread), the next registered thread takes it (and gets a new
/// request), and the one after it reaches max_threads.
fn register_after_enter_takes_no_request(_: &Env) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    binder.set_max_threads(2).step("BINDER_SET_MAX_THREADS")?;
    let steps = [
        (
            Commands::new().enter_looper(),
            Return::SpawnLooper,
            "main looper",
        ),
        (
            Commands::new().enter_looper().register_looper(),
            Return::Noop,
            "a looper that registers after entering, request outstanding",
        ),
        (
            Commands::new().register_looper(),
            Return::SpawnLooper,
            "first requested thread",
        ),
        (
            Commands::new().register_looper(),
            Return::Noop,
            "second requested thread, at max",
        ),
    ];
    for (commands, expected, what) in steps {
        let returns = on_new_thread(&binder, commands)?;
        ensure!(
            returns == [expected.clone()],
            "{what}: read {returns:?}, expected {expected:?}"
        );
    }
    Ok(())
}
