//! DNS wire format (RFC 1035): queries and responses with A/AAAA/CNAME/TXT/MX answers.

pub const QTYPE_A: u16 = 1;
pub const QTYPE_CNAME: u16 = 5;
pub const QTYPE_MX: u16 = 15;
pub const QTYPE_TXT: u16 = 16;
pub const QTYPE_AAAA: u16 = 28;
pub const QTYPE_ANY: u16 = 255;

#[derive(Clone, Copy, Debug)]
pub enum RData<'a> {
    A([u8; 4]),
    Aaaa([u8; 16]),
    Cname(&'a str),
    Mx(u16, &'a str),
    /// One TXT record made of character-strings (each <= 255 bytes).
    Txt(&'a [&'a [u8]]),
}

impl RData<'_> {
    fn rtype(&self) -> u16 {
        match self {
            RData::A(_) => QTYPE_A,
            RData::Aaaa(_) => QTYPE_AAAA,
            RData::Cname(_) => QTYPE_CNAME,
            RData::Mx(..) => QTYPE_MX,
            RData::Txt(_) => QTYPE_TXT,
        }
    }
}

/// Append `name` as labels. Empty labels are skipped; labels longer than 63 are cut (callers
/// split long data themselves).
pub fn put_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let l = &label.as_bytes()[..label.len().min(63)];
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    out.push(0);
}

fn header(out: &mut Vec<u8>, id: u16, flags: u16, qd: u16, an: u16, ar: u16) {
    for v in [id, flags, qd, an, 0, ar] {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// A recursive query (RD set), optionally with an EDNS0 OPT record advertising 4096 bytes.
pub fn query(out: &mut Vec<u8>, id: u16, name: &str, qtype: u16, edns: bool) {
    out.clear();
    header(out, id, 0x0100, 1, 0, edns as u16);
    put_name(out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    if edns {
        put_opt(out);
    }
}

fn put_opt(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0]);
}

/// A response to `query(name, qtype)`; every answer is owned by the question name (pointer 0xc00c).
pub fn response(
    out: &mut Vec<u8>,
    id: u16,
    name: &str,
    qtype: u16,
    rcode: u8,
    answers: &[(u32, RData<'_>)],
    edns: bool,
) {
    out.clear();
    // QR, RD, RA (+ AA off) and the response code.
    header(out, id, 0x8180 | rcode as u16, 1, answers.len() as u16, edns as u16);
    put_name(out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    for (ttl, rd) in answers {
        out.extend_from_slice(&[0xc0, 0x0c]);
        out.extend_from_slice(&rd.rtype().to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        let len_at = out.len();
        out.extend_from_slice(&[0, 0]);
        match *rd {
            RData::A(a) => out.extend_from_slice(&a),
            RData::Aaaa(a) => out.extend_from_slice(&a),
            RData::Cname(n) => put_name(out, n),
            RData::Mx(pref, n) => {
                out.extend_from_slice(&pref.to_be_bytes());
                put_name(out, n);
            }
            RData::Txt(strings) => {
                for s in strings {
                    let s = &s[..s.len().min(255)];
                    out.push(s.len() as u8);
                    out.extend_from_slice(s);
                }
            }
        }
        let rdlen = (out.len() - len_at - 2) as u16;
        out[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    }
    if edns {
        put_opt(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_wire_bytes() {
        let mut q = Vec::new();
        query(&mut q, 0x1234, "www.example.com", QTYPE_A, false);
        let want: &[u8] = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\
\x03www\x07example\x03com\x00\x00\x01\x00\x01";
        assert_eq!(q, want);
    }

    #[test]
    fn response_rdata_lengths() {
        let mut r = Vec::new();
        response(&mut r, 1, "a.example", QTYPE_A, 0, &[(60, RData::A([192, 0, 2, 1]))], false);
        // header 12 + name 11 + qtype/qclass 4 + answer (2+2+2+4+2+4)
        assert_eq!(r.len(), 12 + 11 + 4 + 16);
        assert_eq!(&r[2..4], &[0x81, 0x80]);
        assert_eq!(&r[r.len() - 6..], &[0, 4, 192, 0, 2, 1]);
    }
}
