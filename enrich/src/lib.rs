//! Payor enrichment: the payor's own feeds joined to the members' records.
//!
//! [`feeds`] reads each format as a stream of person-records and statements (bad records go
//! to the batch [`report`]); [`matching`] decides which member each person-record is about;
//! [`resolve`] folds the statements of linked records into one fact per key with every
//! source kept; [`run`] drives a batch in two streaming passes and [`output`] writes the
//! offline contract (`links.ndjson`, one FHIR Bundle per member). Online, [`intake`] takes
//! batches into the object store and [`stage`] is the `enrich` stage of `p360 serve`, which
//! hands each member's facts ([`graph`]) to the graph writer.

pub mod codes;
pub mod decisions;
pub mod feeds;
pub mod graph;
pub mod intake;
pub mod matching;
pub mod output;
pub mod person;
pub mod report;
pub mod resolve;
pub mod run;
pub mod stage;

pub use run::{BatchResult, EnrichError, Input, Options, Summary};
