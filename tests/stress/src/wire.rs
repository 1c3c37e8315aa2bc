// SPDX-License-Identifier: GPL-2.0

//! The stress program's own call format: every payload starts with a header naming the
//! operation and the caller (slot and generation), then the operation's fields; the binder
//! objects follow the plain data.

/// The operations, as transaction codes.
pub const PING: u32 = 1;
pub const ONEWAY: u32 = 2;
pub const ECHO: u32 = 3;
pub const CALLBACK: u32 = 4;
pub const FORWARD: u32 = 5;
pub const FD: u32 = 6;
pub const OBJ_PING: u32 = 7;
pub const SG: u32 = 8;
pub const HOLD: u32 = 9;
pub const REGISTER: u32 = 20;
pub const LOOKUP: u32 = 21;

pub fn op_name(op: u32) -> &'static str {
    match op {
        PING => "PING",
        ONEWAY => "ONEWAY",
        ECHO => "ECHO",
        CALLBACK => "CALLBACK",
        FORWARD => "FORWARD",
        FD => "FD",
        OBJ_PING => "OBJ_PING",
        SG => "SG",
        HOLD => "HOLD",
        REGISTER => "REGISTER",
        LOOKUP => "LOOKUP",
        _ => "?",
    }
}

const MAGIC: u32 = 0x5354_5253;

/// The header of every call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub op: u32,
    pub from_slot: u32,
    pub from_gen: u64,
    pub seq: u64,
}

impl Header {
    pub fn write(&self, w: &mut Writer) {
        w.u32(MAGIC).u32(self.op).u32(self.from_slot).u32(0);
        w.u64(self.from_gen).u64(self.seq);
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, String> {
        let magic = r.u32()?;
        if magic != MAGIC {
            return Err(format!(
                "bad magic {magic:#x}: the payload was not carried intact"
            ));
        }
        let op = r.u32()?;
        let from_slot = r.u32()?;
        r.u32()?;
        Ok(Self {
            op,
            from_slot,
            from_gen: r.u64()?,
            seq: r.u64()?,
        })
    }
}

/// Plain data being written.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }

    /// Pads to a multiple of 8, so that the objects that follow are aligned.
    pub fn align(&mut self) -> &mut Self {
        while !self.0.len().is_multiple_of(8) {
            self.0.push(0);
        }
        self
    }
}

/// Plain data being read.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| {
            format!(
                "payload too short: {} bytes, wanted {} at {}",
                self.bytes.len(),
                n,
                self.at
            )
        })?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    pub fn u32(&mut self) -> Result<u32, String> {
        let b = self.bytes(4)?;
        Ok(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, String> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_ne_bytes(a))
    }
}

/// The 8-byte word at `at` of `bytes`.
pub fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at + 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_ne_bytes(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_and_fields_read_back_as_written() {
        let mut w = Writer::default();
        let header = Header {
            op: FORWARD,
            from_slot: 3,
            from_gen: 7,
            seq: 99,
        };
        header.write(&mut w);
        w.u32(5).u32(0).u64(11).bytes(b"xyz").align();
        assert_eq!(w.0.len() % 8, 0);
        let mut r = Reader::new(&w.0);
        assert_eq!(Header::read(&mut r), Ok(header));
        assert_eq!((r.u32(), r.u32(), r.u64()), (Ok(5), Ok(0), Ok(11)));
        assert_eq!(r.bytes(3), Ok(&b"xyz"[..]));
        assert!(r.bytes(64).is_err(), "reading past the end is an error");
    }

    #[test]
    fn a_payload_from_elsewhere_is_refused() {
        let mut r = Reader::new(&[0u8; 32]);
        assert!(Header::read(&mut r).is_err());
    }
}
