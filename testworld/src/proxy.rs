//! A fault-injecting HTTP/1.1 reverse proxy on 127.0.0.1, in front of one
//! plain-HTTP registry, for transfer tests: it forwards every request,
//! records what it saw (method, path, status, `Range`, body bytes sent),
//! and injects the faults a test arms: a dropped connection mid-blob, error
//! statuses (with `Retry-After`), a refused monolithic upload, a flipped
//! byte, a blob download held half-way until the test releases it, the
//! body of any GET (a manifest, a tag list) cut short, and answers that
//! stall before their headers or half-way through their body; for soaks,
//! all of these at random from a seeded generator. `Location`
//! headers that name the registry are rewritten to name the proxy. It
//! stops when dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rand::{Rng as _, SeedableRng as _};

/// One request the proxy handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// The `Range` header of the request, if any.
    pub range: Option<String>,
    /// Body bytes sent to the client.
    pub bytes_sent: u64,
}

impl Record {
    pub fn is_blob_get(&self) -> bool {
        self.method == "GET" && self.path.contains("/blobs/sha256:")
    }
}

/// An armed error answer.
#[derive(Clone, Debug)]
pub struct ErrorAnswer {
    pub method: String,
    /// Applies to paths containing this text.
    pub path_contains: String,
    pub status: u16,
    pub retry_after: Option<u64>,
    /// How many matching requests get it.
    pub times: usize,
}

/// A GET whose body is cut: the full `Content-Length` is promised, `after`
/// bytes are sent, and the connection is closed.
#[derive(Clone, Debug)]
pub struct CutAnswer {
    /// Applies to successful GETs of paths containing this text
    /// (`/manifests/`, `/tags/list`, `/blobs/`).
    pub path_contains: String,
    pub after: u64,
    /// How many matching GETs are cut.
    pub times: usize,
}

/// An answer that stalls: nothing is sent for `stall`, either before the
/// response headers or after half of the body; then the rest follows.
#[derive(Clone, Debug)]
pub struct StallAnswer {
    pub method: String,
    /// Applies to successful answers to paths containing this text.
    pub path_contains: String,
    pub before_headers: bool,
    pub stall: Duration,
    /// How many matching requests stall.
    pub times: usize,
}

/// Faults drawn request by request from a generator seeded with `seed`
/// (for soak runs): the chances are per thousand requests, and at most one
/// fault hits a request.
#[derive(Clone, Debug, Default)]
pub struct RandomFaults {
    pub seed: u64,
    /// Cut the body of a successful GET half-way.
    pub cut_per_mille: u32,
    /// Answer 500 without asking the registry.
    pub error_per_mille: u32,
    /// Answer 429 with `Retry-After: 1` without asking the registry.
    pub throttle_per_mille: u32,
    /// Send nothing for `stall` before the headers of a successful answer.
    pub stall_per_mille: u32,
    pub stall: Duration,
}

/// How many faults the proxy injected, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Injected {
    /// Bodies cut short (dropped connections).
    pub cuts: u64,
    /// Error statuses other than 429.
    pub errors: u64,
    /// 429 answers.
    pub throttles: u64,
    /// Stalled answers (held ones included).
    pub stalls: u64,
}

/// What the random draw chose for one request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Draw {
    Nothing,
    Cut,
    Error,
    Throttle,
    Stall(Duration),
}

/// The faults to inject; change them at any time.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// For each of the next blob GETs, drop the connection after this many
    /// body bytes.
    pub drop_blob_gets_after: Vec<u64>,
    pub errors: Vec<ErrorAnswer>,
    /// Answer 413 to a monolithic upload (a PUT that carries a body).
    pub refuse_monolithic_put: bool,
    /// Flip one byte in the body of the next blob GET.
    pub flip_byte_in_next_blob_get: bool,
    /// Hold the next blob GET whose path contains this text: send half of
    /// the body, then wait for [`FaultProxy::release`] (at most two
    /// minutes) before sending the rest.
    pub hold_blob_get_containing: Option<String>,
    /// GETs whose body is cut short.
    pub cut_gets: Vec<CutAnswer>,
    /// Answers that stall.
    pub stalls: Vec<StallAnswer>,
    /// Faults at random, on top of the ones above.
    pub random: Option<RandomFaults>,
}

struct Shared {
    upstream: SocketAddr,
    address: SocketAddr,
    faults: Mutex<Faults>,
    records: Mutex<Vec<Record>>,
    stopping: AtomicBool,
    /// A held blob GET is waiting half-way.
    holding: AtomicBool,
    /// The test released the held GET.
    released: AtomicBool,
    /// The generator of [`Faults::random`], seeded when armed.
    generator: Mutex<Option<rand::rngs::StdRng>>,
    injected: Mutex<Injected>,
}

impl Shared {
    fn count(&self, change: impl FnOnce(&mut Injected)) {
        change(
            &mut self
                .injected
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
    }

    /// Draws the random fault of one request, if random faults are armed.
    fn draw(&self) -> Draw {
        let Some(random) = self
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .random
            .clone()
        else {
            return Draw::Nothing;
        };
        let mut generator = self
            .generator
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(generator) = generator.as_mut() else {
            return Draw::Nothing;
        };
        let roll = generator.gen_range(0..1000);
        let mut bound = random.error_per_mille;
        if roll < bound {
            return Draw::Error;
        }
        bound += random.throttle_per_mille;
        if roll < bound {
            return Draw::Throttle;
        }
        bound += random.stall_per_mille;
        if roll < bound {
            return Draw::Stall(random.stall);
        }
        bound += random.cut_per_mille;
        if roll < bound {
            return Draw::Cut;
        }
        Draw::Nothing
    }
}

/// The running proxy.
pub struct FaultProxy {
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (a plain-HTTP registry).
    pub fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            address,
            faults: Mutex::new(Faults::default()),
            records: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            holding: AtomicBool::new(false),
            released: AtomicBool::new(false),
            generator: Mutex::new(None),
            injected: Mutex::new(Injected::default()),
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
        Ok(FaultProxy {
            shared,
            accept: Some(accept),
        })
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn host(&self) -> String {
        self.shared.address.to_string()
    }

    /// Replaces the armed faults.
    pub fn arm(&self, faults: Faults) {
        *self
            .shared
            .generator
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = faults
            .random
            .as_ref()
            .map(|random| rand::rngs::StdRng::seed_from_u64(random.seed));
        *self
            .shared
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = faults;
    }

    /// The faults injected so far.
    pub fn injected(&self) -> Injected {
        *self
            .shared
            .injected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Everything handled so far.
    pub fn records(&self) -> Vec<Record> {
        self.shared
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether a held blob GET is waiting half-way now.
    pub fn holding(&self) -> bool {
        self.shared.holding.load(Ordering::SeqCst)
    }

    /// Lets a held blob GET send the rest of its body.
    pub fn release(&self) {
        self.shared.released.store(true, Ordering::SeqCst);
    }

    /// Forgets the records.
    pub fn clear(&self) {
        self.shared
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.shared.address);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// A parsed HTTP message head.
struct Head {
    start_line: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

fn read_head(reader: &mut impl BufRead) -> std::io::Result<Option<Head>> {
    let mut start_line = String::new();
    if reader.read_line(&mut start_line)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((key, value)) = line.split_once(':') {
            headers.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    Ok(Some(Head {
        start_line: start_line.trim_end().to_owned(),
        headers,
    }))
}

/// Reads a body framed by Content-Length or chunked encoding.
fn read_body(
    reader: &mut impl BufRead,
    head: &Head,
    until_close: bool,
) -> std::io::Result<Vec<u8>> {
    if head
        .header("transfer-encoding")
        .is_some_and(|value| value.eq_ignore_ascii_case("chunked"))
    {
        let mut body = Vec::new();
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|_| std::io::Error::other("bad chunk size"))?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
        return Ok(body);
    }
    if let Some(length) = head
        .header("content-length")
        .and_then(|value| value.parse::<usize>().ok())
    {
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        return Ok(body);
    }
    let mut body = Vec::new();
    if until_close {
        reader.read_to_end(&mut body)?;
    }
    Ok(body)
}

fn write_response(
    client: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (key, value) in headers {
        head.push_str(&format!("{key}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    client.write_all(head.as_bytes())?;
    client.write_all(body)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        206 => "Partial Content",
        404 => "Not Found",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        _ => "Status",
    }
}

/// Handles one client connection (keep-alive: many requests).
fn serve(shared: &Shared, client: TcpStream) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    loop {
        let Some(request) = read_head(&mut reader)? else {
            return Ok(());
        };
        let body = read_body(&mut reader, &request, false)?;
        let mut parts = request.start_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let range = request.header("range").map(str::to_owned);
        let record = |status: u16, bytes_sent: u64| Record {
            method: method.clone(),
            path: path.clone(),
            status,
            range: range.clone(),
            bytes_sent,
        };
        // A request is recorded before its answer goes out: a client that
        // has its answer must find the record (recording after the write
        // raced a test reading the records at once).
        let remember = |record: Record| {
            shared
                .records
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(record);
        };

        // Armed answers that never reach the registry.
        let draw = shared.draw();
        let armed = {
            let mut faults = shared
                .faults
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut answer = None;
            if let Some(error) = faults.errors.iter_mut().find(|error| {
                error.times > 0 && error.method == method && path.contains(&error.path_contains)
            }) {
                error.times -= 1;
                answer = Some((error.status, error.retry_after));
            } else if faults.refuse_monolithic_put
                && method == "PUT"
                && path.contains("/blobs/uploads/")
                && !body.is_empty()
            {
                answer = Some((413, None));
            } else if draw == Draw::Error {
                answer = Some((500, None));
            } else if draw == Draw::Throttle {
                answer = Some((429, Some(1)));
            }
            answer
        };
        if let Some((status, retry_after)) = armed {
            shared.count(|injected| match status {
                429 => injected.throttles += 1,
                _ => injected.errors += 1,
            });
            let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
            if let Some(seconds) = retry_after {
                headers.push(("Retry-After".to_owned(), seconds.to_string()));
            }
            let body =
                br#"{"errors":[{"code":"UNAVAILABLE","message":"injected by the fault proxy"}]}"#;
            remember(record(status, body.len() as u64));
            write_response(&mut client, status, &headers, body)?;
            continue;
        }

        // Forward to the registry, one connection per request.
        let mut upstream = TcpStream::connect(shared.upstream)?;
        let mut forwarded = format!("{} {path} HTTP/1.1\r\n", method);
        for (key, value) in &request.headers {
            if [
                "connection",
                "content-length",
                "transfer-encoding",
                "host",
                "keep-alive",
            ]
            .iter()
            .any(|hop| key.eq_ignore_ascii_case(hop))
            {
                continue;
            }
            forwarded.push_str(&format!("{key}: {value}\r\n"));
        }
        forwarded.push_str(&format!(
            "Host: {}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            shared.upstream,
            body.len()
        ));
        upstream.write_all(forwarded.as_bytes())?;
        upstream.write_all(&body)?;
        let mut upstream_reader = BufReader::new(upstream);
        let Some(response) = read_head(&mut upstream_reader)? else {
            return Ok(());
        };
        let status: u16 = response
            .start_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(502);
        let mut response_body = if method == "HEAD" {
            Vec::new()
        } else {
            read_body(&mut upstream_reader, &response, true)?
        };
        let upstream_text = shared.upstream.to_string();
        let headers: Vec<(String, String)> = response
            .headers
            .iter()
            .filter(|(key, _)| {
                ![
                    "connection",
                    "content-length",
                    "transfer-encoding",
                    "keep-alive",
                ]
                .iter()
                .any(|hop| key.eq_ignore_ascii_case(hop))
            })
            .map(|(key, value)| {
                if key.eq_ignore_ascii_case("location") {
                    (
                        key.clone(),
                        value.replace(&upstream_text, &shared.address.to_string()),
                    )
                } else {
                    (key.clone(), value.clone())
                }
            })
            .collect();

        let blob_get =
            method == "GET" && path.contains("/blobs/sha256:") && (status == 200 || status == 206);
        let (drop_after, flip, hold) = if blob_get {
            let mut faults = shared
                .faults
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let drop_after = (!faults.drop_blob_gets_after.is_empty())
                .then(|| faults.drop_blob_gets_after.remove(0));
            let flip = std::mem::take(&mut faults.flip_byte_in_next_blob_get);
            let hold = faults
                .hold_blob_get_containing
                .as_ref()
                .is_some_and(|text| path.contains(text.as_str()));
            if hold {
                faults.hold_blob_get_containing = None;
            }
            (drop_after, flip, hold)
        } else {
            (None, false, false)
        };
        let success = (200..300).contains(&status);
        let (cut, stall) = {
            let mut faults = shared
                .faults
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let cut = faults
                .cut_gets
                .iter_mut()
                .find(|cut| {
                    cut.times > 0 && method == "GET" && success && path.contains(&cut.path_contains)
                })
                .map(|cut| {
                    cut.times -= 1;
                    cut.after
                });
            let stall = faults
                .stalls
                .iter_mut()
                .find(|stall| {
                    stall.times > 0
                        && stall.method == method
                        && success
                        && path.contains(&stall.path_contains)
                })
                .map(|stall| {
                    stall.times -= 1;
                    (stall.before_headers, stall.stall)
                });
            (cut, stall)
        };
        let random_cut = (draw == Draw::Cut && method == "GET" && success)
            .then_some(response_body.len() as u64 / 2);
        let drop_after = drop_after.or(cut).or(random_cut);
        let stall = match (stall, draw) {
            (None, Draw::Stall(pause)) if success => Some((true, pause)),
            (stall, _) => stall,
        };
        if drop_after.is_some() {
            shared.count(|injected| injected.cuts += 1);
        }
        if stall.is_some() || hold {
            shared.count(|injected| injected.stalls += 1);
        }
        if let Some((true, pause)) = stall {
            std::thread::sleep(pause);
        }
        if flip && !response_body.is_empty() {
            let middle = response_body.len() / 2;
            response_body[middle] ^= 0x01;
        }
        if method == "HEAD" {
            // HEAD keeps the registry's Content-Length.
            let length = response.header("content-length").unwrap_or("0").to_owned();
            let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
            for (key, value) in &headers {
                head.push_str(&format!("{key}: {value}\r\n"));
            }
            head.push_str(&format!("Content-Length: {length}\r\n\r\n"));
            remember(record(status, 0));
            client.write_all(head.as_bytes())?;
            continue;
        }
        if let Some(limit) = drop_after {
            // Promise the whole body, send part of it, hang up.
            let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
            for (key, value) in &headers {
                head.push_str(&format!("{key}: {value}\r\n"));
            }
            head.push_str(&format!("Content-Length: {}\r\n\r\n", response_body.len()));
            client.write_all(head.as_bytes())?;
            let sent = (limit as usize).min(response_body.len());
            remember(record(status, sent as u64));
            client.write_all(&response_body[..sent])?;
            client.flush()?;
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        if let Some((false, pause)) = stall {
            // Promise the whole body, send half, pause, send the rest.
            let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
            for (key, value) in &headers {
                head.push_str(&format!("{key}: {value}\r\n"));
            }
            head.push_str(&format!("Content-Length: {}\r\n\r\n", response_body.len()));
            client.write_all(head.as_bytes())?;
            let half = response_body.len() / 2;
            client.write_all(&response_body[..half])?;
            client.flush()?;
            std::thread::sleep(pause);
            remember(record(status, response_body.len() as u64));
            client.write_all(&response_body[half..])?;
            client.flush()?;
            continue;
        }
        if hold {
            // Promise the whole body, send half, wait for the release.
            let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
            for (key, value) in &headers {
                head.push_str(&format!("{key}: {value}\r\n"));
            }
            head.push_str(&format!("Content-Length: {}\r\n\r\n", response_body.len()));
            client.write_all(head.as_bytes())?;
            let half = response_body.len() / 2;
            client.write_all(&response_body[..half])?;
            client.flush()?;
            shared.holding.store(true, Ordering::SeqCst);
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            while !shared.released.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            shared.holding.store(false, Ordering::SeqCst);
            remember(record(status, response_body.len() as u64));
            client.write_all(&response_body[half..])?;
            client.flush()?;
            continue;
        }
        remember(record(status, response_body.len() as u64));
        write_response(&mut client, status, &headers, &response_body)?;
    }
}
