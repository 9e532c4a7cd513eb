//! Release signatures of the test world: a signing key made per run, and
//! signature files in the shape Red Hat publishes (a compressed, one-pass
//! signed OpenPGP message over the "atomic container signature" JSON
//! claims), so that verification is tested against signatures nobody had to
//! ship. The claims are built here as JSON; the signing is rPGP's.

use pgp::composed::{
    ArmorOptions, KeyType, MessageBuilder, SecretKeyParamsBuilder, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::{CompressionAlgorithm, Password};

/// A key that signs release payloads.
pub struct ReleaseSigner {
    secret: SignedSecretKey,
}

impl ReleaseSigner {
    /// Makes a new Ed25519 key that can sign (fast to make, unlike RSA).
    pub fn generate() -> ReleaseSigner {
        let mut parameters = SecretKeyParamsBuilder::default();
        parameters
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .primary_user_id("ferry test world release signer <releases@test.invalid>".into());
        let secret = parameters
            .build()
            .expect("the key parameters are complete")
            .generate(rand::thread_rng())
            .expect("generating an Ed25519 key");
        ReleaseSigner { secret }
    }

    /// The public key, armored: what `OCP_SIGNATURE_VERIFICATION_PK` points to.
    pub fn public_keyring_armored(&self) -> String {
        SignedPublicKey::from(self.secret.clone())
            .to_armored_string(ArmorOptions::default())
            .expect("armoring a public key")
    }

    /// A signature file for the payload `digest` (`sha256:<hex>`) whose
    /// identity is `docker_reference` (e.g. `<reg>/ocp-release:4.18.1-x86_64`).
    pub fn sign_payload(&self, digest: &str, docker_reference: &str) -> Vec<u8> {
        self.sign_claims(&claims(digest, docker_reference))
    }

    /// A signature file for every payload of `graphs`, as Red Hat signs
    /// them (identity `quay.io/openshift-release-dev/ocp-release:<version>-<arch>`,
    /// `x86_64` and `aarch64` for amd64 and arm64): payload digest
    /// (`sha256:<hex>`) → file, what [`SignatureServer::start`] serves.
    pub fn sign_graphs(
        &self,
        graphs: &crate::graph_server::Graphs,
    ) -> std::collections::BTreeMap<String, Vec<u8>> {
        let mut signatures = std::collections::BTreeMap::new();
        for ((_, architecture), graph) in graphs {
            let graph: serde_json::Value =
                serde_json::from_str(graph).expect("the world's graphs are JSON");
            let suffix = match architecture.as_str() {
                "amd64" => "x86_64",
                "arm64" => "aarch64",
                other => other,
            };
            for node in graph["nodes"].as_array().into_iter().flatten() {
                let (Some(payload), Some(version)) =
                    (node["payload"].as_str(), node["version"].as_str())
                else {
                    continue;
                };
                let Some((_, digest)) = payload.rsplit_once('@') else {
                    continue;
                };
                let identity = format!(
                    "{}/{}:{version}-{suffix}",
                    crate::releases::RELEASE_HOST,
                    crate::releases::RELEASE_REPOSITORY
                );
                signatures.insert(digest.to_owned(), self.sign_payload(digest, &identity));
            }
        }
        signatures
    }

    /// A signature file over any content (to test refusals of bad claims).
    pub fn sign_claims(&self, claims: &[u8]) -> Vec<u8> {
        let mut builder = MessageBuilder::from_bytes("", claims.to_vec());
        builder.compression(CompressionAlgorithm::ZIP).sign(
            &self.secret.primary_key,
            Password::empty(),
            HashAlgorithm::Sha256,
        );
        builder
            .to_vec(rand::thread_rng())
            .expect("signing the claims")
    }
}

impl ReleaseSigner {
    /// A signature file for `digest` whose signed content was changed after
    /// it was signed (one letter of the claims' `optional.creator`): it
    /// parses, its claims name `digest`, and its signature does not verify.
    /// Not compressed, so the claims can be found and changed.
    pub fn tampered_payload_signature(&self, digest: &str, docker_reference: &str) -> Vec<u8> {
        let mut builder = MessageBuilder::from_bytes("", claims(digest, docker_reference));
        builder.sign(
            &self.secret.primary_key,
            Password::empty(),
            HashAlgorithm::Sha256,
        );
        let mut file = builder
            .to_vec(rand::thread_rng())
            .expect("signing the claims");
        let creator = b"ferry test world";
        let at = file
            .windows(creator.len())
            .position(|window| window == creator)
            .expect("the claims are stored uncompressed");
        // "ferry test world" becomes "ferry test w0rld".
        file[at + 12] = b'0';
        file
    }
}

/// The JSON claims of a release signature.
pub fn claims(digest: &str, docker_reference: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "critical": {
            "image": { "docker-manifest-digest": digest },
            "type": "atomic container signature",
            "identity": { "docker-reference": docker_reference },
        },
        "optional": { "creator": "ferry test world" },
    }))
    .expect("serializing JSON claims")
}

/// A message that is not signed (only compressed literal data).
pub fn unsigned_message(content: &[u8]) -> Vec<u8> {
    let mut builder = MessageBuilder::from_bytes("", content.to_vec());
    builder.compression(CompressionAlgorithm::ZIP);
    builder
        .to_vec(rand::thread_rng())
        .expect("writing a literal message")
}

/// Serves signature files over HTTP on 127.0.0.1 at the `OCP_SIGNATURE_URL`
/// layout: `GET /<prefix>sha256=<hex>/signature-1`.
pub struct SignatureServer {
    address: std::net::SocketAddr,
    stopping: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SignatureServer {
    /// Serves `signatures` (digest `sha256:<hex>` → file bytes) from a thread.
    pub fn start(
        signatures: std::collections::BTreeMap<String, Vec<u8>>,
    ) -> std::io::Result<SignatureServer> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        let address = listener.local_addr()?;
        let files: std::collections::BTreeMap<String, Vec<u8>> = signatures
            .into_iter()
            .map(|(digest, bytes)| {
                (
                    format!("/signatures/{}/signature-1", digest.replacen(':', "=", 1)),
                    bytes,
                )
            })
            .collect();
        let files = std::sync::Arc::new(files);
        let stopping = std::sync::Arc::new(AtomicBool::new(false));
        let thread_stopping = std::sync::Arc::clone(&stopping);
        let thread = std::thread::Builder::new()
            .name("signature-server".to_owned())
            .spawn(move || {
                for stream in listener.incoming() {
                    if thread_stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(stream) = stream {
                        let _ = answer(stream, &files);
                    }
                }
            })?;
        Ok(SignatureServer {
            address,
            stopping,
            thread: Some(thread),
        })
    }

    /// The base URL to use as `OCP_SIGNATURE_URL` (ends with `/`).
    pub fn base_url(&self) -> String {
        format!("http://{}/signatures/", self.address)
    }
}

impl Drop for SignatureServer {
    fn drop(&mut self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop.
        let _ =
            std::net::TcpStream::connect_timeout(&self.address, std::time::Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(
    mut stream: std::net::TcpStream,
    files: &std::collections::BTreeMap<String, Vec<u8>>,
) -> std::io::Result<()> {
    use std::io::{BufRead, Write};
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut reader = std::io::BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    let (status, body): (&str, &[u8]) = match files.get(path) {
        Some(bytes) => ("200 OK", bytes),
        None => ("404 Not Found", b"no such signature"),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}
