//! Least privilege: after the programs are attached and the maps are open, the recorder needs no
//! capability at all (ring buffer reads are on an mmap, map reads on open fds, tcx/XDP links detach
//! when their fds close). `drop_to` gives up root like `tcpdump -Z`.

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrivError {
    #[error("unknown user {user:?} (see /etc/passwd)")]
    UnknownUser { user: String },
    #[error("handing {path} to user {user:?}")]
    Chown {
        path: PathBuf,
        user: String,
        #[source]
        source: std::io::Error,
    },
    #[error("dropping privileges to {user:?}: {call} failed")]
    Syscall {
        user: String,
        call: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("dropping privileges to {user:?}: capabilities still held after setuid ({what})")]
    CapsRemain { user: String, what: String },
}

/// A resolved account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Look `user` up in the passwd database (names; a number is taken as a uid).
pub fn lookup(user: &str) -> Result<Account, PrivError> {
    let unknown = || PrivError::UnknownUser { user: user.to_string() };
    let cname = CString::new(user).map_err(|_| unknown())?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; buf outlives the use of pw's strings below.
    let rc = match user.parse::<u32>() {
        Ok(uid) => unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut result) },
        Err(_) => unsafe {
            libc::getpwnam_r(cname.as_ptr(), &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut result)
        },
    };
    if rc != 0 || result.is_null() {
        return Err(unknown());
    }
    // SAFETY: pw_name points into buf, NUL-terminated, set by a successful getpw*_r.
    let name = unsafe { CStr::from_ptr(pw.pw_name) }.to_string_lossy().into_owned();
    Ok(Account { name, uid: pw.pw_uid, gid: pw.pw_gid })
}

/// Give `dir` and the netrec files directly in it (segments, alerts) to the account, so the
/// recorder can go on rotating, continuing the chain and applying retention after the drop.
pub fn hand_over(dir: &Path, acct: &Account) -> Result<(), PrivError> {
    let chown = |p: &Path| {
        std::os::unix::fs::chown(p, Some(acct.uid), Some(acct.gid)).map_err(|source| PrivError::Chown {
            path: p.to_path_buf(),
            user: acct.name.clone(),
            source,
        })
    };
    chown(dir)?;
    let entries = std::fs::read_dir(dir).map_err(|source| PrivError::Chown {
        path: dir.to_path_buf(),
        user: acct.name.clone(),
        source,
    })?;
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let ours = name.contains(".nrseg") || name == "alerts.jsonl";
        if ours && e.file_type().is_ok_and(|t| t.is_file()) {
            chown(&e.path())?;
        }
    }
    Ok(())
}

/// Become `acct` for good: supplementary groups, gid, uid (all of real/effective/saved), then check
/// that no capability survived. glibc applies set*id to every thread of the process.
pub fn drop_to(acct: &Account) -> Result<(), PrivError> {
    let fail = |call: &'static str| PrivError::Syscall {
        user: acct.name.clone(),
        call,
        source: std::io::Error::last_os_error(),
    };
    let cname =
        CString::new(acct.name.as_str()).map_err(|_| PrivError::UnknownUser { user: acct.name.clone() })?;
    // SAFETY: plain syscalls with valid arguments.
    unsafe {
        if libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0 {
            return Err(fail("prctl(PR_SET_KEEPCAPS)"));
        }
        if libc::initgroups(cname.as_ptr(), acct.gid) != 0 {
            return Err(fail("initgroups"));
        }
        if libc::setresgid(acct.gid, acct.gid, acct.gid) != 0 {
            return Err(fail("setresgid"));
        }
        if libc::setresuid(acct.uid, acct.uid, acct.uid) != 0 {
            return Err(fail("setresuid"));
        }
        // Nothing we exec may gain privileges back (setuid binaries, file capabilities).
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(fail("prctl(PR_SET_NO_NEW_PRIVS)"));
        }
    }
    if acct.uid != 0 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        for field in ["CapPrm:", "CapEff:", "CapAmb:"] {
            let held = status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .map(|v| u64::from_str_radix(v.trim(), 16).unwrap_or(u64::MAX));
            if held != Some(0) {
                return Err(PrivError::CapsRemain {
                    user: acct.name.clone(),
                    what: format!("{field} {held:?}"),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_by_name_and_by_number() {
        let by_name = lookup("root").expect("root exists");
        assert_eq!((by_name.uid, by_name.gid), (0, 0));
        assert_eq!(lookup("0").expect("uid 0").name, "root");
    }

    #[test]
    fn unknown_users_are_named_in_the_error() {
        let e = lookup("no-such-user-netrec").unwrap_err();
        assert!(e.to_string().contains("no-such-user-netrec"), "{e}");
        assert!(lookup("bad\0name").is_err());
    }
}
