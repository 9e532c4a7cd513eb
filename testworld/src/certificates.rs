//! Certificates for the TLS registries, generated at run time: a throw-away
//! certificate authority and a server certificate it signs, valid for
//! `127.0.0.1` and `localhost`. Written as PEM files; `ca.crt` alone in a
//! directory makes that directory usable as skopeo's `--cert-dir`.

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::error::{Context, Result};

/// PEM files of one generated certificate authority and server certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificates {
    /// Directory holding only `ca.crt`: pass it as skopeo's `--cert-dir`.
    pub cert_dir: PathBuf,
    /// The certificate authority's certificate (PEM).
    pub ca_certificate: PathBuf,
    /// The server certificate (PEM), for `127.0.0.1` and `localhost`.
    pub server_certificate: PathBuf,
    /// The server certificate's private key (PEM).
    pub server_key: PathBuf,
}

impl Certificates {
    /// Generates a new authority and server certificate into `directory`:
    /// `directory/ca/ca.crt`, `directory/server.crt`, `directory/server.key`.
    pub fn generate(directory: &Path) -> Result<Certificates> {
        let (ca_pem, server_pem, server_key_pem) = generate_pem()?;
        let cert_dir = directory.join("ca");
        fs::create_dir_all(&cert_dir)
            .context(|| format!("creating certificate directory {}", cert_dir.display()))?;
        let certificates = Certificates {
            ca_certificate: cert_dir.join("ca.crt"),
            cert_dir,
            server_certificate: directory.join("server.crt"),
            server_key: directory.join("server.key"),
        };
        for (path, pem) in [
            (&certificates.ca_certificate, &ca_pem),
            (&certificates.server_certificate, &server_pem),
            (&certificates.server_key, &server_key_pem),
        ] {
            fs::write(path, pem).context(|| format!("writing {}", path.display()))?;
        }
        Ok(certificates)
    }

    /// Reads the authority certificate back, as DER, for a TLS client.
    pub fn ca_certificate_der(&self) -> Result<Vec<u8>> {
        ca_certificate_der(&self.ca_certificate)
    }
}

/// The first certificate of the PEM file at `path`, as DER.
pub fn ca_certificate_der(path: &Path) -> Result<Vec<u8>> {
    let certificate = CertificateDer::from_pem_file(path)
        .context(|| format!("reading certificate {}", path.display()))?;
    Ok(certificate.to_vec())
}

fn generate_pem() -> Result<(String, String, String)> {
    let ca_key = KeyPair::generate().context(|| "generating the CA key".to_owned())?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())
        .context(|| "preparing the CA certificate".to_owned())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ferry test world CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_certificate = ca_params
        .self_signed(&ca_key)
        .context(|| "signing the CA certificate".to_owned())?;

    let server_key = KeyPair::generate().context(|| "generating the server key".to_owned())?;
    let mut server_params = CertificateParams::new(vec!["localhost".to_owned()])
        .context(|| "preparing the server certificate".to_owned())?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    server_params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let server_certificate = server_params
        .signed_by(&server_key, &ca_certificate, &ca_key)
        .context(|| "signing the server certificate".to_owned())?;
    Ok((
        ca_certificate.pem(),
        server_certificate.pem(),
        server_key.serialize_pem(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_authority_and_a_server_certificate() {
        let directory = tempfile::tempdir().unwrap();
        let certificates = Certificates::generate(directory.path()).unwrap();
        assert!(!certificates.ca_certificate_der().unwrap().is_empty());
        let entries: Vec<_> = fs::read_dir(&certificates.cert_dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(entries, ["ca.crt"]);
        let key = fs::read_to_string(&certificates.server_key).unwrap();
        assert!(key.contains("PRIVATE KEY"));
    }
}
