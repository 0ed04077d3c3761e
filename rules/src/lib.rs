//! netrec-rules: THE detection engine, shared unchanged by `record` and `analyze`.
//!
//! Pure and deterministic: time is packet time, nothing reads a clock, and identical
//! input yields a byte-identical alert sequence.

pub mod detect;
pub mod dns;
mod engine;
pub mod flow;
mod json;
pub mod netlist;
pub mod ruleset;
pub mod sink;
pub mod split;

pub use detect::PacketCtx;
pub use engine::{DetectorSet, DetectorStats, Engine, EngineStats, Limits};
pub use json::alert_json;
pub use ruleset::{DetectorKind, Rule, RuleError, RuleProblem, RuleSet, Track};
pub use sink::{EngineSink, VecSink};
