//! Docker's log tag: the `tag` log-opt, a Go template rendered once per
//! container (moby `daemon/logger/loggerutils/log_tag.go`).
//!
//! The template sees these fields (as Docker's `logger.Info` offers them):
//!
//! | field | value |
//! |---|---|
//! | `.ID` | the container id, first 12 characters |
//! | `.FullID` | the full container id |
//! | `.Name` | the container name, without a leading `/` |
//! | `.Command` | entrypoint and arguments joined by spaces |
//! | `.ImageID` | the image id without its `sha256:` prefix, first 12 characters |
//! | `.ImageFullID` | the full image id (`sha256:…`) |
//! | `.ImageName` | the image name as the user gave it |
//! | `.DaemonName` | the engine's name |
//! | `.Hostname` | the host's name (Docker's `os.Hostname()`, not the container's) |
//! | `.ContainerID`, `.ContainerName` (with its `/`), `.ContainerImageID`, `.ContainerImageName` | raw `logger.Info` fields |
//! | `.ContainerLabels`, `.Config` | the labels and the log-opts, as maps (`{{index .ContainerLabels "k"}}`) |
//! | `.ContainerEnv` | the environment as a list of `K=V` |
//!
//! and these functions besides Go's builtins (moby `daemon/logger/templates`):
//! `json` (Go `encoding/json` without HTML escaping), `split` (`strings.Split`),
//! `join` (`strings.Join`), `title` (`strings.Title`), `lower`, `upper`,
//! `pad S PREFIX SUFFIX` (spaces around a non-empty string) and
//! `truncate S N` (the first N bytes). `index` on a map gives `""` for a
//! missing key, as Go does for `map[string]string`.
//!
//! Parse once at init with [`Tag::from_options`] (a template that does not
//! parse, or fails on a sample container, is an error naming it), then
//! [`Tag::render`] once per stream.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use gtmpl::{Context, Func, FuncError, Template, Value};

use crate::attrs::write_go_json_string;
use crate::{ContainerInfo, Error, Options};

/// Docker's default tag for drivers that have one (syslog, journald, …).
pub const DEFAULT_TEMPLATE: &str = "{{.ID}}";

/// The log-opt key this module reads.
pub const TAG_KEY: &str = "tag";

/// A parsed `tag` template.
pub struct Tag {
    template: Template,
    source: String,
    config: HashMap<String, String>,
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tag").field("source", &self.source).finish()
    }
}

impl Tag {
    /// Parses the `tag` option, or `default` when the option is absent or
    /// empty (Docker's rule). Pass `""` for "no tag unless the user asks"
    /// (json-file, local) or [`DEFAULT_TEMPLATE`] (syslog, journald, …).
    /// Errors name the driver, the option and the template.
    pub fn from_options(driver: &str, opts: &Options<'_>, default: &str) -> Result<Tag, Error> {
        let config: HashMap<String, String> = opts
            .iter()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let source = match opts.get(TAG_KEY) {
            Some(t) if !t.is_empty() => t.into_owned(),
            _ => default.to_string(),
        };
        Tag::with_config(driver, &source, config)
    }

    /// Parses a template directly (errors name `driver` and the `tag`
    /// option).
    pub fn new(driver: &str, template: &str) -> Result<Tag, Error> {
        Tag::with_config(driver, template, HashMap::new())
    }

    fn with_config(
        driver: &str,
        source: &str,
        config: HashMap<String, String>,
    ) -> Result<Tag, Error> {
        let bad = |why: &dyn fmt::Display| {
            Error::invalid_option(driver, TAG_KEY, format_args!("template {source:?}: {why}"))
        };
        let mut template = Template::with_name("log-tag");
        template.add_funcs(FUNCS);
        template.parse(source).map_err(|e| bad(&e))?;
        let tag = Tag {
            template,
            source: source.to_string(),
            config,
        };
        // Catch unknown fields and bad function calls now rather than at
        // the first container start.
        tag.render_with(&sample_info(), "sample-host")
            .map_err(|e| bad(&e))?;
        Ok(tag)
    }

    /// The template text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders the tag for a container. An empty template renders `""`.
    pub fn render(&self, info: &ContainerInfo) -> Result<String, Error> {
        let host = if self.source.contains("Hostname") {
            hostname()
                .map_err(|e| Error::fatal(format!("logger: can not resolve hostname: {e}")))?
        } else {
            String::new()
        };
        self.render_with(info, &host)
            .map_err(|e| Error::fatal(format!("rendering log tag template {:?}: {e}", self.source)))
    }

    fn render_with(&self, info: &ContainerInfo, host: &str) -> Result<String, String> {
        if self.source.is_empty() {
            return Ok(String::new());
        }
        let ctx = Context::from(self.context(info, host));
        self.template.render(&ctx).map_err(|e| e.to_string())
    }

    fn context(&self, info: &ContainerInfo, host: &str) -> Value {
        let s = |v: &str| Value::String(v.to_string());
        let map = |it: &mut dyn Iterator<Item = (&String, &String)>| {
            Value::Map(
                it.map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            )
        };
        let mut o = HashMap::new();
        o.insert("ID".into(), s(truncate_id(&info.id)));
        o.insert("FullID".into(), s(&info.id));
        o.insert("Name".into(), s(info.name.trim_start_matches('/')));
        o.insert("Command".into(), s(&info.command));
        o.insert("ImageID".into(), s(truncate_id(&info.image_id)));
        o.insert("ImageFullID".into(), s(&info.image_id));
        o.insert("ImageName".into(), s(&info.image_name));
        o.insert("DaemonName".into(), s(&info.daemon_name));
        o.insert("Hostname".into(), s(host));
        o.insert("ContainerID".into(), s(&info.id));
        let name = if info.name.starts_with('/') {
            info.name.clone()
        } else {
            format!("/{}", info.name)
        };
        o.insert("ContainerName".into(), Value::String(name));
        o.insert("ContainerImageID".into(), s(&info.image_id));
        o.insert("ContainerImageName".into(), s(&info.image_name));
        o.insert(
            "ContainerLabels".into(),
            map(&mut info.labels.iter().map(|(k, v)| (k, v))),
        );
        o.insert(
            "ContainerEnv".into(),
            Value::Array(
                info.env
                    .iter()
                    .map(|(k, v)| Value::String(format!("{k}={v}")))
                    .collect(),
            ),
        );
        o.insert("Config".into(), map(&mut self.config.iter()));
        Value::Object(o)
    }
}

/// Renders the tag for `info` from the options in one go: the `tag` option,
/// or `default` when it is absent or empty.
pub fn parse_tag(
    driver: &str,
    opts: &Options<'_>,
    default: &str,
    info: &ContainerInfo,
) -> Result<String, Error> {
    Tag::from_options(driver, opts, default)?.render(info)
}

/// Docker's `stringid.TruncateID`: drop everything up to a `:`, keep 12
/// characters.
fn truncate_id(id: &str) -> &str {
    let id = match id.find(':') {
        Some(i) => &id[i + 1..],
        None => id,
    };
    match id.char_indices().nth(12) {
        Some((i, _)) => &id[..i],
        None => id,
    }
}

fn sample_info() -> ContainerInfo {
    ContainerInfo {
        id: "0123456789ab".repeat(5) + "cdef",
        name: "sample".into(),
        image_id: format!("sha256:{}", "0123456789ab".repeat(5) + "cdef"),
        image_name: "sample:latest".into(),
        command: "sh -c true".into(),
        hostname: "sample".into(),
        daemon_name: "lookout".into(),
        ..Default::default()
    }
}

fn hostname() -> std::io::Result<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
    Ok(h.trim_end_matches('\n').to_string())
}

// ------------------------------------------------------------ functions

static FUNCS: &[(&str, Func)] = &[
    ("json", f_json as Func),
    ("split", f_split as Func),
    ("join", f_join as Func),
    ("title", f_title as Func),
    ("lower", f_lower as Func),
    ("upper", f_upper as Func),
    ("pad", f_pad as Func),
    ("truncate", f_truncate as Func),
    ("index", f_index as Func),
];

fn arity(name: &str, args: &[Value], n: usize) -> Result<(), FuncError> {
    if args.len() == n {
        Ok(())
    } else {
        Err(FuncError::ExactlyXArgs(name.into(), n))
    }
}

fn string_arg<'a>(name: &str, v: &'a Value) -> Result<&'a str, FuncError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(FuncError::Generic(format!(
            "{name}: wrong type for value; expected string; got {}",
            type_name(other)
        ))),
    }
}

fn int_arg(name: &str, v: &Value) -> Result<i64, FuncError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| FuncError::Generic(format!("{name}: expected integer; got {n}"))),
        other => Err(FuncError::Generic(format!(
            "{name}: wrong type for value; expected int; got {}",
            type_name(other)
        ))),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::NoValue | Value::Nil => "nil",
        Value::Bool(_) => "bool",
        Value::String(_) => "string",
        Value::Object(_) | Value::Map(_) => "map",
        Value::Array(_) => "slice",
        Value::Function(_) => "func",
        Value::Number(_) => "number",
    }
}

fn f_json(args: &[Value]) -> Result<Value, FuncError> {
    arity("json", args, 1)?;
    let mut out = String::new();
    json_value(&mut out, &args[0]);
    Ok(Value::String(out))
}

fn json_value(out: &mut String, v: &Value) {
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::String(s) => write_go_json_string(out, s, false),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else if let Some(f) = n.as_f64().filter(|f| f.is_finite()) {
                out.push_str(&f.to_string());
            } else {
                out.push_str("null");
            }
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(out, x);
            }
            out.push(']');
        }
        Value::Object(m) | Value::Map(m) => {
            let sorted: BTreeMap<&String, &Value> = m.iter().collect();
            out.push('{');
            for (i, (k, x)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json_string(out, k, false);
                out.push(':');
                json_value(out, x);
            }
            out.push('}');
        }
    }
}

fn f_split(args: &[Value]) -> Result<Value, FuncError> {
    arity("split", args, 2)?;
    let s = string_arg("split", &args[0])?;
    let sep = string_arg("split", &args[1])?;
    let parts: Vec<Value> = if sep.is_empty() {
        // Go splits into UTF-8 sequences.
        s.chars().map(|c| Value::String(c.to_string())).collect()
    } else {
        s.split(sep).map(|p| Value::String(p.to_string())).collect()
    };
    Ok(Value::Array(parts))
}

fn f_join(args: &[Value]) -> Result<Value, FuncError> {
    arity("join", args, 2)?;
    let sep = string_arg("join", &args[1])?;
    let Value::Array(items) = &args[0] else {
        return Err(FuncError::Generic(format!(
            "join: wrong type for value; expected []string; got {}",
            type_name(&args[0])
        )));
    };
    let mut out = String::new();
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(string_arg("join", v)?);
    }
    Ok(Value::String(out))
}

/// Go's simple (one rune to one rune) case mapping, approximated with
/// Rust's full mapping when that gives exactly one character.
fn simple_map<I: Iterator<Item = char>>(c: char, f: impl Fn(char) -> I) -> char {
    let mut it = f(c);
    match (it.next(), it.next()) {
        (Some(m), None) => m,
        _ => c,
    }
}

fn f_title(args: &[Value]) -> Result<Value, FuncError> {
    arity("title", args, 1)?;
    let s = string_arg("title", &args[0])?;
    // strings.Title: a letter following a separator is title-cased.
    let is_sep = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else if c.is_alphabetic() || c.is_numeric() {
            false
        } else {
            c.is_whitespace()
        }
    };
    let mut prev = ' ';
    let out: String = s
        .chars()
        .map(|c| {
            let r = if is_sep(prev) {
                simple_map(c, char::to_uppercase)
            } else {
                c
            };
            prev = c;
            r
        })
        .collect();
    Ok(Value::String(out))
}

fn f_lower(args: &[Value]) -> Result<Value, FuncError> {
    arity("lower", args, 1)?;
    let s = string_arg("lower", &args[0])?;
    Ok(Value::String(
        s.chars()
            .map(|c| simple_map(c, char::to_lowercase))
            .collect(),
    ))
}

fn f_upper(args: &[Value]) -> Result<Value, FuncError> {
    arity("upper", args, 1)?;
    let s = string_arg("upper", &args[0])?;
    Ok(Value::String(
        s.chars()
            .map(|c| simple_map(c, char::to_uppercase))
            .collect(),
    ))
}

fn f_pad(args: &[Value]) -> Result<Value, FuncError> {
    arity("pad", args, 3)?;
    let s = string_arg("pad", &args[0])?;
    let prefix = int_arg("pad", &args[1])?;
    let suffix = int_arg("pad", &args[2])?;
    if s.is_empty() {
        return Ok(Value::String(String::new()));
    }
    if prefix < 0 || suffix < 0 {
        return Err(FuncError::Generic(
            "pad: strings: negative Repeat count".into(),
        ));
    }
    let (prefix, suffix) = (prefix as usize, suffix as usize);
    if prefix.saturating_add(suffix) > 1 << 20 {
        return Err(FuncError::Generic("pad: count too large".into()));
    }
    let mut out = String::with_capacity(prefix + s.len() + suffix);
    out.extend(std::iter::repeat_n(' ', prefix));
    out.push_str(s);
    out.extend(std::iter::repeat_n(' ', suffix));
    Ok(Value::String(out))
}

fn f_truncate(args: &[Value]) -> Result<Value, FuncError> {
    arity("truncate", args, 2)?;
    let s = string_arg("truncate", &args[0])?;
    let n = int_arg("truncate", &args[1])?;
    if n < 0 {
        return Err(FuncError::Generic(format!(
            "truncate: slice bounds out of range [:{n}]"
        )));
    }
    let n = n as usize;
    if s.len() < n {
        return Ok(Value::String(s.to_string()));
    }
    // Go cuts bytes; a cut inside a character leaves invalid bytes, which
    // every JSON or text consumer shows as one U+FFFD each.
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = s[..end].to_string();
    out.extend(std::iter::repeat_n('\u{fffd}', n - end));
    Ok(Value::String(out))
}

/// `index` like Go's for the maps this context holds (`map[string]string`):
/// a missing key gives `""`.
fn f_index(args: &[Value]) -> Result<Value, FuncError> {
    if args.len() < 2 {
        return Err(FuncError::AtLeastXArgs("index".into(), 2));
    }
    let mut col = args[0].clone();
    for key in &args[1..] {
        col = match (&col, key) {
            (Value::Map(m) | Value::Object(m), Value::String(k)) => {
                m.get(k).cloned().unwrap_or(Value::String(String::new()))
            }
            (Value::Array(a), Value::Number(n)) => match n.as_u64().and_then(|i| a.get(i as usize))
            {
                Some(v) => v.clone(),
                None => {
                    return Err(FuncError::Generic(format!(
                        "index: index out of range: {n}"
                    )));
                }
            },
            _ => {
                return Err(FuncError::Generic(format!(
                    "index: can't index item of type {} with {}",
                    type_name(&col),
                    type_name(key)
                )));
            }
        };
    }
    Ok(col)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_abi::{LkBytes, LkKv};

    fn info() -> ContainerInfo {
        ContainerInfo {
            id: "c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456789".into(),
            name: "web".into(),
            image_id: "sha256:feedface0123456789abcdef0123456789abcdef0123456789abcdef012345"
                .into(),
            image_name: "img:1".into(),
            command: "nginx -g daemon off;".into(),
            hostname: "web-host".into(),
            daemon_name: "lookout".into(),
            labels: vec![("team".into(), "obs".into())],
            env: vec![("A".into(), "1".into())],
            ..Default::default()
        }
    }

    fn render(t: &str) -> String {
        Tag::new("test", t).unwrap().render(&info()).unwrap()
    }

    #[test]
    fn fields() {
        assert_eq!(render("{{.ID}}"), "c0ffee012345");
        assert_eq!(render("{{.FullID}}"), info().id);
        assert_eq!(render("{{.Name}}"), "web");
        assert_eq!(render("{{.Command}}"), "nginx -g daemon off;");
        assert_eq!(render("{{.ImageID}}"), "feedface0123");
        assert_eq!(render("{{.ImageFullID}}"), info().image_id);
        assert_eq!(render("{{.ImageName}}"), "img:1");
        assert_eq!(render("{{.DaemonName}}"), "lookout");
        assert_eq!(render("{{.Name}}/{{.ImageName}}"), "web/img:1");
        assert_eq!(render("{{.ContainerName}}"), "/web");
        assert_eq!(render(r#"{{index .ContainerLabels "team"}}"#), "obs");
        assert_eq!(render(r#"[{{index .ContainerLabels "nope"}}]"#), "[]");
        assert_eq!(render("plain text"), "plain text");
        assert_eq!(render(""), "");
        let h = render("{{.Hostname}}");
        assert_eq!(h, hostname().unwrap());
        assert!(!h.is_empty());
    }

    #[test]
    fn functions() {
        assert_eq!(render("{{json .Name}}"), r#""web""#);
        assert_eq!(render(r#"{{json "a<b>&\"c"}}"#), r#""a<b>&\"c""#);
        assert_eq!(
            render(r#"{{split .ImageName ":" | json}}"#),
            r#"["img","1"]"#
        );
        assert_eq!(render(r#"{{join (split .ImageName ":") "-"}}"#), "img-1");
        assert_eq!(render(r#"{{json (split "ab" "")}}"#), r#"["a","b"]"#);
        assert_eq!(
            render(r#"{{title "hello wORLD foo_bar x-y"}}"#),
            "Hello WORLD Foo_bar X-Y"
        );
        assert_eq!(render(r#"{{lower "MiXeD Été"}}"#), "mixed été");
        assert_eq!(render(r#"{{upper .Name}}"#), "WEB");
        assert_eq!(render(r#"{{.Name | upper}}"#), "WEB");
        assert_eq!(render(r#"[{{pad .Name 2 3}}]"#), "[  web   ]");
        assert_eq!(render(r#"[{{pad "" 2 3}}]"#), "[]");
        assert_eq!(render(r#"{{truncate .FullID 4}}"#), "c0ff");
        assert_eq!(render(r#"{{truncate .Name 10}}"#), "web");
        assert_eq!(render(r#"{{truncate "é" 1}}"#), "\u{fffd}");
        assert_eq!(
            render(r#"{{if eq .Name "web"}}yes{{else}}no{{end}}"#),
            "yes"
        );
    }

    #[test]
    fn errors_name_the_template() {
        for bad in [
            "{{.ID",
            "{{.NoSuchField}}",
            "{{nosuchfunc .ID}}",
            "{{pad .ID -1 0}}",
        ] {
            let e = Tag::new("syslog", bad).unwrap_err();
            assert!(e.message.contains(&format!("{bad:?}")), "{}", e.message);
            assert!(e.message.contains("tag"), "{}", e.message);
            assert!(e.message.contains("syslog"), "{}", e.message);
        }
    }

    #[test]
    fn default_applies_when_absent_or_empty() {
        let kv = |k: &'static str, v: &'static str| LkKv {
            key: LkBytes::from_slice(k.as_bytes()),
            value: LkBytes::from_slice(v.as_bytes()),
        };
        let none: [LkKv; 0] = [];
        let o = Options::from_kv(&none);
        assert_eq!(parse_tag("d", &o, "", &info()).unwrap(), "");
        assert_eq!(
            parse_tag("d", &o, DEFAULT_TEMPLATE, &info()).unwrap(),
            "c0ffee012345"
        );
        let empty = [kv("tag", "")];
        let o = Options::from_kv(&empty);
        assert_eq!(
            parse_tag("d", &o, DEFAULT_TEMPLATE, &info()).unwrap(),
            "c0ffee012345"
        );
        let set = [kv("tag", "{{.Name}}/{{.ImageName}}"), kv("max-size", "1k")];
        let o = Options::from_kv(&set);
        assert_eq!(parse_tag("d", &o, "", &info()).unwrap(), "web/img:1");
        let t = Tag::from_options("d", &o, "").unwrap();
        assert_eq!(t.source(), "{{.Name}}/{{.ImageName}}");
        let cfg = [
            kv("tag", r#"{{index .Config "max-size"}}"#),
            kv("max-size", "1k"),
        ];
        let o = Options::from_kv(&cfg);
        assert_eq!(parse_tag("d", &o, "", &info()).unwrap(), "1k");
    }

    #[test]
    fn short_ids() {
        assert_eq!(truncate_id("abc"), "abc");
        assert_eq!(truncate_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(truncate_id(""), "");
    }
}
