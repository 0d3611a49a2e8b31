//! Configuration objects users manage through the gateway and the processor evaluates.

pub mod ruleset;
pub mod sequence;
pub mod trigger;
