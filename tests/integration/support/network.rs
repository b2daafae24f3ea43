//! A company network on 127.0.0.1: a TLS front for the store with a CA of the test's own,
//! Debian's tinyproxy (with basic authentication and a log of every request), and mitmproxy
//! (a TLS-intercepting proxy with its own CA).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio::net::{TcpListener, TcpStream};

/// The issuer name of the test CA, as certificates print it.
pub(crate) const TEST_CA_NAME: &str = "Hoist Test Company CA";

/// A TLS endpoint in front of the store: bytes pass through unchanged (the `Host` the client
/// signed is the one the store checks).
pub(crate) struct TlsFront {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The CA that issued its certificate (PEM).
    pub ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsFront {
    pub(crate) async fn start(upstream: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, TEST_CA_NAME);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let mut leaf =
            CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "store.test");
        leaf.use_authority_key_identifier_extension = true;
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        let ca_file = dir.path().join("company-ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();

        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap(),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream: SocketAddr = url::Url::parse(upstream)
            .unwrap()
            .socket_addrs(|| None)
            .unwrap()[0];
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    if let Ok(mut store) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut store).await;
                    }
                });
            }
        });
        Self {
            url: format!("https://127.0.0.1:{}", addr.port()),
            ca_file,
            _dir: dir,
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited at start ({status})");
        }
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's tinyproxy on 127.0.0.1, logging every request it forwards.
pub(crate) struct Tinyproxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    log: PathBuf,
    _process: Running,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    /// Starts it; with `user`, it asks for that user name and password.
    pub(crate) fn start(user: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = dir.path().join("tinyproxy.log");
        let auth = user
            .map(|(u, p)| format!("BasicAuth {u} {p}\n"))
            .unwrap_or_default();
        let conf = dir.path().join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 600\nLogFile \"{}\"\nLogLevel Connect\n\
                 MaxClients 200\n{auth}",
                log.display()
            ),
        )
        .unwrap();
        let mut child = Command::new("tinyproxy")
            .args(["-d", "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy is installed (scripts/deps test installs Debian's tinyproxy-bin)");
        wait_for_port(port, &mut child, "tinyproxy");
        Self {
            url: format!("http://127.0.0.1:{port}"),
            log,
            _process: Running(child),
            _dir: dir,
        }
    }

    /// The request lines it received (`PUT http://… HTTP/1.1`, `CONNECT host:port …`).
    pub(crate) fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once("): ").map(|(_, r)| r.to_string()))
            .filter(|r| r.contains(" HTTP/"))
            .collect()
    }
}

/// mitmproxy (`mitmdump`) on 127.0.0.1: it opens every TLS connection and re-signs it with
/// its own CA, trusting only `upstream_ca` upstream.
pub(crate) struct Mitmproxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its CA (PEM), which a company would deploy to staff machines.
    pub ca_file: PathBuf,
    _process: Running,
    _dir: tempfile::TempDir,
}

/// Where `scripts/deps test` installs mitmproxy (`HOIST_MITMPROXY_VENV` overrides).
fn mitmdump() -> PathBuf {
    let venv = std::env::var_os("HOIST_MITMPROXY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/hoist-ci/mitmproxy-venv"));
    venv.join("bin/mitmdump")
}

impl Mitmproxy {
    pub(crate) fn start(upstream_ca: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let program = mitmdump();
        let mut child = Command::new(&program)
            .args([
                "--listen-host",
                "127.0.0.1",
                "--listen-port",
                &port.to_string(),
                "-q",
            ])
            .args(["--set", &format!("confdir={}", dir.path().display())])
            .args([
                "--set",
                &format!("ssl_verify_upstream_trusted_ca={}", upstream_ca.display()),
            ])
            .env_remove("HTTPS_PROXY")
            .env_remove("HTTP_PROXY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{} does not run ({e}): scripts/deps test installs mitmproxy",
                    program.display()
                )
            });
        wait_for_port(port, &mut child, "mitmproxy");
        let ca_file = dir.path().join("mitmproxy-ca-cert.pem");
        assert!(ca_file.exists(), "mitmproxy made its CA");
        Self {
            url: format!("http://127.0.0.1:{port}"),
            ca_file,
            _process: Running(child),
            _dir: dir,
        }
    }
}
