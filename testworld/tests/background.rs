//! `ferry world up|down` underneath: background registries and graph server
//! that outlive their starter, found again by `up`, stopped by `down`.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ferry_testworld::background::{self, UpOutcome};
use ferry_testworld::http::{self, Transport};

use common::inspect_raw;

const GRAPH_SERVER_DIRECTORY: &str = "FERRY_TESTWORLD_GRAPH_SERVER_DIRECTORY";

/// Acts as `ferry world serve-graph` when re-invoked by the test below.
#[test]
fn graph_server_child() {
    if let Some(directory) = std::env::var_os(GRAPH_SERVER_DIRECTORY) {
        background::serve_graph(Path::new(&directory)).unwrap();
    }
}

/// This test binary re-invoked as the graph server. The extra filter
/// `serve-graph` matches no test; it puts the marker `down` looks for into
/// the command line.
fn graph_server_command(directory: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "graph_server_child",
            "serve-graph",
            "--nocapture",
        ])
        .env(GRAPH_SERVER_DIRECTORY, directory);
    command
}

/// Stops the world even when an assertion fails.
struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = background::down(&self.0);
    }
}

#[test]
fn up_starts_a_background_world_up_again_finds_it_and_down_stops_it() {
    let directory = tempfile::tempdir().unwrap();
    let _down = Down(directory.path().to_path_buf());
    let UpOutcome::Started(descriptor) =
        background::up(directory.path(), graph_server_command(directory.path())).unwrap()
    else {
        panic!("the world was not up yet");
    };
    assert_eq!(descriptor.registries.len(), 3);
    assert!(background::is_running(&descriptor));

    let again = background::up(directory.path(), graph_server_command(directory.path())).unwrap();
    assert_eq!(again, UpOutcome::AlreadyUp(descriptor.clone()));

    let content = &ferry_testworld::world::standard().content;
    let placement = content
        .placements
        .iter()
        .find(|placement| !placement.tags.is_empty())
        .unwrap();
    let reference = format!(
        "{}/{}:{}",
        placement.host, placement.repository, placement.tags[0]
    );
    assert_eq!(
        inspect_raw(&descriptor.registries_conf, &reference),
        content.manifests[&placement.digest].bytes
    );
    let graph_address: SocketAddr = descriptor
        .graph_url
        .trim_start_matches("http://")
        .trim_end_matches("/graph")
        .parse()
        .unwrap();
    let ((channel, arch), body) = ferry_testworld::world::standard()
        .graphs
        .iter()
        .next()
        .unwrap();
    let response = http::get(
        graph_address,
        &format!("/graph?channel={channel}&arch={arch}"),
        Transport::Plain,
        None,
    )
    .unwrap();
    assert_eq!(&response.text(), body);

    let stopped = background::down(directory.path()).unwrap();
    assert_eq!(stopped.len(), 4, "{stopped:?}");
    for registry in descriptor.registries.values() {
        let address: SocketAddr = registry.address.parse().unwrap();
        assert!(
            TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_err(),
            "{} still answers",
            registry.address
        );
    }
    assert!(TcpStream::connect_timeout(&graph_address, Duration::from_millis(500)).is_err());
    assert!(background::down(directory.path()).unwrap().is_empty());
    assert!(!directory.path().join("world.json").exists());
}
