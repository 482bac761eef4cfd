//! Records build facts for `GET /version`: the git commit, the compiler and
//! the build time.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn run(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    println!(
        "cargo:rustc-env=LOOKOUT_RUSTC_VERSION={}",
        run(&rustc, &["--version"])
    );
    println!(
        "cargo:rustc-env=LOOKOUT_GIT_COMMIT={}",
        run("git", &["rev-parse", "--short=7", "HEAD"])
    );
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    println!("cargo:rustc-env=LOOKOUT_BUILD_UNIX={secs}");
    println!("cargo:rerun-if-changed=build.rs");
}
