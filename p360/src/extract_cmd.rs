//! `p360 extract <file-or-dir> --out <dir>`: extraction offline, one FHIR R4 Bundle per input.

use anyhow::Context as _;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use p360_events::{DocumentId, PatientId};
use p360_extract::clinical;
use p360_extract::facts::{self, Context};
use p360_extract::ocr::Ocr;
use p360_extract::ocr::tesseract::{TesseractConfig, TesseractOcr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "tif", "tiff", "pdf"];
/// `--text`: transcripts (`DOC.txt`) instead of images, read as a perfect OCR would read them,
/// which separates what OCR loses from what extraction loses.
const TEXT_EXTENSIONS: &[&str] = &["txt"];

/// The inputs: the file, or the documents in the directory (sorted).
pub fn inputs(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    inputs_with(path, EXTENSIONS)
}

fn inputs_with(path: &Path, extensions: &[&str]) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e.to_lowercase().as_str()))
        })
        .collect();
    files.sort();
    anyhow::ensure!(
        !files.is_empty(),
        "no documents ({}) in {}",
        extensions.join(", "),
        path.display()
    );
    Ok(files)
}

fn token(prefix: &str, stem: &str) -> String {
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(100)
        .collect();
    format!("{prefix}-{clean}")
}

pub fn media_type(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"%PDF-") {
        "application/pdf"
    } else if bytes.starts_with(&[0xff, 0xd8]) {
        "image/jpeg"
    } else if bytes.starts_with(b"\x89PNG") {
        "image/png"
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        "image/tiff"
    } else {
        "application/octet-stream"
    }
}

/// Reads one document and returns its bundle (and the extraction, for callers that score it).
pub async fn extract_one(
    ocr: &dyn Ocr,
    path: &Path,
) -> anyhow::Result<(serde_json::Value, clinical::Extraction)> {
    let bytes = tokio::fs::read(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    let layout = if path.extension().is_some_and(|e| e == "txt") {
        let text = String::from_utf8(bytes.clone())
            .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
        p360_extract::layout::Layout {
            engine: p360_extract::layout::Engine {
                name: "transcript".into(),
                version: "1".into(),
            },
            pages: vec![p360_extract::layout::page_from_text(1, &text)],
            failed_pages: Vec::new(),
        }
    } else {
        ocr.read(&bytes).await?
    };
    for f in &layout.failed_pages {
        tracing::warn!(file = %path.display(), page = f.page, reason = %f.reason, "page not read; the other pages were");
    }
    // `P360_DUMP_LAYOUT=<dir>`: the lines as read, one text file per document, for looking at
    // what extraction was given (development aid; the documents are the caller's own files).
    if let Some(dir) = std::env::var_os("P360_DUMP_LAYOUT") {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("document");
        let text: Vec<String> = layout
            .pages
            .iter()
            .flat_map(|p| p.lines.iter().map(|l| l.text()))
            .collect();
        let _ = std::fs::write(
            Path::new(&dir).join(format!("{stem}.layout.txt")),
            text.join("\n"),
        );
    }
    let extraction = tokio::task::spawn_blocking({
        let layout = layout.clone();
        move || clinical::extract(&layout)
    })
    .await?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("document");
    let patient = PatientId::parse(&token("patient", stem))?;
    let document = DocumentId::parse(&token("doc", stem))?;
    let engine = layout.engine.clone();
    let ctx = Context {
        patient: &patient,
        document: &document,
        engine: &engine,
        recorded: chrono::Utc::now(),
        fallback_date: chrono::Utc::now().date_naive(),
    };
    let facts = facts::to_facts(&extraction, &ctx);
    let bundle = facts::to_bundle(&extraction, &facts, &ctx, media_type(&bytes));
    Ok((bundle, extraction))
}

/// `text`: read `.txt` transcripts instead of images (see [`TEXT_EXTENSIONS`]).
pub async fn run(input: &Path, out: &Path, jobs: usize, text: bool) -> anyhow::Result<()> {
    let files = inputs_with(input, if text { TEXT_EXTENSIONS } else { EXTENSIONS })?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let jobs = jobs.max(1);
    let ocr: Arc<dyn Ocr> = Arc::new(TesseractOcr::start(TesseractConfig {
        workers: jobs,
        ..TesseractConfig::default()
    })?);
    let bar = if files.len() > 1 {
        let b = ProgressBar::new(files.len() as u64);
        b.set_style(
            ProgressStyle::with_template(
                "{bar:40} {pos}/{len} documents, {elapsed} elapsed, eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let failures = futures::stream::iter(files.iter().cloned())
        .map(|path| {
            let ocr = ocr.clone();
            let out = out.to_path_buf();
            let bar = bar.clone();
            async move {
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("document")
                    .to_string();
                let result = extract_one(ocr.as_ref(), &path)
                    .await
                    .and_then(|(bundle, _)| {
                        let target = out.join(format!("{stem}.fhir.json"));
                        std::fs::write(&target, serde_json::to_vec_pretty(&bundle)?)
                            .with_context(|| format!("cannot write {}", target.display()))
                    });
                bar.inc(1);
                result.err().map(|e| (path, e))
            }
        })
        .buffer_unordered(jobs)
        .filter_map(|r| async move { r })
        .collect::<Vec<_>>()
        .await;
    bar.finish_and_clear();
    let ok = files.len() - failures.len();
    tracing::info!(documents = files.len(), ok, failed = failures.len(), out = %out.display(), "extraction finished");
    for (path, e) in &failures {
        tracing::error!(file = %path.display(), error = %format!("{e:#}"), "document not extracted");
    }
    anyhow::ensure!(
        failures.is_empty(),
        "{} of {} documents could not be extracted (see above)",
        failures.len(),
        files.len()
    );
    Ok(())
}
