//! stocktake: snapshot every system's stock into Delta tables, decide which number is true
//! for each location, and measure every other system against it.

pub mod changes;
pub mod check;
pub mod cli;
pub mod config;
pub mod demo;
pub mod drift;
pub mod error;
pub mod explain;
pub mod ingest;
pub mod marts;
pub mod planning;
pub mod progress;
pub mod query;
pub mod retry;
pub mod schedule;
pub mod serve;
pub mod shell;
pub mod reference;
pub mod report;
pub mod sources;
pub mod stats;
pub mod storage;
pub mod tables;
pub mod validate;
pub mod warehouse;

pub use error::{Error, Result};
