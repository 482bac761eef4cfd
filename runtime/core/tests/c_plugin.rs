//! A log driver written in C against `sdk/include/lookout_plugin.h`,
//! compiled here with the `cc` crate's compiler, loaded and driven by the
//! host; and the same driver claiming another ABI, refused.

use lookout_abi::{LK_STREAM_STDERR, LK_STREAM_STDOUT};
use lookout_core::logs::pipeline::Pipeline;
use lookout_core::logs::setup::{self, DriverRequest};
use lookout_core::plugin::{ContainerInfo, PluginPath};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Compiles one C file of tests/plugins/c-sample into `out` as a shared
/// object, with extra `-D` defines.
fn compile(src: &str, out: &Path, defines: &[&str]) {
    let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let compiler = cc::Build::new()
        .target(&target)
        .host(&target)
        .opt_level(1)
        .cargo_metadata(false)
        .get_compiler();
    let mut cmd = compiler.to_command();
    cmd.args([
        "-std=c11", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared",
    ])
    .arg("-I")
    .arg(repo().join("sdk/include"));
    for d in defines {
        cmd.arg(format!("-D{d}"));
    }
    cmd.arg(repo().join("tests/plugins/c-sample").join(src))
        .arg("-o")
        .arg(out);
    let st = cmd.status().expect("run the C compiler");
    assert!(st.success(), "compiling {src} failed");
}

#[test]
fn a_c_plugin_is_loaded_and_receives_every_record() {
    let d = tempfile::tempdir().unwrap();
    compile("c_sample.c", &d.path().join("c-sample.so"), &[]);
    let out = d.path().join("records.txt");
    let path = PluginPath::new(vec![d.path().to_path_buf()]);
    let meta = ContainerInfo {
        id: "c".repeat(64),
        log_dir: d.path().to_string_lossy().into_owned(),
        ..Default::default()
    };
    let req = DriverRequest::new("c-sample", &[("path", out.to_str().unwrap())]);
    let (host, specs) = setup::open(&path, &[req], &meta).unwrap();
    let p = Pipeline::start(specs, host.max_line_size).unwrap();
    let mut child = Command::new("sh")
        .args(["-c", "echo one; echo two >&2; printf 'three'"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o: OwnedFd = child.stdout.take().unwrap().into();
    let e: OwnedFd = child.stderr.take().unwrap().into();
    p.pump(vec![(o, LK_STREAM_STDOUT), (e, LK_STREAM_STDERR)])
        .unwrap();
    child.wait().unwrap();
    let rep = p.close();
    assert!(rep.close_errors.is_empty(), "{:?}", rep.close_errors);
    assert_eq!(rep.drivers[0].delivered, 3);
    let text = std::fs::read_to_string(&out).unwrap();
    // <stream>\t<time>\t<flags>\t<bytes>
    let mut got: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.splitn(4, '\t').collect();
            assert_eq!(f.len(), 4, "{l:?}");
            assert!(f[1].parse::<i64>().unwrap() > 0);
            (f[0].to_string(), f[3].to_string())
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("stderr".to_string(), "two".to_string()),
            ("stdout".to_string(), "one".to_string()),
            ("stdout".to_string(), "three".to_string()),
        ]
    );
}

#[test]
fn a_c_plugin_rejects_an_unknown_option_naming_key_and_driver() {
    let d = tempfile::tempdir().unwrap();
    compile("c_sample.c", &d.path().join("c-sample.so"), &[]);
    let path = PluginPath::new(vec![d.path().to_path_buf()]);
    let e = setup::check(
        &path,
        &DriverRequest::new("c-sample", &[("colour", "blue")]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("colour") && e.contains("c-sample"), "{e}");
}

#[test]
fn a_plugin_built_for_another_abi_major_is_refused_naming_both_versions() {
    let d = tempfile::tempdir().unwrap();
    let lib = d.path().join("c-bad-abi.so");
    compile("c_bad_abi.c", &lib, &[]);
    let path = PluginPath::new(vec![d.path().to_path_buf()]);
    let e = setup::check(&path, &DriverRequest::new("c-bad-abi", &[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains(lib.to_str().unwrap()), "{e}");
    assert!(e.contains("ABI 2.0") && e.contains("ABI 1.0"), "{e}");
}

#[test]
fn a_plugin_with_a_newer_minor_is_refused() {
    let d = tempfile::tempdir().unwrap();
    compile(
        "c_sample.c",
        &d.path().join("c-new-minor.so"),
        &["C_SAMPLE_NAME=\"c-new-minor\"", "C_SAMPLE_ABI_MINOR=9"],
    );
    let path = PluginPath::new(vec![d.path().to_path_buf()]);
    let e = setup::check(&path, &DriverRequest::new("c-new-minor", &[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("ABI 1.9") && e.contains("ABI 1.0"), "{e}");
}
