//! A Docker token service on 127.0.0.1, for testing Bearer authentication
//! against a real `docker-registry` (`auth: token:`).
//!
//! `GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...]` answers
//! `{"token", "access_token", "expires_in", "issued_at"}` with a JWT signed
//! ES256 by a key generated at start; its self-signed certificate travels in
//! the JWT header (`x5c`) and is the registry's `rootcertbundle`, which is
//! how distribution checks the signature. With credentials configured, the
//! service requires them (Basic) and answers 401 otherwise. It counts the
//! tokens it issued, per scope, so tests can see caching. Stops on drop.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

use crate::error::{Context as _, Error, Result};
use crate::registry::TokenAuthSettings;

/// The service name registries are configured with.
pub const SERVICE: &str = "ferry-test-registry";
/// The issuer name in every token.
pub const ISSUER: &str = "ferry-test-token-service";

struct Shared {
    key: EcdsaKeyPair,
    certificate_der: Vec<u8>,
    credentials: Option<(String, String)>,
    issued: Mutex<BTreeMap<String, usize>>,
    stopping: AtomicBool,
}

/// The running token service.
pub struct TokenService {
    shared: Arc<Shared>,
    address: SocketAddr,
    certificate: PathBuf,
    accept: Option<JoinHandle<()>>,
    _directory: tempfile::TempDir,
}

fn base64_url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl TokenService {
    /// Starts the service; with `credentials`, it requires them.
    pub fn start(credentials: Option<(&str, &str)>) -> Result<TokenService> {
        let directory = tempfile::Builder::new()
            .prefix("ferry-token-service-")
            .tempdir()
            .context(|| "creating the token service's directory".to_owned())?;
        let key_pair = rcgen::KeyPair::generate()
            .map_err(|error| Error::new(format!("generating a signing key: {error}")))?;
        let mut parameters = rcgen::CertificateParams::new(Vec::<String>::new())
            .map_err(|error| Error::new(format!("certificate parameters: {error}")))?;
        parameters
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ferry test token service");
        let certificate = parameters
            .self_signed(&key_pair)
            .map_err(|error| Error::new(format!("signing the token certificate: {error}")))?;
        let certificate_path = directory.path().join("token-signer.crt");
        std::fs::write(&certificate_path, certificate.pem())
            .context(|| format!("writing {}", certificate_path.display()))?;
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key_pair.serialize_der(),
            &SystemRandom::new(),
        )
        .map_err(|error| Error::new(format!("loading the signing key: {error}")))?;
        let listener =
            TcpListener::bind("127.0.0.1:0").context(|| "binding the token service".to_owned())?;
        let address = listener
            .local_addr()
            .context(|| "reading the token service address".to_owned())?;
        let shared = Arc::new(Shared {
            key,
            certificate_der: certificate.der().to_vec(),
            credentials: credentials.map(|(user, password)| (user.to_owned(), password.to_owned())),
            issued: Mutex::new(BTreeMap::new()),
            stopping: AtomicBool::new(false),
        });
        let accepting = shared.clone();
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let connection = accepting.clone();
                std::thread::spawn(move || {
                    let _ = serve(&connection, stream);
                });
            }
        });
        Ok(TokenService {
            shared,
            address,
            certificate: certificate_path,
            accept: Some(accept),
            _directory: directory,
        })
    }

    /// The settings a registry needs to trust this service.
    pub fn registry_settings(&self) -> TokenAuthSettings {
        TokenAuthSettings {
            realm: format!("http://{}/token", self.address),
            service: SERVICE.to_owned(),
            issuer: ISSUER.to_owned(),
            root_certificate_bundle: self.certificate.clone(),
        }
    }

    /// The signing certificate (PEM).
    pub fn certificate(&self) -> &Path {
        &self.certificate
    }

    /// Tokens issued so far, by the space-joined scopes they were asked for.
    pub fn issued(&self) -> BTreeMap<String, usize> {
        self.shared
            .issued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for TokenService {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.address);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut output = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        output.push(byte);
                        index += 3;
                    }
                    Err(_) => {
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

fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn serve(shared: &Shared, mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorization = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((key, value)) = line.split_once(':')
            && key.trim().eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_owned());
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != "/token" {
        return respond(
            &mut stream,
            "404 Not Found",
            r#"{"errors":[{"code":"NOT_FOUND"}]}"#,
        );
    }
    let mut scopes = Vec::new();
    let mut service = String::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "scope" => scopes.push(percent_decode(value)),
            "service" => service = percent_decode(value),
            _ => {}
        }
    }
    let subject = match &shared.credentials {
        None => "anonymous".to_owned(),
        Some((user, password)) => {
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            );
            if authorization.as_deref() != Some(expected.as_str()) {
                return respond(
                    &mut stream,
                    "401 Unauthorized",
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#,
                );
            }
            user.clone()
        }
    };
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|scope| {
            let mut parts = scope.splitn(3, ':');
            let kind = parts.next()?;
            let name = parts.next()?;
            let actions: Vec<&str> = parts.next()?.split(',').collect();
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions}))
        })
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(&shared.certificate_der)],
    });
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": subject,
        "aud": service,
        "exp": now + 300,
        "nbf": now.saturating_sub(10),
        "iat": now,
        "jti": format!("{now}-{}", scopes.join(" ").len()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        base64_url(header.to_string().as_bytes()),
        base64_url(claims.to_string().as_bytes())
    );
    let Ok(signature) = shared
        .key
        .sign(&SystemRandom::new(), signing_input.as_bytes())
    else {
        return respond(
            &mut stream,
            "500 Internal Server Error",
            r#"{"errors":[{"code":"SIGNING"}]}"#,
        );
    };
    let token = format!("{signing_input}.{}", base64_url(signature.as_ref()));
    *shared
        .issued
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(scopes.join(" "))
        .or_default() += 1;
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": 300,
    });
    respond(&mut stream, "200 OK", &body.to_string())
}
