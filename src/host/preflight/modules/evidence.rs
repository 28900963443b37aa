//! Reading the module evidence off the host: `proc/modules`, `modules.builtin`, `modules.dep`,
//! `sys/module`, and (when `modules.dep` misses a module) the module files themselves.
//!
//! Invariants: nothing here writes; a file that exists but cannot be read is recorded in
//! [`Facts::problems`] and never taken as "absent" (for `proc/modules` it still proves the
//! kernel loads modules); a missing file or directory is simply no evidence; the kernel
//! release only names a directory under `lib/modules` when it cannot escape it; the walk
//! follows no symlinks and is bounded in depth and entries.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use super::{state, Facts, State};

#[derive(Debug, thiserror::Error)]
pub enum ModulesError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// How far below `lib/modules/REL` to look for module files: `kernel/drivers/net/ethernet/X/Y`
/// is the deepest layout in practice.
const MAX_WALK_DEPTH: usize = 10;
/// Bounds the walk on a huge or looping tree; a full distro kernel has ~6000 modules.
const MAX_WALK_ENTRIES: usize = 200_000;

const MODULE_SUFFIXES: [&str; 4] = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"];

/// The kernel's canonical spelling of a module name.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// Names of the modules in `proc/modules` (first field of each line), normalized.
pub fn parse_proc_modules(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(normalize)
        .collect()
}

/// `geneve.ko.xz` -> `geneve`; `None` for anything that is not a module file.
pub fn module_name_of_file(file: &str) -> Option<&str> {
    MODULE_SUFFIXES
        .iter()
        .find_map(|s| file.strip_suffix(s))
        .filter(|stem| !stem.is_empty())
}

/// Module paths of `modules.builtin` or `modules.dep` (`kernel/net/ipv4/geneve.ko.xz: deps...`),
/// as normalized name -> path relative to `lib/modules/REL`.
pub fn parse_module_paths(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let path = line.split(':').next().unwrap_or("").trim();
        let file = path.rsplit('/').next().unwrap_or(path);
        if let Some(name) = module_name_of_file(file) {
            out.entry(normalize(name))
                .or_insert_with(|| path.to_string());
        }
    }
    out
}

/// True when `release` can name a directory under `lib/modules` without escaping it.
pub fn is_path_component(release: &str) -> bool {
    !release.is_empty()
        && release != "."
        && release != ".."
        && !release.contains(['/', '\0'])
        && !release.chars().any(char::is_control)
}

/// Reads the module evidence for `names` under `root`.
pub fn gather(root: &Path, release: Option<&str>, names: &[&str]) -> Facts {
    let mut facts = Facts {
        release: release.filter(|r| is_path_component(r)).map(str::to_string),
        ..Facts::default()
    };
    let mut read = |path: PathBuf| match read_optional(&path) {
        Ok(text) => text,
        Err(e) => {
            facts.problems.push(e.to_string());
            // Unreadable is not "absent": for proc/modules it still proves module support.
            Some(String::new())
        }
    };
    let loaded = read(root.join("proc/modules")).map(|t| parse_proc_modules(&t));
    let mut builtin = BTreeMap::new();
    let mut files = BTreeMap::new();
    let dir = facts
        .release
        .as_ref()
        .map(|r| root.join("lib/modules").join(r));
    if let Some(dir) = &dir {
        if let Some(text) = read(dir.join("modules.builtin")) {
            builtin = parse_module_paths(&text);
        }
        if let Some(text) = read(dir.join("modules.dep")) {
            files = parse_module_paths(&text);
        }
    }
    facts.loaded = loaded;
    facts.builtin = builtin;
    facts.files = files;
    for name in names {
        let n = normalize(name);
        let sys = root.join("sys/module");
        if sys.join(&n).is_dir() || sys.join(name).is_dir() {
            facts.sysfs.insert(n);
        }
    }
    let unresolved: BTreeSet<String> = names
        .iter()
        .map(|n| normalize(n))
        .filter(|n| state(n, &facts) == State::Absent)
        .collect();
    if let (Some(dir), false) = (&dir, unresolved.is_empty()) {
        // modules.dep can be stale or missing (depmod not run); the files are the truth.
        for (name, path) in walk(dir, &unresolved) {
            facts.files.entry(name).or_insert(path);
        }
    }
    facts
}

/// Finds module files for `wanted` names under `dir`, without following symlinks.
fn walk(dir: &Path, wanted: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    let mut seen = 0usize;
    while let Some((current, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_WALK_ENTRIES {
                return found;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                if depth < MAX_WALK_DEPTH {
                    stack.push((path, depth + 1));
                }
            } else if kind.is_file() {
                let file = entry.file_name();
                let Some(name) = file.to_str().and_then(module_name_of_file) else {
                    continue;
                };
                let name = normalize(name);
                if wanted.contains(&name) {
                    let rel = path.strip_prefix(dir).unwrap_or(&path);
                    found
                        .entry(name)
                        .or_insert_with(|| rel.display().to_string());
                }
            }
        }
    }
    found
}

/// `Ok(None)` when the file, or a directory on its way, does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, ModulesError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(source) => Err(ModulesError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}
