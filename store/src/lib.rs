//! The ferry store: the content-addressed blob cache and the SQLite state.
//!
//! Nothing is implemented yet: that is issue "Registry client, registries.conf
//! and content store".
