//! The operations built on the stages, one module each.

pub mod audit;
pub mod cache;
pub mod edit;
pub mod generations;
pub mod graph;
pub mod import;
pub mod maintain;
pub mod preview;
pub mod readiness;
pub mod realise;
pub mod reproduce;
