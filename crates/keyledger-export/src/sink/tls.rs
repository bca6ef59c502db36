//! Reads a [`TlsClient`]'s PEM files and builds the rustls client
//! configuration (ring provider; the system's roots when no CA file).

use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::{SendError, TlsClient};

/// The certificates of a PEM file.
pub(crate) fn read_certs(
    path: &Path,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, SendError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| SendError::Config(format!("{what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(SendError::Config(format!(
            "{what} {}: no certificate in the file",
            path.display()
        )));
    }
    Ok(certs)
}

/// The private key of a PEM file. Errors name the path, never the contents.
pub(crate) fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, SendError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| SendError::Config(format!("client key {}: {e}", path.display())))
}

/// The roots: `ca_file`'s certificates, or the system's.
pub(crate) fn roots(ca_file: Option<&Path>) -> Result<Vec<CertificateDer<'static>>, SendError> {
    match ca_file {
        Some(path) => read_certs(path, "CA file"),
        None => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let why = found
                    .errors
                    .first()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "none installed".into());
                return Err(SendError::Config(format!(
                    "no system root certificates ({why}); give a CA file"
                )));
            }
            Ok(found.certs)
        }
    }
}

/// The client certificate chain and key, when both are given.
pub(crate) fn client_identity(
    tls: &TlsClient,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, SendError> {
    match (&tls.client_cert, &tls.client_key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some((
            read_certs(cert, "client certificate")?,
            read_key(key)?,
        ))),
        _ => Err(SendError::Config(
            "client_cert and client_key go together".into(),
        )),
    }
}

/// `tls.server_name` as rustls checks it.
pub(crate) fn server_name(tls: &TlsClient) -> Result<ServerName<'static>, SendError> {
    ServerName::try_from(tls.server_name.clone()).map_err(|_| {
        SendError::Config(format!(
            "server_name {:?} is not a DNS name or IP address",
            tls.server_name.chars().take(64).collect::<String>()
        ))
    })
}

/// The rustls client configuration of `tls`.
pub(crate) fn client_config(tls: &TlsClient) -> Result<Arc<ClientConfig>, SendError> {
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(roots(tls.ca_file.as_deref())?);
    if added == 0 {
        return Err(SendError::Config("no usable root certificate".into()));
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| SendError::Config(format!("rustls: {e}")))?
        .with_root_certificates(store);
    let config = match client_identity(tls)? {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| SendError::Config(format!("client certificate: {e}")))?,
    };
    Ok(Arc::new(config))
}
