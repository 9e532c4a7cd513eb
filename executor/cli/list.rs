//! `ferry list bundles` and `ferry list operators`: what catalogs and
//! configurations hold, without mirroring. `main.rs` sends `list
//! releases` to `list_releases.rs`.
//!
//! `list operators` is oc-mirror's (notes §1.6): `--catalog REF` lists the
//! packages (name, display name, default channel), `--package P` the
//! channels with their heads, `--channel C` the versions (lowest first);
//! `--catalogs --version V` (or `--version V`) fetches the manifests of Red
//! Hat's catalog repositories at `vV` and says which exist. The catalog is
//! read as `list bundles` reads it.
//!
//! `list bundles -c ISC.yaml [--format json]` (ferry's own): for every
//! catalog of the configuration, the bundles its filter selects, computed
//! from the catalog alone (no bundle or related image is fetched). Other
//! parts of the configuration are ignored and no workspace is needed.
//! `oci://PATH` catalogs (absolute, or relative to the current folder) are
//! read from disk with no network call. A registry catalog is pinned to the
//! digest its tag names (through registries.conf, first pull source that
//! answers); only the linux/amd64 image's manifest, config and layers are
//! fetched (each verified, into a temporary folder removed afterwards) and
//! only the configs folder is read out of the layers.
//! JSON on stdout is a bare array, one object per selected bundle (`[]`
//! when none); warnings go to stderr; a filter error exits 1 naming the
//! package.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ferry_content::catalog::{self, Catalog, CatalogFile, FilterError, listing::BundleRow};
use ferry_executor::catalog_image::{RegistryAccess, RegistryAccessOptions};
use ferry_executor::layer_files::{self, CATALOG_CONFIGS_LABEL, FolderFiles};
use ferry_schemas::{ImageReference, ImageSource, load_image_set_configuration, render};

use crate::exit_status;

/// Arguments of `ferry list bundles`.
#[derive(Debug, clap::Args)]
pub struct BundlesArgs {
    /// The ImageSetConfiguration whose `mirror.operators` are listed.
    #[arg(short = 'c', long = "config")]
    pub config: PathBuf,
    /// `text` (a table) or `json` (a bare array on stdout).
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Arguments of `ferry list operators` (oc-mirror's flags).
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["catalog", "catalogs", "version"])))]
pub struct OperatorsArgs {
    /// List the Red Hat catalogs of an OpenShift version (requires `--version`).
    #[arg(long, requires = "version", conflicts_with = "catalog")]
    pub catalogs: bool,
    /// An OpenShift version (X.Y); implies `--catalogs`.
    #[arg(long, conflicts_with = "catalog")]
    pub version: Option<String>,
    /// The catalog to list (`host/repository:tag`, `docker://...` or `oci://PATH`).
    #[arg(long)]
    pub catalog: Option<String>,
    /// List this package's channels (requires `--catalog`).
    #[arg(long = "package", requires = "catalog")]
    pub package: Option<String>,
    /// List this channel's versions (requires `--catalog` and `--package`).
    #[arg(long, requires = "package")]
    pub channel: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// How registry catalogs are reached (as `list releases` has them).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct RegistryArgs {
    /// registries.conf for pulling registry catalogs.
    #[arg(long)]
    pub registries_conf: Option<PathBuf>,
    /// Auth file (default: $REGISTRY_AUTH_FILE, then the containers and docker defaults).
    #[arg(long, env = "REGISTRY_AUTH_FILE")]
    pub authfile: Option<PathBuf>,
    /// Verify TLS for registry catalogs (false also allows plain HTTP).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub src_tls_verify: bool,
}

impl RegistryArgs {
    fn access_options(&self) -> RegistryAccessOptions {
        RegistryAccessOptions {
            registries_conf: self.registries_conf.clone(),
            authfile: self.authfile.clone(),
            source_tls_verify: self.src_tls_verify,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// `ferry list bundles`.
pub fn bundles_command(args: &BundlesArgs) -> ExitCode {
    exit_status_of(bundles(args))
}

/// `ferry list operators`.
pub fn operators_command(args: &OperatorsArgs) -> ExitCode {
    exit_status_of(operators(args))
}

fn exit_status_of(outcome: Result<(), String>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            exit_status::ERROR.into()
        }
    }
}

/// Red Hat's catalog repositories `--catalogs` probes, in oc-mirror's order.
const RED_HAT_CATALOGS: [&str; 4] = [
    "registry.redhat.io/redhat/redhat-operator-index",
    "registry.redhat.io/redhat/certified-operator-index",
    "registry.redhat.io/redhat/community-operator-index",
    "registry.redhat.io/redhat/redhat-marketplace-index",
];

fn operators(args: &OperatorsArgs) -> Result<(), String> {
    let output = match &args.catalog {
        Some(written) => {
            let source: ImageSource = written
                .parse()
                .map_err(|error| format!("{written:?}: {error}"))?;
            let mut access = None;
            let catalog = read_catalog(&source, &mut access, &args.registry)
                .map_err(|message| format!("failed to load catalog {written}: {message}"))?;
            operator_listing(&catalog, args.package.as_deref(), args.channel.as_deref())?
        }
        None => {
            let version = args.version.as_deref().unwrap_or_default();
            list_catalogs(version, &args.registry)?
        }
    };
    std::io::stdout()
        .lock()
        .write_all(output.as_bytes())
        .map_err(|error| format!("writing to stdout: {error}"))
}

/// oc-mirror's three catalog listings, as text.
fn operator_listing(
    catalog: &Catalog,
    package: Option<&str>,
    channel: Option<&str>,
) -> Result<String, String> {
    let Some(package) = package else {
        let rows = catalog::listing::packages(catalog)
            .into_iter()
            .map(|row| vec![row.name, row.display_name, row.default_channel]);
        return Ok(aligned(
            std::iter::once(
                ["NAME", "DISPLAY NAME", "DEFAULT CHANNEL"]
                    .map(str::to_owned)
                    .to_vec(),
            )
            .chain(rows)
            .collect(),
        ));
    };
    if catalog.package(package).is_none() {
        return Err(format!("operator {package:?} not found in catalog"));
    }
    let Some(channel) = channel else {
        let rows = catalog::listing::channels(catalog, package)
            .into_iter()
            .map(|row| {
                let head = row.head.unwrap_or_else(|error| format!("ERROR: {error}"));
                vec![row.package, row.channel, head]
            });
        return Ok(aligned(
            std::iter::once(["PACKAGE", "CHANNEL", "HEAD"].map(str::to_owned).to_vec())
                .chain(rows)
                .collect(),
        ));
    };
    if !catalog
        .channels
        .iter()
        .any(|known| known.package == package && known.name == channel)
    {
        return Err(format!(
            "channel {channel:?} not found for operator {package:?}"
        ));
    }
    let mut text = String::from("VERSIONS\n");
    for version in catalog::listing::versions(catalog, package, channel) {
        text.push_str(&version);
        text.push('\n');
    }
    Ok(text)
}

/// Columns as oc-mirror's tab writer sets them: every cell but the last of
/// a line padded to its column's width plus two spaces.
fn aligned(rows: Vec<Vec<String>>) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in &rows {
        for (column, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            widths[column] = widths[column].max(cell.len());
        }
    }
    let mut text = String::new();
    for row in &rows {
        for (column, cell) in row.iter().enumerate() {
            if column + 1 < row.len() {
                text.push_str(&format!("{cell:<width$}", width = widths[column] + 2));
            } else {
                text.push_str(cell);
            }
        }
        text.push('\n');
    }
    text
}

/// `--catalogs --version V`: which of Red Hat's catalogs have the tag
/// `vV` (the marketplace only before 4.22), by fetching each manifest.
/// A catalog that is not there is said so on stdout; a registry that
/// cannot be asked is an error (exit 1) after the rest is listed.
fn list_catalogs(version: &str, registry: &RegistryArgs) -> Result<String, String> {
    let numbers: Vec<u64> = version
        .split('.')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| {
            format!("--version {version:?}: expected an OpenShift version such as 4.16")
        })?;
    if numbers.len() < 2 {
        return Err(format!(
            "--version {version:?}: expected an OpenShift version such as 4.16"
        ));
    }
    let with_marketplace = (numbers[0], numbers[1]) < (4, 22);
    let access = RegistryAccess::new(&registry.access_options())?;
    let mut text = format!("Available OpenShift OperatorHub catalogs:\nOpenShift {version}:\n");
    let mut failures = Vec::new();
    for repository in RED_HAT_CATALOGS {
        if repository.ends_with("redhat-marketplace-index") && !with_marketplace {
            continue;
        }
        let written = format!("{repository}:v{version}");
        let reference: ImageReference = written
            .parse()
            .map_err(|error| format!("{written}: {error}"))?;
        match access.exists(&reference) {
            Ok(true) => text.push_str(&format!("{written}\n")),
            Ok(false) => text.push_str(&format!(
                "Invalid catalog reference {written:?}, please check version\n"
            )),
            Err(message) => {
                failures.push(format!("failed to check catalog {repository}: {message}"))
            }
        }
    }
    if failures.is_empty() {
        Ok(text)
    } else {
        print!("{text}");
        Err(failures.join("\n"))
    }
}

fn bundles(args: &BundlesArgs) -> Result<(), String> {
    let listing = collect_bundles(&args.config, &args.registry)?;
    let mut stderr = std::io::stderr().lock();
    for warning in &listing.warnings {
        let _ = writeln!(stderr, "warning: {warning}");
    }
    let output = render_rows(&listing.rows, args.format)?;
    std::io::stdout()
        .lock()
        .write_all(output.as_bytes())
        .map_err(|error| format!("writing to stdout: {error}"))
}

/// The selected bundles of every catalog of a configuration, and the
/// warnings to show.
#[derive(Debug, Default)]
struct Listing {
    rows: Vec<BundleRow>,
    warnings: Vec<String>,
}

fn collect_bundles(config: &Path, registry: &RegistryArgs) -> Result<Listing, String> {
    let name = config.display().to_string();
    let text =
        std::fs::read_to_string(config).map_err(|error| format!("cannot read {name}: {error}"))?;
    let loaded = match load_image_set_configuration(&text) {
        Ok(loaded) => loaded,
        Err(problems) => {
            eprint!("{}", render(&name, &text, &problems));
            return Err(format!("{name} is not a valid ImageSetConfiguration"));
        }
    };
    let written = written_catalogs(&text);
    let mut listing = Listing::default();
    let mut access: Option<RegistryAccess> = None;
    for (position, operator) in loaded.config.mirror.operators.iter().enumerate() {
        let catalog_name = written
            .get(position)
            .cloned()
            .flatten()
            .unwrap_or_else(|| operator.catalog.to_string());
        let catalog = read_catalog(&operator.catalog, &mut access, registry)
            .map_err(|message| format!("catalog {catalog_name}: {message}"))?;
        let filtered = catalog::filter(&catalog, operator)
            .map_err(|error| format!("catalog {catalog_name}: {error}{}", fix_help(&error)))?;
        for warning in &filtered.warnings {
            listing
                .warnings
                .push(format!("catalog {catalog_name}: {warning}"));
        }
        for missing in catalog::missing_dependencies(&catalog, &filtered) {
            let mut warning = format!("catalog {catalog_name}: {missing}");
            if let Some(lines) = &missing.suggestion {
                warning.push_str(&format!(
                    "\n  add under packages:\n{}",
                    indent(lines, "    ")
                ));
            }
            listing.warnings.push(warning);
        }
        listing.rows.extend(catalog::listing::bundle_rows(
            &catalog_name,
            &catalog,
            &filtered,
        ));
    }
    Ok(listing)
}

fn render_rows(rows: &[BundleRow], format: Format) -> Result<String, String> {
    match format {
        Format::Json => serde_json::to_string_pretty(rows)
            .map(|json| json + "\n")
            .map_err(|error| format!("writing JSON: {error}")),
        Format::Text => Ok(table(rows)),
    }
}

/// A catalog image's configs folder, read from an OCI layout or a
/// registry (the registry access made on first use) and loaded.
fn read_catalog(
    source: &ImageSource,
    access: &mut Option<RegistryAccess>,
    registry: &RegistryArgs,
) -> Result<Catalog, String> {
    let folder = match source {
        ImageSource::OciLayout { path } => {
            layer_files::read_labelled_folder(Path::new(path), CATALOG_CONFIGS_LABEL)
                .map_err(|error| error.to_string())?
        }
        ImageSource::Registry(reference) => {
            let access = match access {
                Some(access) => access,
                None => access.insert(RegistryAccess::new(&registry.access_options())?),
            };
            access.read_catalog(reference)?
        }
    };
    load_catalog(folder)
}

/// A catalog's configs folder, loaded.
fn load_catalog(folder: FolderFiles) -> Result<Catalog, String> {
    let files = folder
        .files
        .into_iter()
        .map(|(path, bytes)| CatalogFile::new(path, bytes))
        .collect();
    Catalog::load(files).map_err(|error| error.to_string())
}

/// The `catalog` values as written in the file (`oci:` and `docker://`
/// spellings kept), by position; `None` where the text cannot be read so.
fn written_catalogs(text: &str) -> Vec<Option<String>> {
    let Ok(value) = serde_yaml::from_str::<serde_yaml::Value>(text) else {
        return Vec::new();
    };
    value
        .get("mirror")
        .and_then(|mirror| mirror.get("operators"))
        .and_then(serde_yaml::Value::as_sequence)
        .map(|operators| {
            operators
                .iter()
                .map(|operator| {
                    operator
                        .get("catalog")
                        .and_then(serde_yaml::Value::as_str)
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// For "multiple channel heads": the lines that give the channel one head.
fn fix_help(error: &FilterError) -> String {
    match error {
        FilterError::MultipleHeads { fix: Some(fix), .. } => format!(
            "\n  help: pin the newest head, {} ({}), by writing this package entry under packages:\n{}",
            fix.bundle,
            fix.version,
            indent(&fix.yaml, "    ")
        ),
        _ => String::new(),
    }
}

fn indent(lines: &str, prefix: &str) -> String {
    lines
        .lines()
        .map(|line| format!("{prefix}{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn table(rows: &[BundleRow]) -> String {
    let headers = [
        "CATALOG", "PACKAGE", "BUNDLE", "VERSION", "CHANNELS", "IMAGE",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|row| {
            [
                row.catalog.clone(),
                row.package.clone(),
                row.bundle.clone(),
                row.version.clone(),
                row.channels.join(","),
                row.image.clone(),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &cells {
        for (column, cell) in row.iter().enumerate() {
            widths[column] = widths[column].max(cell.len());
        }
    }
    let mut text = String::new();
    let header_row = headers.map(str::to_owned);
    for row in std::iter::once(&header_row).chain(&cells) {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(column, cell)| format!("{cell:<width$}", width = widths[column]))
            .collect();
        text.push_str(line.join("  ").trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    fn blob(layout: &Path, bytes: &[u8]) -> serde_json::Value {
        let hex = hex::encode(sha2::Sha256::digest(bytes));
        std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
        std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
        serde_json::json!({"digest": format!("sha256:{hex}"), "size": bytes.len()})
    }

    /// An OCI layout of one catalog image whose configs are oc-mirror's
    /// test-catalog-latest.
    fn catalog_layout(layout: &Path) {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(
            "../shared/fixtures/openshift+oc-mirror/tests/integration/image-builders/operator/catalogs/test-catalog-latest",
        );
        let mut builder = tar::Builder::new(Vec::new());
        for package in ["bar", "baz", "foo"] {
            for file in ["operator.yaml", "channels.yaml", "bundles.yaml"] {
                let bytes = std::fs::read(source.join(package).join(file)).unwrap();
                let mut header = tar::Header::new_gnu();
                header.set_size(bytes.len() as u64);
                header.set_mode(0o644);
                header.set_cksum();
                builder
                    .append_data(
                        &mut header,
                        format!("configs/{package}/{file}"),
                        bytes.as_slice(),
                    )
                    .unwrap();
            }
        }
        let layer = blob(layout, &builder.into_inner().unwrap());
        let config = blob(
            layout,
            serde_json::json!({"config": {"Labels": {CATALOG_CONFIGS_LABEL: "/configs"}}})
                .to_string()
                .as_bytes(),
        );
        let manifest = blob(
            layout,
            serde_json::json!({"schemaVersion": 2, "config": config, "layers": [layer]})
                .to_string()
                .as_bytes(),
        );
        std::fs::write(
            layout.join("index.json"),
            serde_json::json!({"schemaVersion": 2, "manifests": [manifest]}).to_string(),
        )
        .unwrap();
    }

    fn configuration(dir: &Path, operators: &str) -> PathBuf {
        let path = dir.join("isc.yaml");
        std::fs::write(
            &path,
            format!("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  operators:\n{operators}"),
        )
        .unwrap();
        path
    }

    #[test]
    fn bundles_of_an_oci_catalog() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("catalog");
        catalog_layout(&layout);
        let catalog = format!("oci://{}", layout.display());
        let config = configuration(
            dir.path(),
            &format!(
                "  - catalog: {catalog}\n    packages:\n    - name: foo\n      channels:\n      - name: beta\n        minVersion: 0.2.0\n        maxVersion: 0.3.1\n"
            ),
        );
        let listing = collect_bundles(&config, &RegistryArgs::default()).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&render_rows(&listing.rows, Format::Json).unwrap()).unwrap();
        let bundles: Vec<&str> = json
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["bundle"].as_str().unwrap())
            .collect();
        assert_eq!(bundles, ["foo.v0.2.0", "foo.v0.3.0", "foo.v0.3.1"]);
        assert_eq!(json[0]["catalog"], catalog.as_str());
        assert_eq!(json[0]["channels"], serde_json::json!(["beta"]));
        assert_eq!(
            json[0]["image"],
            "quay.io/oc-mirror/oc-mirror-dev:foo-bundle-v0.2.0"
        );
        // foo requires bar <0.2.0, which the selection lacks.
        assert!(
            listing
                .warnings
                .iter()
                .any(|w| w.contains("requires package \"bar\"")),
            "{:?}",
            listing.warnings
        );
        let table = render_rows(&listing.rows, Format::Text).unwrap();
        assert!(table.starts_with("CATALOG"), "{table}");
        assert_eq!(table.lines().count(), 4);
    }

    #[test]
    fn nothing_selected_is_an_empty_array_and_filter_errors_name_the_package() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("catalog");
        catalog_layout(&layout);
        let config = configuration(
            dir.path(),
            &format!(
                "  - catalog: oci://{}\n    packages:\n    - name: not-there\n",
                layout.display()
            ),
        );
        let listing = collect_bundles(&config, &RegistryArgs::default()).unwrap();
        assert_eq!(render_rows(&listing.rows, Format::Json).unwrap(), "[]\n");
        let config = configuration(
            dir.path(),
            &format!(
                "  - catalog: oci://{}\n    packages:\n    - name: bar\n      channels:\n      - name: alpha\n",
                layout.display()
            ),
        );
        let error = collect_bundles(&config, &RegistryArgs::default()).unwrap_err();
        assert!(
            error.contains("\"bar\"") && error.contains("default channel"),
            "{error}"
        );
        // A registry catalog whose registry does not answer (a closed
        // loopback port) is an error naming the catalog.
        let registries_conf = dir.path().join("registries.conf");
        std::fs::write(
            &registries_conf,
            "[[registry]]\nprefix = \"registry.example.com\"\nlocation = \"127.0.0.1:9/example\"\ninsecure = true\n",
        )
        .unwrap();
        let config = configuration(dir.path(), "  - catalog: registry.example.com/catalog:v1\n");
        let registry = RegistryArgs {
            registries_conf: Some(registries_conf),
            authfile: Some(dir.path().join("no-auth.json")),
            src_tls_verify: false,
        };
        let error = collect_bundles(&config, &registry).unwrap_err();
        assert!(
            error.starts_with(
                "catalog registry.example.com/catalog:v1: cannot read the catalog image"
            ),
            "{error}"
        );
    }
}
