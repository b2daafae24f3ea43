//! Thumbnails for the queue's rows: an image file (PNG, JPEG, GIF, WebP) scaled down to a
//! small PNG, sent as a `data:` URL (the only kind of image the window's CSP lets in besides
//! its own). Decoding is bounded: big files and huge pictures get no thumbnail, not a stall.

use std::io::Cursor;
use std::path::Path;

use base64::Engine as _;
use image::{ImageFormat, ImageReader, Limits};

/// The longest side of a thumbnail, in pixels (twice the row's 48 CSS pixels, for HiDPI).
pub const EDGE: u32 = 96;
/// Files larger than this get no thumbnail.
pub const LARGEST_SOURCE: u64 = 64 << 20;
/// The most memory one decode may take.
const DECODE_MEMORY: u64 = 256 << 20;

/// A thumbnail of the image at `path`, or `None` for anything else (or an image too big or
/// broken to decode).
pub fn of(path: &Path) -> Option<String> {
    if std::fs::metadata(path).ok()?.len() > LARGEST_SOURCE {
        return None;
    }
    let mut reader = ImageReader::open(path).ok()?.with_guessed_format().ok()?;
    if !matches!(
        reader.format(),
        Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP)
    ) {
        return None;
    }
    let mut limits = Limits::default();
    limits.max_alloc = Some(DECODE_MEMORY);
    reader.limits(limits);
    let picture = reader.decode().ok()?;
    let mut png = Vec::new();
    picture
        .thumbnail(EDGE, EDGE)
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .ok()?;
    Some(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(url: &str) -> image::DynamicImage {
        let b64 = url
            .strip_prefix("data:image/png;base64,")
            .expect("a PNG data URL");
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        image::load_from_memory_with_format(&png, ImageFormat::Png).unwrap()
    }

    #[test]
    fn an_image_becomes_a_small_png_keeping_its_shape() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("photo.jpg");
        image::RgbImage::from_pixel(640, 320, image::Rgb([200, 30, 30]))
            .save_with_format(&photo, ImageFormat::Jpeg)
            .unwrap();
        let thumb = decoded(&of(&photo).expect("a JPEG has a thumbnail"));
        assert_eq!((thumb.width(), thumb.height()), (EDGE, EDGE / 2));
        let px = thumb.to_rgb8().get_pixel(10, 10).0;
        assert!(px[0] > 150 && px[1] < 80, "the colours survive: {px:?}");
    }

    #[test]
    fn anything_else_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.png");
        std::fs::write(&text, "not a picture, whatever its name says").unwrap();
        assert_eq!(of(&text), None);
        let pdf = dir.path().join("report.pdf");
        std::fs::write(&pdf, b"%PDF-1.7\n").unwrap();
        assert_eq!(of(&pdf), None);
        assert_eq!(of(&dir.path().join("gone.png")), None);
    }
}
