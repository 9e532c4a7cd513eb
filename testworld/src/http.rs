//! A minimal HTTP/1.1 client for loopback checks: readiness polls of the
//! registries (`GET /v2/`) and requests to the update-graph server, over
//! plain TCP or TLS trusting the world's generated authority. Not a general
//! client: one request per connection, `Connection: close`, whole body read.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};

use crate::certificates::ca_certificate_der;
use crate::error::{Context, Error, Result};

/// An HTTP response: status, headers (names lower-cased) and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How to reach the server.
#[derive(Clone, Copy, Debug)]
pub enum Transport<'a> {
    /// Plain HTTP.
    Plain,
    /// HTTPS, trusting only the PEM authority certificate at this path.
    Tls { ca_certificate: &'a Path },
}

/// `GET path` from `address`, with optional basic-auth credentials.
pub fn get(
    address: SocketAddr,
    path: &str,
    transport: Transport<'_>,
    basic_auth: Option<(&str, &str)>,
) -> Result<Response> {
    let what = || format!("GET {path} from {address}");
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).context(what)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .context(what)?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    if let Some((user, password)) = basic_auth {
        request.push_str(&format!(
            "Authorization: Basic {}\r\n",
            encode_base64(format!("{user}:{password}").as_bytes())
        ));
    }
    request.push_str("\r\n");
    let raw = match transport {
        Transport::Plain => exchange(stream, request.as_bytes()).context(what)?,
        Transport::Tls { ca_certificate } => {
            let config = client_config(ca_certificate)?;
            let server_name = ServerName::from(address.ip());
            let connection =
                rustls::ClientConnection::new(Arc::new(config), server_name).context(what)?;
            let tls = rustls::StreamOwned::new(connection, stream);
            exchange(tls, request.as_bytes()).context(what)?
        }
    };
    parse_response(&raw).context(what)
}

fn client_config(ca_certificate: &Path) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca_certificate_der(ca_certificate)?))
        .context(|| format!("trusting {}", ca_certificate.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context(|| "configuring TLS".to_owned())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn exchange(mut stream: impl Read + Write, request: &[u8]) -> std::io::Result<Vec<u8>> {
    stream.write_all(request)?;
    stream.flush()?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => Ok(raw),
        // Servers that close without a TLS close_notify: keep what arrived.
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {
            Ok(raw)
        }
        Err(error) => Err(error),
    }
}

fn parse_response(raw: &[u8]) -> Result<Response> {
    let end = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| Error::new("response has no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| Error::new(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    if chunked {
        body = decode_chunked(&body)?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn decode_chunked(mut input: &[u8]) -> Result<Vec<u8>> {
    let mut output = Vec::new();
    loop {
        let line_end = input
            .windows(2)
            .position(|window| window == b"\r\n")
            .ok_or_else(|| Error::new("truncated chunked body"))?;
        let size_text = String::from_utf8_lossy(&input[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| Error::new(format!("bad chunk size {size_text:?}")))?;
        input = &input[line_end + 2..];
        if size == 0 {
            return Ok(output);
        }
        if input.len() < size {
            return Err(Error::new("truncated chunk"));
        }
        output.extend_from_slice(&input[..size]);
        input = input.get(size + 2..).unwrap_or_default();
    }
}

/// Standard base64 with padding (for `Authorization: Basic`).
pub fn encode_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut output = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let value = chunk.iter().enumerate().fold(0u32, |value, (index, byte)| {
            value | u32::from(*byte) << (16 - 8 * index)
        });
        for index in 0..4 {
            if index <= chunk.len() {
                output.push(char::from(
                    ALPHABET[(value >> (18 - 6 * index)) as usize & 63],
                ));
            } else {
                output.push('=');
            }
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(encode_base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(encode_base64(b"a"), "YQ==");
        assert_eq!(encode_base64(b"ab"), "YWI=");
    }

    #[test]
    fn chunked_bodies_are_joined() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let response = parse_response(raw).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"abcde");
    }
}
