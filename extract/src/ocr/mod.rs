//! The OCR port: a document's bytes in, its [`Layout`] out.

use crate::layout::{Engine, Layout};
use crate::pages::DocumentError;
use async_trait::async_trait;

pub mod tesseract;
#[cfg(feature = "aws")]
pub mod textract;

#[derive(Debug, Clone, thiserror::Error)]
pub enum OcrError {
    /// The document itself is unreadable: recorded on the document for the patient, not retried.
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// The engine failed (not the document's fault): retried.
    #[error("OCR engine: {0}")]
    Engine(String),
}

#[async_trait]
pub trait Ocr: Send + Sync {
    fn engine(&self) -> Engine;

    /// Reads every page. Boxes are in pixels of the page as decoded, upright and deskewed by the
    /// angle recorded on the page (what [`crate::review::render_page`] draws).
    async fn read(&self, bytes: &[u8]) -> Result<Layout, OcrError>;
}
