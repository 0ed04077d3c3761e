//! Minimal, bounded DNS query parser: the first question of a query message.
//! Never panics, never allocates (the name is written into a fixed buffer).

/// Longest presentation-form name kept (RFC 1035 limits names to 255 octets).
pub const MAX_NAME: usize = 255;

/// The first question of a DNS query.
#[derive(Clone, Copy)]
pub struct Query {
    name: [u8; MAX_NAME],
    len: u8,
    pub qtype: u16,
    pub labels: u8,
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Query").field("name", &self.name_str()).field("qtype", &self.qtype).finish()
    }
}

impl Query {
    /// Lowercased dotted name without the trailing dot, bytes as seen (non-ASCII kept).
    pub fn name(&self) -> &[u8] {
        &self.name[..self.len as usize]
    }
    pub fn name_str(&self) -> String {
        String::from_utf8_lossy(self.name()).into_owned()
    }
    /// Registered domain: the last two labels, or three when the second-level label is a
    /// common public suffix component under a two-letter TLD (`example.co.uk`).
    pub fn registered_domain(&self) -> &[u8] {
        registered_domain(self.name())
    }
}

pub fn registered_domain(name: &[u8]) -> &[u8] {
    // Positions of the last three dots, scanning backwards without allocating.
    let mut found = [usize::MAX; 3];
    let mut n = 0;
    for (i, &b) in name.iter().enumerate().rev() {
        if b == b'.' {
            found[n] = i;
            n += 1;
            if n == 3 {
                break;
            }
        }
    }
    let last_dot = if n == 0 { None } else { Some(found[0]) };
    let tld = last_dot.map_or(name, |d| &name[d + 1..]);
    // A name whose last label cannot be a TLD (digits, or absurdly long: tunnels that talk to
    // their server directly, like dnscat without a domain) has no registered domain: all such
    // names from one client are grouped together under "".
    if !plausible_tld(tld) {
        return &[];
    }
    if n < 2 {
        return name;
    }
    let sld = &name[found[1] + 1..found[0]];
    let psl_like = tld.len() == 2
        && matches!(sld, b"co" | b"com" | b"net" | b"org" | b"gov" | b"edu" | b"ac" | b"ne" | b"or");
    if psl_like { if n == 3 { &name[found[2] + 1..] } else { name } } else { &name[found[1] + 1..] }
}

/// Letters only (or an IDN `xn--` label), 2 to 24 characters.
fn plausible_tld(label: &[u8]) -> bool {
    let idn = label.len() > 4 && label[..4].eq_ignore_ascii_case(b"xn--");
    (2..=24).contains(&label.len()) && (idn || label.iter().all(u8::is_ascii_alphabetic))
}

/// Parse a DNS message; `Some` only for a query (QR=0) with at least one well-formed question.
pub fn parse_query(msg: &[u8]) -> Option<Query> {
    if msg.len() < 12 {
        return None;
    }
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    let qdcount = u16::from_be_bytes([msg[4], msg[5]]);
    if flags & 0x8000 != 0 || qdcount == 0 {
        return None;
    }
    let mut q = Query { name: [0; MAX_NAME], len: 0, qtype: 0, labels: 0 };
    let mut pos = 12usize;
    let mut out = 0usize;
    loop {
        let l = *msg.get(pos)? as usize;
        pos += 1;
        if l == 0 {
            break;
        }
        // Compression pointers do not occur in the first question of a query; reject.
        if l & 0xc0 != 0 {
            return None;
        }
        let label = msg.get(pos..pos + l)?;
        pos += l;
        let need = l + usize::from(out > 0);
        if out + need > MAX_NAME {
            return None;
        }
        if out > 0 {
            q.name[out] = b'.';
            out += 1;
        }
        for &b in label {
            q.name[out] = b.to_ascii_lowercase();
            out += 1;
        }
        q.labels = q.labels.saturating_add(1);
    }
    let t = msg.get(pos..pos + 4)?;
    q.qtype = u16::from_be_bytes([t[0], t[1]]);
    q.len = out as u8;
    Some(q)
}

/// Shannon entropy in bits per byte.
pub fn entropy(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u16; 256];
    for &b in s {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

pub mod qtype {
    pub const CNAME: u16 = 5;
    pub const NULL: u16 = 10;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m
    }

    #[test]
    fn parses_query() {
        let q = parse_query(&query("WWW.Example.co.uk", 16)).unwrap();
        assert_eq!(q.name(), b"www.example.co.uk");
        assert_eq!(q.qtype, 16);
        assert_eq!(q.labels, 4);
        assert_eq!(q.registered_domain(), b"example.co.uk");
        assert_eq!(registered_domain(b"a.b.example.com"), b"example.com");
        assert_eq!(registered_domain(b"localhost"), b"localhost");
        assert_eq!(registered_domain(b"co.uk"), b"co.uk");
    }

    #[test]
    fn rejects_responses_and_garbage() {
        let mut r = query("example.com", 1);
        r[2] |= 0x80;
        assert!(parse_query(&r).is_none());
        assert!(parse_query(&[0; 5]).is_none());
        let mut t = query("example.com", 1);
        t.truncate(t.len() - 3);
        assert!(parse_query(&t).is_none());
        // A pointer in the question.
        let mut p = query("a", 1);
        p[12] = 0xc0;
        assert!(parse_query(&p).is_none());
    }

    #[test]
    fn entropy_values() {
        assert_eq!(entropy(b"aaaa"), 0.0);
        assert!((entropy(b"abcd") - 2.0).abs() < 1e-9);
        assert!((entropy(b"0123456789abcdef") - 4.0).abs() < 1e-9);
    }
}
