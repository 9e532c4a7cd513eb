//! The filtered catalog written back as a file-based catalog: a JSON stream,
//! one object after another, grouped by package (by name): the package, its
//! channels (by name), its bundles (by name), its deprecations and other
//! objects; then the objects that belong to no package. Bundles and every
//! object the filter did not change are copied byte for byte; a package
//! whose default channel changed, and channels and deprecations that lost
//! entries, are rewritten with every other field kept. The same catalog and
//! filter always give the same bytes.

use serde_json::{Map, Value};

use crate::catalog::filter::Filtered;
use crate::catalog::model::Catalog;

impl Filtered {
    /// The filtered catalog as FBC JSON (for `configs/catalog.json` of the
    /// rebuilt catalog image).
    pub fn to_json(&self, catalog: &Catalog) -> Vec<u8> {
        let mut out = Vec::new();
        let mut push = |text: &str| {
            out.extend_from_slice(text.as_bytes());
            out.push(b'\n');
        };
        for package in &self.packages {
            if let Some(index) = package.index {
                let object = &catalog.packages[index];
                let raw = catalog.raw(object.span);
                if object.default_channel == package.default_channel {
                    push(raw);
                } else {
                    push(&rewrite(raw, |map| {
                        if let Some(default) = &package.default_channel {
                            map.insert("defaultChannel".to_owned(), Value::String(default.clone()));
                        }
                    }));
                }
            }
            for channel in &package.channels {
                let object = &catalog.channels[channel.index];
                let raw = catalog.raw(object.span);
                if object.entries.len() == channel.entries.len() {
                    push(raw);
                } else {
                    push(&rewrite(raw, |map| {
                        if let Some(Value::Array(entries)) = map.get_mut("entries") {
                            entries.retain(|entry| {
                                entry
                                    .get("name")
                                    .and_then(Value::as_str)
                                    .is_some_and(|name| {
                                        channel.entries.iter().any(|kept| kept == name)
                                    })
                            });
                        }
                    }));
                }
            }
            for bundle in self
                .bundles
                .iter()
                .filter(|bundle| bundle.package == package.name)
            {
                push(catalog.raw(catalog.bundles[bundle.index].span));
            }
            for (index, kept) in &self.deprecations {
                let object = &catalog.deprecations[*index];
                if object.package != package.name {
                    continue;
                }
                let raw = catalog.raw(object.span);
                if kept.len() == object.entries.len() {
                    push(raw);
                } else {
                    push(&rewrite(raw, |map| {
                        if let Some(Value::Array(entries)) = map.get_mut("entries") {
                            let mut position = 0;
                            entries.retain(|_| {
                                position += 1;
                                kept.contains(&(position - 1))
                            });
                        }
                    }));
                }
            }
            for &index in &self.others {
                let object = &catalog.others[index];
                if object.package.as_deref() == Some(package.name.as_str()) {
                    push(catalog.raw(object.span));
                }
            }
        }
        for &index in &self.others {
            let object = &catalog.others[index];
            let belongs = object
                .package
                .as_deref()
                .is_some_and(|name| self.packages.iter().any(|package| package.name == name));
            if !belongs {
                push(catalog.raw(object.span));
            }
        }
        out
    }
}

/// Parses an object, changes it, and writes it back compact (field order
/// kept).
fn rewrite(raw: &str, change: impl FnOnce(&mut Map<String, Value>)) -> String {
    match serde_json::from_str::<Map<String, Value>>(raw) {
        Ok(mut map) => {
            change(&mut map);
            serde_json::to_string(&map).unwrap_or_else(|_| raw.to_owned())
        }
        // The loader read it as an object already; keep it as it is.
        Err(_) => raw.to_owned(),
    }
}
