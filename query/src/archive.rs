//! `--archive URL`: where the archiver writes, read the same way: a local directory (the
//! default, `./lanner-data`), `file:///dir`, or an S3-compatible bucket
//! (`s3://bucket/prefix`).
//!
//! The S3 flags and environment variables are the archiver's (`--s3-endpoint`,
//! `--s3-region`, `--s3-access-key-id`, `--s3-secret-access-key`, `--s3-allow-http`,
//! `LANNER_S3_*`, and the usual `AWS_*` variables as fallback), so one set of settings
//! serves both.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::SessionContext;
use object_store::ObjectStore;
use url::Url;

use crate::local_files::InlineLocalFiles;

pub use lanner_contract::archive_args::{ArchiveArgs, S3Args};

/// Errors opening an archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The URL is not one we read.
    #[error("unsupported archive URL {0:?} (use a directory, file:///dir or s3://bucket/prefix)")]
    Unsupported(String),
    /// `s3://` without a bucket.
    #[error("archive URL {0:?} names no bucket")]
    NoBucket(String),
    /// The S3 client could not be configured.
    #[error("configuring S3 for {url}: {source}")]
    S3 {
        /// The archive URL.
        url: String,
        /// Why.
        source: object_store::Error,
    },
    /// A local path that cannot be used.
    #[error("archive directory {path}: {reason}")]
    Local {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// An archive location, ready to be registered with a DataFusion session.
#[derive(Clone, Debug)]
pub struct Archive {
    /// Root URL with a trailing slash: `file:///var/lib/lanner/` or `s3://bucket/prefix/`.
    pub root: Url,
    /// The object store serving an `s3://` root (local roots use DataFusion's own).
    store: Option<(Url, Arc<dyn ObjectStore>)>,
}

impl Archive {
    /// Opens `url`: `s3://bucket[/prefix]`, `file:///dir` or a plain directory path.
    /// Nothing is read yet; a local directory that does not exist yet reads as empty.
    pub fn open(url: &str, s3: &S3Args) -> Result<Self, ArchiveError> {
        if url.starts_with("s3://") {
            let (bucket, prefix) = lanner_contract::archive_args::s3_bucket_and_prefix(url)
                .ok_or_else(|| ArchiveError::NoBucket(url.to_owned()))?;
            let store: Arc<dyn ObjectStore> =
                Arc::new(s3.store(bucket).map_err(|source| ArchiveError::S3 {
                    url: url.to_owned(),
                    source,
                })?);
            let bad = || ArchiveError::Unsupported(url.to_owned());
            let bucket_url = Url::parse(&format!("s3://{bucket}")).map_err(|_| bad())?;
            let root = if prefix.is_empty() {
                format!("s3://{bucket}/")
            } else {
                format!("s3://{bucket}/{prefix}/")
            };
            let root = Url::parse(&root).map_err(|_| bad())?;
            return Ok(Archive {
                root,
                store: Some((bucket_url, store)),
            });
        }
        if url.contains("://") && !url.starts_with("file://") {
            return Err(ArchiveError::Unsupported(url.to_owned()));
        }
        let dir = PathBuf::from(url.strip_prefix("file://").unwrap_or(url));
        let local = |reason: String| ArchiveError::Local {
            path: dir.display().to_string(),
            reason,
        };
        let dir_abs = if dir.is_absolute() {
            dir.clone()
        } else {
            std::env::current_dir()
                .map_err(|e| local(format!("no current directory: {e}")))?
                .join(&dir)
        };
        let dir_abs = match dir_abs.canonicalize() {
            Ok(d) if d.is_dir() => d,
            Ok(_) => return Err(local("is not a directory".into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(archive = %dir_abs.display(), "archive directory does not exist yet; tables read as empty until the archiver writes");
                dir_abs
            }
            Err(e) => return Err(local(e.to_string())),
        };
        let root = Url::from_directory_path(&dir_abs)
            .map_err(|()| local("cannot be made into a file:// URL".into()))?;
        Ok(Archive { root, store: None })
    }

    /// The listing URL of a table's folder (`<root>/<table>/`).
    pub fn table_url(&self, table: &str) -> datafusion::error::Result<ListingTableUrl> {
        let url = self
            .root
            .join(&format!("{table}/"))
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        ListingTableUrl::try_new(url, None)
    }

    /// Registers the archive's object store with `ctx`: the S3 client, or for a local
    /// directory [`InlineLocalFiles`] in place of DataFusion's default `file://` store.
    pub fn register_store(&self, ctx: &SessionContext) {
        match &self.store {
            Some((url, store)) => {
                ctx.register_object_store(url, Arc::clone(store));
            }
            None => {
                let url = ObjectStoreUrl::local_filesystem();
                ctx.register_object_store(url.as_ref(), Arc::new(InlineLocalFiles::new()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_map_to_table_folders() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a =
            Archive::open(&dir.path().display().to_string(), &S3Args::default()).expect("opens");
        let t = a.table_url("events").expect("url");
        assert!(t.as_str().starts_with("file:///"), "{t}");
        assert!(t.as_str().ends_with("/events/"), "{t}");

        let s3 = S3Args {
            endpoint: Some("http://127.0.0.1:1".into()),
            region: Some("us-east-1".into()),
            access_key_id: Some("k".into()),
            secret_access_key: Some("s".into()),
            allow_http: false,
        };
        let a = Archive::open("s3://bucket/lake/x/", &s3).expect("opens");
        assert_eq!(a.root.as_str(), "s3://bucket/lake/x/");
        assert_eq!(
            a.table_url("alerts").expect("url").as_str(),
            "s3://bucket/lake/x/alerts/"
        );
        assert!(matches!(
            Archive::open("s3:///x", &s3),
            Err(ArchiveError::NoBucket(_))
        ));
        assert!(matches!(
            Archive::open("gs://b/x", &s3),
            Err(ArchiveError::Unsupported(_))
        ));
        let missing = dir.path().join("not-yet");
        assert!(Archive::open(&missing.display().to_string(), &s3).is_ok());
    }
}
