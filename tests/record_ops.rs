//! Privileged (issue #5): the XDP hook, least privilege (`--user`), and operator errors. Root only
//! (CI is root). Traffic stays between the test's own namespaces (10.77.N.0/24) and is bounded.
//! The tests of this file run one at a time: each checks that no netrec program is left loaded.

mod common;

use common::netns::{VethPair, require_root};
use common::*;
use netrec_recorder::ebpf::loaded_netrec_programs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn wait_for_partial(rec: &mut std::process::Child, dir: &Path) {
    let t0 = Instant::now();
    loop {
        let partial = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok()).any(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            })
            .unwrap_or(false);
        if partial {
            return;
        }
        if let Ok(Some(status)) = rec.try_wait() {
            panic!("netrec record exited early ({status})");
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "netrec record did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `Uid:` and `CapEff:` lines of a running process.
fn proc_status(pid: u32) -> (String, String) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    (field("Uid:").expect("Uid"), field("CapEff:").expect("CapEff"))
}

fn assert_nothing_loaded(what: &str) {
    // Program teardown after the last fd closes is synchronous for links, RCU-deferred for the
    // program objects: allow a moment.
    let t0 = Instant::now();
    while !loaded_netrec_programs().is_empty() && t0.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(loaded_netrec_programs(), Vec::<String>::new(), "{what}: netrec programs left loaded");
}

#[test]
fn xdp_hook_as_an_unprivileged_user_records_ingress() {
    if !require_root("xdp_hook_as_an_unprivileged_user_records_ingress") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let pair = VethPair::new(43);
    for (ns, ifname) in [(&pair.a, &pair.a_if), (&pair.b, &pair.b_if)] {
        let key = format!("net.ipv6.conf.{ifname}.disable_ipv6=1");
        let _ = pair.cmd(ns, "sysctl").args(["-q", "-w", &key]).output();
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("segs");
    let before = pair.link_stats(&pair.a, &pair.a_if);
    let mut rec = pair
        .cmd(&pair.a, env!("CARGO_BIN_EXE_netrec"))
        .args(["record", "-i", &pair.a_if, "-o", s(&out), "--hook", "xdp", "--xdp-mode", "skb"])
        .args(["--user", "nobody", "--duration", "5s", "--status", "never"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start netrec record");
    wait_for_partial(&mut rec, &out);
    // `ip netns exec` execs netrec in place: the pid is netrec's.
    let (uid, cap_eff) = proc_status(rec.id());
    assert_eq!(uid, "65534 65534 65534 65534", "real, effective, saved, fs uid after the drop");
    assert_eq!(cap_eff, "0000000000000000", "no capability left");

    let gen_py = repo_root().join("tests/traffic/gen.py");
    let mut server =
        pair.cmd(&pair.a, "python3").arg(&gen_py).args(["udp-server", "7001", "150"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let client = pair
        .cmd(&pair.b, "python3")
        .arg(&gen_py)
        .args(["udp-client", &pair.a_addr, "7001", "150", "200"])
        .status()
        .expect("udp client");
    assert!(client.success());
    assert!(server.wait().unwrap().success());
    let o = rec.wait_with_output().expect("netrec record");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "netrec record: {err}");
    let after = pair.link_stats(&pair.a, &pair.a_if);

    // XDP sees ingress only: the kernel count is the interface's received packets.
    let nums: Vec<u64> = err
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(err.contains("recorded"), "{err}");
    assert_eq!(nums[1], after.rx_packets - before.rx_packets, "kernel count vs rx_packets: {err}");
    assert_eq!(nums[0] + nums[2], nums[1], "records + drops = kernel packets: {err}");

    // Files belong to the user, with least-privilege modes.
    let dir_meta = std::fs::metadata(&out).unwrap();
    assert_eq!((dir_meta.uid(), dir_meta.permissions().mode() & 0o777), (65534, 0o750));
    let mut segs = 0;
    for e in std::fs::read_dir(&out).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        assert_eq!(m.uid(), 65534, "{:?} owner", e.file_name());
        assert_eq!(m.permissions().mode() & 0o777, 0o640, "{:?} mode", e.file_name());
        segs += e.file_name().to_string_lossy().ends_with(".nrseg") as usize;
    }
    assert!(segs >= 1);
    let v = netrec(&["segments", "verify", s(&out)]);
    assert_eq!(code(&v), 0, "verify: {}{}", stdout(&v), stderr(&v));
    let flows = jsonl(&netrec(&["flows", "--format", "jsonl", s(&out)]));
    let udp = flows.iter().find(|f| f["proto"] == "udp" && f["dst_port"] == 7001).expect("udp flow");
    assert_eq!(
        (udp["fwd_packets"].as_u64(), udp["fwd_payload_bytes"].as_u64()),
        (Some(150), Some(150 * 200))
    );
    assert_nothing_loaded("after a clean exit");
}

#[test]
fn operator_errors_exit_2_with_one_clear_message_and_leave_nothing_attached() {
    if !require_root("operator_errors_exit_2_with_one_clear_message_and_leave_nothing_attached") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let pair = VethPair::new(44);
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let bin = env!("CARGO_BIN_EXE_netrec");
    let run = |pre: &[&str], args: &[&str]| -> std::process::Output {
        let mut c = pair.cmd(&pair.a, pre.first().copied().unwrap_or(bin));
        c.args(&pre[pre.len().min(1)..]);
        if !pre.is_empty() {
            c.arg(bin);
        }
        c.arg("record")
            .args(args)
            .args(["--duration", "2s", "--status", "never"])
            .output()
            .expect("run netrec")
    };
    let check = |o: &std::process::Output, needle: &str, what: &str| {
        let err = stderr(o);
        assert_eq!(code(o), 2, "{what}: exit code; stderr: {err}");
        assert!(err.contains(needle), "{what}: expected {needle:?} in: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert_nothing_loaded(what);
        let q = pair.cmd(&pair.a, "tc").args(["qdisc", "show", "dev", &pair.a_if]).output().unwrap();
        assert!(!stdout(&q).contains("clsact"), "{what}: qdisc left behind");
    };
    let out = |name: &str| tmp.path().join(name).to_string_lossy().into_owned();

    check(
        &run(&[], &["-i", "nosuchif0", "-o", &out("a")]),
        "unknown interface \"nosuchif0\"",
        "unknown interface",
    );

    // Not root: no capabilities at all.
    let o = run(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ],
        &["-i", &pair.a_if, "-o", &out("b")],
    );
    check(&o, "CAP_BPF", "not root");

    // An output directory that cannot be written (a read-only mount).
    let ro = tmp.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let mount =
        Command::new("mount").args(["-t", "tmpfs", "-o", "ro,size=64k", "netrec-ro", s(&ro)]).status();
    assert!(mount.is_ok_and(|s| s.success()), "mount a read-only tmpfs");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&ro);
    check(&run(&[], &["-i", &pair.a_if, "-o", s(&ro)]), "is not writable", "read-only output");

    // A program the verifier rejects: the embedded object with its first classifier instruction
    // replaced by an invalid opcode. The message carries the verifier's own words.
    let object = netrec_recorder::ebpf::object_bytes().expect("built with the eBPF object (feature ebpf)");
    let bad = tmp.path().join("bad.o");
    std::fs::write(&bad, corrupt_first_insn(object, "classifier")).unwrap();
    let o = run(&[], &["-i", &pair.a_if, "-o", &out("c"), "--bpf-object", s(&bad)]);
    check(&o, "verifier rejected program", "verifier rejection");
    assert!(stderr(&o).contains("unknown opcode"), "verifier log tail shown: {}", stderr(&o));

    check(
        &run(&[], &["-i", &pair.a_if, "-o", &out("d"), "--user", "no-such-user-nr"]),
        "unknown user",
        "bad --user",
    );
    check(
        &run(&[], &["-i", &pair.a_if, "-o", &out("e"), "--user", "nobody", "--hook", "tc"]),
        "--user needs --hook tcx or xdp",
        "--user with tc",
    );
    check(
        &run(&[], &["-i", &pair.a_if, "-o", &out("f"), "--snaplen", "9999"]),
        "snaplen 9999",
        "bad snaplen",
    );
}

/// Overwrite the opcode byte of the first instruction of ELF section `name` with 0xff.
fn corrupt_first_insn(elf: &[u8], name: &str) -> Vec<u8> {
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    assert_eq!(&elf[..4], b"\x7fELF");
    let (shoff, shentsize, shnum, shstrndx) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let sh = |i: usize| shoff + i * shentsize;
    let strtab = u64_at(sh(shstrndx) + 0x18);
    for i in 0..shnum {
        let name_off = strtab + u32_at(sh(i));
        let end = elf[name_off..].iter().position(|b| *b == 0).unwrap();
        if &elf[name_off..name_off + end] == name.as_bytes() {
            let mut out = elf.to_vec();
            out[u64_at(sh(i) + 0x18)] = 0xff;
            return out;
        }
    }
    panic!("no section {name}");
}
