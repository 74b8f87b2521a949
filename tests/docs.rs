//! Docs that CI holds true: the layer rules docs/ARCHITECTURE.md gives as commands print
//! nothing, and every source path the docs name exists (docs/ARCHITECTURE.md, docs/API.md,
//! docs/BENCHMARKS.md, README.md, and the doc and line comments of `src/`). A rename that
//! leaves a page behind fails here.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The commands of docs/ARCHITECTURE.md that must print nothing: its indented lines that
/// start with `grep ` or `for `.
fn rules() -> Vec<String> {
    read("docs/ARCHITECTURE.md")
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .filter(|l| l.starts_with("grep ") || l.starts_with("for "))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_layer_rules_of_the_architecture_page_hold() {
    let rules = rules();
    assert!(rules.len() >= 6, "the page lists its rules: {rules:?}");
    for rule in rules {
        let out = Command::new("bash")
            .arg("-c")
            .arg(&rule)
            .current_dir(repo())
            .output()
            .expect("bash runs");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(stderr.is_empty(), "`{rule}` failed to run: {stderr}");
        assert!(
            stdout.is_empty(),
            "`{rule}` finds what the rule forbids:\n{stdout}"
        );
    }
}

/// Roots a path in the docs may start with, relative to the repository.
const ROOTS: &[&str] = &[
    "src/", "tests/", "benches/", "fuzz/", "config/", "docs/", ".ci/",
];
/// Module folders the docs name without `src/` (`actors/conn.rs`).
const IN_SRC: &[&str] = &[
    "actors/", "wire/", "bus/", "storage/", "signer/", "rgb/", "bin/",
];

/// The source paths named in `text`: words that start with a root of the repository, or with a
/// module folder and end in `.rs` or `/` (templates with `<…>`, globs and URLs are skipped).
/// A path starting with `../` is taken from `docs/`.
fn paths(text: &str) -> Vec<String> {
    let cut = |c: char| c.is_whitespace() || "`()[],;:\"'|=".contains(c);
    let mut out = Vec::new();
    for word in text.split(cut) {
        let word = word.trim_end_matches(['.', '!', '?']);
        let word = word.strip_prefix("../").unwrap_or(word);
        if word.contains(['<', '>', '*', '…', '{', '$', '~', '#'])
            || word.contains("://")
            || !word.contains('/')
        {
            continue;
        }
        if ROOTS.iter().any(|r| word.starts_with(r)) {
            out.push(word.to_string());
        } else if IN_SRC.iter().any(|r| word.starts_with(r))
            && (word.ends_with(".rs") || word.ends_with('/'))
        {
            out.push(format!("src/{word}"));
        }
    }
    out
}

/// The comment lines of a source file (`//`, `//!`, `///`).
fn comments(src: &str) -> String {
    src.lines()
        .filter(|l| l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every path named in the docs and in `src/`'s comments that does not exist, as
/// "where: path".
fn missing_paths(root: &Path) -> Vec<String> {
    let mut sources: Vec<(String, String)> = [
        "docs/ARCHITECTURE.md",
        "docs/API.md",
        "docs/BENCHMARKS.md",
        "README.md",
    ]
    .iter()
    .map(|d| {
        (
            d.to_string(),
            std::fs::read_to_string(root.join(d)).unwrap(),
        )
    })
    .collect();
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let rel = f.strip_prefix(root).unwrap().display().to_string();
        sources.push((rel, comments(&text)));
    }
    let mut missing = Vec::new();
    for (name, text) in sources {
        for p in paths(&text) {
            if !root.join(&p).exists() {
                missing.push(format!("{name}: {p}"));
            }
        }
    }
    missing.sort();
    missing.dedup();
    missing
}

/// The module paths named in `text` (`wire::ln::peer::Session`, `crate::bus::Subscribers`):
/// words of `::`-separated identifiers whose first (after `crate::` or `lnpbp_nodes::`) is a
/// top module of the crate.
fn module_paths(text: &str) -> Vec<Vec<String>> {
    const TOP: &[&str] = &[
        "wire", "bus", "actors", "storage", "signer", "rgb", "lograte", "sync", "guard",
    ];
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = Vec::new();
    for word in text.split(|c: char| !ident(c)) {
        let word = word.trim_matches(':');
        let word = word
            .strip_prefix("crate::")
            .or_else(|| word.strip_prefix("lnpbp_nodes::"))
            .unwrap_or(word);
        let parts: Vec<String> = word.split("::").map(str::to_string).collect();
        if parts.len() >= 2
            && TOP.contains(&parts[0].as_str())
            && parts.iter().all(|p| !p.is_empty())
        {
            out.push(parts);
        }
    }
    out
}

/// Whether `path` names modules that exist, down to the first segment that is not a module,
/// which must then be declared (or re-exported) in the last module's file.
fn module_path_exists(root: &Path, path: &[String]) -> bool {
    let mut dir = root.join("src");
    let mut file: Option<PathBuf> = None;
    for seg in path {
        let as_file = dir.join(format!("{seg}.rs"));
        let as_dir = dir.join(seg).join("mod.rs");
        if as_file.exists() || as_dir.exists() {
            file = Some(if as_dir.exists() { as_dir } else { as_file });
            dir = dir.join(seg);
            continue;
        }
        // An item of the last module: declared there (`fn seg`, `struct seg`, a `use` of it).
        let Some(f) = &file else {
            return false;
        };
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let declared = ["fn", "struct", "enum", "type", "const", "static", "mod", "trait"]
            .iter()
            .any(|k| text.contains(&format!("{k} {seg}")))
            || text.contains(&format!("macro_rules! {seg}"))
            // Re-exported (`pub use a::{b, seg};`) or declared by `hex_id!(…, Seg, …);`.
            || ["pub use ", "hex_id!("].iter().any(|start| {
                text.match_indices(start).any(|(at, _)| {
                    let span = &text[at..];
                    let span = &span[..span.find(';').unwrap_or(span.len())];
                    span.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .any(|w| w == seg)
                })
            });
        return declared;
    }
    true
}

/// Every module path named in the docs that does not resolve, as "where: path".
fn missing_modules(root: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    for doc in ["docs/ARCHITECTURE.md", "docs/API.md", "README.md"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        for p in module_paths(&text) {
            if !module_path_exists(root, &p) {
                missing.push(format!("{doc}: {}", p.join("::")));
            }
        }
    }
    missing.sort();
    missing.dedup();
    missing
}

#[test]
fn every_module_path_the_docs_name_exists() {
    let missing = missing_modules(&repo());
    assert!(
        missing.is_empty(),
        "module paths named in the docs that do not exist:\n{}",
        missing.join("\n")
    );
    assert!(module_paths(&read("docs/ARCHITECTURE.md")).len() > 10);
    assert!(!module_path_exists(
        &repo(),
        &["wire".into(), "msg".into(), "Msg".into()]
    ));
    assert!(module_path_exists(
        &repo(),
        &["wire".into(), "api".into(), "Msg".into(), "Failure".into()]
    ));
}

#[test]
fn every_source_path_the_docs_name_exists() {
    let missing = missing_paths(&repo());
    assert!(
        missing.is_empty(),
        "paths named in the docs that do not exist:\n{}",
        missing.join("\n")
    );
    // The check sees the paths at all: the architecture page names dozens.
    assert!(paths(&read("docs/ARCHITECTURE.md")).len() > 40);
}

#[test]
fn the_path_check_catches_a_renamed_file() {
    // A copy of the docs and of src/ in which one file the architecture page names was
    // renamed: the check must name it.
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path();
    let status = Command::new("cp")
        .args(["-r", "docs", "src", "README.md"])
        .arg(copy)
        .current_dir(repo())
        .status()
        .unwrap();
    assert!(status.success());
    for root in ROOTS.iter().filter(|r| !["src/", "docs/"].contains(r)) {
        let from = repo().join(root);
        if from.exists() {
            std::os::unix::fs::symlink(&from, copy.join(root.trim_end_matches('/'))).unwrap();
        }
    }
    assert!(missing_paths(copy).is_empty(), "the copy is clean");
    let old = copy.join("src/wire/ln/handshake.rs");
    std::fs::rename(&old, copy.join("src/wire/ln/noise.rs")).unwrap();
    let missing = missing_paths(copy);
    assert!(
        missing.contains(&"docs/ARCHITECTURE.md: src/wire/ln/handshake.rs".to_string()),
        "{missing:?}"
    );
}

#[test]
fn paths_are_found_in_text_as_the_docs_write_them() {
    let text = "see `src/actors/conn.rs` and (`actors/tcp.rs`), [x](../src/wire/mod.rs); \
                not `actors/<node>/mod.rs`, `DATA_DIR/store`, `~/.lnp/api`, ipc://a/b, lnp/, \
                `wire::ln::peer`; the folder `src/wire/ln/`.";
    assert_eq!(
        paths(text),
        [
            "src/actors/conn.rs",
            "src/actors/tcp.rs",
            "src/wire/mod.rs",
            "src/wire/ln/"
        ]
    );
}
