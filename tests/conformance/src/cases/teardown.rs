//! Teardown under load: processes killed at arbitrary points of calls, in both directions.
//! The calls must end (a reply or BR_DEAD_REPLY, never a hang), and the kernel log check
//! after the suite catches any use-after-free, leak or lock problem this shakes out.

use binder_client::{Binder, Commands, FlatObject, ObjectKind, Payload, Return};

use crate::{
    ensure,
    harness::{spawn_ready, Case, Env, Outcome, Step, BINDER},
};

use super::{
    peer::{spawn_manager, Peer},
    transactions::serving_manager,
};

pub const CASES: &[Case] = &[
    Case::new("kill_server_during_calls", kill_server_during_calls),
    Case::new("kill_client_during_calls", kill_client_during_calls),
    Case::new(
        "kill_object_holders_during_transfers",
        kill_object_holders_during_transfers,
    ),
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

/// A manager that keeps (and watches) every handle it is sent, hands one of them back with
/// each reply, and lets some go again, until it is killed.
fn hoarding_manager() -> Outcome<crate::harness::Child> {
    spawn_manager(|m| {
        let mut held: Vec<u32> = Vec::new();
        for round in 0u64.. {
            let (call, _) = m.next_call().inspect_err(|e| eprintln!("manager: {e}"))?;
            let mut keep = Commands::new();
            for object in m.objects(&call)? {
                let handle = object.handle_value();
                if !held.contains(&handle) {
                    keep = keep
                        .acquire(handle)
                        .request_death_notification(handle, handle.into());
                    held.push(handle);
                }
            }
            m.send(keep, "keep")?;
            let forward = match held.get(round as usize % held.len().max(1)) {
                Some(&handle) => Payload::new().object(FlatObject::handle(handle)),
                None => Payload::new(),
            };
            m.reply_and_free(&call, &forward)
                .inspect_err(|e| eprintln!("manager: {e}"))?;
            if round % 4 == 3 {
                if let Some(handle) = held.pop() {
                    m.send(
                        Commands::new()
                            .clear_death_notification(handle, handle.into())
                            .release(handle),
                        "let go",
                    )?;
                }
            }
        }
        Ok(())
    })
}

/// A client that sends its objects to the manager, keeps the handles it gets back, and now
/// and then leaves the driver (BINDER_THREAD_EXIT) with refcount work still queued; after
/// five calls it reports ready. Ends when a call fails.
fn object_client(id: u64) -> Outcome<crate::harness::Child> {
    spawn_ready(move |ready| {
        let c = Peer::open()?;
        for call in 0u64.. {
            let payload = Payload::new()
                .object(FlatObject::binder((id << 16) | (call % 3), id))
                .object(FlatObject::binder((id << 16) | ((call + 1) % 3), id));
            if call % 7 == 6 {
                // Leave with the new object's BR_INCREFS/BR_ACQUIRE still queued.
                let offsets = payload.offsets_bytes();
                c.send(
                    Commands::new().transaction_raw(false, 0, 1, 0, &payload.data, &offsets),
                    "call",
                )?;
                c.binder.thread_exit().step("BINDER_THREAD_EXIT")?;
                continue;
            }
            let exchange = c.call(0, 1, &payload)?;
            let Some(reply) = exchange.reply else {
                // The manager is gone; before the client was ready, that is a failure.
                ensure!(
                    call > 5,
                    "call {call} failed: {:?}, {:?}",
                    exchange.returns,
                    c.binder.extended_error()
                );
                return Ok(());
            };
            let mut keep = Commands::new();
            for object in c.objects(&reply)? {
                if object.kind == ObjectKind::Handle {
                    keep = keep.acquire(object.handle_value());
                }
            }
            c.send(keep.free_buffer(reply.buffer), "keep")?;
            if call == 5 {
                ready();
            }
        }
        Ok(())
    })
}

/// Handles and nodes change hands between four processes while they are killed: the
/// manager in even rounds, a client in odd ones. Nothing may hang, crash or leak.
fn kill_object_holders_during_transfers(_: &Env) -> Outcome {
    for round in 0..ROUNDS / 2 {
        let manager = hoarding_manager()?;
        let mut clients = (1..=3).map(object_client).collect::<Outcome<Vec<_>>>()?;
        if round % 2 == 1 {
            clients.remove(0).kill()?;
        }
        manager.kill()?;
        for client in clients {
            client.join()?;
        }
    }
    Ok(())
}
