// SPDX-License-Identifier: GPL-2.0

//! rb-servicemanager: the context manager (handle 0) and its table of named services.
//!
//! It speaks `android.os.IServiceManager` (Android 16 numbering) as Android's service manager
//! and rsbinder's `rsb_hub` do, so their clients and tools work with it: getService(2),
//! checkService(2), addService, listServices, registerForNotifications and its undoing,
//! tryUnregisterService, getServiceDebugInfo, and isDeclared (always false: nothing is
//! declared). It holds a reference on each registered service and asks for its death, so a
//! dead service leaves the table. The other methods (lazy services, APEX, connection info)
//! answer `EX_UNSUPPORTED_OPERATION`. There is no access control: anyone may register.
//!
//! Usage: rb-servicemanager [--device PATH]

use std::{
    collections::BTreeMap,
    process::ExitCode,
    sync::{Arc, Mutex},
};

use binder_client::{
    parcel::{exception, INTERFACE_TRANSACTION, PING_TRANSACTION, UNKNOWN_TRANSACTION},
    Call, Object, Parcel, ParcelError, Process, Response, Service,
};
use demo::{fail, say, sm, Args};

/// One registered service.
#[derive(Debug)]
struct Entry {
    handle: u32,
    /// The cookie of the death notification asked for on `handle`.
    cookie: u64,
    dump_priority: i32,
    /// Who registered it.
    pid: i32,
}

struct Manager {
    process: Arc<Process>,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    services: BTreeMap<String, Entry>,
    next_cookie: u64,
    /// `IServiceCallback` handles to tell when a name is registered, by name.
    callbacks: Vec<(String, u32)>,
}

/// `android.os.IServiceCallback`: `oneway void onRegistration(String name, IBinder binder)`.
const CALLBACK_DESCRIPTOR: &str = "android.os.IServiceCallback";
const ON_REGISTRATION: u32 = binder_client::parcel::FIRST_CALL_TRANSACTION;

impl Manager {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while holding the lock aborts the process (panic = "abort"), so a poisoned
        // lock still holds a consistent table.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn answer(&self, call: &Call<'_>) -> Result<Parcel, ParcelError> {
        let mut args = call.reader();
        args.expect_interface(sm::DESCRIPTOR)?;
        let mut reply = Parcel::new();
        let pid = call.sender_pid();
        match call.code() {
            sm::code::GET_SERVICE | sm::code::CHECK_SERVICE => {
                let name = args.read_string()?;
                let method = if call.code() == sm::code::GET_SERVICE {
                    "getService"
                } else {
                    "checkService"
                };
                let found = self.table().services.get(&name).map(|e| e.handle);
                reply.write_ok_status();
                match found {
                    Some(handle) => {
                        say!(
                            "{method}({name:?}) from pid {pid} (code {}): handle {handle}",
                            call.code()
                        );
                        reply.write_object(Object::Handle(handle));
                    }
                    None => {
                        say!("{method}({name:?}) from pid {pid}: not registered");
                        reply.write_object(Object::Null);
                    }
                }
            }
            sm::code::GET_SERVICE2 | sm::code::CHECK_SERVICE2 => {
                let name = args.read_string()?;
                let found = self.table().services.get(&name).map(|e| e.handle);
                say!(
                    "{}({name:?}) from pid {pid} (code {}): {}",
                    if call.code() == sm::code::GET_SERVICE2 {
                        "getService2"
                    } else {
                        "checkService2"
                    },
                    call.code(),
                    found.map_or("not registered".into(), |h| format!("handle {h}"))
                );
                reply.write_ok_status();
                sm::write_service(&mut reply, found.map_or(Object::Null, Object::Handle));
            }
            sm::code::GET_SERVICE_DEBUG_INFO => {
                let table = self.table();
                reply
                    .write_ok_status()
                    .write_i32(table.services.len() as i32);
                for (name, entry) in &table.services {
                    reply.write_parcelable(|info| {
                        info.write_str(Some(name)).write_i32(entry.pid);
                    });
                }
            }
            sm::code::ADD_SERVICE => {
                let name = args.read_string()?;
                let service = args.read_object()?;
                let _allow_isolated = args.read_bool()?;
                let dump_priority = args.read_i32()?;
                let Object::Handle(handle) = service else {
                    reply.write_exception(
                        exception::ILLEGAL_ARGUMENT,
                        "addService needs another process's binder",
                    );
                    return Ok(reply);
                };
                self.add(name, handle, dump_priority, pid)
                    .map_err(|e| ParcelError::Invalid(e.to_string()))?;
                reply.write_ok_status();
            }
            sm::code::LIST_SERVICES => {
                let priority = args.read_i32()?;
                let names: Vec<String> = self
                    .table()
                    .services
                    .iter()
                    .filter(|(_, e)| e.dump_priority & priority != 0)
                    .map(|(name, _)| name.clone())
                    .collect();
                say!(
                    "listServices from pid {pid} (code {}): {names:?}",
                    call.code()
                );
                reply.write_ok_status().write_str_list(&names);
            }
            sm::code::TRY_UNREGISTER_SERVICE => {
                let name = args.read_string()?;
                let service = args.read_object()?;
                let mut table = self.table();
                match table.services.get(&name) {
                    Some(e) if Object::Handle(e.handle) == service => {
                        let e = table.services.remove(&name);
                        drop(table);
                        if let Some(e) = e {
                            self.forget(&name, &e, "unregistered");
                        }
                        reply.write_ok_status();
                    }
                    _ => {
                        reply.write_exception(
                            exception::ILLEGAL_STATE,
                            "no such service registered with this binder",
                        );
                    }
                }
            }
            sm::code::REGISTER_FOR_NOTIFICATIONS | sm::code::UNREGISTER_FOR_NOTIFICATIONS => {
                let name = args.read_string()?;
                let Object::Handle(callback) = args.read_object()? else {
                    reply.write_exception(exception::ILLEGAL_ARGUMENT, "no callback binder");
                    return Ok(reply);
                };
                if call.code() == sm::code::REGISTER_FOR_NOTIFICATIONS {
                    self.register_callback(name, callback, pid)
                        .map_err(|e| ParcelError::Invalid(e.to_string()))?;
                } else {
                    self.unregister_callback(&name, callback, pid);
                }
                reply.write_ok_status();
            }
            sm::code::IS_DECLARED => {
                let _name = args.read_string()?;
                reply.write_ok_status().write_bool(false);
            }
            sm::code::GET_DECLARED_INSTANCES | sm::code::GET_UPDATABLE_NAMES => {
                reply.write_ok_status().write_str_list::<&str>(&[]);
            }
            sm::code::UPDATABLE_VIA_APEX => {
                reply.write_ok_status().write_str(None);
            }
            code => {
                say!("method {code} from pid {pid}: not supported");
                reply.write_exception(
                    exception::UNSUPPORTED_OPERATION,
                    "rb-servicemanager does not implement this method",
                );
            }
        }
        Ok(reply)
    }

    /// Records `handle` as `name`, keeping a reference on it and asking for its death.
    fn add(&self, name: String, handle: u32, dump_priority: i32, pid: i32) -> std::io::Result<()> {
        let mut table = self.table();
        if let Some(entry) = table.services.get_mut(&name) {
            if entry.handle == handle {
                // The same node again: the reference and death notice we hold still apply.
                entry.dump_priority = dump_priority;
                entry.pid = pid;
                say!("addService({name:?}) from pid {pid}: handle {handle} again");
                return Ok(());
            }
        }
        table.next_cookie += 1;
        let cookie = table.next_cookie;
        self.process.acquire(handle)?;
        self.process.request_death(handle, cookie)?;
        say!(
            "addService({name:?}) from pid {pid} (code {}): handle {handle}, death notice cookie {cookie}",
            sm::code::ADD_SERVICE
        );
        let entry = Entry {
            handle,
            cookie,
            dump_priority,
            pid,
        };
        let waiting: Vec<u32> = table
            .callbacks
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, c)| *c)
            .collect();
        let old = table.services.insert(name.clone(), entry);
        drop(table);
        if let Some(old) = old {
            self.forget(&name, &old, "replaced");
        }
        for callback in waiting {
            self.notify(&name, handle, callback);
        }
        Ok(())
    }

    /// Remembers `callback` (an `IServiceCallback`) to tell when `name` is registered, and
    /// tells it at once if it is.
    fn register_callback(&self, name: String, callback: u32, pid: i32) -> std::io::Result<()> {
        self.process.acquire(callback)?;
        let mut table = self.table();
        say!(
            "registerForNotifications({name:?}) from pid {pid} (code {}): callback handle {callback}",
            sm::code::REGISTER_FOR_NOTIFICATIONS
        );
        let now = table.services.get(&name).map(|e| e.handle);
        table.callbacks.push((name.clone(), callback));
        drop(table);
        if let Some(handle) = now {
            self.notify(&name, handle, callback);
        }
        Ok(())
    }

    fn unregister_callback(&self, name: &str, callback: u32, pid: i32) {
        let mut table = self.table();
        let before = table.callbacks.len();
        table
            .callbacks
            .retain(|(n, c)| !(n == name && *c == callback));
        let removed = before - table.callbacks.len();
        drop(table);
        say!("unregisterForNotifications({name:?}) from pid {pid}: {removed} removed");
        for _ in 0..removed {
            let _ = self.process.release(callback);
        }
    }

    /// Tells `callback` that `name` is now `handle` (a one-way `onRegistration`).
    fn notify(&self, name: &str, handle: u32, callback: u32) {
        let mut data = Parcel::new();
        data.write_interface_token(CALLBACK_DESCRIPTOR)
            .write_str(Some(name))
            .write_object(Object::Handle(handle));
        match self
            .process
            .transact_oneway(callback, ON_REGISTRATION, &data)
        {
            Ok(()) => say!("onRegistration({name:?}) to callback handle {callback}"),
            Err(e) => say!("onRegistration({name:?}) to callback handle {callback}: {e}"),
        }
    }

    /// Lets go of a service that left the table.
    fn forget(&self, name: &str, entry: &Entry, why: &str) {
        say!(
            "{name:?} (handle {}, registered by pid {}) {why}: removed",
            entry.handle,
            entry.pid
        );
        // The handle may be shared with a newer registration of the same service; the driver
        // counts references, so releasing ours is right either way.
        let _ = self.process.clear_death(entry.handle, entry.cookie);
        if let Err(e) = self.process.release(entry.handle) {
            say!("{e}");
        }
    }
}

impl Service for Manager {
    fn on_transact(&self, call: &Call<'_>) -> Response {
        match call.code() {
            INTERFACE_TRANSACTION => Response::descriptor(sm::DESCRIPTOR),
            PING_TRANSACTION => Response::Reply(Parcel::new()),
            code if (1..=sm::code::GET_SERVICE_DEBUG_INFO).contains(&code) => {
                match self.answer(call) {
                    Ok(reply) => Response::Reply(reply),
                    Err(e) => {
                        say!("bad call {code} from pid {}: {e}", call.sender_pid());
                        let mut reply = Parcel::new();
                        reply.write_exception(exception::ILLEGAL_ARGUMENT, &e.to_string());
                        Response::Reply(reply)
                    }
                }
            }
            code => {
                say!(
                    "unknown transaction code {code:#x} from pid {}",
                    call.sender_pid()
                );
                Response::Status(UNKNOWN_TRANSACTION)
            }
        }
    }

    fn on_death(&self, cookie: u64) {
        let mut table = self.table();
        let name = table
            .services
            .iter()
            .find(|(_, e)| e.cookie == cookie)
            .map(|(name, _)| name.clone());
        if let Some(entry) = name.as_ref().and_then(|n| table.services.remove(n)) {
            drop(table);
            // The node is gone: only our reference is left to drop.
            say!(
                "BR_DEAD_BINDER cookie {cookie}: {:?} (handle {}) died",
                name.unwrap_or_default(),
                entry.handle
            );
            if let Err(e) = self.process.release(entry.handle) {
                say!("{e}");
            }
        }
    }
}

fn run(args: &Args) -> std::io::Result<()> {
    let process = Arc::new(Process::open(&args.device)?);
    process.become_context_manager()?;
    say!(
        "context manager of {}: other processes reach this one as handle 0",
        args.device
    );
    let manager = Arc::new(Manager {
        process: Arc::clone(&process),
        table: Mutex::new(Table::default()),
    });
    say!("serving {} (single-threaded)", sm::DESCRIPTOR);
    process.serve(manager)
}

fn main() -> ExitCode {
    let args = match Args::parse(&[]) {
        Ok(args) if args.positional.is_empty() => args,
        Ok(_) => return fail("usage: rb-servicemanager [--device PATH]"),
        Err(e) => return fail(e),
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
