// SPDX-License-Identifier: GPL-2.0

//! The client side: each client thread makes random calls to the workers, each checked
//! against what it sent, and now and then leaves the driver (`BINDER_THREAD_EXIT`) for a new
//! thread to take over, or opens a short-lived process of its own on the device.

use std::{
    os::fd::RawFd,
    sync::{atomic::Ordering::SeqCst, Arc},
    thread,
};

use binder_client::{object::ObjectKind, uapi, BinderObject, FlatObject, Payload};

use crate::{
    conn::{Conn, Ctx, HandleRef, Outcome},
    serve::{check_fd, expect_ident, outcome_of, read_file, SG_MAGIC, SG_REPLY_MAGIC},
    shared::{fnv, now_ns, Counter, EPHEMERAL},
    wire::{self, word_at, Header, Reader, Writer},
};

/// The run's device, for ephemeral processes.
pub static DEVICE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn header(ctx: &Ctx, op: u32) -> (Writer, u64) {
    let seq = ctx.conn.next_seq();
    let mut w = Writer::default();
    Header {
        op,
        from_slot: ctx.conn.slot,
        from_gen: ctx.conn.gen,
        seq,
    }
    .write(&mut w);
    (w, seq)
}

fn local_binder(ctx: &Ctx, weak: bool) -> FlatObject {
    let (ptr, cookie) = ctx.conn.new_object();
    let mut object = FlatObject::binder(ptr, cookie);
    object.flags = uapi::FLAT_BINDER_FLAG_ACCEPTS_FDS;
    if weak {
        object.kind = ObjectKind::WeakBinder;
    }
    object
}

/// A random worker slot other than this process's.
fn other_slot(ctx: &mut Ctx) -> Option<u32> {
    let workers = ctx.conn.sh.workers.load(SeqCst);
    for _ in 0..8 {
        let slot = 1 + ctx.rng.below(u64::from(workers)) as u32;
        if slot != ctx.conn.slot {
            return Some(slot);
        }
    }
    None
}

/// This process's handle to `slot`'s root node: from the cache, or looked up with the
/// context manager (a handle passed on by a third process). `None` while the slot has no
/// registered process.
pub fn handle_for(ctx: &mut Ctx, slot: u32) -> Result<Option<Arc<HandleRef>>, String> {
    let conn = Arc::clone(&ctx.conn);
    let cached = conn.handles.lock().ok().and_then(|h| h.get(&slot).cloned());
    if let Some(handle) = cached {
        if !conn.sh.may_be_dead(slot, handle.gen) {
            return Ok(Some(handle));
        }
        conn.forget_generation(slot, handle.gen);
    }
    let (mut w, seq) = header(ctx, wire::LOOKUP);
    w.u32(slot);
    let payload = Payload::new().bytes(&w.0);
    let outcome = conn.call(ctx, 0, 0, wire::LOOKUP, seq, &payload, false)?;
    conn.sh.count(Counter::SyncCalls);
    let found = outcome_of(ctx, outcome, (0, 0), "LOOKUP", |ctx, _, received| {
        let data = received.data().map_err(|e| e.to_string())?;
        let mut r = Reader::new(data);
        let found = r.u32()?;
        r.u32()?;
        let gen = r.u64()?;
        if found == 0 {
            return Ok(None);
        }
        let current = ctx
            .conn
            .sh
            .slot(slot)
            .map(|s| s.gen.load(SeqCst))
            .unwrap_or(0);
        if gen > current {
            return Err(format!(
                "LOOKUP of slot {slot}: generation {gen} is from the future ({current})"
            ));
        }
        let objects = received.objects().map_err(|e| e.to_string())?;
        let handle = match objects.as_slice() {
            [BinderObject::Flat(f)] if f.kind == ObjectKind::Handle => f.handle_value(),
            other => {
                return Err(format!(
                    "LOOKUP of slot {slot}: expected a handle, got {other:?}"
                ))
            }
        };
        ctx.conn.sh.count(Counter::Handles);
        // Kept past the reply's buffer, which holds the reference until it is freed.
        HandleRef::acquire(&ctx.conn, handle, slot, gen).map(Some)
    })?;
    let Some(Some(handle)) = found else {
        return Ok(None);
    };
    if conn.sh.may_be_dead(slot, handle.gen) {
        return Ok(None);
    }
    if let Ok(mut handles) = conn.handles.lock() {
        let entry = handles.entry(slot).or_insert_with(|| Arc::clone(&handle));
        if entry.gen < handle.gen {
            *entry = Arc::clone(&handle);
        }
    }
    Ok(Some(handle))
}

fn owner(handle: &HandleRef) -> (u32, u64) {
    (handle.slot, handle.gen)
}

/// PING (or ONEWAY): a random payload; the reply must come from the node's owner.
fn ping(ctx: &mut Ctx, handle: &Arc<HandleRef>, oneway: bool) -> Result<(), String> {
    let conn = Arc::clone(&ctx.conn);
    let op = if oneway { wire::ONEWAY } else { wire::PING };
    let (mut w, seq) = header(ctx, op);
    let body = ctx.rng.some_bytes(0, 199);
    let sum = fnv(&body);
    w.u32(body.len() as u32).bytes(&body).u64(sum);
    let payload = Payload::new().bytes(&w.0);
    let outcome = conn.call(ctx, handle.handle, handle.slot, op, seq, &payload, oneway)?;
    if let Outcome::Complete = outcome {
        conn.sh.count(Counter::Oneways);
        return Ok(());
    }
    if oneway && matches!(outcome, Outcome::Reply(_)) {
        return Err("a one-way call got a reply".into());
    }
    let what = format!("PING {seq} to slot {}", handle.slot);
    let done = outcome_of(ctx, outcome, owner(handle), &what, |_, _, received| {
        let mut r = Reader::new(received.data().map_err(|e| e.to_string())?);
        expect_ident(&mut r, handle.slot, handle.gen, &what)?;
        if r.u64()? != sum {
            return Err(format!("{what}: the echoed checksum differs"));
        }
        Ok(())
    })?;
    if done.is_some() {
        conn.sh.count(Counter::SyncCalls);
    }
    Ok(())
}

/// ECHO: a new local object goes out (strong or weak) and must come back as itself.
fn echo(ctx: &mut Ctx, handle: &Arc<HandleRef>) -> Result<(), String> {
    let conn = Arc::clone(&ctx.conn);
    let weak = ctx.rng.one_in(3);
    let object = local_binder(ctx, weak);
    let (mut w, seq) = header(ctx, wire::ECHO);
    w.u32(u32::from(weak)).u32(0);
    let payload = Payload::new().bytes(&w.0).object(object);
    let outcome = conn.call(
        ctx,
        handle.handle,
        handle.slot,
        wire::ECHO,
        seq,
        &payload,
        false,
    )?;
    let what = format!("ECHO {seq} to slot {}", handle.slot);
    let done = outcome_of(ctx, outcome, owner(handle), &what, |_, _, received| {
        let mut r = Reader::new(received.data().map_err(|e| e.to_string())?);
        expect_ident(&mut r, handle.slot, handle.gen, &what)?;
        let objects = received.objects().map_err(|e| e.to_string())?;
        match objects.as_slice() {
            [BinderObject::Flat(f)]
                if f.kind == object.kind
                    && f.value == object.value
                    && f.cookie == object.cookie => {}
            other => {
                return Err(format!(
                    "{what}: sent {object:?}, its handle came back as {other:?}, not as the object"
                ))
            }
        }
        Ok(())
    })?;
    if done.is_some() {
        conn.sh.count(Counter::SyncCalls);
        let (there, back) = if weak {
            (Counter::WeakBinders, Counter::WeakHandles)
        } else {
            (Counter::Binders, Counter::Handles)
        };
        conn.sh.count(there);
        conn.sh.count(back);
    }
    Ok(())
}

/// CALLBACK: the service calls the object sent back while this thread waits: the nested call
/// must come to this thread.
fn callback(ctx: &mut Ctx, handle: &Arc<HandleRef>) -> Result<(), String> {
    let conn = Arc::clone(&ctx.conn);
    let object = local_binder(ctx, false);
    let token = ctx.rng.next();
    let (mut w, seq) = header(ctx, wire::CALLBACK);
    w.u64(token);
    let payload = Payload::new().bytes(&w.0).object(object);
    ctx.nested_token = Some(token);
    ctx.nested_seen = false;
    let outcome = conn.call(
        ctx,
        handle.handle,
        handle.slot,
        wire::CALLBACK,
        seq,
        &payload,
        false,
    );
    ctx.nested_token = None;
    let what = format!("CALLBACK {seq} to slot {}", handle.slot);
    let done = outcome_of(ctx, outcome?, owner(handle), &what, |ctx, _, received| {
        let mut r = Reader::new(received.data().map_err(|e| e.to_string())?);
        if r.u64()? != token.wrapping_add(2) {
            return Err(format!("{what}: wrong token back"));
        }
        expect_ident(&mut r, handle.slot, handle.gen, &what)?;
        if !ctx.nested_seen {
            return Err(format!(
                "{what}: the service's call back to my object did not come to the waiting thread"
            ));
        }
        Ok(())
    })?;
    if done.is_some() {
        conn.sh.count(Counter::SyncCalls);
        conn.sh.count(Counter::Binders);
    }
    Ok(())
}

/// FORWARD: a handle to a third process's node goes to the service, which calls it (the
/// answer must come from the third process) and sends it back: as this process's own handle.
fn forward(ctx: &mut Ctx, handle: &Arc<HandleRef>) -> Result<(), String> {
    let conn = Arc::clone(&ctx.conn);
    let Some(third_slot) = other_slot(ctx) else {
        return Ok(());
    };
    let Some(third) = handle_for(ctx, third_slot)? else {
        return Ok(());
    };
    let (mut w, seq) = header(ctx, wire::FORWARD);
    w.u32(third.slot).u32(0).u64(third.gen);
    let payload = Payload::new()
        .bytes(&w.0)
        .object(FlatObject::handle(third.handle));
    let outcome = conn.call(
        ctx,
        handle.handle,
        handle.slot,
        wire::FORWARD,
        seq,
        &payload,
        false,
    )?;
    let what = format!(
        "FORWARD {seq} of slot {}'s handle {} to slot {}",
        third.slot, third.handle, handle.slot
    );
    let done = outcome_of(ctx, outcome, owner(handle), &what, |ctx, _, received| {
        let mut r = Reader::new(received.data().map_err(|e| e.to_string())?);
        let result = r.u32()?;
        r.u32()?;
        expect_ident(&mut r, handle.slot, handle.gen, &what)?;
        if result != 0 && !ctx.conn.sh.may_be_dead(third.slot, third.gen) {
            return Err(format!("{what}: the service could not call the handle"));
        }
        let objects = received.objects().map_err(|e| e.to_string())?;
        match objects.as_slice() {
            [BinderObject::Flat(f)]
                if f.kind == ObjectKind::Handle && f.handle_value() == third.handle =>
            {
                Ok(())
            }
            other => Err(format!(
                "{what}: the handle came back as {other:?}, not as handle {}",
                third.handle
            )),
        }
    })?;
    if done.is_some() {
        conn.sh.count(Counter::SyncCalls);
        conn.sh.add(Counter::ThirdPartyHandles, 2);
    }
    Ok(())
}

/// A memfd holding `bytes`, and its (dev, ino).
fn memfd(bytes: &[u8]) -> Result<(RawFd, u64, u64), String> {
    // SAFETY: The name is a NUL-terminated string.
    let fd = unsafe { libc::memfd_create(c"stress".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(format!("memfd_create: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `bytes` is valid for reads of its length.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    // SAFETY: A zeroed stat is a valid place for fstat to write.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is valid for the call.
    if n != bytes.len() as isize || unsafe { libc::fstat(fd, &mut st) } != 0 {
        // SAFETY: Ours.
        unsafe { libc::close(fd) };
        return Err(format!("memfd: {}", std::io::Error::last_os_error()));
    }
    Ok((fd, st.st_dev, st.st_ino))
}

fn close(fd: RawFd) {
    // SAFETY: The fd is this thread's to close.
    unsafe { libc::close(fd) };
}

/// FD: a memfd goes out; the service checks it is the same file with the same content and
/// sends it back, and what comes back is the same file again.
fn fd(ctx: &mut Ctx, handle: &Arc<HandleRef>) -> Result<(), String> {
    let conn = Arc::clone(&ctx.conn);
    let content = ctx.rng.some_bytes(1, 256);
    let (fd, dev, ino) = memfd(&content)?;
    let sum = fnv(&content);
    let (mut w, seq) = header(ctx, wire::FD);
    w.u64(ino)
        .u64(dev)
        .u32(content.len() as u32)
        .u64(sum)
        .align();
    let payload = Payload::new().bytes(&w.0).fd(fd);
    let outcome = conn.call(
        ctx,
        handle.handle,
        handle.slot,
        wire::FD,
        seq,
        &payload,
        false,
    );
    close(fd);
    let what = format!("FD {seq} to slot {}", handle.slot);
    let done = outcome_of(ctx, outcome?, owner(handle), &what, |_, _, received| {
        let mut r = Reader::new(received.data().map_err(|e| e.to_string())?);
        expect_ident(&mut r, handle.slot, handle.gen, &what)?;
        if r.u64()? != sum {
            return Err(format!("{what}: the service read other content"));
        }
        let objects = received.objects().map_err(|e| e.to_string())?;
        let back = match objects.as_slice() {
            [BinderObject::Fd(f)] => f.fd as RawFd,
            other => return Err(format!("{what}: expected an fd back, got {other:?}")),
        };
        let checked = check_fd(back, dev, ino, &format!("{what}, the fd sent back"))
            .and_then(|()| read_file(back, content.len(), &what))
            .and_then(|bytes| {
                if bytes == content {
                    Ok(())
                } else {
                    Err(format!("{what}: the file sent back has other content"))
                }
            });
        close(back);
        checked
    })?;
    if done.is_some() {
        conn.sh.count(Counter::SyncCalls);
        conn.sh.add(Counter::Fds, 2);
    }
    Ok(())
}

/// SG: a scatter-gather chain (a root buffer holding a pointer to a child and an array of
/// fds); the service checks the fixups and the files and answers with a chain of its own.
fn sg(ctx: &mut Ctx, handle: &Arc<HandleRef>) -> Result<(), String> {
    let conn = Arc::clone(&ctx.conn);
    let k = 1 + ctx.rng.below(3) as usize;
    let mut files = Vec::new();
    for i in 0..k {
        match memfd(&[i as u8; 8]) {
            Ok(f) => files.push(f),
            Err(e) => {
                files.iter().for_each(|f| close(f.0));
                return Err(e);
            }
        }
    }
    let child = ctx.rng.some_bytes(1, 200);
    let mut root = Vec::new();
    root.extend_from_slice(&SG_MAGIC.to_ne_bytes());
    root.extend_from_slice(&0u64.to_ne_bytes());
    for i in 0..4 {
        let fd = files.get(i).map(|f| f.0 as u32).unwrap_or(0);
        root.extend_from_slice(&fd.to_ne_bytes());
    }
    let (mut w, seq) = header(ctx, wire::SG);
    w.u32(k as u32).u32(0);
    for f in &files {
        w.u64(f.1).u64(f.2);
    }
    w.u64(child.len() as u64).u64(fnv(&child)).align();
    let payload = Payload::new().bytes(&w.0);
    let parent = payload.next_index();
    let payload = payload
        .buffer(&root)
        .child_buffer(&child, parent, 8)
        .fd_array(parent, 16, k as u64);
    let outcome = conn.call(
        ctx,
        handle.handle,
        handle.slot,
        wire::SG,
        seq,
        &payload,
        false,
    );
    files.iter().for_each(|f| close(f.0));
    let what = format!("SG {seq} to slot {}", handle.slot);
    let done = outcome_of(ctx, outcome?, owner(handle), &what, |_, _, received| {
        let mut r = Reader::new(received.data().map_err(|e| e.to_string())?);
        expect_ident(&mut r, handle.slot, handle.gen, &what)?;
        let len = r.u64()?;
        let sum = r.u64()?;
        let objects = received.objects().map_err(|e| e.to_string())?;
        let (root, child) = match objects.as_slice() {
            [BinderObject::Buffer(root), BinderObject::Buffer(child)] => (*root, *child),
            other => return Err(format!("{what}: expected PTR, PTR back, got {other:?}")),
        };
        let root_bytes = received.buffer(&root).map_err(|e| e.to_string())?;
        let child_bytes = received.buffer(&child).map_err(|e| e.to_string())?;
        if word_at(root_bytes, 0) != Some(SG_REPLY_MAGIC)
            || word_at(root_bytes, 8) != Some(child.buffer)
        {
            return Err(format!(
                "{what}: the reply's root buffer is wrong or its child pointer was not fixed up \
                 ({:?}, child at {:#x})",
                word_at(root_bytes, 8),
                child.buffer
            ));
        }
        if child.length != len || fnv(child_bytes) != sum {
            return Err(format!(
                "{what}: the reply's child buffer changed on the way"
            ));
        }
        Ok(())
    })?;
    if done.is_some() {
        conn.sh.count(Counter::SyncCalls);
        conn.sh.add(Counter::SgBuffers, 4);
        conn.sh.count(Counter::FdArrays);
        conn.sh.add(Counter::FdsInArrays, k as u64);
    }
    Ok(())
}

/// HOLD, the pattern that once hung a real client: new local objects in a synchronous call to
/// a multi-threaded service that keeps them for a while and drops them (calling some first),
/// from several threads at once, round after round. Nothing is kept here: the objects live
/// until the driver says they are released.
fn hold(ctx: &mut Ctx, handle: &Arc<HandleRef>) -> Result<(), String> {
    let conn = Arc::clone(&ctx.conn);
    let n = 1 + ctx.rng.below(4) as usize;
    let (mut w, seq) = header(ctx, wire::HOLD);
    w.u32(n as u32).u32(0);
    let mut payload = Payload::new().bytes(&w.0);
    for _ in 0..n {
        payload = payload.object(local_binder(ctx, false));
    }
    let outcome = conn.call(
        ctx,
        handle.handle,
        handle.slot,
        wire::HOLD,
        seq,
        &payload,
        false,
    )?;
    let what = format!("HOLD {seq} to slot {}", handle.slot);
    let done = outcome_of(ctx, outcome, owner(handle), &what, |_, _, received| {
        let mut r = Reader::new(received.data().map_err(|e| e.to_string())?);
        expect_ident(&mut r, handle.slot, handle.gen, &what)?;
        if r.u32()? as usize != n {
            return Err(format!("{what}: the service counted other objects"));
        }
        Ok(())
    })?;
    if done.is_some() {
        conn.sh.count(Counter::SyncCalls);
        conn.sh.count(Counter::HoldRounds);
        conn.sh.add(Counter::Binders, n as u64);
    }
    Ok(())
}

/// The slot every client thread sends its HOLD rounds to for the next few seconds.
fn hold_target(ctx: &mut Ctx) -> Option<u32> {
    let workers = u64::from(ctx.conn.sh.workers.load(SeqCst));
    let slot = 1 + ((now_ns() / 3_000_000_000) % workers) as u32;
    if slot == ctx.conn.slot {
        other_slot(ctx)
    } else {
        Some(slot)
    }
}

/// A process that lives for a few calls: it opens the device, looks a worker up, calls it,
/// leaves objects with it, asks for its death, maybe unmaps its buffer (a call then cannot
/// get its reply, and calls to its objects fail), and closes.
fn ephemeral(ctx: &mut Ctx) -> Result<(), String> {
    let sh = ctx.conn.sh;
    let device = DEVICE
        .get()
        .cloned()
        .unwrap_or_else(|| "/dev/binder".into());
    let seed = ctx.rng.next();
    let conn = Arc::new(Conn::open(&device, EPHEMERAL, 0, sh, seed)?);
    sh.count(Counter::Ephemerals);
    let mut ectx = Ctx::new(Arc::clone(&conn), seed, false);
    let result = (|| -> Result<(), String> {
        let Some(slot) = other_slot(&mut ectx) else {
            return Ok(());
        };
        let Some(handle) = handle_for(&mut ectx, slot)? else {
            return Ok(());
        };
        ping(&mut ectx, &handle, false)?;
        hold(&mut ectx, &handle)?;
        if ectx.rng.one_in(2) {
            echo(&mut ectx, &handle)?;
        }
        if ectx.rng.one_in(2) {
            conn.request_death(&handle)?;
        }
        if ectx.rng.one_in(2) {
            conn.unmap()?;
            sh.count(Counter::Unmaps);
            // The reply has nowhere to go: the call must fail, not deliver it.
            let (mut w, seq) = header(&ectx, wire::PING);
            w.u32(0).u64(fnv(&[]));
            let payload = Payload::new().bytes(&w.0);
            let outcome = conn.call(
                &mut ectx,
                handle.handle,
                slot,
                wire::PING,
                seq,
                &payload,
                false,
            )?;
            match outcome {
                Outcome::Dead | Outcome::Failed => sh.count(Counter::DeadReplies),
                Outcome::Reply(_) => {
                    return Err(
                        "a reply was delivered to a process that unmapped its buffer".into(),
                    )
                }
                Outcome::Complete => {
                    return Err("TRANSACTION_COMPLETE for a synchronous call".into())
                }
            }
        }
        Ok(())
    })();
    // Everything that holds the device goes, then the device itself is closed.
    if let Ok(mut deaths) = conn.deaths.lock() {
        deaths.clear();
    }
    if let Ok(mut handles) = conn.handles.lock() {
        handles.clear();
    }
    drop(ectx);
    drop(conn);
    result
}

/// One random operation.
fn one_op(ctx: &mut Ctx) -> Result<(), String> {
    let pick = ctx.rng.below(100);
    if pick < 2 {
        return ephemeral(ctx);
    }
    let slot = if pick < 20 {
        hold_target(ctx)
    } else {
        other_slot(ctx)
    };
    let Some(slot) = slot else {
        return Ok(());
    };
    let Some(handle) = handle_for(ctx, slot)? else {
        return Ok(());
    };
    match pick {
        2..=19 => hold(ctx, &handle),
        20..=32 => ping(ctx, &handle, false),
        33..=42 => ping(ctx, &handle, true),
        43..=53 => echo(ctx, &handle),
        54..=63 => callback(ctx, &handle),
        64..=73 => forward(ctx, &handle),
        74..=81 => fd(ctx, &handle),
        82..=89 => sg(ctx, &handle),
        90..=95 => {
            let conn = Arc::clone(&ctx.conn);
            conn.request_death(&handle)
        }
        _ => {
            let pick = ctx.rng.next();
            ctx.conn.clear_some_death(pick)
        }
    }
}

/// A client thread: random operations until the run stops; after a while it leaves the driver
/// (`BINDER_THREAD_EXIT`) and a new thread takes its place.
pub fn client(conn: Arc<Conn>, seed: u64) {
    let sh = conn.sh;
    let mut ctx = Ctx::new(Arc::clone(&conn), seed, false);
    let budget = 50 + ctx.rng.below(300);
    for i in 0.. {
        if sh.stopping() {
            return;
        }
        if i == budget {
            if let Err(e) = conn.binder.thread_exit() {
                sh.fail(&format!("BINDER_THREAD_EXIT: {e}"));
                return;
            }
            sh.count(Counter::ClientThreadExits);
            let next = Arc::clone(&conn);
            let seed = conn.thread_seed();
            thread::spawn(move || client(next, seed));
            return;
        }
        let result = one_op(&mut ctx).and_then(|()| {
            if i % 16 == 0 {
                conn.check_deaths()
            } else {
                Ok(())
            }
        });
        if let Err(e) = result {
            sh.fail(&format!("slot {} client: {e}", conn.slot));
            return;
        }
    }
}
