// SPDX-License-Identifier: GPL-2.0

//! What rust_binder's demo programs share: the two interfaces they speak and the small
//! command-line conventions.
//!
//! Both interfaces are spoken as Android's userspace speaks them, so the programs work with
//! other binder userspace too (rsbinder's `rsb_hub` and `rsb_service`, its AIDL services):
//!
//! - [`sm`]: the service manager, `android.os.IServiceManager` as of Android 16, at handle 0.
//! - [`calc`]: the demo's calculator, `rb.demo.ICalculator` (`int add(int a, int b)` and
//!   `ParcelFileDescriptor sumFile(in ParcelFileDescriptor numbers)`), whose AIDL file is
//!   `tests/rsb-interop/aidl/rb/demo/ICalculator.aidl`.

use std::{
    ffi::CStr,
    fs::File,
    io,
    os::fd::{FromRawFd, OwnedFd},
    process::ExitCode,
    thread,
    time::Duration,
};

use binder_client::{parcel::FIRST_CALL_TRANSACTION, Object, Parcel, ParcelError, Process};

/// The binder device the programs open unless told otherwise.
pub const DEFAULT_DEVICE: &str = "/dev/binder";

/// Prints one line of the story, prefixed with the program's name and pid.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        println!("[{} {}] {}", $crate::program(), std::process::id(), format!($($arg)*))
    };
}

/// The name this program was started as, without its directory.
pub fn program() -> String {
    std::env::args()
        .next()
        .and_then(|a| a.rsplit('/').next().map(str::to_owned))
        .unwrap_or_else(|| "demo".into())
}

/// Ends a program with an error message on stderr.
pub fn fail(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("{}: {error}", program());
    ExitCode::FAILURE
}

/// Command-line arguments: `--device PATH` (any program), other options and positionals.
#[derive(Debug, Default)]
pub struct Args {
    /// The binder device.
    pub device: String,
    /// `--flag` options, without the dashes.
    pub flags: Vec<String>,
    /// `--name VALUE` options.
    pub values: Vec<(String, String)>,
    /// Everything else, in order.
    pub positional: Vec<String>,
}

impl Args {
    /// Parses this process's arguments; `with_value` lists the options that take a value.
    pub fn parse(with_value: &[&str]) -> Result<Self, String> {
        Self::parse_from(std::env::args().skip(1), with_value)
    }

    /// Parses `args`; `with_value` lists the options (besides `device`) that take a value.
    pub fn parse_from(
        args: impl IntoIterator<Item = String>,
        with_value: &[&str],
    ) -> Result<Self, String> {
        let mut parsed = Self {
            device: DEFAULT_DEVICE.into(),
            ..Self::default()
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(option) = arg.strip_prefix("--") else {
                parsed.positional.push(arg);
                continue;
            };
            if option == "device" || with_value.contains(&option) {
                let value = args
                    .next()
                    .ok_or_else(|| format!("--{option} needs a value"))?;
                if option == "device" {
                    parsed.device = value;
                } else {
                    parsed.values.push((option.into(), value));
                }
            } else {
                parsed.flags.push(option.into());
            }
        }
        Ok(parsed)
    }

    /// Whether `--flag` was given.
    pub fn flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// The value of `--name VALUE`, the last one if repeated.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A new memfd (an anonymous file in memory) called `name`, open for reading and writing,
/// close-on-exec.
pub fn memfd(name: &CStr) -> io::Result<File> {
    // SAFETY: `name` is a NUL-terminated string; the call only creates an fd.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// A pipe, `(read end, write end)`, both close-on-exec.
pub fn pipe() -> io::Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: Both fds were just created and nothing else owns them.
    Ok(unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
}

/// `fd` of this process and what it is, as /proc tells, with the inode, which names the file
/// across processes: `fd 4 (/memfd:numbers, inode 17)`, `fd 5 (pipe:[1234])`.
pub fn describe_fd(fd: i32) -> String {
    use std::os::unix::fs::MetadataExt;
    let link = format!("/proc/self/fd/{fd}");
    let what = match std::fs::read_link(&link) {
        Ok(target) => target.display().to_string(),
        Err(e) => return format!("fd {fd} ({e})"),
    };
    // Every memfd is "(deleted)": it never had a name in a directory.
    let what = what.strip_suffix(" (deleted)").unwrap_or(&what);
    match std::fs::metadata(&link) {
        // A pipe's link names its inode already.
        Ok(meta) if !what.contains('[') => format!("fd {fd} ({what}, inode {})", meta.ino()),
        _ => format!("fd {fd} ({what})"),
    }
}

/// Takes an fd the driver installed in this process for a delivered transaction (an `FD`
/// object's, as [`ParcelReader::read_fd`](binder_client::ParcelReader::read_fd) returns it).
///
/// # Safety
///
/// `fd` must be such an fd, taken only once: nothing else in the process owns it.
pub unsafe fn take_fd(fd: i32) -> OwnedFd {
    // SAFETY: The caller's promise.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The service manager interface (`android.os.IServiceManager`, Android 16 numbering) and
/// a client of it.
pub mod sm {
    use super::*;

    /// The interface descriptor.
    pub const DESCRIPTOR: &str = "android.os.IServiceManager";

    /// Transaction codes: AIDL numbers the methods in the order the interface declares them.
    pub mod code {
        use super::FIRST_CALL_TRANSACTION as FIRST;

        /// `@nullable IBinder getService(String name)`.
        pub const GET_SERVICE: u32 = FIRST;
        /// `Service getService2(String name)`.
        pub const GET_SERVICE2: u32 = FIRST + 1;
        /// `@nullable IBinder checkService(String name)`.
        pub const CHECK_SERVICE: u32 = FIRST + 2;
        /// `Service checkService2(String name)`.
        pub const CHECK_SERVICE2: u32 = FIRST + 3;
        /// `void addService(String name, IBinder service, boolean allowIsolated,
        /// int dumpPriority)`.
        pub const ADD_SERVICE: u32 = FIRST + 4;
        /// `String[] listServices(int dumpPriority)`.
        pub const LIST_SERVICES: u32 = FIRST + 5;
        /// `void registerForNotifications(String name, IServiceCallback callback)`.
        pub const REGISTER_FOR_NOTIFICATIONS: u32 = FIRST + 6;
        /// `void unregisterForNotifications(String name, IServiceCallback callback)`.
        pub const UNREGISTER_FOR_NOTIFICATIONS: u32 = FIRST + 7;
        /// `boolean isDeclared(String name)`.
        pub const IS_DECLARED: u32 = FIRST + 8;
        /// `String[] getDeclaredInstances(String iface)`.
        pub const GET_DECLARED_INSTANCES: u32 = FIRST + 9;
        /// `@nullable String updatableViaApex(String name)`.
        pub const UPDATABLE_VIA_APEX: u32 = FIRST + 10;
        /// `String[] getUpdatableNames(String apexName)`.
        pub const GET_UPDATABLE_NAMES: u32 = FIRST + 11;
        /// `@nullable ConnectionInfo getConnectionInfo(String name)`.
        pub const GET_CONNECTION_INFO: u32 = FIRST + 12;
        /// `void registerClientCallback(String name, IBinder service, IClientCallback cb)`.
        pub const REGISTER_CLIENT_CALLBACK: u32 = FIRST + 13;
        /// `void tryUnregisterService(String name, IBinder service)`.
        pub const TRY_UNREGISTER_SERVICE: u32 = FIRST + 14;
        /// `ServiceDebugInfo[] getServiceDebugInfo()`.
        pub const GET_SERVICE_DEBUG_INFO: u32 = FIRST + 15;
    }

    /// `DUMP_FLAG_PRIORITY_DEFAULT`: the dump priority services register with.
    pub const DUMP_FLAG_PRIORITY_DEFAULT: i32 = 1 << 3;
    /// `DUMP_FLAG_PRIORITY_ALL`: every priority, for `listServices`.
    pub const DUMP_FLAG_PRIORITY_ALL: i32 = 0b1111;

    /// The service manager's handle, for everyone but itself.
    pub const HANDLE: u32 = 0;

    /// Appends the `Service` that getService2 and checkService2 return: a union (written
    /// without a size: "present", then its tag) whose kind 0, `ServiceWithMetadata`, is a
    /// parcelable holding the binder (null when unknown) and whether it is a lazy service.
    pub fn write_service(reply: &mut Parcel, service: Object) {
        reply
            .write_i32(1)
            .write_i32(0)
            .write_parcelable(|metadata| {
                metadata.write_object(service).write_bool(false);
            });
    }

    /// Registers `service` (normally one of this process's nodes) as `name`.
    pub fn add_service(process: &Process, name: &str, service: Object) -> io::Result<()> {
        let mut data = Parcel::new();
        data.write_interface_token(DESCRIPTOR)
            .write_str(Some(name))
            .write_object(service)
            .write_bool(false)
            .write_i32(DUMP_FLAG_PRIORITY_DEFAULT);
        let reply = process.transact(HANDLE, code::ADD_SERVICE, &data)?;
        reply.reader()?.read_status()?;
        Ok(())
    }

    /// Looks `name` up without waiting (`checkService`). A handle it returns carries a
    /// reference of this process's own (see [`Process::acquire`]).
    pub fn check_service(process: &Process, name: &str) -> io::Result<Option<u32>> {
        let mut data = Parcel::new();
        data.write_interface_token(DESCRIPTOR).write_str(Some(name));
        let reply = process.transact(HANDLE, code::CHECK_SERVICE, &data)?;
        let mut reader = reply.reader()?;
        reader.read_status()?;
        match reader.read_object()? {
            Object::Handle(handle) => {
                // The reply's buffer holds the reference only until it is freed.
                process.acquire(handle)?;
                Ok(Some(handle))
            }
            Object::Null => Ok(None),
            Object::Binder { .. } => Err(ParcelError::Invalid(
                "the service manager returned one of our own nodes".into(),
            )
            .into()),
        }
    }

    /// Looks `name` up, asking again every 50 ms until it is registered or `patience` ran out.
    pub fn wait_for_service(
        process: &Process,
        name: &str,
        patience: Duration,
    ) -> io::Result<Option<u32>> {
        let step = Duration::from_millis(50);
        let mut waited = Duration::ZERO;
        loop {
            if let Some(handle) = check_service(process, name)? {
                return Ok(Some(handle));
            }
            if waited >= patience {
                return Ok(None);
            }
            thread::sleep(step);
            waited += step;
        }
    }

    /// The names of the registered services (`listServices`, all priorities).
    pub fn list_services(process: &Process) -> io::Result<Vec<String>> {
        let mut data = Parcel::new();
        data.write_interface_token(DESCRIPTOR)
            .write_i32(DUMP_FLAG_PRIORITY_ALL);
        let reply = process.transact(HANDLE, code::LIST_SERVICES, &data)?;
        let mut reader = reply.reader()?;
        reader.read_status()?;
        Ok(reader.read_str_list()?.unwrap_or_default())
    }
}

/// The calculator interface (`rb.demo.ICalculator`) and a client of it.
pub mod calc {
    use super::*;

    /// The interface descriptor.
    pub const DESCRIPTOR: &str = "rb.demo.ICalculator";

    /// `int add(int a, int b)`.
    pub const ADD: u32 = FIRST_CALL_TRANSACTION;

    /// `ParcelFileDescriptor sumFile(in ParcelFileDescriptor numbers)` (after rsbinder's
    /// calculator's `takeToken`, which the demo's does not serve).
    pub const SUM_FILE: u32 = FIRST_CALL_TRANSACTION + 2;

    /// The name the demo's calculator registers as.
    pub const DEFAULT_NAME: &str = "calculator";

    /// Calls `add(a, b)` on the calculator at `handle`.
    pub fn add(process: &Process, handle: u32, a: i32, b: i32) -> io::Result<i32> {
        let mut data = Parcel::new();
        data.write_interface_token(DESCRIPTOR)
            .write_i32(a)
            .write_i32(b);
        let reply = process.transact(handle, ADD, &data)?;
        let mut reader = reply.reader()?;
        reader.read_status()?;
        Ok(reader.read_i32()?)
    }

    /// Calls `sumFile(numbers)` on the calculator at `handle`: sends `numbers`, a file of
    /// whitespace-separated integers read from its offset, and returns the file that comes
    /// back. The call's parcel owns `numbers` and closes it once sent.
    pub fn sum_file(process: &Process, handle: u32, numbers: OwnedFd) -> io::Result<File> {
        let mut data = Parcel::new();
        data.write_interface_token(DESCRIPTOR)
            .write_parcel_fd(numbers);
        let reply = process.transact(handle, SUM_FILE, &data)?;
        let mut reader = reply.reader()?;
        reader.read_status()?;
        let fd = reader
            .read_parcel_fd()?
            .ok_or_else(|| ParcelError::Invalid("sumFile answered no file".into()))?;
        // SAFETY: The driver installed `fd` for this reply, and it is read only here.
        Ok(File::from(unsafe { take_fd(fd) }))
    }

    /// The answer `sumFile` writes for `text`, whitespace-separated integers: "1 + 2 + 3 = 6";
    /// or why there is none.
    pub fn sum_text(text: &str) -> Result<String, String> {
        let numbers = text
            .split_whitespace()
            .map(|n| n.parse::<i32>().map_err(|_| format!("{n:?} is not an int")))
            .collect::<Result<Vec<_>, _>>()?;
        let sum = numbers
            .iter()
            .try_fold(0i32, |sum, &n| sum.checked_add(n))
            .ok_or("the sum does not fit an int")?;
        if numbers.is_empty() {
            return Ok("nothing = 0".into());
        }
        let terms: Vec<String> = numbers.iter().map(i32::to_string).collect();
        Ok(format!("{} = {sum}", terms.join(" + ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments_split_into_device_flags_values_and_positionals() {
        let parsed = Args::parse_from(
            args(&[
                "--device",
                "/dev/x",
                "--wait-death",
                "--name",
                "c",
                "2",
                "3",
            ]),
            &["name"],
        )
        .unwrap();
        assert_eq!(parsed.device, "/dev/x");
        assert!(parsed.flag("wait-death"));
        assert_eq!(parsed.value("name"), Some("c"));
        assert_eq!(parsed.positional, ["2", "3"]);
    }

    #[test]
    fn a_missing_value_is_an_error() {
        assert!(Args::parse_from(args(&["--name"]), &["name"]).is_err());
        assert_eq!(
            Args::parse_from(args(&[]), &[]).unwrap().device,
            DEFAULT_DEVICE
        );
    }

    #[test]
    fn service_union_is_present_tagged_then_sized_metadata() {
        let mut p = Parcel::new();
        sm::write_service(&mut p, Object::Handle(4));
        let words: Vec<i32> = p
            .data()
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        // present, tag 0, present, size (36: itself, the object, its stability, the bool).
        assert_eq!(&words[..4], &[1, 0, 1, 36]);
        assert_eq!(words.len(), 4 + 6 + 1 + 1);
        assert_eq!(p.offsets(), &[16]);
        let mut r = binder_client::ParcelReader::new(p.data(), p.offsets());
        for expected in [1, 0, 1, 36] {
            assert_eq!(r.read_i32(), Ok(expected));
        }
        assert_eq!(r.read_object(), Ok(Object::Handle(4)));
        assert_eq!(r.read_bool(), Ok(false));
    }

    #[test]
    fn fds_are_described_by_what_they_are() {
        use std::os::fd::AsRawFd;
        let file = memfd(c"numbers").unwrap();
        let fd = file.as_raw_fd();
        let said = describe_fd(fd);
        assert!(
            said.starts_with(&format!("fd {fd} (/memfd:numbers, inode ")),
            "{said}"
        );
        let (read, _write) = pipe().unwrap();
        let said = describe_fd(read.as_raw_fd());
        assert!(said.contains(" (pipe:["), "{said}");
    }

    #[test]
    fn sums_are_written_out() {
        assert_eq!(calc::sum_text(" 1 2\n3 "), Ok("1 + 2 + 3 = 6".into()));
        assert_eq!(calc::sum_text(""), Ok("nothing = 0".into()));
        assert!(calc::sum_text("1 x").is_err());
        assert!(calc::sum_text("2147483647 1").is_err());
        assert_eq!(calc::SUM_FILE, 3, "the third method of ICalculator.aidl");
    }

    #[test]
    fn service_manager_codes_follow_the_android_16_interface() {
        assert_eq!(sm::code::GET_SERVICE, 1);
        assert_eq!(sm::code::CHECK_SERVICE, 3);
        assert_eq!(sm::code::ADD_SERVICE, 5);
        assert_eq!(sm::code::LIST_SERVICES, 6);
        assert_eq!(sm::code::IS_DECLARED, 9);
        assert_eq!(sm::code::GET_SERVICE_DEBUG_INFO, 16);
    }
}
