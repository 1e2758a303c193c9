//! What `vmctl run` prints of a create's progress (an image pull, a disk made) when stderr
//! is not a terminal — the only case the native front serves: one plain line per change of
//! a layer's state or of the whole image's step, as `PullProgress` does in the Node CLI
//! (`ts/cli/src/output/progress-bars.ts`, its `tty: false` mode).

use std::collections::HashMap;

use crate::api::Progress;

#[derive(Default)]
pub struct PlainProgress {
    /// Each layer's last status, by its short id, in the order first seen.
    layers: Vec<(String, String)>,
    index: HashMap<String, usize>,
    whole: String,
}

impl PlainProgress {
    /// The lines `event` adds (each ending in "\n"), in order.
    pub fn update(&mut self, event: &Progress) -> String {
        let mut out = String::new();
        if !event.item.is_empty() {
            let status = layer_status(event);
            self.set(&short_id(&event.item), status, &mut out);
        } else if event.phase == "done" || event.phase == "ready" {
            for i in 0..self.layers.len() {
                let (id, status) = &self.layers[i];
                let status = if status == "Already exists" {
                    status.clone()
                } else {
                    "Pull complete".to_string()
                };
                let id = id.clone();
                self.set(&id, status, &mut out);
            }
            self.whole.clear();
        } else {
            let text = if !event.message.is_empty() {
                event.message.clone()
            } else {
                match event.phase.as_str() {
                    "resolve" => "Resolving".to_string(),
                    "mkfs" => "Creating the image's disk".to_string(),
                    other => other.to_string(),
                }
            };
            if text != self.whole {
                if !text.is_empty() {
                    out.push_str(&text);
                    out.push('\n');
                }
                self.whole = text;
            }
        }
        out
    }

    fn set(&mut self, id: &str, status: String, out: &mut String) {
        let i = *self.index.entry(id.to_string()).or_insert_with(|| {
            self.layers.push((id.to_string(), String::new()));
            self.layers.len() - 1
        });
        if self.layers[i].1 != status {
            out.push_str(&format!("{id}: {status}\n"));
            self.layers[i].1 = status;
        }
    }
}

/// A digest's first 12 hex digits ("sha256:3f4a…" → "3f4a…"), or the item itself.
fn short_id(item: &str) -> String {
    let hex = item.split_once(':').map_or(item, |(_, h)| h);
    let short: String = hex.chars().take(12).collect();
    if short.is_empty() { item.to_string() } else { short }
}

fn layer_status(event: &Progress) -> String {
    let total = event.total.filter(|t| *t > 0);
    let complete = total.is_some_and(|t| event.current.unwrap_or(0) >= t);
    let status = match event.phase.as_str() {
        "exists" => "Already exists",
        "download" if complete => "Download complete",
        "download" => "Downloading",
        "downloaded" => "Download complete",
        "copy" if complete => "Copy complete",
        "copy" => "Copying",
        "verify" => "Verifying Checksum",
        "unpack" if complete => "Pull complete",
        "unpack" => "Unpacking",
        "done" => "Pull complete",
        _ if !event.message.is_empty() => return event.message.clone(),
        other => return other.to_string(),
    };
    status.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(phase: &str, item: &str, current: Option<u64>, total: Option<u64>) -> Progress {
        Progress {
            phase: phase.into(),
            item: item.into(),
            current,
            total,
            message: String::new(),
        }
    }

    #[test]
    fn a_pull_as_plain_lines() {
        let mut p = PlainProgress::default();
        let layer = "sha256:0123456789abcdef0123";
        let lines: String = [
            event("resolve", "", None, None),
            event("exists", "sha256:aaaaaaaaaaaaaaaa", None, None),
            event("download", layer, Some(1), Some(10)),
            event("download", layer, Some(5), Some(10)),
            event("download", layer, Some(10), Some(10)),
            event("unpack", layer, Some(3), Some(10)),
            event("mkfs", "", None, None),
            event("ready", "", None, None),
        ]
        .iter()
        .map(|e| p.update(e))
        .collect();
        assert_eq!(
            lines,
            "Resolving\naaaaaaaaaaaa: Already exists\n0123456789ab: Downloading\n0123456789ab: Download complete\n0123456789ab: Unpacking\nCreating the image's disk\n0123456789ab: Pull complete\n"
        );
    }
}
