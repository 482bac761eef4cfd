//! `lookout inspect`: the daemon's raw JSON, indented, or rendered through a
//! Go template.

use anyhow::{Result, bail};
use bytes::Bytes;
use clap::{Args, ValueEnum};

use crate::client::{Client, daemon_error, describe_error, path_escape};
use crate::template::{Format, Json, indent_json};

/// What `--type` restricts the lookup to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObjectType {
    /// Containers only.
    Container,
    /// Images only.
    Image,
}

/// `lookout inspect`
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub size: bool,
    /// Return JSON for specified type
    #[arg(long = "type", value_enum)]
    pub typ: Option<ObjectType>,
    /// Names or IDs
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

/// Fetches the raw inspect JSON of `name`: a container, else an image.
async fn fetch(client: &Client, a: &InspectArgs, name: &str) -> Result<Bytes> {
    let n = path_escape(name);
    let size = if a.size { "?size=1" } else { "" };
    if a.typ != Some(ObjectType::Image) {
        match client.raw.get(&format!("/containers/{n}/json{size}")).await {
            Ok(b) => return Ok(b),
            Err(e) if a.typ.is_none() && daemon_error(&e).is_some_and(|(s, _)| s == 404) => {}
            Err(e) => return Err(e),
        }
    }
    match client.raw.get(&format!("/images/{n}/json")).await {
        Ok(b) => Ok(b),
        Err(e) if a.typ.is_none() && daemon_error(&e).is_some_and(|(s, _)| s == 404) => {
            bail!("No such object: {name}")
        }
        Err(e) => Err(e),
    }
}

/// The output for the found objects: each rendered through `format` on its
/// own line, or all of them as one JSON array indented by four spaces.
pub fn render(raws: &[Bytes], format: Option<&str>) -> Result<String> {
    match format {
        Some(f) => {
            let tmpl = Format::parse(f)?;
            let mut out = String::new();
            for raw in raws {
                out.push_str(&tmpl.render(&Json::parse(raw)?)?);
                out.push('\n');
            }
            Ok(out)
        }
        None => {
            let mut joined = Vec::new();
            joined.push(b'[');
            for (i, raw) in raws.iter().enumerate() {
                if i > 0 {
                    joined.push(b',');
                }
                joined.extend_from_slice(raw);
            }
            joined.push(b']');
            Ok(indent_json(&joined, "    ") + "\n")
        }
    }
}

/// Runs `lookout inspect`.
pub async fn inspect(client: &Client, a: &InspectArgs) -> Result<i32> {
    if let Some(f) = &a.format {
        // Report a bad template before asking the daemon anything.
        Format::parse(f)?;
    }
    let mut raws = Vec::new();
    let mut errors = Vec::new();
    for name in &a.names {
        match fetch(client, a, name).await {
            Ok(b) => raws.push(b),
            Err(e) if daemon_error(&e).is_some() => errors.push(describe_error(&e, "")),
            Err(e) => {
                if e.to_string().starts_with("No such object") {
                    errors.push(format!("Error: {e}"));
                } else {
                    return Err(e);
                }
            }
        }
    }
    let text = render(&raws, a.format.as_deref())?;
    // docker's template inspector writes a bare newline when nothing matched.
    print!("{}", if text.is_empty() { "\n" } else { &text });
    for e in &errors {
        eprintln!("{e}");
    }
    Ok(i32::from(!errors.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_format_is_an_indented_array() {
        let raws = vec![Bytes::from_static(
            b"{\"Id\":\"abc\",\"State\":{\"Running\":true},\"Args\":[]}\n",
        )];
        assert_eq!(
            render(&raws, None).unwrap(),
            "[\n    {\n        \"Id\": \"abc\",\n        \"State\": {\n            \"Running\": true\n        },\n        \"Args\": []\n    }\n]\n"
        );
        assert_eq!(render(&[], None).unwrap(), "[]\n");
    }

    #[test]
    fn formats_each_object_on_its_line() {
        let raws = vec![
            Bytes::from_static(b"{\"Name\":\"/a\",\"State\":{\"Running\":true}}"),
            Bytes::from_static(b"{\"Name\":\"/b\",\"State\":{\"Running\":false}}"),
        ];
        assert_eq!(
            render(&raws, Some("{{.Name}} {{.State.Running}}")).unwrap(),
            "/a true\n/b false\n"
        );
    }

    #[test]
    fn the_sample_keeps_its_key_order() {
        let b: &[u8] = include_bytes!(
            "../../../../tests/fixtures/docker-api-samples/containers_sample_json.json"
        );
        let out = render(&[Bytes::from_static(b)], None).unwrap();
        assert!(out.starts_with("[\n    {\n        \"Id\": "), "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v[0]["Name"], "/sample");
    }
}
