//! What a company deploys beside the binary: the systemd unit, as systemd reads it.

/// `server/deploy/hoist-server.service` passes `systemd-analyze verify` without a warning, with
/// its `ExecStart` pointed at the binary just built (verify checks that it can be run).
#[test]
fn the_systemd_unit_verifies() {
    // At run time, as cargo gives it (tests/integration/support's manifest_dir says why).
    let package = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || env!("CARGO_MANIFEST_DIR").into(),
        std::path::PathBuf::from,
    );
    let unit = std::fs::read_to_string(package.join("deploy/hoist-server.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/hoist-server --config %d/config.toml"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hoist-server.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/hoist-server",
            env!("CARGO_BIN_EXE_hoist-server"),
        ),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian's systemd package) is needed for this test");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
}

/// #30: `systemd-analyze security` scored the unit 3.5 (no system call filter, clock, kernel
/// logs, hostname, realtime, /proc or umask protection); it must stay at 2.0 or below.
#[test]
fn the_systemd_unit_is_hardened() {
    let package = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || env!("CARGO_MANIFEST_DIR").into(),
        std::path::PathBuf::from,
    );
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20", "--no-pager"])
        .arg(package.join("deploy/hoist-server.service"))
        .output()
        .expect("systemd-analyze (Debian's systemd package) is needed for this test");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exposure over 2.0:\n{}",
        report
            .lines()
            .filter(|l| l.contains('✗') || l.contains("Overall"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Regression (#30): following the unit's install steps (config `0640` root's, in a `0750`
/// directory) with `DynamicUser=yes` gave "cannot read …/config.toml: Permission denied" in a
/// restart loop. The unit now hands the service its own copy (`LoadCredential`), as systemd
/// does: a file only the service's user may read, in a directory of its own. Run as that kind
/// of user (an unprivileged uid), the server starts and answers.
#[test]
fn the_service_user_reads_its_config_as_the_unit_hands_it_over() {
    use std::os::unix::fs::{chown, PermissionsExt};
    use std::os::unix::process::CommandExt;
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("skipped: only root can run the server as another user here");
        return;
    }
    const SERVICE_UID: u32 = 61_234; // what DynamicUser picks from (61184–65519)
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).unwrap();
    let config = credentials.join("config.toml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\n[[tokens]]\nid = \"ci\"\nsha256 = \"{}\"\nprefix = \"ci/\"\n",
            hoist_server::token::hash_token("a-token-for-the-deploy-test-0123456789")
        ),
    )
    .unwrap();
    for (path, mode) in [(&config, 0o400), (&credentials, 0o500)] {
        chown(path, Some(SERVICE_UID), Some(SERVICE_UID)).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    chown(&store, Some(SERVICE_UID), Some(SERVICE_UID)).unwrap();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_hoist-server"))
        .arg("--config")
        .arg(&config)
        .arg("--embedded-store")
        .arg(&store)
        .uid(SERVICE_UID)
        .gid(SERVICE_UID)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let healthy = loop {
        if let Ok(Some(status)) = server.try_wait() {
            let mut err = String::new();
            use std::io::Read as _;
            server
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("hoist-server exited ({status}): {err}");
        }
        let answer = std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .and_then(|mut s| {
                use std::io::{Read as _, Write as _};
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .ok()?;
                let mut out = String::new();
                s.read_to_string(&mut out).ok()?;
                Some(out)
            });
        if let Some(a) = answer {
            break a;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "hoist-server did not listen within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let _ = server.kill();
    let _ = server.wait();
    assert!(healthy.starts_with("HTTP/1.1 200"), "{healthy}");
}
