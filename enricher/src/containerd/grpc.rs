//! A minimal gRPC client over HTTP/2 on a unix socket (h2, already in the dependency tree
//! through hyper): unary calls and server streams, messages framed as gRPC requires
//! (1 byte compression flag, 4 bytes big-endian length), status read from the trailers.
//! Enough for the handful of containerd calls the enricher makes; no TLS, no compression.

use std::path::PathBuf;

use bytes::{Buf, Bytes, BytesMut};
use h2::client::SendRequest;
use tokio::net::UnixStream;
use tokio::sync::Mutex;

/// gRPC status `NOT_FOUND`.
pub const NOT_FOUND: u32 = 5;

/// Largest message accepted (containerd's own default send limit).
const MAX_MESSAGE: usize = 16 << 20;

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// The socket could not be reached.
    #[error("connecting to {socket}: {source}")]
    Connect {
        /// Socket path.
        socket: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// HTTP/2 failed.
    #[error("http/2: {0}")]
    H2(#[from] h2::Error),
    /// The request could not be built.
    #[error("request: {0}")]
    Http(#[from] http::Error),
    /// The server answered with a non-OK gRPC status.
    #[error("grpc status {code}: {message}")]
    Status {
        /// Status code.
        code: u32,
        /// Message.
        message: String,
    },
    /// The answer was not a gRPC answer.
    #[error("protocol: {0}")]
    Protocol(String),
}

impl GrpcError {
    /// The gRPC status code, if the server answered with one.
    pub fn code(&self) -> Option<u32> {
        match self {
            GrpcError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A client of one gRPC server on a unix socket; connects lazily and reconnects when the
/// connection broke. Cheap to clone (clones share the connection).
#[derive(Clone, Debug)]
pub struct GrpcUnix {
    socket: PathBuf,
    /// Metadata sent with every call (e.g. `containerd-namespace`).
    metadata: Vec<(http::HeaderName, http::HeaderValue)>,
    conn: std::sync::Arc<Mutex<Option<SendRequest<Bytes>>>>,
}

fn status_of(headers: &http::HeaderMap) -> Option<Result<(), GrpcError>> {
    let code = headers.get("grpc-status")?;
    let code: u32 = match code.to_str().ok().and_then(|c| c.parse().ok()) {
        Some(c) => c,
        None => return Some(Err(GrpcError::Protocol("unreadable grpc-status".into()))),
    };
    if code == 0 {
        return Some(Ok(()));
    }
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(percent_decode)
        .unwrap_or_default();
    Some(Err(GrpcError::Status { code, message }))
}

/// gRPC percent-encodes its status message.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl GrpcUnix {
    /// A client of the server at `socket`, sending `metadata` with every call.
    pub fn new(
        socket: impl Into<PathBuf>,
        metadata: Vec<(http::HeaderName, http::HeaderValue)>,
    ) -> Self {
        GrpcUnix {
            socket: socket.into(),
            metadata,
            conn: std::sync::Arc::default(),
        }
    }

    async fn sender(&self) -> Result<SendRequest<Bytes>, GrpcError> {
        let mut slot = self.conn.lock().await;
        if let Some(s) = slot.clone()
            && let Ok(s) = s.ready().await
        {
            return Ok(s);
        }
        *slot = None;
        let io = UnixStream::connect(&self.socket)
            .await
            .map_err(|source| GrpcError::Connect {
                socket: self.socket.display().to_string(),
                source,
            })?;
        let (send, conn) = h2::client::handshake(io).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "grpc connection ended");
            }
        });
        let send = send.ready().await?;
        *slot = Some(send.clone());
        Ok(send)
    }

    /// Starts a call of `path` (`/package.Service/Method`) with one request message;
    /// returns the response body once the headers said OK.
    async fn start(&self, path: &str, request: &[u8]) -> Result<h2::RecvStream, GrpcError> {
        let mut send = self.sender().await?;
        let mut req = http::Request::builder()
            .method("POST")
            .uri(format!("http://localhost{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        for (k, v) in &self.metadata {
            req = req.header(k, v);
        }
        let (response, mut body) = send.send_request(req.body(())?, false)?;
        let mut framed = Vec::with_capacity(request.len() + 5);
        framed.push(0);
        framed.extend_from_slice(
            &u32::try_from(request.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        framed.extend_from_slice(request);
        body.send_data(Bytes::from(framed), true)?;
        let response = response.await?;
        if response.status() != http::StatusCode::OK {
            return Err(GrpcError::Protocol(format!(
                "http status {}",
                response.status()
            )));
        }
        // A "trailers-only" answer carries its status in the headers.
        if let Some(status) = status_of(response.headers()) {
            status?;
        }
        Ok(response.into_body())
    }

    /// A unary call: one request, one response message.
    pub async fn unary(&self, path: &str, request: &[u8]) -> Result<Bytes, GrpcError> {
        let mut stream = MessageStream {
            body: self.start(path, request).await?,
            buf: BytesMut::new(),
        };
        let msg = stream.next().await?;
        // Drain to the trailers, which say whether the call succeeded.
        while stream.next().await?.is_some() {}
        msg.ok_or_else(|| GrpcError::Protocol("no response message".into()))
    }

    /// A server-streaming call: the stream of response messages.
    pub async fn stream(&self, path: &str, request: &[u8]) -> Result<MessageStream, GrpcError> {
        Ok(MessageStream {
            body: self.start(path, request).await?,
            buf: BytesMut::new(),
        })
    }
}

/// Response messages of one call.
#[derive(Debug)]
pub struct MessageStream {
    body: h2::RecvStream,
    buf: BytesMut,
}

impl MessageStream {
    /// The next message; `None` at the end of a call that succeeded.
    pub async fn next(&mut self) -> Result<Option<Bytes>, GrpcError> {
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]])
                    as usize;
                if self.buf[0] != 0 {
                    return Err(GrpcError::Protocol("compressed message".into()));
                }
                if len > MAX_MESSAGE {
                    return Err(GrpcError::Protocol(format!("message of {len} bytes")));
                }
                if self.buf.len() >= 5 + len {
                    self.buf.advance(5);
                    return Ok(Some(self.buf.split_to(len).freeze()));
                }
            }
            match self.body.data().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    let _ = self.body.flow_control().release_capacity(chunk.len());
                    self.buf.extend_from_slice(&chunk);
                }
                None => {
                    if !self.buf.is_empty() {
                        return Err(GrpcError::Protocol("truncated message".into()));
                    }
                    return match self.body.trailers().await? {
                        Some(t) => status_of(&t).unwrap_or(Ok(())).map(|()| None),
                        None => Ok(None),
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_messages_are_percent_decoded() {
        assert_eq!(
            percent_decode("container%20%22x%22: not found"),
            "container \"x\": not found"
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
