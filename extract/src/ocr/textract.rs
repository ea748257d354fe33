//! Amazon Textract adapter (feature `aws`): the same [`Layout`] from Textract's blocks.
//!
//! Pages are decoded, oriented and deskewed here exactly as for Tesseract (one set of input
//! checks and patient-facing errors, and boxes that line up with the review crop), then each page
//! goes to the synchronous API as PNG, pages of a document concurrently:
//! - [`TextractMode::Detect`]: `DetectDocumentText` (words and lines, cheapest);
//! - [`TextractMode::Analyze`]: `AnalyzeDocument` with `TABLES` and `FORMS`. Table cells give
//!   row membership that survives a curled page (all words of a table row become one line, as
//!   extraction expects), and a form field whose value sits below or far from its key also gets
//!   a `key value` line, so the header reader finds it as an inline pair.
//!
//! Textract's boxes are fractions of the page; they become pixels of the page we sent.

use super::{Ocr, OcrError};
use crate::layout::{BBox, Engine, Layout, Line, Page, Word, group_lines};
use crate::pages::{self, DocumentError};
use crate::preprocess;
use async_trait::async_trait;
use aws_sdk_textract::Client;
use aws_sdk_textract::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_textract::primitives::Blob;
use aws_sdk_textract::types::{
    Block, BlockType, Document, EntityType, FeatureType, RelationshipType,
};
use futures::future::try_join_all;
use image::GrayImage;
use std::collections::{HashMap, HashSet};

/// Textract's synchronous limit on a document's bytes.
const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextractMode {
    Detect,
    Analyze,
}

pub struct TextractOcr {
    client: Client,
    mode: TextractMode,
}

impl TextractOcr {
    pub fn new(client: Client, mode: TextractMode) -> Self {
        Self { client, mode }
    }

    pub fn from_conf(conf: &aws_config::SdkConfig, mode: TextractMode) -> Self {
        Self::new(Client::new(conf), mode)
    }

    async fn read_page(&self, number: u32, png: Vec<u8>) -> Result<Vec<Block>, OcrError> {
        let document = Document::builder().bytes(Blob::new(png)).build();
        let blocks = match self.mode {
            TextractMode::Detect => self
                .client
                .detect_document_text()
                .document(document)
                .send()
                .await
                .map(|o| o.blocks.unwrap_or_default())
                .map_err(|e| call_error(number, e))?,
            TextractMode::Analyze => self
                .client
                .analyze_document()
                .document(document)
                .feature_types(FeatureType::Tables)
                .feature_types(FeatureType::Forms)
                .send()
                .await
                .map(|o| o.blocks.unwrap_or_default())
                .map_err(|e| call_error(number, e))?,
        };
        Ok(blocks)
    }
}

/// A refusal of the document itself (Textract cannot read it) is the document's fault and is
/// shown to the patient; anything else (throttling, credentials, network) is retried.
fn call_error<E, R>(page: u32, e: aws_sdk_textract::error::SdkError<E, R>) -> OcrError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error().and_then(|s| s.code()) {
        Some(
            "UnsupportedDocumentException" | "BadDocumentException" | "DocumentTooLargeException",
        ) => DocumentError::Undecodable {
            format: "page image".into(),
            reason: format!("Textract could not read page {page}"),
        }
        .into(),
        _ => OcrError::Engine(format!("textract page {page}: {}", DisplayErrorContext(e))),
    }
}

struct Prepared {
    number: u32,
    width: u32,
    height: u32,
    deskew_degrees: f32,
    png: Vec<u8>,
}

fn prepare(page: pages::PageImage) -> Result<Prepared, OcrError> {
    let angle = preprocess::estimate_skew(&page.image);
    let image: GrayImage = preprocess::deskew(&page.image, angle);
    let mut png = Vec::new();
    image::DynamicImage::ImageLuma8(image.clone())
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| OcrError::Engine(format!("page {}: PNG encoding: {e}", page.number)))?;
    if png.len() > MAX_REQUEST_BYTES {
        return Err(DocumentError::TooLarge {
            width: image.width(),
            height: image.height(),
        }
        .into());
    }
    Ok(Prepared {
        number: page.number,
        width: image.width(),
        height: image.height(),
        deskew_degrees: angle,
        png,
    })
}

#[async_trait]
impl Ocr for TextractOcr {
    fn engine(&self) -> Engine {
        Engine {
            name: "textract".into(),
            version: match self.mode {
                TextractMode::Detect => "DetectDocumentText".into(),
                TextractMode::Analyze => "AnalyzeDocument:TABLES,FORMS".into(),
            },
        }
    }

    async fn read(&self, bytes: &[u8]) -> Result<Layout, OcrError> {
        let owned = bytes.to_vec();
        let prepared = tokio::task::spawn_blocking(move || {
            pages::decode(&owned)?
                .into_iter()
                .map(prepare)
                .collect::<Result<Vec<_>, OcrError>>()
        })
        .await
        .map_err(|e| OcrError::Engine(format!("decoder task: {e}")))??;
        let calls = prepared
            .iter()
            .map(|p| self.read_page(p.number, p.png.clone()));
        let answers = try_join_all(calls).await?;
        let pages = prepared
            .iter()
            .zip(answers)
            .map(|(p, blocks)| {
                let page = page_from_blocks(&blocks, p.number, p.width, p.height, p.deskew_degrees);
                if page.lines.is_empty() {
                    Err(DocumentError::NoText { page: p.number }.into())
                } else {
                    Ok(page)
                }
            })
            .collect::<Result<Vec<_>, OcrError>>()?;
        Ok(Layout {
            engine: self.engine(),
            pages,
            failed_pages: Vec::new(),
        })
    }
}

fn bbox(block: &Block, width: u32, height: u32) -> Option<BBox> {
    let b = block.geometry.as_ref()?.bounding_box.as_ref()?;
    let clamp = |v: f32| v.clamp(0.0, 1.0);
    let (left, top) = (clamp(b.left), clamp(b.top));
    let (right, bottom) = (clamp(b.left + b.width), clamp(b.top + b.height));
    let x = (left * width as f32) as u32;
    let y = (top * height as f32) as u32;
    Some(BBox {
        x,
        y,
        width: ((right * width as f32).ceil() as u32).saturating_sub(x),
        height: ((bottom * height as f32).ceil() as u32).saturating_sub(y),
    })
}

fn children(block: &Block, kind: RelationshipType) -> impl Iterator<Item = &str> {
    block
        .relationships
        .iter()
        .flatten()
        .filter(move |r| r.r#type.as_ref() == Some(&kind))
        .flat_map(|r| r.ids.iter().flatten().map(String::as_str))
}

/// Maps one page's blocks onto a [`Page`]: words with pixel boxes and 0–1 confidence; lines from
/// table rows where there are tables, by vertical overlap elsewhere; plus a line for each form
/// field whose value is not on its key's line.
pub fn page_from_blocks(
    blocks: &[Block],
    number: u32,
    width: u32,
    height: u32,
    deskew_degrees: f32,
) -> Page {
    let by_id: HashMap<&str, &Block> = blocks
        .iter()
        .filter_map(|b| Some((b.id.as_deref()?, b)))
        .collect();
    let word = |id: &str| -> Option<Word> {
        let b = by_id.get(id)?;
        if b.block_type != Some(BlockType::Word) {
            return None;
        }
        let text = b.text.as_deref()?.trim();
        if text.is_empty() {
            return None;
        }
        Some(Word {
            text: text.to_owned(),
            bbox: bbox(b, width, height)?,
            confidence: (b.confidence.unwrap_or(0.0) / 100.0).clamp(0.0, 1.0),
        })
    };

    // Table rows: the words of every cell of a row, in reading order.
    let mut in_rows: HashSet<&str> = HashSet::new();
    let mut rows: Vec<Line> = Vec::new();
    for table in blocks
        .iter()
        .filter(|b| b.block_type == Some(BlockType::Table))
    {
        let mut by_row: std::collections::BTreeMap<i32, Vec<Word>> = Default::default();
        for cell_id in children(table, RelationshipType::Child) {
            let Some(cell) = by_id.get(cell_id) else {
                continue;
            };
            if cell.block_type != Some(BlockType::Cell) {
                continue;
            }
            let row = cell.row_index.unwrap_or(0);
            for wid in children(cell, RelationshipType::Child) {
                if let Some(w) = word(wid) {
                    in_rows.insert(wid);
                    by_row.entry(row).or_default().push(w);
                }
            }
        }
        for (_, mut words) in by_row {
            words.sort_by_key(|w| w.bbox.x);
            rows.push(Line::new(words));
        }
    }
    let loose: Vec<Word> = blocks
        .iter()
        .filter(|b| b.block_type == Some(BlockType::Word))
        .filter_map(|b| {
            let id = b.id.as_deref()?;
            (!in_rows.contains(id)).then(|| word(id)).flatten()
        })
        .collect();
    let mut lines = group_lines(loose);
    lines.extend(rows);

    // Form fields whose value is on another line than the key.
    let mut fields = Vec::new();
    for key in blocks.iter().filter(|b| {
        b.block_type == Some(BlockType::KeyValueSet)
            && b.entity_types
                .iter()
                .flatten()
                .any(|t| *t == EntityType::Key)
    }) {
        let key_words: Vec<Word> = children(key, RelationshipType::Child)
            .filter_map(&word)
            .collect();
        let value_words: Vec<Word> = children(key, RelationshipType::Value)
            .filter_map(|vid| by_id.get(vid))
            .flat_map(|v| children(v, RelationshipType::Child))
            .filter_map(&word)
            .collect();
        let (Some(k), Some(v)) = (key_words.first(), value_words.first()) else {
            continue;
        };
        let same_line = lines
            .iter()
            .any(|l| l.words.contains(k) && l.words.contains(v));
        if !same_line {
            fields.push(Line::new(
                key_words.into_iter().chain(value_words).collect(),
            ));
        }
    }
    lines.extend(fields);
    lines.sort_by_key(|l| (l.bbox.y, l.bbox.x));
    Page {
        number,
        width,
        height,
        lines,
        deskew_degrees,
        quarter_turns: 0,
        normalization: None,
    }
}
