//! Extraction: from a photo or scan of a medical record to coded clinical facts with per-field
//! confidence and provenance. See ARCHITECTURE.md, "Extraction".

pub mod clinical;
#[cfg(feature = "aws")]
pub mod comprehend;
pub mod facts;
pub mod layout;
pub mod ocr;
pub mod pages;
pub mod preprocess;
pub mod reading_order;
pub mod stage;
pub mod terminology;
