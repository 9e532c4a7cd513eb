//! The world for humans: `ferry world up` starts the standard world's
//! registries (plain HTTP, TLS, TLS with basic auth, all read-only over the
//! shared storage) and the update-graph server as background processes that
//! outlive the command; `ferry world down` stops them.
//!
//! Everything lives in one directory (default: `$FERRY_WORLD_DIR`, else
//! `<temp dir>/ferry-world`, e.g. `/tmp/ferry-world`):
//!
//! ```text
//! world.json               the descriptor: addresses, pids, graph URL, CA, credentials
//! registries.conf          every public host → the plain registry
//! certificates/            ca/ca.crt (skopeo --cert-dir certificates/ca), server.crt, server.key
//! htpasswd                 the auth registry's users
//! registry-<flavour>/      config.yml, registry.log, pid
//! graph/                   address, graph.log, pid
//! ```
//!
//! The graph server runs as the `ferry` binary re-invoked with the hidden
//! `ferry world serve-graph --dir DIR` (see [`serve_graph`]).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::{Duration, Instant};

use crate::certificates::Certificates;
use crate::error::{Context, Error, Result};
use crate::graph_server;
use crate::http::{self, Transport};
use crate::registries_conf;
use crate::registry::{self, Credentials, Flavour, RegistrySettings};
use crate::world::{self, RegistryDescriptor, WorldDescriptor};

/// `$FERRY_WORLD_DIR`, else `<temp dir>/ferry-world`.
pub fn default_directory() -> PathBuf {
    std::env::var_os("FERRY_WORLD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("ferry-world"))
}

/// What `up` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpOutcome {
    /// Started now.
    Started(WorldDescriptor),
    /// Everything was already running.
    AlreadyUp(WorldDescriptor),
}

fn descriptor_path(directory: &Path) -> PathBuf {
    directory.join("world.json")
}

/// Starts the world in the background under `directory`. `graph_server` is
/// the command that runs [`serve_graph`] for `directory` (the `ferry`
/// binary re-invoked); it is started in its own process group.
pub fn up(directory: &Path, mut graph_server: Command) -> Result<UpOutcome> {
    if let Ok(descriptor) = WorldDescriptor::read(&descriptor_path(directory)) {
        if is_running(&descriptor) {
            return Ok(UpOutcome::AlreadyUp(descriptor));
        }
        // Partly up (a process died): clear what is left, start afresh.
        down(directory)?;
    }
    registry::registry_program_check()?;
    let storage = world::standard_storage()?;
    fs::create_dir_all(directory).context(|| format!("creating {}", directory.display()))?;
    let certificates = Certificates::generate(&directory.join("certificates"))?;
    let credentials = Credentials::test_credentials();
    let htpasswd = directory.join("htpasswd");
    credentials.write_htpasswd(&htpasswd)?;

    let mut descriptor = WorldDescriptor {
        registries: BTreeMap::new(),
        graph_url: String::new(),
        graph_server_pid: None,
        registries_conf: directory.join("registries.conf"),
        storage_root: storage.root.clone(),
        hosts: registries_conf::hosts(&world::standard().content)
            .into_iter()
            .collect(),
    };
    let started = start_processes(
        directory,
        &storage.root,
        &certificates,
        &credentials,
        &htpasswd,
        &mut graph_server,
        &mut descriptor,
    );
    if let Err(error) = started {
        // Write what did start so `down` can stop it, then stop it.
        let _ = descriptor.write(&descriptor_path(directory));
        let _ = down(directory);
        return Err(error);
    }
    let plain = &descriptor.registries[Flavour::PlainHttp.name()].address;
    let hosts = descriptor.hosts.iter().cloned().collect();
    fs::write(
        &descriptor.registries_conf,
        registries_conf::render(&hosts, plain, true),
    )
    .context(|| format!("writing {}", descriptor.registries_conf.display()))?;
    descriptor.write(&descriptor_path(directory))?;
    Ok(UpOutcome::Started(descriptor))
}

fn start_processes(
    directory: &Path,
    storage_root: &Path,
    certificates: &Certificates,
    credentials: &Credentials,
    htpasswd: &Path,
    graph_server: &mut Command,
    descriptor: &mut WorldDescriptor,
) -> Result<()> {
    for flavour in Flavour::ALL {
        let process_directory = directory.join(format!("registry-{}", flavour.name()));
        fs::create_dir_all(&process_directory)
            .context(|| format!("creating {}", process_directory.display()))?;
        let config = process_directory.join("config.yml");
        let log = process_directory.join("registry.log");
        let mut attempt = 0;
        let (pid, address) = loop {
            attempt += 1;
            let port = registry::free_port()?;
            let identity = registry::new_identity(flavour);
            let settings = RegistrySettings {
                identity: &identity,
                flavour,
                storage_root,
                read_only: true,
                deletes_disabled: false,
                port,
                certificates: Some(certificates),
                htpasswd: Some(htpasswd),
                token: None,
            };
            fs::write(&config, registry::config_yaml(&settings)?)
                .context(|| format!("writing {}", config.display()))?;
            let address = SocketAddr::from(([127, 0, 0, 1], port));
            let tls = flavour.uses_tls().then_some(certificates);
            match registry::launch_detached(flavour, &config, address, &identity, tls, &log) {
                Ok(pid) => break (pid, address),
                Err(error) if attempt < 5 && error.message().contains("is taken") => continue,
                Err(error) => return Err(error),
            }
        };
        write_pid(&process_directory, pid)?;
        let scheme = if flavour.uses_tls() { "https" } else { "http" };
        descriptor.registries.insert(
            flavour.name().to_owned(),
            RegistryDescriptor {
                address: address.to_string(),
                url: format!("{scheme}://{address}"),
                read_only: true,
                ca_certificate: flavour
                    .uses_tls()
                    .then(|| certificates.ca_certificate.clone()),
                cert_dir: flavour.uses_tls().then(|| certificates.cert_dir.clone()),
                credentials: flavour.uses_auth().then(|| credentials.clone()),
                pid: Some(pid),
            },
        );
    }

    let graph_directory = directory.join("graph");
    fs::create_dir_all(&graph_directory)
        .context(|| format!("creating {}", graph_directory.display()))?;
    let address_file = graph_directory.join("address");
    let _ = fs::remove_file(&address_file);
    let log = graph_directory.join("graph.log");
    let log_file = File::create(&log).context(|| format!("creating {}", log.display()))?;
    let log_copy = log_file
        .try_clone()
        .context(|| format!("opening {}", log.display()))?;
    let mut child = graph_server
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_copy)
        .process_group(0)
        .spawn()
        .context(|| format!("starting the graph server {graph_server:?}"))?;
    let pid = child.id();
    write_pid(&graph_directory, pid)?;
    descriptor.graph_server_pid = Some(pid);
    let deadline = Instant::now() + Duration::from_secs(30);
    let address: SocketAddr = loop {
        if let Ok(text) = fs::read_to_string(&address_file)
            && let Ok(address) = text.trim().parse()
        {
            break address;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::new(format!(
                "the graph server exited ({status}); its log {}:\n{}",
                log.display(),
                fs::read_to_string(&log).unwrap_or_default()
            )));
        }
        if Instant::now() > deadline {
            return Err(Error::new(format!(
                "the graph server did not start within 30 s; its log: {}",
                log.display()
            )));
        }
        thread::sleep(Duration::from_millis(20));
    };
    descriptor.graph_url = format!("http://{address}/graph");
    Ok(())
}

fn write_pid(directory: &Path, pid: u32) -> Result<()> {
    let path = directory.join("pid");
    fs::write(&path, format!("{pid}\n")).context(|| format!("writing {}", path.display()))
}

/// Runs the graph server for `directory` in the foreground, for ever: binds
/// 127.0.0.1 on a free port, writes `graph/address`, serves the standard
/// world's graphs.
pub fn serve_graph(directory: &Path) -> Result<()> {
    let graph_directory = directory.join("graph");
    fs::create_dir_all(&graph_directory)
        .context(|| format!("creating {}", graph_directory.display()))?;
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .context(|| "binding the graph server to 127.0.0.1".to_owned())?;
    let address = listener
        .local_addr()
        .context(|| "reading the graph server's address".to_owned())?;
    let graphs = world::standard().graphs.clone();
    let temporary = graph_directory.join("address.partial");
    fs::write(&temporary, address.to_string())
        .context(|| format!("writing {}", temporary.display()))?;
    fs::rename(&temporary, graph_directory.join("address"))
        .context(|| format!("writing {}", graph_directory.join("address").display()))?;
    graph_server::serve(&listener, &graphs, &AtomicBool::new(false));
    Ok(())
}

/// Whether every process of `descriptor` is alive and answering.
pub fn is_running(descriptor: &WorldDescriptor) -> bool {
    let registries_up = descriptor.registries.iter().all(|(name, registry)| {
        let Some(pid) = registry.pid else {
            return false;
        };
        let Ok(address) = registry.address.parse::<SocketAddr>() else {
            return false;
        };
        let transport = match &registry.ca_certificate {
            Some(ca_certificate) => Transport::Tls { ca_certificate },
            None => Transport::Plain,
        };
        let expected = if name == Flavour::BasicAuthTls.name() {
            401
        } else {
            200
        };
        process_alive(pid, "docker-registry")
            && http::get(address, "/v2/", transport, None)
                .is_ok_and(|response| response.status == expected)
    });
    let graph_up = descriptor
        .graph_server_pid
        .is_some_and(|pid| process_alive(pid, "serve-graph"));
    !descriptor.registries.is_empty() && registries_up && graph_up
}

/// Whether `pid` runs and its command line contains `marker` (so a reused
/// pid is never taken for ours). Linux `/proc`; zombies count as stopped.
pub fn process_alive(pid: u32, marker: &str) -> bool {
    let proc_directory = PathBuf::from(format!("/proc/{pid}"));
    let Ok(command_line) = fs::read(proc_directory.join("cmdline")) else {
        return false;
    };
    let zombie = fs::read_to_string(proc_directory.join("stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    });
    !zombie && String::from_utf8_lossy(&command_line).contains(marker)
}

/// Stops the world under `directory`; returns a line per process stopped
/// (empty: nothing was running). Removes the files `up` wrote, except logs.
pub fn down(directory: &Path) -> Result<Vec<String>> {
    let path = descriptor_path(directory);
    let descriptor = match WorldDescriptor::read(&path) {
        Ok(descriptor) => Some(descriptor),
        Err(_) if !path.exists() => None,
        Err(error) => return Err(error),
    };
    let mut processes: Vec<(String, u32, &str)> = Vec::new();
    if let Some(descriptor) = &descriptor {
        for (name, registry) in &descriptor.registries {
            if let Some(pid) = registry.pid {
                processes.push((
                    format!("registry {name} on {}", registry.address),
                    pid,
                    "docker-registry",
                ));
            }
        }
        if let Some(pid) = descriptor.graph_server_pid {
            processes.push((
                format!("graph server {}", descriptor.graph_url),
                pid,
                "serve-graph",
            ));
        }
    }
    let mut stopped = Vec::new();
    for (what, pid, marker) in processes {
        if !process_alive(pid, marker) {
            continue;
        }
        stop_process(pid).context(|| format!("stopping the {what} (pid {pid})"))?;
        stopped.push(format!("{what} (pid {pid})"));
    }
    for file in ["world.json", "registries.conf", "htpasswd"] {
        let _ = fs::remove_file(directory.join(file));
    }
    let _ = fs::remove_dir_all(directory.join("certificates"));
    for flavour in Flavour::ALL {
        let process_directory = directory.join(format!("registry-{}", flavour.name()));
        let _ = fs::remove_file(process_directory.join("pid"));
        let _ = fs::remove_file(process_directory.join("config.yml"));
    }
    let _ = fs::remove_file(directory.join("graph/pid"));
    let _ = fs::remove_file(directory.join("graph/address"));
    Ok(stopped)
}

/// Whether `pid` has finished exiting: gone, or a zombie with no thread
/// left (a thread-group leader shows `Z` while other threads still exit,
/// holding the process's sockets).
fn process_gone(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    let zombie = stat
        .rsplit_once(')')
        .is_some_and(|(_, rest)| matches!(rest.trim_start().chars().next(), Some('Z' | 'X')));
    let threads = fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |tasks| tasks.count());
    zombie && threads <= 1
}

fn stop_process(pid: u32) -> Result<()> {
    for signal in ["-TERM", "-KILL"] {
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .stderr(Stdio::null())
            .status()
            .context(|| "running kill".to_owned())?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if process_gone(pid) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        if !status.success() && process_gone(pid) {
            return Ok(());
        }
    }
    Err(Error::new("still running after SIGKILL"))
}

/// A human summary of a running world: addresses, files, and a skopeo
/// command to paste.
pub fn describe(descriptor: &WorldDescriptor, directory: &Path) -> String {
    let mut text = String::new();
    for (name, registry) in &descriptor.registries {
        text.push_str(&format!("  registry {name:<5} {}", registry.url));
        if let Some(cert_dir) = &registry.cert_dir {
            text.push_str(&format!("  (--cert-dir {})", cert_dir.display()));
        }
        if let Some(credentials) = &registry.credentials {
            text.push_str(&format!("  (--creds {})", credentials.joined()));
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "  update graph    {}  (UPDATE_URL_OVERRIDE)\n",
        descriptor.graph_url
    ));
    if let Some(server) = descriptor.graph_url.strip_suffix("/graph") {
        text.push_str(&format!(
            "  graph data      {server}{}  (FERRY_GRAPH_DATA_URL)\n",
            crate::graph_server::GRAPH_DATA_PATH
        ));
    }
    text.push_str(&format!(
        "  registries.conf {}\n",
        descriptor.registries_conf.display()
    ));
    text.push_str(&format!(
        "  descriptor      {}\n",
        descriptor_path(directory).display()
    ));
    let content = &world::standard().content;
    let example = content
        .placements
        .iter()
        .find(|placement| {
            placement.repository.ends_with("ocp-release") && !placement.tags.is_empty()
        })
        .or_else(|| {
            content
                .placements
                .iter()
                .find(|placement| !placement.tags.is_empty())
        });
    if let Some(placement) = example {
        text.push_str(&format!(
            "\ntry:\n  skopeo --registries-conf {} inspect --no-tags docker://{}/{}:{}\n",
            descriptor.registries_conf.display(),
            placement.host,
            placement.repository,
            placement.tags[0]
        ));
    }
    text
}
