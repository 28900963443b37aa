//! Running a test's body in a process of its own, for code that takes over process-wide state:
//! the library's `Reaper` owns `waitpid(-1)` for its whole process and makes it a child
//! subreaper, so in this binary, where every other test waits on its own children through std,
//! it would reap those children from under them.
//!
//! The test runs this very binary again, filtered to itself alone (`--exact`, its name from the
//! thread libtest runs it on), with [`ENV`] set; there the body runs. The outer test passes only
//! if that run ran exactly one test and it passed.

use std::process::Command;

/// Set in the re-run to the name of the one test whose body runs there.
const ENV: &str = "OOS_TEST_IN_OWN_PROCESS";

/// Runs `body` in a run of this binary for the calling test alone; asserts that it passed.
pub fn in_own_process(body: impl FnOnce()) {
    // libtest runs each test on a thread named after it (`module::function`).
    let name = std::thread::current()
        .name()
        .expect("a test runs on a named thread")
        .to_string();
    if let Some(wanted) = std::env::var_os(ENV) {
        assert_eq!(wanted.to_str(), Some(name.as_str()), "the re-run's test");
        body();
        return;
    }
    // /proc/self/exe, not the path: it still runs this binary when a rebuild has replaced the
    // file meanwhile.
    let out = Command::new("/proc/self/exe")
        .args([&name, "--exact", "--test-threads=1", "--nocapture"])
        .env(ENV, &name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{name} in a process of its own: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
