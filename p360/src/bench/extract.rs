//! `p360 bench extract`: pages/s through our OCR (warm Tesseract engines, one per core, with
//! preprocessing and the re-read of uncertain words) beside the plain `tesseract` CLI on the
//! same pages (`OMP_THREAD_LIMIT=1`, one process per core, its default page segmentation), both with every core
//! busy; the time per stage (normalisation, preparation, OCR, re-reads, orientation, reading
//! order, clinical NLP) is shown beside it.

use futures::StreamExt;
use p360_extract::clinical;
use p360_extract::ocr::Ocr;
use p360_extract::ocr::tesseract::{self, TesseractConfig, TesseractOcr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug)]
pub struct ExtractReport {
    pub pages: usize,
    pub workers: usize,
    pub ours_seconds: f64,
    pub nlp_seconds: f64,
    /// Reading order (regions, columns, rows) over all layouts, one core.
    pub layout_seconds: f64,
    /// CPU-seconds per recognition step during our run, summed over the engines.
    pub steps: Vec<(String, f64)>,
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
    let before = tesseract::step_seconds();
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
    let steps = tesseract::step_seconds()
        .into_iter()
        .zip(before)
        .map(|((step, after), (_, before))| (format!("{step:?}").to_lowercase(), after - before))
        .collect();

    let layouts = Arc::new(layouts);
    let words = layouts.iter().map(|l| l.word_count()).sum();
    // One core each: reading order alone, then the whole clinical pass (which includes it).
    let (layout_seconds, nlp_seconds) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let ordered = layouts.iter().map(clinical::in_reading_order).count();
        let layout = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let extracted = layouts.iter().map(clinical::extract).count();
        debug_assert_eq!(ordered, extracted);
        (layout, started.elapsed().as_secs_f64() - layout)
    })
    .await?;
    Ok(ExtractReport {
        pages: pages.len() * rounds,
        workers,
        ours_seconds,
        nlp_seconds: nlp_seconds.max(0.0),
        layout_seconds,
        steps,
        cli_seconds,
        words,
    })
}
