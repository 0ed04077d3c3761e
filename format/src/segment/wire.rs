//! Primitive encodings used inside block payloads (SPEC.md "Primitive encodings"):
//! LEB128 varints, zigzag, fixed little-endian integers, length-prefixed strings and IPs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[inline]
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

pub fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

/// IP address: one tag byte (4 or 6) then 4 or 16 address bytes in network order.
pub fn put_ip(out: &mut Vec<u8>, ip: &IpAddr) {
    match ip {
        IpAddr::V4(a) => {
            out.push(4);
            out.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            out.push(6);
            out.extend_from_slice(&a.octets());
        }
    }
}

/// Bounds-checked cursor over a decoded payload. Every failure is a static description;
/// the caller wraps it into `SegmentError::BadRecord` with offset and block index.
#[derive(Debug, Default)]
pub struct Cur<'a> {
    buf: &'a [u8],
    pos: usize,
}

pub type WireResult<T> = Result<T, &'static str>;

impl<'a> Cur<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cur { buf, pos: 0 }
    }
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    pub fn take(&mut self, n: usize) -> WireResult<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let s = self.buf.get(self.pos..end).ok_or("record extends past the end of the block")?;
        self.pos = end;
        Ok(s)
    }
    pub fn u8(&mut self) -> WireResult<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> WireResult<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self) -> WireResult<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self) -> WireResult<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    #[inline]
    pub fn varint(&mut self) -> WireResult<u64> {
        // Most varints in packet columns are one byte.
        if let Some(&b) = self.buf.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = *self.buf.get(self.pos).ok_or("varint extends past the end of the block")?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err("varint overflows u64");
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err("varint overflows u64");
            }
        }
    }
    pub fn varint_u32(&mut self) -> WireResult<u32> {
        u32::try_from(self.varint()?).map_err(|_| "value exceeds u32")
    }
    /// A length prefix that must fit in what is left of the buffer (so a corrupt count cannot
    /// drive a huge allocation). `min_item` is the smallest encoded size of one item.
    pub fn count(&mut self, min_item: usize) -> WireResult<usize> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| "count overflow")?;
        if n.saturating_mul(min_item.max(1)) > self.remaining() {
            return Err("count larger than the remaining bytes");
        }
        Ok(n)
    }
    pub fn bytes(&mut self) -> WireResult<&'a [u8]> {
        let n = self.count(1)?;
        self.take(n)
    }
    pub fn string(&mut self) -> WireResult<String> {
        let b = self.bytes()?;
        std::str::from_utf8(b).map(str::to_owned).map_err(|_| "string is not valid UTF-8")
    }
    pub fn ip(&mut self) -> WireResult<IpAddr> {
        match self.u8()? {
            4 => {
                let b = self.take(4)?;
                Ok(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))
            }
            6 => {
                let b = self.take(16)?;
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                Ok(IpAddr::V6(Ipv6Addr::from(a)))
            }
            _ => Err("bad IP address tag"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_roundtrip_edges() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX - 1, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut c = Cur::new(&b);
            assert_eq!(c.varint().unwrap(), v);
            assert!(c.is_empty());
        }
    }

    #[test]
    fn varint_rejects_overlong_and_overflow() {
        // 10 bytes with the last one > 1 overflows u64.
        let b = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Cur::new(&b).varint().is_err());
        let b = [0x80; 11];
        assert!(Cur::new(&b).varint().is_err());
        assert!(Cur::new(&[0x80]).varint().is_err());
    }

    #[test]
    fn zigzag_roundtrip() {
        for v in [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn count_is_bounded_by_remaining() {
        let mut b = Vec::new();
        put_varint(&mut b, 1_000_000);
        b.extend_from_slice(&[0; 10]);
        assert!(Cur::new(&b).count(1).is_err());
    }
}
