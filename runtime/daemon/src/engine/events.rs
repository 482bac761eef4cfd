//! The engine's event stream (`GET /events`): container and image events in
//! dockerd's shape, kept in a bounded history for `since` and broadcast to
//! live listeners.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::timefmt::now_unix_nano;

/// Events kept for `since` queries.
pub const HISTORY: usize = 1024;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `container` or `image`.
    pub typ: &'static str,
    /// `create`, `start`, `die`, `tag`, … .
    pub action: String,
    /// Container id or image id.
    pub id: String,
    /// The image a container event's container runs.
    pub from: Option<String>,
    /// Actor attributes (name, image, labels, exitCode, signal…).
    pub attributes: BTreeMap<String, String>,
    /// When, Unix ns.
    pub time_nano: i64,
}

impl Event {
    /// A new event stamped now.
    pub fn new(
        typ: &'static str,
        action: impl Into<String>,
        id: impl Into<String>,
        attributes: BTreeMap<String, String>,
    ) -> Event {
        Event {
            typ,
            action: action.into(),
            id: id.into(),
            from: None,
            attributes,
            time_nano: now_unix_nano(),
        }
    }

    /// The JSON dockerd sends.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "status": self.action,
            "id": self.id,
            "Type": self.typ,
            "Action": self.action,
            "Actor": {"ID": self.id, "Attributes": self.attributes},
            "scope": "local",
            "time": self.time_nano / 1_000_000_000,
            "timeNano": self.time_nano,
        });
        if let Some(f) = &self.from {
            v["from"] = json!(f);
        }
        v
    }

    /// Whether the event passes `filters` (type, event, container, image,
    /// label; values of one key are alternatives, keys must all match).
    pub fn matches(&self, filters: &HashMap<String, Vec<String>>) -> bool {
        filters.iter().all(|(k, vals)| {
            vals.is_empty()
                || vals.iter().any(|v| match k.as_str() {
                    "type" => v == self.typ,
                    "event" => {
                        v == &self.action || self.action.split(':').next() == Some(v.as_str())
                    }
                    "container" => {
                        self.typ == "container"
                            && (self.id.starts_with(v.as_str())
                                || self.attributes.get("name") == Some(v))
                    }
                    "image" => {
                        self.from.as_deref() == Some(v.as_str())
                            || self.attributes.get("image") == Some(v)
                            || (self.typ == "image"
                                && (self.id == *v || self.attributes.get("name") == Some(v)))
                    }
                    "label" => match v.split_once('=') {
                        Some((lk, lv)) => self.attributes.get(lk).map(String::as_str) == Some(lv),
                        None => self.attributes.contains_key(v),
                    },
                    _ => false,
                })
        })
    }
}

/// Publishes events and keeps the recent ones.
#[derive(Debug)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    history: Mutex<VecDeque<Arc<Event>>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// An empty bus.
    pub fn new() -> EventBus {
        let (tx, _) = broadcast::channel(256);
        EventBus {
            tx,
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        }
    }

    /// Publishes `e`.
    pub fn publish(&self, e: Event) {
        let e = Arc::new(e);
        let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        if h.len() == HISTORY {
            h.pop_front();
        }
        h.push_back(e.clone());
        // Sent under the lock so a subscriber sees each event once.
        let _ = self.tx.send(e);
    }

    /// The recent events and a receiver for the following ones.
    pub fn subscribe(&self) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        (h.iter().cloned().collect(), self.tx.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_filters() {
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), "web".to_string());
        attrs.insert("team".to_string(), "obs".to_string());
        let mut e = Event::new("container", "die", "abc123", attrs);
        e.from = Some("bb:1".into());
        let v = e.to_json();
        for k in [
            "status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        let f = |k: &str, v: &str| HashMap::from([(k.to_string(), vec![v.to_string()])]);
        assert!(e.matches(&f("type", "container")));
        assert!(!e.matches(&f("type", "image")));
        assert!(e.matches(&f("container", "web")));
        assert!(e.matches(&f("container", "abc")));
        assert!(e.matches(&f("label", "team=obs")));
        assert!(!e.matches(&f("label", "team=x")));
        assert!(e.matches(&f("image", "bb:1")));
        assert!(e.matches(&f("event", "die")));
        let bus = EventBus::new();
        bus.publish(e.clone());
        let (h, _rx) = bus.subscribe();
        assert_eq!(h.len(), 1);
    }
}
