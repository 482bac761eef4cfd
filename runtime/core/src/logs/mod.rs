//! Logs: the pipeline the shim runs on a container's output, the options it
//! consumes, and the reader behind `logs`.

pub mod batch;
pub mod options;
pub mod pipeline;
pub mod reader;
pub mod setup;
