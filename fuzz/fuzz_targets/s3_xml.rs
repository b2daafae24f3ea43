//! S3's XML answers as a hostile or broken store might send them: every parser returns a value
//! or an error, never panics; and a key written the way S3 escapes it reads back unchanged.
#![no_main]

use hoist::remote::xml;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = xml::error(text);
    let _ = xml::upload_id(text);
    let _ = xml::completed(text);
    if let Ok(page) = xml::parts_page(text) {
        for p in &page.parts {
            assert!(p.etag.is_empty() || (p.etag.starts_with('"') && p.etag.ends_with('"')));
        }
    }
    let _ = xml::uploads_page(text);

    // Round trip: any key XML can carry, escaped as S3 escapes it, is listed as itself.
    let xml_char = |c: char| {
        matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    };
    // (A bare CR is normalised to LF by every XML parser; S3 writes it as `&#13;`.)
    if !text.is_empty() && text.chars().all(xml_char) && !text.contains('\r') {
        let listing = format!(
            "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated><Upload><Key>{}</Key>\
             <UploadId>id</UploadId></Upload></ListMultipartUploadsResult>",
            quick_xml::escape::escape(text)
        );
        let page = xml::uploads_page(&listing).expect("a well-formed listing");
        assert_eq!(page.uploads[0].key, text);
    }
});
