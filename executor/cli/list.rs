//! `ferry list bundles`: what a configuration's catalogs select, without
//! mirroring. `main.rs` sends `list operators` to `list_operators.rs` and
//! `list releases` to `list_releases.rs`.
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

use ferry_content::catalog::{self, FilterError, listing::BundleRow};
use ferry_executor::catalog_image::{RegistryAccess, load_catalog};
use ferry_schemas::{load_image_set_configuration, render};

use crate::common::RegistryArgs;
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// `ferry list bundles`.
pub fn bundles_command(args: &BundlesArgs) -> ExitCode {
    exit_status_of(bundles(args))
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
        let catalog = load_catalog(&operator.catalog, &mut access, &registry.access_options())
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
    use ferry_executor::layer_files::CATALOG_CONFIGS_LABEL;
    use sha2::Digest as _;

    /// Writes `bytes` as a blob of the layout; returns its descriptor
    /// (with the media type every descriptor of a valid layout carries).
    fn blob(layout: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
        let hex = hex::encode(sha2::Sha256::digest(bytes));
        std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
        std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
        serde_json::json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len()})
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
        let layer = blob(
            layout,
            "application/vnd.oci.image.layer.v1.tar",
            &builder.into_inner().unwrap(),
        );
        let config = blob(
            layout,
            "application/vnd.oci.image.config.v1+json",
            serde_json::json!({
                "architecture": "amd64",
                "os": "linux",
                "config": {"Labels": {CATALOG_CONFIGS_LABEL: "/configs"}},
                "rootfs": {"type": "layers", "diff_ids": []},
            })
            .to_string()
            .as_bytes(),
        );
        let manifest = blob(
            layout,
            "application/vnd.oci.image.manifest.v1+json",
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
