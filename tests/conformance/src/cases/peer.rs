//! A process on the binder device as the object cases see it: it calls, serves, and keeps
//! the refcount handshakes the driver asks of the owner of objects.

use std::{cell::RefCell, collections::VecDeque};

use binder_client::{Binder, Commands, FlatObject, Mapping, Payload, Received, Return, Txn};

use crate::{
    ensure,
    harness::{spawn_ready, Child, Outcome, Step, BINDER},
};

use super::{
    context_mgr::{become_manager, become_manager_ext},
    transaction_errors::expect_extended_error,
};

/// The size of the receive buffer a [`Peer`] maps.
pub const MAP_SIZE: usize = 1 << 20;

/// One open, mapped binder device.
///
/// Returns read but not yet asked for wait in a backlog, so that waiting for one return
/// (the BR_TRANSACTION_COMPLETE of a reply, say) never swallows another that came with it.
pub struct Peer {
    pub binder: Binder,
    pub mapping: Mapping,
    backlog: RefCell<VecDeque<Return>>,
}

/// What one call brought back: every return read on the way, and the reply if one came.
pub struct Exchange {
    pub returns: Vec<Return>,
    pub reply: Option<Txn>,
}

impl Peer {
    /// Opens and maps BINDER.
    pub fn open() -> Outcome<Self> {
        Self::open_mapped(MAP_SIZE)
    }

    /// Opens BINDER and maps `size` bytes of it.
    pub fn open_mapped(size: usize) -> Outcome<Self> {
        let binder = Binder::open(BINDER).step("open")?;
        let mapping = binder.map(size, libc::PROT_READ).step("mmap")?;
        Ok(Self {
            binder,
            mapping,
            backlog: RefCell::default(),
        })
    }

    /// Opens and maps BINDER, becomes its context manager and enters the looper.
    pub fn manager() -> Outcome<Self> {
        let peer = Self::open()?;
        become_manager(&peer.binder)?;
        peer.send(Commands::new().enter_looper(), "enter looper")?;
        Ok(peer)
    }

    /// Like [`Peer::manager`], with a manager node that accepts fds
    /// (BINDER_SET_CONTEXT_MGR_EXT with FLAT_BINDER_FLAG_ACCEPTS_FDS).
    pub fn manager_accepting_fds() -> Outcome<Self> {
        let peer = Self::open()?;
        become_manager_ext(
            &peer.binder,
            0,
            0,
            binder_client::uapi::FLAT_BINDER_FLAG_ACCEPTS_FDS,
        )?;
        peer.send(Commands::new().enter_looper(), "enter looper")?;
        Ok(peer)
    }

    /// Writes `commands`, which must all be taken.
    pub fn send(&self, commands: Commands, what: &str) -> Outcome {
        self.binder.send(&commands).step(what)
    }

    /// The backlog if there is one, else the returns of one read; `BR_INCREFS`/`BR_ACQUIRE`
    /// are answered with their `*_DONE` as soon as they are read.
    pub fn read(&self) -> Outcome<Vec<Return>> {
        let backlog: Vec<Return> = self.backlog.borrow_mut().drain(..).collect();
        if !backlog.is_empty() {
            return Ok(backlog);
        }
        let returns = self.binder.read().step("read")?;
        self.confirm(&returns)?;
        Ok(returns)
    }

    /// The backlog and every return the driver has ready now, without waiting, and without
    /// `BR_NOOP`s (`BR_INCREFS`/`BR_ACQUIRE` are answered as in [`Peer::read`]).
    pub fn pending(&self) -> Outcome<Vec<Return>> {
        let mut pending: Vec<Return> = self.backlog.borrow_mut().drain(..).collect();
        let returns = self.binder.read_pending().step("read what is pending")?;
        self.confirm(&returns)?;
        pending.extend(returns);
        pending.retain(|ret| *ret != Return::Noop);
        Ok(pending)
    }

    /// The next return, from the backlog or a new read.
    fn next_return(&self) -> Outcome<Return> {
        loop {
            if let Some(ret) = self.backlog.borrow_mut().pop_front() {
                return Ok(ret);
            }
            let returns = self.read()?;
            self.backlog.borrow_mut().extend(returns);
        }
    }

    /// Reads until `wanted` accepts a return; the others read meanwhile stay in the backlog
    /// (before anything read later), and come back in the second part of the result too.
    fn read_until<T>(
        &self,
        mut wanted: impl FnMut(&Return) -> Option<T>,
    ) -> Outcome<(T, Vec<Return>)> {
        let mut passed = Vec::new();
        loop {
            let ret = self.next_return()?;
            if let Some(found) = wanted(&ret) {
                let mut backlog = self.backlog.borrow_mut();
                for other in passed.iter().rev() {
                    backlog.push_front(Return::clone(other));
                }
                return Ok((found, passed));
            }
            passed.push(ret);
        }
    }

    /// Answers the `BR_INCREFS`/`BR_ACQUIRE` in `returns`.
    fn confirm(&self, returns: &[Return]) -> Outcome {
        let mut dones = Commands::new();
        for ret in returns {
            dones = match *ret {
                Return::Increfs(ptr, cookie) => dones.increfs_done(ptr, cookie),
                Return::Acquire(ptr, cookie) => dones.acquire_done(ptr, cookie),
                _ => dones,
            };
        }
        if !dones.is_empty() {
            self.send(dones, "refcount dones")?;
        }
        Ok(())
    }

    /// Calls `handle` with `payload` and reads until the reply or a failure comes.
    pub fn call(&self, handle: u32, code: u32, payload: &Payload) -> Outcome<Exchange> {
        self.send_call(handle, code, payload)?;
        self.await_reply()
    }

    /// Sends a call to `handle` with `payload`, reading nothing.
    pub fn send_call(&self, handle: u32, code: u32, payload: &Payload) -> Outcome {
        self.send_call_flags(handle, code, 0, payload)
    }

    /// Sends a call with the `TF_*` `flags` to `handle` with `payload` (as
    /// BC_TRANSACTION_SG if it has buffers), reading nothing.
    pub fn send_call_flags(
        &self,
        handle: u32,
        code: u32,
        flags: u32,
        payload: &Payload,
    ) -> Outcome {
        self.send(
            Commands::new().payload(false, handle, code, flags, payload),
            "call",
        )
    }

    /// Calls like [`Peer::call`], with the `TF_*` `flags`.
    pub fn call_flags(
        &self,
        handle: u32,
        code: u32,
        flags: u32,
        payload: &Payload,
    ) -> Outcome<Exchange> {
        self.send_call_flags(handle, code, flags, payload)?;
        self.await_reply()
    }

    /// Reads until the reply to the call this thread sent, or its failure, comes.
    pub fn await_reply(&self) -> Outcome<Exchange> {
        let mut returns = Vec::new();
        loop {
            let ret = self.next_return()?;
            let done = match &ret {
                Return::Reply(txn) => Some(Some(txn.clone())),
                Return::FailedReply | Return::DeadReply => Some(None),
                _ => None,
            };
            returns.push(ret);
            if let Some(reply) = done {
                return Ok(Exchange { returns, reply });
            }
        }
    }

    /// Calls like [`Peer::call`], and fails unless a reply comes; returns the reply.
    pub fn call_for_reply(&self, handle: u32, code: u32, payload: &Payload) -> Outcome<Txn> {
        let exchange = self.call(handle, code, payload)?;
        exchange.reply.ok_or_else(|| {
            format!(
                "call {code} to handle {handle} failed: {:?}",
                exchange.returns
            )
        })
    }

    /// Reads until a `BR_TRANSACTION` comes; returns it and everything read before it.
    pub fn next_call(&self) -> Outcome<(Txn, Vec<Return>)> {
        let mut seen = Vec::new();
        loop {
            match self.next_return()? {
                Return::Transaction(txn) => return Ok((txn, seen)),
                other => seen.push(other),
            }
        }
    }

    /// Reads until the BR_TRANSACTION_COMPLETE of what was just sent.
    fn await_complete(&self, what: &str) -> Outcome {
        let (_, passed) =
            self.read_until(|ret| (*ret == Return::TransactionComplete).then_some(()))?;
        ensure!(
            !passed
                .iter()
                .any(|ret| matches!(ret, Return::FailedReply | Return::DeadReply)),
            "{what} failed: {passed:?}"
        );
        Ok(())
    }

    /// Replies `payload` to `call` and then frees the call's buffer: the buffer's references
    /// stay until the reply has taken its own. (Not in one write: a reply that fails, because
    /// the caller is gone, holds back the rest of the write until it is read.)
    pub fn reply_and_free(&self, call: &Txn, payload: &Payload) -> Outcome {
        self.reply(call, payload)?;
        self.free(call)
    }

    /// Replies `payload` to `call`, keeping the call's buffer.
    pub fn reply(&self, call: &Txn, payload: &Payload) -> Outcome {
        self.reply_flags(call, 0, payload)
    }

    /// Replies `payload` with the `TF_*` `flags` to `call` (as BC_REPLY_SG if it has
    /// buffers), keeping the call's buffer.
    pub fn reply_flags(&self, call: &Txn, flags: u32, payload: &Payload) -> Outcome {
        self.send(
            Commands::new().payload(true, 0, call.code, flags, payload),
            "reply",
        )?;
        self.await_complete("the reply")
    }

    /// What `txn` delivered into this peer's mapping.
    pub fn received<'a>(&'a self, txn: &'a Txn) -> Received<'a> {
        self.mapping.received(txn)
    }

    /// Frees a delivered buffer.
    pub fn free(&self, txn: &Txn) -> Outcome {
        self.send(Commands::new().free_buffer(txn.buffer), "free buffer")
    }

    /// The binder objects in `txn`, in the order of its offsets.
    pub fn objects(&self, txn: &Txn) -> Outcome<Vec<FlatObject>> {
        let offsets = self
            .mapping
            .bytes_at(txn.offsets, txn.offsets_size)
            .ok_or("offsets outside the mapping")?;
        offsets
            .chunks(8)
            .map(|raw| {
                let offset = u64::from_ne_bytes(raw.try_into().map_err(|_| "short offset")?);
                let bytes = self
                    .mapping
                    .bytes_at(
                        txn.buffer + offset,
                        binder_client::object::FLAT_OBJECT_SIZE as u64,
                    )
                    .ok_or("object outside the mapping")?;
                FlatObject::from_bytes(bytes).ok_or_else(|| format!("no object at {offset}"))
            })
            .collect()
    }

    /// The handle (or pointer) of the first binder object in `txn`; an error naming `what`
    /// if it has none.
    pub fn first_handle(&self, txn: &Txn, what: &str) -> Outcome<u32> {
        match self.objects(txn)?.first() {
            Some(object) => Ok(object.handle_value()),
            None => Err(format!("{what} arrived without its object")),
        }
    }
}

/// Forks a process that becomes the context manager ([`Peer::manager`]) and then runs
/// `body`; returns once the manager is in place.
pub fn spawn_manager(body: impl FnOnce(&Peer) -> Outcome) -> Outcome<Child> {
    spawn_ready(|ready| {
        let manager = Peer::manager()?;
        ready();
        body(&manager)
    })
}

/// Like [`spawn_manager`], with a manager node that accepts fds.
pub fn spawn_fd_manager(body: impl FnOnce(&Peer) -> Outcome) -> Outcome<Child> {
    spawn_ready(|ready| {
        let manager = Peer::manager_accepting_fds()?;
        ready();
        body(&manager)
    })
}

/// The code of the good call [`expect_refused`] makes after the refused one.
const AFTER_REFUSED: u32 = 0x600d;

/// Sends a call with `send` from a fresh process to a context manager (one whose node accepts
/// fds, with `accepts_fds`) and expects the driver to refuse it before delivery: the sender
/// reads BR_FAILED_REPLY at once, with `errno` in its extended error. A good call afterwards
/// must get through, and must be the first call the manager sees.
pub fn expect_refused(
    accepts_fds: bool,
    send: impl FnOnce(&Peer) -> Outcome,
    errno: i32,
) -> Outcome {
    let serve_one = |m: &Peer| {
        let (call, _) = m.next_call()?;
        ensure!(
            call.code == AFTER_REFUSED,
            "the manager got the call that should have been refused: {call:?}"
        );
        m.reply_and_free(&call, &Payload::new())
    };
    let manager = if accepts_fds {
        spawn_fd_manager(serve_one)?
    } else {
        spawn_manager(serve_one)?
    };
    let c = Peer::open()?;
    send(&c)?;
    let returns = c.pending()?;
    ensure!(
        returns == [Return::FailedReply],
        "the sender read {returns:?}, expected BR_FAILED_REPLY at once"
    );
    expect_extended_error(&c.binder, binder_client::uapi::BR_FAILED_REPLY, errno)?;
    let reply = c.call_for_reply(0, AFTER_REFUSED, &Payload::new())?;
    c.free(&reply)?;
    manager.join()
}

/// [`expect_refused`] for a call of `payload` with the `TF_*` `flags`, to a manager that
/// accepts fds.
pub fn expect_payload_refused(flags: u32, payload: &Payload, errno: i32) -> Outcome {
    expect_refused(true, |c| c.send_call_flags(0, 1, flags, payload), errno)
}

/// The refcount returns among `returns`, in order.
pub fn refcount_returns(returns: &[Return]) -> Vec<Return> {
    returns
        .iter()
        .filter(|ret| {
            matches!(
                ret,
                Return::Increfs(..)
                    | Return::Acquire(..)
                    | Return::Release(..)
                    | Return::Decrefs(..)
            )
        })
        .cloned()
        .collect()
}
