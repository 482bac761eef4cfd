//! Golden tests: exact bytes of Docker's json-file lines (REFERENCE.md,
//! "Docker json-file"), written through the driver's stream.

mod common;

use common::{Rec, T0, encode};

fn line(log: &str, stream: &str, time: &str) -> String {
    format!("{{\"log\":\"{log}\",\"stream\":\"{stream}\",\"time\":\"{time}\"}}\n")
}

fn one(bytes: &[u8]) -> String {
    String::from_utf8(encode(&[], &[Rec::out(bytes, T0)])).unwrap()
}

fn expect(bytes: &[u8], escaped: &str) {
    assert_eq!(
        one(bytes),
        line(escaped, "stdout", "2019-01-01T11:11:11Z"),
        "input {bytes:x?}"
    );
}

#[test]
fn plain_and_empty_lines() {
    expect(b"hello world\n", r"hello world\n");
    expect(b"\n", r"\n");
    expect(b"no newline at end", "no newline at end");
    expect(b"path/to/file", "path/to/file");
}

#[test]
fn control_characters() {
    expect(b"crlf\r\n", r"crlf\r\n");
    expect(b"a\tb\n", r"a\u0009b\n");
    expect(b"\x1b[31mred\x1b[0m\n", r"\u001b[31mred\u001b[0m\n");
    expect(b"nul\x00\x01\x1f\n", r"nul\u0000\u0001\u001f\n");
    expect(b"\x08\x0c\x0b", r"\u0008\u000c\u000b");
    expect(b"del\x7f\n", "del\x7f\\n");
}

#[test]
fn json_and_html_characters() {
    expect(br#"say "hi" \o/"#, r#"say \"hi\" \\o/"#);
    expect(
        b"<a href=\"x\">&amp;</a>",
        r#"\u003ca href=\"x\"\u003e\u0026amp;\u003c/a\u003e"#,
    );
}

#[test]
fn unicode() {
    expect("é中😀\n".as_bytes(), "é中😀\\n");
    expect("a\u{2028}b\u{2029}c".as_bytes(), r"a\u2028b\u2029c");
}

#[test]
fn invalid_utf8() {
    expect(b"\xff\xfe", r"\ufffd\ufffd");
    expect(b"\xc3\x28", r"\ufffd(");
    expect(b"end\xe2\x82", r"end\ufffd\ufffd");
    expect(b"\xe2\x82\n", r"\ufffd\ufffd\n");
    expect(b"lone\x80cont\xbf", r"lone\ufffdcont\ufffd");
    expect(b"\xf0\x9f\x98", r"\ufffd\ufffd\ufffd");
}

#[test]
fn time_formatting() {
    let cases = [
        (0, "2019-01-01T11:11:11Z"),
        (100_000_000, "2019-01-01T11:11:11.1Z"),
        (123_456_789, "2019-01-01T11:11:11.123456789Z"),
        (1, "2019-01-01T11:11:11.000000001Z"),
        (120_000_000, "2019-01-01T11:11:11.12Z"),
        (1_000_000_000, "2019-01-01T11:11:12Z"),
    ];
    let recs: Vec<Rec> = cases
        .iter()
        .map(|(ns, _)| Rec::out("x\n", T0 + ns))
        .collect();
    let want: String = cases
        .iter()
        .map(|(_, t)| line(r"x\n", "stdout", t))
        .collect();
    assert_eq!(String::from_utf8(encode(&[], &recs)).unwrap(), want);
}

#[test]
fn streams_and_batches() {
    let recs = [
        Rec::out("a\n", T0),
        Rec::err("b\n", T0 + 5),
        Rec::out("c\n", T0 + 86_400_000_000_000),
    ];
    let got = String::from_utf8(encode(&[], &recs)).unwrap();
    assert_eq!(
        got,
        line(r"a\n", "stdout", "2019-01-01T11:11:11Z")
            + &line(r"b\n", "stderr", "2019-01-01T11:11:11.000000005Z")
            + &line(r"c\n", "stdout", "2019-01-02T11:11:11Z")
    );
}

#[test]
fn partial_chunks_are_written_as_given() {
    // 16 384 content bytes + LF: the host sends a full chunk, then "\n".
    let chunk = "a".repeat(16_384);
    let recs = [Rec::out(&chunk, T0), Rec::out("\n", T0)];
    let got = String::from_utf8(encode(&[], &recs)).unwrap();
    let t = "2019-01-01T11:11:11Z";
    assert_eq!(got, line(&chunk, "stdout", t) + &line(r"\n", "stdout", t));

    // 40 000 bytes + LF: 16 384 + 16 384 + 7 233 (with the LF).
    let body: String = (0..40_000)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let full = body.clone() + "\n";
    let parts = [&full[..16_384], &full[16_384..32_768], &full[32_768..]];
    assert_eq!(parts[2].len(), 7_233);
    let recs: Vec<Rec> = parts.iter().map(|p| Rec::out(p, T0)).collect();
    let got = String::from_utf8(encode(&[], &recs)).unwrap();
    let want = line(parts[0], "stdout", t)
        + &line(parts[1], "stdout", t)
        + &line(&parts[2].replace('\n', r"\n"), "stdout", t);
    assert_eq!(got, want);
}

#[test]
fn attrs_from_labels_env_and_tag() {
    let rec = [Rec::err("x\n", T0)];
    let got = String::from_utf8(encode(
        &[("labels", "team"), ("tag", "{{.Name}}/{{.ImageName}}")],
        &rec,
    ))
    .unwrap();
    assert_eq!(
        got,
        "{\"log\":\"x\\n\",\"stream\":\"stderr\",\"attrs\":{\"tag\":\"web/img:1\",\"team\":\"obs\"},\"time\":\"2019-01-01T11:11:11Z\"}\n"
    );

    let got = String::from_utf8(encode(
        &[
            ("labels-regex", "^ti"),
            ("env", "MODE,NOPE"),
            ("env-regex", "^PA"),
        ],
        &rec,
    ))
    .unwrap();
    assert_eq!(
        got,
        "{\"log\":\"x\\n\",\"stream\":\"stderr\",\"attrs\":{\"MODE\":\"prod\",\"PATH\":\"/usr/bin\",\"tier\":\"front\"},\"time\":\"2019-01-01T11:11:11Z\"}\n"
    );

    // Nothing matched: no attrs at all.
    let got = String::from_utf8(encode(&[("labels", "nope"), ("env", "")], &rec)).unwrap();
    assert_eq!(got, line(r"x\n", "stderr", "2019-01-01T11:11:11Z"));
}

fn tag_of(template: &str) -> String {
    let got = String::from_utf8(encode(&[("tag", template)], &[Rec::out("x", T0)])).unwrap();
    let v: serde_json::Value = serde_json::from_str(got.trim_end()).unwrap();
    v["attrs"]["tag"].as_str().unwrap_or("<none>").to_string()
}

#[test]
fn tag_templates() {
    assert_eq!(tag_of("{{.ID}}"), &common::ID[..12]);
    assert_eq!(tag_of("{{.FullID}}"), common::ID);
    assert_eq!(tag_of("{{.Name}}"), "web");
    assert_eq!(tag_of("{{.Command}}"), "/bin/sh -c run");
    assert_eq!(tag_of("{{.ImageID}}"), "0123456789ab");
    assert_eq!(
        tag_of("{{.ImageFullID}}"),
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );
    assert_eq!(tag_of("{{.ImageName}}"), "img:1");
    assert_eq!(tag_of("{{.DaemonName}}"), "lookout");
    assert!(!tag_of("{{.Hostname}}").is_empty());
    assert_eq!(tag_of("{{json .Name}}"), "\"web\"");
    assert_eq!(
        tag_of(r#"{{split .ImageName ":" | json}}"#),
        r#"["img","1"]"#
    );
    assert_eq!(tag_of(r#"{{join (split .ImageName ":") "_"}}"#), "img_1");
    assert_eq!(tag_of(r#"{{title "web front"}}"#), "Web Front");
    assert_eq!(tag_of(r#"{{lower "WEB"}}"#), "web");
    assert_eq!(tag_of(r#"{{upper .Name}}"#), "WEB");
    assert_eq!(tag_of(r#"{{pad .Name 1 2}}"#), " web  ");
    assert_eq!(tag_of(r#"{{truncate .FullID 3}}"#), "4f6");
    // An empty rendering adds no tag.
    assert_eq!(tag_of(r#"{{if false}}x{{end}}"#), "<none>");
}

#[test]
fn tag_with_html_characters_is_escaped_like_go() {
    let got = String::from_utf8(encode(&[("tag", "a<b>&\"c\"")], &[Rec::out("x", T0)])).unwrap();
    assert!(
        got.contains(r#""attrs":{"tag":"a\u003cb\u003e\u0026\"c\""}"#),
        "{got}"
    );
}

#[test]
fn empty_record_keeps_an_empty_log() {
    let got = String::from_utf8(encode(&[], &[Rec::out("", T0)])).unwrap();
    assert_eq!(got, line("", "stdout", "2019-01-01T11:11:11Z"));
}
