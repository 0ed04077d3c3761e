//! A prepared INSERT bound without copies, for the bulk rows (flows, hosts).
//!
//! rusqlite binds every text with `SQLITE_TRANSIENT` (SQLite allocates and copies it, then frees
//! it on the next bind) and checks each bind through its generic `ToSql` path. For a flood's
//! million flow rows of 38 columns that was ~40% of the writer's instructions (callgrind,
//! 200k-flow SYN flood: 7,700 instructions to bind one row). Here texts are bound with
//! `SQLITE_STATIC`, which is sound only while the text outlives the statement's execution: the
//! [`Binder`]'s lifetime `'v` ties every bound text to the borrow that lasts until `execute`.
//! After it the statement still holds the (then dangling) pointers, but SQLite never reads a
//! bound value outside a step (rebinding or finalizing a static text does not touch its bytes),
//! and no step runs before every parameter is bound again: `execute` refuses to step unless this
//! binder bound all of them. A binder dropped without a successful execution clears its
//! bindings (so does no harm either way). Not clearing after each execution saves 2% of a
//! flood's analysis.

use rusqlite::{Connection, ffi};
use std::ffi::{c_char, c_int};
use std::marker::PhantomData;
use std::ptr::NonNull;

/// A statement prepared on `'c`'s connection; finalized on drop.
#[derive(Debug)]
pub(crate) struct RawStmt<'c> {
    stmt: NonNull<ffi::sqlite3_stmt>,
    db: NonNull<ffi::sqlite3>,
    params: c_int,
    _conn: PhantomData<&'c Connection>,
}

fn error(db: NonNull<ffi::sqlite3>, rc: c_int) -> rusqlite::Error {
    // SAFETY: `db` is an open connection (borrowed for the statement's lifetime); the message is
    // copied before any other call on it.
    let msg = unsafe {
        let p = ffi::sqlite3_errmsg(db.as_ptr());
        (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
    };
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), msg)
}

impl<'c> RawStmt<'c> {
    /// Prepare one SQL statement (`SQLITE_PREPARE_PERSISTENT`: it is executed many times).
    pub fn prepare(conn: &'c Connection, sql: &str) -> rusqlite::Result<RawStmt<'c>> {
        let len = c_int::try_from(sql.len()).map_err(|_| rusqlite::Error::InvalidQuery)?;
        // SAFETY: the handle stays valid while `conn` is borrowed ('c), and rusqlite does not
        // close it meanwhile. The statement is used only on the thread owning this value (it is
        // not Send: raw pointers).
        let db = NonNull::new(unsafe { conn.handle() }).ok_or(rusqlite::Error::InvalidQuery)?;
        let mut stmt = std::ptr::null_mut();
        // SAFETY: `sql` is valid for `len` bytes; `stmt` receives a new statement or null.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db.as_ptr(),
                sql.as_ptr().cast::<c_char>(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT as _,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(db, rc));
        }
        let stmt = NonNull::new(stmt).ok_or(rusqlite::Error::InvalidQuery)?;
        // SAFETY: `stmt` is the statement just prepared.
        let params = unsafe { ffi::sqlite3_bind_parameter_count(stmt.as_ptr()) };
        Ok(RawStmt { stmt, db, params, _conn: PhantomData })
    }

    /// Start binding the parameters, in order from 1, for one execution. Texts must live for
    /// `'v`, which lasts at least until [`Binder::execute`] (or the binder's drop).
    pub fn bind<'v>(&mut self) -> Binder<'_, 'v> {
        Binder {
            stmt: self.stmt,
            db: self.db,
            params: self.params,
            next: 0,
            rc: ffi::SQLITE_OK,
            done: false,
            _stmt: PhantomData,
            _values: PhantomData,
        }
    }
}

impl Drop for RawStmt<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement is finalized exactly once, here; nothing uses it afterwards.
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

/// The parameters of one execution: all of them, in order, before `execute` steps.
pub(crate) struct Binder<'s, 'v> {
    stmt: NonNull<ffi::sqlite3_stmt>,
    db: NonNull<ffi::sqlite3>,
    params: c_int,
    next: c_int,
    /// The first failed bind's code (reported by `execute`).
    rc: c_int,
    /// `execute` stepped successfully (no need to clear the bindings).
    done: bool,
    /// The statement is borrowed mutably while bound: one execution at a time.
    _stmt: PhantomData<&'s mut ()>,
    _values: PhantomData<&'v str>,
}

impl<'v> Binder<'_, 'v> {
    #[inline]
    fn ptr(&self) -> *mut ffi::sqlite3_stmt {
        self.stmt.as_ptr()
    }

    #[inline]
    fn check(&mut self, rc: c_int) {
        if rc != ffi::SQLITE_OK && self.rc == ffi::SQLITE_OK {
            self.rc = rc;
        }
    }

    /// The index of the next parameter (SQLite reports one out of range as `SQLITE_RANGE`).
    #[inline]
    fn index(&mut self) -> c_int {
        self.next += 1;
        self.next
    }

    #[inline]
    pub fn int(&mut self, v: i64) {
        let i = self.index();
        // SAFETY: a valid statement; an integer is copied.
        let rc = unsafe { ffi::sqlite3_bind_int64(self.ptr(), i, v) };
        self.check(rc);
    }

    #[inline]
    pub fn null(&mut self) {
        let i = self.index();
        // SAFETY: a valid statement.
        let rc = unsafe { ffi::sqlite3_bind_null(self.ptr(), i) };
        self.check(rc);
    }

    /// A UTF-8 text, not copied: it must live for `'v`.
    #[inline]
    pub fn text(&mut self, s: &'v str) {
        let i = self.index();
        // SAFETY: `s` outlives this execution ('v; bindings are cleared before 'v ends), and
        // SQLITE_STATIC tells SQLite not to free it. An empty text is still a text (not NULL):
        // SQLite reads no byte of a zero length.
        let rc = unsafe {
            ffi::sqlite3_bind_text64(
                self.ptr(),
                i,
                s.as_ptr().cast::<c_char>(),
                s.len() as ffi::sqlite3_uint64,
                ffi::SQLITE_STATIC(),
                ffi::SQLITE_UTF8 as _,
            )
        };
        self.check(rc);
    }

    #[inline]
    pub fn opt_int(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.int(v),
            None => self.null(),
        }
    }

    #[inline]
    pub fn opt_text(&mut self, s: Option<&'v str>) {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    /// Run the statement (an INSERT: no rows) with every parameter bound, then reset it.
    pub fn execute(mut self) -> rusqlite::Result<()> {
        let (stmt, db) = (self.ptr(), self.db);
        if self.rc != ffi::SQLITE_OK {
            return Err(error(db, self.rc));
        }
        if self.next != self.params {
            // A programming error (a column added to the SQL but not bound), not bad input.
            return Err(rusqlite::Error::InvalidParameterCount(self.next as usize, self.params as usize));
        }
        // SAFETY: a valid statement whose parameters are all bound to live values.
        let rc = unsafe { ffi::sqlite3_step(stmt) };
        // SAFETY: as above; reset reports the step's error again, which `rc` already has.
        unsafe { ffi::sqlite3_reset(stmt) };
        match rc {
            ffi::SQLITE_DONE => {
                self.done = true;
                Ok(())
            }
            ffi::SQLITE_ROW => Err(rusqlite::Error::ExecuteReturnedResults),
            rc => Err(error(db, rc)),
        }
    }
}

impl Drop for Binder<'_, '_> {
    fn drop(&mut self) {
        if !self.done {
            // SAFETY: a valid statement; afterwards it holds no pointer to any bound text.
            unsafe { ffi::sqlite3_clear_bindings(self.ptr()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (a INTEGER, b TEXT, c INTEGER, d TEXT) STRICT").unwrap();
        c
    }

    type Row = (Option<i64>, Option<String>, Option<i64>, Option<String>);

    #[test]
    fn binds_every_type_and_reuses_the_statement() {
        let c = conn();
        let mut st = RawStmt::prepare(&c, "INSERT INTO t VALUES (?, ?, ?, ?), (?, ?, ?, ?)").unwrap();
        for round in 0..3i64 {
            // Texts built per round and dropped after it: bound without copies, read by SQLite.
            let (s1, s2) = (format!("x{round}"), String::new());
            let mut b = st.bind();
            b.int(round);
            b.text(&s1);
            b.int(-15);
            b.null();
            b.opt_int(None);
            b.opt_text(Some(&s2));
            b.opt_int(None);
            b.opt_text(None);
            b.execute().unwrap();
        }
        let rows: Vec<Row> = c
            .prepare("SELECT a, b, c, d FROM t ORDER BY rowid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 6);
        assert_eq!(rows[4], (Some(2), Some("x2".into()), Some(-15), None));
        // The empty text is a text, not NULL.
        assert_eq!(rows[5], (None, Some(String::new()), None, None));
    }

    #[test]
    fn a_missing_parameter_or_a_constraint_is_an_error_not_a_row() {
        let c = conn();
        c.execute_batch("CREATE TABLE u (a INTEGER NOT NULL) STRICT").unwrap();
        let mut st = RawStmt::prepare(&c, "INSERT INTO u VALUES (?)").unwrap();
        let b = st.bind();
        assert!(matches!(b.execute(), Err(rusqlite::Error::InvalidParameterCount(0, 1))));
        let mut b = st.bind();
        b.null();
        let e = b.execute().unwrap_err().to_string();
        assert!(e.contains("NOT NULL"), "{e}");
        // Too many parameters fail at bind time (SQLITE_RANGE), reported by execute.
        let mut b = st.bind();
        b.int(1);
        b.int(2);
        assert!(b.execute().is_err());
        // The statement still works after the errors.
        let mut b = st.bind();
        b.int(7);
        b.execute().unwrap();
        let n: i64 = c.query_row("SELECT count(*) FROM u", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1);
        assert!(RawStmt::prepare(&c, "INSERT INTO nowhere VALUES (?)").is_err());
    }
}
