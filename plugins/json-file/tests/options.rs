//! Option validation and stream start.

mod common;

use common::{driver, info, with_opts};
use lookout_plugin_json_file::JsonFile;
use lookout_sdk::{LogDriver, Status};
use std::os::unix::fs::PermissionsExt;

fn err(opts: &[(&str, &str)]) -> String {
    let e = with_opts(opts, JsonFile::validate).unwrap_err();
    assert_eq!(e.status, Status::Fatal);
    // init refuses the same options.
    assert!(driver(opts).is_err());
    e.message
}

#[test]
fn known_options_are_accepted() {
    for opts in [
        &[][..],
        &[("max-size", "10m"), ("max-file", "3"), ("compress", "true")][..],
        &[("max-size", "1k"), ("max-file", "1"), ("compress", "false")][..],
        &[("max-size", "100"), ("max-file", "+2"), ("compress", "1")][..],
        &[
            ("labels", "a,b"),
            ("labels-regex", "^com\\."),
            ("env", "X"),
            ("env-regex", "^APP_"),
            ("tag", "{{.Name}}"),
        ][..],
    ] {
        with_opts(opts, JsonFile::validate).unwrap();
        driver(opts).unwrap();
    }
}

#[test]
fn unknown_option_names_key_and_driver() {
    let m = err(&[("max-size", "1m"), ("syslog-address", "udp://x")]);
    assert!(
        m.contains("syslog-address") && m.contains("json-file"),
        "{m}"
    );
}

#[test]
fn bad_values_are_named() {
    for (opts, needles) in [
        (&[("max-size", "ten")][..], &["max-size", "ten"][..]),
        (&[("max-size", "-1k")][..], &["max-size", "-1k"][..]),
        (&[("max-size", "0")][..], &["max-size", "positive"][..]),
        (&[("max-file", "x")][..], &["max-file", "\"x\""][..]),
        (&[("max-file", "0")][..], &["max-file", "less than 1"][..]),
        (&[("max-file", "-3")][..], &["max-file", "-3"][..]),
        (
            &[("max-size", "1m"), ("max-file", "2"), ("compress", "yes")][..],
            &["compress", "yes"][..],
        ),
        (
            &[("max-size", "1m"), ("compress", "true")][..],
            &["compress cannot be true when max-file is less than 2 or max-size is not set"][..],
        ),
        (
            &[("max-file", "3"), ("compress", "true")][..],
            &["compress cannot be true when max-file is less than 2 or max-size is not set"][..],
        ),
        (&[("labels-regex", "(")][..], &["labels-regex", "\"(\""][..]),
        (&[("env-regex", "[z-a]")][..], &["env-regex", "[z-a]"][..]),
        (&[("tag", "{{.Nope}}")][..], &["tag", "{{.Nope}}"][..]),
        (&[("tag", "{{.ID")][..], &["tag", "{{.ID"][..]),
    ] {
        let m = err(opts);
        for n in needles {
            assert!(m.contains(n), "{opts:?}: {m:?} lacks {n:?}");
        }
    }
}

#[test]
fn start_needs_an_id_and_creates_the_file_0640() {
    let dir = tempfile::tempdir().unwrap();
    let d = driver(&[]).unwrap();
    let mut i = info(dir.path());
    i.id.clear();
    let e = d.start(&i).err().unwrap();
    assert!(e.message.contains("id"), "{}", e.message);
    i.id = "../evil".into();
    assert!(d.start(&i).is_err());

    let s = d.start(&info(dir.path())).unwrap();
    let p = common::log_path(dir.path());
    let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    // The umask may only take bits away.
    assert_eq!(mode & !0o640, 0, "mode {mode:o}");
    drop(s);

    // A missing directory is an error naming the path.
    let mut i = info(&dir.path().join("missing"));
    i.id = common::ID.into();
    let e = d.start(&i).err().unwrap();
    assert!(e.message.contains("missing"), "{}", e.message);
}

#[test]
fn appends_to_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(common::log_path(dir.path()), b"{\"old\":1}\n").unwrap();
    let d = driver(&[]).unwrap();
    let mut s = d.start(&info(dir.path())).unwrap();
    common::write(&mut s, &[common::Rec::out("new\n", common::T0)]).unwrap();
    let got = std::fs::read_to_string(common::log_path(dir.path())).unwrap();
    assert!(got.starts_with("{\"old\":1}\n{\"log\":\"new\\n\""), "{got}");
}

#[test]
fn descriptor_names_the_driver() {
    // SAFETY: the entry point accepts a null host.
    let p = unsafe { lookout_plugin_json_file::lookout_plugin_v1(std::ptr::null()) };
    assert!(!p.is_null());
    // SAFETY: the descriptor is static and its name NUL-terminated.
    let (name, caps) = unsafe { (std::ffi::CStr::from_ptr((*p).name), (*p).caps) };
    assert_eq!(name.to_str().unwrap(), "json-file");
    assert_eq!(caps, lookout_sdk::abi::LK_CAP_READABLE);
}
