//! netrec-format: the data model shared by recorder and analyzer, the header decoder,
//! and the segment file codec (see `SPEC.md`).
//!
//! This crate is pure: it reads no clock, and does I/O only through readers and writers
//! handed to it (plus the small `store` module, which names, renames and syncs segment
//! files with `std::fs` and takes every time value as a parameter).

pub mod decode;
mod decode_impl;
pub mod model;

pub use model::*;
pub mod segment;
pub mod store;
pub mod text;
