// SPDX-License-Identifier: GPL-2.0

//! One binder process of the run: an open device, its receive buffer, the local objects it has
//! handed out, the handles it keeps, its death notifications; and the loop every thread runs
//! around `BINDER_WRITE_READ`: making a call and waiting for its answer (serving the nested
//! calls that come meanwhile), or serving as a looper.
//!
//! Every return the driver sends is checked on the way: reference requests must name an object
//! of this process, deaths must be of a process that is gone, clear confirmations must follow a
//! clear, and a reply that failed must have had a caller that is gone.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        atomic::{AtomicU64, Ordering::SeqCst},
        Arc, Mutex, RwLock,
    },
    thread,
};

use binder_client::{
    parse_returns, uapi, Binder, Commands, Mapping, Payload, Received, Return, Txn,
};

use crate::{
    serve,
    shared::{now_ns, Counter, Rng, Shared, CALL_DEADLINE_NS, EPHEMERAL},
};

/// The receive buffer's size, as libbinder maps it.
pub const MAP_SIZE: usize = 1024 * 1024 - 2 * 4096;
/// The pointer of every worker's root node (the one it registers with the context manager).
pub const ROOT_PTR: u64 = 0x1000;
/// The cookies of this program's objects are their pointers with this mixed in.
const COOKIE_MIX: u64 = 0x00c0_ffee_0000_0000;

pub fn cookie_of(ptr: u64) -> u64 {
    ptr ^ COOKIE_MIX
}

/// A handle this process holds a strong and a weak reference on (taken with `BC_INCREFS` and
/// `BC_ACQUIRE`), dropped (`BC_RELEASE`, `BC_DECREFS`) with the last clone.
#[derive(Debug)]
pub struct HandleRef {
    binder: Arc<Binder>,
    pub handle: u32,
    /// The owner of the node: its slot and generation ([`EPHEMERAL`] for an ephemeral one).
    pub slot: u32,
    pub gen: u64,
}

impl HandleRef {
    /// Takes the references on `handle`, which a buffer still being read holds for now.
    pub fn acquire(conn: &Conn, handle: u32, slot: u32, gen: u64) -> Result<Arc<Self>, String> {
        conn.binder
            .send(&Commands::new().increfs(handle).acquire(handle))
            .map_err(|e| format!("BC_INCREFS/BC_ACQUIRE on handle {handle}: {e}"))?;
        Ok(Arc::new(Self {
            binder: Arc::clone(&conn.binder),
            handle,
            slot,
            gen,
        }))
    }
}

impl Drop for HandleRef {
    fn drop(&mut self) {
        // A failure here is a driver that refuses to drop a reference it gave: reported by
        // the census at the end rather than here, where there is no one to tell.
        let _ = self
            .binder
            .send(&Commands::new().release(self.handle).decrefs(self.handle));
    }
}

/// A death notification this process asked for.
pub struct Death {
    pub handle: Arc<HandleRef>,
    /// When it was asked for, and when it was cleared (0 if not).
    pub requested_ns: u64,
    pub clearing_ns: u64,
    pub delivered: bool,
}

/// A handle to another process's object that a service keeps for a while (the `HOLD` pattern).
pub struct Held {
    pub handle: Arc<HandleRef>,
}

/// What a call came to.
#[derive(Debug)]
pub enum Outcome {
    /// `BR_REPLY`: the reply, whose buffer the caller frees with [`Conn::free`].
    Reply(Txn),
    /// `BR_DEAD_REPLY`.
    Dead,
    /// `BR_FAILED_REPLY`.
    Failed,
    /// `BR_TRANSACTION_COMPLETE` of a one-way call.
    Complete,
}

/// One thread's state.
pub struct Ctx {
    pub conn: Arc<Conn>,
    pub rng: Rng,
    /// Whether the thread is a looper (entered or registered).
    pub looper: bool,
    /// Replies this thread sent whose outcome (`BR_TRANSACTION_COMPLETE` or a failure) it has
    /// not read yet: the caller's slot and generation.
    pub pending_replies: VecDeque<(u32, u64)>,
    /// The token of a `CALLBACK` this thread waits for, and whether the nested call came to it.
    pub nested_token: Option<u64>,
    pub nested_seen: bool,
    /// Buffers to free once the failure of a reply has been read.
    pub deferred_frees: Vec<u64>,
}

impl Ctx {
    pub fn new(conn: Arc<Conn>, seed: u64, looper: bool) -> Self {
        Self {
            conn,
            rng: Rng::new(seed),
            looper,
            pending_replies: VecDeque::new(),
            nested_token: None,
            nested_seen: false,
            deferred_frees: Vec::new(),
        }
    }
}

/// An open, mapped binder device.
pub struct Conn {
    pub binder: Arc<Binder>,
    map: RwLock<Option<Mapping>>,
    /// This process's slot and generation ([`EPHEMERAL`] for an ephemeral process).
    pub slot: u32,
    pub gen: u64,
    pub sh: &'static Shared,
    /// The local objects handed out: pointer to cookie. Never forgotten, so that a late call
    /// to one (after `BR_DECREFS`, which may race with it) is still recognised.
    objects: Mutex<HashMap<u64, u64>>,
    next_object: AtomicU64,
    /// Handles to the workers' root nodes, by slot.
    pub handles: Mutex<HashMap<u32, Arc<HandleRef>>>,
    /// Death notifications asked for, by cookie.
    pub deaths: Mutex<HashMap<u64, Death>>,
    next_cookie: AtomicU64,
    /// Handles to others' objects kept by this process's services.
    pub held: Mutex<VecDeque<Held>>,
    /// The context manager's table: slot to the worker's generation and root handle.
    pub registry: Mutex<HashMap<u32, Arc<HandleRef>>>,
    next_seq: AtomicU64,
    /// The seed threads derive theirs from.
    seed: AtomicU64,
}

impl Conn {
    /// Opens and maps the device.
    pub fn open(
        device: &str,
        slot: u32,
        gen: u64,
        sh: &'static Shared,
        seed: u64,
    ) -> Result<Self, String> {
        let binder = Binder::open(device).map_err(|e| format!("open {device}: {e}"))?;
        let map = binder
            .map(MAP_SIZE, libc::PROT_READ)
            .map_err(|e| format!("mmap {device}: {e}"))?;
        Ok(Self {
            binder: Arc::new(binder),
            map: RwLock::new(Some(map)),
            slot,
            gen,
            sh,
            objects: Mutex::new(HashMap::from([(ROOT_PTR, cookie_of(ROOT_PTR))])),
            next_object: AtomicU64::new(0x10_0000),
            handles: Mutex::new(HashMap::new()),
            deaths: Mutex::new(HashMap::new()),
            next_cookie: AtomicU64::new(1),
            held: Mutex::new(VecDeque::new()),
            registry: Mutex::new(HashMap::new()),
            next_seq: AtomicU64::new(1),
            seed: AtomicU64::new(seed),
        })
    }

    /// A seed for a new thread.
    pub fn thread_seed(&self) -> u64 {
        self.seed.fetch_add(0x1_0000_0001, SeqCst)
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, SeqCst)
    }

    /// A new local object: a pointer never used before in this process, and its cookie.
    pub fn new_object(&self) -> (u64, u64) {
        let ptr = self.next_object.fetch_add(0x10, SeqCst);
        let cookie = cookie_of(ptr);
        if let Ok(mut objects) = self.objects.lock() {
            objects.insert(ptr, cookie);
        }
        (ptr, cookie)
    }

    /// Whether `ptr`/`cookie` is one of this process's objects.
    pub fn is_object(&self, ptr: u64, cookie: u64) -> bool {
        self.objects
            .lock()
            .map(|o| o.get(&ptr) == Some(&cookie))
            .unwrap_or(false)
    }

    pub fn new_cookie(&self) -> u64 {
        self.next_cookie.fetch_add(1, SeqCst)
    }

    /// Unmaps the receive buffer (an ephemeral process does, before it closes the device).
    pub fn unmap(&self) -> Result<(), String> {
        let mut map = self.map.write().map_err(|_| "mapping lock poisoned")?;
        if let Some(m) = map.take() {
            m.unmap().map_err(|e| format!("munmap: {e}"))?;
        }
        Ok(())
    }

    /// Runs `f` on a delivered transaction's contents, or returns `None` if the buffer is not
    /// mapped any more.
    pub fn with_received<T>(&self, txn: &Txn, f: impl FnOnce(&Received<'_>) -> T) -> Option<T> {
        let map = self.map.read().ok()?;
        let map = map.as_ref()?;
        let received = map.received(txn);
        Some(f(&received))
    }

    /// Gives a delivered buffer back.
    pub fn free(&self, buffer: u64) -> Result<(), String> {
        self.binder
            .send(&Commands::new().free_buffer(buffer))
            .map_err(|e| format!("BC_FREE_BUFFER: {e}"))
    }

    pub fn send(&self, commands: &Commands, what: &str) -> Result<(), String> {
        self.binder
            .send(commands)
            .map_err(|e| format!("{what}: {e}"))
    }

    /// Reads the next returns (blocking).
    fn read(&self) -> Result<Vec<Return>, String> {
        let mut buffer = [0u8; 2048];
        loop {
            let done = self.binder.write_read_at(&[], 0, &mut buffer, 0);
            match done.result {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(format!("BINDER_WRITE_READ (read): {e}")),
            }
            let len = done.read_consumed as usize;
            let bytes = buffer
                .get(..len)
                .ok_or_else(|| format!("read_consumed {len} is past the buffer"))?;
            return parse_returns(bytes).map_err(|_| "a return was cut short".to_string());
        }
    }

    /// Handles the returns any thread may get; returns the others.
    fn common(self: &Arc<Self>, ctx: &mut Ctx, ret: Return) -> Result<Option<Return>, String> {
        match ret {
            Return::Noop => {}
            Return::Increfs(ptr, cookie) | Return::Acquire(ptr, cookie) => {
                if !self.is_object(ptr, cookie) {
                    return Err(format!(
                        "{ret:?} for an object this process never sent ({ptr:#x}, {cookie:#x})"
                    ));
                }
                self.sh.count(Counter::RefReturns);
                let answer = match ret {
                    Return::Increfs(..) => Commands::new().increfs_done(ptr, cookie),
                    _ => Commands::new().acquire_done(ptr, cookie),
                };
                self.send(&answer, "BC_INCREFS_DONE/BC_ACQUIRE_DONE")?;
            }
            Return::Release(ptr, cookie) | Return::Decrefs(ptr, cookie) => {
                if !self.is_object(ptr, cookie) {
                    return Err(format!(
                        "{ret:?} for an object this process never sent ({ptr:#x}, {cookie:#x})"
                    ));
                }
                if matches!(ret, Return::Decrefs(..)) {
                    self.sh.count(Counter::ObjectsReleased);
                }
            }
            Return::DeadBinder(cookie) => self.on_death(cookie)?,
            Return::ClearDeathNotificationDone(cookie) => self.on_clear_done(cookie)?,
            Return::SpawnLooper => {
                if !ctx.looper {
                    return Err("BR_SPAWN_LOOPER to a thread that is not a looper".into());
                }
                self.sh.count(Counter::LoopersSpawned);
                let conn = Arc::clone(self);
                let seed = self.thread_seed();
                thread::spawn(move || looper(conn, seed, false));
            }
            other @ (Return::Transaction(_)
            | Return::Reply(_)
            | Return::TransactionComplete
            | Return::DeadReply
            | Return::FailedReply) => return Ok(Some(other)),
            other => return Err(format!("unexpected return {other:?}")),
        }
        Ok(None)
    }

    /// The outcome of a reply this thread sent earlier: `BR_TRANSACTION_COMPLETE`, or a
    /// failure, which only a caller that is gone explains.
    fn reply_outcome(&self, ctx: &mut Ctx, ret: &Return) -> Result<(), String> {
        let Some((slot, gen)) = ctx.pending_replies.pop_front() else {
            return Err(format!("{ret:?} with no reply outstanding"));
        };
        // The failure has been read: the driver takes commands again.
        for buffer in std::mem::take(&mut ctx.deferred_frees) {
            self.free(buffer)?;
        }
        if !matches!(ret, Return::TransactionComplete) {
            self.sh.count(Counter::DeadReplies);
            if slot != EPHEMERAL && !self.sh.may_be_dead(slot, gen) {
                return Err(format!(
                    "a reply to slot {slot} (generation {gen}), which is alive, failed with {ret:?}"
                ));
            }
        }
        Ok(())
    }

    /// Makes a call (`oneway` or not) and waits for its outcome, serving nested calls. The
    /// target slot, op and sequence number only describe the call to the watchdog.
    #[allow(clippy::too_many_arguments)]
    pub fn call(
        self: &Arc<Self>,
        ctx: &mut Ctx,
        handle: u32,
        target_slot: u32,
        op: u32,
        seq: u64,
        payload: &Payload,
        oneway: bool,
    ) -> Result<Outcome, String> {
        let flags = if oneway {
            uapi::TF_ONE_WAY | uapi::TF_ACCEPT_FDS
        } else {
            uapi::TF_ACCEPT_FDS
        };
        let record = self.sh.begin_call(op, target_slot, seq);
        let result = self.call_inner(ctx, handle, op, payload, oneway, flags);
        self.sh.end_call(record);
        result
    }

    fn call_inner(
        self: &Arc<Self>,
        ctx: &mut Ctx,
        handle: u32,
        code: u32,
        payload: &Payload,
        oneway: bool,
        flags: u32,
    ) -> Result<Outcome, String> {
        self.send(
            &Commands::new().payload(false, handle, code, flags, payload),
            "BC_TRANSACTION",
        )?;
        let mut own_complete = false;
        let mut outcome = None;
        while outcome.is_none() {
            for ret in self.read()? {
                let Some(ret) = self.common(ctx, ret)? else {
                    continue;
                };
                match ret {
                    Return::Transaction(txn) => {
                        if oneway || outcome.is_some() {
                            return Err(format!(
                                "a transaction (code {}) came to a thread not waiting for a reply",
                                txn.code
                            ));
                        }
                        self.sh.count(Counter::Nested);
                        self.dispatch(ctx, &txn)?;
                    }
                    Return::Reply(txn) => {
                        if oneway || outcome.is_some() {
                            return Err("a BR_REPLY with no call waiting for it".into());
                        }
                        outcome = Some(Outcome::Reply(txn));
                    }
                    Return::TransactionComplete if !own_complete => {
                        own_complete = true;
                        if oneway {
                            outcome = Some(Outcome::Complete);
                        }
                    }
                    ref r @ (Return::DeadReply | Return::FailedReply)
                        if !ctx.pending_replies.is_empty() =>
                    {
                        self.reply_outcome(ctx, r)?
                    }
                    Return::DeadReply => outcome = Some(Outcome::Dead),
                    Return::FailedReply => outcome = Some(Outcome::Failed),
                    ref r => self.reply_outcome(ctx, r)?,
                }
            }
        }
        // The outcomes of nested replies may still be queued: read them now, so that they are
        // not taken for the next call's.
        while !ctx.pending_replies.is_empty() {
            for ret in self.read()? {
                if let Some(ret) = self.common(ctx, ret)? {
                    match ret {
                        r @ (Return::TransactionComplete
                        | Return::DeadReply
                        | Return::FailedReply) => self.reply_outcome(ctx, &r)?,
                        other => return Err(format!("{other:?} after a call's reply")),
                    }
                }
            }
        }
        outcome.ok_or_else(|| "no outcome".to_string())
    }

    /// Serves one incoming call: checks it, answers it, frees its buffer.
    pub fn dispatch(self: &Arc<Self>, ctx: &mut Ctx, txn: &Txn) -> Result<(), String> {
        let sync = txn.flags & uapi::TF_ONE_WAY == 0;
        let conn = Arc::clone(self);
        let answer = conn.with_received(txn, |received| serve::serve(ctx, txn, received));
        let answer = match answer {
            Some(answer) => answer?,
            None => {
                // Delivered before this process unmapped its buffer, read after.
                self.sh.count(Counter::CallsToUnmapped);
                serve::Answer::status(EPHEMERAL, 0)
            }
        };
        if !sync {
            return self.free(txn.buffer);
        }
        let status;
        let reply = match &answer.reply {
            Some(payload) => Commands::new().payload(true, 0, 0, 0, payload),
            None => {
                status = (-1i32).to_ne_bytes();
                Commands::new().transaction(true, 0, 0, uapi::TF_STATUS_CODE, &status)
            }
        };
        // A reply that fails stops the driver from reading further commands until the failure
        // is read (as C does): the free then waits for that.
        let reply_len = reply.len() as u64;
        let commands = reply.free_buffer(txn.buffer);
        let done = self.binder.write(&commands);
        done.result.map_err(|e| format!("BC_REPLY: {e}"))?;
        if done.write_consumed == reply_len {
            ctx.deferred_frees.push(txn.buffer);
        } else if done.write_consumed != commands.len() as u64 {
            return Err(format!(
                "BC_REPLY: the driver consumed {} of {} bytes",
                done.write_consumed,
                commands.len()
            ));
        }
        ctx.pending_replies.push_back(answer.caller);
        for fd in answer.close_after {
            // SAFETY: The fd was installed for this call and belongs to nobody else.
            unsafe { libc::close(fd) };
        }
        Ok(())
    }

    /// `BR_DEAD_BINDER cookie`: must be a death this process asked for, of a process that is
    /// gone.
    fn on_death(&self, cookie: u64) -> Result<(), String> {
        let mut deaths = self.deaths.lock().map_err(|_| "deaths lock poisoned")?;
        let Some(death) = deaths.get_mut(&cookie) else {
            return Err(format!("BR_DEAD_BINDER {cookie} was never asked for"));
        };
        if death.delivered {
            return Err(format!("BR_DEAD_BINDER {cookie} delivered twice"));
        }
        let (slot, gen) = (death.handle.slot, death.handle.gen);
        if !self.sh.may_be_dead(slot, gen) {
            return Err(format!(
                "BR_DEAD_BINDER {cookie} for slot {slot} generation {gen}, which is alive"
            ));
        }
        self.sh.count(Counter::DeathsDelivered);
        self.send(
            &Commands::new().dead_binder_done(cookie),
            "BC_DEAD_BINDER_DONE",
        )?;
        death.delivered = true;
        // A death being cleared is confirmed too (BR_CLEAR_DEATH_NOTIFICATION_DONE); the
        // entry waits for that.
        let removed = if death.clearing_ns == 0 {
            deaths.remove(&cookie)
        } else {
            None
        };
        drop(deaths);
        self.forget_generation(slot, gen);
        drop(removed);
        Ok(())
    }

    fn on_clear_done(&self, cookie: u64) -> Result<(), String> {
        let mut deaths = self.deaths.lock().map_err(|_| "deaths lock poisoned")?;
        match deaths.get(&cookie) {
            Some(death) if death.clearing_ns != 0 => {}
            Some(_) => {
                return Err(format!(
                    "BR_CLEAR_DEATH_NOTIFICATION_DONE {cookie} before its clear"
                ))
            }
            None => {
                return Err(format!(
                    "BR_CLEAR_DEATH_NOTIFICATION_DONE {cookie} was never asked for"
                ))
            }
        }
        self.sh.count(Counter::DeathsCleared);
        let removed = deaths.remove(&cookie);
        drop(deaths);
        drop(removed);
        Ok(())
    }

    /// Drops the handles to a worker generation that is gone, from the cache and the registry.
    pub fn forget_generation(&self, slot: u32, gen: u64) {
        let mut dropped = Vec::new();
        if let Ok(mut handles) = self.handles.lock() {
            if handles.get(&slot).is_some_and(|h| h.gen == gen) {
                dropped.extend(handles.remove(&slot));
            }
        }
        if let Ok(mut registry) = self.registry.lock() {
            if registry.get(&slot).is_some_and(|h| h.gen == gen) {
                dropped.extend(registry.remove(&slot));
            }
        }
        drop(dropped);
    }

    /// Asks for the death of the node behind `handle`.
    pub fn request_death(&self, handle: &Arc<HandleRef>) -> Result<(), String> {
        let mut deaths = self.deaths.lock().map_err(|_| "deaths lock poisoned")?;
        if deaths.values().any(|d| d.handle.handle == handle.handle) {
            // The driver keeps one notification per reference.
            return Ok(());
        }
        let cookie = self.new_cookie();
        self.send(
            &Commands::new().request_death_notification(handle.handle, cookie),
            "BC_REQUEST_DEATH_NOTIFICATION",
        )?;
        self.sh.count(Counter::DeathsRequested);
        deaths.insert(
            cookie,
            Death {
                handle: Arc::clone(handle),
                requested_ns: now_ns(),
                clearing_ns: 0,
                delivered: false,
            },
        );
        Ok(())
    }

    /// Clears one death notification not yet delivered, if there is one; chosen by `pick`.
    pub fn clear_some_death(&self, pick: u64) -> Result<(), String> {
        let mut deaths = self.deaths.lock().map_err(|_| "deaths lock poisoned")?;
        let candidates: Vec<u64> = deaths
            .iter()
            .filter(|(_, d)| d.clearing_ns == 0 && !d.delivered)
            .map(|(c, _)| *c)
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let cookie = candidates[(pick % candidates.len() as u64) as usize];
        let Some(death) = deaths.get_mut(&cookie) else {
            return Ok(());
        };
        self.send(
            &Commands::new().clear_death_notification(death.handle.handle, cookie),
            "BC_CLEAR_DEATH_NOTIFICATION",
        )?;
        death.clearing_ns = now_ns();
        Ok(())
    }

    /// Fails if a death notification is overdue: its process is gone (or a clear was sent)
    /// and nothing came for longer than the call deadline.
    pub fn check_deaths(&self) -> Result<(), String> {
        let now = now_ns();
        let deaths = self.deaths.lock().map_err(|_| "deaths lock poisoned")?;
        for (cookie, d) in deaths.iter() {
            if d.clearing_ns != 0 && now.saturating_sub(d.clearing_ns) > CALL_DEADLINE_NS {
                return Err(format!(
                    "death notification {cookie} (handle {}, slot {}) was cleared {} s ago and \
                     BR_CLEAR_DEATH_NOTIFICATION_DONE never came",
                    d.handle.handle,
                    d.handle.slot,
                    now.saturating_sub(d.clearing_ns) / 1_000_000_000
                ));
            }
            if d.clearing_ns == 0 && !d.delivered {
                if let Some(slot) = self.sh.slot(d.handle.slot) {
                    let died = slot.died_ns.load(SeqCst).max(d.requested_ns);
                    if self.sh.may_be_dead(d.handle.slot, d.handle.gen)
                        && slot.gen.load(SeqCst) != d.handle.gen
                        && died != 0
                        && now.saturating_sub(died) > CALL_DEADLINE_NS
                    {
                        return Err(format!(
                            "death notification {cookie} (handle {}): slot {} generation {} \
                             died {} s ago and BR_DEAD_BINDER never came",
                            d.handle.handle,
                            d.handle.slot,
                            d.handle.gen,
                            now.saturating_sub(died) / 1_000_000_000
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A looper thread: serves calls until the process ends. A looper started by the process
/// itself (`entered`, `BC_ENTER_LOOPER`) leaves after a while (`BC_EXIT_LOOPER` and
/// `BINDER_THREAD_EXIT`) and starts its replacement; one the driver asked for
/// (`BR_SPAWN_LOOPER`, `BC_REGISTER_LOOPER`) stays, since the driver does not count it out.
pub fn looper(conn: Arc<Conn>, seed: u64, entered: bool) {
    let sh = conn.sh;
    let mut ctx = Ctx::new(Arc::clone(&conn), seed, true);
    let enter = if entered {
        Commands::new().enter_looper()
    } else {
        Commands::new().register_looper()
    };
    if let Err(e) = conn.send(&enter, "BC_ENTER_LOOPER/BC_REGISTER_LOOPER") {
        sh.fail(&e);
        return;
    }
    let budget = 30 + ctx.rng.below(200);
    let mut served = 0u64;
    let result = (|| -> Result<(), String> {
        loop {
            for ret in conn.read()? {
                let Some(ret) = conn.common(&mut ctx, ret)? else {
                    continue;
                };
                match ret {
                    Return::Transaction(txn) => {
                        served += 1;
                        conn.dispatch(&mut ctx, &txn)?;
                    }
                    r @ (Return::TransactionComplete | Return::DeadReply | Return::FailedReply) => {
                        conn.reply_outcome(&mut ctx, &r)?
                    }
                    other => return Err(format!("a looper got {other:?}")),
                }
            }
            if entered && served >= budget && ctx.pending_replies.is_empty() && !sh.stopping() {
                conn.send(&Commands::new().exit_looper(), "BC_EXIT_LOOPER")?;
                conn.binder
                    .thread_exit()
                    .map_err(|e| format!("BINDER_THREAD_EXIT: {e}"))?;
                sh.count(Counter::LooperExits);
                let next = Arc::clone(&conn);
                let seed = conn.thread_seed();
                thread::spawn(move || looper(next, seed, true));
                return Ok(());
            }
        }
    })();
    if let Err(e) = result {
        sh.fail(&format!("looper of slot {}: {e}", conn.slot));
    }
}
