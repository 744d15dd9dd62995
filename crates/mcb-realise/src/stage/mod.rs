//! The stages of a run, in the order a realise goes through them. Each takes the typed
//! output of the one before; none calls an operation.

pub mod catalog;
pub mod commit;
pub mod compose;
pub mod fetch;
pub mod materialise;
pub mod plan;
pub mod publish;
