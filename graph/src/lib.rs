//! The patient graph.
//!
//! Every fact lives in its patient's named graph ([`vocab`]), written by SPARQL 1.1 Update
//! text ([`facts::upsert`]) that is the same for every [`GraphStore`]: Oxigraph in process
//! ([`embedded::OxigraphStore`], RocksDB on disk) or any SPARQL 1.1 Protocol server
//! ([`remote::RemoteStore`]: Amazon Neptune, Virtuoso…). Reading a patient's record,
//! exporting it and erasing it are each one graph.

pub mod embedded;
pub mod facts;
pub mod remote;
pub mod sparql;
pub mod store;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;
pub mod vocab;

pub use store::{GraphError, GraphStore, Solution, Term};
