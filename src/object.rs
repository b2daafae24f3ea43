//! What S3 stores with each object a self-signing profile uploads: server-side encryption
//! (SSE-S3, SSE-KMS with a key and the bucket key, DSSE-KMS), storage class, `Cache-Control`,
//! `Content-Disposition`, user metadata and tags. They become headers that are signed into the
//! PUT (or the CreateMultipartUpload), so the store applies them and nobody can drop them, and a
//! bucket policy that requires encryption then accepts the upload.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Per-object settings of a profile; empty by default (the bucket's defaults apply).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[cfg_attr(feature = "ipc", ts(export))]
pub struct ObjectSettings {
    /// `AES256` (SSE-S3), `aws:kms` (SSE-KMS) or `aws:kms:dsse` (DSSE-KMS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ipc", ts(optional))]
    pub encryption: Option<String>,
    /// The KMS key (id, ARN or alias) for `aws:kms`; the bucket's default key if none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ipc", ts(optional))]
    pub kms_key_id: Option<String>,
    /// Use an S3 Bucket Key for SSE-KMS (fewer KMS calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ipc", ts(optional))]
    pub bucket_key: Option<bool>,
    /// `STANDARD`, `STANDARD_IA`, `INTELLIGENT_TIERING`, `GLACIER_IR`, ….
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ipc", ts(optional))]
    pub storage_class: Option<String>,
    /// `Cache-Control` stored with the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ipc", ts(optional))]
    pub cache_control: Option<String>,
    /// `Content-Disposition` stored with the object (e.g. `attachment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ipc", ts(optional))]
    pub content_disposition: Option<String>,
    /// User metadata (`x-amz-meta-<name>`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Object tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// S3's storage classes.
const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
    "EXPRESS_ONEZONE",
];

impl ObjectSettings {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// What is wrong with the settings, said so that it can be fixed.
    pub fn validate(&self) -> Result<(), String> {
        match self.encryption.as_deref() {
            None | Some("AES256") | Some("aws:kms") | Some("aws:kms:dsse") => {}
            Some(e) => {
                return Err(format!(
                    "encryption '{e}' is not AES256, aws:kms or aws:kms:dsse"
                ))
            }
        }
        let kms = self
            .encryption
            .as_deref()
            .is_some_and(|e| e.starts_with("aws:kms"));
        if (self.kms_key_id.is_some() || self.bucket_key.is_some()) && !kms {
            return Err("kms_key_id and bucket_key need encryption = \"aws:kms\"".into());
        }
        if let Some(c) = &self.storage_class {
            if !STORAGE_CLASSES.contains(&c.as_str()) {
                return Err(format!(
                    "storage class '{c}' is not one of {}",
                    STORAGE_CLASSES.join(", ")
                ));
            }
        }
        let printable = |s: &str| s.chars().all(|c| (' '..='~').contains(&c));
        for (field, value) in [
            ("cache_control", &self.cache_control),
            ("content_disposition", &self.content_disposition),
            ("kms_key_id", &self.kms_key_id),
        ] {
            if value.as_deref().is_some_and(|v| !printable(v)) {
                return Err(format!("{field} must be printable ASCII"));
            }
        }
        for (k, v) in &self.metadata {
            let token = !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !token || !printable(v) {
                return Err(format!(
                    "metadata '{k}': names are lower-case letters, digits, - and _; values printable ASCII"
                ));
            }
        }
        if self.tags.len() > 10 {
            return Err("S3 allows at most 10 tags per object".into());
        }
        for (k, v) in &self.tags {
            if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
                return Err(format!(
                    "tag '{k}': keys 1–128 characters, values up to 256"
                ));
            }
        }
        Ok(())
    }

    /// The headers that carry the settings, to be signed into the request that creates the
    /// object (PutObject, CreateMultipartUpload).
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut h = Vec::new();
        let mut put = |name: &str, value: &str| h.push((name.to_string(), value.to_string()));
        if let Some(e) = &self.encryption {
            put("x-amz-server-side-encryption", e);
        }
        if let Some(k) = &self.kms_key_id {
            put("x-amz-server-side-encryption-aws-kms-key-id", k);
        }
        if let Some(b) = self.bucket_key {
            put(
                "x-amz-server-side-encryption-bucket-key-enabled",
                if b { "true" } else { "false" },
            );
        }
        if let Some(c) = &self.storage_class {
            put("x-amz-storage-class", c);
        }
        if let Some(c) = &self.cache_control {
            put("cache-control", c);
        }
        if let Some(c) = &self.content_disposition {
            put("content-disposition", c);
        }
        for (k, v) in &self.metadata {
            put(&format!("x-amz-meta-{k}"), v);
        }
        if !self.tags.is_empty() {
            let tagging: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&self.tags)
                .finish();
            put("x-amz-tagging", &tagging);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_become_signed_headers_and_bad_ones_say_why() {
        let s = ObjectSettings {
            encryption: Some("aws:kms".into()),
            kms_key_id: Some("alias/uploads".into()),
            bucket_key: Some(true),
            storage_class: Some("STANDARD_IA".into()),
            cache_control: Some("no-cache".into()),
            metadata: [("team".to_string(), "design".to_string())].into(),
            tags: [("project".to_string(), "a b&c".to_string())].into(),
            ..ObjectSettings::default()
        };
        assert_eq!(s.validate(), Ok(()));
        let h = s.headers();
        let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("x-amz-server-side-encryption"), Some("aws:kms"));
        assert_eq!(
            get("x-amz-server-side-encryption-bucket-key-enabled"),
            Some("true")
        );
        assert_eq!(get("x-amz-meta-team"), Some("design"));
        assert_eq!(get("x-amz-tagging"), Some("project=a+b%26c"));
        assert!(ObjectSettings::default().headers().is_empty());

        let bad = |f: fn(&mut ObjectSettings)| {
            let mut s = ObjectSettings::default();
            f(&mut s);
            s.validate().unwrap_err()
        };
        assert!(bad(|s| s.encryption = Some("rot13".into())).contains("AES256"));
        assert!(bad(|s| s.kms_key_id = Some("k".into())).contains("aws:kms"));
        assert!(bad(|s| s.storage_class = Some("COLD".into())).contains("STANDARD"));
        assert!(bad(|s| {
            s.metadata.insert("Bad Name".into(), "v".into());
        })
        .contains("metadata"));
    }
}
