//! lookoutd as a library: the Docker Engine API server ([`api`]), the
//! container engine ([`engine`]), the daemon's configuration ([`config`])
//! and the stats builder ([`stats`]).
#![recursion_limit = "256"]

pub mod api;
pub mod config;
pub mod engine;
pub mod host;
pub mod stats;
pub mod timefmt;
