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
