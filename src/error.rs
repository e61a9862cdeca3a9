//! The crate's one error type. Every variant carries what a user needs to find the fault:
//! the file, the line, the field, the system or the table.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A pipeline file that cannot be used as written.
    #[error("{file}:{line}: {message}")]
    Config { file: PathBuf, line: usize, message: String },

    /// Reading or writing a local file or an object-store path.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// Listing or fetching from an object store (landing area on s3://, …).
    #[error("{path}: {source}")]
    ObjectStore {
        path: String,
        #[source]
        source: object_store::Error,
    },

    /// A whole input file that cannot be read as its format (rows are quarantined, not lost).
    #[error("{file}:{line}: field '{field}': {message}")]
    Input { file: String, line: usize, field: String, message: String },

    /// A reference file (skus, locations, aliases, bundles) with a bad row.
    #[error("reference {file}:{line}: field '{field}': {message}")]
    Reference { file: String, line: usize, field: String, message: String },

    /// Reading or committing a Delta table.
    #[error("table '{table}': {source}")]
    Delta {
        table: String,
        #[source]
        source: deltalake::DeltaTableError,
    },

    /// Planning or running a SQL model or query.
    #[error("{context}: {source}")]
    Query {
        context: String,
        #[source]
        source: datafusion::error::DataFusionError,
    },

    /// Building Arrow batches for a table.
    #[error("{context}: {source}")]
    Arrow {
        context: String,
        #[source]
        source: arrow::error::ArrowError,
    },

    /// Writing a spreadsheet (count sheets, plans).
    #[error("{path}: {source}")]
    Xlsx {
        path: String,
        #[source]
        source: rust_xlsxwriter::XlsxError,
    },

    /// A transient error that persisted through every retry.
    #[error("{source} (gave up after {tries} tries)")]
    Retried {
        tries: u32,
        #[source]
        source: Box<Error>,
    },

    /// A command used in a way that cannot work (missing table, bad argument).
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// Whether trying again later may succeed: network trouble, throttling, timeouts —
    /// not a missing file, a refused credential or a bad row.
    pub fn is_transient(&self) -> bool {
        use std::io::ErrorKind::*;
        match self {
            Error::Io { source, .. } => {
                matches!(source.kind(), Interrupted | TimedOut | WouldBlock | ConnectionRefused | ConnectionReset | ConnectionAborted | BrokenPipe)
            }
            Error::ObjectStore { source, .. } => matches!(source, object_store::Error::Generic { .. } | object_store::Error::JoinError { .. }),
            _ => false,
        }
    }

    pub fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        Error::Io { path: path.to_string(), source }
    }
    pub fn delta(table: &str, source: deltalake::DeltaTableError) -> Self {
        Error::Delta { table: table.to_string(), source }
    }
    pub fn query(context: impl Into<String>, source: datafusion::error::DataFusionError) -> Self {
        Error::Query { context: context.into(), source }
    }
    pub fn arrow(context: impl Into<String>, source: arrow::error::ArrowError) -> Self {
        Error::Arrow { context: context.into(), source }
    }
}
