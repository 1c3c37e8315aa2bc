// SPDX-License-Identifier: GPL-2.0

//! The services: what a worker (and the context manager) answers to each operation, after
//! checking that the call arrived as it was sent (payload, objects translated, files the
//! sender's, buffers fixed up).

use std::{os::fd::RawFd, sync::Arc};

use binder_client::{object::ObjectKind, uapi, BinderObject, FlatObject, Payload, Received, Txn};

use crate::{
    conn::{cookie_of, Ctx, HandleRef, Held, Outcome, ROOT_PTR},
    shared::{fnv, Counter, EPHEMERAL},
    wire::{self, word_at, Header, Reader, Writer},
};

/// Held handles a service keeps before it drops the oldest.
const HOLD_KEEP: usize = 8;
pub const SG_MAGIC: u64 = 0x5347_726f_6f74_2121;
pub const SG_REPLY_MAGIC: u64 = 0x5347_7265_706c_7921;

/// How a service answers a call.
pub struct Answer {
    /// The reply (`None`: a status code, for a call that could not be served).
    pub reply: Option<Payload>,
    /// The caller's slot and generation, for the reply's outcome.
    pub caller: (u32, u64),
    /// Fds to close once the reply is sent.
    pub close_after: Vec<RawFd>,
    /// References that must last until the reply is sent (a handle in the reply).
    pub keep: Vec<Arc<HandleRef>>,
}

impl Answer {
    pub fn status(slot: u32, gen: u64) -> Self {
        Self {
            reply: None,
            caller: (slot, gen),
            close_after: Vec::new(),
            keep: Vec::new(),
        }
    }

    fn reply(caller: (u32, u64), payload: Payload) -> Self {
        Self {
            reply: Some(payload),
            ..Self::status(caller.0, caller.1)
        }
    }
}

/// The identity of this process, as replies start with it.
pub fn ident(ctx: &Ctx) -> Writer {
    let mut w = Writer::default();
    w.u32(ctx.conn.slot).u32(0).u64(ctx.conn.gen);
    w
}

/// Reads and checks a reply's identity: it must come from `slot`, generation `gen`.
pub fn expect_ident(r: &mut Reader<'_>, slot: u32, gen: u64, what: &str) -> Result<(), String> {
    let got_slot = r.u32()?;
    r.u32()?;
    let got_gen = r.u64()?;
    if (got_slot, got_gen) != (slot, gen) {
        return Err(format!(
            "{what}: answered by slot {got_slot} generation {got_gen}, not by the node's owner, \
             slot {slot} generation {gen}"
        ));
    }
    Ok(())
}

fn objects(received: &Received<'_>) -> Result<Vec<BinderObject>, String> {
    received.objects().map_err(|e| format!("the objects: {e}"))
}

fn flat(object: Option<&BinderObject>, what: &str) -> Result<FlatObject, String> {
    match object {
        Some(BinderObject::Flat(f)) => Ok(*f),
        other => Err(format!("{what}: expected a binder object, got {other:?}")),
    }
}

/// Checks an fd the driver installed: open, close-on-exec, the file `(dev, ino)`.
pub fn check_fd(fd: RawFd, dev: u64, ino: u64, what: &str) -> Result<(), String> {
    // SAFETY: A zeroed stat is a valid place for fstat to write.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is valid for the call.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(format!(
            "{what}: fd {fd} is not open: {}",
            std::io::Error::last_os_error()
        ));
    }
    if (st.st_dev, st.st_ino) != (dev, ino) {
        return Err(format!(
            "{what}: fd {fd} is file ({}, {}), not the sender's ({dev}, {ino})",
            st.st_dev, st.st_ino
        ));
    }
    // SAFETY: Plain fcntl on an open fd.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 || flags & libc::FD_CLOEXEC == 0 {
        return Err(format!("{what}: fd {fd} was installed without O_CLOEXEC"));
    }
    Ok(())
}

/// The `len` bytes at the start of the file `fd`.
pub fn read_file(fd: RawFd, len: usize, what: &str) -> Result<Vec<u8>, String> {
    let mut bytes = vec![0u8; len];
    // SAFETY: `bytes` is valid for `len` bytes of writes.
    let n = unsafe { libc::pread(fd, bytes.as_mut_ptr().cast(), len, 0) };
    if n != len as isize {
        return Err(format!(
            "{what}: pread of fd {fd} gave {n}, not {len} bytes"
        ));
    }
    Ok(bytes)
}

/// A call's outcome when the callee may be gone: a reply is read by `check`, a failure is
/// accepted only if the callee's process may be dead.
pub fn outcome_of<T>(
    ctx: &mut Ctx,
    outcome: Outcome,
    owner: (u32, u64),
    what: &str,
    check: impl FnOnce(&mut Ctx, &Txn, &Received<'_>) -> Result<T, String>,
) -> Result<Option<T>, String> {
    match outcome {
        Outcome::Reply(txn) => {
            let conn = Arc::clone(&ctx.conn);
            let result = if txn.flags & uapi::TF_STATUS_CODE != 0 {
                Err(format!("{what}: the service answered with a status code"))
            } else {
                conn.with_received(&txn, |received| check(ctx, &txn, received))
                    .unwrap_or_else(|| Err(format!("{what}: a reply into an unmapped buffer")))
            };
            conn.free(txn.buffer)?;
            result.map(Some)
        }
        Outcome::Dead | Outcome::Failed => {
            let (slot, gen) = owner;
            if slot != EPHEMERAL && !ctx.conn.sh.may_be_dead(slot, gen) {
                return Err(format!(
                    "{what}: {outcome:?} from slot {slot} generation {gen}, which is alive"
                ));
            }
            ctx.conn.sh.count(Counter::DeadReplies);
            ctx.conn.forget_generation(slot, gen);
            Ok(None)
        }
        Outcome::Complete => Err(format!(
            "{what}: BR_TRANSACTION_COMPLETE for a synchronous call"
        )),
    }
}

/// Pings a node another process owns (`owner`), from a service: the reply must come from
/// the owner, or the owner be gone.
fn ping_object(ctx: &mut Ctx, handle: u32, owner: (u32, u64), what: &str) -> Result<(), String> {
    let conn = Arc::clone(&ctx.conn);
    let seq = conn.next_seq();
    let token = ctx.rng.next();
    let mut w = Writer::default();
    Header {
        op: wire::OBJ_PING,
        from_slot: conn.slot,
        from_gen: conn.gen,
        seq,
    }
    .write(&mut w);
    w.u64(token);
    let payload = Payload::new().bytes(&w.0);
    let outcome = conn.call(ctx, handle, owner.0, wire::OBJ_PING, seq, &payload, false)?;
    conn.sh.count(Counter::SyncCalls);
    outcome_of(ctx, outcome, owner, what, |_, _, received| {
        let data = received.data().map_err(|e| e.to_string())?;
        let mut r = Reader::new(data);
        let back = r.u64()?;
        if back != token.wrapping_add(1) {
            return Err(format!("{what}: token {back:#x} back, sent {token:#x}"));
        }
        expect_ident(&mut r, owner.0, owner.1, what)
    })?;
    Ok(())
}

/// Serves one call.
pub fn serve(ctx: &mut Ctx, txn: &Txn, received: &Received<'_>) -> Result<Answer, String> {
    let conn = Arc::clone(&ctx.conn);
    let data = received.data().map_err(|e| format!("the data: {e}"))?;
    let mut r = Reader::new(data);
    let h = Header::read(&mut r)?;
    let what = format!(
        "{} {} from slot {}",
        wire::op_name(txn.code),
        h.seq,
        h.from_slot
    );
    if h.op != txn.code {
        return Err(format!(
            "{what}: code {} but the payload says op {}",
            txn.code, h.op
        ));
    }
    let caller = (h.from_slot, h.from_gen);
    // The node called: the root, the context manager's, or (for OBJ_PING) an object.
    let expected_ptr = match txn.code {
        wire::OBJ_PING => txn.target_ptr,
        wire::REGISTER | wire::LOOKUP => 0,
        _ => ROOT_PTR,
    };
    if txn.target_ptr != expected_ptr
        || (expected_ptr != 0 && txn.cookie != cookie_of(expected_ptr))
        || (txn.code == wire::OBJ_PING && !conn.is_object(txn.target_ptr, txn.cookie))
    {
        return Err(format!(
            "{what}: delivered to node ({:#x}, {:#x}), which is not the one called",
            txn.target_ptr, txn.cookie
        ));
    }
    let oneway = txn.flags & uapi::TF_ONE_WAY != 0;
    if oneway != (txn.code == wire::ONEWAY) {
        return Err(format!("{what}: TF_ONE_WAY is {oneway}"));
    }
    let objects = objects(received)?;
    let mut out = ident(ctx);
    match txn.code {
        wire::PING | wire::ONEWAY => {
            let len = r.u32()? as usize;
            let body = r.bytes(len)?;
            let sum = r.u64()?;
            if fnv(body) != sum {
                return Err(format!("{what}: the payload changed on the way"));
            }
            out.u64(sum);
            Ok(Answer::reply(caller, Payload::new().bytes(&out.0)))
        }
        wire::OBJ_PING => {
            let token = r.u64()?;
            if ctx.nested_token == Some(token) {
                ctx.nested_seen = true;
            }
            let mut w = Writer::default();
            w.u64(token.wrapping_add(1)).bytes(&out.0);
            Ok(Answer::reply(caller, Payload::new().bytes(&w.0)))
        }
        wire::ECHO => {
            let weak = r.u32()? != 0;
            let object = flat(objects.first(), &what)?;
            let want = if weak {
                ObjectKind::WeakHandle
            } else {
                ObjectKind::Handle
            };
            if object.kind != want || objects.len() != 1 {
                return Err(format!("{what}: sent a binder, got {objects:?}"));
            }
            let back = FlatObject::handle(object.handle_value()).with_kind(want);
            out.align();
            Ok(Answer::reply(
                caller,
                Payload::new().bytes(&out.0).object(back),
            ))
        }
        wire::CALLBACK => {
            let token = r.u64()?;
            let object = flat(objects.first(), &what)?;
            if object.kind != ObjectKind::Handle {
                return Err(format!("{what}: sent a binder, got {object:?}"));
            }
            // The nested call: to the caller's object, while the caller waits for this reply.
            let seq = conn.next_seq();
            let mut w = Writer::default();
            Header {
                op: wire::OBJ_PING,
                from_slot: conn.slot,
                from_gen: conn.gen,
                seq,
            }
            .write(&mut w);
            w.u64(token);
            let payload = Payload::new().bytes(&w.0);
            let handle = object.handle_value();
            let outcome = conn.call(ctx, handle, caller.0, wire::OBJ_PING, seq, &payload, false)?;
            conn.sh.count(Counter::SyncCalls);
            let answered = outcome_of(ctx, outcome, caller, &what, |_, _, rc| {
                let data = rc.data().map_err(|e| e.to_string())?;
                let mut r = Reader::new(data);
                let back = r.u64()?;
                if back != token.wrapping_add(1) {
                    return Err(format!(
                        "nested call: token {back:#x} back, sent {token:#x}"
                    ));
                }
                expect_ident(&mut r, caller.0, caller.1, "nested call")
            })?;
            if answered.is_none() {
                return Ok(Answer::status(caller.0, caller.1));
            }
            let mut w = Writer::default();
            w.u64(token.wrapping_add(2)).bytes(&out.0);
            Ok(Answer::reply(caller, Payload::new().bytes(&w.0)))
        }
        wire::FORWARD => {
            let third = r.u32()?;
            r.u32()?;
            let third_gen = r.u64()?;
            let object = flat(objects.first(), &what)?;
            let mut result = 0u32;
            let back = match object.kind {
                ObjectKind::Handle => {
                    let seq = conn.next_seq();
                    let mut w = Writer::default();
                    Header {
                        op: wire::PING,
                        from_slot: conn.slot,
                        from_gen: conn.gen,
                        seq,
                    }
                    .write(&mut w);
                    let body = ctx.rng.bytes(16);
                    w.u32(16).bytes(&body).u64(fnv(&body));
                    let payload = Payload::new().bytes(&w.0);
                    let handle = object.handle_value();
                    let outcome =
                        conn.call(ctx, handle, third, wire::PING, seq, &payload, false)?;
                    conn.sh.count(Counter::SyncCalls);
                    let pinged =
                        outcome_of(ctx, outcome, (third, third_gen), &what, |_, _, rc| {
                            let data = rc.data().map_err(|e| e.to_string())?;
                            let mut r = Reader::new(data);
                            expect_ident(&mut r, third, third_gen, "the forwarded handle")
                        })?;
                    if pinged.is_none() {
                        result = 1;
                    }
                    FlatObject::handle(handle)
                }
                ObjectKind::Binder if third == conn.slot => {
                    if object.value != ROOT_PTR || object.cookie != cookie_of(ROOT_PTR) {
                        return Err(format!("{what}: my own node came back as {object:?}"));
                    }
                    object
                }
                _ => return Err(format!("{what}: a handle was sent, got {object:?}")),
            };
            let mut w = Writer::default();
            w.u32(result).u32(0).bytes(&out.0);
            Ok(Answer::reply(
                caller,
                Payload::new().bytes(&w.0).object(back),
            ))
        }
        wire::FD => {
            let ino = r.u64()?;
            let dev = r.u64()?;
            let len = r.u32()? as usize;
            let sum = r.u64()?;
            let fd = match objects.as_slice() {
                [BinderObject::Fd(fd)] => fd.fd as RawFd,
                other => return Err(format!("{what}: expected one fd object, got {other:?}")),
            };
            check_fd(fd, dev, ino, &what)?;
            if fnv(&read_file(fd, len, &what)?) != sum {
                return Err(format!(
                    "{what}: the file's content is not what the sender wrote"
                ));
            }
            out.u64(sum);
            let mut answer = Answer::reply(caller, Payload::new().bytes(&out.0).fd(fd));
            answer.close_after.push(fd);
            Ok(answer)
        }
        wire::SG => {
            let k = r.u32()? as usize;
            r.u32()?;
            let mut inos = Vec::new();
            for _ in 0..k {
                inos.push((r.u64()?, r.u64()?));
            }
            let child_len = r.u64()?;
            let child_sum = r.u64()?;
            let (root, child, fda) = match objects.as_slice() {
                [BinderObject::Buffer(root), BinderObject::Buffer(child), BinderObject::FdArray(fda)] => {
                    (*root, *child, *fda)
                }
                other => return Err(format!("{what}: expected PTR, PTR, FDA, got {other:?}")),
            };
            let root_bytes = received.buffer(&root).map_err(|e| format!("{what}: {e}"))?;
            let child_bytes = received
                .buffer(&child)
                .map_err(|e| format!("{what}: {e}"))?;
            if word_at(root_bytes, 0) != Some(SG_MAGIC) {
                return Err(format!(
                    "{what}: the root buffer's content changed on the way"
                ));
            }
            if word_at(root_bytes, 8) != Some(child.buffer) {
                return Err(format!(
                    "{what}: the root's pointer to its child is {:?}, not the child's address \
                     {:#x} (parent fixup)",
                    word_at(root_bytes, 8),
                    child.buffer
                ));
            }
            if child.length != child_len || fnv(child_bytes) != child_sum {
                return Err(format!("{what}: the child buffer changed on the way"));
            }
            if child.parent() != Some((0, 8)) || fda.num_fds != k as u64 {
                return Err(format!(
                    "{what}: objects changed on the way: {child:?} {fda:?}"
                ));
            }
            let fds = received
                .fd_array(&fda)
                .map_err(|e| format!("{what}: {e}"))?;
            for (fd, (dev, ino)) in fds.iter().zip(&inos) {
                check_fd(*fd, *dev, *ino, &what)?;
            }
            // The answer: a chain of its own, which the caller checks the same way.
            let child2 = ctx.rng.some_bytes(1, 120);
            let mut root2 = Vec::new();
            root2.extend_from_slice(&SG_REPLY_MAGIC.to_ne_bytes());
            root2.extend_from_slice(&0u64.to_ne_bytes());
            out.u64(child2.len() as u64).u64(fnv(&child2)).align();
            let payload = Payload::new().bytes(&out.0);
            let parent = payload.next_index();
            let payload = payload.buffer(&root2).child_buffer(&child2, parent, 8);
            Ok(Answer::reply(caller, payload))
        }
        wire::HOLD => {
            let n = r.u32()? as usize;
            if objects.len() != n {
                return Err(format!(
                    "{what}: {n} objects sent, {} arrived",
                    objects.len()
                ));
            }
            let mut new = Vec::new();
            for object in &objects {
                let object = flat(Some(object), &what)?;
                if object.kind != ObjectKind::Handle {
                    return Err(format!("{what}: a binder was sent, got {object:?}"));
                }
                new.push(HandleRef::acquire(
                    &conn,
                    object.handle_value(),
                    caller.0,
                    caller.1,
                )?);
            }
            // Now and then, a call back to one of them: nested, to the waiting caller.
            if let Some(first) = new.first().filter(|_| ctx.rng.one_in(3)) {
                let first = Arc::clone(first);
                ping_object(ctx, first.handle, caller, &format!("{what}: nested ping"))?;
            }
            let mut dropped = Vec::new();
            if let Ok(mut held) = conn.held.lock() {
                held.extend(new.into_iter().map(|handle| Held { handle }));
                while held.len() > HOLD_KEEP {
                    dropped.extend(held.pop_front());
                }
            }
            // Dropping the oldest: some are called first (by their owner's loopers, or by the
            // waiting caller if they are its own).
            // Not an ephemeral process's: it has no looper to answer, and a wait for it could
            // close a cycle of waits between two of them.
            for old in dropped {
                if old.handle.slot != EPHEMERAL && ctx.rng.one_in(2) {
                    let owner = (old.handle.slot, old.handle.gen);
                    ping_object(
                        ctx,
                        old.handle.handle,
                        owner,
                        &format!("{what}: held object"),
                    )?;
                }
            }
            out.u32(n as u32);
            Ok(Answer::reply(caller, Payload::new().bytes(&out.0)))
        }
        wire::REGISTER => {
            let slot = r.u32()?;
            r.u32()?;
            let gen = r.u64()?;
            let object = flat(objects.first(), &what)?;
            if object.kind != ObjectKind::Handle {
                return Err(format!("{what}: a binder was sent, got {object:?}"));
            }
            let current = conn
                .sh
                .slot(slot)
                .map(|s| s.gen.load(std::sync::atomic::Ordering::SeqCst));
            if current != Some(gen) {
                return Err(format!(
                    "{what}: slot {slot} registers generation {gen}, the live one is {current:?}"
                ));
            }
            let handle = HandleRef::acquire(&conn, object.handle_value(), slot, gen)?;
            conn.request_death(&handle)?;
            let old = conn
                .registry
                .lock()
                .ok()
                .and_then(|mut r| r.insert(slot, handle));
            drop(old);
            out.u32(1);
            Ok(Answer::reply(caller, Payload::new().bytes(&out.0)))
        }
        wire::LOOKUP => {
            let slot = r.u32()?;
            let entry = conn
                .registry
                .lock()
                .ok()
                .and_then(|r| r.get(&slot).cloned());
            let mut w = Writer::default();
            match entry {
                Some(handle) => {
                    w.u32(1).u32(0).u64(handle.gen);
                    let payload = Payload::new()
                        .bytes(&w.0)
                        .object(FlatObject::handle(handle.handle));
                    let mut answer = Answer::reply(caller, payload);
                    answer.keep.push(handle);
                    Ok(answer)
                }
                None => {
                    w.u32(0).u32(0).u64(0);
                    Ok(Answer::reply(caller, Payload::new().bytes(&w.0)))
                }
            }
        }
        code => Err(format!("{what}: unknown code {code}")),
    }
}
