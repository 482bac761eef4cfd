//! One module per command (or family of commands).

pub mod images;
pub mod inspect;
pub mod lifecycle;
pub mod logs;
pub mod ps;
pub mod run;
pub mod stats;
pub mod system;

use std::collections::HashMap;

use anyhow::{Result, bail};
use tokio::io::AsyncWriteExt;

/// Parses `KEY=VALUE` filters (`-f status=exited`) into the API's filter map.
pub fn parse_filters(filters: &[String]) -> Result<HashMap<String, Vec<String>>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for f in filters {
        let Some((k, v)) = f.split_once('=') else {
            bail!("bad format of filter (expected name=value)");
        };
        map.entry(k.trim().to_lowercase())
            .or_default()
            .push(v.to_string());
    }
    Ok(map)
}

/// Writes `bytes` to stdout and flushes.
pub async fn out(bytes: &[u8]) -> Result<()> {
    let mut o = tokio::io::stdout();
    o.write_all(bytes).await?;
    o.flush().await?;
    Ok(())
}

/// Writes `bytes` to stderr and flushes.
pub async fn err(bytes: &[u8]) -> Result<()> {
    let mut e = tokio::io::stderr();
    e.write_all(bytes).await?;
    e.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let m = parse_filters(&[
            "status=exited".into(),
            "label=a=b".into(),
            "status=created".into(),
        ])
        .unwrap();
        assert_eq!(m["status"], vec!["exited", "created"]);
        assert_eq!(m["label"], vec!["a=b"]);
        assert!(parse_filters(&["nope".into()]).is_err());
    }
}
