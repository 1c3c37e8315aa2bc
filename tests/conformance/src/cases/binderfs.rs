//! binderfs: mounts, `binder-control`'s `BINDER_CTL_ADD`, mount options, unlink and rename,
//! `features/`, `binder_logs/proc/<pid>`, and a device's context outliving its file.
//!
//! Every case mounts binderfs afresh on a directory of its own (both drivers register the
//! `binder` filesystem; each mount starts with the driver's three default devices), so cases
//! never see each other's devices.

use std::{
    fs,
    os::unix::fs::{FileTypeExt, MetadataExt},
    path::Path,
    sync::Arc,
    thread,
};

use binder_client::{
    binderfs::{device_request, Mount, FEATURES, MAX_NAME},
    Binder, Call, Parcel, Process, Response, Service,
};

use crate::{
    ensure,
    harness::{expect_errno, notice, spawn_ready, Case, Child, Driver, Env, Outcome, Step},
    kmod,
};

pub const CASES: &[Case] = &[
    Case::new("binderfs_mount_has_defaults", binderfs_mount_has_defaults),
    Case::new("binderfs_ctl_add_and_call", binderfs_ctl_add_and_call),
    Case::new("binderfs_ctl_add_names", binderfs_ctl_add_names),
    Case::new("binderfs_ctl_add_eexist", binderfs_ctl_add_eexist),
    Case::new("binderfs_ctl_add_concurrent", binderfs_ctl_add_concurrent),
    Case::new("binderfs_max", binderfs_max),
    Case::new(
        "binderfs_mount_options_refused",
        binderfs_mount_options_refused,
    ),
    Case::new("binderfs_stats_remount", binderfs_stats_remount),
    Case::new("binderfs_unlink_rename", binderfs_unlink_rename),
    Case::new(
        "binderfs_context_outlives_unlink_and_umount",
        binderfs_context_outlives_unlink_and_umount,
    ),
    Case::new("binderfs_features", binderfs_features),
    Case::new("binderfs_logs_proc_entry", binderfs_logs_proc_entry),
    Case::new("binderfs_userns_mount", binderfs_userns_mount),
    Case::only(
        Driver::Rust,
        "binderfs_rmmod_refused_while_mounted",
        binderfs_rmmod_refused_while_mounted,
    ),
];

/// The devices every mount starts with (the drivers are loaded with these names).
const DEFAULTS: [&str; 3] = ["binder", "hwbinder", "vndbinder"];

/// The call a [`Tagged`] manager answers with its tag.
const WHO: u32 = 1;

/// A context manager that answers [`WHO`] with its tag, to tell managers apart.
struct Tagged(i32);

impl Service for Tagged {
    fn on_transact(&self, call: &Call<'_>) -> Response {
        if call.code() != WHO {
            return Response::Status(-libc::EINVAL);
        }
        let mut reply = Parcel::new();
        reply.write_i32(self.0);
        Response::Reply(reply)
    }
}

/// Starts a child that becomes the context manager of the device at `path` and answers
/// [`WHO`] with `tag` until it is killed.
fn start_manager(path: &Path, tag: i32) -> Outcome<Child> {
    let path = path.to_path_buf();
    spawn_ready(move |ready| {
        let process = Arc::new(Process::open(&path).step("open the device")?);
        process
            .become_context_manager()
            .step("become the context manager")?;
        ready();
        process
            .serve(Arc::new(Tagged(tag)))
            .step("serve as the context manager")
    })
}

/// Calls [`WHO`] on handle 0 of `process`; returns the manager's tag.
fn ask_manager(process: &Process) -> Outcome<i32> {
    let reply = process
        .transact(0, WHO, &Parcel::new())
        .step("call handle 0")?;
    reply
        .reader()
        .step("the reply")?
        .read_i32()
        .map_err(|e| format!("the reply's tag: {e:?}"))
}

fn mount(options: &str) -> Outcome<Mount> {
    Mount::new(options).step(&format!("mount binderfs ({options:?})"))
}

/// A mount has binder-control, the default devices, features/, and no binder_logs/ unless
/// asked; devices are character devices owned by root, 0600.
fn binderfs_mount_has_defaults(_: &Env) -> Outcome {
    let mount = mount("")?;
    let mut names: Vec<String> = fs::read_dir(mount.path())
        .step("list the mount")?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<String> = ["binder-control", "features"]
        .iter()
        .chain(DEFAULTS.iter())
        .map(|s| s.to_string())
        .collect();
    want.sort();
    ensure!(names == want, "the mount has {names:?}, not {want:?}");
    for name in DEFAULTS.iter().chain(["binder-control"].iter()) {
        let meta = fs::metadata(mount.join(name)).step(name)?;
        ensure!(
            meta.file_type().is_char_device(),
            "{name} is not a character device"
        );
        ensure!(
            meta.mode() & 0o7777 == 0o600 && meta.uid() == 0 && meta.gid() == 0,
            "{name} is mode {:o}, owner {}:{}, not 0600 root:root",
            meta.mode() & 0o7777,
            meta.uid(),
            meta.gid()
        );
    }
    for name in DEFAULTS {
        let version = Binder::open(mount.join(name))
            .step(name)?
            .version()
            .step("BINDER_VERSION")?;
        ensure!(
            version == binder_client::PROTOCOL_VERSION,
            "{name} speaks {version}"
        );
    }
    let options = fs::read_to_string("/proc/self/mounts").step("/proc/self/mounts")?;
    let dir = mount.path().to_string_lossy().into_owned();
    let line = options
        .lines()
        .find(|line| line.split(' ').nth(1) == Some(dir.as_str()))
        .ok_or("the mount is not in /proc/self/mounts")?;
    ensure!(
        line.starts_with("binder ")
            && line.contains(" binder rw,")
            && line.contains(",max=1048576"),
        "/proc/self/mounts says {line:?}"
    );
    Ok(())
}

/// BINDER_CTL_ADD makes a device with the major and minor it reports; the device is a context
/// of its own: its context manager answers calls through it, and another device's manager
/// is another.
fn binderfs_ctl_add_and_call(_: &Env) -> Outcome {
    let mount = mount("")?;
    let control = mount.control().step("open binder-control")?;
    let (major, minor) = control.add("conf-a").step("BINDER_CTL_ADD conf-a")?;
    let meta = fs::metadata(mount.join("conf-a")).step("stat conf-a")?;
    let rdev = meta.rdev();
    ensure!(
        libc::major(rdev) == major && libc::minor(rdev) == minor,
        "conf-a is {}:{}, BINDER_CTL_ADD said {major}:{minor}",
        libc::major(rdev),
        libc::minor(rdev)
    );
    control.add("conf-b").step("BINDER_CTL_ADD conf-b")?;

    let a = start_manager(&mount.join("conf-a"), 1)?;
    // conf-b has no manager yet: its own slot is free.
    let b_client = Process::open(mount.join("conf-b")).step("open conf-b")?;
    ensure!(
        b_client.transact(0, WHO, &Parcel::new()).is_err(),
        "a call to handle 0 of conf-b, which has no manager, succeeded"
    );
    let b = start_manager(&mount.join("conf-b"), 2)?;
    let a_client = Process::open(mount.join("conf-a")).step("open conf-a")?;
    let mut threads = Vec::new();
    for _ in 0..4 {
        let a_path = mount.join("conf-a");
        let b_path = mount.join("conf-b");
        threads.push(thread::spawn(move || -> Outcome {
            let a = Process::open(&a_path).step("open conf-a")?;
            let b = Process::open(&b_path).step("open conf-b")?;
            for _ in 0..20 {
                ensure!(
                    ask_manager(&a)? == 1,
                    "conf-a's handle 0 is not its manager"
                );
                ensure!(
                    ask_manager(&b)? == 2,
                    "conf-b's handle 0 is not its manager"
                );
            }
            Ok(())
        }));
    }
    let mut outcome = Ok(());
    for t in threads {
        let result = t.join().unwrap_or_else(|_| Err("a thread panicked".into()));
        outcome = outcome.and(result);
    }
    outcome?;
    ensure!(ask_manager(&a_client)? == 1, "conf-a's manager changed");
    ensure!(ask_manager(&b_client)? == 2, "conf-b's manager changed");
    expect_errno(
        Binder::open(mount.join("conf-a"))
            .step("open conf-a")?
            .set_context_mgr(),
        libc::EBUSY,
        "a second manager for conf-a",
    )?;
    a.kill()?;
    b.kill()
}

/// Names: `/`, `.`, `..` and empty are refused with EACCES (the numbers are still written
/// back, as in C); 255 bytes are fine, and 256 unterminated bytes are cut to 255.
fn binderfs_ctl_add_names(_: &Env) -> Outcome {
    let mount = mount("")?;
    let control = mount.control().step("open binder-control")?;
    for bad in [&b"a/b"[..], b"/", b".", b"..", b""] {
        let mut request = device_request(bad).step("request")?;
        expect_errno(
            control.add_raw(&mut request),
            libc::EACCES,
            &format!("BINDER_CTL_ADD {:?}", String::from_utf8_lossy(bad)),
        )?;
        ensure!(
            request.major != 0,
            "a refused BINDER_CTL_ADD did not report the major number"
        );
    }
    let long = "l".repeat(MAX_NAME);
    control.add(&long).step("BINDER_CTL_ADD of 255 bytes")?;
    Binder::open(mount.join(&long)).step("open the 255-byte device")?;
    let unterminated = [b'u'; MAX_NAME + 1];
    let mut request = device_request(&unterminated).step("request")?;
    control
        .add_raw(&mut request)
        .step("BINDER_CTL_ADD of 256 bytes")?;
    let cut = "u".repeat(MAX_NAME);
    ensure!(
        mount.join(&cut).exists(),
        "256 unterminated bytes did not make the device of their first 255"
    );
    // Refused names took no room: the mount still lists only what was made.
    let count = fs::read_dir(mount.path()).step("list")?.count();
    ensure!(count == 7, "the mount has {count} entries, not 7");
    Ok(())
}

/// A name in use is EEXIST: a device made before, a default device, binder-control,
/// features.
fn binderfs_ctl_add_eexist(_: &Env) -> Outcome {
    let mount = mount("")?;
    let control = mount.control().step("open binder-control")?;
    control.add("dup").step("BINDER_CTL_ADD dup")?;
    for name in ["dup", "binder", "binder-control", "features"] {
        expect_errno(
            control.add(name),
            libc::EEXIST,
            &format!("BINDER_CTL_ADD {name}"),
        )?;
    }
    Ok(())
}

/// Processes adding devices at once: every name is made once, each minor differs, and a name
/// all of them try is made exactly once.
fn binderfs_ctl_add_concurrent(_: &Env) -> Outcome {
    const WORKERS: usize = 4;
    const EACH: usize = 25;
    let mount = mount("")?;
    let control_path = mount.join("binder-control");
    let mut children = Vec::new();
    for worker in 0..WORKERS {
        let control_path = control_path.clone();
        children.push(Child::spawn(move || {
            let control = binder_client::binderfs::Control::open(&control_path).step("open")?;
            let mut shared = 0;
            for i in 0..EACH {
                control
                    .add(&format!("w{worker}-{i}"))
                    .step("BINDER_CTL_ADD")?;
                match control.add(&format!("shared-{i}")) {
                    Ok(_) => shared += 1,
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => return Err(format!("BINDER_CTL_ADD shared-{i}: {e}")),
                }
            }
            std::process::exit(shared);
        })?);
    }
    let mut made = 0;
    for child in children {
        match child.wait()? {
            crate::harness::Exit::Ok => {}
            crate::harness::Exit::Failed(why) if why.starts_with("exit status ") => {
                made += why["exit status ".len()..].parse::<usize>().unwrap_or(0);
            }
            other => return Err(format!("a worker ended with {other:?}")),
        }
    }
    ensure!(made == EACH, "{made} shared names were made, not {EACH}");
    let mut minors = Vec::new();
    for entry in fs::read_dir(mount.path()).step("list")? {
        let entry = entry.step("entry")?;
        let meta = entry.metadata().step("stat")?;
        if meta.file_type().is_char_device() {
            minors.push(libc::minor(meta.rdev()));
        }
    }
    let all = minors.len();
    minors.sort();
    minors.dedup();
    ensure!(
        all == minors.len(),
        "two devices of the mount share a minor"
    );
    let want = WORKERS * EACH + EACH + DEFAULTS.len() + 1;
    ensure!(all == want, "{all} devices, not {want}");
    Ok(())
}

/// `max=`: the default devices count, so a mount with less room than them fails with
/// ENOSPC; a device beyond max is ENOSPC; an unlinked device gives its room back; a remount
/// changes max; above 2^20 is EINVAL.
fn binderfs_max(_: &Env) -> Outcome {
    expect_errno(Mount::new("max=0"), libc::ENOSPC, "mount with max=0")?;
    expect_errno(Mount::new("max=2"), libc::ENOSPC, "mount with max=2")?;
    let full = mount("max=3")?;
    let control = full.control().step("open binder-control")?;
    expect_errno(control.add("one"), libc::ENOSPC, "a device past max=3")?;
    drop(full);

    let mount = mount("max=5")?;
    let control = mount.control().step("open binder-control")?;
    control.add("four").step("the 4th device")?;
    control.add("five").step("the 5th device")?;
    expect_errno(control.add("six"), libc::ENOSPC, "the 6th device of max=5")?;
    // An unlinked device whose file is open still counts until it is closed.
    let open = Binder::open(mount.join("five")).step("open five")?;
    fs::remove_file(mount.join("five")).step("unlink five")?;
    expect_errno(
        control.add("six"),
        libc::ENOSPC,
        "a device while an unlinked one is open",
    )?;
    drop(open);
    control
        .add("six")
        .step("a device once the unlinked one is closed")?;
    mount.remount("max=7").step("remount with max=7")?;
    control.add("seven").step("a 6th device after max=7")?;
    control.add("eight").step("a 7th device after max=7")?;
    expect_errno(control.add("nine"), libc::ENOSPC, "the 8th device of max=7")?;
    expect_errno(
        mount.remount("max=1048577"),
        libc::EINVAL,
        "remount with max=1048577",
    )?;

    expect_errno(
        Mount::new("max=1048577"),
        libc::EINVAL,
        "mount with max=2^20+1",
    )?;
    expect_errno(
        Mount::new("max=4294967296"),
        libc::EINVAL,
        "mount with max=2^32",
    )?;
    expect_errno(Mount::new("max=-1"), libc::EINVAL, "mount with max=-1")?;
    expect_errno(Mount::new("max=many"), libc::EINVAL, "mount with max=many")?;
    Mount::new("max=1048576")
        .step("mount with max=1048576")
        .map(drop)
}

/// Unknown options and values: EINVAL.
fn binderfs_mount_options_refused(_: &Env) -> Outcome {
    for options in ["foo", "foo=1", "stats=local", "stats", "max"] {
        expect_errno(
            Mount::new(options),
            libc::EINVAL,
            &format!("mount with {options:?}"),
        )?;
    }
    Ok(())
}

/// `stats=global` makes binder_logs/ (its files, and proc/); a remount can keep it but not
/// add or drop it.
fn binderfs_stats_remount(_: &Env) -> Outcome {
    let stats = mount("stats=global")?;
    let logs = stats.join("binder_logs");
    for name in [
        "state",
        "stats",
        "transactions",
        "transaction_log",
        "failed_transaction_log",
    ] {
        let meta = fs::metadata(logs.join(name)).step(&format!("binder_logs/{name}"))?;
        ensure!(
            meta.is_file() && meta.mode() & 0o777 == 0o444,
            "binder_logs/{name} is not a 0444 file"
        );
    }
    ensure!(
        fs::metadata(logs.join("proc"))
            .step("binder_logs/proc")?
            .is_dir(),
        "binder_logs/proc is not a directory"
    );
    expect_errno(
        stats.remount(""),
        libc::EINVAL,
        "remount without stats=global",
    )?;
    stats
        .remount("stats=global,max=10")
        .step("remount keeping stats=global")?;
    let plain = mount("")?;
    ensure!(
        !plain.join("binder_logs").exists(),
        "a mount without stats=global has binder_logs/"
    );
    expect_errno(
        plain.remount("stats=global"),
        libc::EINVAL,
        "remount adding stats=global",
    )?;
    Ok(())
}

/// Devices can be unlinked and renamed; binder-control can be neither, nor be renamed over.
fn binderfs_unlink_rename(_: &Env) -> Outcome {
    let mount = mount("")?;
    let control = mount.control().step("open binder-control")?;
    control.add("old").step("BINDER_CTL_ADD old")?;
    fs::rename(mount.join("old"), mount.join("new")).step("rename old to new")?;
    ensure!(!mount.join("old").exists(), "old is still there");
    Binder::open(mount.join("new"))
        .step("open the renamed device")?
        .version()
        .step("BINDER_VERSION")?;
    fs::rename(mount.join("binder"), mount.join("renamed-binder"))
        .step("rename a default device")?;
    fs::remove_file(mount.join("new")).step("unlink new")?;
    ensure!(!mount.join("new").exists(), "new is still there");
    fs::remove_file(mount.join("hwbinder")).step("unlink a default device")?;
    expect_errno(
        fs::remove_file(mount.join("binder-control")),
        libc::EPERM,
        "unlink binder-control",
    )?;
    expect_errno(
        fs::rename(mount.join("binder-control"), mount.join("ctl")),
        libc::EPERM,
        "rename binder-control",
    )?;
    expect_errno(
        fs::rename(mount.join("vndbinder"), mount.join("binder-control")),
        libc::EPERM,
        "rename a device over binder-control",
    )?;
    // binder-control still works, and the name of an unlinked device is free again.
    control.add("new").step("BINDER_CTL_ADD new again")?;
    Ok(())
}

/// A device unlinked, then its mount detached, keeps its context while files are open on
/// it: the manager still answers through it.
fn binderfs_context_outlives_unlink_and_umount(_: &Env) -> Outcome {
    let mut mount = mount("")?;
    let path = mount.add("kept").step("BINDER_CTL_ADD kept")?;
    let manager = start_manager(&path, 7)?;
    let client = Process::open(&path).step("open kept")?;
    ensure!(ask_manager(&client)? == 7, "kept's manager did not answer");
    fs::remove_file(&path).step("unlink kept")?;
    ensure!(
        ask_manager(&client)? == 7,
        "kept's manager did not answer after the unlink"
    );
    mount.unmount().step("umount -l")?;
    ensure!(
        ask_manager(&client)? == 7,
        "kept's manager did not answer after the umount"
    );
    manager.kill()?;
    // With the manager gone, handle 0 fails, but the device still answers ioctls.
    ensure!(
        client.transact(0, WHO, &Parcel::new()).is_err(),
        "a call to a dead manager succeeded"
    );
    client.binder().version().step("BINDER_VERSION")?;
    Ok(())
}

/// features/ has C's four files; each reads "1\n" where the driver has the feature.
fn binderfs_features(_: &Env) -> Outcome {
    let mount = mount("")?;
    let mut names: Vec<String> = fs::read_dir(mount.join("features"))
        .step("list features/")?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<String> = FEATURES.iter().map(|s| s.to_string()).collect();
    want.sort();
    ensure!(names == want, "features/ has {names:?}, not {want:?}");
    for name in FEATURES {
        let path = mount.join("features").join(name);
        let meta = fs::metadata(&path).step(name)?;
        ensure!(
            meta.is_file() && meta.mode() & 0o777 == 0o444,
            "features/{name} is not a 0444 file"
        );
        let text = fs::read_to_string(&path).step(name)?;
        ensure!(text == "1\n", "features/{name} reads {text:?}");
    }
    Ok(())
}

/// With stats=global, a process that opens a device of the mount gets binder_logs/proc/<pid>
/// until it closes it; a mount without stats has none.
fn binderfs_logs_proc_entry(_: &Env) -> Outcome {
    let mount = mount("stats=global")?;
    let device = mount.join("binder");
    let proc_dir = mount.join("binder_logs").join("proc");
    let (opened_go, opened_wait) = notice()?;
    let (close_go, close_wait) = notice()?;
    let (closed_go, closed_wait) = notice()?;
    let child = Child::spawn(move || {
        let binder = Binder::open(&device).step("open")?;
        let second = Binder::open(&device).step("open again")?;
        opened_go.notify()?;
        close_wait.wait()?;
        drop(second);
        drop(binder);
        closed_go.notify()
    })?;
    let entry = proc_dir.join(child.pid().to_string());
    let result = (|| -> Outcome {
        opened_wait.wait()?;
        let meta = fs::metadata(&entry).step("binder_logs/proc/<pid>")?;
        ensure!(
            meta.is_file() && meta.mode() & 0o777 == 0o444,
            "binder_logs/proc/<pid> is not a 0444 file"
        );
        let listed = fs::read_dir(&proc_dir).step("list proc/")?.count();
        ensure!(listed == 1, "proc/ has {listed} entries for one process");
        close_go.notify()?;
        closed_wait.wait()?;
        ensure!(
            !entry.exists(),
            "binder_logs/proc/<pid> is still there after the process closed the device"
        );
        Ok(())
    })();
    drop(close_go);
    child.join_after(result)
}

/// rmmod is refused while a binderfs of rust_binder is mounted, and works once it is gone.
fn binderfs_rmmod_refused_while_mounted(env: &Env) -> Outcome {
    let module = env.module.as_deref().ok_or("no --module given")?;
    let mut mount = mount("")?;
    let unload = kmod::unload("rust_binder");
    if unload.is_ok() {
        let _ = kmod::load(module, "");
        return Err("rmmod succeeded with a binderfs mounted".into());
    }
    expect_errno(unload, libc::EAGAIN, "rmmod with a binderfs mounted")?;
    mount.unmount().step("umount")?;
    drop(mount);
    kmod::unload("rust_binder").step("rmmod once unmounted")?;
    kmod::load(module, "").step("load again")?;
    let again = Mount::new("").step("mount after the reload")?;
    Binder::open(again.join("binder"))
        .step("open binder after the reload")?
        .version()
        .step("BINDER_VERSION")
        .map(drop)
}

/// The root of a new user namespace (with a mount namespace of its own) may mount binderfs and
/// make devices it owns, but not ask for `stats=global`, which needs `CAP_SYS_ADMIN` in the
/// initial user namespace (EPERM).
fn binderfs_userns_mount(_: &Env) -> Outcome {
    Child::spawn(|| {
        // SAFETY: Plain syscall; the child is single-threaded.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) } != 0 {
            return Err(format!(
                "unshare(CLONE_NEWUSER | CLONE_NEWNS): {} (the kernel needs CONFIG_USER_NS)",
                std::io::Error::last_os_error()
            ));
        }
        fs::write("/proc/self/setgroups", "deny").step("setgroups")?;
        fs::write("/proc/self/uid_map", "0 0 1").step("uid_map")?;
        fs::write("/proc/self/gid_map", "0 0 1").step("gid_map")?;
        expect_errno(
            Mount::new("stats=global"),
            libc::EPERM,
            "mount with stats=global in a user namespace",
        )?;
        let mount = mount("max=4")?;
        let (_, minor) = mount
            .control()
            .step("open binder-control")?
            .add("userns")
            .step("BINDER_CTL_ADD in a user namespace")?;
        let meta = fs::metadata(mount.join("userns")).step("stat the device")?;
        ensure!(
            libc::minor(meta.rdev()) == minor && meta.uid() == 0,
            "the device is minor {} of uid {}",
            libc::minor(meta.rdev()),
            meta.uid()
        );
        let device = Binder::open(mount.join("userns")).step("open the device")?;
        device.version().step("BINDER_VERSION")?;
        device
            .set_context_mgr()
            .step("become its context manager")?;
        Ok(())
    })?
    .join()
}
