//! The `hoist` binary as a user runs it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::support;

pub(crate) struct Env {
    pub(crate) config: tempfile::TempDir,
    data: tempfile::TempDir,
    pub(crate) keychain_service: String,
}

impl Env {
    pub(crate) fn new() -> Self {
        Self {
            config: tempfile::tempdir().unwrap(),
            data: tempfile::tempdir().unwrap(),
            keychain_service: format!("hoist-cli-test-{}", uuid::Uuid::new_v4()),
        }
    }

    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hoist"));
        c.args(args)
            .env("HOIST_CONFIG_DIR", self.config.path())
            .env("HOIST_DATA_DIR", self.data.path())
            .env("HOIST_KEYCHAIN_SERVICE", &self.keychain_service)
            // The machine's own managed profiles (/etc/hoist/profiles.d) stay out of tests.
            .env("HOIST_MANAGED_DIR", self.managed_dir())
            .env_remove("HOIST_PROFILE")
            .env_remove("HOIST_LOG");
        c
    }

    /// The machine-wide directory of managed profiles this environment's runs read.
    pub(crate) fn managed_dir(&self) -> std::path::PathBuf {
        self.config.path().join("machine-profiles.d")
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("hoist runs")
    }

    /// Runs `hoist ARGS` with `input` on its standard input (a pipe, as a script gives it).
    pub(crate) fn run_with_input(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hoist runs");
        child
            .stdin
            .take()
            .expect("a piped stdin")
            .write_all(input.as_bytes())
            .expect("hoist reads its input");
        child.wait_with_output().expect("hoist runs")
    }

    /// Adds the default self-sign profile `name` for `store` (with `extra` arguments) and
    /// stores its secret in the keychain, which it returns (to delete the secret afterwards).
    fn self_sign_profile(
        &self,
        store: &support::Store,
        name: &str,
        extra: &[&str],
    ) -> hoist::secret::Keychain {
        let endpoint = store.store.endpoint().to_string();
        let mut args = vec![
            "profile",
            "add",
            name,
            "--bucket",
            "test-bucket",
            "--region",
            "us-east-1",
            "--endpoint",
            &endpoint,
            "--path-style",
            "--access-key-id",
            support::ACCESS_KEY_ID,
            "--default",
        ];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let kc = hoist::secret::Keychain::new(&self.keychain_service);
        kc.set(
            name,
            hoist::secret::SecretKind::SecretAccessKey,
            &hoist::secret::Secret::new(support::SECRET_ACCESS_KEY),
        )
        .expect("a Secret Service must be running");
        kc
    }
}

/// Runs `cmd` (`hoist upload --json` of one file holding `content`) off the async workers,
/// deletes the profile's secret from the keychain, and checks that it succeeded and the bytes
/// landed; its output and JSON line.
async fn upload_lands(
    mut cmd: Command,
    (kc, profile): (&hoist::secret::Keychain, &str),
    store: &support::Store,
    content: &[u8],
) -> (Output, serde_json::Value) {
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    kc.delete(profile, hoist::secret::SecretKind::SecretAccessKey)
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        store.stored_sha256(line["key"].as_str().unwrap()),
        Some(support::sha256_hex(content))
    );
    (out, line)
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn upload_on_the_embedded_default_reports_json_and_exit_code() {
    let env = Env::new();
    let files = tempfile::tempdir().unwrap();
    let a = support::bytes(123_456, 1);
    let b = b"plain text\n".to_vec();
    let pa = support::write(files.path(), "a.bin", &a);
    let pb = support::write(files.path(), "b.txt", &b);
    let missing = files.path().join("gone.txt");
    let out = env.run(&[
        "upload",
        "--json",
        pa.to_str().unwrap(),
        pb.to_str().unwrap(),
        missing.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "one file failed: {}",
        text(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    // A line per file as each finishes (in the order they finish): found by path.
    let line_of = |p: &std::path::Path| {
        lines
            .iter()
            .find(|l| l["path"] == p.to_str().unwrap())
            .unwrap_or_else(|| panic!("no line for {}", p.display()))
    };
    for (line, content) in [line_of(&pa), line_of(&pb)].into_iter().zip([&a, &b]) {
        assert_eq!(line["status"], "uploaded");
        assert_eq!(line["size"], content.len() as u64);
        assert_eq!(
            line["checksum"],
            format!("sha256:{}", support::sha256_hex(content))
        );
        let key = line["key"].as_str().unwrap();
        assert!(key.starts_with("uploads/"), "{key}");
        let stored = env.data.path().join("store/hoist-local").join(key);
        assert_eq!(
            support::sha256_hex(&std::fs::read(&stored).unwrap()),
            support::sha256_hex(content)
        );
    }
    let failed = line_of(&missing);
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"].as_str().unwrap().contains("not found"));
}

#[test]
fn text_summary_lists_key_size_checksum_and_failures() {
    let env = Env::new();
    let files = tempfile::tempdir().unwrap();
    let p = support::write(files.path(), "hello.txt", b"hello\n");
    let out = env.run(&["upload", p.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("uploads/") && stdout.contains("6 bytes"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&support::sha256_hex(b"hello\n")),
        "{stdout}"
    );
    assert!(stdout.contains("1 uploaded, 0 failed"), "{stdout}");

    let empty = support::write(files.path(), "empty.txt", b"");
    let out = env.run(&["upload", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("is empty"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("empty.txt"),
        "failed files listed: {}",
        text(&out.stderr)
    );
}

#[test]
fn profiles_are_added_listed_shown_and_removed() {
    let env = Env::new();
    let out = env.run(&[
        "profile",
        "add",
        "bad",
        "--bucket",
        "Bad_Bucket",
        "--region",
        "us-east-1",
        "--access-key-id",
        "AKID",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not a valid S3 bucket name"),
        "{}",
        text(&out.stderr)
    );

    let out = env.run(&[
        "profile",
        "add",
        "staff",
        "--backend",
        "https://uploads.example.com/api/upload",
        "--max-size",
        "10MB",
        "--allow-type",
        "image/*",
        "--default",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = env.run(&[
        "profile",
        "add",
        "admin",
        "--bucket",
        "my-bucket",
        "--region",
        "eu-west-1",
        "--endpoint",
        "http://127.0.0.1:9000",
        "--path-style",
        "--access-key-id",
        "AKIDEXAMPLE",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("hoist secret set admin"));

    let list = text(&env.run(&["profile", "list"]).stdout);
    assert!(list.contains("* staff") && list.contains("admin"), "{list}");
    let show: serde_json::Value =
        serde_json::from_slice(&env.run(&["profile", "show", "staff", "--json"]).stdout).unwrap();
    assert_eq!(show["mode"], "backend");
    assert_eq!(show["max_size"], 10_000_000);
    assert_eq!(show["allowed_types"][0], "image/*");

    let out = env.run(&["profile", "remove", "staff"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = env.run(&["profile", "show", "staff"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no profile named 'staff'"));
}

#[test]
fn secret_set_reads_stdin_into_the_keychain_not_the_profile_file() {
    let env = Env::new();
    let out = env.run(&[
        "profile",
        "add",
        "admin",
        "--bucket",
        "my-bucket",
        "--region",
        "eu-west-1",
        "--access-key-id",
        "AKIDEXAMPLE",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let secret = "cli-secret-value-0123456789";
    let out = env.run_with_input(&["secret", "set", "admin"], &format!("{secret}\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let kc = hoist::secret::Keychain::new(&env.keychain_service);
    assert_eq!(
        kc.get("admin", hoist::secret::SecretKind::SecretAccessKey)
            .unwrap()
            .map(|s| s.expose().to_string()),
        Some(secret.to_string())
    );
    let show = text(&env.run(&["profile", "show", "admin"]).stdout);
    assert!(
        show.contains("stored in the keychain") && !show.contains(secret),
        "{show}"
    );
    for f in support::all_files(env.config.path()) {
        assert!(
            !std::fs::read_to_string(&f).unwrap().contains(secret),
            "secret in {}",
            f.display()
        );
    }
    let out = env.run(&["profile", "remove", "admin"]);
    assert!(out.status.success());
    assert_eq!(
        kc.get("admin", hoist::secret::SecretKind::SecretAccessKey)
            .unwrap(),
        None,
        "removed with the profile"
    );
}

#[test]
fn help_documents_every_command() {
    let env = Env::new();
    for (args, needles) in [
        (vec!["--help"], vec!["upload", "profile", "secret"]),
        (
            vec!["upload", "--help"],
            vec!["--profile", "--json", "exits 0"],
        ),
        (
            vec!["profile", "add", "--help"],
            vec![
                "--bucket",
                "--region",
                "--endpoint",
                "--path-style",
                "--access-key-id",
                "--backend",
                "--protocol",
                "--max-size",
                "--allow-type",
                "--concurrency",
            ],
        ),
        (vec!["secret", "set", "--help"], vec!["stdin", "--kind"]),
    ] {
        let out = env.run(&args);
        assert!(out.status.success());
        let help = text(&out.stdout);
        for n in needles {
            assert!(
                help.contains(n),
                "`hoist {}` lacks {n}:\n{help}",
                args.join(" ")
            );
        }
    }
    let _ = Path::new("");
}

/// #30: a profile the organisation manages (a machine-wide file) is listed as managed, is the
/// default uploads use, and staff can neither change, remove nor shadow it, nor choose another
/// default; its secret still comes from the keychain only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_profile_is_the_default_and_staff_cannot_change_it() {
    let store = support::Store::start().await;
    let env = Env::new();
    std::fs::create_dir_all(env.managed_dir()).unwrap();
    let managed_file = env.managed_dir().join("company.toml");
    std::fs::write(
        &managed_file,
        format!(
            "default = \"company\"\n\n[profiles.company]\nmode = \"self-sign\"\n\
             bucket = \"test-bucket\"\nregion = \"us-east-1\"\nendpoint = \"{}\"\n\
             path_style = true\naccess_key_id = \"{}\"\nprefix = \"managed/\"\n",
            store.store.endpoint(),
            support::ACCESS_KEY_ID
        ),
    )
    .unwrap();
    let out = env.run(&[
        "profile",
        "add",
        "mine",
        "--backend",
        "https://mine.example.com/up",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let list = text(&env.run(&["profile", "list"]).stdout);
    let company = list
        .lines()
        .find(|l| l.contains("company"))
        .unwrap_or_default();
    assert!(
        company.starts_with("* company"),
        "the managed default: {list}"
    );
    assert!(
        company.contains("managed by your organisation")
            && company.contains(managed_file.to_str().unwrap()),
        "{list}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&env.run(&["profile", "list", "--json"]).stdout).unwrap();
    let mine = json
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "mine")
        .unwrap();
    assert!(mine["managed_by"].is_null(), "{json}");

    for args in [
        &["profile", "remove", "company"][..],
        &[
            "profile",
            "add",
            "company",
            "--backend",
            "https://evil.example.com/up",
        ][..],
    ] {
        let out = env.run(args);
        assert!(!out.status.success(), "{args:?} was allowed");
        let err = text(&out.stderr);
        assert!(
            err.contains("managed by your organisation") && err.contains("ask your administrator"),
            "{args:?}: {err}"
        );
    }
    let out = env.run(&["profile", "default", "mine"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("your organisation made 'company' the default profile"),
        "{}",
        text(&out.stderr)
    );
    let user_file = std::fs::read_to_string(env.config.path().join("profiles.toml")).unwrap();
    assert!(!user_file.contains("company"), "{user_file}");

    // Review of #30: a token for a managed profile that sends none was stored, then refused
    // (the profile could not be changed to send it): refused before anything is stored.
    std::fs::write(
        env.managed_dir().join("portal.toml"),
        "[profiles.portal]\nmode = \"backend\"\nurl = \"https://portal.example.com/up\"\n",
    )
    .unwrap();
    let out = env.run_with_input(
        &["secret", "set", "portal", "--kind", "bearer-token"],
        "a-token-nobody-sends-0123456789\n",
    );
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("managed by your organisation"),
        "{}",
        text(&out.stderr)
    );
    let kc = hoist::secret::Keychain::new(&env.keychain_service);
    assert!(
        kc.get("portal", hoist::secret::SecretKind::BearerToken)
            .unwrap()
            .is_none(),
        "nothing was stored"
    );

    // Uploads go to the managed default, signed with the secret staff stored in the keychain.
    let kc = hoist::secret::Keychain::new(&env.keychain_service);
    kc.set(
        "company",
        hoist::secret::SecretKind::SecretAccessKey,
        &hoist::secret::Secret::new(support::SECRET_ACCESS_KEY),
    )
    .expect("a Secret Service must be running");
    let files = tempfile::tempdir().unwrap();
    let content = support::bytes(70_000, 9);
    let p = support::write(files.path(), "report.pdf", &content);
    let cmd = env.cmd(&["upload", "--json", p.to_str().unwrap()]);
    let (_, line) = upload_lands(cmd, (&kc, "company"), &store, &content).await;
    assert!(
        line["key"].as_str().unwrap().starts_with("managed/"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_of_a_self_signed_upload_leak_no_secret() {
    let store = support::Store::start().await;
    let env = Env::new();
    let kc = env.self_sign_profile(&store, "admin", &[]);
    let files = tempfile::tempdir().unwrap();
    let content = support::bytes(300_000, 4);
    let p = support::write(files.path(), "traced.bin", &content);
    let mut cmd = env.cmd(&["upload", "--json", p.to_str().unwrap()]);
    cmd.env("HOIST_LOG", "trace");
    let (out, _) = upload_lands(cmd, (&kc, "admin"), &store, &content).await;

    let logs = text(&out.stderr);
    assert!(
        logs.contains("TRACE") && logs.contains("signing request"),
        "TRACE logs were written"
    );
    assert!(
        !logs.contains(support::SECRET_ACCESS_KEY),
        "secret key in the logs"
    );
    for marker in ["X-Amz-Signature=", "X-Amz-Credential="] {
        for (i, _) in logs.match_indices(marker) {
            let value = &logs[i + marker.len()..];
            assert!(
                value.starts_with("[redacted]"),
                "unredacted {marker}{}",
                &value[..value.len().min(40)]
            );
        }
    }
    for f in support::all_files(env.config.path()) {
        assert!(!std::fs::read_to_string(&f)
            .unwrap()
            .contains(support::SECRET_ACCESS_KEY));
    }
}

#[test]
fn queue_lists_uploads_and_resume_without_work_says_so() {
    let env = Env::new();
    let files = tempfile::tempdir().unwrap();
    let p = support::write(files.path(), "q.txt", b"queued\n");
    assert!(env.run(&["upload", p.to_str().unwrap()]).status.success());
    let items: serde_json::Value =
        serde_json::from_slice(&env.run(&["queue", "--json"]).stdout).unwrap();
    assert_eq!(items[0]["state"], "done");
    assert_eq!(
        items[0]["path"],
        p.canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(items[0]["sha256"], support::sha256_hex(b"queued\n"));

    let out = env.run(&["upload"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("nothing to upload"),
        "{}",
        text(&out.stderr)
    );
    let out = env.run(&["cancel", "--all"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("no unfinished upload matched"));
}

/// Removing a profile while no keychain answers removes the profile and warns about the
/// secrets left behind (the CLI and the app share this), instead of stopping half-way.
#[test]
fn removing_a_profile_without_a_keychain_removes_it_and_warns() {
    let env = Env::new();
    let add = env.run(&[
        "profile",
        "add",
        "staff",
        "--backend",
        "https://uploads.example.com/api/upload",
        "--token",
    ]);
    assert!(add.status.success(), "{}", text(&add.stderr));
    let out = env
        .cmd(&["profile", "remove", "staff"])
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/hoist-no-bus",
        )
        .output()
        .expect("hoist runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("removed profile 'staff'"));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning: could not delete bearer-token from the keychain"),
        "{stderr}"
    );
    let list = env.run(&["profile", "list"]);
    assert!(
        !text(&list.stdout).contains("staff"),
        "{}",
        text(&list.stdout)
    );
}

/// The core says what is missing; the command line adds how to fix it, naming its own command.
#[test]
fn a_missing_secret_is_reported_with_the_command_that_stores_it() {
    let env = Env::new();
    let add = env.run(&[
        "profile",
        "add",
        "admin",
        "--bucket",
        "company-uploads",
        "--region",
        "us-east-1",
        "--access-key-id",
        "AKIDEXAMPLE",
        "--default",
    ]);
    assert!(add.status.success(), "{}", text(&add.stderr));
    let files = tempfile::tempdir().unwrap();
    let path = support::write(files.path(), "a.txt", b"a");
    let out = env.run(&["upload", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr).trim(),
        "error: no secret-access-key is stored for profile 'admin'; store it with \
         `hoist secret set admin --kind secret-access-key`"
    );
}

/// A store may accept a server-side encryption setting and ignore it (s3s-fs does on multipart
/// uploads, Garage always): the upload lands, the JSON says what the store reported, and a
/// warning says the encryption the profile asks for was not confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_the_store_does_not_confirm_is_warned_about() {
    let store = support::Store::start().await;
    let env = Env::new();
    let kc = env.self_sign_profile(&store, "sealed", &["--sse", "AES256"]);
    let files = tempfile::tempdir().unwrap();
    let content = support::bytes(12 * 1024 * 1024, 6);
    let p = support::write(files.path(), "large.bin", &content);
    let mut cmd = env.cmd(&["upload", "--json", p.to_str().unwrap()]);
    cmd.env("HOIST_MULTIPART_THRESHOLD", "8MiB")
        .env("HOIST_PART_SIZE", "5MiB");
    let (out, line) = upload_lands(cmd, (&kc, "sealed"), &store, &content).await;
    assert_eq!(line["encryption"], serde_json::Value::Null, "{line}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning: the storage did not confirm AES256 encryption"),
        "{stderr}"
    );
}

/// Staff behind a company proxy set in the environment (as IT does with HTTP_PROXY): every
/// request of a multipart upload goes through it (tinyproxy's log), under `--limit-rate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_follow_the_environment_proxy_under_a_rate_limit() {
    let store = support::Store::start().await;
    let proxy = support::network::Tinyproxy::start(None);
    let env = Env::new();
    let kc = env.self_sign_profile(&store, "behind-proxy", &[]);
    let files = tempfile::tempdir().unwrap();
    let content = support::bytes(11 * 1024 * 1024, 8);
    let p = support::write(files.path(), "through.bin", &content);
    let mut cmd = env.cmd(&[
        "upload",
        "--json",
        "--limit-rate",
        "64MB",
        p.to_str().unwrap(),
    ]);
    cmd.env("HTTP_PROXY", &proxy.url)
        .env("HOIST_MULTIPART_THRESHOLD", "8MiB")
        .env("HOIST_PART_SIZE", "5MiB");
    let (_, line) = upload_lands(cmd, (&kc, "behind-proxy"), &store, &content).await;
    let key = line["key"].as_str().unwrap();
    let requests = proxy.requests();
    let store_url = store.store.endpoint().to_string();
    let object = format!("{}/test-bucket/{key}", store_url.trim_end_matches('/'));
    for expected in ["POST", "PUT"] {
        assert!(
            requests
                .iter()
                .any(|r| r.starts_with(&format!("{expected} {object}"))),
            "{expected} of {object} went through the proxy: {requests:?}"
        );
    }
    for part in 1..=3 {
        assert!(
            requests
                .iter()
                .any(|r| r.contains(&format!("partNumber={part}"))),
            "part {part} went through the proxy: {requests:?}"
        );
    }
}

/// A store whose name does not resolve: the error says it was DNS, what to check, and what
/// to tell IT (it said "error sending request").
#[test]
fn a_name_that_does_not_resolve_is_reported_as_dns() {
    let env = Env::new();
    let out = env.run(&[
        "profile",
        "add",
        "nowhere",
        "--bucket",
        "test-bucket",
        "--region",
        "us-east-1",
        "--endpoint",
        "http://hoist-store.invalid:9000",
        "--path-style",
        "--access-key-id",
        support::ACCESS_KEY_ID,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let kc = hoist::secret::Keychain::new(&env.keychain_service);
    kc.set(
        "nowhere",
        hoist::secret::SecretKind::SecretAccessKey,
        &hoist::secret::Secret::new(support::SECRET_ACCESS_KEY),
    )
    .expect("a Secret Service must be running");
    let files = tempfile::tempdir().unwrap();
    let p = support::write(files.path(), "a.txt", b"hello\n");
    let out = env.run(&["upload", "--profile", "nowhere", p.to_str().unwrap()]);
    kc.delete("nowhere", hoist::secret::SecretKind::SecretAccessKey)
        .unwrap();
    assert!(!out.status.success());
    let said = text(&out.stdout);
    assert!(
        said.contains("the storage server's name hoist-store.invalid could not be resolved (DNS)")
            && said.contains("tell IT"),
        "{said}"
    );
}

/// Regression (found running the Windows build's checks): `hoist profile show … | grep -q`
/// panicked with "failed printing to stdout" once grep had stopped reading.
#[cfg(unix)]
#[test]
fn a_reader_that_stops_early_ends_hoist_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let env = Env::new();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = env
        .cmd(&["profile", "show", "local"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
        .wait_with_output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);
}

/// Issue #17 (a folder of 100,000 files): killed (SIGKILL) in the middle of a folder, the next
/// run sends only what had not landed. What is sent twice is at most the files that were in
/// flight when it died — stored, but not yet recorded — and every file lands once, intact.
#[test]
fn a_folder_killed_midway_resumes_without_sending_landed_files_again() {
    let env = Env::new();
    let folder = tempfile::tempdir().unwrap();
    let files = 1500usize;
    for i in 0..files {
        let dir = folder.path().join(format!("d{}", i / 500));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("f{i:04}.txt")), format!("file {i}\n")).unwrap();
    }
    let db = env.data.path().join("queue.sqlite3");
    // (queued, done)
    let counts = |db: &Path| -> (usize, usize) {
        hoist::queue::Queue::open(db)
            .and_then(|q| q.recent(files * 2))
            .map(|items| {
                let done = items
                    .iter()
                    .filter(|i| i.state == hoist::queue::ItemState::Done)
                    .count();
                (items.len(), done)
            })
            .unwrap_or((0, 0))
    };
    let done = |db: &Path| counts(db).1;
    let mut child = env
        .cmd(&["upload", "--json", folder.path().to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    // Killed once the folder is queued (it is, within moments, while the first files upload)
    // and a quarter of it has landed.
    loop {
        let (queued, landed) = counts(&db);
        if queued == files && landed >= files / 4 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the upload ended before it could be killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let recorded = done(&db);
    let store = env.data.path().join("store").join("hoist-local");
    // Objects only (s3s-fs writes each in full, then renames it into place).
    let objects = |store: &Path| -> Vec<std::path::PathBuf> {
        support::all_files(store)
            .into_iter()
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect()
    };
    let stored_at_kill = objects(&store).len();
    assert!(
        recorded < files,
        "killed after every file was recorded: nothing to resume"
    );

    let out = env.run(&["upload", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent_again: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        sent_again.iter().all(|l| l["status"] == "uploaded"),
        "{sent_again:?}"
    );
    assert_eq!(
        recorded + sent_again.len(),
        files,
        "the second run sends exactly what the first did not record"
    );
    let twice = stored_at_kill - recorded;
    assert!(
        twice <= hoist::profile::DEFAULT_CONCURRENCY,
        "{twice} files were sent twice: more than were in flight ({} at once)",
        hoist::profile::DEFAULT_CONCURRENCY
    );
    let landed = objects(&store);
    assert_eq!(landed.len(), files, "every file landed once");
    let mut contents: Vec<String> = landed
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    contents.sort();
    let mut expected: Vec<String> = (0..files).map(|i| format!("file {i}\n")).collect();
    expected.sort();
    assert_eq!(contents, expected, "each file landed intact");
    assert_eq!(done(&db), files);
}
