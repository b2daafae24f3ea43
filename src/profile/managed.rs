//! Profiles the organisation manages: `*.toml` files in a machine-wide directory the admin
//! owns (Linux `/etc/hoist/profiles.d`, Windows `%ProgramData%\Hoist\profiles.d`, macOS
//! `/Library/Application Support/Hoist/profiles.d`; in debug builds, for tests,
//! `HOIST_MANAGED_DIR` overrides).
//!
//! Each file has the shape of `profiles.toml` (`default = "…"` and `[profiles.NAME]` tables),
//! so an admin's exported profile can be dropped in as it is. They are read, never written:
//! staff cannot edit or remove a managed profile, nor add one of the same name, and a managed
//! default wins over the user's. They hold no secret (no profile does): a managed staff
//! profile signs in with SSO or a token the user stores in the keychain.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Profile, ProfileError, ProfileFile};

/// The machine-wide directory of managed profiles.
pub fn managed_dir() -> PathBuf {
    // Tests point it elsewhere; a release build has no switch that turns the organisation's
    // profiles off.
    if cfg!(debug_assertions) {
        if let Some(dir) = std::env::var_os("HOIST_MANAGED_DIR") {
            return PathBuf::from(dir);
        }
    }
    if cfg!(windows) {
        let data = std::env::var_os("ProgramData").unwrap_or_else(|| "C:\\ProgramData".into());
        PathBuf::from(data).join("Hoist").join("profiles.d")
    } else if cfg!(target_os = "macos") {
        PathBuf::from("/Library/Application Support/Hoist/profiles.d")
    } else {
        PathBuf::from("/etc/hoist/profiles.d")
    }
}

/// The managed profiles found in a directory.
#[derive(Debug, Default)]
pub(super) struct Managed {
    /// By name: the profile and the file it came from.
    pub profiles: BTreeMap<String, (Profile, PathBuf)>,
    /// The default the organisation set (the first file, in name order, that sets one).
    pub default: Option<String>,
}

impl Managed {
    /// Reads every `*.toml` in `dir`, in name order; a profile named in two files is the
    /// first file's. No directory means no managed profile.
    pub(super) fn load(dir: &Path) -> Result<Self, ProfileError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ProfileError::Io {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
            .collect();
        files.sort();
        let mut managed = Self::default();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|source| ProfileError::Io {
                path: path.clone(),
                source,
            })?;
            let file: ProfileFile = toml::from_str(&text).map_err(|e| ProfileError::Parse {
                path: path.clone(),
                message: format!("{e} (a managed profile file: ask your administrator)"),
            })?;
            for (name, mut profile) in file.profiles {
                profile.name = name.clone();
                profile.validate().map_err(|e| ProfileError::Parse {
                    path: path.clone(),
                    message: format!(
                        "profile '{name}': {e} (a managed profile file: ask your administrator)"
                    ),
                })?;
                managed
                    .profiles
                    .entry(name)
                    .or_insert_with(|| (profile, path.clone()));
            }
            if managed.default.is_none() {
                managed.default = file.default;
            }
        }
        // A default that names no managed profile is the user's to choose.
        if let Some(d) = &managed.default {
            if !managed.profiles.contains_key(d) {
                managed.default = None;
            }
        }
        Ok(managed)
    }

    /// The refusal for a change to managed profile `name`, if it is one.
    pub(super) fn refuse_change(&self, name: &str) -> Result<(), ProfileError> {
        match self.profiles.get(name) {
            Some((_, path)) => Err(ProfileError::Managed {
                name: name.to_string(),
                path: path.clone(),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Mode, Profile, ProfileError, ProfileStore};

    fn staff(name: &str, url: &str) -> Profile {
        Profile::new(
            name,
            Mode::Backend {
                url: url.into(),
                protocol: Default::default(),
                token: false,
            },
        )
    }

    /// A store whose machine-wide directory holds `company` (the default) and `shared`, and
    /// whose user file holds `mine` and a `shared` of its own.
    fn store() -> (tempfile::TempDir, ProfileStore) {
        let dir = tempfile::tempdir().unwrap();
        let managed = dir.path().join("profiles.d");
        std::fs::create_dir(&managed).unwrap();
        std::fs::write(
            managed.join("10-company.toml"),
            "default = \"company\"\n\n[profiles.company]\nmode = \"backend\"\n\
             url = \"https://uploads.example.com/api/upload\"\n\n[profiles.shared]\n\
             mode = \"backend\"\nurl = \"https://managed.example.com/api/upload\"\n",
        )
        .unwrap();
        std::fs::write(managed.join("README"), "not a profile file").unwrap();
        let user = ProfileStore::in_dir(&dir.path().join("user"));
        user.add(staff("mine", "https://mine.example.com/up"), true)
            .unwrap();
        user.add(staff("shared", "https://user.example.com/up"), false)
            .unwrap();
        (dir, user.clone().with_managed(&managed))
    }

    #[test]
    fn managed_profiles_are_listed_win_their_names_and_set_the_default() {
        let (dir, store) = store();
        let names: Vec<String> = store.list().unwrap().into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["company", "mine", "shared"]);
        let shared = store.get("shared").unwrap();
        assert_eq!(
            shared.mode.destination(),
            staff("x", "https://managed.example.com/api/upload")
                .mode
                .destination(),
            "the managed profile hides the user's of the same name"
        );
        assert_eq!(store.default_name().unwrap().as_deref(), Some("company"));
        assert_eq!(store.resolve(None).unwrap().name, "company");
        let sources = store.managed_sources().unwrap();
        assert_eq!(
            sources.keys().collect::<Vec<_>>(),
            ["company", "shared"],
            "{sources:?}"
        );
        assert_eq!(
            sources["company"],
            dir.path().join("profiles.d/10-company.toml")
        );
    }

    #[test]
    fn staff_cannot_change_remove_or_shadow_a_managed_profile() {
        let (_dir, store) = store();
        let refused = |r: Result<_, ProfileError>| match r {
            Err(e @ ProfileError::Managed { .. }) => e.to_string(),
            other => panic!("not refused as managed: {other:?}"),
        };
        let why = refused(
            store
                .update(staff("company", "https://evil.example.com/up"))
                .map(|_| ()),
        );
        assert!(why.contains("managed by your organisation"), "{why}");
        assert!(why.contains("ask your administrator"), "{why}");
        refused(store.remove("company").map(|_| ()));
        refused(store.add(staff("company", "https://evil.example.com/up"), false));
        match store.set_default("mine") {
            Err(ProfileError::ManagedDefault(d)) => assert_eq!(d, "company"),
            other => panic!("{other:?}"),
        }
        // Nothing changed, and the user's own profiles stay theirs to change.
        assert_eq!(store.default_name().unwrap().as_deref(), Some("company"));
        store
            .update(staff("mine", "https://mine.example.com/v2"))
            .unwrap();
        store.remove("mine").unwrap();
        assert!(store.get("company").is_ok());
    }

    #[test]
    fn a_broken_managed_file_says_which_and_whom_to_ask() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("bad.toml"),
            "[profiles.x]\nmode = \"warp\"\n",
        )
        .unwrap();
        let store = ProfileStore::in_dir(&dir.path().join("user")).with_managed(dir.path());
        let e = store.list().unwrap_err().to_string();
        assert!(e.contains("bad.toml"), "{e}");
        assert!(e.contains("ask your administrator"), "{e}");
        // No managed directory at all is no managed profile.
        let none = ProfileStore::in_dir(dir.path()).with_managed(&dir.path().join("absent"));
        assert!(none.list().unwrap().is_empty());
    }
}
