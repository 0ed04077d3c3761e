//! Helpers shared by the format crate's integration tests.

#[path = "../../../tests/common/captures.rs"]
mod captures;
#[allow(unused_imports)] // not every test file of the crate reads the shared captures
pub use captures::captures_dir;
