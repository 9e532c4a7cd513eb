//! oc-mirror v2's flags that ferry accepts so that oc-mirror command lines
//! paste (notes §1.3-1.4): each is given its meaning where ferry has one
//! (`--src-authfile`, `--tls-verify=false`), or accepted with a one-line
//! warning that says what ferry does instead. `--v2` is accepted and does
//! nothing; `--v1` is an error naming v2. No warning repeats a value: some
//! of these flags carry secrets.

use std::path::PathBuf;
use std::time::Duration;

/// The oc-mirror flags ferry accepts beside its own (flattened into the
/// flags of `mirror`, `plan` and `apply`).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct OcMirrorFlags {
    /// oc-mirror's mandatory v2 switch: accepted, ferry is v2.
    #[arg(long, hide = true)]
    pub(crate) v2: bool,
    /// oc-mirror's v1 switch: refused (ferry implements v2 only).
    #[arg(long, hide = true)]
    pub(crate) v1: bool,
    /// (oc-mirror) Port of oc-mirror's local cache registry. ferry runs no
    /// cache registry (its cache is a folder): ignored, with a warning.
    #[arg(short = 'p', long)]
    pub(crate) port: Option<u16>,
    /// (oc-mirror) Time limit of one image's copy, e.g. 10m. ferry limits
    /// stalls instead (--header-timeout, --stall-timeout): ignored, with a
    /// warning.
    #[arg(long, value_parser = crate::arguments::parse_duration)]
    pub(crate) image_timeout: Option<Duration>,
    /// (oc-mirror) Verify signatures with a containers policy. ferry does
    /// not read policy.json (every blob and manifest is checked against its
    /// digest): refused with a warning that says so.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub(crate) secure_policy: Option<bool>,
    /// (oc-mirror) The policy file of --secure-policy: ignored, with a
    /// warning.
    #[arg(long, value_name = "FILE")]
    pub(crate) policy: Option<PathBuf>,
    /// (oc-mirror) registries.d folder (sigstore lookaside settings).
    /// ferry copies cosign signatures as tags and reads no registries.d:
    /// ignored, with a warning.
    #[arg(long = "registries.d", value_name = "DIR")]
    pub(crate) registries_d: Option<PathBuf>,
    /// skopeo-style: auth file for the sources (folded into --authfile).
    #[arg(long, hide = true)]
    pub(crate) src_authfile: Option<PathBuf>,
    /// skopeo-style: auth file for the destination (folded into --authfile).
    #[arg(long, hide = true)]
    pub(crate) dest_authfile: Option<PathBuf>,
    #[arg(long, hide = true, alias = "screds")]
    pub(crate) src_creds: Option<String>,
    #[arg(long, hide = true, alias = "dcreds")]
    pub(crate) dest_creds: Option<String>,
    #[arg(long, hide = true)]
    pub(crate) src_username: Option<String>,
    #[arg(long, hide = true)]
    pub(crate) dest_username: Option<String>,
    #[arg(long, hide = true)]
    pub(crate) src_password: Option<String>,
    #[arg(long, hide = true)]
    pub(crate) dest_password: Option<String>,
    #[arg(long, hide = true)]
    pub(crate) src_registry_token: Option<String>,
    #[arg(long, hide = true)]
    pub(crate) dest_registry_token: Option<String>,
    #[arg(long, hide = true)]
    pub(crate) src_cert_dir: Option<PathBuf>,
    #[arg(long, hide = true)]
    pub(crate) dest_cert_dir: Option<PathBuf>,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub(crate) src_no_creds: Option<bool>,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub(crate) dest_no_creds: Option<bool>,
    #[arg(long, hide = true)]
    pub(crate) src_shared_blob_dir: Option<PathBuf>,
    #[arg(long, hide = true)]
    pub(crate) dest_shared_blob_dir: Option<PathBuf>,
    #[arg(long, hide = true)]
    pub(crate) src_daemon_host: Option<String>,
    #[arg(long, hide = true)]
    pub(crate) dest_daemon_host: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub(crate) dest_compress: Option<bool>,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub(crate) dest_decompress: Option<bool>,
    #[arg(long, hide = true)]
    pub(crate) dest_compress_format: Option<String>,
    #[arg(long, hide = true)]
    pub(crate) dest_compress_level: Option<i64>,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub(crate) dest_oci_accept_uncompressed_layers: Option<bool>,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub(crate) dest_precompute_digests: Option<bool>,
    /// oc-mirror's deprecated flag for both sides: `=false` allows plain
    /// HTTP and unverified TLS for sources and destination.
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub(crate) tls_verify: Option<bool>,
    #[arg(long, hide = true)]
    pub(crate) cpu_prof: bool,
    #[arg(long, hide = true)]
    pub(crate) mem_prof: bool,
    #[arg(short = 'q', long, hide = true)]
    pub(crate) quiet: bool,
    #[arg(short = 'f', long, hide = true)]
    pub(crate) force: bool,
}

/// What the oc-mirror flags mean for a run: the auth file and TLS
/// settings they change, and the warnings for the ones ferry ignores.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Folded {
    /// `--src-authfile`/`--dest-authfile` where `--authfile` was not given.
    pub authfile: Option<PathBuf>,
    /// `--tls-verify=false`: plain HTTP and unverified TLS on both sides.
    pub no_tls_verify: bool,
    pub warnings: Vec<String>,
}

impl OcMirrorFlags {
    /// The meaning of the flags given, or why they cannot be honoured.
    /// `authfile` is `--authfile`.
    pub fn fold(&self, authfile: Option<&PathBuf>) -> Result<Folded, String> {
        if self.v1 {
            return Err(
                "--v1 is oc-mirror's first version: ferry implements oc-mirror v2 only (its flags and files, as with --v2); drop --v1".to_owned(),
            );
        }
        let mut folded = Folded {
            no_tls_verify: self.tls_verify == Some(false),
            ..Folded::default()
        };
        let side_files: Vec<&PathBuf> = [&self.src_authfile, &self.dest_authfile]
            .into_iter()
            .flatten()
            .collect();
        let differing = |a: &PathBuf, b: &PathBuf| a != b;
        match (authfile, side_files.as_slice()) {
            (_, []) => {}
            (None, [one]) => folded.authfile = Some((*one).clone()),
            (None, [source, destination]) if !differing(source, destination) => {
                folded.authfile = Some((*source).clone());
            }
            (Some(main), files) if files.iter().all(|file| !differing(file, main)) => {}
            _ => {
                return Err(
                    "ferry reads one auth file for every registry: --src-authfile, --dest-authfile and --authfile name different files; merge them into one and pass it with --authfile".to_owned(),
                );
            }
        }
        let ignored = |given: bool, flag: &str, instead: &str, warnings: &mut Vec<String>| {
            if given {
                warnings.push(format!("{flag} is ignored: {instead}"));
            }
        };
        let warnings = &mut folded.warnings;
        ignored(
            self.port.is_some(),
            "--port",
            "ferry runs no local cache registry; its cache is a folder (--cache-dir)",
            warnings,
        );
        ignored(
            self.image_timeout.is_some(),
            "--image-timeout",
            "ferry retries a request whose answer stalls instead of timing images out (--header-timeout, --stall-timeout)",
            warnings,
        );
        ignored(
            self.secure_policy == Some(true) || self.policy.is_some(),
            "--secure-policy/--policy",
            "ferry does not verify signatures against a containers policy; it checks every manifest and blob against its digest and copies cosign signatures as they are",
            warnings,
        );
        ignored(
            self.registries_d.is_some(),
            "--registries.d",
            "ferry copies sigstore signatures as cosign tags (sha256-<hex>.sig) and reads no lookaside settings",
            warnings,
        );
        for (given, side) in [
            (
                self.src_creds.is_some()
                    || self.src_username.is_some()
                    || self.src_password.is_some()
                    || self.src_registry_token.is_some(),
                "--src",
            ),
            (
                self.dest_creds.is_some()
                    || self.dest_username.is_some()
                    || self.dest_password.is_some()
                    || self.dest_registry_token.is_some(),
                "--dest",
            ),
        ] {
            ignored(
                given,
                &format!("{side}-creds/-username/-password/-registry-token"),
                "ferry takes credentials from auth files only (--authfile; `podman login` writes one)",
                warnings,
            );
        }
        ignored(
            self.src_no_creds == Some(true) || self.dest_no_creds == Some(true),
            "--src-no-creds/--dest-no-creds",
            "ferry uses the credentials the auth files hold for a host, and none for a host they do not name",
            warnings,
        );
        ignored(
            self.src_cert_dir.is_some() || self.dest_cert_dir.is_some(),
            "--src-cert-dir/--dest-cert-dir",
            "ferry reads certificates from certs.d folders: put them in ~/.config/containers/certs.d/HOST[:PORT]/ or /etc/containers/certs.d/HOST[:PORT]/",
            warnings,
        );
        ignored(
            self.src_shared_blob_dir.is_some()
                || self.dest_shared_blob_dir.is_some()
                || self.src_daemon_host.is_some()
                || self.dest_daemon_host.is_some(),
            "--*-shared-blob-dir/--*-daemon-host",
            "ferry reads and writes registries and its own cache folder only",
            warnings,
        );
        ignored(
            self.dest_compress.is_some()
                || self.dest_decompress.is_some()
                || self.dest_compress_format.is_some()
                || self.dest_compress_level.is_some()
                || self.dest_oci_accept_uncompressed_layers.is_some()
                || self.dest_precompute_digests.is_some(),
            "--dest-compress* and --dest-decompress",
            "ferry copies every blob byte for byte, so digests never change",
            warnings,
        );
        ignored(
            self.cpu_prof || self.mem_prof,
            "--cpu-prof/--mem-prof",
            "ferry writes no Go profiles",
            warnings,
        );
        ignored(
            self.quiet || self.force,
            "--quiet/--force",
            "oc-mirror v2 does not use them either",
            warnings,
        );
        Ok(folded)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Command {
        #[command(flatten)]
        flags: OcMirrorFlags,
        #[arg(long)]
        authfile: Option<PathBuf>,
        destination: Option<String>,
    }

    fn parse(arguments: &[&str]) -> Command {
        Command::try_parse_from(std::iter::once("ferry").chain(arguments.iter().copied())).unwrap()
    }

    #[test]
    fn bare_boolean_flags_do_not_swallow_the_destination() {
        let command = parse(&["--secure-policy", "docker://mirror.local", "--v2"]);
        assert_eq!(command.flags.secure_policy, Some(true));
        assert!(command.flags.v2);
        assert_eq!(
            command.destination.as_deref(),
            Some("docker://mirror.local")
        );
        let command = parse(&["--tls-verify=false", "-p", "55001"]);
        assert_eq!(command.flags.tls_verify, Some(false));
        assert_eq!(command.flags.port, Some(55001));
    }

    #[test]
    fn v2_does_nothing_and_v1_is_refused_naming_v2() {
        assert_eq!(parse(&["--v2"]).flags.fold(None), Ok(Folded::default()));
        let refused = parse(&["--v1"]).flags.fold(None).unwrap_err();
        assert!(refused.contains("v2 only"), "{refused}");
    }

    #[test]
    fn side_auth_files_fold_into_one_and_different_ones_are_refused() {
        let one = parse(&["--dest-authfile", "/a.json"])
            .flags
            .fold(None)
            .unwrap();
        assert_eq!(one.authfile, Some(PathBuf::from("/a.json")));
        let same = parse(&["--src-authfile", "/a.json", "--dest-authfile", "/a.json"]);
        assert_eq!(
            same.flags.fold(None).unwrap().authfile,
            Some(PathBuf::from("/a.json"))
        );
        let with_main = parse(&["--src-authfile", "/a.json", "--authfile", "/a.json"]);
        let folded = with_main.flags.fold(with_main.authfile.as_ref()).unwrap();
        assert_eq!(folded.authfile, None, "--authfile already names it");
        let differing = parse(&["--src-authfile", "/a.json", "--dest-authfile", "/b.json"]);
        assert!(differing.flags.fold(None).is_err());
    }

    #[test]
    fn ignored_flags_warn_once_each_and_never_repeat_a_secret() {
        let command = parse(&[
            "--src-creds=user:s3cret",
            "--dest-password",
            "hunter2",
            "--image-timeout",
            "10m",
            "--dest-compress",
            "--registries.d",
            "/etc/containers/registries.d",
        ]);
        let warnings = command.flags.fold(None).unwrap().warnings;
        assert_eq!(warnings.len(), 5, "{warnings:?}");
        let all = warnings.join("\n");
        assert!(!all.contains("s3cret") && !all.contains("hunter2"), "{all}");
        assert!(all.contains("--image-timeout is ignored"), "{all}");
    }
}
