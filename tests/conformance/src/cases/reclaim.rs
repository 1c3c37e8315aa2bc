//! Receive-buffer pages given back under memory pressure, and put in again when needed.
//!
//! A page of a receive buffer that no buffer uses any more stays mapped for the next
//! transaction; when memory runs short the driver's shrinker takes it back (unmaps and frees
//! it), as the C driver's does. Writing 2 to `/proc/sys/vm/drop_caches` runs every shrinker,
//! so it is the pressure these cases apply. What they check: the mapping's resident size
//! (`Rss` in `/proc/PID/smaps`) drops after pressure, every transaction afterwards arrives
//! byte for byte (on pages put in again), buffers still held keep their pages, TF_CLEAR_BUF
//! still zeroes, and all that while the shrinker runs next to several processes at work.

use std::{fs, io::Write as _};

use binder_client::{uapi, Commands, Payload, Txn};

use crate::{
    ensure,
    harness::{spawn_ready, Case, Child, Env, Outcome, Step},
};

use super::{context_mgr::become_manager, peer::Peer};

pub const CASES: &[Case] = &[
    Case::new(
        "reclaim_pressure_frees_unused_pages_and_contents_stay_right",
        pressure_frees_unused_pages,
    ),
    Case::new(
        "reclaim_shrinker_runs_while_processes_transact",
        shrinker_while_transacting,
    ),
];

/// The receive buffer every process of these cases maps: the most binder uses.
const MAP_SIZE: usize = 4 << 20;

/// A large call: about 1 MiB, a little less each round so that buffers start at different
/// offsets within their pages.
fn big_len(round: u32) -> usize {
    (1 << 20) - 4096 * (round as usize % 5) - 13 * round as usize
}

/// The length of the reply to call `round`.
fn reply_len(round: u32) -> usize {
    (512 << 10) + 777 * round as usize
}

/// Bytes that differ with the seed and along the buffer, also from one page to the next, so
/// that a page put in the wrong place, a stale page or a zeroed one does not match.
fn contents(seed: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let page = (i / 4096) as u32;
            (seed.wrapping_mul(131) ^ (i as u32).wrapping_mul(7) ^ page.wrapping_mul(29)) as u8
        })
        .collect()
}

/// Checks that `txn`, received by `peer`, holds `contents(seed, len)`.
fn expect_contents(peer: &Peer, txn: &Txn, seed: u32, len: usize, what: &str) -> Outcome {
    let data = peer.received(txn).data().step(what)?;
    ensure!(
        data.len() == len,
        "{what}: {} bytes arrived, {len} were sent",
        data.len()
    );
    let want = contents(seed, len);
    if let Some(at) = data.iter().zip(&want).position(|(a, b)| a != b) {
        return Err(format!(
            "{what}: byte {at} of {len} reads {:#x}, {:#x} was sent",
            data[at], want[at]
        ));
    }
    Ok(())
}

/// Opens and maps the binder device with a receive buffer of [`MAP_SIZE`].
fn open() -> Outcome<Peer> {
    Peer::open_mapped(MAP_SIZE)
}

/// The resident size in KiB (`Rss` in `/proc/PID/smaps`) of the mapping that starts at `addr`
/// in the process `pid` (0: this one).
fn mapping_rss_kib(pid: libc::pid_t, addr: usize) -> Outcome<u64> {
    let path = match pid {
        0 => "/proc/self/smaps".to_string(),
        pid => format!("/proc/{pid}/smaps"),
    };
    let smaps = fs::read_to_string(&path).step(&path)?;
    let header = format!("{addr:x}-");
    let mut lines = smaps.lines().skip_while(|line| !line.starts_with(&header));
    lines
        .next()
        .ok_or(format!("no mapping at {addr:#x} in {path}"))?;
    for line in lines {
        if let Some(rss) = line.strip_prefix("Rss:") {
            let kib = rss.trim().trim_end_matches("kB").trim();
            return kib
                .parse()
                .map_err(|_| format!("{path}: bad Rss line {line:?}"));
        }
    }
    Err(format!("{path}: no Rss for the mapping at {addr:#x}"))
}

/// Memory pressure: runs every shrinker in the kernel, the binder driver's among them.
fn apply_pressure() -> Outcome {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .open("/proc/sys/vm/drop_caches")
        .step("open /proc/sys/vm/drop_caches")?;
    file.write_all(b"2\n")
        .step("write /proc/sys/vm/drop_caches")
}

/// Call codes the server of [`pressure_frees_unused_pages`] knows.
const KEEP: u32 = 1;
const BIG: u32 = 2;
const RSS: u32 = 3;
const CHECK_KEPT: u32 = 4;
const CLEAR: u32 = 5;
const END: u32 = 6;

/// The seed and length of the buffer the server keeps, and of the reply the client keeps.
const KEPT_SEED: u32 = 9999;
const KEPT_LEN: usize = 300 << 10;

/// The context manager of [`pressure_frees_unused_pages`]: checks and answers the client's
/// calls, telling code from code (see the constants above).
fn serve_pressure_case(m: &Peer) -> Outcome {
    let mut kept: Option<Txn> = None;
    loop {
        let (call, _) = m.next_call()?;
        match call.code {
            KEEP => {
                expect_contents(m, &call, KEPT_SEED, KEPT_LEN, "the buffer to keep")?;
                m.reply(&call, &Payload::new())?;
                kept = Some(call);
            }
            BIG => {
                let data = m.received(&call).data().step("big call")?;
                let seed = u32::from_ne_bytes(data[..4].try_into().map_err(|_| "short")?);
                let mut want = contents(seed, data.len());
                want[..4].copy_from_slice(&seed.to_ne_bytes());
                if let Some(at) = data.iter().zip(&want).position(|(a, b)| a != b) {
                    return Err(format!("call {seed}: byte {at} of {} is wrong", data.len()));
                }
                let answer = contents(seed + 1, reply_len(seed));
                m.reply_and_free(&call, &Payload::new().bytes(&answer))?;
            }
            RSS => {
                let rss = mapping_rss_kib(0, m.mapping.addr() as usize)?;
                m.reply_and_free(&call, &Payload::new().bytes(&rss.to_ne_bytes()))?;
            }
            CHECK_KEPT => {
                let old = kept.take().ok_or("no buffer kept")?;
                expect_contents(
                    m,
                    &old,
                    KEPT_SEED,
                    KEPT_LEN,
                    "the kept buffer after pressure",
                )?;
                m.free(&old)?;
                m.reply_and_free(&call, &Payload::new())?;
            }
            CLEAR => {
                let len = call.data_size as usize;
                expect_contents(m, &call, KEPT_SEED + 1, len, "the TF_CLEAR_BUF call")?;
                ensure!(
                    call.flags & uapi::TF_CLEAR_BUF != 0,
                    "TF_CLEAR_BUF did not arrive: {:#x}",
                    call.flags
                );
                m.reply(&call, &Payload::new())?;
                m.free(&call)?;
                // Freed, but its pages stay mapped (no pressure since): they read zero.
                let bytes = m
                    .mapping
                    .bytes_at(call.buffer, len as u64)
                    .ok_or("the freed buffer is outside the mapping")?;
                if let Some(at) = bytes.iter().position(|&b| b != 0) {
                    return Err(format!(
                        "byte {at} of the freed TF_CLEAR_BUF buffer reads {:#x}",
                        bytes[at]
                    ));
                }
            }
            END => return m.reply_and_free(&call, &Payload::new()),
            other => return Err(format!("unknown call {other}")),
        }
    }
}

/// A big call's payload for `seed`: [`contents`] with the seed in its first four bytes.
fn big_payload(seed: u32, len: usize) -> Payload {
    let mut bytes = contents(seed, len);
    bytes[..4].copy_from_slice(&seed.to_ne_bytes());
    Payload::new().bytes(&bytes)
}

/// Rounds of big calls and big replies, each checked byte for byte and freed.
fn big_rounds(c: &Peer, seeds: std::ops::Range<u32>) -> Outcome {
    for seed in seeds {
        let reply = c.call_for_reply(0, BIG, &big_payload(seed, big_len(seed)))?;
        expect_contents(c, &reply, seed + 1, reply_len(seed), "a big reply")?;
        c.free(&reply)?;
    }
    Ok(())
}

/// The server's resident size of its mapping, in KiB.
fn server_rss(c: &Peer) -> Outcome<u64> {
    let reply = c.call_for_reply(0, RSS, &Payload::new())?;
    let data = c.received(&reply).data().step("Rss reply")?;
    let rss = u64::from_ne_bytes(data.try_into().map_err(|_| "short Rss reply")?);
    c.free(&reply)?;
    Ok(rss)
}

/// Many rounds of ~1 MiB calls and ~512 KiB replies, all freed; then memory pressure. The
/// pages the freed buffers left must go (both processes' mappings hold less than at their
/// peak), the buffers still held keep theirs, and further calls, on pages put in again,
/// arrive byte for byte; TF_CLEAR_BUF still zeroes a freed buffer.
fn pressure_frees_unused_pages(_: &Env) -> Outcome {
    let server = spawn_ready(|ready| {
        let m = open()?;
        become_manager(&m.binder)?;
        m.send(Commands::new().enter_looper(), "enter looper")?;
        ready();
        serve_pressure_case(&m)
    })?;
    let ours = client_of_pressure_case();
    server.join_after(ours)
}

fn client_of_pressure_case() -> Outcome {
    let c = open()?;
    let reply = c.call_for_reply(
        0,
        KEEP,
        &Payload::new().bytes(&contents(KEPT_SEED, KEPT_LEN)),
    )?;
    c.free(&reply)?;
    // A reply this side keeps through the pressure.
    let kept = c.call_for_reply(0, BIG, &big_payload(100, 4096))?;
    expect_contents(&c, &kept, 101, reply_len(100), "the reply to keep")?;
    big_rounds(&c, 0..12)?;

    let server_peak = server_rss(&c)?;
    let our_peak = mapping_rss_kib(0, c.mapping.addr() as usize)?;
    apply_pressure()?;
    let server_after = server_rss(&c)?;
    let our_after = mapping_rss_kib(0, c.mapping.addr() as usize)?;
    println!(
        "reclaim: Rss of the mappings before and after pressure: server {server_peak} -> \
         {server_after} KiB, client {our_peak} -> {our_after} KiB"
    );
    ensure!(
        server_after < server_peak,
        "the server's mapping holds {server_after} KiB after pressure, {server_peak} KiB before"
    );
    ensure!(
        our_after < our_peak,
        "the client's mapping holds {our_after} KiB after pressure, {our_peak} KiB before"
    );
    // What is still allocated kept its pages.
    ensure!(
        our_after >= (reply_len(100) / 1024) as u64,
        "the client's mapping holds {our_after} KiB after pressure, less than the reply it keeps"
    );
    expect_contents(
        &c,
        &kept,
        101,
        reply_len(100),
        "the kept reply after pressure",
    )?;
    c.free(&kept)?;
    let reply = c.call_for_reply(0, CHECK_KEPT, &Payload::new())?;
    c.free(&reply)?;

    big_rounds(&c, 20..30)?;
    apply_pressure()?;
    big_rounds(&c, 40..44)?;
    let reply = c.call_flags(
        0,
        CLEAR,
        uapi::TF_CLEAR_BUF,
        &Payload::new().bytes(&contents(KEPT_SEED + 1, 200_000)),
    )?;
    let reply = reply.reply.ok_or("the TF_CLEAR_BUF call failed")?;
    c.free(&reply)?;
    let reply = c.call_for_reply(0, END, &Payload::new())?;
    c.free(&reply)
}

/// How many client processes call at once in [`shrinker_while_transacting`], and how many
/// calls each makes.
const CLIENTS: u32 = 4;
const CALLS: u32 = 40;

/// Several processes make large calls, checked byte for byte both ways, while another keeps
/// the shrinker running: no call may see a wrong byte, fail, or bring a kernel warning.
fn shrinker_while_transacting(_: &Env) -> Outcome {
    let server = spawn_ready(|ready| {
        let m = open()?;
        become_manager(&m.binder)?;
        m.send(Commands::new().enter_looper(), "enter looper")?;
        ready();
        for _ in 0..CLIENTS * CALLS {
            let (call, _) = m.next_call()?;
            let len = call.data_size as usize;
            let data = m.received(&call).data().step("call")?;
            let seed = u32::from_ne_bytes(data[..4].try_into().map_err(|_| "short call")?);
            let mut want = contents(seed, len);
            want[..4].copy_from_slice(&seed.to_ne_bytes());
            if let Some(at) = data.iter().zip(&want).position(|(a, b)| a != b) {
                return Err(format!("call {seed}: byte {at} of {len} is wrong"));
            }
            let answer = contents(seed ^ 0x55, len / 2 + 3);
            m.reply_and_free(&call, &Payload::new().bytes(&answer))?;
        }
        Ok(())
    })?;
    let pressure = Child::spawn(|| loop {
        apply_pressure()?;
        std::thread::sleep(std::time::Duration::from_millis(5));
    })?;
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        clients.push(Child::spawn(move || {
            let c = open()?;
            for call in 0..CALLS {
                let seed = client * 1000 + call;
                let len = 64 * 1024 * (1 + (call as usize % 8)) + 17 * call as usize;
                let reply = c.call_for_reply(0, 7, &big_payload(seed, len))?;
                expect_contents(&c, &reply, seed ^ 0x55, len / 2 + 3, "a reply")?;
                c.free(&reply)?;
            }
            Ok(())
        })?);
    }
    let mut result = Ok(());
    for client in clients {
        let joined = client.join();
        if result.is_ok() {
            result = joined;
        }
    }
    pressure.kill()?;
    server.join_after(result)
}
