//! The integration tests: the real `mcb` binary against upstreams each test builds (git
//! repositories, zips, directories, HTTP servers on 127.0.0.1). Nothing reaches the
//! network.

mod support;

mod apply;
mod cache;
mod composer;
mod conventions;
mod deploy;
mod directory;
mod docs;
mod gitops;
mod hardening;
mod json_schemas;
mod lifecycle;
mod marketplace;
mod moodle_test;
mod readiness;
mod realise;
mod resolve;
mod rules;
mod snapshots;
mod supply_chain;
mod trust;
mod vendor;
