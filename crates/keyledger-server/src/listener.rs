//! The listening sockets: the Key Protect API listener and the operations
//! listener, on one actix server (one set of workers, one signal handler).
//!
//! Built from actix-server and actix-http rather than actix-web's
//! `HttpServer` for one reason: a request the HTTP/1 parser cannot read (a
//! malformed request line or header, a head over 96 fields or 128 KiB) is
//! answered by actix-http's dispatcher itself, with an empty 400 or 431
//! that never reaches the application or its error handlers.
//! [`ParserRefusals`] wraps each connection's stream and replaces exactly
//! those responses, on their way out, with Key Protect error bodies.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_http::{HttpService, Protocol};
use actix_server::Server;
use actix_service::{ServiceFactoryExt, fn_service, map_config};
use actix_tls::accept::TlsError;
use actix_tls::accept::rustls_0_23::{Acceptor, TlsStream};
use actix_web::ResponseError;
use actix_web::dev::AppConfig;
use actix_web::rt::net::TcpStream;
use actix_web::web;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::app::Limits;
use super::config::ServeConfig;
use super::errors::ApiError;
use super::registry::AppState;
use super::wire::LocalAddr;

/// The HTTP/1 parser's own refusals, as actix-http 3 writes them (its
/// dispatcher answers a parse error with `Response::bad_request()` and an
/// oversized head with a bodiless 431; the application never answers an
/// empty 400 or 431: its error handlers give every error a body).
const REFUSALS: [(&[u8], u16); 2] = [
    (b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n", 400),
    (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n",
        431,
    ),
];

/// The response that replaces a parser refusal of `status`.
fn replacement(status: u16) -> Vec<u8> {
    let error = match status {
        431 => ApiError::new(
            431,
            "HEADERS_TOO_LARGE_ERR",
            "the request head has too many or too large header fields",
        ),
        _ => ApiError::new(400, "BAD_REQUEST_ERR", "the request is not valid HTTP/1.1"),
    };
    let body = error.body_bytes();
    let reason = error
        .status_code()
        .canonical_reason()
        .unwrap_or("Bad Request");
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        super::errors::ERROR_MEDIA_TYPE,
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    response
}

/// Where the first parser refusal in `buf` starts, its status and the
/// length of its head (through the blank line).
fn find_refusal(buf: &[u8]) -> Option<(usize, u16, usize)> {
    REFUSALS
        .iter()
        .filter_map(|(marker, status)| {
            let start = buf.windows(marker.len()).position(|w| w == *marker)?;
            let end = buf[start..].windows(4).position(|w| w == b"\r\n\r\n")?;
            Some((start, *status, end + 4))
        })
        .min_by_key(|(start, ..)| *start)
}

/// A connection's stream whose writes pass through unchanged except for
/// the parser's bodiless 400 and 431 heads, which are replaced by
/// [`replacement`]. The dispatcher closes the connection after such a
/// response, so the replacement is the last thing written.
pub struct ParserRefusals<T> {
    inner: T,
    /// A replacement being written, how much of it is out, and how many of
    /// the caller's bytes it stands for.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<T> ParserRefusals<T> {
    pub fn new(inner: T) -> Self {
        ParserRefusals {
            inner,
            pending: None,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ParserRefusals<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ParserRefusals<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() {
            match find_refusal(buf) {
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
                // Earlier responses first, as they are.
                Some((start, ..)) if start > 0 => {
                    return Pin::new(&mut this.inner).poll_write(cx, &buf[..start]);
                }
                Some((_, status, head_len)) => {
                    this.pending = Some((replacement(status), 0, head_len));
                }
            }
        }
        let Some((bytes, written, stands_for)) = &mut this.pending else {
            return Poll::Ready(Ok(0));
        };
        while *written < bytes.len() {
            match Pin::new(&mut this.inner).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let consumed = *stands_for;
        this.pending = None;
        Poll::Ready(Ok(consumed))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Binds `addr` with the server's listen backlog.
fn bind(addr: &str) -> Result<TcpListener, String> {
    use std::net::ToSocketAddrs;
    let target = addr
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr}: no address"))?;
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(target),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .map_err(|e| format!("{addr}: {e}"))?;
    socket
        .set_reuse_address(true)
        .and_then(|()| socket.bind(&target.into()))
        .and_then(|()| socket.listen(1024))
        .map_err(|e| format!("{addr}: {e}"))?;
    Ok(socket.into())
}

/// Registers `$app` (an expression building a fresh `App`) on `$lst` under
/// `$name`, over TLS when `$tls` is set, each connection wrapped in
/// [`ParserRefusals`]. A macro because the app and service types are
/// unnameable.
macro_rules! serve_on {
    ($builder:expr, $name:expr, $lst:expr, $tls:expr, $shutdown:expr, $app:expr) => {{
        let lst: TcpListener = $lst;
        let addr: SocketAddr = lst.local_addr().map_err(|e| e.to_string())?;
        let tls: Option<Arc<rustls::ServerConfig>> = $tls;
        let shutdown = $shutdown.clone();
        // Expanded once per stream type (HttpService is generic over it).
        macro_rules! http {
            () => {{
                let signal = shutdown.clone();
                HttpService::build()
                    .keep_alive(std::time::Duration::from_secs(5))
                    .client_request_timeout(std::time::Duration::from_secs(5))
                    .client_disconnect_timeout(std::time::Duration::from_secs(1))
                    .graceful_shutdown_signal(move || {
                        let signal = signal.clone();
                        async move { signal.notified().await }
                    })
                    .local_addr(addr)
                    .finish(map_config(
                        actix_service::IntoServiceFactory::into_factory(
                            $app.app_data(LocalAddr(addr)),
                        )
                        .map_err(|e: actix_web::Error| e.error_response()),
                        // Host and scheme are not used (no URL is built from
                        // a request); the listener's address is LocalAddr.
                        |_| AppConfig::default(),
                    ))
            }};
        }
        match tls {
            None => $builder.listen($name, lst, move || {
                fn_service(|io: TcpStream| async move {
                    let _ = io.set_nodelay(true);
                    let peer = io.peer_addr().ok();
                    Ok((ParserRefusals::new(io), Protocol::Http1, peer))
                })
                .and_then(http!())
            }),
            Some(tls) => $builder.listen($name, lst, move || {
                let mut config = (*tls).clone();
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Acceptor::new(config)
                    .map_init_err(|_| ())
                    .map_err(TlsError::into_service_error)
                    .and_then(|io: TlsStream<TcpStream>| async move {
                        let _ = io.get_ref().0.set_nodelay(true);
                        let peer = io.get_ref().0.peer_addr().ok();
                        Ok((ParserRefusals::new(io), Protocol::Http1, peer))
                    })
                    .and_then(http!().map_err(TlsError::Service))
            }),
        }
        .map_err(|e| format!("{}: {e}", $name))?
    }};
}

/// The bound server and the addresses it serves.
pub struct Listening {
    pub server: Server,
    /// `http(s)://addr` of the API listener.
    pub api_url: String,
    /// `http(s)://addr` of the operations listener, when there is one.
    pub ops_url: Option<String>,
}

/// The bound sockets, before anything else is done: a start refused for an
/// address (bad, in use, not allowed) is refused before the data directory
/// is touched.
pub struct Bound {
    api: TcpListener,
    ops: Option<TcpListener>,
}

/// Binds the API listener and, when configured, the operations listener.
pub fn bind_all(config: &ServeConfig) -> Result<Bound, String> {
    Ok(Bound {
        api: bind(&config.listen)?,
        ops: config.ops_listen.as_deref().map(bind).transpose()?,
    })
}

/// Builds the server on the bound sockets; it runs when awaited on an
/// actix system.
pub fn listen(
    bound: Bound,
    config: &ServeConfig,
    state: web::Data<AppState>,
    tls: Option<rustls::ServerConfig>,
) -> Result<Listening, String> {
    let limits = Limits {
        body_bytes: config.body_limit_bytes,
        body_timeout: std::time::Duration::from_secs(config.body_timeout_secs),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let tls = tls.map(Arc::new);
    let mut builder = Server::build()
        .backlog(1024)
        .shutdown_timeout(30)
        .max_concurrent_connections(config.max_connections);
    if config.workers > 0 {
        builder = builder.workers(config.workers);
    }
    let shutdown = builder.graceful_shutdown_signal();
    let api = bound.api;
    let api_url = format!(
        "{scheme}://{}",
        api.local_addr().map_err(|e| e.to_string())?
    );
    let api_state = state.clone();
    builder = serve_on!(
        builder,
        "keyledger-api",
        api,
        tls.clone(),
        shutdown,
        super::app::app(api_state.clone(), limits)
    );
    let mut ops_url = None;
    if let Some(ops) = bound.ops {
        ops_url = Some(format!(
            "{scheme}://{}",
            ops.local_addr().map_err(|e| e.to_string())?
        ));
        let ops_state = state.clone();
        builder = serve_on!(
            builder,
            "keyledger-ops",
            ops,
            tls.clone(),
            shutdown,
            super::app::ops_app(ops_state.clone())
        );
    }
    Ok(Listening {
        server: builder.run(),
        api_url,
        ops_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_only_the_parsers_bodiless_refusals() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(find_refusal(ok), None);
        let app_400 =
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 120\r\ncontent-type: x\r\n\r\n{}";
        assert_eq!(find_refusal(app_400), None);
        let parser = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: x\r\n\r\n";
        assert_eq!(find_refusal(parser), Some((0, 400, parser.len())));
        let too_large =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        let mut pipelined = ok.to_vec();
        pipelined.extend_from_slice(too_large);
        assert_eq!(
            find_refusal(&pipelined),
            Some((ok.len(), 431, too_large.len()))
        );
    }

    #[test]
    fn replacements_carry_key_protect_bodies() {
        for (status, code) in [(400, "BAD_REQUEST_ERR"), (431, "HEADERS_TOO_LARGE_ERR")] {
            let bytes = replacement(status);
            let text = String::from_utf8(bytes).expect("utf8");
            let (head, body) = text.split_once("\r\n\r\n").expect("head");
            assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
            assert!(head.contains(&format!("content-length: {}", body.len())));
            let body: serde_json::Value = serde_json::from_str(body).expect("json");
            assert_eq!(body["resources"][0]["reasons"][0]["code"], code);
        }
        // Byte for byte, as when the body was built with `json!`.
        assert_eq!(
            String::from_utf8(replacement(431)).expect("utf8"),
            "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/vnd.ibm.kms.error+json\r\ncontent-length: 389\r\nconnection: close\r\n\r\n{\"metadata\":{\"collectionTotal\":1,\"collectionType\":\"application/vnd.ibm.kms.error+json\"},\"resources\":[{\"errorMsg\":\"Request Header Fields Too Large: the request head has too many or too large header fields\",\"reasons\":[{\"code\":\"HEADERS_TOO_LARGE_ERR\",\"message\":\"the request head has too many or too large header fields\",\"moreInfo\":\"https://cloud.ibm.com/apidocs/key-protect\",\"status\":431}]}]}"
        );
    }
}
