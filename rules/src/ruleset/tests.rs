use super::*;

fn err(text: &str) -> String {
    RuleSet::parse("r.toml", text).unwrap_err().to_string()
}

#[test]
fn default_pack_parses_with_every_detector() {
    let rs = RuleSet::parse("default.toml", include_str!("../../packs/default.toml")).unwrap();
    for d in DetectorKind::ALL {
        assert!(rs.rules().iter().any(|r| r.detector == d), "default pack lacks {d}");
    }
    assert_eq!(RuleSet::default_pack(), rs);
    assert_eq!(rs.get("syn-flood").unwrap().int("min_syns"), 1000);
    assert_eq!(rs.digest().len(), 64);
}

#[test]
fn errors_point_at_the_problem() {
    assert_eq!(
        err("[[rule]]\nid = \"a\"\ndetector = \"nope\"\n"),
        "r.toml:3:12: unknown detector `nope` (known: syn_flood, udp_flood, icmp_flood, volumetric, amplification, port_scan, host_sweep, tcp_flag_anomaly, land, ip_header_anomaly, fragment_anomaly, brute_force, dns_tunnel, blocklist, signature)"
    );
    assert_eq!(
        err("[[rule]]\nid = \"a\"\ndetector = \"land\"\n  min_pakets = 3\n"),
        "r.toml:4:3: unknown field `min_pakets` for detector `land` (accepted: id, detector, severity, attack_id, track, window, suppress, enabled, description, min_packets)"
    );
    assert_eq!(
        err("[[rule]]\nid = \"a\"\ndetector = \"port_scan\"\nmin_ports = \"many\"\n"),
        "r.toml:4:13: field `min_ports`: expected an integer, found a string"
    );
    assert_eq!(
        err("[[rule]]\nid = \"a\"\ndetector = \"port_scan\"\nmin_ports = 1\n"),
        "r.toml:4:13: field `min_ports`: 1 is out of range 2..=65536"
    );
    assert_eq!(
        err("[[rule]]\nid = \"a\"\ndetector = \"port_scan\"\nmax_established_ratio = 1.5\n"),
        "r.toml:4:25: field `max_established_ratio`: 1.5 is out of range 0..=1"
    );
    assert_eq!(
        err("[[rule]]\nid = \"a\"\ndetector = \"land\"\n\n[[rule]]\nid = \"a\"\ndetector = \"land\"\n"),
        "r.toml:6:6: duplicate rule id `a` (first defined at line 1)"
    );
    assert_eq!(
        err("[[rule]]\nid = \"a\"\ndetector = \"land\"\nwindow = \"10 parsecs\"\n"),
        "r.toml:4:10: field `window`: invalid duration `10 parsecs` (use e.g. \"500ms\", \"10s\", \"1m\", \"1h\")"
    );
    assert_eq!(
        err("[[rule]]\nid = \"a\"\ndetector = \"land\"\ntrack = \"by_src\"\n"),
        "r.toml:4:9: detector `land` does not support track `by_src` (supported: by_dst)"
    );
    assert_eq!(err("[[rule]]\nid = \"a\"\n"), "r.toml:1:1: missing required field `detector`");
    assert_eq!(
        err("[[rule]]\nid = \"a\"\ndetector = \"land\"\nenabled = 1\n"),
        "r.toml:4:11: field `enabled`: expected a boolean, found an integer"
    );
    assert_eq!(err("rules = 1\n"), "r.toml:1:1: unknown top-level key `rules` (expected `rule`)");
    assert!(err("[[rule]\n").starts_with("r.toml:1:"), "{}", err("[[rule]\n"));
    assert_eq!(
        err("[[rule]]\nid = \"a\"\ndetector = \"blocklist\"\nips = [\"10.0.0.0/8\", \"10.0.0.300\"]\n"),
        "r.toml:4:22: field `ips`: invalid IP or CIDR `10.0.0.300`"
    );
}

#[test]
fn list_files_are_resolved_and_errors_name_both_places() {
    let text = "[[rule]]\nid = \"bl\"\ndetector = \"blocklist\"\nips_file = \"bad.txt\"\n";
    let mut ok = |name: &str| -> Result<String, String> {
        assert_eq!(name, "bad.txt");
        Ok("# comment\n192.0.2.0/24\n\n2001:db8::1 # one host\n".into())
    };
    let rs = RuleSet::parse_with("r.toml", text, &mut ok).unwrap();
    assert_eq!(rs.rules()[0].nets("ips").len(), 2);
    let mut bad = |_: &str| -> Result<String, String> { Ok("192.0.2.0/24\nnot-an-ip\n".into()) };
    assert_eq!(
        RuleSet::parse_with("r.toml", text, &mut bad).unwrap_err().to_string(),
        "r.toml:4:12: bad.txt:2: invalid IP or CIDR `not-an-ip`"
    );
    let mut missing = |_: &str| -> Result<String, String> { Err("No such file".into()) };
    assert_eq!(
        RuleSet::parse_with("r.toml", text, &mut missing).unwrap_err().to_string(),
        "r.toml:4:12: cannot load list file `bad.txt`: No such file"
    );
}

#[test]
fn merge_overrides_by_id_and_digest_tracks_content() {
    let base = RuleSet::default_pack();
    let user = RuleSet::parse(
        "local.toml",
        "[[rule]]\nid = \"port-scan\"\ndetector = \"port_scan\"\nmin_ports = 100\n\n[[rule]]\nid = \"mine\"\ndetector = \"land\"\n",
    )
    .unwrap();
    let merged = base.clone().merge(user);
    assert_eq!(merged.len(), base.len() + 1);
    let pos = merged.rules().iter().position(|r| r.id == "port-scan").unwrap();
    assert_eq!(base.rules()[pos].id, "port-scan", "override keeps the position");
    assert_eq!(merged.rules()[pos].int("min_ports"), 100);
    assert_ne!(merged.digest(), base.digest());
    // Same effective rules from another file name: same digest.
    let a = RuleSet::parse("a.toml", "[[rule]]\nid = \"x\"\ndetector = \"land\"\n").unwrap();
    let b = RuleSet::parse("b.toml", "\n\n[[rule]]\ndetector = \"land\"\nid = \"x\"\nwindow = \"10s\"\n")
        .unwrap();
    assert_eq!(a.digest(), b.digest());
}

#[test]
fn durations() {
    assert_eq!(parse_duration("500ms"), Some(500_000_000));
    assert_eq!(parse_duration("1m"), Some(60_000_000_000));
    assert_eq!(parse_duration("10"), None);
    assert_eq!(parse_duration("s"), None);
    assert_eq!(parse_duration("99999999999999999999s"), None);
}

#[test]
fn signature_rules_parse_content_and_report_mistakes() {
    let ok = RuleSet::parse(
        "s.toml",
        "[[rule]]\nid = \"s\"\ndetector = \"signature\"\ncontent = [\"ab|00 ff|c\", \"|7c|\"]\nnocase = true\nproto = \"tcp\"\n",
    )
    .unwrap();
    let r = &ok.rules()[0];
    assert_eq!(r.patterns("content"), [b"ab\x00\xffc".to_vec(), b"|".to_vec()]);
    assert!(r.bool("nocase"));
    assert_eq!((r.text("proto"), r.track), ("tcp", Track::ByFlow));
    assert!(ok.canonical().contains("content=6162",), "{}", ok.canonical());
    assert_eq!(parse_content("a|41 42|b"), Ok(b"aABb".to_vec()));
    for (bad, reason) in [
        ("a|41", "unclosed |hex| run"),
        ("|414|", "odd number of hex digits"),
        ("|4g|", "invalid hex digit"),
        ("||", "empty |hex| run"),
        ("", "empty pattern"),
    ] {
        assert_eq!(parse_content(bad), Err(reason), "{bad:?}");
    }
    let err = |body: &str| {
        RuleSet::parse("s.toml", &format!("[[rule]]\nid = \"s\"\ndetector = \"signature\"\n{body}\n"))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(err("content = \"GET |2f\""), "s.toml:4:11: field `content`: unclosed |hex| run in `GET |2f`");
    assert_eq!(
        err("proto = \"sctp\"\ncontent = \"x\""),
        "s.toml:4:9: field `proto`: `sctp` is not one of any, tcp, udp, icmp"
    );
    assert_eq!(
        err("content = \"x\"\nnocase = 1"),
        "s.toml:5:10: field `nocase`: expected a boolean, found an integer"
    );
    assert_eq!(
        err("content = []"),
        "s.toml:4:11: field `content`: expected a string or a non-empty array of strings, found an array"
    );
    assert_eq!(
        err("proto = \"udp\""),
        "s.toml:1:1: signature rule needs at least one of `content`, `src_ips`, `dst_ips`, `src_ports`, `dst_ports`"
    );
}
