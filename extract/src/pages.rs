//! From stored bytes to page images: format detection by content, decoding with limits (a
//! decompression bomb is refused before any pixel is allocated), EXIF orientation, and PDFs page
//! by page (scanned PDFs: each page's image).

use image::{DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use std::io::Cursor;

/// Largest side we accept, as Textract does (10,000 px); a page photo is ~4,000.
pub const MAX_SIDE: u32 = 10_000;
/// Smallest side that can hold a line of text.
pub const MIN_SIDE: u32 = 100;
const MAX_ALLOC: u64 = 512 * 1024 * 1024;
/// Pages per document processed (a phone upload is a few pages).
pub const MAX_PAGES: usize = 50;

/// Why a document cannot be read: shown to the patient on the document, so it says what is
/// wrong and what to do, and never includes content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error(
        "the file is not a JPEG, PNG, TIFF or PDF (it starts with bytes {0}); send a photo or a PDF scan"
    )]
    UnknownFormat(String),
    #[error(
        "the {format} image could not be decoded ({reason}); the file may be truncated or damaged, please send it again"
    )]
    Undecodable { format: String, reason: String },
    #[error(
        "the image is {width}×{height} pixels; the largest side allowed is {MAX_SIDE} pixels, please send a smaller photo"
    )]
    TooLarge { width: u32, height: u32 },
    #[error(
        "the image is {width}×{height} pixels, too small to hold readable text (at least {MIN_SIDE}×{MIN_SIDE})"
    )]
    TooSmall { width: u32, height: u32 },
    #[error("the PDF is encrypted or password-protected; please send an unprotected copy")]
    EncryptedPdf,
    #[error("the PDF could not be read ({0})")]
    BadPdf(String),
    #[error(
        "PDF page {page} holds no scanned image (text-only PDFs are not read yet); please send a photo or scan of the page"
    )]
    PdfPageWithoutImage { page: u32 },
    #[error("the document has {0} pages; at most {MAX_PAGES} are read per upload")]
    TooManyPages(usize),
    #[error("no readable text was found on page {page}; is the photo blank, dark or out of focus?")]
    NoText { page: u32 },
}

/// One page as pixels, greyscale, upright.
#[derive(Debug)]
pub struct PageImage {
    pub number: u32,
    pub image: GrayImage,
}

/// One page of a document as stored: pixels to read, or the text of a PDF's text layer (which
/// needs no OCR), or why this page cannot be read while the others can.
#[derive(Debug)]
pub enum PageContent {
    Image(PageImage),
    Text { number: u32, text: String },
    Unreadable { number: u32, error: DocumentError },
}

/// Decodes a document page by page: a damaged page is reported as that page's failure, and
/// the document fails only when the file as a whole cannot be read.
pub fn decode_pages(bytes: &[u8]) -> Result<Vec<PageContent>, DocumentError> {
    if bytes.starts_with(b"%PDF-") {
        return pdf_page_contents(bytes);
    }
    Ok(decode(bytes)?.into_iter().map(PageContent::Image).collect())
}

/// Text-layer text worth trusting over OCR: enough letters, and mostly letters, digits,
/// punctuation and spaces (a layer of garbage glyph codes is not).
fn plausible_text(t: &str) -> bool {
    let total = t.chars().filter(|c| !c.is_whitespace()).count();
    let good = t
        .chars()
        .filter(|c| c.is_alphanumeric() || ".,:;/%()-<>#*'+".contains(*c))
        .count();
    total >= 40 && good * 10 >= total * 9
}

fn head_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Decodes a document into upright greyscale pages.
pub fn decode(bytes: &[u8]) -> Result<Vec<PageImage>, DocumentError> {
    if bytes.starts_with(b"%PDF-") {
        return pdf_pages(bytes);
    }
    let format = image::guess_format(bytes)
        .ok()
        .filter(|f| matches!(f, ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Tiff))
        .ok_or_else(|| DocumentError::UnknownFormat(head_hex(bytes)))?;
    check_complete(bytes, format)?;
    Ok(vec![PageImage {
        number: 1,
        image: decode_image(bytes, format)?,
    }])
}

/// Decoders fill a cut-off image with grey rather than fail; a photo whose upload stopped
/// half-way must be reported, not read half-blank. JPEG ends with an EOI marker, PNG with IEND.
fn check_complete(bytes: &[u8], format: ImageFormat) -> Result<(), DocumentError> {
    let end = bytes.len() - bytes.iter().rev().take_while(|b| **b == 0).count();
    let complete = match format {
        ImageFormat::Jpeg => bytes[..end].ends_with(&[0xFF, 0xD9]),
        ImageFormat::Png => bytes[..end].windows(4).rev().take(16).any(|w| w == b"IEND"),
        _ => true,
    };
    if complete {
        Ok(())
    } else {
        Err(DocumentError::Undecodable {
            format: format!("{format:?}").to_uppercase(),
            reason: "the data ends before the image does".into(),
        })
    }
}

fn decode_image(bytes: &[u8], format: ImageFormat) -> Result<GrayImage, DocumentError> {
    let name = format!("{format:?}").to_uppercase();
    let undecodable = |e: image::ImageError| DocumentError::Undecodable {
        format: name.clone(),
        reason: e.to_string(),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.no_limits();
    let mut decoder = reader.into_decoder().map_err(undecodable)?;
    // Dimensions first: a 20,000×20,000 bomb is refused from its header.
    let (width, height) = decoder.dimensions();
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(DocumentError::TooLarge { width, height });
    }
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(DocumentError::TooSmall { width, height });
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    decoder.set_limits(limits).map_err(undecodable)?;
    let orientation = decoder.orientation().map_err(undecodable)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    image.apply_orientation(orientation);
    Ok(image.into_luma8())
}

/// Scanned PDFs: each page's largest image. Why not render: no PDF rasteriser is a well-kept pure
/// Rust crate, and phone scanner apps write one JPEG per page, which this reads losslessly.
fn pdf_pages(bytes: &[u8]) -> Result<Vec<PageImage>, DocumentError> {
    pdf_page_contents(bytes)?
        .into_iter()
        .map(|p| match p {
            PageContent::Image(i) => Ok(i),
            PageContent::Text { number, .. } => {
                Err(DocumentError::PdfPageWithoutImage { page: number })
            }
            PageContent::Unreadable { error, .. } => Err(error),
        })
        .collect()
}

fn pdf_page_contents(bytes: &[u8]) -> Result<Vec<PageContent>, DocumentError> {
    // The trailer names an /Encrypt dictionary: say so before any parser trips over the
    // encrypted streams with a less helpful message.
    if bytes.windows(8).any(|w| w == b"/Encrypt") {
        return Err(DocumentError::EncryptedPdf);
    }
    let doc = lopdf::Document::load_mem(bytes).map_err(|e| match e {
        lopdf::Error::Decryption(_) | lopdf::Error::UnsupportedSecurityHandler(_) => {
            DocumentError::EncryptedPdf
        }
        other => DocumentError::BadPdf(other.to_string()),
    })?;
    if doc.is_encrypted() {
        return Err(DocumentError::EncryptedPdf);
    }
    let pages = doc.get_pages();
    if pages.len() > MAX_PAGES {
        return Err(DocumentError::TooManyPages(pages.len()));
    }
    let mut out = Vec::new();
    for (number, id) in pages {
        // A text layer that reads as text is the page's content as written: no OCR needed.
        if let Ok(text) = doc.extract_text(&[number])
            && plausible_text(&text)
        {
            out.push(PageContent::Text { number, text });
            continue;
        }
        let images = doc.get_page_images(id).unwrap_or_default();
        let image = match images
            .iter()
            .max_by_key(|i| i.width.saturating_mul(i.height))
        {
            None => Err(DocumentError::PdfPageWithoutImage { page: number }),
            Some(best) => {
                let filters = best.filters.clone().unwrap_or_default();
                if filters.iter().any(|f| f == "DCTDecode") {
                    decode_image(best.content, ImageFormat::Jpeg)
                } else {
                    raw_pdf_image(best, number)
                }
            }
        };
        out.push(match image {
            Ok(image) => PageContent::Image(PageImage { number, image }),
            Err(error) => PageContent::Unreadable { number, error },
        });
    }
    if out.is_empty() {
        return Err(DocumentError::BadPdf("it has no pages".into()));
    }
    Ok(out)
}

/// An uncompressed or Flate-compressed 8-bit grey or RGB image XObject.
fn raw_pdf_image(
    img: &lopdf::xobject::PdfImage<'_>,
    page: u32,
) -> Result<GrayImage, DocumentError> {
    use std::io::Read;
    let unsupported = || DocumentError::PdfPageWithoutImage { page };
    let (w, h) = (
        u32::try_from(img.width).map_err(|_| unsupported())?,
        u32::try_from(img.height).map_err(|_| unsupported())?,
    );
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(DocumentError::TooLarge {
            width: w,
            height: h,
        });
    }
    if w < MIN_SIDE || h < MIN_SIDE {
        return Err(DocumentError::TooSmall {
            width: w,
            height: h,
        });
    }
    let filters = img.filters.clone().unwrap_or_default();
    let data = match filters.as_slice() {
        [] => img.content.to_vec(),
        [f] if f == "FlateDecode" => {
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(img.content)
                .take(MAX_ALLOC)
                .read_to_end(&mut out)
                .map_err(|e| DocumentError::BadPdf(format!("page {page} image: {e}")))?;
            out
        }
        _ => return Err(unsupported()),
    };
    if img.bits_per_component.unwrap_or(8) != 8 {
        return Err(unsupported());
    }
    let pixels = (w as usize) * (h as usize);
    match img.color_space.as_deref() {
        Some("DeviceGray") if data.len() >= pixels => {
            GrayImage::from_raw(w, h, data[..pixels].to_vec()).ok_or_else(unsupported)
        }
        Some("DeviceRGB") if data.len() >= pixels * 3 => {
            let rgb = image::RgbImage::from_raw(w, h, data[..pixels * 3].to_vec())
                .ok_or_else(unsupported)?;
            Ok(DynamicImage::ImageRgb8(rgb).into_luma8())
        }
        _ => Err(unsupported()),
    }
}
