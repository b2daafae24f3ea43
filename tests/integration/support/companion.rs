//! The real Uppy Companion (`@uppy/companion`, pinned in `tests/companion/`, installed by
//! `scripts/deps test`), started on 127.0.0.1 in front of the test store, as a company runs it.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Store, ACCESS_KEY_ID, SECRET_ACCESS_KEY};

pub(crate) struct Companion {
    pub url: String,
    child: Child,
    _data: tempfile::TempDir,
}

/// How Companion's AWS SDK computes checksums for the URLs it presigns.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checksums {
    /// The SDK's default (`WHEN_SUPPORTED`): the CRC32 of an empty body in every part URL.
    SdkDefault,
    /// `AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED`, the setting Hoist's error asks for.
    WhenRequired,
}

impl Companion {
    pub(crate) fn start(store: &Store, checksums: Checksums) -> Self {
        let harness = super::manifest_dir().join("tests/companion");
        assert!(
            harness.join("node_modules/@uppy/companion").is_dir(),
            "@uppy/companion is not installed: run `scripts/deps test` (npm ci in tests/companion)"
        );
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let data = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("node");
        cmd.arg("serve.mjs")
            .current_dir(&harness)
            .env("COMPANION_PORT", port.to_string())
            .env("COMPANION_DOMAIN", format!("127.0.0.1:{port}"))
            .env("COMPANION_PROTOCOL", "http")
            .env("COMPANION_SECRET", "hoist-test-companion-secret")
            .env("COMPANION_PREAUTH_SECRET", "hoist-test-companion-preauth")
            .env("COMPANION_DATADIR", data.path())
            .env("COMPANION_UPLOAD_URLS", "http://127.0.0.1:1/")
            .env("COMPANION_CLIENT_ORIGINS", "true")
            .env("COMPANION_AWS_KEY", ACCESS_KEY_ID)
            .env("COMPANION_AWS_SECRET", SECRET_ACCESS_KEY)
            .env("COMPANION_AWS_BUCKET", "test-bucket")
            .env("COMPANION_AWS_REGION", "us-east-1")
            .env(
                "COMPANION_AWS_ENDPOINT",
                store.store.endpoint().as_str().trim_end_matches('/'),
            )
            .env("COMPANION_AWS_FORCE_PATH_STYLE", "true")
            .env_remove("AWS_PROFILE")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match checksums {
            Checksums::WhenRequired => cmd.env("AWS_REQUEST_CHECKSUM_CALCULATION", "WHEN_REQUIRED"),
            Checksums::SdkDefault => cmd.env_remove("AWS_REQUEST_CHECKSUM_CALCULATION"),
        };
        let child = cmd.spawn().expect("node runs (scripts/deps installs it)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "Companion did not start within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _data: data,
        }
    }
}

impl Drop for Companion {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
