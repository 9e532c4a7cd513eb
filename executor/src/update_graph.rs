//! Asking the update service (Cincinnati) for release graphs: one GET per
//! channel and architecture, as oc-mirror asks (notes §5.1), then the pure
//! selection of `ferry-content` over what came back.
//!
//! The endpoint is OCP's default, or `UPDATE_URL_OVERRIDE` as the caller
//! read it (the full endpoint; only the query string is added); OKD
//! channels ask OKD's service. Each answer is kept as the exact bytes the
//! service sent, so callers can save it and select again offline.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_content::release::graph::{
    GRAPH_ACCEPT, GraphError, OCP_UPDATE_URL, OKD_UPDATE_URL, QueryUrlError, UpdateGraph,
    graph_query_url,
};
use ferry_content::release::selection::{
    Graphs, Selection, SelectionErrors, configured_graphs, select,
};
use ferry_schemas::config::{Architecture, ChannelType, Platform};

/// How long one graph query may take (oc-mirror allows an hour; a graph is
/// a few hundred KiB).
const QUERY_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a graph could not be had.
#[derive(Debug, thiserror::Error)]
pub enum UpdateGraphError {
    #[error(transparent)]
    Url(#[from] QueryUrlError),
    #[error("update service {url}: {message}")]
    Request { url: String, message: String },
    #[error("update service {url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("update service {url}: {source}")]
    Invalid { url: String, source: GraphError },
    #[error("{0}")]
    Selection(SelectionErrors),
}

/// One graph as the service answered it.
#[derive(Clone, Debug)]
pub struct FetchedGraph {
    pub url: String,
    /// The body, byte for byte.
    pub body: Vec<u8>,
    pub graph: UpdateGraph,
}

/// The update service of a run.
#[derive(Clone, Debug)]
pub struct UpdateService {
    ocp_base: String,
    client: reqwest::Client,
}

impl UpdateService {
    /// `url_override` is `UPDATE_URL_OVERRIDE` as read by the caller.
    pub fn new(url_override: Option<String>) -> Result<UpdateService, UpdateGraphError> {
        let ocp_base = url_override
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| OCP_UPDATE_URL.to_owned());
        let client = reqwest::Client::builder()
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .timeout(QUERY_TIMEOUT)
            .build()
            .map_err(|error| UpdateGraphError::Request {
                url: ocp_base.clone(),
                message: error.to_string(),
            })?;
        Ok(UpdateService { ocp_base, client })
    }

    /// The endpoint asked for channels of `channel_type`.
    pub fn base(&self, channel_type: ChannelType) -> &str {
        match channel_type {
            ChannelType::Ocp => &self.ocp_base,
            ChannelType::Okd => OKD_UPDATE_URL,
        }
    }

    /// GET one channel's graph for one architecture.
    pub async fn graph(
        &self,
        channel_type: ChannelType,
        channel: &str,
        architecture: Architecture,
    ) -> Result<FetchedGraph, UpdateGraphError> {
        let url = graph_query_url(self.base(channel_type), channel, architecture)?;
        let shown = url.to_string();
        let request_error = |error: reqwest::Error| UpdateGraphError::Request {
            url: shown.clone(),
            message: describe(&error),
        };
        let response = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, GRAPH_ACCEPT)
            .send()
            .await
            .map_err(request_error)?;
        let status = response.status();
        let body = response.bytes().await.map_err(request_error)?.to_vec();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let mut excerpt: String = text.chars().take(300).collect();
            if excerpt.is_empty() {
                excerpt = "(empty body)".to_owned();
            }
            return Err(UpdateGraphError::Status {
                url: shown,
                status: status.as_u16(),
                body: excerpt,
            });
        }
        let graph = UpdateGraph::parse(&body).map_err(|source| UpdateGraphError::Invalid {
            url: shown.clone(),
            source,
        })?;
        Ok(FetchedGraph {
            url: shown,
            body,
            graph,
        })
    }

    /// Fetches every graph `platform` needs and selects its releases: the
    /// configured channels first (all at once), then, one at a time, any
    /// channel the cross-channel path walks through.
    pub async fn select(
        &self,
        platform: &Platform,
    ) -> Result<(Selection, BTreeMap<(String, Architecture), FetchedGraph>), UpdateGraphError> {
        let type_of = |channel: &str| {
            platform
                .channels
                .iter()
                .find(|configured| configured.name == channel)
                .map_or(ChannelType::Ocp, |configured| configured.channel_type)
        };
        let mut fetched = BTreeMap::new();
        let first = configured_graphs(platform);
        let answers =
            futures_util::future::join_all(first.iter().map(|(channel, architecture)| {
                self.graph(type_of(channel), channel, *architecture)
            }))
            .await;
        for (key, answer) in first.into_iter().zip(answers) {
            fetched.insert(key, answer?);
        }
        loop {
            let graphs: Graphs = fetched
                .iter()
                .map(|(key, answer)| (key.clone(), answer.graph.clone()))
                .collect();
            match select(platform, &graphs) {
                Ok(selection) => return Ok((selection, fetched)),
                Err(errors) => match errors.missing_graph() {
                    Some(key) if !fetched.contains_key(&key) => {
                        let answer = self.graph(type_of(&key.0), &key.0, key.1).await?;
                        fetched.insert(key, answer);
                    }
                    _ => return Err(UpdateGraphError::Selection(errors)),
                },
            }
        }
    }
}

/// A reqwest error with its causes (the top one alone says little).
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
