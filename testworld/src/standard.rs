//! The standard world and the large set, assembled from the generators.
//! Pure: no I/O.

use std::collections::BTreeMap;

use crate::content::Content;

/// Everything the standard world serves.
#[derive(Clone, Debug, Default)]
pub struct StandardWorld {
    /// Images, published under public-looking names.
    pub content: Content,
    /// Update-graph responses, keyed by (channel, architecture), e.g.
    /// `("stable-4.15", "amd64")`: the JSON body `/graph?channel=&arch=` returns.
    pub graphs: BTreeMap<(String, String), String>,
}

/// Builds the standard world (deterministic: same bytes every call).
pub fn standard_world() -> StandardWorld {
    StandardWorld::default()
}

/// Builds the large set used by benchmarks and a few tests.
pub fn large_set() -> Content {
    Content::default()
}
