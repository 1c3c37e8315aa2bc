//! What an operation did, written so that two drivers' runs of the same stream compare line
//! by line: errnos, consumed counts and the returns read, without what legitimately differs
//! between runs (user addresses, pids, fd numbers, debug ids).

use std::io;

use binder_client::{uapi, BinderObject, ObjectKind, Return, Txn};

/// A readable name for an errno.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::ENOTTY => "ENOTTY",
        libc::EPROTO => "EPROTO",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ENOSYS => "ENOSYS",
        _ => return format!("E{errno}"),
    };
    name.to_string()
}

/// An ioctl's result: `ok`, `ok=N` for a positive return, or the errno's name.
pub fn result<T: Into<i64> + Copy>(result: &io::Result<T>) -> String {
    match result {
        Ok(v) if (*v).into() == 0 => "ok".to_string(),
        Ok(v) => format!("ok={}", (*v).into()),
        Err(e) => errno_name(e.raw_os_error().unwrap_or(0)),
    }
}

/// A short name of a return code.
pub fn return_name(code: u32) -> String {
    let name = match code {
        uapi::BR_ERROR => "ERROR",
        uapi::BR_OK => "OK",
        uapi::BR_TRANSACTION_SEC_CTX => "TXN_SEC",
        uapi::BR_TRANSACTION => "TXN",
        uapi::BR_REPLY => "REPLY",
        uapi::BR_ACQUIRE_RESULT => "ACQUIRE_RESULT",
        uapi::BR_DEAD_REPLY => "DEAD_REPLY",
        uapi::BR_TRANSACTION_COMPLETE => "TC",
        uapi::BR_INCREFS => "INCREFS",
        uapi::BR_ACQUIRE => "ACQUIRE",
        uapi::BR_RELEASE => "RELEASE",
        uapi::BR_DECREFS => "DECREFS",
        uapi::BR_NOOP => "NOOP",
        uapi::BR_SPAWN_LOOPER => "SPAWN",
        uapi::BR_FINISHED => "FINISHED",
        uapi::BR_DEAD_BINDER => "DEAD_BINDER",
        uapi::BR_CLEAR_DEATH_NOTIFICATION_DONE => "CLEAR_DEATH_DONE",
        uapi::BR_FAILED_REPLY => "FAILED_REPLY",
        uapi::BR_FROZEN_REPLY => "FROZEN_REPLY",
        uapi::BR_ONEWAY_SPAM_SUSPECT => "SPAM_SUSPECT",
        uapi::BR_TRANSACTION_PENDING_FROZEN => "PENDING_FROZEN",
        uapi::BR_FROZEN_BINDER => "FROZEN_BINDER",
        uapi::BR_CLEAR_FREEZE_NOTIFICATION_DONE => "CLEAR_FREEZE_DONE",
        other => return format!("BR?{other:#x}"),
    };
    name.to_string()
}

/// One return as read: its code, and its decoded form when it is whole.
pub struct Read {
    pub code: u32,
    pub ret: Option<Return>,
}

/// Splits the bytes of a read buffer into returns, leniently: a return cut short ends the
/// list with its code alone.
pub fn split_returns(bytes: &[u8]) -> Vec<Read> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 4 {
        let code = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]);
        // A return's payload size is encoded in its code, as an ioctl's is.
        let size = ((code >> 16) & 0x3fff) as usize;
        let whole = 4 + size;
        if rest.len() < whole {
            out.push(Read { code, ret: None });
            break;
        }
        let ret = binder_client::parse_returns(&rest[..whole])
            .ok()
            .and_then(|mut r| r.pop());
        out.push(Read { code, ret });
        rest = &rest[whole..];
    }
    if !rest.is_empty() {
        out.push(Read { code: 0, ret: None });
    }
    out
}

/// A transaction as delivered: its code, flags, sizes, sender (by fuzz process index) and
/// objects.
pub fn txn(txn: &Txn, sender: &str, objects: &[BinderObject]) -> String {
    let mut s = format!(
        "(code={:#x} fl={:#x} d={} o={} from={sender}{}",
        txn.code,
        txn.flags,
        txn.data_size,
        txn.offsets_size,
        if txn.secctx.is_some() { " sec" } else { "" }
    );
    if txn.target_ptr != 0 || txn.cookie != 0 {
        s += &format!(" node={:#x}/{:#x}", txn.target_ptr, txn.cookie);
    }
    if !objects.is_empty() {
        s += " [";
        for (i, object) in objects.iter().enumerate() {
            if i > 0 {
                s += " ";
            }
            s += &self::object(object);
        }
        s += "]";
    }
    s + ")"
}

/// An object as delivered: kind and what does not depend on addresses or fd numbers.
pub fn object(object: &BinderObject) -> String {
    match object {
        BinderObject::Flat(flat) => {
            let kind = match flat.kind {
                ObjectKind::Binder => "B",
                ObjectKind::WeakBinder => "WB",
                ObjectKind::Handle => "H",
                ObjectKind::WeakHandle => "WH",
            };
            match flat.kind {
                ObjectKind::Binder | ObjectKind::WeakBinder => {
                    format!(
                        "{kind}:{:#x}/{:#x}:{:#x}",
                        flat.value, flat.cookie, flat.flags
                    )
                }
                _ => format!("{kind}{}:{:#x}", flat.value, flat.flags),
            }
        }
        BinderObject::Fd(fd) => format!("FD/{:#x}", fd.cookie),
        BinderObject::Buffer(b) => match b.parent() {
            Some((parent, offset)) => format!("PTR{}<{parent}+{offset}", b.length),
            None => format!("PTR{}", b.length),
        },
        BinderObject::FdArray(a) => {
            format!("FDA{}<{}+{}", a.num_fds, a.parent, a.parent_offset)
        }
    }
}
