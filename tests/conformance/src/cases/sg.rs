//! Scatter-gather buffers (`BINDER_TYPE_PTR`, sent with BC_TRANSACTION_SG/BC_REPLY_SG): the
//! driver copies each buffer into the receiver's transaction buffer after the offsets, one
//! after the other at 8-byte boundaries, rewrites the object's pointer to the receiver's copy,
//! and for a buffer with a parent writes that address into the parent's copy at
//! `parent_offset`. Then every rule the C driver checks on the way, each with its errno.
//!
//! The objects start at data offset 8: the C driver takes a parent at data offset 0 for "no
//! parent seen yet" and refuses fixups in it (pinned by
//! `sg_parent_at_data_offset_zero_takes_no_fixup`).

use binder_client::{BinderObject, BufferObject, Commands, FlatObject, Payload, Received};

use crate::{
    ensure,
    harness::{Case, Env, Outcome, Step},
};

use super::peer::{expect_payload_refused, expect_refused, spawn_manager, Peer};

pub const CASES: &[Case] = &[
    Case::new("sg_buffers_copied_after_offsets_8_aligned", buffers_copied),
    Case::new("sg_child_pointer_patched_in_parent", child_pointer_patched),
    Case::new("sg_three_level_chain_arrives_intact", chain_arrives),
    Case::new("sg_reply_chain_arrives_intact", reply_chain_arrives),
    Case::new("sg_zero_length_buffer_accepted", zero_length_buffer),
    Case::new("sg_buffer_in_plain_transaction_einval", ptr_without_sg),
    Case::new("sg_buffers_size_too_small_einval", buffers_size_too_small),
    Case::new("sg_buffer_length_overflow_einval", length_overflow),
    Case::new("sg_buffers_size_overflow_einval", buffers_size_overflow),
    Case::new(
        "sg_buffers_size_beyond_mapping_enospc",
        buffers_size_beyond_mapping,
    ),
    Case::new("sg_buffer_unreadable_einval", buffer_unreadable),
    Case::new("sg_parent_not_a_buffer_einval", parent_not_a_buffer),
    Case::new("cve_2020_0041_ptr_parent_is_itself", ptr_parent_is_itself),
    Case::new(
        "cve_2020_0041_ptr_parent_is_later_object",
        ptr_parent_is_later,
    ),
    Case::new(
        "sg_parent_offset_beyond_parent_einval",
        parent_offset_beyond,
    ),
    Case::new("sg_parent_shorter_than_a_pointer_einval", parent_too_short),
    Case::new("sg_fixup_out_of_order_einval", fixup_out_of_order),
    Case::new("sg_fixup_at_same_offset_einval", fixup_same_offset),
    Case::new("sg_fixup_in_non_ancestor_einval", fixup_in_non_ancestor),
    Case::new(
        "sg_parent_at_data_offset_zero_takes_no_fixup",
        parent_at_offset_zero,
    ),
    Case::new(
        "sg_offset_inside_previous_object_efault",
        offset_inside_object,
    ),
    Case::new("sg_object_past_data_end_einval", object_past_data_end),
];

/// Eight bytes of data before the first object.
const LEAD: &[u8] = b"sg-lead!";

/// `n` bytes counting up from `seed`.
pub fn pattern(seed: u8, n: usize) -> Vec<u8> {
    (0..n).map(|i| seed.wrapping_add(i as u8)).collect()
}

/// The start of the receiver's scatter-gather area: right after the offsets.
pub fn sg_start(txn: &binder_client::Txn) -> u64 {
    txn.offsets + txn.offsets_size
}

/// The 8-byte word at `at` of `bytes`.
pub fn word(bytes: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(bytes[at..at + 8].try_into().unwrap_or_default())
}

/// The buffer objects of `received`, in order.
pub fn buffers(received: &Received<'_>) -> Outcome<Vec<BufferObject>> {
    Ok(received
        .objects()
        .step("objects")?
        .into_iter()
        .filter_map(|object| match object {
            BinderObject::Buffer(buffer) => Some(buffer),
            _ => None,
        })
        .collect())
}

/// Checks that `bytes` equal `sent`, except for the 8-byte pointers at the offsets `patched`,
/// which must hold the given addresses.
pub fn expect_patched(what: &str, bytes: &[u8], sent: &[u8], patched: &[(usize, u64)]) -> Outcome {
    let mut expected = sent.to_vec();
    for &(at, address) in patched {
        expected[at..at + 8].copy_from_slice(&address.to_ne_bytes());
    }
    ensure!(
        bytes == expected,
        "{what} arrived as {bytes:?}, expected {expected:?}"
    );
    Ok(())
}

/// The lengths of the buffers of `buffers_copied`, chosen to need padding.
const LENGTHS: [usize; 3] = [3, 13, 8];

fn buffers_copied(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        let received = m.received(&call);
        let found = buffers(&received)?;
        ensure!(found.len() == 3, "{} buffers arrived", found.len());
        let mut at = sg_start(&call);
        for (i, (buffer, len)) in found.iter().zip(LENGTHS).enumerate() {
            ensure!(
                buffer.buffer == at && buffer.length == len as u64 && buffer.parent().is_none(),
                "buffer {i} arrived as {buffer:?}, expected {len} bytes at {at:#x}"
            );
            let bytes = received.buffer(buffer).step("buffer")?;
            ensure!(
                bytes == pattern(i as u8 * 40, len),
                "buffer {i} arrived as {bytes:?}"
            );
            at += (len as u64).next_multiple_of(8);
        }
        let data = received.data().step("data")?;
        ensure!(&data[..8] == LEAD, "the data arrived as {data:?}");
        m.reply_and_free(&call, &Payload::new())
    })?;
    let c = Peer::open()?;
    let payload = LENGTHS
        .iter()
        .enumerate()
        .fold(Payload::new().bytes(LEAD), |p, (i, &len)| {
            p.buffer(&pattern(i as u8 * 40, len))
        });
    ensure!(
        payload.buffers_size() == Some(8 + 16 + 8),
        "buffers_size {:?}",
        payload.buffers_size()
    );
    let reply = c.call_for_reply(0, 1, &payload)?;
    c.free(&reply)?;
    manager.join()
}

fn child_pointer_patched(_: &Env) -> Outcome {
    let root = pattern(0x10, 24);
    let child = pattern(0x80, 16);
    let expected_root = root.clone();
    let manager = spawn_manager(move |m| {
        let (call, _) = m.next_call()?;
        let received = m.received(&call);
        let [parent, kid] = buffers(&received)?[..] else {
            return Err("expected two buffers".into());
        };
        ensure!(kid.parent() == Some((0, 8)), "the child arrived as {kid:?}");
        ensure!(
            kid.buffer == sg_start(&call) + 24,
            "the child is at {:#x}",
            kid.buffer
        );
        let bytes = received.buffer(&parent).step("parent")?;
        expect_patched("the parent", bytes, &expected_root, &[(8, kid.buffer)])?;
        m.reply_and_free(&call, &Payload::new())
    })?;
    let c = Peer::open()?;
    let payload = Payload::new()
        .bytes(LEAD)
        .buffer(&root)
        .child_buffer(&child, 0, 8);
    let reply = c.call_for_reply(0, 1, &payload)?;
    c.free(&reply)?;
    manager.join()
}

/// A native_handle-like chain: a root with a pointer to a second level at 8 and to a sibling
/// at 24, the second level with a pointer to a third at 8. The sibling's fixup goes back up to
/// the root after the deeper ones, which C allows (its offset is past the second level's).
pub struct Chain {
    pub root: Vec<u8>,
    pub level2: Vec<u8>,
    pub level3: Vec<u8>,
    pub sibling: Vec<u8>,
}

impl Chain {
    pub fn new(seed: u8) -> Self {
        Self {
            root: pattern(seed, 32),
            level2: pattern(seed.wrapping_add(64), 24),
            level3: pattern(seed.wrapping_add(128), 40),
            sibling: pattern(seed.wrapping_add(192), 16),
        }
    }

    /// Appends the chain's four buffers to `payload`; the root becomes the next object.
    pub fn append(&self, payload: Payload) -> Payload {
        let root = payload.next_index();
        payload
            .buffer(&self.root)
            .child_buffer(&self.level2, root, 8)
            .child_buffer(&self.level3, root + 1, 8)
            .child_buffer(&self.sibling, root, 24)
    }

    /// Checks the chain in `received`, whose root is object number `root`, by following the
    /// pointers from the root through the receiver's mapping.
    pub fn check(&self, received: &Received<'_>, root: u64) -> Outcome {
        let root_object = received.buffer_object(root).step("root")?;
        let root_bytes = received.buffer(&root_object).step("root")?;
        ensure!(
            root_bytes.len() == 32,
            "the root is {} bytes",
            root_bytes.len()
        );
        let follow = |address: u64, length: usize, what: &str| {
            received
                .buffer(&BufferObject::new(address, length as u64))
                .map_err(|e| format!("following the pointer to {what}: {e}"))
        };
        let level2 = follow(word(root_bytes, 8), 24, "level 2")?;
        let level3 = follow(word(level2, 8), 40, "level 3")?;
        let sibling = follow(word(root_bytes, 24), 16, "the sibling")?;
        expect_patched(
            "the root",
            root_bytes,
            &self.root,
            &[(8, word(root_bytes, 8)), (24, word(root_bytes, 24))],
        )?;
        expect_patched("level 2", level2, &self.level2, &[(8, word(level2, 8))])?;
        ensure!(level3 == self.level3, "level 3 arrived as {level3:?}");
        ensure!(
            sibling == self.sibling,
            "the sibling arrived as {sibling:?}"
        );
        let objects = buffers(received)?;
        let addresses: Vec<u64> = objects.iter().map(|b| b.buffer).collect();
        let pointed = [
            root_object.buffer,
            word(root_bytes, 8),
            word(level2, 8),
            word(root_bytes, 24),
        ];
        ensure!(
            addresses.ends_with(&pointed),
            "the objects point at {addresses:x?}, the pointers in the buffers at {pointed:x?}"
        );
        Ok(())
    }
}

fn chain_arrives(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        Chain::new(1).check(&m.received(&call), 0)?;
        m.reply_and_free(&call, &Payload::new())
    })?;
    let c = Peer::open()?;
    let payload = Chain::new(1).append(Payload::new().bytes(LEAD));
    let reply = c.call_for_reply(0, 1, &payload)?;
    c.free(&reply)?;
    manager.join()
}

fn reply_chain_arrives(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        let payload = Chain::new(7).append(Payload::new().bytes(LEAD));
        m.reply_and_free(&call, &payload)
    })?;
    let c = Peer::open()?;
    let reply = c.call_for_reply(0, 1, &Payload::new())?;
    Chain::new(7).check(&c.received(&reply), 0)?;
    c.free(&reply)?;
    manager.join()
}

/// A buffer of length 0 copies nothing (its address is not even read) and arrives pointing at
/// the start of the scatter-gather area.
fn zero_length_buffer(_: &Env) -> Outcome {
    let manager = spawn_manager(|m| {
        let (call, _) = m.next_call()?;
        let found = buffers(&m.received(&call))?;
        ensure!(
            found == [BufferObject::new(sg_start(&call), 0)],
            "the empty buffer arrived as {found:?}"
        );
        m.reply_and_free(&call, &Payload::new())
    })?;
    let c = Peer::open()?;
    let payload = Payload::new().bytes(LEAD).any(BufferObject::new(0x10, 0));
    let reply = c.call_for_reply(0, 1, &payload)?;
    c.free(&reply)?;
    manager.join()
}

/// A PTR object in a plain BC_TRANSACTION has no room to go to.
fn ptr_without_sg(_: &Env) -> Outcome {
    let payload = Payload::new().bytes(LEAD).buffer(&[1; 8]);
    let offsets = payload.offsets_bytes();
    expect_refused(
        true,
        |c| {
            c.send(
                Commands::new().transaction_raw(false, 0, 1, 0, &payload.data, &offsets),
                "call",
            )
        },
        libc::EINVAL,
    )
}

/// The buffers must fit in buffers_size together: the second of two 16-byte buffers does not
/// fit in 24.
fn buffers_size_too_small(_: &Env) -> Outcome {
    let payload = Payload::new()
        .bytes(LEAD)
        .buffer(&[1; 16])
        .buffer(&[2; 16])
        .with_buffers_size(24);
    expect_payload_refused(0, &payload, libc::EINVAL)
}

fn length_overflow(_: &Env) -> Outcome {
    let data = [0u8; 8];
    let payload = Payload::new()
        .bytes(LEAD)
        .any(BufferObject::new(data.as_ptr() as u64, u64::MAX - 7))
        .with_buffers_size(64);
    expect_payload_refused(0, &payload, libc::EINVAL)
}

/// A buffers_size whose sum with the data and offsets overflows is refused when the buffer
/// is sized.
fn buffers_size_overflow(_: &Env) -> Outcome {
    let payload = Payload::new().bytes(LEAD).with_buffers_size(u64::MAX - 7);
    expect_payload_refused(0, &payload, libc::EINVAL)
}

/// A buffers_size larger than the receiver's whole mapping (1 MiB) finds no room.
fn buffers_size_beyond_mapping(_: &Env) -> Outcome {
    let payload = Payload::new().bytes(LEAD).with_buffers_size(2 << 20);
    expect_payload_refused(0, &payload, libc::ENOSPC)
}

/// A buffer the driver cannot read from the sender: EINVAL, not the EFAULT of unreadable
/// data (C copies the buffers after checking all objects, and maps any failure there to
/// EINVAL).
fn buffer_unreadable(_: &Env) -> Outcome {
    let payload = Payload::new()
        .bytes(LEAD)
        .any(BufferObject::new(16, 8))
        .with_buffers_size(8);
    expect_payload_refused(0, &payload, libc::EINVAL)
}

fn parent_not_a_buffer(_: &Env) -> Outcome {
    let payload = Payload::new()
        .bytes(LEAD)
        .object(FlatObject::binder(0xb0, 0xb0))
        .buffer(&[0; 16])
        .child_buffer(&[1; 8], 0, 0);
    expect_payload_refused(0, &payload, libc::EINVAL)
}

/// CVE-2020-0041: an object's parent must be an earlier object; itself is not.
fn ptr_parent_is_itself(_: &Env) -> Outcome {
    let child = [1u8; 16];
    let payload = Payload::new()
        .bytes(LEAD)
        .buffer(&[0; 16])
        .any(BufferObject::new(child.as_ptr() as u64, 16).with_parent(1, 0));
    expect_payload_refused(0, &payload, libc::EINVAL)
}

/// CVE-2020-0041: nor is a later object, nor one past the last.
fn ptr_parent_is_later(_: &Env) -> Outcome {
    let child = [1u8; 16];
    let later = Payload::new()
        .bytes(LEAD)
        .buffer(&[0; 16])
        .any(BufferObject::new(child.as_ptr() as u64, 16).with_parent(2, 0))
        .buffer(&[2; 16]);
    expect_payload_refused(0, &later, libc::EINVAL)?;
    let beyond = Payload::new()
        .bytes(LEAD)
        .buffer(&[0; 16])
        .any(BufferObject::new(child.as_ptr() as u64, 16).with_parent(1000, 0));
    expect_payload_refused(0, &beyond, libc::EINVAL)
}

/// The pointer must lie inside the parent: offset 9 of 16 bytes leaves only 7.
fn parent_offset_beyond(_: &Env) -> Outcome {
    let payload = Payload::new()
        .bytes(LEAD)
        .buffer(&[0; 16])
        .child_buffer(&[1; 8], 0, 9);
    expect_payload_refused(0, &payload, libc::EINVAL)?;
    let far = Payload::new()
        .bytes(LEAD)
        .buffer(&[0; 16])
        .child_buffer(&[1; 8], 0, u64::MAX - 3);
    expect_payload_refused(0, &far, libc::EINVAL)
}

fn parent_too_short(_: &Env) -> Outcome {
    let payload = Payload::new()
        .bytes(LEAD)
        .buffer(&[0; 4])
        .child_buffer(&[1; 8], 0, 0);
    expect_payload_refused(0, &payload, libc::EINVAL)
}

/// Fixups in one parent go up: a second child pointer below the first is refused.
fn fixup_out_of_order(_: &Env) -> Outcome {
    let payload = Payload::new()
        .bytes(LEAD)
        .buffer(&[0; 32])
        .child_buffer(&[1; 8], 0, 16)
        .child_buffer(&[2; 8], 0, 8);
    expect_payload_refused(0, &payload, libc::EINVAL)
}

/// Nor may a second child pointer sit on (or overlap) the first.
fn fixup_same_offset(_: &Env) -> Outcome {
    let same = Payload::new()
        .bytes(LEAD)
        .buffer(&[0; 32])
        .child_buffer(&[1; 8], 0, 8)
        .child_buffer(&[2; 8], 0, 8);
    expect_payload_refused(0, &same, libc::EINVAL)?;
    let overlapping = Payload::new()
        .bytes(LEAD)
        .buffer(&[0; 32])
        .child_buffer(&[1; 8], 0, 8)
        .child_buffer(&[2; 8], 0, 12);
    expect_payload_refused(0, &overlapping, libc::EINVAL)
}

/// A fixup may go into the last buffer or one of its ancestors only: after root→A and
/// root→B, a child of A is refused.
fn fixup_in_non_ancestor(_: &Env) -> Outcome {
    let payload = Payload::new()
        .bytes(LEAD)
        .buffer(&[0; 32])
        .child_buffer(&[1; 16], 0, 0)
        .child_buffer(&[2; 16], 0, 8)
        .child_buffer(&[3; 8], 1, 0);
    expect_payload_refused(0, &payload, libc::EINVAL)
}

/// C's quirk: a parent at data offset 0 takes no fixup, as C reads "last object at offset 0"
/// as "no object yet".
fn parent_at_offset_zero(_: &Env) -> Outcome {
    let payload = Payload::new().buffer(&[0; 16]).child_buffer(&[1; 8], 0, 0);
    expect_payload_refused(0, &payload, libc::EINVAL)
}

/// An offset into the middle of the previous object: C finds the data between the objects
/// "runs backwards" and fails with EFAULT before reading the object.
fn offset_inside_object(_: &Env) -> Outcome {
    let mut payload = Payload::new().bytes(LEAD).buffer(&[0; 16]).bytes(&[0; 40]);
    payload.offsets.push(8 + 16);
    expect_payload_refused(0, &payload, libc::EFAULT)
}

/// A PTR object cut off by the end of the data is no object.
fn object_past_data_end(_: &Env) -> Outcome {
    let mut payload = Payload::new().bytes(LEAD).buffer(&[0; 16]);
    payload.data.truncate(8 + 39);
    expect_payload_refused(0, &payload, libc::EINVAL)
}
