//! OpenShift releases, the pure half: update graphs and the query that asks
//! for them (`graph`), which releases a configuration selects (`selection`),
//! whether the selection leaves an upgrade path (`upgrade_path`), what a
//! payload's metadata names (`payload`), where releases go at a destination
//! (`naming`), and what the listing commands print (`listing`).

pub mod graph;
pub mod listing;
pub mod naming;
pub mod payload;
pub mod selection;
pub mod signature;
pub mod signature_config_map;
pub mod upgrade_path;

pub use graph::{GraphError, UpdateGraph, graph_query_url};
pub use selection::{Graphs, Selection, SelectionError, SelectionErrors, SelectionWarning, select};
pub use upgrade_path::UpgradePathWarning;
