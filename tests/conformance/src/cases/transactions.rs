//! Synchronous transactions to the context manager: the payload copied into the receiver's
//! mapping, BR_TRANSACTION with the sender's identity, the reply, BC_FREE_BUFFER, and the
//! failures when the receiver cannot take the payload or goes away.

use binder_client::{uapi, Binder, Commands, Mapping, Return, Txn};

use crate::{
    ensure,
    harness::{park, spawn_ready, Case, Child, Env, GuardedPage, Outcome, Step, BINDER},
};

use super::context_mgr::become_manager;

pub const CASES: &[Case] = &[
    Case::new("call_and_reply", call_and_reply),
    Case::new(
        "many_calls_reuse_buffer_space",
        many_calls_reuse_buffer_space,
    ),
    Case::new(
        "call_to_unmapped_receiver_dead_reply",
        call_to_unmapped_receiver_dead_reply,
    ),
    Case::new(
        "call_larger_than_receiver_failed_reply",
        call_larger_than_receiver_failed_reply,
    ),
    Case::new(
        "call_with_data_into_a_guard_page_fails_where_c_does",
        call_with_data_into_a_guard_page_fails_where_c_does,
    ),
    Case::new(
        "call_with_bad_data_pointer_failed_reply",
        call_with_bad_data_pointer_failed_reply,
    ),
    Case::new(
        "receiver_exits_without_reply_dead_reply",
        receiver_exits_without_reply_dead_reply,
    ),
    Case::new(
        "receiver_killed_before_reading_dead_reply",
        receiver_killed_before_reading_dead_reply,
    ),
];

const MAP_SIZE: usize = 1 << 20;

/// Reads until a BR_TRANSACTION arrives and returns it.
fn next_call(binder: &Binder) -> Outcome<Txn> {
    loop {
        for ret in binder.read().step("server read")? {
            match ret {
                Return::Transaction(txn) => return Ok(txn),
                Return::Noop | Return::SpawnLooper | Return::TransactionComplete => {}
                other => return Err(format!("server read {other:?}")),
            }
        }
    }
}

/// The payload of `txn`, read from `mapping`.
fn payload<'a>(mapping: &'a Mapping, txn: &Txn) -> Outcome<&'a [u8]> {
    mapping
        .bytes_at(txn.buffer, txn.data_size)
        .ok_or_else(|| format!("payload at {:#x} is outside the mapping", txn.buffer))
}

/// Opens BINDER, maps it and becomes its context manager on a looper thread.
pub fn serving_manager() -> Outcome<(Binder, Mapping)> {
    let binder = Binder::open(BINDER).step("open")?;
    let mapping = binder.map(MAP_SIZE, libc::PROT_READ).step("mmap")?;
    become_manager(&binder)?;
    binder
        .send(&Commands::new().enter_looper())
        .step("enter looper")?;
    Ok((binder, mapping))
}

/// A context manager that answers `calls` calls with "re:" and the payload, checking that each
/// comes from its parent as root, then exits.
fn echo_server(calls: usize) -> Outcome<Child> {
    spawn_ready(move |ready| {
        let (binder, mapping) = serving_manager()?;
        ready();
        // SAFETY: Plain syscall.
        let parent = unsafe { libc::getppid() };
        for _ in 0..calls {
            let txn = next_call(&binder)?;
            ensure!(
                txn.sender_pid == parent,
                "sender_pid {}, expected {parent}",
                txn.sender_pid
            );
            ensure!(txn.sender_euid == 0, "sender_euid {}", txn.sender_euid);
            ensure!(
                txn.target_ptr == 0 && txn.cookie == 0,
                "manager node ptr/cookie {txn:?}"
            );
            ensure!(
                txn.flags == 0 && txn.offsets_size == 0,
                "flags/offsets {txn:?}"
            );
            let mut reply = b"re:".to_vec();
            reply.extend_from_slice(payload(&mapping, &txn)?);
            let commands = Commands::new()
                .free_buffer(txn.buffer)
                .transaction(true, 0, txn.code, 0, &reply);
            binder.send(&commands).step("free and reply")?;
        }
        Ok(())
    })
}

/// Calls the manager with `data` and returns the reply (the client's buffer freed again).
fn call(binder: &Binder, mapping: &Mapping, code: u32, data: &[u8]) -> Outcome<Vec<u8>> {
    binder
        .send(&Commands::new().transaction(false, 0, code, 0, data))
        .step("call")?;
    let returns = binder.read().step("client read")?;
    let [Return::Noop, Return::TransactionComplete, Return::Reply(reply)] = returns.as_slice()
    else {
        return Err(format!("client read {returns:?}"));
    };
    ensure!(
        reply.code == code && reply.sender_pid == 0,
        "reply {reply:?}"
    );
    let bytes = payload(mapping, reply)?.to_vec();
    binder
        .send(&Commands::new().free_buffer(reply.buffer))
        .step("free reply")?;
    Ok(bytes)
}

fn call_and_reply(_: &Env) -> Outcome {
    let server = echo_server(1)?;
    let binder = Binder::open(BINDER).step("open")?;
    let mapping = binder.map(MAP_SIZE, libc::PROT_READ).step("mmap")?;
    let reply = call(&binder, &mapping, 42, b"hello")?;
    ensure!(
        reply == b"re:hello",
        "reply payload {:?}",
        String::from_utf8_lossy(&reply)
    );
    server.join()
}

/// Payloads that fill much of the buffer one after the other need the freed space back.
fn many_calls_reuse_buffer_space(_: &Env) -> Outcome {
    const CALLS: usize = 24;
    let server = echo_server(CALLS)?;
    let binder = Binder::open(BINDER).step("open")?;
    let mapping = binder.map(MAP_SIZE, libc::PROT_READ).step("mmap")?;
    for round in 0..CALLS {
        let data = vec![round as u8; 300 << 10];
        let reply = call(&binder, &mapping, round as u32, &data)?;
        ensure!(
            reply.len() == data.len() + 3 && reply[3..] == data[..],
            "round {round}: bad reply"
        );
    }
    server.join()
}

/// Sends one call to the manager and expects `expected` after the BR_NOOP.
fn expect_call_fails(data: &[u8], expected: &[Return]) -> Outcome {
    let binder = Binder::open(BINDER).step("open")?;
    binder
        .send(&Commands::new().transaction(false, 0, 1, 0, data))
        .step("call")?;
    let returns = binder.read().step("read")?;
    ensure!(
        returns[..] == [&[Return::Noop], expected].concat()[..],
        "read {returns:?}"
    );
    Ok(())
}

/// A manager that (if `mapped`, after mapping its receive buffer) reads nothing until it is
/// killed.
fn idle_manager(mapped: bool) -> Outcome<Child> {
    spawn_ready(move |ready| {
        let binder = Binder::open(BINDER).step("open")?;
        let _mapping = match mapped {
            true => Some(binder.map(MAP_SIZE, libc::PROT_READ).step("mmap")?),
            false => None,
        };
        become_manager(&binder)?;
        ready();
        park()
    })
}

fn call_to_unmapped_receiver_dead_reply(_: &Env) -> Outcome {
    let server = idle_manager(false)?;
    expect_call_fails(b"data", &[Return::DeadReply])?;
    server.kill()
}

fn call_larger_than_receiver_failed_reply(_: &Env) -> Outcome {
    let server = idle_manager(true)?;
    let data = vec![7u8; 2 * MAP_SIZE];
    expect_call_fails(&data, &[Return::FailedReply])?;
    server.kill()
}

fn call_with_bad_data_pointer_failed_reply(_: &Env) -> Outcome {
    let server = idle_manager(true)?;
    let binder = Binder::open(BINDER).step("open")?;
    let mut tr = uapi::binder_transaction_data {
        code: 1,
        data_size: 16,
        ..Default::default()
    };
    tr.data.ptr.buffer = 8; // Unmapped.
    let call = Commands::new().transaction_as_given(false, &tr);
    let done = binder.write_read_at(call.as_bytes(), 0, &mut [], 0);
    done.result.step("call with a bad data pointer")?;
    let returns = binder.read().step("read")?;
    ensure!(
        returns == [Return::Noop, Return::FailedReply],
        "read {returns:?}"
    );
    let error = binder.extended_error().step("BINDER_GET_EXTENDED_ERROR")?;
    ensure!(error.param == -libc::EFAULT, "extended error {error:?}");
    server.kill()
}

/// A call whose data runs into a page nobody may read fails with C's errno for where the
/// fault lies: C copies the offsets and checks their size, then copies the data up to each
/// object, then the object (as much as the largest object, or what the data has left), then
/// the rest, so an object it cannot read is EINVAL (an invalid object) and data it cannot read
/// is EFAULT.
fn call_with_data_into_a_guard_page_fails_where_c_does(_: &Env) -> Outcome {
    let server = idle_manager(true)?;
    let binder = Binder::open(BINDER).step("open")?;
    let guarded = GuardedPage::new()?;
    // A valid object (a binder) 32 bytes before the page: whole, but C reads 40 bytes there.
    let mut object = uapi::BINDER_TYPE_BINDER.to_ne_bytes().to_vec();
    object.extend_from_slice(&[0; 4]);
    object.extend_from_slice(&0x1000u64.to_ne_bytes());
    object.extend_from_slice(&0u64.to_ne_bytes());
    // SAFETY: The 24 bytes from 32 before the guard page lie in its writable first page, which
    // lives until the end of this function.
    unsafe {
        std::ptr::copy_nonoverlapping(
            object.as_ptr(),
            (guarded.guard() - 32) as *mut u8,
            object.len(),
        )
    };
    // (readable bytes of the data, data size, offsets, offsets size, errno, what)
    let at_0: &[u64] = &[0];
    for (readable, data_size, offsets, offsets_size, errno, what) in [
        (
            8,
            32,
            at_0,
            8,
            libc::EINVAL,
            "an object at 0, cut by the page",
        ),
        (
            8,
            32,
            &[16][..],
            8,
            libc::EFAULT,
            "an object at 16, in the page",
        ),
        (8, 32, &[][..], 0, libc::EFAULT, "no object"),
        (
            32,
            64,
            at_0,
            8,
            libc::EINVAL,
            "a binder whose 40 bytes run into the page",
        ),
        (
            8,
            32,
            at_0,
            4,
            libc::EINVAL,
            "offsets of a size not a multiple of 8",
        ),
    ] {
        let mut tr = uapi::binder_transaction_data {
            code: 1,
            data_size,
            offsets_size,
            ..Default::default()
        };
        let data = guarded.guard() - readable;
        tr.data.ptr.buffer = data;
        tr.data.ptr.offsets = offsets.as_ptr() as u64;
        let call = Commands::new().transaction_as_given(false, &tr);
        let done = binder.write_read_at(call.as_bytes(), 0, &mut [], 0);
        done.result.step(what)?;
        let returns = binder.read().step("read")?;
        ensure!(
            returns == [Return::Noop, Return::FailedReply],
            "{what}: read {returns:?}"
        );
        let error = binder.extended_error().step("BINDER_GET_EXTENDED_ERROR")?;
        ensure!(
            error.param == -errno,
            "{what}: extended error {error:?}, expected param {}",
            -errno
        );
    }
    server.kill()
}

/// A receiver that exits with the call unanswered: the caller reads BR_DEAD_REPLY.
fn receiver_exits_without_reply_dead_reply(_: &Env) -> Outcome {
    let server = spawn_ready(|ready| {
        let (binder, _mapping) = serving_manager()?;
        ready();
        next_call(&binder).map(drop)
    })?;
    expect_call_fails(b"ping", &[Return::TransactionComplete, Return::DeadReply])?;
    server.join()
}

/// A receiver killed before it read the call: the caller reads BR_DEAD_REPLY.
fn receiver_killed_before_reading_dead_reply(_: &Env) -> Outcome {
    let server = idle_manager(true)?;
    let binder = Binder::open(BINDER).step("open")?;
    binder
        .send(&Commands::new().transaction(false, 0, 1, 0, b"ping"))
        .step("call")?;
    server.kill()?;
    let returns = binder.read().step("read")?;
    ensure!(
        returns == [Return::Noop, Return::TransactionComplete, Return::DeadReply],
        "read {returns:?}"
    );
    Ok(())
}
