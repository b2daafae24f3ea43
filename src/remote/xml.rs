//! S3's XML answers, parsed with `quick-xml`'s serde support: entities are decoded (a key
//! `R&D.pdf` arrives as `R&amp;D.pdf`), the S3 namespace and unknown elements are ignored, and
//! malformed XML is an error, never a guess. Pure functions, fuzzed in `fuzz/`.

use serde::Deserialize;

use super::RemotePart;

/// XML that is not the answer it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the storage server's answer is not the XML S3 sends: {0}")]
pub struct XmlError(String);

fn parse<'de, T: Deserialize<'de>>(xml: &'de str) -> Result<T, XmlError> {
    quick_xml::de::from_str(xml).map_err(|e| XmlError(e.to_string()))
}

/// An S3 `<Error>` body.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorBody {
    /// S3's error code (`SlowDown`, `NoSuchUpload`, …).
    #[serde(rename = "Code", default)]
    pub code: String,
    /// Its explanation.
    #[serde(rename = "Message", default)]
    pub message: String,
}

/// The `<Error>` in `xml`, if that is what it is (S3 also sends one with a 200 status, for a
/// CompleteMultipartUpload that failed after it started answering).
pub fn error(xml: &str) -> Option<ErrorBody> {
    if !is_root(xml, "Error") {
        return None;
    }
    // An <Error> root whose content cannot be read is still an error, without a code.
    Some(parse::<ErrorBody>(xml).unwrap_or_default())
}

/// Whether the document's root element is `name`.
fn is_root(xml: &str, name: &str) -> bool {
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(e)) | Ok(quick_xml::events::Event::Empty(e)) => {
                return AsRef::<str>::as_ref(&e.local_name()) == name
            }
            Ok(quick_xml::events::Event::Eof) | Err(_) => return false,
            Ok(_) => {}
        }
    }
}

/// The `UploadId` of an `<InitiateMultipartUploadResult>`.
pub fn upload_id(xml: &str) -> Result<String, XmlError> {
    #[derive(Deserialize)]
    struct Root {
        #[serde(rename = "UploadId")]
        upload_id: String,
    }
    let id = parse::<Root>(xml)?.upload_id;
    if id.is_empty() {
        return Err(XmlError("the UploadId is empty".into()));
    }
    Ok(id)
}

/// A `<CompleteMultipartUploadResult>`: the ETag (unquoted) and the object's flexible
/// checksum, when the store gave them.
pub fn completed(xml: &str) -> Result<super::Completion, XmlError> {
    // quick-xml cannot `#[serde(flatten)]` a `ChecksumFields` among other elements: the fields
    // are spelled out and moved into one.
    #[derive(Deserialize)]
    struct Root {
        #[serde(rename = "ETag")]
        etag: Option<String>,
        #[serde(rename = "ChecksumCRC64NVME")]
        crc64nvme: Option<String>,
        #[serde(rename = "ChecksumCRC32C")]
        crc32c: Option<String>,
        #[serde(rename = "ChecksumCRC32")]
        crc32: Option<String>,
        #[serde(rename = "ChecksumSHA256")]
        sha256: Option<String>,
    }
    let root: Root = parse(xml)?;
    let checksums = crate::checksum::ChecksumFields {
        crc64nvme: root.crc64nvme,
        crc32c: root.crc32c,
        crc32: root.crc32,
        sha256: root.sha256,
    };
    Ok(super::Completion {
        encryption: None,
        etag: root.etag.map(|e| e.trim().trim_matches('"').to_string()),
        checksum: checksums.first(),
        verdict: None,
    })
}

/// One page of a `<ListPartsResult>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartsPage {
    /// The parts on it, ETags quoted (empty when the store lists none).
    pub parts: Vec<RemotePart>,
    /// Where the next page starts, when there is one.
    pub next_marker: Option<u32>,
}

/// A `<ListPartsResult>` page.
pub fn parts_page(xml: &str) -> Result<PartsPage, XmlError> {
    #[derive(Deserialize)]
    struct Root {
        #[serde(rename = "Part", default)]
        parts: Vec<Part>,
        #[serde(rename = "IsTruncated", default)]
        truncated: Option<bool>,
        #[serde(rename = "NextPartNumberMarker", default)]
        next: Option<u32>,
    }
    #[derive(Deserialize)]
    struct Part {
        #[serde(rename = "PartNumber")]
        number: u32,
        #[serde(rename = "ETag", default)]
        etag: Option<String>,
        #[serde(rename = "Size")]
        size: u64,
    }
    let root: Root = parse(xml)?;
    Ok(PartsPage {
        parts: root
            .parts
            .into_iter()
            .map(|p| RemotePart {
                part_number: p.number,
                etag: p
                    .etag
                    .map(|e| e.trim().trim_matches('"').to_string())
                    .filter(|e| !e.is_empty())
                    .map(|e| format!("\"{e}\""))
                    .unwrap_or_default(),
                size: p.size,
            })
            .collect(),
        next_marker: root.next.filter(|_| root.truncated == Some(true)),
    })
}

/// An unfinished multipart upload, as ListMultipartUploads names it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct PendingUpload {
    /// The object key.
    #[serde(rename = "Key")]
    pub key: String,
    /// The store's id for the upload.
    #[serde(rename = "UploadId")]
    pub upload_id: String,
    /// When it started, as the store wrote it.
    #[serde(rename = "Initiated", default)]
    pub initiated: String,
}

/// One page of a `<ListMultipartUploadsResult>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadsPage {
    /// The uploads on it.
    pub uploads: Vec<PendingUpload>,
    /// Where the next page starts (key marker, upload id marker), when there is one.
    pub next: Option<(String, String)>,
}

/// A `<ListMultipartUploadsResult>` page.
pub fn uploads_page(xml: &str) -> Result<UploadsPage, XmlError> {
    #[derive(Deserialize)]
    struct Root {
        #[serde(rename = "Upload", default)]
        uploads: Vec<PendingUpload>,
        #[serde(rename = "IsTruncated", default)]
        truncated: Option<bool>,
        #[serde(rename = "NextKeyMarker", default)]
        next_key: Option<String>,
        #[serde(rename = "NextUploadIdMarker", default)]
        next_id: Option<String>,
    }
    let root: Root = parse(xml)?;
    let next = match (root.truncated, root.next_key) {
        (Some(true), Some(k)) if !k.is_empty() => Some((k, root.next_id.unwrap_or_default())),
        _ => None,
    };
    Ok(UploadsPage {
        uploads: root.uploads,
        next,
    })
}

/// An object as ListObjectsV2 names it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListedObject {
    /// The object key.
    #[serde(rename = "Key")]
    pub key: String,
    /// Bytes.
    #[serde(rename = "Size", default)]
    pub size: u64,
    /// Its ETag, quoted as the store wrote it.
    #[serde(rename = "ETag", default)]
    pub etag: String,
}

/// One page of a `<ListBucketResult>` (ListObjectsV2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectsPage {
    /// The objects on it.
    pub objects: Vec<ListedObject>,
    /// The continuation token of the next page, when there is one.
    pub next: Option<String>,
}

/// A `<ListBucketResult>` page.
pub fn objects_page(xml: &str) -> Result<ObjectsPage, XmlError> {
    #[derive(Deserialize)]
    struct Root {
        #[serde(rename = "Contents", default)]
        objects: Vec<ListedObject>,
        #[serde(rename = "IsTruncated", default)]
        truncated: Option<bool>,
        #[serde(rename = "NextContinuationToken", default)]
        next: Option<String>,
    }
    let root: Root = parse(xml)?;
    Ok(ObjectsPage {
        objects: root.objects,
        next: root
            .next
            .filter(|t| !t.is_empty() && root.truncated == Some(true)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_objects_and_their_next_page() {
        let xml = format!(
            r#"<ListBucketResult {NS}><Name>b</Name><IsTruncated>true</IsTruncated>
<Contents><Key>a/R&amp;D.pdf</Key><Size>12</Size><ETag>&quot;e&quot;</ETag></Contents>
<Contents><Key>b</Key><Size>0</Size></Contents><NextContinuationToken>t1</NextContinuationToken></ListBucketResult>"#
        );
        let page = objects_page(&xml).unwrap();
        assert_eq!(page.objects[0].key, "a/R&D.pdf");
        assert_eq!(page.objects[0].size, 12);
        assert_eq!(page.objects[1].etag, "");
        assert_eq!(page.next.as_deref(), Some("t1"));
        let last =
            format!("<ListBucketResult {NS}><IsTruncated>false</IsTruncated></ListBucketResult>");
        assert_eq!(
            objects_page(&last).unwrap(),
            ObjectsPage {
                objects: vec![],
                next: None
            }
        );
    }

    const NS: &str = r#"xmlns="http://s3.amazonaws.com/doc/2006-03-01/""#;

    #[test]
    fn errors_are_read_with_their_entities_and_only_from_an_error_root() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>AccessDenied</Code><Message>No &amp; no &lt;way&gt;</Message><RequestId>1</RequestId></Error>"#;
        assert_eq!(
            error(xml),
            Some(ErrorBody {
                code: "AccessDenied".into(),
                message: "No & no <way>".into()
            })
        );
        let ok = format!("<ListPartsResult {NS}><Part><PartNumber>1</PartNumber><Size>1</Size><ETag>\"&lt;Error&gt;\"</ETag></Part></ListPartsResult>");
        assert_eq!(error(&ok), None, "an <Error> inside text is not an error");
        assert_eq!(error("not xml"), None);
        assert_eq!(error(""), None);
    }

    /// Regression (hand-rolled XML): keys were taken as raw text, so `R&D.pdf` came back as
    /// `R&amp;D.pdf` and `hoist sweep` aborted a key that does not exist.
    #[test]
    fn listed_keys_and_etags_are_decoded() {
        let xml = format!(
            r#"<ListMultipartUploadsResult {NS}><Bucket>b</Bucket><IsTruncated>true</IsTruncated>
<NextKeyMarker>R&amp;D.pdf</NextKeyMarker><NextUploadIdMarker>id2</NextUploadIdMarker>
<Upload><Key>R&amp;D.pdf</Key><UploadId>id2</UploadId><Initiated>2026-01-01T00:00:00.000Z</Initiated></Upload>
</ListMultipartUploadsResult>"#
        );
        let page = uploads_page(&xml).unwrap();
        assert_eq!(page.uploads[0].key, "R&D.pdf");
        assert_eq!(page.next, Some(("R&D.pdf".into(), "id2".into())));
        let parts = format!(
            r#"<ListPartsResult {NS}><IsTruncated>false</IsTruncated><NextPartNumberMarker>2</NextPartNumberMarker>
<Part><PartNumber>1</PartNumber><ETag>&quot;abc&quot;</ETag><Size>5242880</Size></Part>
<Part><PartNumber>2</PartNumber><Size>10</Size></Part></ListPartsResult>"#
        );
        let page = parts_page(&parts).unwrap();
        assert_eq!(page.parts[0].etag, "\"abc\"");
        assert_eq!(page.parts[1].etag, "", "a store that lists no ETag");
        assert_eq!(page.next_marker, None, "not truncated");
        assert!(parts_page(
            "<ListPartsResult><Part><PartNumber>x</PartNumber></Part></ListPartsResult>"
        )
        .is_err());
    }

    #[test]
    fn initiate_and_complete_results() {
        let xml = format!("<InitiateMultipartUploadResult {NS}><Bucket>b</Bucket><Key>k</Key><UploadId>a~b&amp;c</UploadId></InitiateMultipartUploadResult>");
        assert_eq!(upload_id(&xml).unwrap(), "a~b&c");
        assert!(upload_id("<InitiateMultipartUploadResult/>").is_err());
        let done = format!("<CompleteMultipartUploadResult {NS}><Location>l</Location><ETag>&quot;e-2&quot;</ETag></CompleteMultipartUploadResult>");
        assert_eq!(completed(&done).unwrap().etag, Some("e-2".into()));
    }
}

#[derive(Deserialize)]
struct CopyPartResult {
    #[serde(rename = "ETag")]
    etag: String,
}

/// The ETag of an UploadPartCopy answer (`CopyPartResult`).
pub fn copy_part_etag(xml: &str) -> Result<String, XmlError> {
    Ok(parse::<CopyPartResult>(xml)?.etag)
}
