//! `ferry list operators`, oc-mirror's (notes §1.6): `--catalog REF` lists
//! the packages (name, display name, default channel), `--package P` the
//! channels with their heads, `--channel C` the versions (lowest first);
//! `--catalogs --version V` (or `--version V`) fetches the manifests of Red
//! Hat's catalog repositories at `vV` and says which exist. The catalog is
//! read as `list bundles` reads it (`catalog_image::load_catalog`).

use std::io::Write as _;
use std::process::ExitCode;

use ferry_content::catalog::{self, Catalog};
use ferry_executor::catalog_image::{RegistryAccess, load_catalog};
use ferry_schemas::{ImageReference, ImageSource};

use crate::common::RegistryArgs;
use crate::exit_status;

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

/// `ferry list operators`.
pub fn run(args: &OperatorsArgs) -> ExitCode {
    match operators(args) {
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
            let catalog = load_catalog(&source, &mut access, &args.registry.access_options())
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
