//! Alert delivery: EVE JSON (file or unix socket), webhooks (generic, Slack, WeChat Work),
//! email digests (SMTP) and syslog (RFC 5424, optionally CEF), each behind its own bounded
//! queue and worker so a slow or dead sink never blocks recording or the other sinks.
//! docs/alerts.md describes the formats and what each sink does with "update" events.

pub mod config;
pub mod delivery;
pub mod render;
pub mod transport;

pub use config::{ConfigError, DeliveryConfig, LoadError, SetupError, SinkConfig, SinkKind};
pub use delivery::{DeliveryError, Policy, SinkReport, SinkSet, SinkSpec, SinkStats, Transport};
pub use render::AlertEvent;
