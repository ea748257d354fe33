//! `p360 bench extract`: pages/s through our OCR (warm Tesseract engines, one per core, with
//! preprocessing and the re-read of uncertain words) beside the plain `tesseract` CLI on the
//! same pages (`OMP_THREAD_LIMIT=1`, one process per core, its default page segmentation), both with every core
//! busy; the clinical NLP time is shown separately.

use futures::StreamExt;
use p360_extract::clinical;
use p360_extract::ocr::Ocr;
use p360_extract::ocr::tesseract::{TesseractConfig, TesseractOcr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug)]
pub struct ExtractReport {
    pub pages: usize,
    pub workers: usize,
    pub ours_seconds: f64,
    pub nlp_seconds: f64,
    pub cli_seconds: f64,
    pub words: usize,
}

pub async fn run(dir: &Path, rounds: usize, workers: usize) -> anyhow::Result<ExtractReport> {
    let mut files: Vec<PathBuf> = crate::extract_cmd::inputs(dir)?;
    files.retain(|f| f.extension().is_none_or(|e| e != "pdf"));
    let pages: Vec<(PathBuf, Vec<u8>)> = files
        .iter()
        .map(|f| Ok((f.clone(), std::fs::read(f)?)))
        .collect::<anyhow::Result<_>>()?;
    let workers = workers.max(1);

    // Reference first: the CLI, one process per core, each page once per round.
    let started = Instant::now();
    let jobs: Vec<PathBuf> = (0..rounds).flat_map(|_| files.iter().cloned()).collect();
    futures::stream::iter(jobs)
        .map(|f| async move {
            let out = tokio::process::Command::new("tesseract")
                .arg(&f)
                .arg("-")
                .arg("tsv")
                .env("OMP_THREAD_LIMIT", "1")
                .output()
                .await?;
            anyhow::ensure!(
                out.status.success(),
                "tesseract CLI failed on {}",
                f.display()
            );
            Ok(())
        })
        .buffer_unordered(workers)
        .collect::<Vec<anyhow::Result<()>>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<()>>()?;
    let cli_seconds = started.elapsed().as_secs_f64();

    let ocr: Arc<dyn Ocr> = Arc::new(TesseractOcr::start(TesseractConfig {
        workers,
        ..TesseractConfig::default()
    })?);
    // Engines are warm before the clock starts (as in a running stage).
    let started = Instant::now();
    let jobs: Vec<Vec<u8>> = (0..rounds)
        .flat_map(|_| pages.iter().map(|(_, b)| b.clone()))
        .collect();
    let layouts = futures::stream::iter(jobs)
        .map(|bytes| {
            let ocr = ocr.clone();
            async move { ocr.read(&bytes).await }
        })
        .buffer_unordered(workers * 2)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let ours_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let layouts = Arc::new(layouts);
    let words = layouts.iter().map(|l| l.word_count()).sum();
    let nlp = {
        let layouts = layouts.clone();
        tokio::task::spawn_blocking(move || layouts.iter().map(clinical::extract).count())
    };
    nlp.await?;
    let nlp_seconds = started.elapsed().as_secs_f64();
    Ok(ExtractReport {
        pages: pages.len() * rounds,
        workers,
        ours_seconds,
        nlp_seconds,
        cli_seconds,
        words,
    })
}
