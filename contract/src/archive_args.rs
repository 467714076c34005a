//! `--archive URL` and the S3 flags, shared by the stage that writes the archive (the
//! archiver) and the one that reads it (the query), so one set of settings serves both.
//!
//! The URL is a local directory (the default, `./lanner-data`), `file:///dir`, or an
//! S3-compatible bucket (`s3://bucket/prefix`). S3 settings come from flags, their
//! `LANNER_S3_*` variables, or the usual `AWS_*` variables (`AWS_ENDPOINT`,
//! `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_ALLOW_HTTP`). With feature `s3`, [`S3Args::store`] builds the client.

/// S3 flags (each with the usual AWS environment variable as fallback).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct S3Args {
    /// S3 endpoint (for MinIO, s3s-fs, ...): `http://127.0.0.1:9000`.
    #[arg(long = "s3-endpoint", env = "LANNER_S3_ENDPOINT")]
    pub endpoint: Option<String>,
    /// S3 region.
    #[arg(long = "s3-region", env = "LANNER_S3_REGION")]
    pub region: Option<String>,
    /// S3 access key id.
    #[arg(long = "s3-access-key-id", env = "LANNER_S3_ACCESS_KEY_ID")]
    pub access_key_id: Option<String>,
    /// S3 secret access key.
    #[arg(
        long = "s3-secret-access-key",
        env = "LANNER_S3_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    pub secret_access_key: Option<String>,
    /// Allow plain HTTP to the endpoint (implied by an `http://` endpoint).
    #[arg(long = "s3-allow-http", env = "LANNER_S3_ALLOW_HTTP")]
    pub allow_http: bool,
}

/// Where the archive is.
#[derive(Clone, Debug, clap::Args)]
pub struct ArchiveArgs {
    /// Archive location: a directory, `file:///dir` or `s3://bucket/prefix`.
    #[arg(
        long = "archive",
        env = "LANNER_ARCHIVE",
        default_value = "./lanner-data"
    )]
    pub archive: String,
    /// S3 settings.
    #[command(flatten)]
    pub s3: S3Args,
}

/// An `s3://bucket[/prefix]` URL split into bucket and prefix (without surrounding
/// slashes); `None` for other URLs or without a bucket.
pub fn s3_bucket_and_prefix(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket, prefix.trim_matches('/')))
}

#[cfg(feature = "s3")]
impl S3Args {
    /// The client for `bucket`: the `AWS_*` environment, overridden by these flags.
    pub fn store(&self, bucket: &str) -> Result<object_store::aws::AmazonS3, object_store::Error> {
        let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(e) = &self.endpoint {
            b = b.with_endpoint(e);
            if e.starts_with("http://") {
                b = b.with_allow_http(true);
            }
        }
        if let Some(r) = &self.region {
            b = b.with_region(r);
        }
        if let Some(k) = &self.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(k) = &self.secret_access_key {
            b = b.with_secret_access_key(k);
        }
        if self.allow_http {
            b = b.with_allow_http(true);
        }
        b.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_split_into_bucket_and_prefix() {
        assert_eq!(s3_bucket_and_prefix("s3://lake"), Some(("lake", "")));
        assert_eq!(s3_bucket_and_prefix("s3://lake/"), Some(("lake", "")));
        assert_eq!(
            s3_bucket_and_prefix("s3://lake/a/b/"),
            Some(("lake", "a/b"))
        );
        assert_eq!(s3_bucket_and_prefix("s3:///a"), None);
        assert_eq!(s3_bucket_and_prefix("/var/lib/lanner"), None);
    }
}
