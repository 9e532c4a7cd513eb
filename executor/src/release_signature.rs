//! Fetching a release payload's signature (notes §5.3): one GET of
//! `<base>sha256=<hex>/signature-1`, where the base is Red Hat's or
//! `OCP_SIGNATURE_URL` as the caller read it, then the pure verification of
//! `ferry-content` against the keyring. The fetched bytes are returned as
//! they came, for the caller to cache as `<tag>-sha256-<hex>` and to put in
//! the signature ConfigMap.

use std::time::Duration;

use ferry_content::release::signature::{Keyring, SignatureError, VerifiedSignature, verify};
use ferry_schemas::Digest;

/// Where Red Hat publishes release signatures.
pub const DEFAULT_SIGNATURE_URL: &str =
    "https://mirror.openshift.com/pub/openshift-v4/signatures/openshift/release/";

/// A signature file is about 1 KiB; more than this is not one.
const SIGNATURE_MAXIMUM_BYTES: usize = 1024 * 1024;

/// Why a payload's signature could not be had or was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseSignatureError {
    #[error("release signature {url}: {message}")]
    Request { url: String, message: String },
    #[error("no signature found for {digest} at {url} (HTTP {status})")]
    NotFound {
        digest: Digest,
        url: String,
        status: u16,
    },
    #[error("release signature {url} is larger than {SIGNATURE_MAXIMUM_BYTES} bytes")]
    TooLarge { url: String },
    #[error("release signature {url} for {digest}: {source}")]
    Invalid {
        digest: Digest,
        url: String,
        source: SignatureError,
    },
}

/// The URL of a payload's first signature under `base`.
pub fn signature_url(base: &str, digest: &Digest) -> String {
    let separator = if base.ends_with('/') { "" } else { "/" };
    format!(
        "{base}{separator}{}={}/signature-1",
        digest.algorithm().name(),
        digest.hex()
    )
}

/// A fetched and verified signature.
#[derive(Clone, Debug)]
pub struct FetchedSignature {
    pub url: String,
    /// The file, byte for byte.
    pub bytes: Vec<u8>,
    pub verified: VerifiedSignature,
}

/// Where signatures come from.
#[derive(Clone, Debug)]
pub struct SignatureSource {
    base: String,
    client: reqwest::Client,
}

impl SignatureSource {
    /// `url_override` is `OCP_SIGNATURE_URL` as read by the caller.
    pub fn new(url_override: Option<String>) -> Result<SignatureSource, ReleaseSignatureError> {
        let base = url_override
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| DEFAULT_SIGNATURE_URL.to_owned());
        let client = reqwest::Client::builder()
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|error| ReleaseSignatureError::Request {
                url: base.clone(),
                message: error.to_string(),
            })?;
        Ok(SignatureSource { base, client })
    }

    /// GETs the signature of the payload `digest` and verifies it with `keyring`.
    pub async fn fetch_verified(
        &self,
        digest: &Digest,
        keyring: &Keyring,
    ) -> Result<FetchedSignature, ReleaseSignatureError> {
        let url = signature_url(&self.base, digest);
        let request_error = |error: reqwest::Error| ReleaseSignatureError::Request {
            url: url.clone(),
            message: error.to_string(),
        };
        let response = self.client.get(&url).send().await.map_err(request_error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(ReleaseSignatureError::NotFound {
                digest: digest.clone(),
                url,
                status: status.as_u16(),
            });
        }
        if response
            .content_length()
            .is_some_and(|length| length > SIGNATURE_MAXIMUM_BYTES as u64)
        {
            return Err(ReleaseSignatureError::TooLarge { url });
        }
        let bytes = response.bytes().await.map_err(request_error)?.to_vec();
        if bytes.len() > SIGNATURE_MAXIMUM_BYTES {
            return Err(ReleaseSignatureError::TooLarge { url });
        }
        let verified =
            verify(keyring, &bytes, digest).map_err(|source| ReleaseSignatureError::Invalid {
                digest: digest.clone(),
                url: url.clone(),
                source,
            })?;
        Ok(FetchedSignature {
            url,
            bytes,
            verified,
        })
    }
}
