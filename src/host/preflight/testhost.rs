//! Fake hosts for the preflight tests: a temp dir standing in for "/".
//!
//! A spec entry whose path ends in `/` is an empty directory; any other is a file with that
//! exact content (no newline added, so tests can also build files without one).

use std::fs;

pub fn host(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        let path = dir.path().join(rel);
        if rel.ends_with('/') {
            fs::create_dir_all(&path).unwrap();
        } else {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
    }
    dir
}
