//! The update-graph server: a small HTTP/1.1 server on 127.0.0.1 answering
//! like Cincinnati (the OpenShift update service) from a fixed map of
//! (channel, architecture) → JSON body.
//!
//! `GET /graph?channel=C&arch=A` (also `/api/upgrades_info/v1/graph` and
//! `/api/upgrades_info/graph`) answers the graph with
//! `Content-Type: application/json`; an unknown channel or architecture
//! answers 404 and missing parameters 400, both with a JSON error body
//! `{"kind":"...","value":"..."}`. `arch` defaults to nothing: it is
//! required, as oc-mirror always sends it.
//!
//! `GET /api/upgrades_info/graph-data` answers the graph-data tarball
//! (`application/gzip`), as `api.openshift.com` does for oc-mirror's
//! graph image: [`graph_data_tarball`], a small deterministic
//! cincinnati-graph-data snapshot (ferry reads it from
//! `FERRY_GRAPH_DATA_URL`, [`GraphServer::graph_data_url`]). The server
//! counts the tarball's downloads ([`GraphServer::graph_data_requests`]), so
//! a test can show that a run did not fetch it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::error::{Context, Result};

/// Graph bodies keyed by (channel, architecture).
pub type Graphs = BTreeMap<(String, String), String>;

/// A running graph server; stopped on drop.
#[derive(Debug)]
pub struct GraphServer {
    address: SocketAddr,
    stopping: Arc<AtomicBool>,
    graph_data_requests: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl GraphServer {
    /// Binds 127.0.0.1 on a free port and serves `graphs` from a thread.
    pub fn start(graphs: Graphs) -> Result<GraphServer> {
        GraphServer::start_on(0, graphs)
    }

    /// Binds 127.0.0.1:`port` (0: any free port) and serves from a thread.
    pub fn start_on(port: u16, graphs: Graphs) -> Result<GraphServer> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .context(|| format!("binding the graph server to 127.0.0.1:{port}"))?;
        let address = listener
            .local_addr()
            .context(|| "reading the graph server's address".to_owned())?;
        let stopping = Arc::new(AtomicBool::new(false));
        let thread_stopping = Arc::clone(&stopping);
        let graph_data_requests = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&graph_data_requests);
        let thread = thread::Builder::new()
            .name("graph-server".to_owned())
            .spawn(move || serve_counting(&listener, &graphs, &thread_stopping, &counted))
            .context(|| "starting the graph server thread".to_owned())?;
        Ok(GraphServer {
            address,
            stopping,
            graph_data_requests,
            thread: Some(thread),
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The endpoint to use as `UPDATE_URL_OVERRIDE`:
    /// `http://127.0.0.1:PORT/graph` (clients append `?channel=&arch=`).
    pub fn url(&self) -> String {
        format!("http://{}/graph", self.address)
    }

    /// The graph-data tarball's URL, for `FERRY_GRAPH_DATA_URL`.
    pub fn graph_data_url(&self) -> String {
        format!("http://{}{GRAPH_DATA_PATH}", self.address)
    }

    /// How many times the graph-data tarball was asked for.
    pub fn graph_data_requests(&self) -> usize {
        self.graph_data_requests.load(Ordering::SeqCst)
    }
}

/// Where the graph-data tarball is served (the path of
/// `https://api.openshift.com/api/upgrades_info/graph-data`).
pub const GRAPH_DATA_PATH: &str = "/api/upgrades_info/graph-data";

/// The graph-data tarball the server answers: a cincinnati-graph-data
/// snapshot's shape (`version`, `raw/metadata.json`, one
/// `channels/<channel>.yaml` per channel of the world's graphs listing its
/// versions, `blocked-edges/`), as a tar with fixed headers, gzip with a
/// fixed header: the same bytes every time.
pub fn graph_data_tarball() -> Vec<u8> {
    let mut files = crate::image_builder::LayerFiles::new()
        .file("version", "1.0.0\n")
        .file(
            "raw/metadata.json",
            "{\"description\":\"ferry test world graph data\"}\n",
        )
        .file(
            "blocked-edges/4.16.0-known-risk.yaml",
            "to: 4.16.0\nfrom: 4\\.15\\.12\nurl: https://example.invalid/risk\nname: KnownRisk\nmessage: A known risk of the test world.\nmatchingRules:\n- type: Always\n",
        );
    for (channel, versions) in crate::releases::channels() {
        let mut text = format!("name: {channel}\nversions:\n");
        for version in versions {
            text.push_str(&format!("- {version}\n"));
        }
        files = files.file(&format!("channels/{channel}.yaml"), text);
    }
    crate::image_builder::gzip(&files.tar())
}

impl Drop for GraphServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves `graphs` on `listener` until `stopping` is set (for ever, when
/// nothing sets it: the background `ferry world serve-graph`).
pub fn serve(listener: &TcpListener, graphs: &Graphs, stopping: &AtomicBool) {
    serve_counting(listener, graphs, stopping, &Arc::new(AtomicUsize::new(0)));
}

/// [`serve`], counting the graph-data tarball's downloads in `graph_data`.
fn serve_counting(
    listener: &TcpListener,
    graphs: &Graphs,
    stopping: &AtomicBool,
    graph_data: &Arc<AtomicUsize>,
) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let graphs = graphs.clone();
        let graph_data = Arc::clone(graph_data);
        // One short request per connection; a thread each keeps a slow
        // client from blocking others.
        let _ = thread::Builder::new()
            .name("graph-request".to_owned())
            .spawn(move || {
                let _ = handle(stream, &graphs, &graph_data);
            });
    }
}

fn handle(mut stream: TcpStream, graphs: &Graphs, graph_data: &AtomicUsize) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Skip the headers.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let (status, content_type, body) = match graph_data_request(&request_line) {
        Some(tarball) => {
            graph_data.fetch_add(1, Ordering::SeqCst);
            (200, "application/gzip", tarball)
        }
        None => {
            let (status, body) = answer(&request_line, graphs);
            (status, "application/json", body.into_bytes())
        }
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;
    stream.flush()
}

/// The tarball, when `request_line` asks for the graph data.
fn graph_data_request(request_line: &str) -> Option<Vec<u8>> {
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    (method == "GET" && path == GRAPH_DATA_PATH).then(graph_data_tarball)
}

/// Status and body for one request line, e.g. `GET /graph?channel=stable-4.15&arch=amd64 HTTP/1.1`.
pub fn answer(request_line: &str, graphs: &Graphs) -> (u16, String) {
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    if method != "GET" && method != "HEAD" {
        return (405, error_body("method_not_allowed", method));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if !matches!(
        path,
        "/graph" | "/api/upgrades_info/v1/graph" | "/api/upgrades_info/graph"
    ) {
        return (404, error_body("not_found", path));
    }
    let mut channel = None;
    let mut arch = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value);
        match key {
            "channel" if !value.is_empty() => channel = Some(value),
            "arch" if !value.is_empty() => arch = Some(value),
            _ => {}
        }
    }
    let (Some(channel), Some(arch)) = (channel, arch) else {
        return (
            400,
            error_body(
                "missing_params",
                "mandatory client parameters missing: channel and arch are required",
            ),
        );
    };
    match graphs.get(&(channel.clone(), arch.clone())) {
        Some(graph) => (200, graph.clone()),
        None => (
            404,
            error_body(
                "invalid_channel",
                &format!("unknown channel {channel:?} for architecture {arch:?}"),
            ),
        ),
    }
}

fn error_body(kind: &str, value: &str) -> String {
    serde_json::json!({ "kind": kind, "value": value }).to_string()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut output = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' if index + 2 < bytes.len() => {
                let hex = |byte: u8| (byte as char).to_digit(16);
                match (hex(bytes[index + 1]), hex(bytes[index + 2])) {
                    (Some(high), Some(low)) => {
                        output.push((high * 16 + low) as u8);
                        index += 3;
                    }
                    _ => {
                        output.push(b'%');
                        index += 1;
                    }
                }
            }
            b'+' => {
                output.push(b' ');
                index += 1;
            }
            byte => {
                output.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&output).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graphs() -> Graphs {
        let mut graphs = Graphs::new();
        graphs.insert(
            ("stable-4.15".to_owned(), "amd64".to_owned()),
            r#"{"nodes":[],"edges":[]}"#.to_owned(),
        );
        graphs
    }

    #[test]
    fn known_channel_answers_its_graph_on_every_path() {
        for path in [
            "/graph",
            "/api/upgrades_info/v1/graph",
            "/api/upgrades_info/graph",
        ] {
            let line = format!("GET {path}?channel=stable-4.15&arch=amd64&id=x HTTP/1.1\r\n");
            assert_eq!(
                answer(&line, &graphs()),
                (200, r#"{"nodes":[],"edges":[]}"#.to_owned())
            );
        }
    }

    #[test]
    fn unknown_channel_is_404_and_missing_parameters_400() {
        let (status, body) = answer("GET /graph?channel=fast-9&arch=amd64 HTTP/1.1", &graphs());
        assert_eq!(status, 404);
        assert!(body.contains(r#""kind":"invalid_channel""#), "{body}");
        let (status, _) = answer("GET /graph?channel=stable-4.15 HTTP/1.1", &graphs());
        assert_eq!(status, 400);
        let (status, _) = answer("GET /graph HTTP/1.1", &graphs());
        assert_eq!(status, 400);
    }

    #[test]
    fn the_graph_data_tarball_is_deterministic_and_lists_the_channels() {
        let tarball = graph_data_tarball();
        assert_eq!(tarball, graph_data_tarball());
        assert_eq!(
            graph_data_request(&format!("GET {GRAPH_DATA_PATH} HTTP/1.1")),
            Some(tarball.clone())
        );
        assert_eq!(graph_data_request("GET /graph HTTP/1.1"), None);
        let tar = crate::content::gunzip(&tarball).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert!(
            names.contains(&"channels/stable-4.16.yaml".to_owned()),
            "{names:?}"
        );
        assert!(names.contains(&"version".to_owned()), "{names:?}");
    }

    #[test]
    fn parameters_are_percent_decoded() {
        assert_eq!(percent_decode("stable%2D4.15"), "stable-4.15");
        assert_eq!(percent_decode("a%"), "a%");
    }
}
