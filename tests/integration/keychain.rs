//! The real OS keychain (Secret Service under `dbus-run-session` with gnome-keyring in CI):
//! secrets round-trip, a self-sign profile reads its key from it, and no secret reaches the
//! profile file (the CLI test checks TRACE logs).

use hoist::error::Hint;
use hoist::profile::ProfileStore;
use hoist::retry::RetryPolicy;
use hoist::secret::{Keychain, Secret, SecretKind};
use hoist::session::{Session, SessionError};
use hoist::{ErrorKind, HasKind};

use crate::support::{self, recorder, Store};

fn test_keychain() -> Keychain {
    Keychain::new(format!("hoist-test-{}", uuid::Uuid::new_v4()))
}

#[test]
fn secrets_round_trip_through_the_os_keychain() {
    let kc = test_keychain();
    let s = Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    kc.set("p1", SecretKind::SecretAccessKey, &s)
        .expect("a Secret Service must be running (see README: the test command starts one)");
    assert_eq!(
        kc.get("p1", SecretKind::SecretAccessKey).unwrap(),
        Some(s.clone())
    );
    assert_eq!(kc.get("p1", SecretKind::SessionToken).unwrap(), None);
    let missing = kc.require("p1", SecretKind::SessionToken).unwrap_err();
    assert_eq!(
        missing.to_string(),
        "no session-token is stored for profile 'p1'"
    );
    assert_eq!(
        missing.hint(),
        Some(Hint::StoreSecret {
            profile: "p1".into(),
            kind: "session-token"
        })
    );
    kc.delete("p1", SecretKind::SecretAccessKey).unwrap();
    assert_eq!(kc.get("p1", SecretKind::SecretAccessKey).unwrap(), None);
    kc.delete("p1", SecretKind::SecretAccessKey)
        .expect("deleting twice is fine");
}

#[tokio::test]
async fn self_sign_profile_reads_its_secret_from_the_keychain() {
    let store = Store::start().await;
    let config = tempfile::tempdir().unwrap();
    let profiles = ProfileStore::in_dir(config.path());
    let mut p = store.self_sign_profile("admin");
    p.prefix = "admin/".into();
    profiles.add(p, true).unwrap();
    let kc = test_keychain();

    // Without the secret the session says how to store it.
    let err = Session::open(profiles.resolve(None).unwrap(), &kc, RetryPolicy::default())
        .await
        .unwrap_err();
    assert!(matches!(err, SessionError::Keychain(_)), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::MissingSecret);
    assert_eq!(
        err.hint(),
        Some(Hint::StoreSecret {
            profile: "admin".into(),
            kind: "secret-access-key"
        })
    );

    kc.set(
        "admin",
        SecretKind::SecretAccessKey,
        &Secret::new(support::SECRET_ACCESS_KEY),
    )
    .unwrap();
    let session = Session::open(profiles.resolve(None).unwrap(), &kc, RetryPolicy::default())
        .await
        .expect("session with the keychain secret");
    let dir = tempfile::tempdir().unwrap();
    let content = support::bytes(40_000, 5);
    let path = support::write(dir.path(), "k.bin", &content);
    let (progress, _) = recorder();
    let r = session.upload(&path, &progress).await.expect("upload");
    assert_eq!(
        store.stored_sha256(&r.key),
        Some(support::sha256_hex(&content))
    );
    kc.delete("admin", SecretKind::SecretAccessKey).unwrap();

    let file = std::fs::read_to_string(profiles.path()).unwrap();
    assert!(
        !file.contains(support::SECRET_ACCESS_KEY),
        "secret in the profile file"
    );
}

/// Set in the child run of [`a_keychain_that_stays_locked_saves_no_half_profile`].
const LOCKED_CHILD: &str = "HOIST_TEST_LOCKED_KEYCHAIN_CHILD";

/// Regression (a dismissed keychain prompt): saving a profile in the app while the keychain
/// stayed locked wrote the profile without its secret and blamed a missing keychain. Now the
/// error says the keychain stayed locked and what to do, and no profile is left behind.
///
/// The keychain is real: a private D-Bus session with its own gnome-keyring, which has no
/// unlocked collection, so storing needs an unlock prompt; with no display the prompter cannot
/// show and the Secret Service reports the prompt dismissed. The test binary runs itself on
/// that bus (one process talks to one bus), and the child asserts.
#[test]
fn a_keychain_that_stays_locked_saves_no_half_profile() {
    if std::env::var_os(LOCKED_CHILD).is_some() {
        return locked_child();
    }
    let home = tempfile::tempdir().unwrap();
    let run = home.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let script = format!(
        "gnome-keyring-daemon --start --components=secrets >/dev/null 2>&1; \
         exec {exe:?} --exact keychain::a_keychain_that_stays_locked_saves_no_half_profile \
         --nocapture --test-threads=1",
        exe = std::env::current_exe().unwrap()
    );
    let out = std::process::Command::new("dbus-run-session")
        .args(["--", "bash", "-c", &script])
        .env(LOCKED_CHILD, home.path())
        .env("XDG_RUNTIME_DIR", &run)
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("HOME", home.path())
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("dbus-run-session runs (the test command needs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child on the locked keychain: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn locked_child() {
    let home = std::path::PathBuf::from(std::env::var_os(LOCKED_CHILD).unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (config, data) = (home.join("config"), home.join("data"));
        let (retry, _) = support::recorded_policy();
        let manager = hoist::app::Manager::open(hoist::app::ManagerConfig {
            profiles: ProfileStore::in_dir(&config),
            keychain: test_keychain(),
            data_dir: data,
            retry,
            reconnect_after: std::time::Duration::from_secs(10),
        })
        .unwrap();
        let profile = hoist::profile::Profile::new(
            "staff",
            hoist::profile::Mode::Backend {
                url: "https://uploads.example.com/api/upload".into(),
                protocol: Default::default(),
                token: true,
            },
        );
        let token = hoist::app::profiles::SecretInput {
            kind: SecretKind::BearerToken,
            value: Secret::new("tok-0123456789"),
        };
        let e = manager
            .save_profile("staff", profile, vec![token], true)
            .await
            .unwrap_err();
        let message = e.to_string();
        assert!(message.contains("keychain stayed locked"), "{message}");
        assert!(message.contains("unlock it"), "{message}");
        assert!(!message.contains("tok-0123456789"));
        assert!(
            ProfileStore::in_dir(&config).get("staff").is_err(),
            "no profile without its secret"
        );
        let names: Vec<_> = manager
            .profiles()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["local"], "only the built-in profile is listed");
    });
}
