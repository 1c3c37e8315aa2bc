//! binderfs: mounting the `binder` filesystem and asking its `binder-control` for devices.

use std::{
    ffi::CString,
    fs::{self, File},
    io,
    os::{fd::AsRawFd, unix::ffi::OsStrExt},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
};

use crate::uapi;

/// Longest device name `BINDER_CTL_ADD` takes (`BINDERFS_MAX_NAME`).
pub const MAX_NAME: usize = uapi::BINDERFS_MAX_NAME as usize;

/// The files of `features/`, as the C driver's binderfs names them.
pub const FEATURES: [&str; 4] = [
    "oneway_spam_detection",
    "extended_error",
    "freeze_notification",
    "transaction_report",
];

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A binderfs mount on a directory of its own, unmounted (lazily) and removed when dropped.
#[derive(Debug)]
pub struct Mount {
    dir: PathBuf,
    mounted: bool,
}

impl Mount {
    /// Mounts a new binderfs with `options` (`""`, `"max=4"`, `"stats=global"`...) on a new
    /// directory under `/tmp`.
    pub fn new(options: &str) -> io::Result<Self> {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let dir = PathBuf::from(format!(
            "/tmp/binderfs-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir)?;
        let mut mount = Self {
            dir,
            mounted: false,
        };
        mount.mount(options)?;
        Ok(mount)
    }

    fn mount(&mut self, options: &str) -> io::Result<()> {
        let dir = c_path(&self.dir)?;
        let options =
            CString::new(options).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: Every pointer is a NUL-terminated string that outlives the call.
        check(unsafe {
            libc::mount(
                c"binder".as_ptr(),
                dir.as_ptr(),
                c"binder".as_ptr(),
                0,
                options.as_ptr().cast(),
            )
        })?;
        self.mounted = true;
        Ok(())
    }

    /// Remounts with `options`.
    pub fn remount(&self, options: &str) -> io::Result<()> {
        let dir = c_path(&self.dir)?;
        let options =
            CString::new(options).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: Every pointer is a NUL-terminated string that outlives the call.
        check(unsafe {
            libc::mount(
                c"binder".as_ptr(),
                dir.as_ptr(),
                c"binder".as_ptr(),
                libc::MS_REMOUNT,
                options.as_ptr().cast(),
            )
        })
    }

    /// Detaches the mount now (`umount2(MNT_DETACH)`): files open in it keep working.
    pub fn unmount(&mut self) -> io::Result<()> {
        if self.mounted {
            let dir = c_path(&self.dir)?;
            // SAFETY: `dir` is a NUL-terminated string that outlives the call.
            check(unsafe { libc::umount2(dir.as_ptr(), libc::MNT_DETACH) })?;
            self.mounted = false;
        }
        Ok(())
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The path of `name` in the mount.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.dir.join(name)
    }

    /// Opens the mount's `binder-control`.
    pub fn control(&self) -> io::Result<Control> {
        Control::open(self.join("binder-control"))
    }

    /// Adds the device `name`, returning its path.
    pub fn add(&self, name: &str) -> io::Result<PathBuf> {
        self.control()?.add(name)?;
        Ok(self.join(name))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = self.unmount();
        let _ = fs::remove_dir(&self.dir);
    }
}

/// An open `binder-control`.
#[derive(Debug)]
pub struct Control(File);

impl Control {
    /// Opens the `binder-control` at `path`.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(Self(File::open(path)?))
    }

    /// `BINDER_CTL_ADD` with `request` as it is (name bytes and all), which the driver fills
    /// in with the new device's numbers.
    pub fn add_raw(&self, request: &mut uapi::binderfs_device) -> io::Result<()> {
        // SAFETY: `request` is a valid `struct binderfs_device`, which the ioctl reads and
        // writes.
        let ret = unsafe {
            libc::ioctl(
                self.0.as_raw_fd(),
                uapi::BINDER_CTL_ADD as _,
                std::ptr::from_mut(request),
            )
        };
        check(ret)
    }

    /// Adds the device `name` (at most [`MAX_NAME`] bytes); returns its major and minor.
    pub fn add(&self, name: &str) -> io::Result<(u32, u32)> {
        let mut request = device_request(name.as_bytes())?;
        self.add_raw(&mut request)?;
        Ok((request.major, request.minor))
    }
}

/// A `struct binderfs_device` naming `name`, NUL-terminated unless it fills the whole field.
pub fn device_request(name: &[u8]) -> io::Result<uapi::binderfs_device> {
    // SAFETY: The struct is plain bytes and integers; all zeros is a valid value.
    let mut request: uapi::binderfs_device = unsafe { std::mem::zeroed() };
    if name.len() > request.name.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (slot, byte) in request.name.iter_mut().zip(name) {
        *slot = *byte as libc::c_char;
    }
    Ok(request)
}
