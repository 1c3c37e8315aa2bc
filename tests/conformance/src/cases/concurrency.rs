//! Many threads at once, as a real binder program has them: clients that send new objects to a
//! multi-threaded service while other threads call too, and a service that registers with the
//! context manager while clients look it up. The driver must finish every call; a lost wake-up
//! or work queued where no thread takes it shows as threads that stop making progress.
//!
//! The processes are built on [`binder_client::Process`], as the demo's programs are: thread
//! pools that honour `BR_SPAWN_LOOPER`, the refcount handshake answered wherever it shows up,
//! reply buffers freed when the reply is dropped.

use std::{
    collections::HashMap,
    io::{self, Read, Write},
    os::{fd::AsRawFd, unix::net::UnixStream},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use binder_client::{
    parcel::{PING_TRANSACTION, UNKNOWN_TRANSACTION},
    Call, Object, Parcel, Process, Response, Service,
};

use crate::harness::{eventually, spawn_ready, Case, Child, Env, Outcome, Step, BINDER};

use super::context_mgr::become_manager;

pub const CASES: &[Case] = &[
    Case::new(
        "concurrency_clients_send_new_objects_to_threaded_service",
        clients_send_new_objects,
    ),
    Case::new(
        "concurrency_clients_resend_objects_to_threaded_service",
        clients_resend_objects,
    ),
    Case::new(
        "concurrency_services_register_while_clients_look_them_up",
        services_register_while_looked_up,
    ),
];

/// One end of a socket pair between a case and a child it forked: each side tells the other
/// that a step is done and waits for the other's word (a blocking handshake).
pub struct Link(UnixStream);

impl Link {
    /// Tells the other side that the next step may begin.
    pub fn signal(&mut self) -> Outcome {
        self.0.write_all(&[1]).step("signal the other side")
    }

    /// Waits for the other side's signal; fails if the other side is gone.
    pub fn wait(&mut self) -> Outcome {
        let mut byte = [0u8];
        self.0
            .read_exact(&mut byte)
            .map_err(|e| format!("waiting for the other side, which is gone: {e}"))
    }
}

/// Forks a child that runs `body` with its end of a [`Link`]; returns the child and this
/// side's end. The caller must be single-threaded, as for [`Child::spawn`].
pub fn spawn_linked(body: impl FnOnce(Link) -> Outcome) -> Outcome<(Child, Link)> {
    let (ours, theirs) = UnixStream::pair().step("socketpair")?;
    let our_fd = ours.as_raw_fd();
    let child = Child::spawn(move || {
        // SAFETY: This is the child's copy of the other side's descriptor. Closing it lets the
        // child see the end of the stream when the other side ends. The child never uses or
        // drops the `UnixStream` that owns the number: it ends with `_exit`.
        unsafe { libc::close(our_fd) };
        body(Link(theirs))
    })?;
    Ok((child, Link(ours)))
}

/// The calling thread's id.
pub fn gettid() -> i32 {
    // SAFETY: A plain syscall without arguments.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// Whether thread `tid` of this process sleeps in a `BINDER_WRITE_READ` ioctl, that is, waits
/// in a binder read for work.
fn sleeps_in_binder_read(tid: i32) -> Outcome<bool> {
    let task = format!("/proc/self/task/{tid}");
    let stat = std::fs::read_to_string(format!("{task}/stat")).step("read the thread's stat")?;
    // The state is the first field after the command name, which is in parentheses.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    let syscall =
        std::fs::read_to_string(format!("{task}/syscall")).step("read the thread's syscall")?;
    // The syscall's number, then its arguments in hex: the descriptor, then the request (which
    // the C library may have sign-extended from an int; the kernel uses its low 32 bits).
    let mut fields = syscall.split_whitespace();
    let in_ioctl = fields.next() == Some(libc::SYS_ioctl.to_string().as_str());
    let request = fields
        .nth(1)
        .and_then(|arg| u64::from_str_radix(arg.trim_start_matches("0x"), 16).ok())
        .map(|arg| arg as u32);
    Ok(state == Some("S") && in_ioctl && request == Some(binder_client::uapi::BINDER_WRITE_READ))
}

/// Waits until thread `tid` of this process sleeps in a binder read.
///
/// This gives a race its chance: the work sent next finds the thread waiting in the driver.
/// What a case checks afterwards must hold however the threads were scheduled.
pub fn await_sleeping_in_binder_read(tid: i32) -> Outcome {
    eventually(&format!("thread {tid} asleep in a binder read"), || {
        Ok(sleeps_in_binder_read(tid)?.then_some(()))
    })
}

/// A case whose threads made no progress for this long is stuck: a hang detector, long enough
/// for any scheduling under emulation.
const STALL: Duration = Duration::from_secs(30);

/// What one thread of a case is doing, for the message when the case is stuck.
struct Activity {
    name: String,
    doing: String,
    progress: Instant,
    steps: usize,
    outcome: Option<Outcome>,
}

/// The threads of a case and their progress: each thread says what it waits for and when it
/// got somewhere; [`Progress::watch`] fails the case when a thread got nowhere for [`STALL`].
#[derive(Default)]
struct Progress {
    threads: Mutex<Vec<Activity>>,
}

impl Progress {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Activity>> {
        self.threads.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a thread called `name`; returns its index.
    fn add(&self, name: String) -> usize {
        let mut threads = self.lock();
        threads.push(Activity {
            name,
            doing: "starting".into(),
            progress: Instant::now(),
            steps: 0,
            outcome: None,
        });
        threads.len() - 1
    }

    /// Says what thread `index` waits for now.
    fn doing(&self, index: usize, what: String) {
        self.lock()[index].doing = what;
    }

    /// Thread `index` finished a step.
    fn advanced(&self, index: usize) {
        let mut threads = self.lock();
        threads[index].progress = Instant::now();
        threads[index].steps += 1;
    }

    /// Thread `index` ended with `outcome`.
    fn finished(&self, index: usize, outcome: Outcome) {
        let mut threads = self.lock();
        threads[index].doing = "done".into();
        threads[index].outcome = Some(outcome);
    }

    /// Waits until every thread has ended; fails at the first thread that failed, or when a
    /// thread still running made no progress for [`STALL`], naming what each thread waits for.
    fn watch(&self) -> Outcome {
        loop {
            thread::sleep(Duration::from_millis(200));
            let threads = self.lock();
            if let Some(failed) = threads.iter().find_map(|t| match &t.outcome {
                Some(Err(why)) => Some(format!("{}: {why}", t.name)),
                _ => None,
            }) {
                return Err(failed);
            }
            if threads.iter().all(|t| t.outcome.is_some()) {
                return Ok(());
            }
            let stuck = threads
                .iter()
                .any(|t| t.outcome.is_none() && t.progress.elapsed() >= STALL);
            if stuck {
                let report: Vec<String> = threads
                    .iter()
                    .map(|t| {
                        if t.outcome.is_some() {
                            format!("{} done after {} steps", t.name, t.steps)
                        } else {
                            format!(
                                "{} after {} steps: {} (no progress for {} s)",
                                t.name,
                                t.steps,
                                t.doing,
                                t.progress.elapsed().as_secs()
                            )
                        }
                    })
                    .collect();
                return Err(format!(
                    "no progress for {} s; {}",
                    STALL.as_secs(),
                    report.join("; ")
                ));
            }
        }
    }
}

/// Runs `body` as a thread of `progress` called `name`; the thread records how it ended.
fn spawn_tracked(
    progress: &Arc<Progress>,
    name: String,
    body: impl FnOnce(&Progress, usize) -> Outcome + Send + 'static,
) {
    let index = progress.add(name);
    let progress = Arc::clone(progress);
    // Detached: a thread the driver never wakes again must not hold the case up; the case
    // process ends it when the case is over.
    thread::spawn(move || {
        let outcome = body(&progress, index);
        progress.finished(index, outcome);
    });
}

/// Ends the `children` of a case that ended with `outcome`, and adds the failure of any child
/// that ended on its own before (a service whose registration failed, say).
fn end_children<const N: usize>(outcome: Outcome, children: [(&str, Child); N]) -> Outcome {
    let failures: Vec<String> = children
        .into_iter()
        .filter_map(|(name, child)| child.kill().err().map(|why| format!("{name}: {why}")))
        .collect();
    match (outcome, failures.is_empty()) {
        (outcome, true) => outcome,
        (Ok(()), false) => Err(failures.join("; ")),
        (Err(why), false) => Err(format!("{why}; {}", failures.join("; "))),
    }
}

fn io_step<T>(result: io::Result<T>, what: impl std::fmt::Display) -> Outcome<T> {
    result.map_err(|e| format!("{what}: {e}"))
}

/// The service manager's calls: register a service by name, and look one up.
const ADD_SERVICE: u32 = 1;
const GET_SERVICE: u32 = 2;

/// The sink service's calls: take an object (and let it go), and a call without one.
const TAKE_OBJECT: u32 = 1;
const ECHO: u32 = 2;

/// A small service manager, as the context manager: `ADD_SERVICE(name, binder)` keeps a
/// reference on the service, pings it back while its registering thread waits for the reply,
/// and asks to hear of its death, as service managers do; `GET_SERVICE(name)` answers the
/// service's handle, or a null binder while there is none of that name.
struct ServiceManager {
    process: Arc<Process>,
    services: Mutex<HashMap<String, u32>>,
}

impl ServiceManager {
    fn answer(&self, call: &Call<'_>) -> io::Result<Parcel> {
        let mut request = call.reader();
        let mut reply = Parcel::new();
        match call.code() {
            ADD_SERVICE => {
                let name = request.read_string()?;
                let Object::Handle(handle) = request.read_object()? else {
                    return Err(io::Error::other("ADD_SERVICE without a handle"));
                };
                self.process.acquire(handle)?;
                drop(
                    self.process
                        .transact(handle, PING_TRANSACTION, &Parcel::new())?,
                );
                self.process.request_death(handle, handle.into())?;
                let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
                services.insert(name, handle);
            }
            GET_SERVICE => {
                let name = request.read_string()?;
                let services = self.services.lock().unwrap_or_else(|e| e.into_inner());
                let object = services
                    .get(&name)
                    .map_or(Object::Null, |h| Object::Handle(*h));
                reply.write_object(object);
            }
            code => return Err(io::Error::other(format!("unknown call {code}"))),
        }
        Ok(reply)
    }
}

impl Service for ServiceManager {
    fn on_transact(&self, call: &Call<'_>) -> Response {
        match self.answer(call) {
            Ok(reply) => Response::Reply(reply),
            Err(e) => {
                eprintln!("service manager: {e}");
                Response::Status(-libc::EINVAL)
            }
        }
    }
}

/// Forks the service manager, with a pool of up to `threads` loopers besides its first.
fn spawn_service_manager(threads: u32) -> Outcome<Child> {
    spawn_ready(|ready| {
        let process = Arc::new(io_step(Process::open(BINDER), "open")?);
        become_manager(process.binder())?;
        io_step(process.binder().set_max_threads(threads), "max threads")?;
        ready();
        let manager = Arc::new(ServiceManager {
            process: Arc::clone(&process),
            services: Mutex::default(),
        });
        io_step(process.serve(manager), "the service manager's looper")
    })
}

/// The sink: `TAKE_OBJECT(tag, binder)` checks that the object came as a handle and answers
/// the tag; the handle goes when the call's buffer is freed after the reply. `ECHO(tag)`
/// answers the tag.
struct Sink;

impl Sink {
    fn answer(call: &Call<'_>) -> io::Result<Parcel> {
        let mut request = call.reader();
        let mut reply = Parcel::new();
        match call.code() {
            PING_TRANSACTION => {}
            TAKE_OBJECT => {
                let tag = request.read_i32()?;
                let object = request.read_object()?;
                if !matches!(object, Object::Handle(_)) {
                    return Err(io::Error::other(format!("object {tag} came as {object:?}")));
                }
                reply.write_i32(tag);
            }
            ECHO => {
                reply.write_i32(request.read_i32()?);
            }
            code => return Err(io::Error::other(format!("unknown call {code}"))),
        }
        Ok(reply)
    }
}

impl Service for Sink {
    fn on_transact(&self, call: &Call<'_>) -> Response {
        match Self::answer(call) {
            Ok(reply) => Response::Reply(reply),
            Err(e) => {
                eprintln!("sink: {e}");
                Response::Status(-libc::EINVAL)
            }
        }
    }
}

/// What a client serves: nothing. Its looper threads are there for the driver's work on the
/// client's objects (`BR_INCREFS` and the rest may go to any of its loopers).
struct Idle;

impl Service for Idle {
    fn on_transact(&self, _call: &Call<'_>) -> Response {
        Response::Status(UNKNOWN_TRANSACTION)
    }
}

/// Sends `ADD_SERVICE(name, the node ptr)` to the service manager.
fn register(process: &Process, name: &str, ptr: u64) -> io::Result<()> {
    let mut request = Parcel::new();
    request
        .write_str(Some(name))
        .write_object(Object::Binder { ptr, cookie: ptr });
    drop(process.transact(0, ADD_SERVICE, &request)?);
    Ok(())
}

/// Asks the service manager for `name`; keeps a reference on the handle it answers.
fn look_up(process: &Process, name: &str) -> io::Result<Option<u32>> {
    let mut request = Parcel::new();
    request.write_str(Some(name));
    let reply = process.transact(0, GET_SERVICE, &request)?;
    match reply.reader()?.read_object()? {
        Object::Handle(handle) => {
            process.acquire(handle)?;
            Ok(Some(handle))
        }
        Object::Null => Ok(None),
        other => Err(io::Error::other(format!("GET_SERVICE answered {other:?}"))),
    }
}

/// Looks `name` up until the service manager has it, as a client waiting for a service does.
fn wait_for_service(process: &Process, name: &str, progress: &Progress, me: usize) -> Outcome<u32> {
    progress.doing(me, format!("waiting for {name} to be registered"));
    loop {
        if let Some(handle) = io_step(look_up(process, name), format!("look up {name}"))? {
            progress.advanced(me);
            return Ok(handle);
        }
        // Not there yet: give the registering thread the processor for a moment.
        thread::sleep(Duration::from_millis(2));
    }
}

/// Calls `code` on `handle` with `tag` (and `object`), and checks that the reply is the tag.
fn call_tagged(
    process: &Process,
    handle: u32,
    code: u32,
    tag: i32,
    object: Option<Object>,
) -> io::Result<()> {
    let mut request = Parcel::new();
    request.write_i32(tag);
    if let Some(object) = object {
        request.write_object(object);
    }
    let reply = process.transact(handle, code, &request)?;
    let answered = reply.reader()?.read_i32()?;
    if answered != tag {
        return Err(io::Error::other(format!("reply {answered} to call {tag}")));
    }
    Ok(())
}

/// Opens a client process with up to `threads` looper threads serving nothing.
fn client_process(threads: u32) -> Outcome<Arc<Process>> {
    let process = Arc::new(io_step(Process::open(BINDER), "open")?);
    io_step(process.binder().set_max_threads(threads), "max threads")?;
    let looper = Arc::clone(&process);
    thread::spawn(move || {
        if let Err(e) = looper.serve(Arc::new(Idle)) {
            eprintln!("client looper: {e}");
        }
    });
    Ok(process)
}

const SINK: &str = "conformance.sink";
const SINK_PTR: u64 = 0x5173_0000;
const SENDERS: usize = 4;
const ROUNDS: usize = 200;

/// A client process of four threads, each sending a new object of its own in each of 200
/// synchronous calls to a service of another process (reached through a third, the service
/// manager), and dropping it, while a fifth thread makes calls without objects to the service
/// and the service manager. The service has a pool of up to three loopers and lets each object
/// go when it answers (its handle goes with the call's buffer); the client runs looper threads
/// too, for the driver's work on its objects. The service registers while the client's threads
/// wait for it.
///
/// C finishes every call: the `BR_INCREFS`/`BR_ACQUIRE` of each new object come to the sending
/// thread with its reply, and the `BR_RELEASE`/`BR_DECREFS` to one of the client's loopers.
/// A thread that gets nowhere for 30 s fails the case, naming what each thread waits for.
fn clients_send_new_objects(_: &Env) -> Outcome {
    clients_send_objects(ROUNDS)
}

/// As [`clients_send_new_objects`], but each sender has two objects (pointers) that it sends in
/// turn, as a program whose allocator gives a new object the address of one just freed: an
/// object is sent again while the driver may still have work queued about its last trip (its
/// `BR_RELEASE`/`BR_DECREFS`, or the `BR_INCREFS`/`BR_ACQUIRE` of the last send).
///
/// C finishes every call: work about a node that is still queued is taken by whichever thread
/// reads it, and a node queued elsewhere moves to the thread that sends it again.
fn clients_resend_objects(_: &Env) -> Outcome {
    clients_send_objects(2)
}

/// The object cases: each sender cycles through `objects` object pointers.
fn clients_send_objects(objects: usize) -> Outcome {
    let manager = spawn_service_manager(2)?;
    let (service, mut service_link) = spawn_linked(|mut link| {
        let process = Arc::new(io_step(Process::open(BINDER), "open")?);
        io_step(process.binder().set_max_threads(3), "max threads")?;
        // A call back to the sink while its registration is going on comes to the registering
        // thread, which answers it with the service set here.
        process.set_service(Arc::new(Sink));
        link.wait()?;
        io_step(register(&process, SINK, SINK_PTR), "register the sink")?;
        io_step(process.serve(Arc::new(Sink)), "the sink's looper")
    })?;
    let outcome = run_clients(&mut service_link, objects);
    end_children(
        outcome,
        [("the service", service), ("the service manager", manager)],
    )
}

fn run_clients(service_link: &mut Link, objects: usize) -> Outcome {
    let client = client_process(2)?;
    let progress = Arc::new(Progress::default());
    let senders_left = Arc::new(AtomicUsize::new(SENDERS));
    for sender in 0..SENDERS {
        let client = Arc::clone(&client);
        let senders_left = Arc::clone(&senders_left);
        spawn_tracked(
            &progress,
            format!("sender {sender}"),
            move |progress, me| {
                let outcome = send_objects(&client, sender, objects, progress, me);
                senders_left.fetch_sub(1, Ordering::SeqCst);
                outcome
            },
        );
    }
    let pinger = Arc::clone(&client);
    spawn_tracked(&progress, "caller".into(), move |progress, me| {
        let sink = wait_for_service(&pinger, SINK, progress, me)?;
        let mut tag = 0;
        while senders_left.load(Ordering::SeqCst) > 0 {
            tag += 1;
            progress.doing(me, format!("waiting for the reply to ECHO {tag}"));
            io_step(
                call_tagged(&pinger, sink, ECHO, tag, None),
                format!("ECHO {tag}"),
            )?;
            progress.doing(
                me,
                format!("waiting for the service manager's answer {tag}"),
            );
            if let Some(handle) = io_step(look_up(&pinger, SINK), "look up the sink")? {
                io_step(pinger.release(handle), "drop the sink's handle")?;
            }
            progress.advanced(me);
        }
        Ok(())
    });
    // The service registers now, while the client's threads ask the manager for it.
    service_link.signal()?;
    progress.watch()
}

/// One sender's rounds: an object each time, sent in a call to the sink, then dropped; the
/// objects' pointers go round `objects` values.
fn send_objects(
    client: &Process,
    sender: usize,
    objects: usize,
    progress: &Progress,
    me: usize,
) -> Outcome {
    let sink = wait_for_service(client, SINK, progress, me)?;
    for round in 0..ROUNDS {
        let object = (round % objects) as u64;
        let ptr = 0x0b1e_0000_0000 + ((sender as u64) << 24) + (object << 4);
        let tag = i32::try_from(sender * ROUNDS + round).map_err(|e| e.to_string())?;
        progress.doing(
            me,
            format!("round {round}: waiting for the reply to the call with object {ptr:#x}"),
        );
        let object = Object::Binder { ptr, cookie: ptr };
        io_step(
            call_tagged(client, sink, TAKE_OBJECT, tag, Some(object)),
            format!("round {round}"),
        )?;
        progress.advanced(me);
    }
    Ok(())
}

const REGISTERED: usize = 30;
const LOOKERS: usize = 4;
const REGISTRY_PTR: u64 = 0x5e61_0000;

/// A service process registers 30 services (30 nodes) one after the other with the service
/// manager, which pings each back and asks about its death while the registering thread waits
/// for the reply, while four threads of a client process look each service up as soon as it is
/// there, call it through its handle and drop the handle. The service manager has a pool of up
/// to two loopers, the service of up to two, besides the thread that registers.
///
/// C finishes every registration and every call. A thread that gets nowhere for 30 s fails the
/// case, naming what each thread waits for.
fn services_register_while_looked_up(_: &Env) -> Outcome {
    let manager = spawn_service_manager(2)?;
    let (service, mut service_link) = spawn_linked(|mut link| {
        let process = Arc::new(io_step(Process::open(BINDER), "open")?);
        io_step(process.binder().set_max_threads(2), "max threads")?;
        process.set_service(Arc::new(Sink));
        let looper = Arc::clone(&process);
        thread::spawn(move || {
            if let Err(e) = looper.serve(Arc::new(Sink)) {
                eprintln!("service looper: {e}");
            }
        });
        link.wait()?;
        for index in 0..REGISTERED {
            let name = format!("conformance.registered.{index}");
            let ptr = REGISTRY_PTR + ((index as u64) << 4);
            io_step(register(&process, &name, ptr), format!("register {name}"))?;
        }
        // Stay, serving, until the case ends.
        link.wait()
    })?;
    let outcome = run_lookers(&mut service_link);
    end_children(
        outcome,
        [("the service", service), ("the service manager", manager)],
    )
}

fn run_lookers(service_link: &mut Link) -> Outcome {
    let client = client_process(1)?;
    let progress = Arc::new(Progress::default());
    for looker in 0..LOOKERS {
        let client = Arc::clone(&client);
        spawn_tracked(
            &progress,
            format!("looker {looker}"),
            move |progress, me| {
                for index in 0..REGISTERED {
                    let name = format!("conformance.registered.{index}");
                    let handle = wait_for_service(&client, &name, progress, me)?;
                    let tag =
                        i32::try_from(looker * REGISTERED + index).map_err(|e| e.to_string())?;
                    progress.doing(me, format!("waiting for the reply of {name}"));
                    io_step(
                        call_tagged(&client, handle, ECHO, tag, None),
                        format!("call {name}"),
                    )?;
                    io_step(client.release(handle), format!("drop {name}"))?;
                    progress.advanced(me);
                }
                Ok(())
            },
        );
    }
    service_link.signal()?;
    progress.watch()
}
