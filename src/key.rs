//! Object keys: the profile's template filled with a sanitised file name.
//!
//! A file name comes from the user's disk and is never trusted as a path. [`sanitize_name`]
//! keeps letters, digits and a few safe punctuation marks and replaces everything else — path
//! separators, backslashes, `%`, control and bidirectional-override characters — by `_`, strips
//! leading dots and bounds the length. [`validate_key`] then checks the whole key, so that no dot
//! segment, backslash or control character can reach a URL (the `url` crate would silently
//! rewrite `..` and the request would no longer match its signature). [`encode_path`]
//! percent-encodes a key for the URL path exactly as it is signed.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use unicode_normalization::UnicodeNormalization;

/// S3's limit on key length, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest sanitised file name kept in a key, in bytes. Well under S3's key limit because
/// filesystem-backed stores (the embedded one among them) encode the key into a file name,
/// which most filesystems cap at 255 bytes.
pub const MAX_NAME_BYTES: usize = 100;
/// The placeholders a key template may use.
pub const TEMPLATE_FIELDS: [&str; 6] = ["{yyyy}", "{mm}", "{dd}", "{date}", "{uuid}", "{name}"];

/// Why a key, prefix or template cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The key would exceed S3's 1,024 bytes.
    #[error("key would be {0} bytes, over S3's limit of 1024; shorten the prefix or template")]
    TooLong(usize),
    /// A path segment is empty, `.` or `..`.
    #[error("key '{0}' has an empty, '.' or '..' path segment")]
    DotSegment(String),
    /// A backslash or control character.
    #[error("key contains a backslash or control character")]
    BadCharacter,
    /// A leading `/`.
    #[error("key must not start with '/'")]
    Absolute,
    /// A template that would give every file the same key.
    #[error("template '{0}' must contain {{name}} or {{uuid}} so that keys differ per file")]
    TemplateWithoutName(String),
    /// A `{placeholder}` the template language does not know.
    #[error("template has an unknown placeholder '{0}' (known: {{yyyy}} {{mm}} {{dd}} {{date}} {{uuid}} {{name}})")]
    UnknownPlaceholder(String),
}

impl crate::error::HasKind for KeyError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::InvalidInput
    }
}

/// Characters kept in a sanitised name besides letters and digits.
const SAFE_PUNCTUATION: &[char] = &['-', '_', '.', '(', ')', '+', '=', ',', '@', '!'];

/// Turns a file name from disk into one safe inside a key.
pub fn sanitize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut last_was_sub = false;
    for c in name.nfc() {
        let keep = c.is_alphanumeric() || SAFE_PUNCTUATION.contains(&c);
        if keep {
            out.push(c);
            last_was_sub = false;
        } else if !last_was_sub {
            out.push('_');
            last_was_sub = true;
        }
    }
    let trimmed = out.trim_start_matches(['.', '_']).trim_end_matches('.');
    let mut name = if trimmed.is_empty() {
        "file".to_string()
    } else {
        trimmed.to_string()
    };
    if name.len() > MAX_NAME_BYTES {
        name = shorten_keeping_extension(&name, MAX_NAME_BYTES);
    }
    name
}

fn shorten_keeping_extension(name: &str, max: usize) -> String {
    let ext = match name.rfind('.') {
        Some(i) if name.len() - i <= 16 && i > 0 => &name[i..],
        _ => "",
    };
    let stem = &name[..name.len() - ext.len()];
    let mut cut = max - ext.len();
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{}", &stem[..cut], ext)
}

/// The key a backend chose for a file, and the ticket to ask for it again (hoist-server's
/// exactly-once rule): journaled before the first byte is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assigned {
    /// The key.
    pub key: String,
    /// The backend's ticket for it (no secret: it names the upload and its caller).
    pub ticket: String,
}

/// What varies per key: the moment and a random id, passed in so keys are reproducible in tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyContext {
    /// When the key is made (`{yyyy}`, `{mm}`, `{dd}`, `{date}`).
    pub now: time::OffsetDateTime,
    /// The random id (`{uuid}`).
    pub uuid: uuid::Uuid,
}

impl KeyContext {
    /// The current time and a fresh random id.
    pub fn now_random() -> Self {
        Self {
            now: time::OffsetDateTime::now_utc(),
            uuid: uuid::Uuid::new_v4(),
        }
    }
}

/// Builds `prefix + template` for a file name; the name is sanitised here.
pub fn build_key(
    prefix: &str,
    template: &str,
    file_name: &str,
    ctx: KeyContext,
) -> Result<String, KeyError> {
    build_key_in(prefix, template, &[], file_name, ctx)
}

/// Like [`build_key`] for a file inside dropped folders: `{name}` becomes `dir/sub/name`, each
/// folder name sanitised like a file name.
pub fn build_key_in(
    prefix: &str,
    template: &str,
    dirs: &[String],
    file_name: &str,
    ctx: KeyContext,
) -> Result<String, KeyError> {
    let d = ctx.now.date();
    let rendered = template
        .replace("{yyyy}", &format!("{:04}", d.year()))
        .replace("{mm}", &format!("{:02}", u8::from(d.month())))
        .replace("{dd}", &format!("{:02}", d.day()))
        .replace(
            "{date}",
            &format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
        )
        .replace("{uuid}", &ctx.uuid.to_string());
    let mut name = sanitize_name(file_name);
    let fixed_len =
        prefix.len() + rendered.len() - "{name}".len() * rendered.matches("{name}").count();
    let name_budget =
        MAX_KEY_BYTES.saturating_sub(fixed_len) / rendered.matches("{name}").count().max(1);
    if name.len() > name_budget && name_budget >= 16 {
        name = shorten_keeping_extension(&name, name_budget);
    }
    let mut path = String::new();
    for d in dirs {
        path.push_str(&sanitize_name(d));
        path.push('/');
    }
    path.push_str(&name);
    let key = format!("{prefix}{}", rendered.replace("{name}", &path));
    validate_key(&key)?;
    Ok(key)
}

/// Checks a whole key: length, no dot segments, no backslash or control characters.
pub fn validate_key(key: &str) -> Result<(), KeyError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(KeyError::TooLong(key.len()));
    }
    if key.starts_with('/') {
        return Err(KeyError::Absolute);
    }
    if key
        .chars()
        .any(|c| c == '\\' || c.is_control() || is_bidi_control(c))
    {
        return Err(KeyError::BadCharacter);
    }
    if key
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(KeyError::DotSegment(key.to_string()));
    }
    Ok(())
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Checks a profile's key prefix: empty, or segments ending with `/`.
pub fn validate_prefix(prefix: &str) -> Result<(), KeyError> {
    if prefix.is_empty() {
        return Ok(());
    }
    // One trailing `/` ends the prefix; a second would make an empty segment in every key.
    validate_key(prefix.strip_suffix('/').unwrap_or(prefix))
}

/// Checks a profile's key template.
pub fn validate_template(template: &str) -> Result<(), KeyError> {
    if !template.contains("{name}") && !template.contains("{uuid}") {
        return Err(KeyError::TemplateWithoutName(template.to_string()));
    }
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .map(|i| open + i + 1)
            .unwrap_or(rest.len());
        let field = &rest[open..close];
        if !TEMPLATE_FIELDS.contains(&field) {
            return Err(KeyError::UnknownPlaceholder(field.to_string()));
        }
        rest = &rest[close..];
    }
    let ctx = KeyContext {
        now: time::OffsetDateTime::UNIX_EPOCH,
        uuid: uuid::Uuid::nil(),
    };
    build_key("", template, "name.bin", ctx).map(|_| ())
}

/// Everything but RFC 3986 unreserved characters is percent-encoded, as SigV4 requires.
const KEY_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The key as a URL path (without the leading `/`): each segment percent-encoded, `/` kept.
pub fn encode_path(key: &str) -> String {
    key.split('/')
        .map(|seg| utf8_percent_encode(seg, KEY_SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (found by the `keys` fuzz target): `a//` passed as a prefix, and then every
    /// key built under it had an empty segment and was refused.
    #[test]
    fn a_prefix_with_an_empty_segment_is_refused() {
        assert!(validate_prefix("a//").is_err());
        assert!(validate_prefix("a//b/").is_err());
        assert!(validate_prefix("a/b/").is_ok());
        assert!(validate_prefix("").is_ok());
    }

    fn ctx() -> KeyContext {
        KeyContext {
            now: time::macros::datetime!(2026-11-28 12:00 UTC),
            uuid: uuid::uuid!("00000000-0000-4000-8000-000000000001"),
        }
    }

    #[test]
    fn renders_the_template() {
        let k = build_key(
            "uploads/",
            "{yyyy}/{mm}/{dd}/{uuid}-{name}",
            "Report Q3.pdf",
            ctx(),
        )
        .unwrap();
        assert_eq!(
            k,
            "uploads/2026/11/28/00000000-0000-4000-8000-000000000001-Report_Q3.pdf"
        );
    }

    #[test]
    fn sanitises_hostile_names() {
        assert_eq!(sanitize_name("../../x"), "x");
        assert_eq!(sanitize_name("/abs"), "abs");
        assert_eq!(sanitize_name("a\\..\\b"), "a_.._b");
        assert_eq!(sanitize_name("%2e%2e"), "2e_2e");
        assert_eq!(sanitize_name("a\0b"), "a_b");
        assert_eq!(sanitize_name("evil\u{202E}fdp.exe"), "evil_fdp.exe");
        assert_eq!(sanitize_name(".."), "file");
        assert_eq!(sanitize_name(""), "file");
        let long = format!("{}.txt", "a".repeat(1021));
        let s = sanitize_name(&long);
        assert!(s.len() <= MAX_NAME_BYTES && s.ends_with(".txt"), "{s}");
    }

    #[test]
    fn rejects_unsafe_keys() {
        assert!(validate_key("a/../b").is_err());
        assert!(validate_key("a/./b").is_err());
        assert!(validate_key("/a").is_err());
        assert!(validate_key("a\\b").is_err());
        assert!(validate_key("a\u{202E}b").is_err());
        assert!(validate_key(&"k".repeat(1025)).is_err());
        assert!(validate_key("a/b.c").is_ok());
    }

    #[test]
    fn encodes_each_segment_and_keeps_slashes() {
        assert_eq!(encode_path("a b/ü%2e.txt"), "a%20b/%C3%BC%252e.txt");
    }

    #[test]
    fn rejects_bad_templates() {
        assert!(validate_template("{yyyy}/static").is_err());
        assert!(validate_template("{nope}/{name}").is_err());
        assert!(validate_template("{date}/{name}").is_ok());
    }
}
