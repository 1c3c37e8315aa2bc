//! rust_binder as a module: unloading, reloading, and its `devices` parameter.
//!
//! These cases unload the driver under test, so they run last and always leave it loaded
//! with its default parameters.
//!
//! A `devices=` that rust_binder refuses fails the load with an errno and a line in the kernel
//! log that says why, and leaves nothing behind: no module, no device of the names before the
//! bad one. Where the C driver checks a name itself, the errno is its: `E2BIG` for a name
//! longer than binderfs's 255 bytes (`init_binderfs`). Elsewhere it registers what it is
//! given and lets the misc or binderfs core fail, so rust_binder checks up front, with
//! `EINVAL`.

use std::{
    fs::{self, File},
    io::{Read, Seek, SeekFrom},
    os::{fd::AsRawFd, unix::fs::OpenOptionsExt},
    path::Path,
    time::Instant,
};

use binder_client::{uapi, Binder, Commands, FlatObject, Payload, Return};

use crate::{
    ensure,
    harness::{
        eventually, expect_errno, Case, Driver, Env, Outcome, Step, BINDER, HWBINDER, VNDBINDER,
    },
    kmod,
};

use super::{
    concurrency::{await_sleeping_in_binder_read, gettid},
    context_mgr::become_manager,
    peer::{spawn_manager, Peer},
};

pub const CASES: &[Case] = &[
    Case::only(
        Driver::Rust,
        "module_unload_waits_for_files",
        module_unload_waits_for_files,
    ),
    Case::only(Driver::Rust, "module_reload_loop", module_reload_loop),
    Case::only(
        Driver::Rust,
        "module_lifecycle_cycles_with_traffic",
        module_lifecycle_cycles_with_traffic,
    ),
    Case::only(
        Driver::Rust,
        "module_unload_refused_while_a_thread_sleeps_in_it",
        module_unload_refused_while_a_thread_sleeps_in_it,
    ),
    Case::only(Driver::Rust, "module_devices_param", module_devices_param),
    Case::only(
        Driver::Rust,
        "module_devices_param_empty",
        module_devices_param_empty,
    ),
    Case::only(
        Driver::Rust,
        "module_devices_param_duplicate",
        module_devices_param_duplicate,
    ),
    Case::only(
        Driver::Rust,
        "module_devices_param_name_too_long",
        module_devices_param_name_too_long,
    ),
    Case::only(
        Driver::Rust,
        "module_devices_param_not_a_file_name",
        module_devices_param_not_a_file_name,
    ),
    Case::only(
        Driver::Rust,
        "module_devices_param_64_names",
        module_devices_param_64_names,
    ),
];

const MODULE_NAME: &str = "rust_binder";

/// Reloads rust_binder with its defaults when dropped, so a failed case leaves it loaded.
struct Reload<'a>(&'a Path);

impl Drop for Reload<'_> {
    fn drop(&mut self) {
        if !Path::new(BINDER).exists() {
            let _ = kmod::unload(MODULE_NAME);
            let _ = kmod::load(self.0, "");
        }
    }
}

fn module_path(env: &Env) -> Outcome<&Path> {
    env.module
        .as_deref()
        .ok_or_else(|| "no --module given".to_string())
}

/// An open file, and a mapping that outlives its descriptor, keep the module loaded.
fn module_unload_waits_for_files(env: &Env) -> Outcome {
    let path = module_path(env)?;
    let _reload = Reload(path);
    let binder = Binder::open(BINDER).step("open")?;
    expect_errno(
        kmod::unload(MODULE_NAME),
        libc::EAGAIN,
        "unload with a file open",
    )?;
    let mapping = binder.map(1 << 20, libc::PROT_READ).step("mmap")?;
    drop(binder);
    expect_errno(
        kmod::unload(MODULE_NAME),
        libc::EAGAIN,
        "unload with a mapping left",
    )?;
    mapping.unmap().step("munmap")?;
    kmod::unload(MODULE_NAME).step("unload with nothing open")?;
    ensure!(
        !Path::new(BINDER).exists(),
        "{BINDER} still exists after unload"
    );
    kmod::load(path, "").step("load")?;
    Binder::open(BINDER)
        .step("open after reload")?
        .version()
        .step("version")
        .map(drop)
}

/// Load and unload many times, using every device each time; the kernel log check after the
/// suite catches what this leaks.
fn module_reload_loop(env: &Env) -> Outcome {
    let path = module_path(env)?;
    let _reload = Reload(path);
    for round in 0..20 {
        kmod::unload(MODULE_NAME).step(&format!("unload, round {round}"))?;
        kmod::load(path, "").step(&format!("load, round {round}"))?;
        for device in [BINDER, HWBINDER, VNDBINDER] {
            let binder = Binder::open(device).step(device)?;
            binder.version().step(device)?;
            binder
                .set_context_mgr()
                .step(&format!("{device}: set context manager"))?;
            let _mapping = binder.map(1 << 20, libc::PROT_READ).step(device)?;
        }
    }
    Ok(())
}

/// How many cycles [`module_lifecycle_cycles_with_traffic`] runs unless the guest's kernel
/// command line says otherwise with `rb.lifecycle_cycles=N` (which `vm.sh` adds from
/// `LIFECYCLE_CYCLES=N`).
const LIFECYCLE_CYCLES: u32 = 100;

/// The cycle count: `rb.lifecycle_cycles=` on the kernel command line, else the default.
fn lifecycle_cycles() -> u32 {
    fs::read_to_string("/proc/cmdline")
        .ok()
        .and_then(|line| {
            line.split_whitespace()
                .find_map(|arg| arg.strip_prefix("rb.lifecycle_cycles=")?.parse().ok())
        })
        .unwrap_or(LIFECYCLE_CYCLES)
}

/// Unloads rust_binder once the processes of the last cycle are released: their files may
/// still be on their way out when their exit is reported, so a busy module is tried again.
fn unload_when_idle(what: &str) -> Outcome {
    eventually(what, || match kmod::unload(MODULE_NAME) {
        Ok(()) => Ok(Some(())),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EBUSY)) => Ok(None),
        Err(e) => Err(format!("{what}: {e}")),
    })
}

/// One short exchange on a freshly loaded module: a context manager in a child process takes
/// a call carrying a binder object (a node and a handle) and a one-way call, and exits; the
/// calling process checks the reply and ends its part by closing its file.
fn lifecycle_exchange(cycle: u32) -> Outcome {
    let manager = spawn_manager(move |m| {
        let (call, _) = m.next_call()?;
        let objects = m.objects(&call)?;
        ensure!(objects.len() == 1, "the call brought {objects:?}");
        m.reply_and_free(&call, &Payload::new().bytes(&cycle.to_ne_bytes()))?;
        let (oneway, _) = m.next_call()?;
        m.free(&oneway)
    })?;
    let c = Peer::open()?;
    let payload = Payload::new()
        .bytes(b"cycle...")
        .object(FlatObject::binder(0x1000 + u64::from(cycle), 7));
    let reply = c.call_for_reply(0, 1, &payload)?;
    let data = c.received(&reply).data().step("reply")?;
    ensure!(
        data == cycle.to_ne_bytes(),
        "cycle {cycle}: the reply reads {data:?}"
    );
    c.free(&reply)?;
    c.send_call_flags(0, 2, uapi::TF_ONE_WAY, &Payload::new().bytes(b"bye"))?;
    manager.join()
}

/// Load and unload rust_binder again and again with a short exchange in between (nodes,
/// handles, a reply, a one-way call, processes that exit holding them): each unload must
/// find everything of the cycle released (the kernel log check after the suite catches what
/// leaks, rust_binder's census included). Prints how long the cycles took.
fn module_lifecycle_cycles_with_traffic(env: &Env) -> Outcome {
    let path = module_path(env)?;
    let _reload = Reload(path);
    let cycles = lifecycle_cycles();
    // This case's own watchdog, sized for its cycle count (it replaces the suite's).
    // SAFETY: `alarm` only arms a timer.
    unsafe { libc::alarm(60 + 5 * cycles) };
    let start = Instant::now();
    for cycle in 0..cycles {
        unload_when_idle(&format!("unload, cycle {cycle}"))?;
        kmod::load(path, "").step(&format!("load, cycle {cycle}"))?;
        lifecycle_exchange(cycle).map_err(|e| format!("cycle {cycle}: {e}"))?;
    }
    println!(
        "figures: module_lifecycle: {cycles} load/unload cycles with traffic in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// Starts a thread that enters the looper on `binder` and sleeps in a read, and waits until
/// it does; the thread returns what the read ended with.
fn sleep_in_read<'scope>(
    s: &'scope std::thread::Scope<'scope, '_>,
    binder: &'scope Binder,
) -> Outcome<(
    std::thread::ScopedJoinHandle<'scope, std::io::Result<Vec<Return>>>,
    i32,
)> {
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let sleeper = s.spawn(move || {
        let _ = tid_tx.send(gettid());
        binder.send(&Commands::new().enter_looper())?;
        binder.read()
    });
    let tid = tid_rx.recv().map_err(|_| "the sleeper never started")?;
    await_sleeping_in_binder_read(tid)?;
    Ok((sleeper, tid))
}

/// A thread asleep in a binder read keeps the module: unloading is refused (never a crash),
/// and a signal ends the read with EINTR. A thread asleep when its file's descriptor is
/// closed (here replaced with /dev/null's) is woken by the flush, as in C, with only BR_NOOP;
/// the read's own reference to the file then goes with the read, and the module unloads.
fn module_unload_refused_while_a_thread_sleeps_in_it(env: &Env) -> Outcome {
    let path = module_path(env)?;
    let _reload = Reload(path);
    // SAFETY: A zeroed sigaction with a handler that does nothing, without SA_RESTART, so
    // the signal ends the read with EINTR.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ignore_signal as *const () as usize;
        libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut());
    }
    let binder = Binder::open(BINDER).step("open")?;
    std::thread::scope(|s| -> Outcome {
        let (sleeper, tid) = sleep_in_read(s, &binder)?;
        expect_errno(
            kmod::unload(MODULE_NAME),
            libc::EAGAIN,
            "unload while a thread sleeps in a read",
        )?;
        // SAFETY: Plain syscall: the signal goes to the sleeping thread of this process.
        unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGUSR1) };
        let result = sleeper
            .join()
            .map_err(|_| "the sleeper panicked".to_string())?;
        expect_errno(result, libc::EINTR, "the read ended by a signal")?;

        let (sleeper, _) = sleep_in_read(s, &binder)?;
        let null = File::open("/dev/null").step("open /dev/null")?;
        // SAFETY: Replaces the binder descriptor's file with /dev/null's (closing the binder
        // file's descriptor); `binder` closes /dev/null's when dropped.
        let ret = unsafe { libc::dup2(null.as_raw_fd(), binder.as_raw_fd()) };
        ensure!(ret >= 0, "dup2: {}", std::io::Error::last_os_error());
        let returns = sleeper
            .join()
            .map_err(|_| "the sleeper panicked".to_string())?
            .step("the read when the descriptor was closed")?;
        ensure!(
            returns == [Return::Noop],
            "the read woken by the close returned {returns:?}"
        );
        Ok(())
    })?;
    unload_when_idle("unload once the read ended")?;
    kmod::load(path, "").step("load")?;
    Binder::open(BINDER)
        .step("open after reload")?
        .version()
        .step("version")
        .map(drop)
}

fn module_devices_param(env: &Env) -> Outcome {
    let path = module_path(env)?;
    let _reload = Reload(path);
    kmod::unload(MODULE_NAME).step("unload")?;
    kmod::load(path, "devices=rbtest_a,rbtest_b").step("load with devices=")?;
    ensure!(
        !Path::new(BINDER).exists(),
        "{BINDER} exists without being asked for"
    );
    let param =
        fs::read_to_string("/sys/module/rust_binder/parameters/devices").step("read param")?;
    ensure!(
        param.trim_end() == "rbtest_a,rbtest_b",
        "devices parameter reads {param:?}"
    );
    let a = Binder::open("/dev/rbtest_a").step("open rbtest_a")?;
    let b = Binder::open("/dev/rbtest_b").step("open rbtest_b")?;
    become_manager(&a)?;
    become_manager(&b).map_err(|e| format!("rbtest_b is not a context of its own: {e}"))?;
    drop((a, b));
    kmod::unload(MODULE_NAME).step("unload")?;
    kmod::load(path, "").step("load with defaults")?;
    ensure!(
        Path::new(BINDER).exists(),
        "{BINDER} missing after reload with defaults"
    );
    Ok(())
}

/// The kernel log from the moment it is opened: `/dev/kmsg`, read from its end.
struct KernelLog(File);

impl KernelLog {
    fn open() -> Outcome<Self> {
        let mut kmsg = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .step("open /dev/kmsg")?;
        kmsg.seek(SeekFrom::End(0))
            .step("seek to the end of /dev/kmsg")?;
        Ok(Self(kmsg))
    }

    /// The messages logged since the last call (or since `open`), one line each.
    fn new_messages(&mut self) -> Outcome<Vec<String>> {
        let mut messages = Vec::new();
        // One read returns one record: "PRIORITY,SEQUENCE,TIME,FLAGS;MESSAGE\n", then
        // continuation lines of its own.
        let mut record = vec![0u8; 8192];
        loop {
            match self.0.read(&mut record) {
                Ok(0) => break,
                Ok(n) => {
                    let text = String::from_utf8_lossy(&record[..n]);
                    if let Some((_, message)) = text.split_once(';') {
                        messages.push(message.lines().next().unwrap_or("").to_string());
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break,
                // Records were overwritten before they were read; go on with the next one.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) => return Err(format!("read /dev/kmsg: {e}")),
            }
        }
        Ok(messages)
    }
}

/// Loads rust_binder with `params` and checks that the load fails with `errno`, that the
/// kernel log has a rust_binder line about `devices=` containing `says`, and that nothing of
/// the module is left: neither the module nor any of the devices in `absent`.
fn expect_refused(path: &Path, params: &str, errno: i32, says: &str, absent: &[&str]) -> Outcome {
    let shown = if params.len() > 80 {
        format!("{}... ({} bytes)", &params[..80], params.len())
    } else {
        params.to_string()
    };
    let mut log = KernelLog::open()?;
    expect_errno(kmod::load(path, params), errno, &shown)?;
    let messages = log.new_messages()?;
    ensure!(
        messages
            .iter()
            .any(|m| m.starts_with("rust_binder: ") && m.contains("devices=") && m.contains(says)),
        "{shown}: no rust_binder line about devices= saying {says:?} in the kernel log; it got \
         {messages:?}"
    );
    ensure!(
        !Path::new("/sys/module/rust_binder").exists(),
        "{shown}: /sys/module/rust_binder exists after the failed load"
    );
    for name in absent {
        let dev = format!("/dev/{name}");
        ensure!(
            !Path::new(&dev).exists(),
            "{shown}: {dev} was left behind by the failed load"
        );
    }
    Ok(())
}

/// Unloads rust_binder for a case about its parameters; `Reload` loads it back afterwards.
fn unload_for_params() -> Outcome {
    kmod::unload(MODULE_NAME).step("unload")?;
    ensure!(!Path::new(BINDER).exists(), "{BINDER} exists after unload");
    Ok(())
}

/// `devices=` that names no device: the C driver would load and make its devices in binderfs
/// mounts later; rust_binder, with no binderfs, would be a module with nothing in it.
fn module_devices_param_empty(env: &Env) -> Outcome {
    let path = module_path(env)?;
    let _reload = Reload(path);
    unload_for_params()?;
    for params in ["devices=", "devices=,", "devices=,,,"] {
        expect_refused(path, params, libc::EINVAL, "no device", &[])?;
    }
    // Empty names next to real ones are skipped, as a trailing comma is in the C driver.
    kmod::load(path, "devices=rbempty_a,,rbempty_b,").step("load with empty names between")?;
    for dev in ["/dev/rbempty_a", "/dev/rbempty_b"] {
        Binder::open(dev).step(dev)?.version().step(dev)?;
    }
    kmod::unload(MODULE_NAME).step("unload")?;
    Ok(())
}

/// A name given twice would be a second misc device of the same name, which the misc core
/// refuses only after a sysfs warning; the devices registered before it must go too.
fn module_devices_param_duplicate(env: &Env) -> Outcome {
    let path = module_path(env)?;
    let _reload = Reload(path);
    unload_for_params()?;
    expect_refused(
        path,
        "devices=rbdup_a,rbdup_twin,rbdup_b,rbdup_twin",
        libc::EINVAL,
        "rbdup_twin",
        &["rbdup_a", "rbdup_twin", "rbdup_b"],
    )?;
    expect_refused(
        path,
        "devices=rbdup_twin,rbdup_twin",
        libc::EINVAL,
        "rbdup_twin",
        &["rbdup_twin"],
    )
}

/// Names are file names in /dev (as in a binderfs mount), so 255 bytes at most; the C driver
/// refuses a longer one at load with `E2BIG` (`init_binderfs`), and so does rust_binder.
fn module_devices_param_name_too_long(env: &Env) -> Outcome {
    let path = module_path(env)?;
    let _reload = Reload(path);
    unload_for_params()?;
    let longest = format!("rb{}", "l".repeat(253));
    let too_long = format!("{longest}x");
    expect_refused(
        path,
        &format!("devices=rblong_a,{too_long}"),
        libc::E2BIG,
        "255",
        &["rblong_a"],
    )?;
    kmod::load(path, &format!("devices={longest}")).step("load with a 255-byte name")?;
    let dev = format!("/dev/{longest}");
    Binder::open(&dev)
        .step("open the 255-byte name")?
        .version()
        .step("version")?;
    kmod::unload(MODULE_NAME).step("unload")?;
    Ok(())
}

/// A name with `/` in it, `.` or `..` is no file name: devtmpfs would make a directory of
/// it, or clash with one.
fn module_devices_param_not_a_file_name(env: &Env) -> Outcome {
    let path = module_path(env)?;
    let _reload = Reload(path);
    unload_for_params()?;
    for (bad, says) in [("rb/slash", "rb/slash"), (".", "\".\""), ("..", "\"..\"")] {
        expect_refused(
            path,
            &format!("devices=rbname_a,{bad}"),
            libc::EINVAL,
            says,
            &["rbname_a"],
        )?;
    }
    Ok(())
}

/// The C driver sets no limit on the number of devices, nor does rust_binder: 64 names make
/// 64 devices, each a context of its own; and a bad 64th name takes the other 63 down with it.
fn module_devices_param_64_names(env: &Env) -> Outcome {
    let path = module_path(env)?;
    let _reload = Reload(path);
    unload_for_params()?;
    let names: Vec<String> = (0..64).map(|i| format!("rb64_{i:02}")).collect();
    let list = names.join(",");
    kmod::load(path, &format!("devices={list}")).step("load with 64 names")?;
    let param =
        fs::read_to_string("/sys/module/rust_binder/parameters/devices").step("read param")?;
    ensure!(
        param.trim_end() == list,
        "devices parameter reads {param:?}"
    );
    let mut open = Vec::new();
    for name in &names {
        let dev = format!("/dev/{name}");
        let binder = Binder::open(&dev).step(&dev)?;
        become_manager(&binder).map_err(|e| format!("{dev}: {e}"))?;
        open.push(binder);
    }
    drop(open);
    kmod::unload(MODULE_NAME).step("unload")?;
    for name in &names {
        ensure!(
            !Path::new(&format!("/dev/{name}")).exists(),
            "/dev/{name} is still there after unload"
        );
    }
    let absent: Vec<&str> = names[..63].iter().map(String::as_str).collect();
    expect_refused(
        path,
        &format!("devices={},rb64/bad", names[..63].join(",")),
        libc::EINVAL,
        "rb64/bad",
        &absent,
    )
}
