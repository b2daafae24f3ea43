//! Where an upload lands beyond the policy's template, and how a client finds that place again:
//!
//! * **folders** — a client names the file's path inside the folder it was dropped in
//!   (`relativePath`, as Uppy's metadata does); its folders are sanitised one by one and kept
//!   under the template's `{name}` (`{uuid}-Photos/2026/beach.jpg`), unless the policy turns
//!   `keep_folders` off. A path that climbs out (`..`), is absolute, or carries control or
//!   direction characters is refused, never repaired into something else.
//! * **drops** — every file of one drop shares one id (`{uuid}`): the client names its drop with
//!   a UUID of its own (`dropId`), and the id in the key is derived from it and the caller
//!   (HMAC), so a drop's files land together and no caller can aim at another's keys.
//! * **tickets** — each signing answer carries a ticket that seals the caller, the key and the
//!   declared size. A client that crashed (or lost its answer) presents it with the key to be
//!   signed the *same* key again, or to hear that the object has already landed there: a file
//!   the user added once lands once, under one key.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ApiError;
use crate::policy::PartPlan;
use crate::upload_id::UploadIds;

/// The longest relative path accepted, in bytes.
pub const MAX_RELATIVE_PATH: usize = 1024;
/// The deepest folder structure kept.
pub const MAX_FOLDER_DEPTH: usize = 32;

/// What a ticket seals in place of a store's upload id.
pub(crate) const TICKET: &str = "ticket";

/// Characters that change how text is displayed (bidirectional controls, zero-width marks): a
/// name carrying them can show as another name (`gpj.exe` shown as `exe.jpg`).
fn is_deceptive(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}'
        | '\u{FEFF}')
}

/// The folders above the file in `relative_path` (`Photos/2026/beach.jpg` → `Photos`, `2026`),
/// each sanitised as a file name is; empty for none. A 400 says what is wrong with a path that
/// is absolute, climbs out of its folder, is too long or too deep, or carries control or
/// direction characters.
pub fn folders(relative_path: Option<&str>) -> Result<Vec<String>, ApiError> {
    let Some(path) = relative_path.filter(|p| !p.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let refuse = |why: &str| {
        Err(ApiError::bad_request(format!(
            "relativePath {why}: send the file's path inside the dropped folder, such as \
             Photos/2026/beach.jpg"
        )))
    };
    if path.len() > MAX_RELATIVE_PATH {
        return refuse(&format!("is longer than {MAX_RELATIVE_PATH} bytes"));
    }
    if path.chars().any(|c| c.is_control() || is_deceptive(c)) {
        return refuse("carries control or text-direction characters");
    }
    let unified = path.replace('\\', "/");
    // Uppy's paths of dropped folders start with a slash (the entry's full path in the drop).
    let relative = unified.trim_start_matches('/');
    let mut segments: Vec<&str> = relative
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if segments.iter().any(|s| s.trim() == "..") {
        return refuse("climbs out of its folder (..)");
    }
    if segments
        .first()
        .is_some_and(|s| s.len() == 2 && s.ends_with(':') && s.as_bytes()[0].is_ascii_alphabetic())
    {
        return refuse("is absolute (a drive letter)");
    }
    // The last segment is the file itself: its name comes from fileName, checked by the policy.
    segments.pop();
    if segments.len() > MAX_FOLDER_DEPTH {
        return refuse(&format!("is deeper than {MAX_FOLDER_DEPTH} folders"));
    }
    Ok(segments
        .into_iter()
        .map(hoist::key::sanitize_name)
        .collect())
}

impl UploadIds {
    /// The id every file of drop `drop` (a client's UUID) shares in its key, for `token`: the
    /// same for the same caller and drop, unrelated to any other caller's. 400 when `drop` is
    /// not a UUID.
    pub fn drop_uuid(&self, token: &str, drop: &str) -> Result<uuid::Uuid, ApiError> {
        let drop = uuid::Uuid::parse_str(drop.trim()).map_err(|_| {
            ApiError::bad_request("dropId must be a UUID (one for every file of a drop)")
        })?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.secret())
            .expect("HMAC takes any key length");
        for part in [b"drop".as_slice(), token.as_bytes(), drop.as_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        let bytes = mac.finalize().into_bytes();
        let mut random = [0u8; 16];
        random.copy_from_slice(&bytes[..16]);
        Ok(uuid::Builder::from_random_bytes(random).into_uuid())
    }

    /// The ticket for `key` signed for `token` with `size` declared.
    pub fn ticket(&self, token: &str, key: &str, size: Option<u64>) -> String {
        let sizes = size.map(|size| PartPlan {
            size,
            part_size: size.max(1),
        });
        self.seal(token, key, sizes, None, TICKET)
    }

    /// Opens a ticket a client presents with `key`: the size declared when it was issued (`None`
    /// when none was). 403 when it is not this caller's ticket for this key.
    pub fn open_ticket(
        &self,
        token: &str,
        key: &str,
        ticket: &str,
    ) -> Result<Option<u64>, ApiError> {
        let sealed = self.open(token, key, ticket)?;
        if sealed.s3_upload_id != TICKET {
            return Err(ApiError::forbidden("not a ticket of this key and token"));
        }
        Ok(sealed.parts.map(|p| p.size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_kept_sanitised_and_the_file_name_dropped() {
        assert_eq!(
            folders(Some("Photos/2026/beach.jpg")).unwrap(),
            ["Photos", "2026"]
        );
        // Uppy's drop paths start with a slash; Windows paths use backslashes.
        assert_eq!(folders(Some("/Photos/beach.jpg")).unwrap(), ["Photos"]);
        assert_eq!(
            folders(Some("Invoices\\2026\\a.pdf")).unwrap(),
            ["Invoices", "2026"]
        );
        assert_eq!(folders(Some("./a//b/./c.txt")).unwrap(), ["a", "b"]);
        assert_eq!(folders(Some("beach.jpg")).unwrap(), Vec::<String>::new());
        assert_eq!(folders(None).unwrap(), Vec::<String>::new());
        // Each folder as a file name: NFC, unsafe characters replaced.
        assert_eq!(
            folders(Some("Cafe\u{0301} <2026>/x.jpg")).unwrap(),
            ["Caf\u{e9}_2026_"]
        );
    }

    #[test]
    fn hostile_relative_paths_are_refused() {
        for hostile in [
            "../../etc/passwd",
            "Photos/../../x.jpg",
            "a/ .. /x",
            "C:/Windows/x.exe",
            "c:\\x.exe",
            "a\u{0000}b/x",
            "a\nb/x",
            "Photos\u{202E}gpj/x.exe",
            "a\u{200B}/x",
        ] {
            let e = folders(Some(hostile)).expect_err(hostile);
            assert_eq!(e.status.as_u16(), 400, "{hostile}");
            assert!(e.message.contains("relativePath"), "{}", e.message);
        }
        let deep = "d/".repeat(MAX_FOLDER_DEPTH + 1) + "x";
        assert!(folders(Some(&deep)).is_err());
        assert!(folders(Some(&"a".repeat(MAX_RELATIVE_PATH + 1))).is_err());
    }

    #[test]
    fn a_drop_has_one_id_per_caller() {
        let ids = UploadIds::new(b"secret");
        let drop = "6f1c2e9a-1b2c-4d5e-8f90-112233445566";
        let a = ids.drop_uuid("alice", drop).unwrap();
        assert_eq!(a, ids.drop_uuid("alice", drop).unwrap());
        assert_ne!(a, ids.drop_uuid("bob", drop).unwrap());
        assert_ne!(
            a,
            ids.drop_uuid("alice", "7f1c2e9a-1b2c-4d5e-8f90-112233445566")
                .unwrap()
        );
        assert_eq!(a.get_version_num(), 4);
        assert!(ids.drop_uuid("alice", "../x").is_err());
    }

    #[test]
    fn tickets_bind_caller_key_and_size() {
        let ids = UploadIds::new(b"secret");
        let t = ids.ticket("alice", "uploads/alice/k", Some(42));
        assert_eq!(
            ids.open_ticket("alice", "uploads/alice/k", &t).unwrap(),
            Some(42)
        );
        assert!(ids.open_ticket("bob", "uploads/alice/k", &t).is_err());
        assert!(ids.open_ticket("alice", "uploads/alice/other", &t).is_err());
        let none = ids.ticket("alice", "k", None);
        assert_eq!(ids.open_ticket("alice", "k", &none).unwrap(), None);
        // An upload id or a receipt is no ticket.
        let receipt = ids.seal("alice", "k", None, None, "single-put");
        assert!(ids.open_ticket("alice", "k", &receipt).is_err());
    }
}
