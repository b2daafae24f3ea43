//! What may be uploaded, decided before anything is signed: type, size and key under the
//! caller's prefix, and how a declared size is cut into parts. Keys are generated here; a
//! client's file name is only ever a sanitised last segment. Who is asking is
//! [`crate::token`]'s; how often, [`crate::rate`]'s.

use axum::http::StatusCode;

use crate::config::PolicyConfig;
use crate::error::ApiError;
use crate::token::Token;

/// S3's limits.
pub use hoist::upload::parts::{
    PartPlan, MAX_OBJECT_SIZE, MAX_PARTS, MAX_PART_SIZE, MAX_SINGLE_PUT, MIN_PART_SIZE,
};

/// What a client asked to upload.
#[derive(Debug)]
pub struct Ask<'a> {
    /// The file name the client gave.
    pub file_name: Option<&'a str>,
    /// The type it declared.
    pub content_type: Option<&'a str>,
    /// The size it declared.
    pub size: Option<u64>,
    /// The file's path inside the folder it was dropped in (`Photos/2026/beach.jpg`).
    pub relative_path: Option<&'a str>,
    /// The client's id for the drop the file came in (a UUID shared by its files).
    pub drop_id: Option<&'a str>,
    /// The key and ticket of an earlier answer, to be signed the same key again.
    pub resume: Option<Resume<'a>>,
    /// No size need be declared (browsers cannot say one): the limit bounds the upload
    /// elsewhere, as a POST form's `content-length-range` the store enforces, or as the
    /// parts the server lists before it signs a browser's Complete.
    pub bounded_elsewhere: bool,
}

impl<'a> Ask<'a> {
    /// A file asked by name, type and size alone.
    pub fn file(
        file_name: Option<&'a str>,
        content_type: Option<&'a str>,
        size: Option<u64>,
    ) -> Self {
        Ask {
            file_name,
            content_type,
            size,
            relative_path: None,
            drop_id: None,
            resume: None,
            bounded_elsewhere: false,
        }
    }
}

/// A key signed before, presented again (see [`crate::placement`]).
#[derive(Clone, Copy, Debug)]
pub struct Resume<'a> {
    /// The key of the earlier answer.
    pub key: &'a str,
    /// Its ticket.
    pub ticket: &'a str,
}

/// What may be signed for it.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// The key generated for it.
    pub key: String,
    /// The type that will be signed.
    pub content_type: String,
    /// The size it declared.
    pub size: Option<u64>,
}

/// Types a browser runs or a desktop executes. A wildcard never admits them, and with no
/// `allowed_types` configured they are refused: only an exact entry allows one.
fn is_active(t: &str) -> bool {
    const ACTIVE: &[&str] = &[
        "text/html",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "text/ecmascript",
        "application/wasm",
        "application/x-msdownload",
        "application/x-msdos-program",
        "application/x-dosexec",
        "application/vnd.microsoft.portable-executable",
        "application/x-executable",
        "application/x-elf",
        "application/x-mach-binary",
        "application/x-msi",
        "application/x-ms-installer",
        "application/x-sh",
        "application/x-csh",
        "application/x-shellscript",
        "text/x-shellscript",
        "application/x-bat",
        "application/hta",
        "application/x-httpd-php",
        "application/java-archive",
        "application/x-java-archive",
        "application/vnd.apple.installer+xml",
    ];
    ACTIVE.contains(&t) || t.ends_with("+xml")
}

/// A client's content type: exactly one `type/subtype` of token characters (no parameters, no
/// list), lower-cased; anything else is a 400.
fn media_type(t: &str) -> Result<String, ApiError> {
    let token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
    };
    match t.split_once('/') {
        Some((a, b)) if t.len() <= 255 && token(a) && token(b) => Ok(t.to_ascii_lowercase()),
        _ => Err(ApiError::bad_request(format!(
            "contentType '{}' is not a MIME type (one type/subtype, no parameters)",
            t.escape_debug()
        ))),
    }
}

/// Types a browser sniffs (it guesses the content, and may find a page): a client that declares
/// one has declared nothing, and the type is taken from the name.
fn says_nothing(t: &str) -> bool {
    ["application/unknown", "unknown/unknown", "*/*"].contains(&t)
}

/// Whether type `t` may be signed under `allowed` (empty: any type but active content); 415 with
/// what to change if not.
fn type_admitted(t: &str, allowed: &[String]) -> Result<(), ApiError> {
    let exact = allowed.iter().any(|a| a.eq_ignore_ascii_case(t));
    if is_active(t) && !exact {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "type {t} is not allowed: executables, scripts and content a browser runs are \
                 refused unless the server lists them exactly (policy.allowed_types = [\"{t}\"])"
            ),
        ));
    }
    if !allowed.is_empty() && !hoist::validate::type_allowed(t, allowed) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("type {t} is not allowed (allowed: {})", allowed.join(", ")),
        ));
    }
    Ok(())
}

/// Applies the policy and the token's limits, and generates the key.
pub fn plan(
    policy: &PolicyConfig,
    token: &Token,
    ask: &Ask<'_>,
    multipart: bool,
    place: Place<'_>,
) -> Result<Plan, ApiError> {
    let name = ask.file_name.map(str::trim).unwrap_or("");
    if name.is_empty() {
        return Err(ApiError::bad_request("fileName is required"));
    }
    if name.len() > 4096 {
        return Err(ApiError::bad_request("fileName is longer than 4096 bytes"));
    }
    let guessed = mime_guess::from_path(name)
        .first_raw()
        .unwrap_or("application/octet-stream");
    let content_type = match ask.content_type.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => Some(media_type(t)?).filter(|t| !says_nothing(t)),
        None => None,
    }
    .unwrap_or_else(|| guessed.to_string());
    let listed = if token.allowed_types.is_empty() {
        &policy.allowed_types
    } else {
        &token.allowed_types
    };
    // Entries `.ext` admit names; the others are types.
    let allowed: Vec<String> = listed
        .iter()
        .filter(|a| !a.starts_with('.'))
        .cloned()
        .collect();
    let allowed = &allowed;
    type_admitted(&content_type, allowed)?;
    // The name counts too: a `.exe` or `.html` declared as `image/png` is still refused.
    if is_active(guessed) && guessed != content_type {
        type_admitted(guessed, allowed)?;
    }
    crate::file_type::name_admitted(name, guessed, listed)?;
    // A declared type must not carry past the policy a file whose name it contradicts: a
    // `.pdf` declared `image/png` would pass an `image/*` policy and land as a PDF. Only where
    // it changes the outcome (the policy lists types and refuses the name's): elsewhere a
    // client's content sniffing (a `.wma` read as `video/x-ms-wmv`) refuses nothing.
    if ask.content_type.is_some()
        && !allowed.is_empty()
        && !hoist::validate::type_allowed(guessed, allowed)
    {
        crate::file_type::type_fits_name(&content_type, name)?;
    }
    let limit = size_limit(policy, token);
    let hard = if multipart {
        MAX_OBJECT_SIZE
    } else {
        MAX_SINGLE_PUT
    };
    match (ask.size, limit) {
        (Some(s), Some(l)) if s > l => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("size {s} is over the limit of {l} bytes"),
            ))
        }
        (Some(s), _) if s > hard => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                if multipart {
                    format!("size {s} is over S3's object limit of 5 TiB")
                } else {
                    format!("size {s} is over S3's single-PUT limit of 5 GiB; use multipart")
                },
            ))
        }
        // A form's length range, or the parts listed before Complete, hold the limit.
        (None, Some(_)) if ask.bounded_elsewhere => {}
        (None, Some(_)) => {
            return Err(ApiError::bad_request(
                "size is required by this server's policy",
            ))
        }
        // A byte rate counts declared sizes: without one, nothing would be counted.
        (None, None) if token.bytes_per_minute.is_some() => {
            return Err(ApiError::bad_request(
                "size is required by this server's policy (it limits bytes per minute)",
            ))
        }
        // A multipart upload of nothing, under a limit, can only be an attempt to pass as
        // "no size" and send more.
        (Some(0), Some(_)) if multipart => {
            return Err(ApiError::bad_request(
                "size must be at least 1 byte for a multipart upload under this server's policy",
            ))
        }
        _ => {}
    }
    let folders: &[String] = if policy.keep_folders {
        place.folders
    } else {
        &[]
    };
    let key = hoist::key::build_key_in(
        &token.prefix,
        &policy.key_template,
        folders,
        name,
        place.context,
    )
    .map_err(|e| ApiError::bad_request(format!("cannot build a key: {e}")))?;
    Ok(Plan {
        key,
        content_type,
        size: ask.size,
    })
}

/// The most bytes one file may have under the policy and the token, if either limits it.
pub fn size_limit(policy: &PolicyConfig, token: &Token) -> Option<u64> {
    match (policy.max_size, token.max_size) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The body lengths a POST form for `plan` admits: exactly its declared size, or up to the
/// limit (S3's single-upload limit when nothing else limits it).
pub fn form_length(
    policy: &PolicyConfig,
    token: &Token,
    plan: &Plan,
) -> std::ops::RangeInclusive<u64> {
    match plan.size {
        Some(size) => size..=size,
        None => 0..=size_limit(policy, token).unwrap_or(MAX_SINGLE_PUT),
    }
}

/// Where a planned key goes: the folders kept above the file and what the template's `{uuid}`
/// and date take (see [`crate::placement`]).
#[derive(Clone, Copy, Debug)]
pub struct Place<'a> {
    /// Sanitised folder names, outermost first.
    pub folders: &'a [String],
    /// The moment and id the key is made with.
    pub context: hoist::key::KeyContext,
}

impl Place<'_> {
    /// A lone file: no folders, a fresh id.
    pub fn lone() -> Self {
        Place {
            folders: &[],
            context: hoist::key::KeyContext::now_random(),
        }
    }
}

/// Reads a JSON size: a non-negative integer, or `None` when absent or null.
pub fn json_size(v: Option<&serde_json::Value>) -> Result<Option<u64>, ApiError> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
            ApiError::bad_request("size must be a whole number of bytes, not negative")
        }),
        Some(serde_json::Value::String(s)) => s
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request("size must be a whole number of bytes")),
        Some(_) => Err(ApiError::bad_request(
            "size must be a whole number of bytes",
        )),
    }
}

/// Checks a key from a client against the token: under its prefix and well-formed (403 if not).
pub fn check_key(token: &Token, key: &str) -> Result<(), ApiError> {
    hoist::key::validate_key(key).map_err(|e| ApiError::bad_request(format!("key: {e}")))?;
    if !key.starts_with(&token.prefix) {
        return Err(ApiError::forbidden(
            "this key is outside the token's prefix",
        ));
    }
    Ok(())
}

/// How a declared size is cut into parts. Without `asked`, the way Uppy cuts a file by default
/// (`max(5 MiB, ceil(size / 10,000))`); a client that cuts otherwise (Hoist's own) says its part
/// size at create, and gets it when S3 would accept it.
pub fn part_plan(size: u64, asked: Option<u64>) -> Result<PartPlan, ApiError> {
    let part_size = match asked {
        None => MIN_PART_SIZE.max(size.div_ceil(MAX_PARTS as u64)),
        Some(p) => {
            let count = hoist::upload::parts::part_count(size, p.max(1));
            if p == 0 || p > MAX_PART_SIZE || (count > 1 && p < MIN_PART_SIZE) || count > MAX_PARTS
            {
                return Err(ApiError::bad_request(format!(
                    "partSize {p} does not fit S3's limits for {size} bytes: parts of 5 MiB to \
                     5 GiB (only a single part may be smaller), at most 10,000 of them"
                )));
            }
            p
        }
    };
    Ok(PartPlan { size, part_size })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upload_id::Sealed;

    #[test]
    fn part_plans_follow_uppy_or_the_client_within_s3_limits() {
        // Uppy's default cut.
        assert_eq!(part_plan(1, None).unwrap().part_size, MIN_PART_SIZE);
        let huge = 100_000 * MIN_PART_SIZE;
        assert_eq!(
            part_plan(huge, None).unwrap().part_size,
            huge.div_ceil(10_000)
        );
        // A client's own size when S3 takes it.
        assert_eq!(
            part_plan(100 << 20, Some(8 << 20)).unwrap().part_size,
            8 << 20
        );
        assert_eq!(part_plan(10, Some(10)).unwrap().count(), 1);
        for bad in [0, MIN_PART_SIZE - 1, MAX_PART_SIZE + 1] {
            assert!(part_plan(100 << 20, Some(bad)).is_err(), "{bad}");
        }
        assert!(part_plan(20_000 * MIN_PART_SIZE, Some(MIN_PART_SIZE)).is_err());
    }

    #[test]
    fn part_bounds_follow_the_declared_size() {
        let sealed = |size| Sealed {
            s3_upload_id: "x".into(),
            parts: Some(part_plan(size, None).unwrap()),
            checksum: None,
        };
        assert_eq!(sealed(1).max_part(), 1);
        assert_eq!(sealed(MIN_PART_SIZE).max_part(), 1);
        assert_eq!(sealed(MIN_PART_SIZE + 1).max_part(), 2);
        assert_eq!(sealed(MIN_PART_SIZE + 1).part_len(2), Some(1));
        assert_eq!(sealed(MAX_OBJECT_SIZE).max_part(), MAX_PARTS);
        let undeclared = Sealed {
            s3_upload_id: "x".into(),
            parts: None,
            checksum: None,
        };
        assert_eq!(undeclared.max_part(), MAX_PARTS);
        assert_eq!(undeclared.part_len(1), None);
        // Regression (size-limit bypass): a declared 0 is 0, not "undeclared": one part of 0.
        assert_eq!(sealed(0).max_part(), 1);
        assert_eq!(sealed(0).part_len(1), Some(0));
    }
}
