//! Ingest: how documents enter p360.
//!
//! Every channel (the upload API, the local drop folder, the S3 photo drop) goes through
//! [`service::IngestService::ingest`]: the bytes are checked by content
//! ([`content::validate`]), stored under `raw/<patient>/<sha256>.<ext>` through `object_store`
//! (local filesystem or S3, chosen by configuration), and announced by a DocumentReceived event.
//! The [`register`] stage records each document for the patient's "my documents" list.

pub mod content;
pub mod drop_folder;
pub mod register;
pub mod s3_drop;
pub mod service;

pub use content::{ContentError, ContentLimits, MediaType};
pub use register::{DocumentRecord, DocumentRegister, RegisterStage};
pub use service::{Accepted, IngestError, IngestService};

#[cfg(test)]
mod tests;
