//! Connecting to NATS: the flags every service shares.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

/// NATS connection flags (`--nats-url`, ...), each with a `LANNER_NATS_*` override.
#[derive(Clone, Debug, clap::Args)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated.
    #[arg(
        long = "nats-url",
        env = "LANNER_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub url: String,
    /// User name for user/password authentication.
    #[arg(long = "nats-user", env = "LANNER_NATS_USER")]
    pub user: Option<String>,
    /// Password for user/password authentication.
    #[arg(
        long = "nats-password",
        env = "LANNER_NATS_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// Token authentication.
    #[arg(long = "nats-token", env = "LANNER_NATS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// NKey seed authentication.
    #[arg(long = "nats-nkey", env = "LANNER_NATS_NKEY", hide_env_values = true)]
    pub nkey: Option<String>,
    /// Credentials file (JWT + nkey), as `nsc` writes them.
    #[arg(long = "nats-creds", env = "LANNER_NATS_CREDS")]
    pub creds: Option<PathBuf>,
    /// CA certificate(s) to verify the server (enables TLS).
    #[arg(long = "nats-tls-ca", env = "LANNER_NATS_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate for mutual TLS (with --nats-tls-key).
    #[arg(
        long = "nats-tls-cert",
        env = "LANNER_NATS_TLS_CERT",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Client key for mutual TLS.
    #[arg(
        long = "nats-tls-key",
        env = "LANNER_NATS_TLS_KEY",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Require TLS even without a CA.
    #[arg(long = "nats-tls", env = "LANNER_NATS_TLS")]
    pub tls: bool,
}

impl NatsArgs {
    /// Default options pointing at `url`.
    pub fn with_url(url: impl Into<String>) -> Self {
        NatsArgs {
            url: url.into(),
            user: None,
            password: None,
            token: None,
            nkey: None,
            creds: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            tls: false,
        }
    }

    /// Connects, naming the connection after the service.
    pub async fn connect(&self, service: &str) -> anyhow::Result<async_nats::Client> {
        let mut opts = async_nats::ConnectOptions::new()
            .name(service)
            .connection_timeout(Duration::from_secs(5));
        if let (Some(u), Some(p)) = (&self.user, &self.password) {
            opts = opts.user_and_password(u.clone(), p.clone());
        }
        if let Some(t) = &self.token {
            opts = opts.token(t.clone());
        }
        if let Some(seed) = &self.nkey {
            opts = opts.nkey(seed.clone());
        }
        if let Some(creds) = &self.creds {
            opts = opts
                .credentials_file(creds)
                .await
                .with_context(|| format!("reading NATS credentials {}", creds.display()))?;
        }
        if let Some(ca) = &self.tls_ca {
            opts = opts.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let (Some(c), Some(k)) = (&self.tls_cert, &self.tls_key) {
            opts = opts.add_client_certificate(c.clone(), k.clone());
        }
        if self.tls {
            opts = opts.require_tls(true);
        }
        let urls: Vec<async_nats::ServerAddr> = self
            .url
            .split(',')
            .map(|u| u.trim().parse())
            .collect::<Result<_, _>>()
            .with_context(|| format!("invalid NATS URL {:?}", self.url))?;
        opts.connect(urls)
            .await
            .with_context(|| format!("connecting to NATS at {}", self.url))
    }
}
