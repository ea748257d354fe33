//! FHIR stores as a source of members' records.
//!
//! [`FhirClient`] pulls one member's record on demand from any FHIR R4 REST server (HealthLake
//! with SigV4, a payor's or an HIE's server with a bearer token, or none): the Patient by
//! identifier, then `Patient/{id}/$everything` page by page. [`healthlake::HealthLakeExport`]
//! (feature `aws`) runs a HealthLake export job and gathers its S3 parts ([`export::collect`]).
//! Both write a FHIR bulk NDJSON folder ([`NdjsonDir`]: one `<ResourceType>.ndjson` per type),
//! which `p360_enrich::feeds` reads as a `FhirNdjson` feed. Errors ([`FhirStoreError`]) name
//! the request and status, never a value, and say whether a retry may help.

pub mod client;
pub mod error;
pub mod export;
#[cfg(feature = "aws")]
pub mod healthlake;
pub mod ndjson;
#[cfg(feature = "aws")]
pub mod sigv4;

pub use client::{Auth, FhirClient, Limits, Pulled};
pub use error::{At, FhirStoreError};
pub use ndjson::{NdjsonDir, Written};
