//! Generating and running one operation: a `BINDER_WRITE_READ` of random `BC_*` commands
//! with valid, near-valid and garbage arguments, another ioctl (every binder ioctl and garbage
//! numbers) with good or bad argument pointers, or closing and reopening the device.
//!
//! Arguments are mostly near-valid: handles, node pointers, cookies and buffers this process
//! really has, mixed with off-by-one values, freed buffers, other processes' values and
//! garbage, so that the driver's deep paths are reached and its checks are hit too.

use binder_client::{
    uapi, BinderObject, BufferObject, FdArrayObject, FdObject, FlatObject, ObjectKind,
};

use crate::{
    outcome,
    process::{node_cookie, node_ptr, BadPtr, Done, Fault, Proc, NODES},
    rng::Rng,
};

/// A write buffer being built, with what its commands point to.
#[derive(Default)]
struct Writer {
    bytes: Vec<u8>,
    /// Memory the commands point at (payloads, offsets, scatter-gather buffers): it must
    /// live until the ioctl.
    keep: Vec<Vec<u8>>,
    desc: Vec<String>,
    tags: String,
    /// Where each command starts.
    starts: Vec<u64>,
}

impl Writer {
    fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_ne_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_ne_bytes());
    }

    fn raw<T: Copy>(&mut self, value: &T) {
        // SAFETY: `T` is a uapi struct of integers; its bytes are initialised and readable.
        let bytes =
            unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) };
        self.bytes.extend_from_slice(bytes);
    }
}

/// One operation of process `p` on its thread `t`.
pub fn operation(p: &mut Proc, t: usize, rng: &mut Rng, fault: &mut Fault) -> Done {
    if p.open.is_none() {
        return reopen(p);
    }
    match rng.weighted(&[850, 149, 1]) {
        0 => write_read(p, t, rng, fault),
        1 => ioctl(p, t, rng, fault),
        _ => reopen(p),
    }
}

/// Closes the device and opens it again: the driver releases everything of the old one
/// (asynchronously in the C driver), and the other processes' handles to its nodes die.
fn reopen(p: &mut Proc) -> Done {
    // Let the release of the old file finish before process 0 claims the context manager.
    let outcome = match p.reopen() {
        Ok(manager) => format!("ok mgr={manager}"),
        Err(e) => format!("failed: {e}"),
    };
    Done {
        desc: "REOPEN".into(),
        outcome,
        tags: "A".into(),
    }
}

/// A handle: mostly one this process knows, sometimes 0 or one it does not have.
fn handle(p: &Proc, rng: &mut Rng) -> u32 {
    match rng.weighted(&[70, 12, 18]) {
        0 => rng.pick(&p.handles).unwrap_or(0),
        1 => 0,
        _ => {
            let max = p.handles.iter().copied().max().unwrap_or(0);
            let random = rng.next() as u32;
            rng.pick(&[max.wrapping_add(1), u32::MAX, 1000, random])
                .unwrap_or(1)
        }
    }
}

/// A bad pointer of a random kind.
fn bad_kind(rng: &mut Rng) -> BadPtr {
    match rng.below(6) {
        0 => BadPtr::Null,
        1 => BadPtr::Unmapped,
        2 => BadPtr::Kernel,
        3 => BadPtr::NonCanonical,
        4 => BadPtr::BinderMap,
        _ => BadPtr::GuardEnd(rng.pick(&[1, 4, 8, 12]).unwrap_or(4)),
    }
}

fn bad_name(bad: BadPtr) -> String {
    match bad {
        BadPtr::Null => "NULL".into(),
        BadPtr::Unmapped => "unmapped".into(),
        BadPtr::Kernel => "kernel".into(),
        BadPtr::NonCanonical => "noncanonical".into(),
        BadPtr::BinderMap => "binder-map".into(),
        BadPtr::GuardEnd(n) => format!("guard-{n}"),
    }
}

/// A `BINDER_WRITE_READ` of zero to four random commands and a read.
fn write_read(p: &mut Proc, t: usize, rng: &mut Rng, fault: &mut Fault) -> Done {
    let mut w = Writer::default();
    let n = rng.pick(&[0, 1, 1, 1, 1, 1, 2, 2, 3, 4]).unwrap_or(1);
    for _ in 0..n {
        command(p, t, rng, &mut w);
    }
    let mut write_size = w.bytes.len() as u64;
    let mut notes = String::new();
    // An argument that runs past write_size: rust_binder deliberately differs here.
    if write_size >= 8 && rng.chance(2) && !p.differential {
        let cut = 1 + rng.below(write_size.min(8) - 1);
        write_size -= cut;
        notes += &format!(" cut{cut}");
        w.tags.push('K');
    }
    let write_buffer = if rng.chance(3) {
        let bad = bad_kind(rng);
        notes += &format!(" wbuf={}", bad_name(bad));
        p.bad_ptr(bad)
    } else {
        w.bytes.as_ptr() as u64
    };
    let write_consumed = if rng.chance(2) {
        // Anywhere, or (compared with another driver) where a command starts or past the
        // end: a command that starts inside write_size and runs past it is read past the end
        // by the C driver, where rust_binder deliberately stops with EFAULT.
        let at = if p.differential {
            let mut starts = w.starts.clone();
            starts.extend([write_size, write_size + 4]);
            rng.pick(&starts).unwrap_or(0)
        } else {
            rng.below(write_size + 8)
        };
        if !w.starts.contains(&at) && at < write_size {
            w.tags.push('K');
        }
        notes += &format!(" wc0={at}");
        at
    } else {
        0
    };
    let tiny = if p.differential { 0 } else { 1 };
    let read_size = match rng.weighted(&[15, tiny, 8, 8, 40, 28]) {
        0 => 0,
        1 => {
            // A read buffer of 1 to 3 bytes: rust_binder deliberately differs.
            w.tags.push('K');
            1 + rng.below(3)
        }
        2 => 4 + rng.below(13),
        3 => 48,
        4 => 256,
        _ => 4096,
    };
    // Room past the end: the C driver writes a whole return into a 1 to 3 byte buffer.
    let mut read = vec![0u8; 4096 + 64];
    let mut read_valid = true;
    let read_buffer = if read_size > 0 && rng.chance(3) && !p.differential {
        let bad = bad_kind(rng);
        notes += &format!(" rbuf={}", bad_name(bad));
        // A read that cannot be written: the drivers deliberately differ in what they do
        // with a transaction that could not be delivered.
        w.tags.push('K');
        read_valid = false;
        p.bad_ptr(bad)
    } else {
        read.as_mut_ptr() as u64
    };
    let read_consumed = if read_size > 0 && rng.chance(2) {
        // Past read_size, the C driver writes returns past the end of the buffer, where
        // rust_binder deliberately writes nothing.
        let at = rng.below(read_size + if p.differential { 1 } else { 8 });
        notes += &format!(" rc0={at}");
        if at > read_size {
            read_valid = false;
            w.tags.push('K');
        }
        at
    } else {
        0
    };
    let mut bwr = uapi::binder_write_read {
        write_size,
        write_consumed,
        write_buffer,
        read_size,
        read_consumed,
        read_buffer,
    };
    let Some(open) = &p.open else {
        return reopen(p);
    };
    fault.on();
    let result = open.binder.write_read_raw(&mut bwr);
    fault.off();
    drop(w.keep);
    let mut outcome = format!(
        "{} w={} r={}",
        outcome::result(&result.map(|()| 0i32)),
        bwr.write_consumed,
        bwr.read_consumed
    );
    if read_valid && bwr.read_consumed > read_consumed {
        let end = (bwr.read_consumed as usize).min(read.len());
        let start = (read_consumed as usize).min(end);
        outcome += " ";
        outcome += &p.absorb(t, &read[start..end]);
    }
    Done {
        desc: format!(
            "WR [{}] ws={write_size} rs={read_size}{notes}",
            w.desc.join("; ")
        ),
        outcome,
        tags: w.tags,
    }
}

/// Appends one random command.
fn command(p: &mut Proc, t: usize, rng: &mut Rng, w: &mut Writer) {
    w.starts.push(w.bytes.len() as u64);
    let pending = p.calls[t] > 0;
    let unfreed = p.buffers.iter().any(|b| !b.freed);
    let weights = [
        16,                                     // BC_TRANSACTION
        7,                                      // BC_TRANSACTION_SG
        if pending { 40 } else { 4 },           // BC_REPLY
        if pending { 10 } else { 2 },           // BC_REPLY_SG
        if unfreed { 22 } else { 3 },           // BC_FREE_BUFFER
        8,                                      // reference counts
        if p.acks.is_empty() { 2 } else { 12 }, // BC_INCREFS_DONE, BC_ACQUIRE_DONE
        4,                                      // loopers
        5,                                      // death notifications
        if p.dead.is_empty() { 1 } else { 10 }, // BC_DEAD_BINDER_DONE
        3,                                      // freeze notifications
        1,                                      // commands no driver implements
        2,                                      // garbage
    ];
    match rng.weighted(&weights) {
        0 => transaction(p, t, rng, w, false, false),
        1 => transaction(p, t, rng, w, false, true),
        2 => transaction(p, t, rng, w, true, false),
        3 => transaction(p, t, rng, w, true, true),
        4 => free_buffer(p, rng, w),
        5 => {
            let (code, name) = rng
                .pick(&[
                    (uapi::BC_INCREFS, "INCREFS"),
                    (uapi::BC_ACQUIRE, "ACQUIRE"),
                    (uapi::BC_RELEASE, "RELEASE"),
                    (uapi::BC_DECREFS, "DECREFS"),
                ])
                .unwrap_or((uapi::BC_ACQUIRE, "ACQUIRE"));
            let h = handle(p, rng);
            w.u32(code);
            w.u32(h);
            w.desc.push(format!("{name} h{h}"));
        }
        6 => {
            let (code, ptr, cookie) = if !p.acks.is_empty() && rng.chance(85) {
                let i = rng.index(p.acks.len());
                p.acks.remove(i)
            } else {
                let ptr = node_ptr(p.index, rng.below(NODES));
                let code = if rng.chance(50) {
                    uapi::BC_INCREFS_DONE
                } else {
                    uapi::BC_ACQUIRE_DONE
                };
                (code, ptr, node_cookie(ptr) ^ rng.below(2))
            };
            let name = if code == uapi::BC_INCREFS_DONE {
                "INCREFS_DONE"
            } else {
                "ACQUIRE_DONE"
            };
            w.u32(code);
            w.u64(ptr);
            w.u64(cookie);
            w.desc.push(format!("{name} {ptr:#x}/{cookie:#x}"));
        }
        7 => {
            let (code, name) = rng
                .pick(&[
                    (uapi::BC_REGISTER_LOOPER, "REGISTER_LOOPER"),
                    (uapi::BC_ENTER_LOOPER, "ENTER_LOOPER"),
                    (uapi::BC_EXIT_LOOPER, "EXIT_LOOPER"),
                ])
                .unwrap_or((uapi::BC_ENTER_LOOPER, "ENTER_LOOPER"));
            w.u32(code);
            w.desc.push(name.into());
        }
        8 => {
            let (code, name) = if rng.chance(60) {
                (uapi::BC_REQUEST_DEATH_NOTIFICATION, "REQUEST_DEATH")
            } else {
                (uapi::BC_CLEAR_DEATH_NOTIFICATION, "CLEAR_DEATH")
            };
            let h = handle(p, rng);
            let cookie = rng.pick(&[1u64, 2, 3, 0xdead]).unwrap_or(1);
            // struct binder_handle_cookie is packed: the cookie follows the handle.
            w.u32(code);
            w.u32(h);
            w.u64(cookie);
            w.desc.push(format!("{name} h{h} {cookie:#x}"));
        }
        9 => {
            let cookie = if !p.dead.is_empty() && rng.chance(85) {
                let i = rng.index(p.dead.len());
                p.dead.remove(i)
            } else {
                rng.pick(&[1u64, 2, 0xdead, 0x77]).unwrap_or(1)
            };
            w.u32(uapi::BC_DEAD_BINDER_DONE);
            w.u64(cookie);
            w.desc.push(format!("DEAD_BINDER_DONE {cookie:#x}"));
        }
        10 => match rng.weighted(&[40, 30, 30]) {
            0 | 1 => {
                let (code, name) = if rng.chance(55) {
                    (uapi::BC_REQUEST_FREEZE_NOTIFICATION, "REQUEST_FREEZE")
                } else {
                    (uapi::BC_CLEAR_FREEZE_NOTIFICATION, "CLEAR_FREEZE")
                };
                let h = handle(p, rng);
                let cookie = rng.pick(&[0x11u64, 0x12]).unwrap_or(0x11);
                w.u32(code);
                w.u32(h);
                w.u64(cookie);
                w.desc.push(format!("{name} h{h} {cookie:#x}"));
            }
            _ => {
                let cookie = if !p.frozen.is_empty() && rng.chance(85) {
                    let i = rng.index(p.frozen.len());
                    p.frozen.remove(i)
                } else {
                    rng.pick(&[0x11u64, 0x99]).unwrap_or(0x11)
                };
                w.u32(uapi::BC_FREEZE_NOTIFICATION_DONE);
                w.u64(cookie);
                w.desc.push(format!("FREEZE_DONE {cookie:#x}"));
            }
        },
        11 => {
            if rng.chance(50) {
                w.u32(uapi::BC_ATTEMPT_ACQUIRE);
                w.u32(0);
                w.u32(handle(p, rng));
                w.desc.push("ATTEMPT_ACQUIRE".into());
            } else {
                w.u32(uapi::BC_ACQUIRE_RESULT);
                w.u32(0);
                w.desc.push("ACQUIRE_RESULT".into());
            }
        }
        _ => {
            // A random code, or a real command's number with its size bits changed.
            let code = if rng.chance(50) {
                rng.next() as u32
            } else {
                let real = rng
                    .pick(&[uapi::BC_TRANSACTION, uapi::BC_FREE_BUFFER, uapi::BC_INCREFS])
                    .unwrap_or(uapi::BC_INCREFS);
                real ^ ((1 + rng.below(8) as u32) << 16)
            };
            w.u32(code);
            let words = rng.below(4);
            for _ in 0..words {
                w.u32(rng.next() as u32);
            }
            w.desc.push(format!("garbage {code:#x}+{words}w"));
        }
    }
}

/// `BC_FREE_BUFFER` of a delivered buffer, mostly; or of a freed one, a pointer inside one,
/// NULL or garbage.
fn free_buffer(p: &mut Proc, rng: &mut Rng, w: &mut Writer) {
    let unfreed: Vec<usize> = (0..p.buffers.len())
        .filter(|&i| !p.buffers[i].freed)
        .collect();
    let freed: Vec<usize> = (0..p.buffers.len())
        .filter(|&i| p.buffers[i].freed)
        .collect();
    let (addr, what) = match rng.weighted(&[75, 8, 7, 5, 5]) {
        0 | 2 if !unfreed.is_empty() => {
            let i = rng.pick(&unfreed).unwrap_or(0);
            let age = p.buffers.len() - i;
            if rng.chance(90) {
                p.buffers[i].freed = true;
                (p.buffers[i].addr, format!("buf-{age}"))
            } else {
                (p.buffers[i].addr + 8, format!("buf-{age}+8"))
            }
        }
        1 if !freed.is_empty() => {
            let i = rng.pick(&freed).unwrap_or(0);
            (p.buffers[i].addr, format!("freed-{}", p.buffers.len() - i))
        }
        3 => (0, "NULL".into()),
        _ => {
            let base = p.open.as_ref().map_or(0, |o| o.map.addr() as u64);
            let off = rng.below(p.map_size as u64 + 64);
            (base + off, format!("map+{off}"))
        }
    };
    w.u32(uapi::BC_FREE_BUFFER);
    w.u64(addr);
    w.desc.push(format!("FREE_BUFFER {what}"));
}

/// A payload: data with objects of every type, their offsets, and the scatter-gather buffers
/// its `PTR` objects point to.
struct Payload {
    data: Vec<u8>,
    offsets: Vec<u64>,
    buffers: Vec<Vec<u8>>,
    sg_size: u64,
    desc: Vec<String>,
}

/// Whether to break something, `percent` times in a hundred, unless the payload is `clean`.
fn odd(rng: &mut Rng, clean: bool, percent: u64) -> bool {
    !clean && rng.chance(percent)
}

/// A payload of up to four objects; a `clean` one has only valid objects (a scatter-gather
/// one, `sg`, may have `PTR` and `FDA` objects), so that transactions are delivered and
/// handles, nodes and buffers spread between the processes.
fn payload(p: &Proc, rng: &mut Rng, clean: bool, sg: bool) -> Payload {
    let mut pl = Payload {
        data: Vec::new(),
        offsets: Vec::new(),
        buffers: Vec::new(),
        sg_size: 0,
        desc: Vec::new(),
    };
    let lead = rng.pick(&[0usize, 0, 8, 16, 4]).unwrap_or(0);
    for _ in 0..lead {
        pl.data.push(rng.below(4) as u8);
    }
    if lead > 0 {
        pl.desc.push(format!("{lead}b"));
    }
    // Earlier PTR objects: (their index in the offsets, their length).
    let mut ptrs: Vec<(u64, u64)> = Vec::new();
    let nobj = rng.weighted(&[30, 30, 20, 12, 8]);
    for _ in 0..nobj {
        let index = pl.offsets.len() as u64;
        let weights = if !clean {
            [14, 5, 14, 5, 8, 12, 6, 2]
        } else if sg {
            [14, 5, 14, 5, 8, 12, if ptrs.is_empty() { 0 } else { 8 }, 0]
        } else {
            [14, 5, 14, 5, 8, 0, 0, 0]
        };
        let (object, desc): (Vec<u8>, String) = match rng.weighted(&weights) {
            kind @ (0 | 1) => {
                let k = rng.below(NODES);
                let mut ptr = node_ptr(p.index, k);
                let mut cookie = node_cookie(ptr);
                let mut note = String::new();
                if odd(rng, clean, 4) {
                    cookie ^= 0x10;
                    note += "!cookie";
                }
                if odd(rng, clean, 2) {
                    ptr = 0;
                    note += "!ptr0";
                }
                let flag_weights = if clean {
                    [50, 25, 10, 0, 0]
                } else {
                    [50, 25, 10, 5, 3]
                };
                let flags = match rng.weighted(&flag_weights) {
                    0 => 0,
                    1 => uapi::FLAT_BINDER_FLAG_ACCEPTS_FDS,
                    2 => uapi::FLAT_BINDER_FLAG_ACCEPTS_FDS | 0x13,
                    3 => uapi::FLAT_BINDER_FLAG_TXN_SECURITY_CTX,
                    _ => rng.next() as u32,
                };
                let kind = if kind == 0 {
                    ObjectKind::Binder
                } else {
                    ObjectKind::WeakBinder
                };
                let object = FlatObject {
                    kind,
                    flags,
                    value: ptr,
                    cookie,
                };
                let name = if kind == ObjectKind::Binder {
                    "B"
                } else {
                    "WB"
                };
                (
                    object.to_bytes().to_vec(),
                    format!("{name}{k}:{flags:#x}{note}"),
                )
            }
            kind @ (2 | 3) => {
                let h = if clean {
                    rng.pick(&p.handles).unwrap_or(0)
                } else {
                    handle(p, rng)
                };
                let mut object = FlatObject::handle(h);
                if kind == 3 {
                    object = object.with_kind(ObjectKind::WeakHandle);
                }
                if odd(rng, clean, 3) {
                    object.flags = rng.next() as u32;
                }
                let name = if kind == 2 { "H" } else { "WH" };
                (object.to_bytes().to_vec(), format!("{name}{h}"))
            }
            4 => {
                let fd_weights = if clean {
                    [60, 20, 0, 0]
                } else {
                    [60, 20, 10, 10]
                };
                let (fd, name) = match rng.weighted(&fd_weights) {
                    0 => (p.pipe_fd, "pipe"),
                    1 => (p.null_fd, "null"),
                    2 => (-1, "-1"),
                    _ => (999, "999"),
                };
                let object = BinderObject::Fd(FdObject {
                    fd: fd as u32,
                    cookie: rng.below(4),
                });
                (object.to_bytes(), format!("FD:{name}"))
            }
            5 => {
                let len = rng.pick(&[0u64, 8, 16, 24, 40, 64, 100]).unwrap_or(8);
                // Filled with the fd to send, for any FDA that points into it.
                let mut bytes = Vec::with_capacity(len as usize);
                while (bytes.len() as u64) < len {
                    bytes.extend_from_slice(&(p.pipe_fd as u32).to_ne_bytes());
                }
                bytes.truncate(len as usize);
                let mut note = String::new();
                let addr = if odd(rng, clean, 8) {
                    let bad = bad_kind(rng);
                    note += &format!("@{}", bad_name(bad));
                    p.bad_ptr(bad)
                } else {
                    bytes.as_ptr() as u64
                };
                let mut object = BufferObject::new(addr, len);
                if let Some((parent, plen)) = rng.pick(&ptrs).filter(|_| rng.chance(50)) {
                    let mut at = 8 * rng.below((plen / 8).max(1));
                    let mut parent = parent;
                    if odd(rng, clean, 8) {
                        match rng.below(3) {
                            0 => at = plen,
                            1 => parent = index,
                            _ => parent = 99,
                        }
                    }
                    object = object.with_parent(parent, at);
                    note += &format!("<{parent}+{at}");
                }
                if odd(rng, clean, 2) {
                    object.flags |= 1 << (1 + rng.below(31));
                    note += "!flags";
                }
                pl.sg_size += len.div_ceil(8) * 8;
                pl.buffers.push(bytes);
                ptrs.push((index, len));
                (
                    BinderObject::Buffer(object).to_bytes(),
                    format!("PTR{len}{note}"),
                )
            }
            6 => {
                let (parent, plen) = match rng.pick(&ptrs).filter(|_| clean || rng.chance(85)) {
                    Some(found) => found,
                    None => (rng.pick(&[index, 99]).unwrap_or(99), 16),
                };
                let at = 4 * rng.below(plen / 4 + 1);
                let mut num = rng.below(plen.saturating_sub(at) / 4 + 1);
                if odd(rng, clean, 5) {
                    num = rng.pick(&[1u64 << 20, u64::MAX / 4]).unwrap_or(1 << 20);
                }
                let object = BinderObject::FdArray(FdArrayObject {
                    num_fds: num,
                    parent,
                    parent_offset: at,
                });
                (object.to_bytes(), format!("FDA{num}<{parent}+{at}"))
            }
            _ => {
                let mut bytes = Vec::new();
                let kind = if rng.chance(50) {
                    rng.next() as u32
                } else {
                    // A real type, its body garbage.
                    rng.pick(&[
                        uapi::BINDER_TYPE_PTR,
                        uapi::BINDER_TYPE_FDA,
                        uapi::BINDER_TYPE_FD,
                    ])
                    .unwrap_or(uapi::BINDER_TYPE_FD)
                };
                bytes.extend_from_slice(&kind.to_ne_bytes());
                for _ in 0..5 {
                    bytes.extend_from_slice(&(rng.next() as u32 & 0xff).to_ne_bytes());
                }
                (bytes, format!("junk{kind:#x}"))
            }
        };
        pl.offsets.push(pl.data.len() as u64);
        pl.data.extend_from_slice(&object);
        pl.desc.push(desc);
    }
    if odd(rng, clean, 30) {
        let tail = rng.below(17) as usize;
        pl.data.extend(std::iter::repeat_n(0x5a, tail));
        pl.desc.push(format!("+{tail}b"));
    }
    pl
}

/// `BC_TRANSACTION`, `BC_REPLY` or their `_SG` forms, with a random payload and, now and
/// then, a broken size, pointer or offsets array.
fn transaction(p: &mut Proc, t: usize, rng: &mut Rng, w: &mut Writer, reply: bool, sg: bool) {
    // Most transactions are well-formed, so that they are delivered.
    let clean = rng.chance(60);
    let target = if reply && (clean || rng.chance(90)) {
        0
    } else if clean {
        // The context manager's handle 0 is its own node, which it cannot call.
        let others: Vec<u32> = p
            .handles
            .iter()
            .copied()
            .filter(|&h| h != 0 || p.index != 0)
            .collect();
        rng.pick(&others).unwrap_or(0)
    } else {
        handle(p, rng)
    };
    let code = if clean || rng.chance(90) {
        rng.below(8) as u32
    } else {
        rng.next() as u32
    };
    let mut flags = 0;
    if rng.chance(if reply { 5 } else { 35 }) {
        flags |= uapi::TF_ONE_WAY;
    }
    if clean || rng.chance(50) {
        flags |= uapi::TF_ACCEPT_FDS;
    }
    if rng.chance(10) {
        flags |= uapi::TF_CLEAR_BUF;
    }
    if odd(rng, clean, 5) {
        flags |= uapi::TF_UPDATE_TXN;
    }
    if odd(rng, clean, 3) {
        flags |= uapi::TF_STATUS_CODE;
    }
    if odd(rng, clean, 3) {
        flags |= uapi::TF_ROOT_OBJECT;
    }
    if odd(rng, clean, 2) {
        flags |= 1 << (8 + rng.below(24));
    }
    let pl = payload(p, rng, clean, sg);
    let mut notes = String::new();
    let mut offsets: Vec<u8> = pl.offsets.iter().flat_map(|o| o.to_ne_bytes()).collect();
    if !pl.offsets.is_empty() && odd(rng, clean, 4) {
        let i = rng.index(pl.offsets.len()) * 8;
        let bump = rng.pick(&[1u64, 4, 8]).unwrap_or(1);
        let v = u64::from_ne_bytes(offsets[i..i + 8].try_into().unwrap_or([0; 8])) + bump;
        offsets[i..i + 8].copy_from_slice(&v.to_ne_bytes());
        notes += &format!(" off{}+={bump}", i / 8);
    }
    if odd(rng, clean, 2) {
        offsets.extend_from_slice(&(pl.data.len() as u64).to_ne_bytes());
        notes += " off+end";
    }
    if pl.offsets.len() > 1 && odd(rng, clean, 3) {
        let mut words: Vec<[u8; 8]> = offsets
            .chunks_exact(8)
            .map(|c| c.try_into().unwrap_or([0; 8]))
            .collect();
        words.reverse();
        offsets = words.concat();
        notes += " off-reversed";
    }
    let mut offsets_size = offsets.len() as u64;
    if odd(rng, clean, 2) {
        offsets_size = rng
            .pick(&[offsets_size.saturating_sub(1), offsets_size + 4, 1 << 40])
            .unwrap_or(0);
        notes += &format!(" os={offsets_size}");
    }
    // Room past the offsets for an offsets_size made larger.
    offsets.resize(offsets.len() + 16, 0);
    let mut data_size = pl.data.len() as u64;
    if odd(rng, clean, 3) {
        data_size = rng
            .pick(&[data_size.saturating_sub(1), data_size + 8, 0, 1 << 40])
            .unwrap_or(0);
        notes += &format!(" ds={data_size}");
    }
    let mut data = pl.data;
    data.resize(data.len() + 16, 0);
    let data_ptr = if odd(rng, clean, 2) {
        let mut bad = bad_kind(rng);
        // With a NULL data pointer the C driver reads the objects from what the receiver's
        // buffer held before (binder_get_object's kernel-side branch), where rust_binder
        // fails the copy: not compared.
        if matches!(bad, BadPtr::Null) {
            if p.differential {
                bad = BadPtr::Unmapped;
            } else {
                w.tags.push('K');
            }
        }
        notes += &format!(" data@{}", bad_name(bad));
        p.bad_ptr(bad)
    } else {
        data.as_ptr() as u64
    };
    let offsets_ptr = if odd(rng, clean, 2) {
        let bad = bad_kind(rng);
        notes += &format!(" offs@{}", bad_name(bad));
        p.bad_ptr(bad)
    } else {
        offsets.as_ptr() as u64
    };
    let mut tr = uapi::binder_transaction_data {
        code,
        flags,
        data_size,
        offsets_size,
        ..Default::default()
    };
    tr.target.handle = target;
    tr.data.ptr.buffer = data_ptr;
    tr.data.ptr.offsets = offsets_ptr;
    if odd(rng, clean, 2) {
        tr.cookie = rng.next();
        notes += " cookie";
    }
    let name = match (reply, sg) {
        (false, false) => "TXN",
        (false, true) => "TXN_SG",
        (true, false) => "REPLY",
        (true, true) => "REPLY_SG",
    };
    if sg {
        let mut buffers_size = pl.sg_size;
        if odd(rng, clean, 6) {
            buffers_size = rng
                .pick(&[
                    0,
                    buffers_size.saturating_sub(8),
                    buffers_size + 64,
                    1 << 40,
                ])
                .unwrap_or(0);
            notes += &format!(" bs={buffers_size}");
        }
        w.u32(if reply {
            uapi::BC_REPLY_SG
        } else {
            uapi::BC_TRANSACTION_SG
        });
        w.raw(&uapi::binder_transaction_data_sg {
            transaction_data: tr,
            buffers_size,
        });
    } else {
        w.u32(if reply {
            uapi::BC_REPLY
        } else {
            uapi::BC_TRANSACTION
        });
        w.raw(&tr);
    }
    if reply && p.calls[t] > 0 {
        p.calls[t] -= 1;
    }
    if !clean {
        notes += " raw";
    }
    w.desc.push(format!(
        "{name} h{target} c={code:#x} f={flags:#x} [{}]{notes}",
        pl.desc.join(",")
    ));
    w.keep.push(data);
    w.keep.push(offsets);
    w.keep.extend(pl.buffers);
}

/// Another ioctl: every binder ioctl with good and bad arguments, and garbage numbers.
fn ioctl(p: &mut Proc, t: usize, rng: &mut Rng, fault: &mut Fault) -> Done {
    // The argument, 8-aligned, with room around it.
    let mut arg = [0u64; 24];
    // A buffer the raw BINDER_WRITE_READ points into: zeroes, which are no command. Larger
    // sizes go only with bad pointers, so that the kernel never writes past it.
    let mut scratch = vec![0u8; 4096];
    let scratch_ptr = scratch.as_mut_ptr() as u64;
    let pick_pid = |rng: &mut Rng| -> (i32, String) {
        match rng.weighted(&[20, 40, 10, 10, 10]) {
            0 => (p.pids[p.index], format!("p{}", p.index)),
            1 => {
                let i = rng.index(p.pids.len());
                (p.pids[i], format!("p{i}"))
            }
            2 => (p.coordinator, "coordinator".into()),
            3 => (0, "0".into()),
            _ => (rng.pick(&[-1, 999_999]).unwrap_or(-1), "bad".into()),
        }
    };
    let set_u32 = |arg: &mut [u64; 24], at: usize, v: u32| {
        // SAFETY: `at` is a 4-byte slot inside `arg`.
        unsafe { (arg.as_mut_ptr().cast::<u32>()).add(at).write(v) };
    };
    let (nr, desc) = match rng.weighted(&[4, 3, 1, 1, 3, 2, 2, 2, 3, 2, 1, 2, 1, 1, 3]) {
        0 => {
            let half = |rng: &mut Rng, read: bool| {
                if rng.chance(50) {
                    (
                        rng.pick(&[0u64, 4, 48, 256, 4096]).unwrap_or(0),
                        scratch_ptr,
                    )
                } else {
                    let size = rng.pick(&[0u64, 4, 48, 1 << 20, u64::MAX]).unwrap_or(0);
                    let mut bad = bad_kind(rng);
                    // A read buffer with room for the BR_NOOP and not for what follows: the
                    // drivers deliberately differ in what becomes of a transaction that
                    // cannot be delivered, so, when compared, not even the BR_NOOP fits.
                    if read && p.differential && matches!(bad, BadPtr::GuardEnd(n) if n >= 4) {
                        bad = BadPtr::GuardEnd(1);
                    }
                    (size, p.bad_ptr(bad))
                }
            };
            (arg[0], arg[2]) = half(rng, false);
            (arg[3], arg[5]) = half(rng, true);
            // Consumed counts inside a size would start a command or return part way, where
            // the drivers deliberately differ: only at the ends when compared.
            if p.differential {
                arg[1] = rng.pick(&[0, arg[0]]).unwrap_or(0);
                arg[4] = rng.pick(&[0, arg[3]]).unwrap_or(0);
            } else {
                arg[1] = rng.below(8);
                arg[4] = rng.below(8);
            }
            (
                uapi::BINDER_WRITE_READ,
                format!("WRITE_READ-raw ws={} rs={}", arg[0], arg[3]),
            )
        }
        1 => {
            let v = rng.pick(&[0u32, 1, 2, 4, 15, u32::MAX]).unwrap_or(0);
            set_u32(&mut arg, 0, v);
            (uapi::BINDER_SET_MAX_THREADS, format!("SET_MAX_THREADS {v}"))
        }
        2 => (uapi::BINDER_SET_CONTEXT_MGR, "SET_CONTEXT_MGR".into()),
        3 => {
            let ptr = node_ptr(p.index, rng.below(NODES));
            let object = FlatObject {
                kind: if rng.chance(90) {
                    ObjectKind::Binder
                } else {
                    ObjectKind::Handle
                },
                flags: rng
                    .pick(&[0, uapi::FLAT_BINDER_FLAG_ACCEPTS_FDS])
                    .unwrap_or(0),
                value: ptr,
                cookie: node_cookie(ptr),
            };
            let bytes = object.to_bytes();
            // SAFETY: `arg` has room for the 24 bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), arg.as_mut_ptr().cast(), bytes.len())
            };
            (
                uapi::BINDER_SET_CONTEXT_MGR_EXT,
                format!("SET_CONTEXT_MGR_EXT {ptr:#x}"),
            )
        }
        4 => {
            p.calls[t] = 0;
            (uapi::BINDER_THREAD_EXIT, "THREAD_EXIT".into())
        }
        5 => (uapi::BINDER_VERSION, "VERSION".into()),
        6 => {
            let ptr = match rng.below(4) {
                0 => 0,
                1 => node_ptr(p.index, rng.below(NODES)),
                2 => node_ptr(p.index, rng.below(NODES)) - 1,
                _ => rng.next(),
            };
            arg[0] = ptr;
            (
                uapi::BINDER_GET_NODE_DEBUG_INFO,
                format!("GET_NODE_DEBUG_INFO {ptr:#x}"),
            )
        }
        7 => {
            let h = handle(p, rng);
            set_u32(&mut arg, 0, h);
            if rng.chance(10) {
                set_u32(&mut arg, 1 + rng.index(5), 1);
            }
            (
                uapi::BINDER_GET_NODE_INFO_FOR_REF,
                format!("GET_NODE_INFO_FOR_REF h{h}"),
            )
        }
        8 => {
            let (pid, who) = pick_pid(rng);
            let enable = rng.pick(&[1u32, 1, 0, 0, 2]).unwrap_or(0);
            let timeout = rng.pick(&[0u32, 0, 1, 10]).unwrap_or(0);
            set_u32(&mut arg, 0, pid as u32);
            set_u32(&mut arg, 1, enable);
            set_u32(&mut arg, 2, timeout);
            (
                uapi::BINDER_FREEZE,
                format!("FREEZE {who} enable={enable} timeout={timeout}"),
            )
        }
        9 => {
            let (pid, who) = pick_pid(rng);
            set_u32(&mut arg, 0, pid as u32);
            (
                uapi::BINDER_GET_FROZEN_INFO,
                format!("GET_FROZEN_INFO {who}"),
            )
        }
        10 => {
            let v = rng.below(3) as u32;
            set_u32(&mut arg, 0, v);
            (
                uapi::BINDER_ENABLE_ONEWAY_SPAM_DETECTION,
                format!("ENABLE_ONEWAY_SPAM_DETECTION {v}"),
            )
        }
        11 => (uapi::BINDER_GET_EXTENDED_ERROR, "GET_EXTENDED_ERROR".into()),
        12 => {
            arg[0] = rng.next();
            (uapi::BINDER_SET_IDLE_TIMEOUT, "SET_IDLE_TIMEOUT".into())
        }
        13 => (uapi::BINDER_SET_IDLE_PRIORITY, "SET_IDLE_PRIORITY".into()),
        _ => {
            let nr = match rng.below(4) {
                0 => rng.next() as u32,
                // 'b' ioctls with a random number, direction and size.
                1 => {
                    ((rng.below(4) as u32) << 30)
                        | ((rng.below(512) as u32) << 16)
                        | 0x6200
                        | rng.below(32) as u32
                }
                // BINDER_WRITE_READ with another size.
                2 => (uapi::BINDER_WRITE_READ & !(0x3fff << 16)) | ((rng.below(96) as u32) << 16),
                _ => 0x6201,
            };
            for slot in arg.iter_mut().take(8) {
                *slot = rng.below(4);
            }
            // A random number can be BINDER_WRITE_READ itself: a read_consumed past read_size
            // is where the drivers deliberately differ, so not when compared.
            if nr == uapi::BINDER_WRITE_READ && p.differential {
                arg[4] = arg[4].min(arg[3]);
            }
            (nr, format!("ioctl {nr:#x}"))
        }
    };
    // The argument pointer: the struct, or a bad pointer, or the struct at an odd address, or
    // ending past the guard page.
    let mut valid = true;
    let mut odd = [0u8; 200];
    let (ptr, how) = match rng.weighted(&[88, 8, 2, 2]) {
        0 => (arg.as_mut_ptr() as u64, String::new()),
        1 => {
            valid = false;
            let bad = match rng.below(4) {
                0 => BadPtr::Null,
                1 => BadPtr::Unmapped,
                2 => BadPtr::Kernel,
                _ => BadPtr::NonCanonical,
            };
            (p.bad_ptr(bad), format!(" arg={}", bad_name(bad)))
        }
        2 => {
            // SAFETY: Both are plain byte views of local arrays, and 192 bytes fit in `odd`
            // after its first byte.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    arg.as_ptr().cast::<u8>(),
                    odd.as_mut_ptr().add(1),
                    192,
                )
            };
            valid = false;
            // SAFETY: Offset 1 is inside `odd`.
            (unsafe { odd.as_mut_ptr().add(1) } as u64, " arg=odd".into())
        }
        _ => {
            valid = false;
            let n = rng.pick(&[4u64, 8, 12]).unwrap_or(8);
            let end = p.bad_ptr(BadPtr::GuardEnd(n));
            // SAFETY: The `n` bytes before the guard page are writable memory of ours.
            unsafe {
                std::ptr::copy_nonoverlapping(arg.as_ptr().cast::<u8>(), end as *mut u8, n as usize)
            };
            (end, format!(" arg=guard-{n}"))
        }
    };
    let Some(open) = &p.open else {
        return reopen(p);
    };
    fault.on();
    // SAFETY: The pointer is our argument, a bad pointer the kernel must reject, or memory of
    // ours that ends at the guard page; the kernel only accesses what the ioctl's struct
    // spans (at most 48 bytes), which fits in each of them or faults.
    let result = unsafe { open.binder.ioctl_ptr(nr, ptr as *mut libc::c_void) };
    fault.off();
    drop(scratch);
    let mut outcome = outcome::result(&result);
    if valid && result.is_ok() {
        let word = |i: usize| {
            // SAFETY: `i` is a 4-byte slot inside `arg`.
            unsafe { arg.as_ptr().cast::<u32>().add(i).read() }
        };
        outcome += &match nr {
            uapi::BINDER_VERSION => format!(" v={}", word(0)),
            uapi::BINDER_GET_FROZEN_INFO => format!(" sync={} async={}", word(1), word(2)),
            uapi::BINDER_GET_NODE_DEBUG_INFO => {
                format!(" {:#x}/{:#x} s={} w={}", arg[0], arg[1], word(4), word(5))
            }
            uapi::BINDER_GET_NODE_INFO_FOR_REF => format!(" s={} w={}", word(1), word(2)),
            // The id is a debug id, which differs between drivers.
            uapi::BINDER_GET_EXTENDED_ERROR => {
                format!(
                    " cmd={} param={}",
                    outcome::return_name(word(1)),
                    word(2) as i32
                )
            }
            uapi::BINDER_WRITE_READ => format!(" w={} r={}", arg[1], arg[4]),
            _ => String::new(),
        };
    }
    Done {
        desc: format!("{desc}{how}"),
        outcome,
        tags: String::new(),
    }
}
