//! `ferry world up` keeps the world's storage out of the source checkout
//! it was built from (issue 13, item 13): by default in the user's cache
//! folder (`$XDG_CACHE_HOME/ferry/world`).

use std::process::Command;

/// Stops the world even when an assertion fails.
struct Down(std::path::PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["world", "down", "--dir"])
            .arg(&self.0)
            .output();
    }
}

#[test]
fn world_up_builds_its_storage_in_the_users_cache_folder() {
    let folder = tempfile::tempdir().unwrap();
    let world = folder.path().join("world");
    let cache = folder.path().join("xdg-cache");
    let _down = Down(world.clone());
    let up = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["world", "up", "--dir"])
        .arg(&world)
        .env("XDG_CACHE_HOME", &cache)
        .env_remove("FERRY_WORLD_CACHE")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let descriptor: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(world.join("world.json")).unwrap()).unwrap();
    let storage = descriptor["storage_root"].as_str().unwrap();
    assert!(
        storage.starts_with(&cache.join("ferry/world").display().to_string()),
        "the storage is at {storage}"
    );
    assert!(
        !storage.starts_with(&crate::support::workspace_root().display().to_string()),
        "the storage is in the source checkout: {storage}"
    );
}
