//! Teardown under load: processes killed at arbitrary points of calls, in both directions.
//! The calls must end (a reply or BR_DEAD_REPLY, never a hang), and the kernel log check
//! after the suite catches any use-after-free, leak or lock problem this shakes out.

use binder_client::{Binder, Commands, Return};

use crate::{
    ensure,
    harness::{spawn_ready, Case, Env, Outcome, Step, BINDER},
};

use super::transactions::serving_manager;

pub const CASES: &[Case] = &[
    Case::new("kill_server_during_calls", kill_server_during_calls),
    Case::new("kill_client_during_calls", kill_client_during_calls),
];

const ROUNDS: usize = 12;

/// A context manager that answers calls until it is killed.
fn endless_echo() -> Outcome<crate::harness::Child> {
    spawn_ready(|ready| {
        let (binder, _mapping) = serving_manager()?;
        ready();
        loop {
            for ret in binder.read().step("server read")? {
                if let Return::Transaction(txn) = ret {
                    let commands = Commands::new()
                        .free_buffer(txn.buffer)
                        .transaction(true, 0, txn.code, 0, b"pong");
                    binder.send(&commands).step("reply")?;
                }
            }
        }
    })
}

/// A client that calls the manager in a loop until a call gets BR_DEAD_REPLY.
fn calling_client() -> Outcome<crate::harness::Child> {
    spawn_ready(|ready| {
        let binder = Binder::open(BINDER).step("open")?;
        let _mapping = binder.map(1 << 20, libc::PROT_READ).step("mmap")?;
        ready();
        call_until_dead(&binder).map(drop)
    })
}

/// Calls the manager until a call fails because it died; returns how many succeeded.
fn call_until_dead(binder: &Binder) -> Outcome<usize> {
    let mut answered = 0;
    loop {
        binder
            .send(&Commands::new().transaction(false, 0, 1, 0, b"ping"))
            .step("call")?;
        match binder.read().step("read")?.as_slice() {
            [Return::Noop, Return::TransactionComplete, Return::Reply(reply)] => {
                binder
                    .send(&Commands::new().free_buffer(reply.buffer))
                    .step("free")?;
                answered += 1;
            }
            [Return::Noop, Return::TransactionComplete, Return::DeadReply]
            | [Return::Noop, Return::DeadReply] => return Ok(answered),
            other => return Err(format!("call read {other:?}")),
        }
    }
}

/// The server is killed while a client calls it in a loop, round after round.
fn kill_server_during_calls(_: &Env) -> Outcome {
    for round in 0..ROUNDS {
        let server = endless_echo()?;
        let client = calling_client()?;
        // Let some calls through, a different number each round.
        std::thread::sleep(std::time::Duration::from_millis(3 * round as u64));
        server.kill()?;
        client.join().map_err(|e| format!("round {round}: {e}"))?;
    }
    Ok(())
}

/// Clients are killed in the middle of their calls; the server keeps serving the next.
fn kill_client_during_calls(_: &Env) -> Outcome {
    let server = endless_echo()?;
    for round in 0..ROUNDS {
        let client = calling_client()?;
        std::thread::sleep(std::time::Duration::from_millis(3 * round as u64));
        client.kill()?;
    }
    // The server survived all that: one more call gets its answer.
    let binder = Binder::open(BINDER).step("open")?;
    let _mapping = binder.map(1 << 20, libc::PROT_READ).step("mmap")?;
    binder
        .send(&Commands::new().transaction(false, 0, 1, 0, b"ping"))
        .step("call")?;
    let returns = binder.read().step("read")?;
    ensure!(
        matches!(
            returns.as_slice(),
            [Return::Noop, Return::TransactionComplete, Return::Reply(_)]
        ),
        "last call read {returns:?}"
    );
    server.kill()
}
