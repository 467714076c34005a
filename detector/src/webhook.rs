//! HTTP webhook output: POSTs each alert's JSON (Falco's shape, which falcosidekick
//! accepts) to a URL, retrying with exponential backoff.
//!
//! Plain `http://` only (put a TLS-terminating proxy in front for `https`). A 2xx
//! answer is success; 4xx is a permanent rejection (logged, not retried); connection
//! errors, timeouts and 5xx are retried, and when retries run out the batch fails so
//! its events are redelivered (webhook delivery is at-least-once).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where and how to post.
#[derive(Clone, Debug)]
pub struct Webhook {
    host: String,
    port: u16,
    path: String,
    retries: u32,
    timeout: Duration,
}

/// A delivery failure.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL is not `http://host[:port][/path]`.
    #[error("webhook URL must be http://host[:port][/path], got {0:?}")]
    BadUrl(String),
    /// The receiver refused the alert (4xx): retrying would not help.
    #[error("webhook rejected the alert with HTTP {0}")]
    Rejected(u16),
    /// Retries ran out.
    #[error("webhook failed after {attempts} attempts: {last}")]
    Exhausted {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: String,
    },
}

impl Webhook {
    /// Parses the URL; `retries` extra attempts after the first.
    pub fn new(url: &str, retries: u32, timeout: Duration) -> Result<Webhook, WebhookError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| WebhookError::BadUrl(url.to_owned()))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| WebhookError::BadUrl(url.to_owned()))?,
            ),
            None => (authority, 80),
        };
        if host.is_empty() {
            return Err(WebhookError::BadUrl(url.to_owned()));
        }
        Ok(Webhook {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
            retries,
            timeout,
        })
    }

    async fn post_once(&self, body: &[u8]) -> Result<u16, String> {
        let io = async {
            let mut s = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let head = format!(
                "POST {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: lanner-detector\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                self.path,
                self.host,
                self.port,
                body.len()
            );
            s.write_all(head.as_bytes())
                .await
                .map_err(|e| format!("write: {e}"))?;
            s.write_all(body).await.map_err(|e| format!("write: {e}"))?;
            let mut buf = Vec::with_capacity(256);
            let mut chunk = [0u8; 256];
            while !buf.windows(2).any(|w| w == b"\r\n") {
                let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let line = String::from_utf8_lossy(&buf);
            line.split_whitespace()
                .nth(1)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| format!("bad HTTP response {:?}", line.lines().next().unwrap_or("")))
        };
        tokio::time::timeout(self.timeout, io)
            .await
            .map_err(|_| "timed out".to_owned())?
    }

    /// Posts one JSON document, retrying with backoff (100 ms, doubling, at most 5 s).
    pub async fn post(&self, body: &[u8]) -> Result<(), WebhookError> {
        let mut delay = Duration::from_millis(100);
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            match self.post_once(body).await {
                Ok(code) if (200..300).contains(&code) => return Ok(()),
                Ok(code) if (400..500).contains(&code) && code != 408 && code != 429 => {
                    return Err(WebhookError::Rejected(code));
                }
                Ok(code) => last = format!("HTTP {code}"),
                Err(e) => last = e,
            }
            tracing::debug!(attempt, error = %last, "webhook attempt failed");
        }
        Err(WebhookError::Exhausted {
            attempts: self.retries + 1,
            last,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A receiver answering with the given status codes in turn; returns the bodies.
    async fn receiver(codes: Vec<u16>) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/falco", l.local_addr().expect("addr"));
        let h = tokio::spawn(async move {
            let mut bodies = Vec::new();
            for code in codes {
                let (mut s, _) = l.accept().await.expect("accept");
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = s.read(&mut chunk).await.expect("read");
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(i) = text.find("\r\n\r\n") {
                        let len: usize = text
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .and_then(|v| v.trim().parse().ok())
                            .expect("length");
                        if buf.len() >= i + 4 + len {
                            assert!(text.starts_with("POST /falco HTTP/1.1\r\n"), "{text}");
                            bodies.push(text[i + 4..i + 4 + len].to_owned());
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                s.write_all(format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await
                    .expect("write");
            }
            bodies
        });
        (url, h)
    }

    #[tokio::test]
    async fn retries_until_accepted() {
        let (url, h) = receiver(vec![503, 500, 200]).await;
        let w = Webhook::new(&url, 5, Duration::from_secs(5)).expect("url");
        w.post(br#"{"rule":"x"}"#).await.expect("delivered");
        let bodies = h.await.expect("join");
        assert_eq!(bodies.len(), 3);
        assert!(bodies.iter().all(|b| b == r#"{"rule":"x"}"#));
    }

    #[tokio::test]
    async fn gives_up_and_does_not_retry_rejections() {
        let (url, h) = receiver(vec![503, 503]).await;
        let w = Webhook::new(&url, 1, Duration::from_secs(5)).expect("url");
        assert!(matches!(
            w.post(b"{}").await,
            Err(WebhookError::Exhausted { attempts: 2, .. })
        ));
        h.await.expect("join");
        let (url, h) = receiver(vec![400]).await;
        let w = Webhook::new(&url, 5, Duration::from_secs(5)).expect("url");
        assert!(matches!(
            w.post(b"{}").await,
            Err(WebhookError::Rejected(400))
        ));
        h.await.expect("join");
    }

    #[test]
    fn urls() {
        assert!(Webhook::new("https://x", 1, Duration::from_secs(1)).is_err());
        assert!(Webhook::new("http://:80/", 1, Duration::from_secs(1)).is_err());
        let w = Webhook::new("http://sidekick:2801", 1, Duration::from_secs(1)).expect("url");
        assert_eq!(
            (w.host.as_str(), w.port, w.path.as_str()),
            ("sidekick", 2801, "/")
        );
    }
}
