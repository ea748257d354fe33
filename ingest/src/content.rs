//! What a document is, decided from its bytes alone: the declared content type and the file
//! name are ignored, because phones and browsers get them wrong and attackers lie.
//!
//! Images are decoded in full under allocation and size limits, so a truncated or corrupt
//! photo, or a decompression bomb (a small file that claims 20,000 × 20,000 pixels), is
//! refused at the door with a message that says what is wrong, instead of failing later in OCR.

use std::io::Cursor;

/// Accepted media types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaType {
    Jpeg,
    Png,
    Pdf,
}

impl MediaType {
    pub fn mime(self) -> &'static str {
        match self {
            MediaType::Jpeg => "image/jpeg",
            MediaType::Png => "image/png",
            MediaType::Pdf => "application/pdf",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            MediaType::Jpeg => "jpg",
            MediaType::Png => "png",
            MediaType::Pdf => "pdf",
        }
    }
}

/// Limits on accepted content.
#[derive(Clone, Debug)]
pub struct ContentLimits {
    /// Largest accepted file.
    pub max_bytes: usize,
    /// Largest image side in pixels (phone cameras reach ~8,000).
    pub max_side: u32,
    /// Largest image area in pixels.
    pub max_pixels: u64,
}

impl Default for ContentLimits {
    fn default() -> Self {
        Self {
            max_bytes: 25 * 1024 * 1024,
            max_side: 12_000,
            max_pixels: 64_000_000,
        }
    }
}

/// Why content was refused. Each message tells the user what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is {size} bytes; the limit is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error(
        "unsupported file type: expected a JPEG or PNG photo or a PDF (the content was checked, not the file name)"
    )]
    Unsupported,
    #[error(
        "the {kind} image is {width}×{height} pixels; the limit is {max_side} pixels a side and {max_pixels} pixels in all"
    )]
    ImageTooLarge {
        kind: &'static str,
        width: u32,
        height: u32,
        max_side: u32,
        max_pixels: u64,
    },
    #[error("the {kind} image is too small to read ({width}×{height} pixels)")]
    ImageTooSmall {
        kind: &'static str,
        width: u32,
        height: u32,
    },
    #[error("the {kind} image is corrupt or truncated and cannot be decoded")]
    CorruptImage { kind: &'static str },
    #[error("the PDF is damaged: {0}")]
    CorruptPdf(&'static str),
    #[error("the PDF is encrypted (password-protected); upload an unprotected copy")]
    EncryptedPdf,
}

/// Smallest side we accept: below this no text can be read from a photo.
const MIN_SIDE: u32 = 16;

/// Detects the media type from magic bytes.
pub fn sniff(bytes: &[u8]) -> Option<MediaType> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(MediaType::Jpeg)
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some(MediaType::Png)
    } else if bytes.starts_with(b"%PDF-") {
        Some(MediaType::Pdf)
    } else {
        None
    }
}

/// Checks `bytes` and returns their media type. CPU-bound for images: call it off the async
/// executor (`spawn_blocking`).
pub fn validate(bytes: &[u8], limits: &ContentLimits) -> Result<MediaType, ContentError> {
    if bytes.is_empty() {
        return Err(ContentError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(ContentError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let media = sniff(bytes).ok_or(ContentError::Unsupported)?;
    match media {
        MediaType::Jpeg => {
            check_image(bytes, image::ImageFormat::Jpeg, "JPEG", limits)?;
            if !jpeg_is_complete(bytes) {
                return Err(ContentError::CorruptImage { kind: "JPEG" });
            }
        }
        MediaType::Png => check_image(bytes, image::ImageFormat::Png, "PNG", limits)?,
        MediaType::Pdf => check_pdf(bytes)?,
    }
    Ok(media)
}

fn check_image(
    bytes: &[u8],
    format: image::ImageFormat,
    kind: &'static str,
    limits: &ContentLimits,
) -> Result<(), ContentError> {
    let corrupt = || ContentError::CorruptImage { kind };
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    // Dimensions come from the header: refuse bombs before allocating anything.
    let (width, height) = reader.into_dimensions().map_err(|_| corrupt())?;
    if width > limits.max_side
        || height > limits.max_side
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(ContentError::ImageTooLarge {
            kind,
            width,
            height,
            max_side: limits.max_side,
            max_pixels: limits.max_pixels,
        });
    }
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(ContentError::ImageTooSmall {
            kind,
            width,
            height,
        });
    }
    reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_side);
    decoder_limits.max_image_height = Some(limits.max_side);
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(4));
    reader.limits(decoder_limits);
    // A full decode is the only reliable test for truncation and corrupt entropy data.
    reader.decode().map(|_| ()).map_err(|_| corrupt())
}

/// The JPEG decoder pads a truncated scan with grey instead of failing, so completeness is
/// checked from the structure: walk the marker segments (skipping APPn payloads, which may
/// hold an EXIF thumbnail with markers of its own) to the main image's start of scan, then
/// require an end-of-image marker after it.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let mut i = 2; // after SOI
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return false;
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        if marker == 0xDA {
            let scan = &bytes[(i + 2 + len).min(bytes.len())..];
            return scan.windows(2).any(|w| w == [0xFF, 0xD9]);
        }
        i += 2 + len;
    }
    false
}

fn check_pdf(bytes: &[u8]) -> Result<(), ContentError> {
    // A PDF ends with `%%EOF` (possibly followed by whitespace); a truncated upload does not.
    let tail = &bytes[bytes.len().saturating_sub(1024)..];
    if !contains(tail, b"%%EOF") {
        return Err(ContentError::CorruptPdf(
            "the end-of-file marker is missing (truncated upload?)",
        ));
    }
    if !contains(bytes, b"/Page") {
        return Err(ContentError::CorruptPdf("no pages were found"));
    }
    // The trailer names an /Encrypt dictionary when the document is encrypted.
    if contains(bytes, b"/Encrypt") {
        return Err(ContentError::EncryptedPdf);
    }
    Ok(())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
        let img =
            image::GrayImage::from_fn(width, height, |x, y| image::Luma([((x ^ y) & 0xFF) as u8]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 128]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    /// A PNG header that claims `width`×`height` with almost no data behind it.
    fn bomb_header(width: u32, height: u32) -> Vec<u8> {
        let mut v = png(32, 32);
        v[16..20].copy_from_slice(&width.to_be_bytes());
        v[20..24].copy_from_slice(&height.to_be_bytes());
        // Keep the header valid: recompute the IHDR chunk's CRC-32 (over type + data).
        let mut crc = 0xFFFF_FFFFu32;
        for &b in &v[12..29] {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        v[29..33].copy_from_slice(&(!crc).to_be_bytes());
        v
    }

    const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n3 0 obj << /Type /Page /Parent 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

    #[test]
    fn accepts_real_documents_by_content() {
        let l = ContentLimits::default();
        assert_eq!(validate(&png(200, 100), &l), Ok(MediaType::Png));
        assert_eq!(validate(&jpeg(200, 100), &l), Ok(MediaType::Jpeg));
        assert_eq!(validate(PDF, &l), Ok(MediaType::Pdf));
    }

    #[test]
    fn refuses_bad_content_with_a_reason() {
        let l = ContentLimits::default();
        assert_eq!(validate(b"", &l), Err(ContentError::Empty));
        assert_eq!(
            validate(b"GIF89a......", &l),
            Err(ContentError::Unsupported)
        );
        assert_eq!(
            validate(b"<html>not an image</html>", &l),
            Err(ContentError::Unsupported)
        );
        let mut truncated = jpeg(300, 300);
        truncated.truncate(truncated.len() / 2);
        assert_eq!(
            validate(&truncated, &l),
            Err(ContentError::CorruptImage { kind: "JPEG" })
        );
        let mut scrambled = png(100, 100);
        let n = scrambled.len();
        scrambled[n / 2..n - 12].fill(0xAB);
        assert_eq!(
            validate(&scrambled, &l),
            Err(ContentError::CorruptImage { kind: "PNG" })
        );
        assert!(matches!(
            validate(&bomb_header(20_000, 20_000), &l),
            Err(ContentError::ImageTooLarge { width: 20_000, .. })
        ));
        assert!(matches!(
            validate(&png(1, 1), &l),
            Err(ContentError::ImageTooSmall { .. })
        ));
        let small = ContentLimits {
            max_bytes: 10,
            ..ContentLimits::default()
        };
        assert!(matches!(
            validate(&png(100, 100), &small),
            Err(ContentError::TooLarge { limit: 10, .. })
        ));
        assert!(matches!(
            validate(&PDF[..PDF.len() - 8], &l),
            Err(ContentError::CorruptPdf(_))
        ));
        let encrypted = [&PDF[..PDF.len() - 7], b"/Encrypt 5 0 R\n%%EOF\n"].concat();
        assert_eq!(validate(&encrypted, &l), Err(ContentError::EncryptedPdf));
    }
}
