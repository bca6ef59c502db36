//! TLS to the database: reads libpq's `sslmode` and `sslrootcert` out of a
//! connection string (the `postgres` client knows only `disable`, `prefer`
//! and `require`, and no root file) and builds the rustls connector that
//! enforces them.
//!
//! | `sslmode` | TLS | server certificate |
//! |---|---|---|
//! | absent, `disable` | never | - |
//! | `prefer` | when the server offers it | checked against the roots only if `sslrootcert` is given |
//! | `require` | always | checked against the roots only if `sslrootcert` is given (libpq's rule) |
//! | `verify-ca` | always | chain to a root |
//! | `verify-full` | always | chain to a root and names the host connected to |
//!
//! Roots: the PEM file `sslrootcert=<path>`, or the system's roots with
//! `sslrootcert=system` or when a `verify-*` mode names no file. An absent
//! `sslmode` means no TLS (libpq would try TLS first): a store asks for
//! TLS explicitly. `allow` (plaintext first) is refused as unsupported.

use std::fmt;
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::OpenError;

/// The connector every connection of a store goes through; with
/// `sslmode=disable` the client never asks the server for TLS, so it is
/// then the same as `NoTls`.
pub(crate) type Connector = MakeRustlsConnect;

/// libpq's `sslmode` values that the store supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// No TLS (also what an absent `sslmode` means here).
    Disable,
    /// TLS if the server offers it, else plaintext.
    Prefer,
    /// TLS or no connection.
    Require,
    /// TLS with a server certificate that chains to a trusted root.
    VerifyCa,
    /// `VerifyCa`, and the certificate names the host connected to.
    VerifyFull,
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        })
    }
}

/// A connection string taken apart: the client's configuration (without
/// the TLS keys it does not understand), and the TLS settings.
pub(crate) struct Target {
    pub(crate) config: postgres::Config,
    pub(crate) mode: SslMode,
    pub(crate) root_cert: Option<String>,
    pub(crate) connector: Connector,
}

/// Parses a libpq connection string (`key=value ...`) or URL
/// (`postgresql://...?...`), including multi-host ones, and builds the TLS
/// connector its `sslmode`/`sslrootcert` ask for.
pub(crate) fn parse(url: &str) -> Result<Target, OpenError> {
    let (rest, mode, root_cert) = split_tls_keys(url)?;
    let mut config: postgres::Config = rest.parse()?;
    let mode = match mode.as_deref() {
        None | Some("disable") => SslMode::Disable,
        Some("prefer") => SslMode::Prefer,
        Some("require") => SslMode::Require,
        Some("verify-ca") => SslMode::VerifyCa,
        Some("verify-full") => SslMode::VerifyFull,
        Some("allow") => {
            return Err(OpenError::ConnectionString(
                "sslmode=allow is not supported; use disable, prefer, require, verify-ca or verify-full"
                    .into(),
            ));
        }
        Some(other) => {
            return Err(OpenError::ConnectionString(format!(
                "unknown sslmode {other:?}; use disable, prefer, require, verify-ca or verify-full"
            )));
        }
    };
    config.ssl_mode(match mode {
        SslMode::Disable => postgres::config::SslMode::Disable,
        SslMode::Prefer => postgres::config::SslMode::Prefer,
        _ => postgres::config::SslMode::Require,
    });
    let connector = connector(mode, root_cert.as_deref())?;
    Ok(Target {
        config,
        mode,
        root_cert,
        connector,
    })
}

/// A connector for a [`postgres::Config`] given directly: such a config
/// carries no root file, so only `disable` is accepted (TLS settings come
/// with a connection string).
pub(crate) fn plain(config: &mut postgres::Config) -> Result<Connector, OpenError> {
    match config.get_ssl_mode() {
        postgres::config::SslMode::Require => Err(OpenError::ConnectionString(
            "sslmode=require needs a connection string (PostgresStore::open_url), which also names the roots"
                .into(),
        )),
        _ => {
            config.ssl_mode(postgres::config::SslMode::Disable);
            connector(SslMode::Disable, None)
        }
    }
}

/// Removes `sslmode` and `sslrootcert` from a connection string, returning
/// the rest and their values.
fn split_tls_keys(url: &str) -> Result<(String, Option<String>, Option<String>), OpenError> {
    let mut mode = None;
    let mut root = None;
    let mut take = |key: &str, value: String| match key {
        "sslmode" => {
            mode = Some(value);
            true
        }
        "sslrootcert" => {
            root = Some(value);
            true
        }
        _ => false,
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_string(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for part in query.split('&') {
                    let (k, v) = part.split_once('=').unwrap_or((part, ""));
                    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
                    if !take(&decode(k), decode(v)) {
                        kept.push(part);
                    }
                }
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for (k, v) in key_values(url)? {
            if !take(&k, v.clone()) {
                kept.push(format!(
                    "{k}='{}'",
                    v.replace('\\', "\\\\").replace('\'', "\\'")
                ));
            }
        }
        kept.join(" ")
    };
    Ok((rest, mode, root))
}

/// The pairs of a `key=value` connection string, with libpq's quoting
/// (`'...'`, backslash escapes).
fn key_values(s: &str) -> Result<Vec<(String, String)>, OpenError> {
    let bad = |why: &str| OpenError::ConnectionString(why.to_string());
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            // The stray word is not echoed: it could be a password.
            return Err(bad(&format!("setting {} is not key=value", out.len() + 1)));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => {
                        return Err(bad(&format!("unterminated quote in the value of {key:?}")));
                    }
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// The rustls connector for `mode` with the roots of `root_cert`.
fn connector(mode: SslMode, root_cert: Option<&str>) -> Result<Connector, OpenError> {
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, root_cert) {
        (SslMode::Disable, _) | (SslMode::Prefer | SslMode::Require, None) => {
            Arc::new(EncryptOnly(provider()))
        }
        (SslMode::Prefer | SslMode::Require | SslMode::VerifyCa, root) => {
            Arc::new(ChainOnly(webpki(roots(root)?)?))
        }
        (SslMode::VerifyFull, root) => webpki(roots(root)?)?,
    };
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| OpenError::Tls(format!("rustls: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn webpki(roots: RootCertStore) -> Result<Arc<WebPkiServerVerifier>, OpenError> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| OpenError::Tls(format!("root certificates: {e}")))
}

/// The roots in the PEM file `root_cert`, or the system's roots.
fn roots(root_cert: Option<&str>) -> Result<RootCertStore, OpenError> {
    let mut roots = RootCertStore::empty();
    match root_cert {
        Some(path) if path != "system" => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| OpenError::Tls(format!("sslrootcert {path:?}: {e}")))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(OpenError::Tls(format!(
                    "sslrootcert {path:?} holds no usable CA certificate"
                )));
            }
        }
        _ => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(OpenError::Tls(
                    "no system root certificates found; name a CA file with sslrootcert=".into(),
                ));
            }
        }
    }
    Ok(roots)
}

/// `prefer`/`require` without `sslrootcert`, as libpq does them: the
/// channel is encrypted and the handshake signed by the key of the
/// certificate presented, but who presented it is not checked.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the certificate must chain to a root (and be valid now),
/// whatever host name it carries.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name, so a name error means
        // the chain was good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The certificate error inside a failed connection, if TLS refused the
/// server's certificate.
pub(crate) fn certificate_error(e: &postgres::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(rustls::Error::InvalidCertificate(c)) = err.downcast_ref::<rustls::Error>() {
            return Some(format!("{c:?}"));
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(rustls::Error::InvalidCertificate(c)) =
                io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
        {
            return Some(format!("{c:?}"));
        }
        source = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_keys_are_taken_out_of_key_value_strings() {
        let (rest, mode, root) = split_tls_keys(
            "host=127.0.0.1,127.0.0.1 port=5432,5433 sslmode = verify-full \
             sslrootcert='/tmp/a dir/ca.pem' application_name='it\\'s' target_session_attrs=read-write",
        )
        .expect("parses");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/tmp/a dir/ca.pem"));
        let config: postgres::Config = rest.parse().expect("the rest parses");
        assert_eq!(config.get_ports(), &[5432, 5433]);
        assert_eq!(config.get_application_name(), Some("it's"));
        assert_eq!(
            config.get_target_session_attrs(),
            postgres::config::TargetSessionAttrs::ReadWrite
        );
    }

    #[test]
    fn tls_keys_are_taken_out_of_urls() {
        let (rest, mode, root) = split_tls_keys(
            "postgresql://u@127.0.0.1:5432/db?sslmode=require&sslrootcert=%2Ftmp%2Fca.pem&connect_timeout=3",
        )
        .expect("parses");
        assert_eq!(mode.as_deref(), Some("require"));
        assert_eq!(root.as_deref(), Some("/tmp/ca.pem"));
        assert_eq!(rest, "postgresql://u@127.0.0.1:5432/db?connect_timeout=3");
        let (rest, mode, _) =
            split_tls_keys("postgresql://u@h/db?sslmode=disable").expect("parses");
        assert_eq!(
            (rest.as_str(), mode.as_deref()),
            ("postgresql://u@h/db", Some("disable"))
        );
    }

    #[test]
    fn modes_map_onto_the_client() {
        let mode_of = |url: &str| parse(url).map(|t| (t.mode, t.config.get_ssl_mode()));
        use postgres::config::SslMode as Client;
        assert_eq!(
            mode_of("host=h").expect("no sslmode"),
            (SslMode::Disable, Client::Disable)
        );
        assert_eq!(
            mode_of("host=h sslmode=require").expect("require"),
            (SslMode::Require, Client::Require)
        );
        assert_eq!(
            mode_of("host=h sslmode=prefer").expect("prefer"),
            (SslMode::Prefer, Client::Prefer)
        );
        let err = mode_of("host=h sslmode=allow").expect_err("allow refused");
        assert!(err.to_string().contains("not supported"), "{err}");
        let err = mode_of("host=h sslmode=bogus").expect_err("bogus refused");
        assert!(err.to_string().contains("unknown sslmode"), "{err}");
        let err = mode_of("host=h sslmode=verify-full sslrootcert=/nonexistent/ca.pem")
            .expect_err("missing root file refused");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let err = mode_of("host=h sslmode='require").expect_err("bad quote");
        assert!(err.to_string().contains("unterminated quote"), "{err}");
    }
}
