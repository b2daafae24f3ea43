//! The layering docs/ARCHITECTURE.md draws, checked on the source: no module of the core uses
//! one from a layer above it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The core's layers, lowest first (docs/ARCHITECTURE.md).
const LAYERS: &[&[&str]] = &[
    &[
        "error", "files", "checksum", "object", "profile", "secret", "key", "validate", "queue",
        "retry", "redact", "memory",
    ],
    &["sign"],
    &["remote"],
    &["backend", "remote::s3", "local"],
    &["upload"],
    &["session", "sweep"],
    &["app"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The module a `crate::…` path names, as the layers see it (`remote::s3` is its own).
fn module_of(path: &str) -> String {
    let mut parts = path.split("::");
    let top = parts.next().unwrap_or_default();
    match (top, parts.next()) {
        ("remote", Some("s3")) => "remote::s3".to_string(),
        _ => top.to_string(),
    }
}

/// The module a source file belongs to (`src/remote/s3.rs` → `remote::s3`).
fn module_of_file(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    match parts.as_slice() {
        [one] if one == "lib" => None,
        [first, ..] if first == "bin" => None,
        [first, second] if first == "remote" && second == "s3" => Some("remote::s3".into()),
        [first, ..] => Some(first.clone()),
        [] => None,
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    out
}

/// Every `crate::a::b` path in the code of `text` (`use` lines and code alike; comments, doc
/// links among them, are not dependencies).
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let code = text.lines().filter(|l| !l.trim_start().starts_with("//"));
    for line in code {
        found.extend(paths_in_line(line));
    }
    found
}

fn paths_in_line(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, _) in line.match_indices("crate::") {
        let rest = &line[i + "crate::".len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let path = rest[..end].trim_end_matches(':');
        if !path.is_empty() {
            found.push(path.to_string());
        }
    }
    found
}

#[test]
fn no_module_uses_one_from_a_layer_above_it() {
    let src = crate::support::manifest_dir().join("src");
    let mut violations = Vec::new();
    let mut checked = 0;
    for file in rust_files(&src) {
        let Some(module) = module_of_file(&src, &file) else {
            continue;
        };
        let own = layer_of(&module).unwrap_or_else(|| {
            panic!("{module} is in no layer: add it to LAYERS and ARCHITECTURE.md")
        });
        let text = std::fs::read_to_string(&file).unwrap();
        for path in crate_paths(&text) {
            let used = module_of(&path);
            let Some(theirs) = layer_of(&used) else {
                continue; // a crate-root item (a re-export)
            };
            checked += 1;
            if theirs > own {
                violations.push(format!("{} uses crate::{path}", file.display()));
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} uses found: is the scan broken?"
    );
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn the_scan_sees_an_upward_use() {
    let paths = crate_paths("use crate::app::Manager;\nlet x = crate::upload::parts::MAX_PARTS;");
    let modules: Vec<String> = paths.iter().map(|p| module_of(p)).collect();
    assert_eq!(modules, vec!["app", "upload"]);
    assert!(layer_of("app") > layer_of("queue"));
    assert_eq!(module_of("remote::s3::S3Client"), "remote::s3");
}
