// SPDX-License-Identifier: GPL-2.0

//! Calls and services: what a binder program does with the driver, one level above the
//! commands and returns of [`crate::protocol`].
//!
//! A [`Process`] is an open, mapped binder device. As a client it makes calls with
//! [`Process::transact`], gets [`Reply`] parcels back (their buffers are given back to the
//! driver when dropped), holds references with [`Process::acquire`] and hears of deaths with
//! [`Process::request_death`] and [`Process::wait_for_death`]. As a server it answers calls to
//! its nodes with [`Process::serve`]: the calling thread becomes a looper, and when the driver
//! asks for more threads (`BR_SPAWN_LOOPER`) the loop starts them. A process that hands one of
//! its nodes to another sets its service first ([`Process::set_service`]), so a call back to
//! the node while the handing-over call is still going on is answered too.
//!
//! The driver's reference-count handshake on this process's nodes (`BR_INCREFS`,
//! `BR_ACQUIRE`) is answered wherever it shows up. The nodes of the programs built on this are
//! static objects that live as long as the process, so the answer is always "taken".

use std::{
    collections::VecDeque,
    io,
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, OnceLock,
    },
    thread,
};

use crate::{
    parcel::{Parcel, ParcelReader, UNKNOWN_TRANSACTION},
    protocol::{take, take_txn, take_u32, take_u64, Commands, Txn},
    uapi, Binder, Mapping, Payload, Received, PROTOCOL_VERSION,
};

/// The size of the receive buffer: 1 MiB less two pages, as libbinder maps it.
pub const MAP_SIZE: usize = 1024 * 1024 - 2 * 4096;

/// The read buffer of one `BINDER_WRITE_READ`.
const READ_SIZE: usize = 4096;

/// One return the driver delivers, decoded with everything a client or server acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `BR_TRANSACTION` or `BR_TRANSACTION_SEC_CTX`: an incoming call.
    Transaction(Txn),
    /// `BR_REPLY`: the answer to this thread's call.
    Reply(Txn),
    /// `BR_TRANSACTION_COMPLETE`: the driver took this thread's transaction or reply.
    TransactionComplete,
    /// `BR_DEAD_REPLY`: the call's target is dead.
    DeadReply,
    /// `BR_FAILED_REPLY`: the call could not be delivered.
    FailedReply,
    /// `BR_ERROR code`.
    Error(i32),
    /// `BR_INCREFS ptr cookie`: take a weak reference on this node, answer `BC_INCREFS_DONE`.
    IncRefs(u64, u64),
    /// `BR_ACQUIRE ptr cookie`: take a strong reference, answer `BC_ACQUIRE_DONE`.
    Acquire(u64, u64),
    /// `BR_RELEASE ptr cookie`: the driver dropped its strong reference.
    Release(u64, u64),
    /// `BR_DECREFS ptr cookie`: the driver dropped its weak reference.
    DecRefs(u64, u64),
    /// `BR_DEAD_BINDER cookie`: a node this process asked about died.
    DeadBinder(u64),
    /// `BR_CLEAR_DEATH_NOTIFICATION_DONE cookie`.
    ClearDeathDone(u64),
    /// `BR_SPAWN_LOOPER`: start another looper thread.
    SpawnLooper,
    /// `BR_NOOP`.
    Noop,
    /// Any other return, by code; its payload is skipped.
    Other(u32),
}

/// Decodes the returns of one read.
pub fn parse_events(bytes: &[u8]) -> io::Result<Vec<Event>> {
    let cut = |_| io::Error::other("the driver's returns end inside one");
    let mut events = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let code = take_u32(&mut rest).map_err(cut)?;
        let mut ptr_cookie = || -> io::Result<(u64, u64)> {
            Ok((
                take_u64(&mut rest).map_err(cut)?,
                take_u64(&mut rest).map_err(cut)?,
            ))
        };
        let event = match code {
            uapi::BR_TRANSACTION | uapi::BR_TRANSACTION_SEC_CTX => {
                Event::Transaction(take_txn(code, &mut rest).map_err(cut)?)
            }
            uapi::BR_REPLY => Event::Reply(take_txn(code, &mut rest).map_err(cut)?),
            uapi::BR_INCREFS => ptr_cookie().map(|(p, c)| Event::IncRefs(p, c))?,
            uapi::BR_ACQUIRE => ptr_cookie().map(|(p, c)| Event::Acquire(p, c))?,
            uapi::BR_RELEASE => ptr_cookie().map(|(p, c)| Event::Release(p, c))?,
            uapi::BR_DECREFS => ptr_cookie().map(|(p, c)| Event::DecRefs(p, c))?,
            uapi::BR_TRANSACTION_COMPLETE => Event::TransactionComplete,
            uapi::BR_DEAD_REPLY => Event::DeadReply,
            uapi::BR_FAILED_REPLY => Event::FailedReply,
            uapi::BR_ERROR => Event::Error(take_u32(&mut rest).map_err(cut)? as i32),
            uapi::BR_DEAD_BINDER => Event::DeadBinder(take_u64(&mut rest).map_err(cut)?),
            uapi::BR_CLEAR_DEATH_NOTIFICATION_DONE => {
                Event::ClearDeathDone(take_u64(&mut rest).map_err(cut)?)
            }
            uapi::BR_SPAWN_LOOPER => Event::SpawnLooper,
            uapi::BR_NOOP => Event::Noop,
            other => {
                // The size of a return's payload is encoded in its code, like an ioctl's.
                take(&mut rest, ((other >> 16) & 0x3fff) as usize).map_err(cut)?;
                Event::Other(other)
            }
        };
        events.push(event);
    }
    Ok(events)
}

/// What a service answers to a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// A reply parcel (for an AIDL method: the status, then the results).
    Reply(Parcel),
    /// A bare status code instead of a parcel (`TF_STATUS_CODE`), such as
    /// [`UNKNOWN_TRANSACTION`].
    Status(i32),
    /// A raw payload, which may carry fds and scatter-gather buffers (sent as `BC_REPLY_SG`
    /// if it has buffers).
    Payload(Payload),
}

impl Response {
    /// The reply to `INTERFACE_TRANSACTION`: the descriptor, without a status.
    pub fn descriptor(descriptor: &str) -> Self {
        let mut reply = Parcel::new();
        reply.write_str(Some(descriptor));
        Self::Reply(reply)
    }
}

/// A service: the code behind one process's nodes.
pub trait Service: Send + Sync {
    /// Answers one incoming call (the answer to a one-way call is dropped).
    fn on_transact(&self, call: &Call<'_>) -> Response;

    /// A node this process asked about (`request_death`) died; `cookie` names the request.
    fn on_death(&self, _cookie: u64) {}

    /// A thread the driver asked for (`BR_SPAWN_LOOPER`) joined the pool; called on it.
    fn on_looper_started(&self) {}
}

/// An incoming call, as a [`Service`] sees it.
#[derive(Debug)]
pub struct Call<'a> {
    txn: &'a Txn,
    data: &'a [u8],
    offsets: Vec<u64>,
    mapping: &'a Mapping,
}

impl Call<'_> {
    /// The transaction code.
    pub fn code(&self) -> u32 {
        self.txn.code
    }

    /// Whether the caller waits for no reply.
    pub fn is_oneway(&self) -> bool {
        self.txn.flags & uapi::TF_ONE_WAY != 0
    }

    /// The caller's pid (0 for one-way calls).
    pub fn sender_pid(&self) -> i32 {
        self.txn.sender_pid
    }

    /// The caller's effective uid.
    pub fn sender_euid(&self) -> u32 {
        self.txn.sender_euid
    }

    /// The pointer of the node that was called (0 for the context manager's).
    pub fn target_ptr(&self) -> u64 {
        self.txn.target_ptr
    }

    /// The `TF_*` flags the caller sent.
    pub fn flags(&self) -> u32 {
        self.txn.flags
    }

    /// A reader of the call's payload.
    pub fn reader(&self) -> ParcelReader<'_> {
        ParcelReader::new(self.data, &self.offsets)
    }

    /// The call's objects and scatter-gather buffers, as delivered.
    pub fn received(&self) -> Received<'_> {
        Received::new(self.mapping, self.txn)
    }
}

/// The reply to a call this process made; its buffer goes back to the driver on drop.
#[derive(Debug)]
pub struct Reply<'a> {
    process: &'a Process,
    txn: Txn,
}

impl Reply<'_> {
    /// A reader of the reply's payload.
    pub fn reader(&self) -> io::Result<ParcelReader<'_>> {
        let (data, offsets) = self.process.payload(&self.txn)?;
        Ok(ParcelReader::new(data, &offsets))
    }

    /// The reply's objects and scatter-gather buffers, as delivered.
    pub fn received(&self) -> Received<'_> {
        Received::new(&self.process.mapping, &self.txn)
    }

    /// The reply as the driver delivered it.
    pub fn txn(&self) -> &Txn {
        &self.txn
    }
}

impl Drop for Reply<'_> {
    fn drop(&mut self) {
        // Nothing to do about a failure here: the buffer stays allocated until the file closes.
        let _ = self
            .process
            .binder
            .send(&Commands::new().free_buffer(self.txn.buffer));
    }
}

/// An open, mapped binder device: one binder process.
pub struct Process {
    binder: Binder,
    mapping: Mapping,
    /// Deaths that arrived while this process waited for something else, not yet taken.
    deaths: Mutex<VecDeque<u64>>,
    /// Whether [`wait_for_death`](Self::wait_for_death) made its thread a looper already.
    entered_looper: AtomicBool,
    /// The service that answers calls to this process's nodes, once there is one.
    service: OnceLock<Arc<dyn Service>>,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("binder", &self.binder)
            .field("mapping", &self.mapping)
            .field("serving", &self.service.get().is_some())
            .finish_non_exhaustive()
    }
}

// SAFETY: The mapping is read-only for this process, and the driver writes a buffer only
// before delivering it and after it was freed; a delivered buffer is read through shared
// borrows only. The other fields are `Send` and `Sync`.
unsafe impl Send for Process {}
// SAFETY: As above.
unsafe impl Sync for Process {}

fn context(e: io::Error, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

impl Process {
    /// Opens the binder device at `path`, checks its protocol version and maps its receive
    /// buffer.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let binder = Binder::open(path)
            .map_err(|e| context(e, format!("cannot open {}", path.display())))?;
        let version = binder
            .version()
            .map_err(|e| context(e, "BINDER_VERSION failed"))?;
        if version != PROTOCOL_VERSION {
            return Err(io::Error::other(format!(
                "{} speaks binder protocol {version}, not {PROTOCOL_VERSION}",
                path.display()
            )));
        }
        let mapping = binder
            .map(MAP_SIZE, libc::PROT_READ)
            .map_err(|e| context(e, "cannot map the binder buffer"))?;
        Ok(Self {
            binder,
            mapping,
            deaths: Mutex::new(VecDeque::new()),
            entered_looper: AtomicBool::new(false),
            service: OnceLock::new(),
        })
    }

    /// The device, for its ioctls.
    pub fn binder(&self) -> &Binder {
        &self.binder
    }

    /// Makes this process the context manager: its node becomes handle 0 for everyone else.
    ///
    /// Uses `BINDER_SET_CONTEXT_MGR_EXT` (node pointer 0) and falls back to the older
    /// `BINDER_SET_CONTEXT_MGR` when the driver does not know the former.
    pub fn become_context_manager(&self) -> io::Result<()> {
        match self.binder.set_context_mgr_ext(0, 0, 0) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                Err(context(e, "another process is the context manager already"))
            }
            Err(_) => self
                .binder
                .set_context_mgr()
                .map_err(|e| context(e, "cannot become the context manager")),
        }
    }

    /// The payload and object offsets of a delivered buffer.
    fn payload(&self, txn: &Txn) -> io::Result<(&[u8], Vec<u64>)> {
        let outside = || io::Error::other("the driver delivered a buffer outside the mapping");
        let data = self
            .mapping
            .bytes_at(txn.buffer, txn.data_size)
            .ok_or_else(outside)?;
        let offsets = if txn.offsets_size == 0 {
            Vec::new()
        } else {
            self.mapping
                .bytes_at(txn.offsets, txn.offsets_size)
                .ok_or_else(outside)?
                .chunks_exact(8)
                .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or_default()))
                .collect()
        };
        Ok((data, offsets))
    }

    /// Writes `commands`, failing unless the driver took them all.
    pub fn send(&self, commands: &Commands) -> io::Result<()> {
        self.binder.send(commands)
    }

    /// Waits for and decodes the next returns.
    fn read_events(&self) -> io::Result<Vec<Event>> {
        let mut buffer = vec![0u8; READ_SIZE];
        let done = self.binder.write_read_at(&[], 0, &mut buffer, 0);
        done.result
            .map_err(|e| context(e, "BINDER_WRITE_READ failed"))?;
        let len = usize::try_from(done.read_consumed).unwrap_or(usize::MAX);
        let bytes = buffer
            .get(..len)
            .ok_or_else(|| io::Error::other("read_consumed is past the read buffer"))?;
        parse_events(bytes)
    }

    /// Answers the returns any thread may see: the reference handshake on this process's
    /// nodes and deaths. Returns the events that are left for the caller.
    fn absorb(&self, events: Vec<Event>) -> io::Result<Vec<Event>> {
        let mut left = Vec::new();
        let mut answer = Commands::new();
        for event in events {
            match event {
                Event::IncRefs(ptr, cookie) => answer = answer.increfs_done(ptr, cookie),
                Event::Acquire(ptr, cookie) => answer = answer.acquire_done(ptr, cookie),
                Event::Release(..) | Event::DecRefs(..) | Event::Noop => {}
                Event::ClearDeathDone(_) => {}
                other => left.push(other),
            }
        }
        if !answer.is_empty() {
            self.send(&answer)
                .map_err(|e| context(e, "cannot answer the driver's reference requests"))?;
        }
        Ok(left)
    }

    /// Sets the service that answers calls to this process's nodes, before
    /// [`serve`](Self::serve) runs: a process that publishes a node should do this first,
    /// since the receiver may call the node back while the publishing call is still going on
    /// (such a nested call comes to the thread that waits for the reply). Only the first
    /// service set counts.
    pub fn set_service(&self, service: Arc<dyn Service>) {
        let _ = self.service.set(service);
    }

    /// Answers a call that came to a thread waiting for something else: a nested call, served
    /// by the service if there is one, and turned down otherwise.
    fn answer_elsewhere(&self, txn: &Txn) -> io::Result<()> {
        if let Some(service) = self.service.get() {
            return self.dispatch(service.as_ref(), txn);
        }
        let status = UNKNOWN_TRANSACTION.to_le_bytes();
        let mut commands = Commands::new();
        if txn.flags & uapi::TF_ONE_WAY == 0 {
            commands = commands.transaction(true, 0, 0, uapi::TF_STATUS_CODE, &status);
        }
        self.send(&commands.free_buffer(txn.buffer))
    }

    /// Calls `code` on `handle` with `data` and waits for the reply.
    ///
    /// A reply that is a bare status code (`TF_STATUS_CODE`) is returned as an error.
    pub fn transact(&self, handle: u32, code: u32, data: &Parcel) -> io::Result<Reply<'_>> {
        self.transact_with(Commands::new().transaction_with_objects(
            false,
            handle,
            code,
            uapi::TF_ACCEPT_FDS,
            data.data(),
            data.offsets(),
        ))
    }

    /// Calls `code` on `handle` with `payload` (which may carry fds and scatter-gather
    /// buffers) and waits for the reply, as [`transact`](Self::transact) does. The call
    /// accepts fds in the reply.
    pub fn transact_payload(
        &self,
        handle: u32,
        code: u32,
        payload: &Payload,
    ) -> io::Result<Reply<'_>> {
        self.transact_with(Commands::new().payload(
            false,
            handle,
            code,
            uapi::TF_ACCEPT_FDS,
            payload,
        ))
    }

    /// Sends `call`, one transaction command, and waits for its reply.
    fn transact_with(&self, call: Commands) -> io::Result<Reply<'_>> {
        self.send(&call)
            .map_err(|e| context(e, "BC_TRANSACTION failed"))?;
        loop {
            let mut reply = None;
            let mut failure = None;
            for event in self.absorb(self.read_events()?)? {
                match event {
                    Event::Reply(txn) => reply = Some(txn),
                    Event::DeadReply => {
                        failure = Some("the target is dead (BR_DEAD_REPLY)".to_string())
                    }
                    Event::FailedReply => {
                        failure = Some("the call failed (BR_FAILED_REPLY)".to_string())
                    }
                    Event::Error(code) => failure = Some(format!("BR_ERROR {code}")),
                    Event::DeadBinder(cookie) => self.note_death(cookie),
                    Event::Transaction(txn) => self.answer_elsewhere(&txn)?,
                    _ => {}
                }
            }
            if let Some(why) = failure {
                return Err(io::Error::other(why));
            }
            if let Some(txn) = reply {
                let reply = Reply { process: self, txn };
                if reply.txn.flags & uapi::TF_STATUS_CODE != 0 {
                    let status = reply.reader()?.read_i32()?;
                    return Err(io::Error::other(format!(
                        "the call failed with status {status}"
                    )));
                }
                return Ok(reply);
            }
        }
    }

    /// Sends a one-way call of `code` to `handle` with `data`.
    pub fn transact_oneway(&self, handle: u32, code: u32, data: &Parcel) -> io::Result<()> {
        self.send(&Commands::new().transaction_with_objects(
            false,
            handle,
            code,
            uapi::TF_ONE_WAY | uapi::TF_ACCEPT_FDS,
            data.data(),
            data.offsets(),
        ))
        .map_err(|e| context(e, "BC_TRANSACTION failed"))?;
        loop {
            for event in self.absorb(self.read_events()?)? {
                match event {
                    Event::TransactionComplete => return Ok(()),
                    Event::FailedReply | Event::DeadReply => {
                        return Err(io::Error::other("the one-way call was not delivered"))
                    }
                    Event::DeadBinder(cookie) => self.note_death(cookie),
                    Event::Transaction(txn) => self.answer_elsewhere(&txn)?,
                    _ => {}
                }
            }
        }
    }

    /// Takes a weak and a strong reference on `handle` (`BC_INCREFS`, `BC_ACQUIRE`), so that
    /// it stays valid after the buffer that brought it is freed.
    pub fn acquire(&self, handle: u32) -> io::Result<()> {
        self.send(&Commands::new().increfs(handle).acquire(handle))
            .map_err(|e| context(e, format!("cannot take a reference on handle {handle}")))
    }

    /// Drops the references [`acquire`](Self::acquire) took.
    pub fn release(&self, handle: u32) -> io::Result<()> {
        self.send(&Commands::new().release(handle).decrefs(handle))
            .map_err(|e| context(e, format!("cannot drop the reference on handle {handle}")))
    }

    /// Asks to hear (as `cookie`) when the node behind `handle` dies.
    pub fn request_death(&self, handle: u32, cookie: u64) -> io::Result<()> {
        self.send(&Commands::new().request_death_notification(handle, cookie))
            .map_err(|e| context(e, format!("cannot ask for the death of handle {handle}")))
    }

    /// Withdraws a [`request_death`](Self::request_death).
    pub fn clear_death(&self, handle: u32, cookie: u64) -> io::Result<()> {
        self.send(&Commands::new().clear_death_notification(handle, cookie))
    }

    fn note_death(&self, cookie: u64) {
        if let Ok(mut deaths) = self.deaths.lock() {
            deaths.push_back(cookie);
        }
    }

    /// Waits until a node this process asked about dies, and returns the request's cookie.
    ///
    /// The driver hands death notices to looper threads, so the first call makes the calling
    /// thread one (`BC_ENTER_LOOPER`).
    pub fn wait_for_death(&self) -> io::Result<u64> {
        let queued = self.deaths.lock().ok().and_then(|mut d| d.pop_front());
        if let Some(cookie) = queued {
            self.send(&Commands::new().dead_binder_done(cookie))?;
            return Ok(cookie);
        }
        if !self.entered_looper.swap(true, Ordering::SeqCst) {
            self.send(&Commands::new().enter_looper())?;
        }
        loop {
            let mut dead = None;
            for event in self.absorb(self.read_events()?)? {
                match event {
                    Event::DeadBinder(cookie) if dead.is_none() => dead = Some(cookie),
                    Event::DeadBinder(cookie) => self.note_death(cookie),
                    Event::Transaction(txn) => self.answer_elsewhere(&txn)?,
                    _ => {}
                }
            }
            if let Some(cookie) = dead {
                self.send(&Commands::new().dead_binder_done(cookie))?;
                return Ok(cookie);
            }
        }
    }

    /// Serves `service` on the calling thread until the device fails, and on as many more
    /// threads as the driver asks for (see [`Binder::set_max_threads`]).
    pub fn serve(self: &Arc<Self>, service: Arc<dyn Service>) -> io::Result<()> {
        self.set_service(Arc::clone(&service));
        self.looper(&service, true)
    }

    fn looper(self: &Arc<Self>, service: &Arc<dyn Service>, main: bool) -> io::Result<()> {
        let enter = if main {
            Commands::new().enter_looper()
        } else {
            Commands::new().register_looper()
        };
        self.send(&enter)
            .map_err(|e| context(e, "cannot enter the looper"))?;
        if !main {
            service.on_looper_started();
        }
        loop {
            for event in self.absorb(self.read_events()?)? {
                match event {
                    Event::Transaction(txn) => self.dispatch(service.as_ref(), &txn)?,
                    Event::SpawnLooper => {
                        let process = Arc::clone(self);
                        let service = Arc::clone(service);
                        thread::spawn(move || {
                            if let Err(e) = process.looper(&service, false) {
                                eprintln!("binder looper thread stopped: {e}");
                            }
                        });
                    }
                    Event::DeadBinder(cookie) => {
                        // Done first: the service may drop its reference, and with it the
                        // death notice the driver still counts as being handled.
                        self.send(&Commands::new().dead_binder_done(cookie))?;
                        service.on_death(cookie);
                    }
                    // A reply of ours that could not be delivered: the caller is gone.
                    Event::DeadReply | Event::FailedReply | Event::TransactionComplete => {}
                    _ => {}
                }
            }
        }
    }

    /// Hands one incoming call to `service`, sends the answer and frees the call's buffer.
    fn dispatch(&self, service: &dyn Service, txn: &Txn) -> io::Result<()> {
        let (data, offsets) = self.payload(txn)?;
        let call = Call {
            txn,
            data,
            offsets,
            mapping: &self.mapping,
        };
        let response = service.on_transact(&call);
        if call.is_oneway() {
            return self.send(&Commands::new().free_buffer(txn.buffer));
        }
        let status;
        let commands = match &response {
            Response::Reply(parcel) => Commands::new().transaction_with_objects(
                true,
                0,
                0,
                0,
                parcel.data(),
                parcel.offsets(),
            ),
            Response::Payload(payload) => Commands::new().payload(true, 0, 0, 0, payload),
            Response::Status(code) => {
                status = code.to_le_bytes();
                Commands::new().transaction(true, 0, 0, uapi::TF_STATUS_CODE, &status)
            }
        };
        // The reply first: libbinder frees the call's buffer after replying, too.
        self.send(&commands.free_buffer(txn.buffer))
            .map_err(|e| context(e, "BC_REPLY failed"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(bytes: &mut Vec<u8>, w: u32) {
        bytes.extend_from_slice(&w.to_ne_bytes());
    }

    #[test]
    fn reference_returns_keep_their_pointer_and_cookie() {
        let mut bytes = Vec::new();
        word(&mut bytes, uapi::BR_NOOP);
        word(&mut bytes, uapi::BR_INCREFS);
        bytes.extend_from_slice(&0x10u64.to_ne_bytes());
        bytes.extend_from_slice(&0x20u64.to_ne_bytes());
        word(&mut bytes, uapi::BR_ACQUIRE);
        bytes.extend_from_slice(&0x11u64.to_ne_bytes());
        bytes.extend_from_slice(&0x21u64.to_ne_bytes());
        word(&mut bytes, uapi::BR_ERROR);
        word(&mut bytes, (-22i32) as u32);
        word(&mut bytes, uapi::BR_DEAD_BINDER);
        bytes.extend_from_slice(&7u64.to_ne_bytes());
        assert_eq!(
            parse_events(&bytes).unwrap(),
            vec![
                Event::Noop,
                Event::IncRefs(0x10, 0x20),
                Event::Acquire(0x11, 0x21),
                Event::Error(-22),
                Event::DeadBinder(7),
            ]
        );
    }

    #[test]
    fn a_cut_return_is_an_error() {
        let mut bytes = Vec::new();
        word(&mut bytes, uapi::BR_ACQUIRE);
        bytes.extend_from_slice(&0x11u64.to_ne_bytes());
        assert!(parse_events(&bytes).is_err());
    }

    #[test]
    fn done_commands_carry_pointer_and_cookie() {
        let commands = Commands::new().increfs_done(1, 2).acquire_done(3, 4);
        assert_eq!(commands.len(), 2 * (4 + 16));
        assert_eq!(
            &commands.as_bytes()[..4],
            &uapi::BC_INCREFS_DONE.to_ne_bytes()
        );
        assert_eq!(
            &commands.as_bytes()[20..24],
            &uapi::BC_ACQUIRE_DONE.to_ne_bytes()
        );
    }

    #[test]
    fn transactions_with_objects_carry_the_offsets() {
        let mut parcel = Parcel::new();
        parcel
            .write_i32(1)
            .write_object(crate::parcel::Object::Handle(2));
        let commands = Commands::new().transaction_with_objects(
            false,
            0,
            5,
            0,
            parcel.data(),
            parcel.offsets(),
        );
        let bytes = commands.as_bytes();
        // offsets_size is the seventh 8-byte field, data.ptr.offsets the ninth.
        assert_eq!(&bytes[4 + 40..4 + 48], &8u64.to_ne_bytes());
        assert_eq!(
            &bytes[4 + 56..4 + 64],
            &(parcel.offsets().as_ptr() as u64).to_ne_bytes()
        );
    }
}
