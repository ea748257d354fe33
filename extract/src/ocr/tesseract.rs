//! Tesseract 5, linked as a library: a fixed set of worker threads, each owning one engine that
//! is initialised once and reused for every page; pages of all documents are spread over them.
//!
//! OpenMP inside Tesseract must run one thread per worker (`OMP_THREAD_LIMIT=1`): two OpenMP
//! threads on two busy cores run several times slower, and parallelism across pages is what
//! scales. libgomp reads the variable when it is loaded, before `main`, so the binary re-executes
//! itself with it set ([`ensure_single_threaded_openmp`]); `.cargo/config.toml` sets it for tests.

use super::{Ocr, OcrError};
use crate::layout::{BBox, Engine, Layout, Line, Page, PageFailure, Word, page_from_text};
use crate::pages::{self, DocumentError, PageContent, PageImage};
use crate::preprocess;
use async_trait::async_trait;
use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;
use tesseract_plumbing::TessBaseApi;
use tokio::sync::oneshot;

#[derive(Clone, Debug)]
pub struct TesseractConfig {
    /// Worker threads, each with its own engine (default: the number of cores).
    pub workers: usize,
    /// Language(s), e.g. `eng`.
    pub language: String,
    /// Directory of traineddata files; `None` uses the library's default.
    pub datapath: Option<String>,
}

impl Default for TesseractConfig {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            language: "eng".into(),
            datapath: None,
        }
    }
}

/// The steps of one page's recognition, timed across all workers (for `p360 bench extract`
/// and anyone asking where the time goes); relaxed counters cost nothing beside OCR.
#[derive(Clone, Copy, Debug)]
pub enum Step {
    /// Sheet detection, perspective, flattening ([`p360_imagenorm::normalize`]).
    Normalise,
    /// Deskew and scaling to the resolution recognition wants.
    Prepare,
    /// The full-page recognition.
    Recognise,
    /// Text the page-level layout analysis left out, read line by line.
    Recover,
    /// Second reads of uncertain words, at a higher scale.
    Reread,
    /// Orientation probes and the read of a turned page.
    Orientation,
}

const STEPS: [Step; 6] = [
    Step::Normalise,
    Step::Prepare,
    Step::Recognise,
    Step::Recover,
    Step::Reread,
    Step::Orientation,
];
static STEP_NANOS: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];

fn timed<T>(step: Step, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    STEP_NANOS[step as usize].fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    out
}

/// Seconds spent in each step since the process started (summed over workers: CPU-seconds).
pub fn step_seconds() -> Vec<(Step, f64)> {
    STEPS
        .iter()
        .map(|&s| {
            (
                s,
                STEP_NANOS[s as usize].load(Ordering::Relaxed) as f64 / 1e9,
            )
        })
        .collect()
}

type Reply = oneshot::Sender<Result<Page, OcrError>>;

struct Job {
    page: PageImage,
    reply: Reply,
}

pub struct TesseractOcr {
    jobs: Mutex<mpsc::Sender<Job>>,
    engine: Engine,
}

/// The linked library's version, e.g. `5.3.0`.
pub fn library_version() -> String {
    tesseract_plumbing::version().to_string_lossy().into_owned()
}

impl TesseractOcr {
    /// Starts the workers; fails if an engine cannot be initialised (missing language data).
    pub fn start(config: TesseractConfig) -> Result<Self, OcrError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let workers = config.workers.max(1);
        let (ready_tx, ready_rx) = mpsc::channel();
        for i in 0..workers {
            let rx = rx.clone();
            let config = config.clone();
            let ready = ready_tx.clone();
            std::thread::Builder::new()
                .name(format!("ocr-{i}"))
                .spawn(move || worker(config, rx, ready))
                .map_err(|e| OcrError::Engine(format!("cannot start OCR thread: {e}")))?;
        }
        drop(ready_tx);
        for _ in 0..workers {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(OcrError::Engine("OCR worker exited during start".into())),
            }
        }
        Ok(Self {
            jobs: Mutex::new(tx),
            engine: Engine {
                name: "tesseract".into(),
                version: library_version(),
            },
        })
    }

    fn submit(
        &self,
        page: PageImage,
    ) -> Result<oneshot::Receiver<Result<Page, OcrError>>, OcrError> {
        let (reply, rx) = oneshot::channel();
        self.jobs
            .lock()
            .map_err(|_| OcrError::Engine("OCR queue poisoned".into()))?
            .send(Job { page, reply })
            .map_err(|_| OcrError::Engine("OCR workers have stopped".into()))?;
        Ok(rx)
    }
}

#[async_trait]
impl Ocr for TesseractOcr {
    fn engine(&self) -> Engine {
        self.engine.clone()
    }

    async fn read(&self, bytes: &[u8]) -> Result<Layout, OcrError> {
        let owned = bytes.to_vec();
        let decoded = tokio::task::spawn_blocking(move || pages::decode_pages(&owned))
            .await
            .map_err(|e| OcrError::Engine(format!("decoder task: {e}")))??;
        let total = decoded.len();
        // All image pages go to the workers at once, so a multi-page PDF uses every core; text
        // layers need no OCR; a damaged page is set aside with its reason.
        let mut pending = Vec::new();
        let mut pages = Vec::with_capacity(total);
        let mut failed: Vec<(u32, DocumentError)> = Vec::new();
        for p in decoded {
            match p {
                PageContent::Image(img) => pending.push((img.number, self.submit(img)?)),
                PageContent::Text { number, text } => pages.push(page_from_text(number, &text)),
                PageContent::Unreadable { number, error } => failed.push((number, error)),
            }
        }
        for (number, rx) in pending {
            match rx
                .await
                .map_err(|_| OcrError::Engine("OCR worker dropped a page".into()))?
            {
                Ok(page) => pages.push(page),
                Err(OcrError::Document(error)) => failed.push((number, error)),
                Err(e) => return Err(e),
            }
        }
        // The document fails only when no page could be read: then its first page's reason.
        if pages.is_empty() {
            failed.sort_by_key(|(n, _)| *n);
            return Err(failed
                .into_iter()
                .next()
                .map(|(_, e)| e.into())
                .unwrap_or_else(|| OcrError::Engine("no pages".into())));
        }
        pages.sort_by_key(|p| p.number);
        failed.sort_by_key(|(n, _)| *n);
        Ok(Layout {
            engine: self.engine.clone(),
            pages,
            failed_pages: failed
                .into_iter()
                .map(|(page, e)| PageFailure {
                    page,
                    reason: e.to_string(),
                })
                .collect(),
        })
    }
}

fn init(config: &TesseractConfig) -> Result<TessBaseApi, OcrError> {
    let mut api = TessBaseApi::create();
    let lang = CString::new(config.language.clone())
        .map_err(|_| OcrError::Engine("language name has a NUL byte".into()))?;
    let datapath = config
        .datapath
        .as_ref()
        .map(|p| CString::new(p.clone()))
        .transpose()
        .map_err(|_| OcrError::Engine("datapath has a NUL byte".into()))?;
    api.init_2(datapath.as_deref(), Some(&lang)).map_err(|_| {
        OcrError::Engine(format!(
            "Tesseract could not load language '{}' (is tesseract-ocr-{} installed?)",
            config.language, config.language
        ))
    })?;
    for (name, value) in [
        // Sauvola: local thresholds survive a photo's lighting gradient.
        ("thresholding_method", "2"),
        // Keep spaces between table cells as spaces, and let us see low-confidence words.
        ("preserve_interword_spaces", "1"),
        // Tesseract prints page statistics to stderr for some regions: not ours to log.
        ("debug_file", "/dev/null"),
    ] {
        let (n, v) = (
            CString::new(name).unwrap_or_default(),
            CString::new(value).unwrap_or_default(),
        );
        api.set_variable(&n, &v)
            .map_err(|_| OcrError::Engine(format!("Tesseract rejected variable {name}")))?;
    }
    api.set_page_seg_mode(page_mode());
    Ok(api)
}

fn worker(
    config: TesseractConfig,
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
    ready: mpsc::Sender<Result<(), OcrError>>,
) {
    let mut api = match init(&config) {
        Ok(api) => {
            let _ = ready.send(Ok(()));
            api
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    drop(ready);
    loop {
        let job = match jobs.lock() {
            Ok(rx) => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        let result = recognise(&mut api, job.page);
        let _ = job.reply.send(result);
    }
}

/// Mean confidence and count of the words that look like words (3+ letters or digits): an
/// upside-down or sideways page reads as short, unsure fragments.
fn word_quality(lines: &[Line]) -> (f32, usize) {
    let words: Vec<f32> = lines
        .iter()
        .flat_map(|l| &l.words)
        .filter(|w| w.text.chars().filter(|c| c.is_alphanumeric()).count() >= 3)
        .map(|w| w.confidence)
        .collect();
    let n = words.len();
    (
        if n == 0 {
            0.0
        } else {
            words.iter().sum::<f32>() / n as f32
        },
        n,
    )
}

/// Below this word quality the page may be turned: other orientations are tried.
const ORIENTATION_CHECK_BELOW: f32 = 0.75;

/// Rotates clockwise by `turns` quarter turns.
pub fn turn(image: &image::GrayImage, turns: u8) -> image::GrayImage {
    match turns % 4 {
        1 => image::imageops::rotate90(image),
        2 => image::imageops::rotate180(image),
        3 => image::imageops::rotate270(image),
        _ => image.clone(),
    }
}

/// One full recognition of an (upright) page: lines in prepared-image pixels mapped back.
fn read_page(
    api: &mut TessBaseApi,
    image: &image::GrayImage,
    number: u32,
) -> Result<(Vec<Line>, f32), OcrError> {
    let prepared = timed(Step::Prepare, || preprocess::prepare(image));
    let (w, h) = prepared.image.dimensions();
    let engine = |what: &str| OcrError::Engine(format!("page {number}: {what}"));
    let mut lines = timed(Step::Recognise, || -> Result<Vec<Line>, OcrError> {
        api.set_image(prepared.image.as_raw(), w as i32, h as i32, 1, w as i32)
            .map_err(|e| engine(&format!("set image: {e}")))?;
        // No source resolution is set: Tesseract then estimates it from the text it finds,
        // which suits a photo (whose dpi means nothing) better than any figure we could pass.
        // Passing one derived from the page width made its layout analysis drop whole table
        // columns as non-text on some pages (set2 labs F1 0.72 with it, 0.81 without).
        api.recognize().map_err(|_| engine("recognition failed"))?;
        let tsv = api.get_tsv_text(0).map_err(|_| engine("no TSV output"))?;
        Ok(parse_tsv(&tsv.as_ref().to_string_lossy(), 1.0))
    })?;
    timed(Step::Recover, || {
        recover_dropped(api, &mut lines, &prepared)
    });
    timed(Step::Reread, || {
        reread_uncertain(api, &mut lines, &prepared.image)
    });
    for line in &mut lines {
        for word in &mut line.words {
            word.bbox = scale_box(word.bbox, prepared.scale);
        }
        line.bbox = scale_box(line.bbox, prepared.scale);
    }
    Ok((lines, prepared.deskew_degrees))
}

/// How well a middle band of the page reads when turned by `turns` (Tesseract's mean word
/// confidence, 0–100): a cheap look that decides the orientation before a full second read.
fn probe(api: &mut TessBaseApi, image: &image::GrayImage, turns: u8) -> i32 {
    let turned = turn(image, turns);
    let (w, h) = turned.dimensions();
    let scale = (1600.0 / w.max(1) as f32).min(2.0);
    let small = preprocess::resize(
        &turned,
        ((w as f32 * scale) as u32).max(1),
        ((h as f32 * scale) as u32).max(1),
    );
    let (sw, sh) = small.dimensions();
    if api
        .set_image(small.as_raw(), sw as i32, sh as i32, 1, sw as i32)
        .is_err()
    {
        return 0;
    }
    api.set_rectangle(0, (sh / 3) as i32, sw as i32, (sh / 3).max(1) as i32);
    if api.recognize().is_err() {
        return 0;
    }
    // Scored like the full read: confidence of word-like words, times how many there are
    // relative to all tokens (a turned page reads as many short fragments).
    let Ok(tsv) = api.get_tsv_text(0) else {
        return 0;
    };
    let lines = parse_tsv(&tsv.as_ref().to_string_lossy(), 1.0);
    let all = lines.iter().map(|l| l.words.len()).sum::<usize>().max(1);
    let (q, n) = word_quality(&lines);
    (q * 100.0 * n as f32 / all as f32) as i32
}

/// A page with (almost) no contrast holds nothing to read: a blank sheet, or image data that
/// decoded to a flat field (a damaged scan).
fn is_flat(image: &image::GrayImage) -> bool {
    let n = image.as_raw().len().max(1) as f64;
    let mean = image.as_raw().iter().map(|&p| p as f64).sum::<f64>() / n;
    let var = image
        .as_raw()
        .iter()
        .map(|&p| (p as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    var < 4.0
}

fn recognise(api: &mut TessBaseApi, page: PageImage) -> Result<Page, OcrError> {
    if is_flat(&page.image) {
        return Err(DocumentError::NoText { page: page.number }.into());
    }
    // Photos: the sheet found, rectified and its lighting flattened (a no-op on clean pages).
    let normalized = timed(Step::Normalise, || {
        p360_imagenorm::normalize(&image::DynamicImage::ImageLuma8(page.image))
    });
    let params = normalized.params.clone();
    let page = PageImage {
        number: page.number,
        image: normalized.image,
    };
    let (mut lines, mut deskew) = read_page(api, &page.image, page.number)?;
    let mut turns = 0u8;
    let (quality, _) = word_quality(&lines);
    if quality < ORIENTATION_CHECK_BELOW {
        let started = Instant::now();
        // Upside down (a page fed the wrong way) or sideways (a phone held landscape): the
        // orientation whose middle band reads best, if clearly better than as stored.
        let as_is = probe(api, &page.image, 0);
        // Pages are mostly portrait: a portrait image turned a quarter must read clearly better
        // than turned half-way round to be taken as sideways.
        let portrait = page.image.height() > page.image.width();
        let best = [2u8, 1, 3]
            .into_iter()
            .map(|t| {
                let c = probe(api, &page.image, t);
                (if portrait && t % 2 == 1 { c - 10 } else { c }, t)
            })
            .max_by_key(|(c, _)| *c);
        if let Some((conf, t)) = best
            && conf > as_is + 10
        {
            let turned = turn(&page.image, t);
            let (l, d) = read_page(api, &turned, page.number)?;
            if word_quality(&l).0 > quality {
                (lines, deskew, turns) = (l, d, t);
            }
        }
        STEP_NANOS[Step::Orientation as usize]
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
    // A page of a record has words: a handful of unsure fragments is noise read off a blank,
    // dark or damaged page.
    let sure_words = lines
        .iter()
        .flat_map(|l| &l.words)
        .filter(|w| {
            w.confidence >= 0.5 && w.text.chars().filter(|c| c.is_alphanumeric()).count() >= 3
        })
        .count();
    if sure_words < 5 {
        return Err(DocumentError::NoText { page: page.number }.into());
    }
    let (width, height) = if turns % 2 == 1 {
        (page.image.height(), page.image.width())
    } else {
        (page.image.width(), page.image.height())
    };
    Ok(Page {
        number: page.number,
        width,
        height,
        lines,
        deskew_degrees: deskew,
        quarter_turns: turns,
        normalization: Some(params),
    })
}

fn scale_box(b: BBox, scale: f32) -> BBox {
    BBox {
        x: (b.x as f32 / scale) as u32,
        y: (b.y as f32 / scale) as u32,
        width: (b.width as f32 / scale).ceil() as u32,
        height: (b.height as f32 / scale).ceil() as u32,
    }
}

/// Dropped lines read again per page at most.
const MAX_RECOVERED: usize = 40;

/// Tesseract's page layout analysis sometimes classes a block of text as non-text and never
/// recognises it: a table's result and unit columns behind shaded rows, a header's value
/// column, a line near a photo's edge. The glyphs found before recognition say where text is;
/// runs of them that no recognised word covers are cut out and read as single lines, and kept
/// when read with confidence (a logo or a stain reads as unsure fragments).
fn recover_dropped(api: &mut TessBaseApi, lines: &mut Vec<Line>, prepared: &preprocess::Prepared) {
    let words: Vec<BBox> = lines
        .iter()
        .flat_map(|l| l.words.iter().map(|w| w.bbox))
        .collect();
    let covered = |g: &BBox| {
        let (cx, cy) = (g.x + g.width / 2, g.y + g.height / 2);
        words
            .iter()
            .any(|b| cx + 3 >= b.x && cx <= b.right() + 3 && cy + 3 >= b.y && cy <= b.bottom() + 3)
    };
    let mut loose: Vec<BBox> = prepared
        .glyphs
        .iter()
        .filter(|g| !covered(g))
        .copied()
        .collect();
    loose.sort_by_key(|g| g.x);
    // Runs: glyphs left to right that share a text line and follow each other closely.
    // (group box, tallest glyph, glyph count)
    let mut runs: Vec<(BBox, u32, usize)> = Vec::new();
    for g in loose {
        let run = runs.iter_mut().rev().find(|(b, tallest, _)| {
            let overlap = b.bottom().min(g.bottom()).saturating_sub(b.y.max(g.y));
            let tall = (*tallest).max(g.height);
            overlap * 2 >= g.height.min(*tallest)
                && g.x <= b.right() + tall * 4
                && b.union(&g).height <= tall * 2
        });
        match run {
            Some((b, tallest, n)) => {
                *b = b.union(&g);
                *tallest = (*tallest).max(g.height);
                *n += 1;
            }
            None => runs.push((g, g.height, 1)),
        }
    }
    runs.retain(|(b, _, n)| *n >= 3 && b.width >= b.height * 2);
    if runs.is_empty() {
        return;
    }
    runs.sort_by_key(|(_, _, n)| std::cmp::Reverse(*n));
    api.set_page_seg_mode(tesseract_plumbing::tesseract_sys::TessPageSegMode_PSM_SINGLE_LINE);
    for (b, _, _) in runs.into_iter().take(MAX_RECOVERED) {
        let Some(found) = reread(api, b, &prepared.image) else {
            continue;
        };
        let wordlike = found
            .iter()
            .any(|w| w.text.chars().filter(|c| c.is_alphanumeric()).count() >= 2);
        if wordlike && mean_conf(&found) >= 0.6 {
            lines.push(Line::new(found));
        }
    }
    api.set_page_seg_mode(page_mode());
}

/// Below this a word is read again on its own.
const REREAD_BELOW: f32 = 0.75;
/// Re-reads per page at most (a photo's background yields many hopeless "words").
const MAX_REREADS: usize = 60;

/// Word height (px) a second read is scaled to: a short cell read alone at this size is read
/// more surely than the page-level pass read it among its neighbours.
const REREAD_TEXT_PX: f32 = 40.0;

/// A second look at uncertain words: runs of low-confidence words are cut out of the page,
/// scaled up where their text is small and recognised again as a single text line. In a wide
/// table the page-level pass sometimes garbles a short cell (`3.7` → `Sh 7/`) that the line
/// recogniser reads correctly in isolation; the new reading replaces the old only when it is
/// more confident. Only these cells pay for the higher scale, not the whole page.
fn reread_uncertain(api: &mut TessBaseApi, lines: &mut [Line], page: &image::GrayImage) {
    let mut budget = MAX_REREADS;
    api.set_page_seg_mode(tesseract_plumbing::tesseract_sys::TessPageSegMode_PSM_SINGLE_LINE);
    for line in lines.iter_mut() {
        let mut i = 0;
        let mut rebuilt: Vec<Word> = Vec::with_capacity(line.words.len());
        while i < line.words.len() {
            if line.words[i].confidence >= REREAD_BELOW || budget == 0 {
                rebuilt.push(line.words[i].clone());
                i += 1;
                continue;
            }
            // The run: following uncertain words close enough to be one cell.
            let mut j = i + 1;
            while j < line.words.len()
                && line.words[j].confidence < REREAD_BELOW
                && line.words[j].bbox.x
                    <= line.words[j - 1].bbox.right()
                        + line.words[j - 1].bbox.height.max(10) * 3 / 2
            {
                j += 1;
            }
            budget -= 1;
            let run = &line.words[i..j];
            let old = run.iter().map(|w| w.confidence).sum::<f32>() / run.len() as f32;
            match reread(api, BBox::around(run.iter().map(|w| &w.bbox)), page) {
                Some(words) if mean_conf(&words) > old + 0.1 && covers(&words, run) => {
                    rebuilt.extend(words)
                }
                _ => rebuilt.extend(run.iter().cloned()),
            }
            i = j;
        }
        *line = Line::new(rebuilt);
    }
    api.set_page_seg_mode(page_mode());
}

/// Whether a second reading accounts for the ink of the first: a confident reading of one
/// word out of a run of several (`3.9 to 5.5` kept, `7.7 H mmol/L` lost) is not better, only
/// shorter, so the new words must span most of the old words' width.
fn covers(new: &[Word], old: &[Word]) -> bool {
    let width = |ws: &[Word]| ws.iter().map(|w| w.bbox.width as u64).sum::<u64>();
    width(new) * 10 >= width(old) * 7
}

fn page_mode() -> tesseract_plumbing::tesseract_sys::TessPageSegMode {
    use tesseract_plumbing::tesseract_sys as t;
    match std::env::var("P360_PSM").ok().as_deref() {
        Some("6") => t::TessPageSegMode_PSM_SINGLE_BLOCK,
        Some("4") => t::TessPageSegMode_PSM_SINGLE_COLUMN,
        _ => t::TessPageSegMode_PSM_AUTO,
    }
}

fn mean_conf(words: &[Word]) -> f32 {
    if words.is_empty() {
        0.0
    } else {
        words.iter().map(|w| w.confidence).sum::<f32>() / words.len() as f32
    }
}

/// Reads the box `b` of `page` on its own, scaled so its words are [`REREAD_TEXT_PX`] high;
/// the words come back in `page` pixels.
fn reread(api: &mut TessBaseApi, b: BBox, page: &image::GrayImage) -> Option<Vec<Word>> {
    let (width, height) = page.dimensions();
    let pad = (b.height / 3).max(4);
    let x = b.x.saturating_sub(pad);
    let y = b.y.saturating_sub(pad);
    let w = (b.right() + pad).min(width).saturating_sub(x);
    let h = (b.bottom() + pad).min(height).saturating_sub(y);
    if w < 4 || h < 4 {
        return None;
    }
    let scale = (REREAD_TEXT_PX / b.height.max(1) as f32).clamp(1.0, 3.0);
    let crop = image::imageops::crop_imm(page, x, y, w, h).to_image();
    let cell = if scale > 1.1 {
        preprocess::resize(
            &crop,
            (w as f32 * scale).round() as u32,
            (h as f32 * scale).round() as u32,
        )
    } else {
        crop
    };
    let (cw, ch) = cell.dimensions();
    api.set_image(cell.as_raw(), cw as i32, ch as i32, 1, cw as i32)
        .ok()?;
    api.recognize().ok()?;
    let tsv = api.get_tsv_text(0).ok()?;
    let scale = cw as f32 / w as f32;
    let words: Vec<Word> = parse_tsv(&tsv.as_ref().to_string_lossy(), scale)
        .into_iter()
        .flat_map(|l| l.words)
        .map(|mut word| {
            word.bbox.x += x;
            word.bbox.y += y;
            word
        })
        .collect();
    (!words.is_empty()).then_some(words)
}

/// Tesseract's TSV (level, page, block, par, line, word, left, top, width, height, conf, text)
/// → lines of words, boxes divided by `scale`.
pub fn parse_tsv(tsv: &str, scale: f32) -> Vec<Line> {
    let mut lines: Vec<Line> = Vec::new();
    let mut current: Option<(String, Vec<Word>)> = None;
    for row in tsv.lines() {
        let cols: Vec<&str> = row.split('\t').collect();
        if cols.len() < 12 || cols[0] != "5" {
            continue;
        }
        let text = cols[11].trim();
        if text.is_empty() {
            continue;
        }
        let num = |i: usize| cols[i].parse::<f32>().unwrap_or(0.0);
        let key = format!("{}.{}.{}", cols[2], cols[3], cols[4]);
        let word = Word {
            text: text.to_string(),
            bbox: BBox {
                x: (num(6) / scale) as u32,
                y: (num(7) / scale) as u32,
                width: (num(8) / scale).ceil() as u32,
                height: (num(9) / scale).ceil() as u32,
            },
            confidence: (num(10) / 100.0).clamp(0.0, 1.0),
        };
        match &mut current {
            Some((k, words)) if *k == key => words.push(word),
            _ => {
                if let Some((_, words)) = current.take() {
                    lines.push(Line::new(words));
                }
                current = Some((key, vec![word]));
            }
        }
    }
    if let Some((_, words)) = current {
        lines.push(Line::new(words));
    }
    lines
}

/// Re-executes the current process with `OMP_THREAD_LIMIT=1` unless it is already set; returns
/// only if it was set (or the re-exec failed, which is logged and tolerated: OCR still works,
/// only slower).
pub fn ensure_single_threaded_openmp() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("OMP_THREAD_LIMIT").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("OMP_THREAD_LIMIT", "1")
        .exec();
    tracing::warn!(error = %err, "could not re-execute with OMP_THREAD_LIMIT=1; OCR will be slower");
}

/// Starts the engines on first use, so that processes which never read a document (the API
/// alone, a `users` command) neither load the models nor fail without them.
pub struct LazyTesseract {
    config: TesseractConfig,
    started: tokio::sync::OnceCell<TesseractOcr>,
}

impl LazyTesseract {
    pub fn new(config: TesseractConfig) -> Self {
        Self {
            config,
            started: tokio::sync::OnceCell::new(),
        }
    }

    async fn get(&self) -> Result<&TesseractOcr, OcrError> {
        self.started
            .get_or_try_init(|| {
                let config = self.config.clone();
                async move {
                    tokio::task::spawn_blocking(move || TesseractOcr::start(config))
                        .await
                        .map_err(|e| OcrError::Engine(format!("OCR start task: {e}")))?
                }
            })
            .await
    }
}

#[async_trait]
impl Ocr for LazyTesseract {
    fn engine(&self) -> Engine {
        Engine {
            name: "tesseract".into(),
            version: library_version(),
        }
    }

    async fn read(&self, bytes: &[u8]) -> Result<Layout, OcrError> {
        self.get().await?.read(bytes).await
    }
}
