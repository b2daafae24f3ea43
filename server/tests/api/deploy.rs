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
    assert!(unit.contains("ExecStart=/usr/local/bin/hoist-server --config"));
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
