//! The clinical model of p360.
//!
//! A patient's record is a set of [`Fact`]s. Each fact says one thing (a lab result, a
//! diagnosis, a medication…) with codes from standard systems ([`CodeSystem`]: LOINC, UCUM,
//! ICD-10-CM, RxNorm, SNOMED CT, CVX, NDC, CPT), a review [`Status`], and one [`Provenance`]
//! per source that stated it. A fact's id is derived from what it says, so the same fact
//! from a claim, a photo and a manual entry is one fact with three sources.
//!
//! [`fhir`] maps facts to and from FHIR R4 JSON, the interchange format at every boundary;
//! [`plausibility`] refuses typed values no living human can have.

pub mod coding;
pub mod fact;
pub mod fhir;
pub mod plausibility;
pub mod provenance;
pub mod sensitivity;
pub mod ucum;

pub use coding::{CodeSystem, Coding};
pub use fact::*;
pub use provenance::{BoundingBox, Producer, Provenance, SourceKind};
