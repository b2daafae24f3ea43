//! The layering docs/ARCHITECTURE.md draws, checked on the source: no module of the core uses
//! one from a layer above it, and no file of the core or of hoist-server takes part in an
//! import circle.

use std::collections::{BTreeMap, BTreeSet};
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
    // The same through `super::` and `self::` paths, file by file.
    for (module, targets) in import_graph(&src) {
        let Some(own) = layer_of(&module_of(&module)) else {
            continue;
        };
        for target in targets {
            if layer_of(&module_of(&target)).is_some_and(|theirs| theirs > own) {
                violations.push(format!("{module} imports {target}"));
            }
        }
    }
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

/// A crate's files as module paths (`src/remote/s3.rs` → `remote::s3`, `src/lib.rs` → ``),
/// each with the modules its code imports through `crate::`, `super::` and `self::` paths
/// (grouped `use` lines expanded). A module's use of its own submodules is composition, not
/// an import, and is left out; so is code under `#[cfg(test)]`.
fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files: BTreeMap<String, PathBuf> = rust_files(src)
        .into_iter()
        .filter_map(|f| {
            let rel = f.strip_prefix(src).ok()?.with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into()).collect();
            if parts.first().is_some_and(|p| p == "bin") {
                return None;
            }
            if parts
                .last()
                .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
            {
                parts.pop();
            }
            Some((parts.join("::"), f))
        })
        .collect();
    let mut graph = BTreeMap::new();
    for (module, file) in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let own: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
        let mut uses = BTreeSet::new();
        for path in module_paths(&without_tests(&text)) {
            let mut segments: Vec<&str> = Vec::new();
            let mut rest = path.split("::").peekable();
            match rest.peek().copied() {
                Some("crate") => {
                    rest.next();
                }
                Some("super") | Some("self") => {
                    // `self` of a file `a/b.rs` is `a::b`; its `super` is `a`. A `mod.rs` is
                    // the folder's module itself.
                    segments.extend(&own);
                    while let Some(step) = rest.peek().copied() {
                        match step {
                            "self" => {}
                            "super" => {
                                segments.pop();
                            }
                            _ => break,
                        }
                        rest.next();
                    }
                }
                _ => continue,
            }
            segments.extend(rest);
            // The longest prefix that is a file of the crate is the module imported from.
            let target = (0..=segments.len())
                .rev()
                .map(|n| segments[..n].join("::"))
                .find(|m| files.contains_key(m));
            if let Some(target) = target {
                let composed = target.starts_with(&format!("{module}::")) || module.is_empty();
                if target != *module && !composed {
                    uses.insert(target);
                }
            }
        }
        graph.insert(module.clone(), uses);
    }
    graph
}

/// `text` up to its `#[cfg(test)]` module, comments dropped.
fn without_tests(text: &str) -> String {
    let code = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default();
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path starting with `crate::`, `super::` or `self::` in `code`, with `use` groups
/// (`use super::{a, b::{c, d}}`) expanded into one path each.
fn module_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for statement in code.split(';') {
        let s = statement.trim();
        let body = s
            .strip_prefix("pub(crate) use ")
            .or_else(|| s.strip_prefix("pub use "))
            .or_else(|| s.strip_prefix("use "))
            .or_else(|| s.split_once("\nuse ").map(|(_, b)| b))
            .or_else(|| s.split_once("\npub use ").map(|(_, b)| b))
            .or_else(|| s.split_once("\npub(crate) use ").map(|(_, b)| b));
        if let Some(body) = body {
            let flat: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            found.extend(expand_use(&flat));
        }
        for root in ["crate::", "super::", "self::"] {
            for (i, _) in s.match_indices(root) {
                let before = s[..i].chars().last();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let rest = &s[i..];
                let end = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(rest.len());
                found.push(rest[..end].trim_end_matches(':').to_string());
            }
        }
    }
    found
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e` (whitespace already removed).
fn expand_use(tree: &str) -> Vec<String> {
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap_or(tree).to_string()];
    };
    let Some(close) = tree.rfind('}').filter(|&c| c > open) else {
        return Vec::new();
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..close];
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|i| !i.is_empty())
        .flat_map(|i| expand_use(&format!("{prefix}{i}")))
        .collect()
}

/// The import circles of `graph`: each strongly connected set of two or more modules.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Kosaraju: finish order on the graph, then sets on the reversed graph.
    fn visit<'a>(
        n: &'a str,
        g: &'a BTreeMap<String, BTreeSet<String>>,
        seen: &mut BTreeSet<&'a str>,
        out: &mut Vec<&'a str>,
    ) {
        if !seen.insert(n) {
            return;
        }
        for m in g.get(n).into_iter().flatten() {
            visit(m, g, seen, out);
        }
        out.push(n);
    }
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for n in graph.keys() {
        visit(n, graph, &mut seen, &mut order);
    }
    let mut reversed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (n, ms) in graph {
        for m in ms {
            reversed.entry(m.clone()).or_default().insert(n.clone());
        }
    }
    let mut seen = BTreeSet::new();
    let mut found = Vec::new();
    for n in order.into_iter().rev() {
        let mut set = Vec::new();
        visit(n, &reversed, &mut seen, &mut set);
        if set.len() > 1 {
            set.sort();
            found.push(set.into_iter().map(String::from).collect());
        }
    }
    found
}

#[test]
fn no_file_of_the_core_or_the_server_is_in_an_import_circle() {
    let root = crate::support::manifest_dir();
    for src in [root.join("src"), root.join("server/src")] {
        let graph = import_graph(&src);
        let edges: usize = graph.values().map(BTreeSet::len).sum();
        assert!(
            edges > 40,
            "only {edges} imports in {}: is the scan broken?",
            src.display()
        );
        assert_eq!(
            circles(&graph),
            Vec::<Vec<String>>::new(),
            "in {}",
            src.display()
        );
    }
}

/// Regression (#28): four circles (server config/policy/s3/verify, routes/state, remote
/// http/network/s3, upload digest/parts) went unseen because the layering check read only
/// `crate::` paths; a `super::` import closing a circle is found now.
#[test]
fn a_new_circle_through_super_and_grouped_uses_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("remote")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod remote;\npub mod upload;\n").unwrap();
    std::fs::write(src.join("remote/mod.rs"), "pub mod http;\npub mod s3;\n").unwrap();
    std::fs::write(
        src.join("remote/http.rs"),
        "use super::s3::{self, Client};\n",
    )
    .unwrap();
    std::fs::write(
        src.join("remote/s3.rs"),
        "use crate::upload::{\n    parts::{hex, PartPlan},\n};\n",
    )
    .unwrap();
    std::fs::write(
        src.join("upload.rs"),
        "pub fn f() { crate::remote::http::get(); }\n",
    )
    .unwrap();
    let graph = import_graph(src);
    assert_eq!(
        circles(&graph),
        vec![vec!["remote::http", "remote::s3", "upload"]],
        "{graph:#?}"
    );
    // Without the edge that closes it, none.
    std::fs::write(src.join("upload.rs"), "pub fn f() {}\n").unwrap();
    assert!(circles(&import_graph(src)).is_empty());
}

/// Files stay small enough to read: no file of the core or the server has over 600 lines
/// before its tests, unless its docs say it holds one concept ("One concept, one file").
#[test]
fn no_file_is_over_600_lines_unless_it_holds_one_concept() {
    let root = crate::support::manifest_dir();
    let mut long = Vec::new();
    for src in [root.join("src"), root.join("server/src")] {
        for file in rust_files(&src) {
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let lines = code.lines().count();
            if lines > 600 && !code.contains("One concept, one file") {
                long.push(format!("{}: {lines} lines", file.display()));
            }
        }
    }
    assert!(long.is_empty(), "split these by concept: {long:#?}");
}

/// #27: one module writes an upload's lifecycle. The queue's statements that change an item's
/// state or its parts are in `src/queue/lifecycle.rs` only (its methods are private to it, and
/// no other file may hold such SQL either: a `retire_moved` in the queue's reader once did).
#[test]
fn only_the_lifecycle_changes_an_items_state_or_parts() {
    let root = crate::support::manifest_dir().join("src");
    // Any change of an item but its dismissal from the view, and any change of its parts.
    let writes = [
        "update items set",
        "delete from parts",
        "insert into parts",
        "replace into parts",
    ];
    let mut found = Vec::new();
    for file in rust_files(&root) {
        if file.ends_with("queue/lifecycle.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let flat = code
            .to_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for w in writes {
            let hits = flat
                .match_indices(w)
                .filter(|(at, _)| !flat[at + w.len()..].starts_with(" dismissed = 1"))
                .count();
            if hits > 0 {
                found.push(format!("{}: {w}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "write these through queue::Lifecycle: {found:#?}"
    );
}
