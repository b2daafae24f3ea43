//! Property tests: the key invariants (whatever name, folders, prefix and template, a key stays
//! under its prefix, within S3's 1,024 bytes, valid UTF-8, without `.`/`..` or empty segments)
//! and part sizing (every size up to 5 TiB is cut within S3's limits, covering each byte once).

use hoist::key::{self, KeyContext, KeyError, MAX_KEY_BYTES};
use hoist::upload::parts::{
    part_size_for, PartPlan, MAX_OBJECT_SIZE, MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE,
};
use proptest::prelude::*;

const TEMPLATES: &[&str] = &[
    "{name}",
    "{uuid}-{name}",
    "{yyyy}/{mm}/{dd}/{name}",
    "{date}/{uuid}/{name}",
    "{uuid}",
    "in/{name}/again/{name}",
];

fn ctx() -> KeyContext {
    KeyContext {
        now: time::OffsetDateTime::UNIX_EPOCH,
        uuid: uuid::Uuid::nil(),
    }
}

/// Names as hostile input gives them: any characters, with dots, slashes, backslashes,
/// control and bidi characters over-represented.
fn hostile_name() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<String>(),
        Just("..".to_string()),
        Just(".".to_string()),
        Just("/".to_string()),
        Just("\\".to_string()),
        Just("%2e%2e".to_string()),
        Just("\u{202E}".to_string()),
        Just("\0".to_string()),
        "[a-z.]{1,300}",
    ];
    prop::collection::vec(piece, 0..6).prop_map(|v| v.concat())
}

fn prefix() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z0-9_-]{1,40}", 0..4)
        .prop_map(|segs| segs.iter().map(|s| format!("{s}/")).collect::<String>())
}

fn assert_key_invariants(key: &str, prefix: &str) {
    assert!(key.starts_with(prefix), "{key:?} left {prefix:?}");
    assert!(key.len() <= MAX_KEY_BYTES, "{} bytes", key.len());
    assert!(std::str::from_utf8(key.as_bytes()).is_ok());
    for seg in key.split('/') {
        assert!(!seg.is_empty() && seg != "." && seg != "..", "{key:?}");
    }
    assert!(!key.chars().any(|c| c.is_control() || c == '\\'), "{key:?}");
    assert_eq!(key::validate_key(key), Ok(()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn keys_stay_under_the_prefix_and_within_limits(
        prefix in prefix(),
        template in prop::sample::select(TEMPLATES),
        name in hostile_name(),
    ) {
        let key = key::build_key(&prefix, template, &name, ctx()).expect("any name makes a key");
        assert_key_invariants(&key, &prefix);
    }

    #[test]
    fn keys_of_files_in_folders_stay_under_the_prefix(
        prefix in prefix(),
        template in prop::sample::select(TEMPLATES),
        dirs in prop::collection::vec(hostile_name(), 0..5),
        name in hostile_name(),
    ) {
        match key::build_key_in(&prefix, template, &dirs, &name, ctx()) {
            Ok(key) => assert_key_invariants(&key, &prefix),
            // Folder names are kept whole: deep, long paths can exceed S3's limit, and say so.
            Err(e) => prop_assert!(matches!(e, KeyError::TooLong(_)), "{e:?}"),
        }
    }

    #[test]
    fn a_sanitised_name_is_one_safe_segment(name in hostile_name()) {
        let s = key::sanitize_name(&name);
        prop_assert!(!s.is_empty() && s != "." && s != "..");
        prop_assert!(!s.contains('/') && !s.contains('\\'));
        prop_assert!(!s.chars().any(char::is_control));
        prop_assert!(s.len() <= key::MAX_NAME_BYTES, "{} bytes", s.len());
    }

    #[test]
    fn parts_cover_every_byte_once_within_s3_limits(
        size in prop_oneof![0..=64 * MIN_PART_SIZE, 0..=MAX_OBJECT_SIZE],
        preferred in 0..=2 * MAX_PART_SIZE,
    ) {
        let part_size = part_size_for(size, preferred).unwrap();
        prop_assert!((MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part_size));
        let plan = PartPlan { size, part_size };
        let count = plan.count();
        prop_assert!((1..=MAX_PARTS).contains(&count));
        // Contiguous, each part but the last of the part size, the last not empty (unless
        // the file is).
        for n in [1, 2, count.saturating_sub(1).max(1), count] {
            let r = plan.range(n);
            prop_assert_eq!(r.offset, u64::from(n - 1) * part_size);
            if n < count {
                prop_assert_eq!(r.len, part_size);
            }
        }
        let last = plan.range(count);
        prop_assert_eq!(last.offset + last.len, size);
        prop_assert!(last.len > 0 || size == 0);
        prop_assert!(!plan.contains(0) && !plan.contains(count + 1));
    }

    #[test]
    fn over_5_tib_is_refused(size in MAX_OBJECT_SIZE + 1..u64::MAX) {
        prop_assert!(part_size_for(size, MIN_PART_SIZE).is_err());
    }
}
