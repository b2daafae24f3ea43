//! The key builder with any prefix, template, folders and file name: a key it returns stays
//! under the prefix, within 1,024 bytes, without `.`/`..`/empty segments, backslashes or
//! control characters; the sanitised name is one safe segment.
//!
//! Input: `prefix \n template-index \n dir \n dir ... \n name` (lossy UTF-8).
#![no_main]

use hoist::key::{self, KeyContext, KeyError, MAX_KEY_BYTES};
use libfuzzer_sys::fuzz_target;

const TEMPLATES: &[&str] = &[
    "{name}",
    "{uuid}-{name}",
    "{yyyy}/{mm}/{dd}/{name}",
    "{date}/{uuid}/{name}",
    "{uuid}",
    "in/{name}/again/{name}",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines: Vec<&str> = text.split('\n').collect();
    let name = lines.pop().unwrap_or("");
    let prefix = lines.first().copied().unwrap_or("");
    let template = TEMPLATES[lines.get(1).map_or(0, |l| l.len()) % TEMPLATES.len()];
    let dirs: Vec<String> = lines.iter().skip(2).map(|d| d.to_string()).collect();

    let safe = key::sanitize_name(name);
    assert!(!safe.is_empty() && safe != "." && safe != "..", "{safe:?}");
    assert!(!safe.contains('/') && !safe.contains('\\'), "{safe:?}");
    assert!(!safe.chars().any(char::is_control), "{safe:?}");

    // Only prefixes a profile or a token could have.
    if key::validate_prefix(prefix).is_err() || !(prefix.is_empty() || prefix.ends_with('/')) {
        return;
    }
    let ctx = KeyContext {
        now: time::OffsetDateTime::UNIX_EPOCH,
        uuid: uuid::Uuid::nil(),
    };
    match key::build_key_in(prefix, template, &dirs, name, ctx) {
        Ok(k) => {
            assert!(k.starts_with(prefix), "{k:?} left {prefix:?}");
            assert!(k.len() <= MAX_KEY_BYTES);
            assert!(
                k.split('/').all(|s| !s.is_empty() && s != "." && s != ".."),
                "{k:?}"
            );
            assert!(!k.chars().any(|c| c.is_control() || c == '\\'), "{k:?}");
        }
        Err(KeyError::TooLong(_)) => {}
        Err(e) => panic!("a key from any name is built or too long, not {e:?}"),
    }
});
