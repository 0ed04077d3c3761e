//! File header and block header: fixed-width little-endian structures (SPEC.md §2, §3).

use super::error::SegmentError;

/// `\x89 N R S \r \n \x1a \n`: the high byte catches 7-bit transfers, CR LF and the lone LF
/// catch text-mode newline conversion in both directions, `\x1a` stops DOS `type`.
pub const MAGIC: [u8; 8] = [0x89, b'N', b'R', b'S', b'\r', b'\n', 0x1a, b'\n'];
pub const MAJOR: u16 = 1;
/// Minor version of files that use a 1.2 feature (field-coded packet blocks). Files are
/// written with the lowest minor version their features need: without any, byte for byte
/// what 1.0 writers produce; with header-delta coding only, what 1.1 writers produce.
pub const MINOR: u16 = 2;
/// Header length written by this version (bytes, CRC included).
pub const FILE_HEADER_LEN: u32 = 80;
/// Readers refuse header lengths above this (a corrupt length must not drive allocation).
pub const MAX_FILE_HEADER_LEN: u32 = 4096;
/// Packet blocks are header-delta coded (SPEC.md §5.2, v1.1).
pub const INCOMPAT_HEADER_DELTA: u32 = 1;
/// Packet blocks are field coded (SPEC.md §5.2.2, v1.2).
pub const INCOMPAT_FIELD_CODING: u32 = 2;
/// Incompatible feature flags this reader understands.
pub const KNOWN_INCOMPAT_FLAGS: u32 = INCOMPAT_HEADER_DELTA | INCOMPAT_FIELD_CODING;

/// Block sync marker: `N R B \xb7`.
pub const SYNC: [u8; 4] = [b'N', b'R', b'B', 0xb7];
pub const BLOCK_HEADER_LEN: usize = 48;
/// Upper bound of both stored and raw payload length (64 MiB).
pub const MAX_PAYLOAD_LEN: u32 = 64 << 20;

pub const CODEC_NONE: u8 = 0;
pub const CODEC_ZSTD: u8 = 1;

/// High bit of a block type: readers that do not know the type MUST fail.
pub const CRITICAL: u16 = 0x8000;

/// The block types of v1.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u16)]
pub enum BlockType {
    Meta = 0x8001,
    Packets = 0x8002,
    Flows = 0x8003,
    Alerts = 0x8004,
    Loss = 0x8005,
    Trailer = 0x80ff,
}

impl BlockType {
    pub const ALL: [BlockType; 6] = [
        BlockType::Meta,
        BlockType::Packets,
        BlockType::Flows,
        BlockType::Alerts,
        BlockType::Loss,
        BlockType::Trailer,
    ];
    pub fn from_u16(v: u16) -> Option<BlockType> {
        BlockType::ALL.into_iter().find(|t| *t as u16 == v)
    }
    pub fn name(self) -> &'static str {
        match self {
            BlockType::Meta => "meta",
            BlockType::Packets => "packet",
            BlockType::Flows => "flow",
            BlockType::Alerts => "alert",
            BlockType::Loss => "loss",
            BlockType::Trailer => "trailer",
        }
    }
    /// Whether the block's min/max time is meaningful (time-range reads skip only these).
    pub fn is_timed(self) -> bool {
        matches!(self, BlockType::Packets | BlockType::Flows | BlockType::Alerts | BlockType::Loss)
    }
}

/// The decoded file header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub major: u16,
    pub minor: u16,
    pub header_len: u32,
    pub incompat_flags: u32,
    pub compat_flags: u32,
    pub seq: u64,
    pub prev_sha256: [u8; 32],
    pub created_ns: u64,
}

impl SegmentHeader {
    /// Marks the file as using the header-delta packet encoding (v1.1).
    pub fn with_header_delta(mut self) -> Self {
        self.incompat_flags |= INCOMPAT_HEADER_DELTA;
        self.minor = self.minor.max(1);
        self
    }

    pub fn header_delta(&self) -> bool {
        self.incompat_flags & INCOMPAT_HEADER_DELTA != 0
    }

    /// Marks the file as using field-coded packet blocks (v1.2).
    pub fn with_field_coding(mut self) -> Self {
        self.incompat_flags |= INCOMPAT_FIELD_CODING;
        self.minor = self.minor.max(2);
        self
    }

    /// How the packet blocks of this file are coded (field coding wins over header delta).
    pub fn packet_coding(&self) -> super::PacketCoding {
        if self.incompat_flags & INCOMPAT_FIELD_CODING != 0 {
            super::PacketCoding::FieldCoded
        } else if self.header_delta() {
            super::PacketCoding::HeaderDelta
        } else {
            super::PacketCoding::Plain
        }
    }

    pub fn new(seq: u64, prev_sha256: [u8; 32], created_ns: u64) -> Self {
        SegmentHeader {
            major: MAJOR,
            minor: 0,
            header_len: FILE_HEADER_LEN,
            incompat_flags: 0,
            compat_flags: 0,
            seq,
            prev_sha256,
            created_ns,
        }
    }

    pub fn encode(&self) -> [u8; FILE_HEADER_LEN as usize] {
        let mut b = [0u8; FILE_HEADER_LEN as usize];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&self.major.to_le_bytes());
        b[10..12].copy_from_slice(&self.minor.to_le_bytes());
        b[12..16].copy_from_slice(&FILE_HEADER_LEN.to_le_bytes());
        b[16..20].copy_from_slice(&self.incompat_flags.to_le_bytes());
        b[20..24].copy_from_slice(&self.compat_flags.to_le_bytes());
        b[24..32].copy_from_slice(&self.seq.to_le_bytes());
        b[32..64].copy_from_slice(&self.prev_sha256);
        b[64..72].copy_from_slice(&self.created_ns.to_le_bytes());
        // 72..76 reserved, zero.
        let crc = crc32c::crc32c(&b[..76]);
        b[76..80].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Checks the fixed 16-byte prefix (magic, version, header length) and returns the
    /// total header length to read.
    pub fn check_prefix(p: &[u8; 16]) -> Result<u32, SegmentError> {
        let mut found = [0u8; 8];
        found.copy_from_slice(&p[..8]);
        if found != MAGIC {
            return Err(SegmentError::BadMagic { found });
        }
        let major = u16::from_le_bytes([p[8], p[9]]);
        if major > MAJOR {
            return Err(SegmentError::NewerMajor { found: major, supported: MAJOR });
        }
        let len = u32::from_le_bytes([p[12], p[13], p[14], p[15]]);
        if !(FILE_HEADER_LEN..=MAX_FILE_HEADER_LEN).contains(&len) {
            return Err(SegmentError::BadHeaderLength {
                len,
                min: FILE_HEADER_LEN,
                max: MAX_FILE_HEADER_LEN,
            });
        }
        Ok(len)
    }

    /// Whether `b` (at least [`FILE_HEADER_LEN`] bytes, from offset 0) holds a *damaged* header
    /// rather than a foreign file or a header this reader cannot read: its magic differs from
    /// [`MAGIC`] in at most one byte, and its CRC fails both at the stated header length (when
    /// that is valid and `b` reaches it) and at the v1.0 length. A header whose CRC holds is what
    /// its writer meant (a newer major, unknown flags): never damaged (SPEC.md §7.4).
    pub fn is_damaged(b: &[u8]) -> bool {
        let min = FILE_HEADER_LEN as usize;
        if b.len() < min {
            return false;
        }
        let magic_diff = b[..8].iter().zip(MAGIC).filter(|(x, m)| **x != *m).count();
        let crc_holds = |n: usize| {
            n >= min
                && n <= b.len()
                && crc32c::crc32c(&b[..n - 4]) == u32::from_le_bytes([b[n - 4], b[n - 3], b[n - 2], b[n - 1]])
        };
        let stated = u32::from_le_bytes([b[12], b[13], b[14], b[15]]) as usize;
        magic_diff <= 1 && !crc_holds(min) && !(stated <= MAX_FILE_HEADER_LEN as usize && crc_holds(stated))
    }

    /// The fields of a damaged header as they stand, for reporting only: nothing in it is trusted
    /// (no flags, the v1.0 length). See [`Self::is_damaged`].
    pub fn salvaged(b: &[u8; FILE_HEADER_LEN as usize]) -> SegmentHeader {
        let rd64 = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(a)
        };
        let mut prev_sha256 = [0u8; 32];
        prev_sha256.copy_from_slice(&b[32..64]);
        SegmentHeader {
            major: u16::from_le_bytes([b[8], b[9]]),
            minor: u16::from_le_bytes([b[10], b[11]]),
            header_len: FILE_HEADER_LEN,
            incompat_flags: 0,
            compat_flags: 0,
            seq: rd64(24),
            prev_sha256,
            created_ns: rd64(64),
        }
    }

    /// Decodes a whole header (`b.len()` == header length, prefix already checked).
    pub fn decode(b: &[u8]) -> Result<SegmentHeader, SegmentError> {
        let n = b.len();
        let rd32 = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let rd64 = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(a)
        };
        if n < FILE_HEADER_LEN as usize {
            return Err(SegmentError::BadHeaderLength {
                len: n as u32,
                min: FILE_HEADER_LEN,
                max: MAX_FILE_HEADER_LEN,
            });
        }
        // The CRC is always the last 4 bytes of the header, whatever its length.
        let expected = rd32(n - 4);
        let actual = crc32c::crc32c(&b[..n - 4]);
        if expected != actual {
            return Err(SegmentError::HeaderCrc { expected, actual });
        }
        let incompat_flags = rd32(16);
        if incompat_flags & !KNOWN_INCOMPAT_FLAGS != 0 {
            return Err(SegmentError::UnknownIncompatibleFlags { flags: incompat_flags });
        }
        let mut prev_sha256 = [0u8; 32];
        prev_sha256.copy_from_slice(&b[32..64]);
        Ok(SegmentHeader {
            major: u16::from_le_bytes([b[8], b[9]]),
            minor: u16::from_le_bytes([b[10], b[11]]),
            header_len: n as u32,
            incompat_flags,
            compat_flags: rd32(20),
            seq: rd64(24),
            prev_sha256,
            created_ns: rd64(64),
        })
    }
}

/// The decoded header of one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    pub block_type: u16,
    pub codec: u8,
    /// Record layout version of the payload (1 in v1.0).
    pub layout: u8,
    pub stored_len: u32,
    pub raw_len: u32,
    pub count: u32,
    pub min_ts: u64,
    pub max_ts: u64,
    pub payload_crc: u32,
}

/// Why a 48-byte candidate is not a valid block header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockHeaderFault {
    Sync,
    Crc { expected: u32, actual: u32 },
}

impl BlockHeader {
    pub fn encode(&self) -> [u8; BLOCK_HEADER_LEN] {
        let mut b = [0u8; BLOCK_HEADER_LEN];
        b[0..4].copy_from_slice(&SYNC);
        b[4..6].copy_from_slice(&self.block_type.to_le_bytes());
        b[6] = self.codec;
        b[7] = self.layout;
        b[8..12].copy_from_slice(&self.stored_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.raw_len.to_le_bytes());
        b[16..20].copy_from_slice(&self.count.to_le_bytes());
        // 20..24 reserved, zero.
        b[24..32].copy_from_slice(&self.min_ts.to_le_bytes());
        b[32..40].copy_from_slice(&self.max_ts.to_le_bytes());
        b[40..44].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32c::crc32c(&b[..44]);
        b[44..48].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8; BLOCK_HEADER_LEN]) -> Result<BlockHeader, BlockHeaderFault> {
        if b[0..4] != SYNC {
            return Err(BlockHeaderFault::Sync);
        }
        let rd32 = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let rd64 = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(a)
        };
        let expected = rd32(44);
        let actual = crc32c::crc32c(&b[..44]);
        if expected != actual {
            return Err(BlockHeaderFault::Crc { expected, actual });
        }
        Ok(BlockHeader {
            block_type: u16::from_le_bytes([b[4], b[5]]),
            codec: b[6],
            layout: b[7],
            stored_len: rd32(8),
            raw_len: rd32(12),
            count: rd32(16),
            min_ts: rd64(24),
            max_ts: rd64(32),
            payload_crc: rd32(40),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_is_castagnoli() {
        // Check value from the CRC catalogue (CRC-32/ISCSI), as SPEC.md states.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn file_header_roundtrip() {
        let h = SegmentHeader::new(7, [0xab; 32], 1_700_000_000_123_456_789);
        let b = h.encode();
        let mut p = [0u8; 16];
        p.copy_from_slice(&b[..16]);
        assert_eq!(SegmentHeader::check_prefix(&p).unwrap(), FILE_HEADER_LEN);
        assert_eq!(SegmentHeader::decode(&b).unwrap(), h);
    }

    #[test]
    fn longer_header_from_a_newer_minor_is_accepted() {
        // A future minor appends fields before the CRC; a v1.0 reader skips them.
        let h = SegmentHeader::new(1, [0; 32], 5);
        let mut b = h.encode()[..76].to_vec();
        b[12..16].copy_from_slice(&96u32.to_le_bytes());
        b[10..12].copy_from_slice(&3u16.to_le_bytes());
        b.extend_from_slice(&[0x55; 16]);
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        let d = SegmentHeader::decode(&b).unwrap();
        assert_eq!((d.seq, d.minor, d.header_len), (1, 3, 96));
    }

    #[test]
    fn unknown_compat_flags_ignored_incompat_rejected() {
        let mut h = SegmentHeader::new(1, [0; 32], 5);
        h.compat_flags = 0xffff_ffff;
        assert!(SegmentHeader::decode(&h.encode()).is_ok());
        h.incompat_flags = 4;
        assert!(matches!(
            SegmentHeader::decode(&h.encode()),
            Err(SegmentError::UnknownIncompatibleFlags { flags: 4 })
        ));
    }

    #[test]
    fn block_header_roundtrip_and_crc() {
        let h = BlockHeader {
            block_type: BlockType::Packets as u16,
            codec: CODEC_ZSTD,
            layout: 1,
            stored_len: 10,
            raw_len: 20,
            count: 3,
            min_ts: 1,
            max_ts: 2,
            payload_crc: 0xdead_beef,
        };
        let mut b = h.encode();
        assert_eq!(BlockHeader::decode(&b).unwrap(), h);
        b[9] ^= 1;
        assert!(matches!(BlockHeader::decode(&b), Err(BlockHeaderFault::Crc { .. })));
        b[0] = 0;
        assert_eq!(BlockHeader::decode(&b), Err(BlockHeaderFault::Sync));
    }
}
