//! IP/CIDR sets for the blocklist detector: one hash set per prefix length, so a
//! lookup costs at most one hash probe per distinct prefix length in the list.

use std::collections::HashSet;
use std::net::IpAddr;

/// One IP network (address + prefix length), normalized (host bits cleared).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    /// Parse `1.2.3.4`, `10.0.0.0/8`, `2001:db8::/32`. `None` when malformed.
    pub fn parse(s: &str) -> Option<IpNet> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().ok().filter(|&v| v <= max)?,
            None => max,
        };
        Some(IpNet { addr: mask(addr, prefix), prefix })
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let v = u32::from(a);
            let m = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix as u32) };
            IpAddr::V4((v & m).into())
        }
        IpAddr::V6(a) => {
            let v = u128::from(a);
            let m = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix as u32) };
            IpAddr::V6((v & m).into())
        }
    }
}

/// A set of networks with longest-prefix-agnostic membership test.
#[derive(Clone, Debug, Default)]
pub struct NetSet {
    /// (prefix length, v6?) -> masked addresses. Few distinct prefix lengths in practice.
    by_len: Vec<(u8, bool, HashSet<IpAddr>)>,
}

impl NetSet {
    pub fn new(nets: &[IpNet]) -> NetSet {
        let mut by_len: Vec<(u8, bool, HashSet<IpAddr>)> = Vec::new();
        for n in nets {
            let v6 = n.addr.is_ipv6();
            match by_len.iter_mut().find(|(p, v, _)| *p == n.prefix && *v == v6) {
                Some((_, _, s)) => {
                    s.insert(n.addr);
                }
                None => by_len.push((n.prefix, v6, HashSet::from([n.addr]))),
            }
        }
        // Most specific first: the common case (single addresses) is probed first.
        by_len.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        NetSet { by_len }
    }
    pub fn is_empty(&self) -> bool {
        self.by_len.is_empty()
    }
    pub fn contains(&self, ip: IpAddr) -> bool {
        let v6 = ip.is_ipv6();
        self.by_len.iter().any(|(p, v, s)| *v == v6 && s.contains(&mask(ip, *p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let nets: Vec<IpNet> =
            ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"].iter().map(|s| IpNet::parse(s).unwrap()).collect();
        let set = NetSet::new(&nets);
        assert!(set.contains("10.200.1.1".parse().unwrap()));
        assert!(set.contains("192.0.2.7".parse().unwrap()));
        assert!(!set.contains("192.0.2.8".parse().unwrap()));
        assert!(set.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!set.contains("2001:db9::1".parse().unwrap()));
        assert_eq!(IpNet::parse("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert!(IpNet::parse("10.0.0.0/33").is_none());
        assert!(IpNet::parse("nope").is_none());
        assert!(IpNet::parse("0.0.0.0/0").is_some());
    }
}
