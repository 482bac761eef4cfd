//! Go templates (`--format`) over the daemon's raw JSON, as the docker CLI
//! renders them, on top of the `gtmpl` crate.
//!
//! Three things bridge gtmpl to what docker prints:
//! - JSON objects become gtmpl maps, so a missing key prints `<no value>`;
//! - every printing action gets a final `| __fmt` step that formats the value
//!   as Go's `fmt` would (`[a b]`, `map[k:v]`, `<nil>`) instead of gtmpl's
//!   Rust debug text;
//! - `json` prints objects with their keys in the daemon's order: the
//!   conversion remembers each object's original text by its content.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use anyhow::{Result, anyhow};
use gtmpl::{Context, FuncError, Template, Value};
use gtmpl_value::Number;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value that keeps its objects' key order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, as serde_json reads it.
    Number(serde_json::Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, in document order.
    Object(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_none<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
                Ok(Json::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
                Ok(Json::Number(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
                Ok(Json::Number(n.into()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Json, E> {
                serde_json::Number::from_f64(n)
                    .map(Json::Number)
                    .ok_or_else(|| E::custom("non-finite number"))
            }
            fn visit_str<E>(self, s: &str) -> Result<Json, E> {
                Ok(Json::String(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Json, E> {
                Ok(Json::String(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element()? {
                    v.push(x);
                }
                Ok(Json::Array(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut v = Vec::new();
                while let Some((k, x)) = map.next_entry::<String, Json>()? {
                    v.push((k, x));
                }
                Ok(Json::Object(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl Json {
    /// Parses JSON text, keeping key order.
    pub fn parse(text: &[u8]) -> Result<Json> {
        Ok(serde_json::from_slice(text)?)
    }

    /// Compact text, as Go's encoder writes it with HTML escaping off.
    pub fn to_compact(&self) -> String {
        let mut out = String::new();
        self.write_compact(&mut out);
        out
    }

    fn write_compact(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(&n.to_string()),
            Json::String(s) => out.push_str(&json_string(s)),
            Json::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    x.write_compact(out);
                }
                out.push(']');
            }
            Json::Object(o) => {
                out.push('{');
                for (i, (k, x)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&json_string(k));
                    out.push(':');
                    x.write_compact(out);
                }
                out.push('}');
            }
        }
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

thread_local! {
    /// Canonical text (gtmpl value → serde_json, sorted keys) of every object
    /// converted so far → its text in document order.
    static ORIGINALS: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
}

/// Converts JSON into a gtmpl value: objects become maps (a missing key is
/// `<no value>`, as over docker's raw JSON), `null` becomes nil (printed
/// `<nil>`, as docker prints its nil pointers).
pub fn to_gtmpl(json: &Json) -> Value {
    let v = match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::Number(Number::from(u))
            } else if let Some(i) = n.as_i64() {
                Value::Number(Number::from(i))
            } else {
                Value::Number(Number::from(n.as_f64().unwrap_or(0.0)))
            }
        }
        Json::String(s) => Value::String(s.clone()),
        Json::Array(a) => Value::Array(a.iter().map(to_gtmpl).collect()),
        Json::Object(o) => Value::Map(o.iter().map(|(k, x)| (k.clone(), to_gtmpl(x))).collect()),
    };
    if matches!(json, Json::Object(_) | Json::Array(_)) {
        let canonical = to_serde(&v).to_string();
        ORIGINALS.with(|m| m.borrow_mut().insert(canonical, json.to_compact()));
    }
    v
}

/// A gtmpl value as serde_json (sorted keys).
fn to_serde(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::String(s) => J::String(s.clone()),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                J::from(u)
            } else if let Some(i) = n.as_i64() {
                J::from(i)
            } else {
                n.as_f64().map_or(J::Null, J::from)
            }
        }
        Value::Array(a) => J::Array(a.iter().map(to_serde).collect()),
        Value::Map(m) | Value::Object(m) => {
            J::Object(m.iter().map(|(k, x)| (k.clone(), to_serde(x))).collect())
        }
    }
}

/// Go's `%v` of a value nested in a slice or map (`nil` prints `<nil>`).
fn go_fmt_nested(v: &Value, out: &mut String) {
    match v {
        Value::NoValue | Value::Nil => out.push_str("<nil>"),
        _ => go_fmt(v, out),
    }
}

/// Go's `%v`, as `text/template` prints a value.
fn go_fmt(v: &Value, out: &mut String) {
    match v {
        Value::NoValue => out.push_str("<no value>"),
        Value::Nil => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::String(s) => out.push_str(s),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::Function(_) => out.push_str("<func>"),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                go_fmt_nested(x, out);
            }
            out.push(']');
        }
        Value::Map(m) | Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                go_fmt_nested(&m[k], out);
            }
            out.push(']');
        }
    }
}

fn one_arg<'a>(name: &str, args: &'a [Value]) -> Result<&'a Value, FuncError> {
    match args {
        [v] => Ok(v),
        _ => Err(FuncError::ExactlyXArgs(name.to_string(), 1)),
    }
}

fn string_arg(v: &Value) -> String {
    let mut s = String::new();
    go_fmt(v, &mut s);
    s
}

fn fmt_func(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(string_arg(one_arg("__fmt", args)?)))
}

/// docker's `json`: the value as compact JSON (objects in the daemon's key
/// order).
fn json_func(args: &[Value]) -> Result<Value, FuncError> {
    let v = one_arg("json", args)?;
    let canonical = to_serde(v).to_string();
    let text = if matches!(v, Value::Map(_) | Value::Object(_) | Value::Array(_)) {
        ORIGINALS
            .with(|m| m.borrow().get(&canonical).cloned())
            .unwrap_or(canonical)
    } else {
        canonical
    };
    Ok(Value::String(text))
}

fn lower_func(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(
        string_arg(one_arg("lower", args)?).to_lowercase(),
    ))
}

fn upper_func(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(
        string_arg(one_arg("upper", args)?).to_uppercase(),
    ))
}

fn title_func(args: &[Value]) -> Result<Value, FuncError> {
    let s = string_arg(one_arg("title", args)?);
    let mut out = String::with_capacity(s.len());
    let mut at_start = true;
    for c in s.chars() {
        if at_start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        at_start = !c.is_alphanumeric();
    }
    Ok(Value::String(out))
}

fn join_func(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [Value::Array(a), sep] => Ok(Value::String(
            a.iter()
                .map(string_arg)
                .collect::<Vec<_>>()
                .join(&string_arg(sep)),
        )),
        [Value::NoValue | Value::Nil, _] => Ok(Value::String(String::new())),
        _ => Err(FuncError::Generic(
            "join expects a list and a separator".into(),
        )),
    }
}

fn split_func(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [s, sep] => Ok(Value::Array(
            string_arg(s)
                .split(&string_arg(sep))
                .map(|p| Value::String(p.to_string()))
                .collect(),
        )),
        _ => Err(FuncError::ExactlyXArgs("split".into(), 2)),
    }
}

fn pad_func(args: &[Value]) -> Result<Value, FuncError> {
    let n = |v: &Value| match v {
        Value::Number(n) => n.as_u64().unwrap_or(0) as usize,
        _ => 0,
    };
    match args {
        [s, before, after] => Ok(Value::String(format!(
            "{}{}{}",
            " ".repeat(n(before)),
            string_arg(s),
            " ".repeat(n(after))
        ))),
        _ => Err(FuncError::ExactlyXArgs("pad".into(), 3)),
    }
}

fn truncate_func(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [s, Value::Number(n)] => {
            let s = string_arg(s);
            let n = n.as_u64().unwrap_or(0) as usize;
            Ok(Value::String(s.chars().take(n).collect()))
        }
        _ => Err(FuncError::Generic(
            "truncate expects a string and a length".into(),
        )),
    }
}

/// Words that open or close a control action; those print nothing.
const CONTROL_WORDS: [&str; 10] = [
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

/// Appends `| __fmt` to every action of `src` that prints its pipeline's
/// value (not control actions, comments or variable declarations), so values
/// print as Go's `fmt` prints them.
pub fn add_fmt_steps(src: &str) -> Result<String> {
    let mut out = String::with_capacity(src.len() + 16);
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let action = &rest[start + 2..];
        let end =
            find_action_end(action).ok_or_else(|| anyhow!("template: :1: unclosed action"))?;
        let inner = &action[..end];
        out.push_str("{{");
        out.push_str(&rewrite_action(inner));
        out.push_str("}}");
        rest = &action[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The offset of the `}}` that closes an action starting at `s` (after its
/// `{{`), skipping strings, raw strings, characters and comments.
fn find_action_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' => {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let close = s[i + 2..].find("*/")?;
                i += 2 + close + 1;
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn rewrite_action(inner: &str) -> String {
    // Trim markers: "{{- " and " -}}".
    let (lead, body) = match inner.strip_prefix('-') {
        Some(b) if b.starts_with([' ', '\t', '\n', '\r']) => ("-", b),
        _ => ("", inner),
    };
    let (body, trail) = match body.strip_suffix('-') {
        Some(b) if b.ends_with([' ', '\t', '\n', '\r']) => (b, "-"),
        _ => (body, ""),
    };
    let t = body.trim();
    let first_word: String = t
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let is_decl = t.starts_with('$') && {
        // `$x := …`, `$x = …`, `$i, $v := …`
        let head = t.split(['"', '`', '(']).next().unwrap_or("");
        head.contains(":=") || head.split_whitespace().nth(1) == Some("=")
    };
    if t.is_empty()
        || t.starts_with("/*")
        || CONTROL_WORDS.contains(&first_word.as_str())
        || is_decl
    {
        return inner.to_string();
    }
    let trimmed_end = body.trim_end();
    let ws = &body[trimmed_end.len()..];
    format!("{lead}{trimmed_end} | __fmt{ws}{trail}")
}

/// A `--format` template that does not parse (docker exits 64 for it).
#[derive(Debug)]
pub struct TemplateParseError(pub String);

impl fmt::Display for TemplateParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "template parsing error: {}", self.0)
    }
}

impl std::error::Error for TemplateParseError {}

/// A parsed `--format` template.
pub struct Format {
    tmpl: Template,
}

impl Format {
    /// Parses `src` with docker's template functions (`json`, `join`,
    /// `split`, `lower`, `upper`, `title`, `pad`, `truncate`).
    pub fn parse(src: &str) -> Result<Format> {
        let mut tmpl = Template::default();
        tmpl.add_func("__fmt", fmt_func);
        tmpl.add_func("json", json_func);
        tmpl.add_func("join", join_func);
        tmpl.add_func("split", split_func);
        tmpl.add_func("lower", lower_func);
        tmpl.add_func("upper", upper_func);
        tmpl.add_func("title", title_func);
        tmpl.add_func("pad", pad_func);
        tmpl.add_func("truncate", truncate_func);
        let rewritten = add_fmt_steps(src).map_err(|e| TemplateParseError(e.to_string()))?;
        tmpl.parse(&rewritten)
            .map_err(|e| TemplateParseError(e.to_string()))?;
        Ok(Format { tmpl })
    }

    /// Renders the template over `json`.
    pub fn render(&self, json: &Json) -> Result<String> {
        let ctx = Context::from(to_gtmpl(json));
        self.tmpl
            .render(&ctx)
            .map_err(|e| anyhow!("template parsing error: template: {e}"))
    }
}

/// What Go's `json.Marshal` escapes beyond serde_json: `<`, `>`, `&`, U+2028
/// and U+2029 (they can only occur inside strings of JSON text).
fn go_html_escape(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Renders list rows as the docker CLI's `--format` does: `table …` lays the
/// rows out (cells split at tabs) under a header rendered from `header`;
/// `json` prints each row as a JSON line; anything else is a template
/// rendered once per row. `\t` and `\n` written literally in the format are
/// a tab and a newline, as in docker.
pub fn render_list(
    format: &str,
    header: &serde_json::Value,
    rows: &[serde_json::Value],
) -> Result<String> {
    let mut out = String::new();
    if format.trim() == "json" {
        for r in rows {
            out.push_str(&go_html_escape(&serde_json::to_string(r)?));
            out.push('\n');
        }
        return Ok(out);
    }
    let (is_table, body) = match format.strip_prefix("table") {
        Some(rest) => (true, rest),
        None => (false, format),
    };
    let body = body
        .trim_matches(' ')
        .replace("\\t", "\t")
        .replace("\\n", "\n");
    let tmpl = Format::parse(&body)?;
    let render = |v: &serde_json::Value| -> Result<String> {
        tmpl.render(&Json::parse(&serde_json::to_vec(v)?)?)
    };
    if !is_table {
        for r in rows {
            out.push_str(&render(r)?);
            out.push('\n');
        }
        return Ok(out);
    }
    let head = render(header)?;
    let cells = |line: &str| line.split('\t').map(str::to_string).collect::<Vec<_>>();
    let mut t = crate::format::Table::default();
    t.row(cells(&head));
    for r in rows {
        t.row(cells(&render(r)?));
    }
    Ok(t.render())
}

/// Go's `json.Indent(dst, src, "", indent)` over JSON text: structure
/// re-laid out, strings and numbers copied byte for byte, empty `{}` and `[]`
/// kept compact.
pub fn indent_json(src: &[u8], indent: &str) -> String {
    let mut out = Vec::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut need_indent = false;
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        for _ in 0..depth {
            out.extend_from_slice(indent.as_bytes());
        }
    };
    let mut i = 0;
    while i < src.len() {
        let c = src[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if need_indent && c != b']' && c != b'}' {
            need_indent = false;
            depth += 1;
            newline(&mut out, depth);
        }
        match c {
            b'"' => {
                let start = i;
                i += 1;
                while i < src.len() && src[i] != b'"' {
                    if src[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                out.extend_from_slice(&src[start..(i + 1).min(src.len())]);
            }
            b'{' | b'[' => {
                need_indent = true;
                out.push(c);
            }
            b',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            b'}' | b']' => {
                if need_indent {
                    need_indent = false;
                } else {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            _ => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] =
        include_bytes!("../../../tests/fixtures/docker-api-samples/containers_sample_json.json");

    fn sample() -> Json {
        Json::parse(SAMPLE).unwrap()
    }

    const INLINE: &str = r#"{"Id":"c1a48da6340d","Name":"/sample",
        "State":{"Status":"running","Running":true,"Pid":4242},
        "Config":{"Hostname":"c1a48da6340d","Env":["PATH=/bin"],"Cmd":["sh","-c","while true; do echo hi; sleep 1; done"],
                  "Labels":{"team":"obs"}},
        "NetworkSettings":{"IPAddress":"172.17.0.2"}}"#;

    fn render(f: &str, j: &Json) -> String {
        Format::parse(f).unwrap().render(j).unwrap()
    }

    #[test]
    fn fields_like_docker() {
        let j = Json::parse(INLINE.as_bytes()).unwrap();
        assert_eq!(render("{{.State.Running}}", &j), "true");
        assert_eq!(render("{{.Name}} {{.State.Running}}", &j), "/sample true");
        assert_eq!(render("{{ .NetworkSettings.IPAddress }}", &j), "172.17.0.2");
        assert_eq!(render("{{.State.Pid}}", &j), "4242");
        assert_eq!(render("{{.Nope}}", &j), "<no value>");
        let n = Json::parse(br#"{"P":null,"L":[null]}"#).unwrap();
        assert_eq!(
            render("{{.P}} {{.L}} {{json .P}}", &n),
            "<nil> [<nil>] null"
        );
        assert_eq!(render("{{if .P}}y{{else}}n{{end}}", &n), "n");
        assert_eq!(
            render("{{.Config.Cmd}}", &j),
            "[sh -c while true; do echo hi; sleep 1; done]"
        );
        assert_eq!(render("{{.Config.Labels}}", &j), "map[team:obs]");
        assert_eq!(render("{{index .Config.Labels \"team\"}}", &j), "obs");
        assert_eq!(
            render("{{range .Config.Env}}{{.}};{{end}}", &j),
            "PATH=/bin;"
        );
        assert_eq!(
            render("{{if .State.Running}}up{{else}}down{{end}}", &j),
            "up"
        );
        assert_eq!(render("{{- .Name -}}", &j), "/sample");
        assert_eq!(render("{{$n := .Name}}{{$n}}", &j), "/sample");
        assert_eq!(
            render("{{join .Config.Cmd \",\"}}", &j),
            "sh,-c,while true; do echo hi; sleep 1; done"
        );
        assert_eq!(render("{{upper .State.Status}}", &j), "RUNNING");
        assert_eq!(render("{{/* c */}}x", &j), "x");
    }

    #[test]
    fn json_keeps_key_order() {
        let j = Json::parse(INLINE.as_bytes()).unwrap();
        assert_eq!(
            render("{{json .Config}}", &j),
            r#"{"Hostname":"c1a48da6340d","Env":["PATH=/bin"],"Cmd":["sh","-c","while true; do echo hi; sleep 1; done"],"Labels":{"team":"obs"}}"#
        );
        assert_eq!(render("{{json .State.Running}}", &j), "true");
        assert_eq!(render("{{json .Name}}", &j), "\"/sample\"");
        assert_eq!(
            render("{{json .Config.Cmd}}", &j),
            r#"["sh","-c","while true; do echo hi; sleep 1; done"]"#
        );
    }

    #[test]
    fn renders_the_sample_inspect() {
        let j = sample();
        assert_eq!(render("{{.State.Running}}", &j), "true");
        assert_eq!(render("{{.Name}}", &j), "/sample");
        assert_eq!(render("{{index .Config.Labels \"team\"}}", &j), "obs");
        let cfg = render("{{json .Config}}", &j);
        assert!(cfg.starts_with("{\"Hostname\":"), "{cfg}");
        let back: serde_json::Value = serde_json::from_str(&cfg).unwrap();
        assert_eq!(back["Labels"]["team"], "obs");
    }

    #[test]
    fn fmt_steps() {
        assert_eq!(add_fmt_steps("{{.A}}").unwrap(), "{{.A | __fmt}}");
        assert_eq!(add_fmt_steps("{{ .A }}").unwrap(), "{{ .A | __fmt }}");
        assert_eq!(add_fmt_steps("{{- .A -}}").unwrap(), "{{- .A | __fmt -}}");
        assert_eq!(
            add_fmt_steps("{{if .A}}x{{end}}").unwrap(),
            "{{if .A}}x{{end}}"
        );
        assert_eq!(add_fmt_steps("{{$x := .A}}").unwrap(), "{{$x := .A}}");
        assert_eq!(add_fmt_steps("{{\"}}\"}}").unwrap(), "{{\"}}\" | __fmt}}");
        assert!(add_fmt_steps("{{.A").is_err());
    }

    #[test]
    fn list_formats() {
        let header = serde_json::json!({"ID": "CONTAINER ID", "Names": "NAMES"});
        let rows = vec![
            serde_json::json!({"ID": "c1a48da6340d", "Names": "sample"}),
            serde_json::json!({"ID": "0123456789ab", "Names": "a-much-longer-name"}),
        ];
        assert_eq!(
            render_list("table {{.ID}}\\t{{.Names}}", &header, &rows).unwrap(),
            "CONTAINER ID   NAMES\nc1a48da6340d   sample\n0123456789ab   a-much-longer-name\n"
        );
        assert_eq!(
            render_list("{{.Names}}: {{.ID}}", &header, &rows).unwrap(),
            "sample: c1a48da6340d\na-much-longer-name: 0123456789ab\n"
        );
        assert_eq!(
            render_list("json", &header, &rows[..1]).unwrap(),
            "{\"ID\":\"c1a48da6340d\",\"Names\":\"sample\"}\n"
        );
        let none = vec![serde_json::json!({"Tag": "<none>"})];
        assert_eq!(
            render_list("json", &header, &none).unwrap(),
            "{\"Tag\":\"\\u003cnone\\u003e\"}\n"
        );
    }

    #[test]
    fn indents_like_go() {
        assert_eq!(
            indent_json(br#"[{"a":1,"b":[],"c":{},"d":["x", "y"]}]"#, "    "),
            "[\n    {\n        \"a\": 1,\n        \"b\": [],\n        \"c\": {},\n        \"d\": [\n            \"x\",\n            \"y\"\n        ]\n    }\n]"
        );
        assert_eq!(indent_json(br#"["a\"b,:"]"#, "  "), "[\n  \"a\\\"b,:\"\n]");
    }
}
