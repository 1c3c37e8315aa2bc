//! Where transactions land in the receiver's buffer. As the C driver does, a transaction goes
//! at the start of the smallest free part of the buffer that holds it (of several as small, the
//! one C's tree of free parts gives), and a freed buffer merges with the free parts on either
//! side; a receiver with thousands of buffers at once gets them all, in order, and the whole
//! buffer back once they are freed.

use binder_client::{uapi, Payload, Txn};

use crate::{
    ensure,
    harness::{notice, Case, Env, Outcome},
};

use super::peer::{spawn_manager, Peer, MAP_SIZE};

pub const CASES: &[Case] = &[
    Case::new(
        "buffers_go_in_the_smallest_free_part_and_merge_when_freed",
        smallest_free_part,
    ),
    Case::new(
        "of_free_parts_as_small_a_buffer_goes_in_the_one_c_picks",
        free_parts_as_small,
    ),
    Case::new(
        "thousands_of_one_way_buffers_at_once_come_in_order_and_go",
        thousands_of_one_way_buffers,
    ),
];

/// Where `txn` is in `peer`'s buffer.
fn offset_of(peer: &Peer, txn: &Txn) -> u64 {
    txn.buffer - peer.mapping.addr() as u64
}

/// One call to a manager: its size, where it must land, and which calls (by number) the
/// receiver frees after answering it.
type Call = (usize, u64, &'static [usize]);

/// Calls to a manager, in order.
type Script = [Call];

/// The calls of [`smallest_free_part`]. The free parts (offset, size) before each call are in
/// the comments; `end` is the buffer's.
const SCRIPT: &Script = &[
    // [0, end)
    (1024, 0, &[]),
    (64, 1024, &[]),
    (4096, 1088, &[]),
    (64, 5184, &[0, 2]),
    // [0, 1024), [1088, 5184), [5248, end): the 1024 bytes are the smallest that hold 512.
    (512, 0, &[]),
    // [512, 1024), [1088, 5184), [5248, end)
    (2048, 1088, &[]),
    // [512, 1024), [3136, 5184), [5248, end): an exact fit.
    (512, 512, &[1]),
    // [1024, 1088), [3136, 5184), [5248, end)
    (64, 1024, &[5, 7]),
    // [1024, 5184) (three parts merged), [5248, end)
    (4160, 1024, &[8, 3]),
    // [1024, end): all merged into the last part.
    (8192, 1024, &[]),
];

/// Five calls of 16 bytes (at 0 to 64), after the last of which the receiver frees calls 1
/// and 3 in the order `freed`, leaving two free parts of 16 bytes, at 16 and 48; then a call of
/// `size`, which C puts at 48 in both scripts below.
fn two_holes_then(freed: &'static [usize], size: usize) -> Vec<Call> {
    let mut script: Vec<Call> = (0..4).map(|number| (16, number * 16, &[][..])).collect();
    script.push((16, 64, freed));
    script.push((size, 48, &[]));
    script
}

fn smallest_free_part(_: &Env) -> Outcome {
    run_script(SCRIPT)
}

/// With the part at 48 freed first, a call of 8: C takes the first of the smallest larger parts
/// in its tree, the one that went in first (not the lowest). With the part at 16 freed first, a
/// call of 16: an exact fit, where C takes the first part of that size its search meets; its
/// tree (a red-black tree) then has the part freed second at its root: it went in to the right
/// of the first, and the tree rotated.
fn free_parts_as_small(_: &Env) -> Outcome {
    run_script(&two_holes_then(&[3, 1], 8))?;
    run_script(&two_holes_then(&[1, 3], 16))
}

/// Makes the calls of `script` to a new manager, which checks where each lands.
fn run_script(script: &Script) -> Outcome {
    let manager = spawn_manager(|m| {
        let mut held: Vec<Option<Txn>> = Vec::new();
        for (number, &(size, expected, then_free)) in script.iter().enumerate() {
            let (call, _) = m.next_call()?;
            let offset = offset_of(m, &call);
            ensure!(
                offset == expected,
                "call {number} of {size} bytes at offset {offset}, not {expected}"
            );
            held.push(Some(call.clone()));
            // Freed before the reply, so before the next call is sent.
            for &gone in then_free {
                let txn = held[gone]
                    .take()
                    .ok_or(format!("call {gone} freed twice"))?;
                m.free(&txn)?;
            }
            m.reply(&call, &Payload::new())?;
        }
        Ok(())
    })?;
    let calls = || -> Outcome {
        let client = Peer::open()?;
        for (number, &(size, _, _)) in script.iter().enumerate() {
            let data = vec![number as u8; size];
            let reply = client.call_for_reply(0, number as u32, &Payload::new().bytes(&data))?;
            client.free(&reply)?;
        }
        Ok(())
    };
    manager.join_after(calls())
}

/// How many one-way transactions wait at once: 8 bytes of the buffer each.
const ONE_WAYS: u32 = 4096;

fn thousands_of_one_way_buffers(_: &Env) -> Outcome {
    let (sent, await_sent) = notice()?;
    let (freed, await_freed) = notice()?;
    let manager = spawn_manager(move |m| {
        await_sent.wait()?;
        for number in 0..ONE_WAYS {
            let (txn, _) = m.next_call()?;
            ensure!(
                txn.code == number,
                "one-way {} came where {number} was due",
                txn.code
            );
            // All were in the buffer at once, one after the other.
            let offset = offset_of(m, &txn);
            ensure!(
                offset == u64::from(number) * 8,
                "one-way {number} at offset {offset}"
            );
            m.free(&txn)?;
        }
        freed.notify()?;
        // All freed: the buffer is one free part again, which a call of its whole size takes.
        let (whole, _) = m.next_call()?;
        ensure!(
            offset_of(m, &whole) == 0 && whole.data_size == MAP_SIZE as u64,
            "the call of the whole buffer got {whole:?}"
        );
        m.reply(&whole, &Payload::new())?;
        m.free(&whole)
    })?;
    let calls = || -> Outcome {
        let client = Peer::open()?;
        for number in 0..ONE_WAYS {
            client.send_call_flags(0, number, uapi::TF_ONE_WAY, &Payload::new())?;
            if number % 256 == 255 {
                client.pending()?;
            }
        }
        sent.notify()?;
        await_freed.wait()?;
        let whole = Payload::new().bytes(&vec![7; MAP_SIZE]);
        let reply = client.call_for_reply(0, ONE_WAYS, &whole)?;
        client.free(&reply)
    };
    manager.join_after(calls())
}
