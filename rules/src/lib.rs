//! netrec-rules: THE detection engine, shared unchanged by `record` and `analyze`.
//!
//! Pure and deterministic: time is packet time, nothing reads a clock, and identical
//! input yields a byte-identical alert sequence.

pub mod flow;
pub mod sink;

pub use sink::{EngineSink, VecSink};
