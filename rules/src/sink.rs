//! The push-model output contract of the engine.
//!
//! Contract: the engine calls the sink synchronously, in a deterministic order that
//! depends only on the input. Flow records are emitted when a flow ends (timeout, TCP
//! close, eviction) or at `finish`; alerts when a rule fires or its incident ends.

use netrec_format::{Alert, FlowRecord};

pub trait EngineSink {
    fn alert(&mut self, alert: Alert);
    fn flow(&mut self, flow: FlowRecord);
}

/// Collects everything in memory (tests, small inputs).
#[derive(Debug, Default)]
pub struct VecSink {
    pub alerts: Vec<Alert>,
    pub flows: Vec<FlowRecord>,
}

impl EngineSink for VecSink {
    fn alert(&mut self, alert: Alert) {
        self.alerts.push(alert);
    }
    fn flow(&mut self, flow: FlowRecord) {
        self.flows.push(flow);
    }
}
