//! LocalStack (PyPI `localstack-core`, installed by `scripts/deps test` into a virtualenv outside
//! the clone), started on 127.0.0.1 without Docker: a second SigV4-verifying S3, and one that
//! implements flexible checksums (s3s-fs ignores them on parts and Complete).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use hoist::secret::Secret;
use hoist::sign::sigv4::SigV4Signer;

pub(crate) const KEY_ID: &str = "test";
pub(crate) const SECRET: &str = "test";

pub(crate) struct LocalStack {
    pub endpoint: String,
    child: Child,
    _dir: tempfile::TempDir,
}

fn venv() -> PathBuf {
    std::env::var_os("HOIST_LOCALSTACK_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/hoist-ci/localstack-venv"))
}

fn health(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /_localstack/health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

impl LocalStack {
    pub(crate) fn start() -> Self {
        let python = venv().join("bin/python");
        assert!(
            venv().join("bin/localstack-ready").exists(),
            "LocalStack is not installed: run `scripts/deps test` (it installs it into {})",
            venv().display()
        );
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(python)
            .args(["-m", "localstack.runtime.main"])
            .env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
            .env("LOCALSTACK_HOST", format!("127.0.0.1:{port}"))
            .env("SERVICES", "s3")
            // The default gateway binds every interface whatever GATEWAY_LISTEN says.
            .env("GATEWAY_SERVER", "hypercorn")
            .env("S3_SKIP_SIGNATURE_VALIDATION", "0")
            .env("DNS_ADDRESS", "0")
            .env("SKIP_SSL_CERT_DOWNLOAD", "1")
            .env("FILESYSTEM_ROOT", dir.path())
            .env("TMPDIR", dir.path())
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("LocalStack starts");
        let mut ls = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if health(port).is_some_and(|h| {
                h.contains("\"s3\": \"available\"") || h.contains("\"s3\": \"running\"")
            }) {
                return ls;
            }
            if let Ok(Some(status)) = ls.child.try_wait() {
                panic!("LocalStack exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "LocalStack did not start within 90 s"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// A signer for `bucket` on this LocalStack.
    pub(crate) fn signer(&self, bucket: &str) -> SigV4Signer {
        SigV4Signer::new(bucket, "us-east-1", KEY_ID, Secret::new(SECRET))
            .with_endpoint(url::Url::parse(&self.endpoint).unwrap(), true)
    }

    /// Creates `bucket`.
    pub(crate) async fn create_bucket(&self, bucket: &str) {
        let url = self
            .signer(bucket)
            .presign(
                "PUT",
                &format!("{}/{bucket}", self.endpoint),
                &[],
                Duration::from_secs(60),
                SystemTime::now(),
            )
            .unwrap();
        let r = reqwest::Client::new().put(url).send().await.unwrap();
        assert!(r.status().is_success(), "create bucket: {}", r.status());
    }

    /// The object's bytes (a presigned GET), or `None` when there is none.
    pub(crate) async fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let signer = self.signer(bucket);
        let url = signer
            .presign(
                "GET",
                &signer.object_url(key),
                &[],
                Duration::from_secs(60),
                SystemTime::now(),
            )
            .unwrap();
        let r = reqwest::Client::new().get(url).send().await.unwrap();
        match r.status().as_u16() {
            200 => Some(r.bytes().await.unwrap().to_vec()),
            404 => None,
            s => panic!("GET {key}: HTTP {s}"),
        }
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
