//! The documentation in `docs/` covers the whole external interface, and the repository's Markdown
//! stands on its own. Plain tests: no server, no database; they read files and walk the CLI's clap
//! command tree.
//!
//! What counts as documented (the rule, checked against the text of every `docs/**/*.md`):
//! - a `LATCHKEY_*` variable named anywhere in `src/**/*.rs`: its name appears (e.g. in the table of
//!   `docs/configuration.md`);
//! - a CLI command: its full path in backticks, starting with `latchkey`, as in
//!   "`latchkey client rotate-secret`" (further text may follow inside the backticks, so
//!   "`latchkey client rotate-secret --client-id ID`" counts too); the place is `docs/cli.md`;
//! - a long option of a command: `--name` appears (the option list of the command in `docs/cli.md`);
//! - a path constant of `src/routes.rs` (a string literal starting with `/`, `{param}` segments as
//!   written): the path appears (`docs/endpoints.md` for protocol endpoints and pages, `docs/api.md`
//!   for `/api/v1/…`).
//!
//! Besides: no file of the repository (README, docs, src, tests, templates) points outside it (the
//! `shared` directory beside the checkout, or the contract file there), and every relative Markdown link in `README.md` and `docs/` names a
//! file that exists.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir` (recursively) whose name ends with one of `extensions`.
fn files_under(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if extensions
                .iter()
                .any(|ext| path.to_string_lossy().ends_with(ext))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The text of every page in `docs/`, concatenated.
fn docs_text() -> String {
    files_under(&root().join("docs"), &[".md"])
        .iter()
        .map(|path| read(path))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `LATCHKEY_[A-Z0-9_]+` name in `src/**/*.rs`.
fn variables_in_code() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for path in files_under(&root().join("src"), &[".rs"]) {
        let text = read(&path);
        let mut rest = text.as_str();
        while let Some(start) = rest.find("LATCHKEY_") {
            let tail = &rest[start..];
            let end = tail
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            let name = tail[..end].trim_end_matches('_');
            if name.len() > "LATCHKEY_".len() {
                names.insert(name.to_owned());
            }
            rest = &tail[end..];
        }
    }
    names
}

/// Every command path (`latchkey user create`, …) with its long options, walking clap's tree.
fn commands_in_code() -> Vec<(String, Vec<String>)> {
    fn walk(command: &clap::Command, path: &str, out: &mut Vec<(String, Vec<String>)>) {
        for sub in command.get_subcommands() {
            let sub_path = format!("{path} {}", sub.get_name());
            let options = sub
                .get_arguments()
                .filter_map(|arg| arg.get_long())
                .filter(|long| !matches!(*long, "help" | "version"))
                .map(|long| format!("--{long}"))
                .collect();
            out.push((sub_path.clone(), options));
            walk(sub, &sub_path, out);
        }
    }
    let mut out = Vec::new();
    walk(&latchkey::cli::Cli::command(), "latchkey", &mut out);
    out
}

/// Every path constant of `src/routes.rs`: the string literals that start with `/`.
fn routes_in_code() -> Vec<String> {
    read(&root().join("src/routes.rs"))
        .lines()
        .filter(|line| line.trim_start().starts_with("pub const"))
        .filter_map(|line| {
            let literal = line.split('"').nth(1)?;
            literal.starts_with('/').then(|| literal.to_owned())
        })
        .collect()
}

/// A command is documented when "`latchkey …" opens a code span somewhere and the span goes on with
/// a space or ends: "`latchkey client rotate-secret --grace 1h`" documents `client rotate-secret` (and
/// the group `client` it belongs to), but not a command `client rotate`.
fn command_documented(docs: &str, path: &str) -> bool {
    let opening = format!("`{path}");
    docs.match_indices(&opening)
        .any(|(at, _)| matches!(docs[at + opening.len()..].chars().next(), Some(' ' | '`')))
}

#[test]
fn docs_cover_every_variable_command_option_and_route() {
    let docs = docs_text();
    let mut missing = Vec::new();
    for name in variables_in_code() {
        if !docs.contains(&name) {
            missing.push(format!(
                "variable {name}: document it in docs/configuration.md"
            ));
        }
    }
    for (path, options) in commands_in_code() {
        if !command_documented(&docs, &path) {
            missing.push(format!(
                "command `{path}`: document it in docs/cli.md (as \"`{path}`\" or \"`{path} …`\")"
            ));
        }
        for option in options {
            if !docs.contains(&option) {
                missing.push(format!(
                    "option {option} of `{path}`: document it in docs/cli.md"
                ));
            }
        }
    }
    for route in routes_in_code() {
        if !docs.contains(&route) {
            let page = match route.starts_with("/api/") {
                true => "docs/api.md",
                false => "docs/endpoints.md",
            };
            missing.push(format!("route {route}: document it in {page}"));
        }
    }
    assert!(
        missing.is_empty(),
        "the interface has {} things docs/ does not mention:\n  {}",
        missing.len(),
        missing.join("\n  ")
    );
}

#[test]
fn nothing_points_outside_the_repository() {
    let root = root();
    let mut files = vec![root.join("README.md")];
    for dir in ["docs", "src", "tests", "templates"] {
        files.extend(files_under(
            &root.join(dir),
            &[".md", ".rs", ".html", ".txt", ".toml", ".json"],
        ));
    }
    // Spelled in two halves so that this file does not find itself.
    let forbidden = [format!("../{}", "shared"), format!("CONTRACT{}", ".md")];
    let mut offenders = Vec::new();
    for path in &files {
        let text = read(path);
        for needle in &forbidden {
            if text.contains(needle.as_str()) {
                offenders.push(format!("{} mentions {needle}", path.display()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "files point outside the repository:\n  {}",
        offenders.join("\n  ")
    );
}

/// The targets of the inline links `](target)` of a Markdown text that are relative paths (no
/// scheme, no `mailto:`, not a bare `#anchor`), without their `#anchor`.
fn relative_links(markdown: &str) -> Vec<String> {
    markdown
        .match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &markdown[at + 2..];
            let target = &rest[..rest.find(')')?];
            let target = target.split_whitespace().next().unwrap_or_default();
            let path = target.split('#').next().unwrap_or_default();
            let external = target.contains("://") || target.starts_with("mailto:");
            (!external && !path.is_empty()).then(|| path.to_owned())
        })
        .collect()
}

#[test]
fn relative_links_in_readme_and_docs_name_existing_files() {
    let root = root();
    let mut pages = vec![root.join("README.md")];
    pages.extend(files_under(&root.join("docs"), &[".md"]));
    let mut broken = Vec::new();
    for page in &pages {
        let dir = page.parent().unwrap_or(&root);
        for target in relative_links(&read(page)) {
            if !dir.join(&target).exists() {
                broken.push(format!("{} links to {target}", page.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken relative links (the file does not exist):\n  {}",
        broken.join("\n  ")
    );
}

#[test]
fn relative_links_are_found() {
    let links = relative_links(
        "[a](cli.md) [b](https://x.test/) [c](#top) [d](api.md#lists) ![e](account.png \"t\")",
    );
    assert_eq!(links, ["cli.md", "api.md", "account.png"]);
}

#[test]
fn a_command_is_documented_only_by_its_whole_name() {
    let docs = "Run `latchkey client rotate-secret --grace 1h` or `latchkey keys list`.";
    assert!(command_documented(docs, "latchkey client rotate-secret"));
    assert!(command_documented(docs, "latchkey client"));
    assert!(command_documented(docs, "latchkey keys list"));
    assert!(!command_documented(docs, "latchkey client rotate"));
    assert!(!command_documented(docs, "latchkey keys rotate"));
    assert!(!command_documented(
        "latchkey keys list, unquoted",
        "latchkey keys list"
    ));
}
