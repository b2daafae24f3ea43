//! A backend's verdict on what landed (see `Signer::complete`): where the object now is, or
//! why it was kept aside.

use super::types::TransferError;
use crate::sign::Verdict;

/// The key an upload landed at (`signed` when the backend gave no verdict) and whether the
/// backend verified it; a quarantined upload is a failure that says why.
pub(crate) fn landed(
    signed: String,
    verdict: Option<Verdict>,
) -> Result<(String, bool), TransferError> {
    match verdict {
        None => Ok((signed, false)),
        Some(Verdict::Verified { key }) => Ok((key, true)),
        Some(Verdict::Quarantined { key, reason }) => {
            Err(TransferError::Quarantined { reason, key })
        }
    }
}

/// The object URL `location` (of `signed`) moved to `key`: the signed key's encoded form at
/// the end of its path replaced by the new key's.
pub(crate) fn moved_location(location: &url::Url, signed: &str, key: &str) -> String {
    let (from, to) = (
        crate::key::encode_path(signed),
        crate::key::encode_path(key),
    );
    let mut moved = location.clone();
    match location.path().strip_suffix(&from) {
        Some(base) => moved.set_path(&format!("{base}{to}")),
        None => return location.to_string(),
    }
    moved.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verified_upload_is_at_its_final_key_and_a_quarantined_one_fails() {
        assert_eq!(
            landed("incoming/a".into(), None).unwrap(),
            ("incoming/a".to_string(), false)
        );
        let v = Verdict::Verified { key: "a".into() };
        assert_eq!(
            landed("incoming/a".into(), Some(v)).unwrap(),
            ("a".to_string(), true)
        );
        let q = Verdict::Quarantined {
            key: "quarantine/a".into(),
            reason: "its content is application/pdf, not the image/png declared".into(),
        };
        let e = landed("incoming/a".into(), Some(q))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("quarantined by the backend: its content is application/pdf"),
            "{e}"
        );
        assert!(e.contains("kept at quarantine/a"), "{e}");
    }

    #[test]
    fn the_location_follows_the_move() {
        let u = url::Url::parse("https://b.s3.amazonaws.com/incoming/uploads/a%20b.png").unwrap();
        assert_eq!(
            moved_location(&u, "incoming/uploads/a b.png", "uploads/a b.png"),
            "https://b.s3.amazonaws.com/uploads/a%20b.png"
        );
    }
}
