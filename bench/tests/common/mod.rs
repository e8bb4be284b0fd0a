//! What the benchmark smoke tests share.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `surge` binary beside `surge-bench`, built first if this test run lacks it.
pub fn surge_binary() -> PathBuf {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_surge-bench"));
    let surge = bench.with_file_name("surge");
    if !surge.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "surge", "--bin", "surge"]);
        if bench.parent().and_then(Path::file_name) == Some("release".as_ref()) {
            build.arg("--release");
        }
        let status = build.status().expect("running cargo build -p surge");
        assert!(status.success(), "cargo build -p surge failed");
    }
    assert!(surge.is_file(), "{} missing", surge.display());
    surge
}
