//! Transports: deliver batches of rendered lines to SIEM receivers (a
//! size-rotated file, syslog over TCP or TLS, Splunk's HTTP Event
//! Collector), each batch acknowledged only once the receiver has taken all
//! of it.
//!
//! A transport keeps no cursor and never retries: [`Transport::send`]
//! returns `Ok` only when the whole batch is taken, and on `Err` the caller
//! (the delivery loop) sends the same batch again later. Delivery is thus
//! at least once; receivers see a batch that failed half-way again, whole.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

mod file;
mod hec;
mod syslog;
mod tls;

/// How long a connection to a receiver may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a single read or write on a connection may stall.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// One rendered record handed to a transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The record's sequence number.
    pub seq: u64,
    /// The event's time.
    pub time: DateTime<Utc>,
    /// The event's type, e.g. `key.wrapped`.
    pub event_type: String,
    /// A refusal / denied outcome.
    pub failure: bool,
    /// The rendered line, no newline.
    pub line: String,
}

/// Where a sink delivers. `Debug` never shows the HEC token.
#[derive(Clone)]
pub enum Target {
    /// Appends lines to `path`; before a batch would make the file larger
    /// than `max_bytes`, rotates: `path.(keep-1)` dropped, `path.N` ->
    /// `path.N+1`, `path` -> `path.1`. `keep` counts `path` itself, so
    /// `keep = 1` keeps no rotated file. A batch larger than `max_bytes`
    /// still goes whole into a fresh file.
    File {
        /// The live file.
        path: PathBuf,
        /// The size a batch may not push the live file past (unless the
        /// file is empty).
        max_bytes: u64,
        /// Files kept, the live one included (at least 1).
        keep: u32,
    },
    /// RFC 5424 messages, octet-counting framing (RFC 6587 3.4.1), over TCP
    /// or TLS (RFC 5425).
    Syslog {
        /// `host:port`.
        address: String,
        /// TLS (RFC 5425) when set, plain TCP otherwise.
        tls: Option<TlsClient>,
        /// HOSTNAME of every message.
        hostname: String,
        /// APP-NAME of every message.
        app_name: String,
    },
    /// Splunk HTTP Event Collector: `POST url`, `Authorization: Splunk <token>`.
    Hec {
        /// The collector's endpoint, e.g.
        /// `https://splunk:8088/services/collector/event`.
        url: String,
        /// The HEC token.
        token: Zeroizing<String>,
        /// Roots and client certificate for an `https` URL (system roots
        /// when `None`). `server_name` must be the URL's host.
        tls: Option<TlsClient>,
        /// The index events go to (the token's default when `None`).
        index: Option<String>,
        /// `source` of every event.
        source: String,
        /// `sourcetype` of every event.
        sourcetype: String,
        /// `host` of every event.
        host: String,
        /// Send each line as a JSON value (JSON formats) rather than as a
        /// JSON string; a line that is not JSON still goes as a string.
        json_event: bool,
    },
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::File {
                path,
                max_bytes,
                keep,
            } => f
                .debug_struct("File")
                .field("path", path)
                .field("max_bytes", max_bytes)
                .field("keep", keep)
                .finish(),
            Target::Syslog {
                address,
                tls,
                hostname,
                app_name,
            } => f
                .debug_struct("Syslog")
                .field("address", address)
                .field("tls", tls)
                .field("hostname", hostname)
                .field("app_name", app_name)
                .finish(),
            Target::Hec {
                url,
                token: _,
                tls,
                index,
                source,
                sourcetype,
                host,
                json_event,
            } => f
                .debug_struct("Hec")
                .field("url", url)
                .field("token", &"<redacted>")
                .field("tls", tls)
                .field("index", index)
                .field("source", source)
                .field("sourcetype", sourcetype)
                .field("host", host)
                .field("json_event", json_event)
                .finish(),
        }
    }
}

/// The TLS client side of a connection to a receiver. Holds paths only;
/// the files are read by [`open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsClient {
    /// The name the receiver's certificate must carry.
    pub server_name: String,
    /// PEM roots; `None` = the system's roots.
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain presented to the receiver, with `client_key`.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
}

/// Delivers batches of entries to one receiver.
pub trait Transport: Send {
    /// Ok only once the receiver has taken the whole batch; on Err the
    /// caller sends the same batch again later (at-least-once). An empty
    /// batch is Ok without contacting the receiver.
    fn send(&mut self, batch: &[Entry]) -> Result<(), SendError>;
}

/// Checks `target` (names, TLS files) and returns its transport. Does not
/// contact the receiver: connections are made per batch.
pub fn open(target: Target) -> Result<Box<dyn Transport>, SendError> {
    match target {
        Target::File {
            path,
            max_bytes,
            keep,
        } => Ok(Box::new(file::FileSink::new(path, max_bytes, keep)?)),
        Target::Syslog {
            address,
            tls,
            hostname,
            app_name,
        } => Ok(Box::new(syslog::SyslogSink::new(
            address,
            tls.as_ref(),
            &hostname,
            &app_name,
        )?)),
        Target::Hec {
            url,
            token,
            tls,
            index,
            source,
            sourcetype,
            host,
            json_event,
        } => Ok(Box::new(hec::HecSink::new(hec::HecConfig {
            url,
            token,
            tls,
            index,
            source,
            sourcetype,
            host,
            json_event,
        })?)),
    }
}

/// Why a batch was not delivered (or a target not opened). Never carries
/// the HEC token or key material.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The target is unusable as given (names, URL, TLS files); retrying
    /// does not help.
    #[error("sink configuration: {0}")]
    Config(String),
    /// The receiver could not be reached or the TLS handshake failed.
    #[error("connecting to the receiver: {0}")]
    Connect(String),
    /// Writing, reading or syncing failed, or the receiver closed before
    /// acknowledging the batch.
    #[error("delivering the batch: {0}")]
    Io(String),
    /// The receiver answered but did not take the batch.
    #[error("the receiver refused the batch ({status}): {text}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The receiver's text (at most 200 characters).
        text: String,
    },
}
