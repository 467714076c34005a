//! `--archive URL`: a local directory (the default, `./lanner-data`) or an S3-compatible
//! bucket (`s3://bucket/prefix`), opened as an `object_store`; create-only, durable puts.
//!
//! S3 settings come from flags or the usual `AWS_*` environment variables
//! (`AWS_ENDPOINT`/`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

pub use lanner_contract::archive_args::S3Args;

/// An opened archive.
#[derive(Clone, Debug)]
pub struct Archive {
    /// The store, rooted at the archive's prefix.
    pub store: Arc<dyn ObjectStore>,
    /// The local root directory, when the archive is a local directory (for fsync).
    pub local_root: Option<PathBuf>,
    /// The URL it was opened from.
    pub url: String,
}

/// Outcome of a create-only put.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    /// The object was written.
    Written,
    /// An object already existed at that path; nothing was written.
    AlreadyExists,
}

impl Archive {
    /// Opens `url`: `s3://bucket[/prefix]`, `file:///dir` or a plain directory path.
    pub fn open(url: &str, s3: &S3Args) -> anyhow::Result<Self> {
        if url.starts_with("s3://") {
            let (bucket, prefix) = lanner_contract::archive_args::s3_bucket_and_prefix(url)
                .with_context(|| format!("archive URL {url:?} names no bucket"))?;
            let s3store: Arc<dyn ObjectStore> = Arc::new(
                s3.store(bucket)
                    .with_context(|| format!("configuring S3 for {url}"))?,
            );
            let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                s3store
            } else {
                Arc::new(PrefixStore::new(s3store, prefix))
            };
            return Ok(Archive {
                store,
                local_root: None,
                url: url.to_owned(),
            });
        }
        anyhow::ensure!(
            !url.contains("://") || url.starts_with("file://"),
            "unsupported archive URL {url:?} (use a directory, file:///dir or s3://bucket/prefix)"
        );
        let dir = PathBuf::from(url.strip_prefix("file://").unwrap_or(url));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating archive directory {}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .with_context(|| format!("resolving {}", dir.display()))?;
        let store = LocalFileSystem::new_with_prefix(&dir)
            .with_context(|| format!("opening {}", dir.display()))?;
        Ok(Archive {
            store: Arc::new(store),
            local_root: Some(dir),
            url: url.to_owned(),
        })
    }

    /// Writes `bytes` at `path` only if nothing is there yet, and makes it durable
    /// (S3 acknowledges durable writes; a local file and its directory are fsynced).
    pub async fn put_create(&self, path: &Path, bytes: Vec<u8>) -> anyhow::Result<Created> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(path, PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => return Ok(Created::AlreadyExists),
            Err(e) => return Err(e).with_context(|| format!("writing {path}")),
        }
        if let Some(root) = &self.local_root {
            let file = root.join(path.as_ref());
            tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                std::fs::File::open(&file)?.sync_all()?;
                if let Some(dir) = file.parent() {
                    std::fs::File::open(dir)?.sync_all()?;
                }
                Ok(())
            })
            .await
            .context("fsync task")?
            .with_context(|| format!("fsyncing {path}"))?;
        }
        Ok(Created::Written)
    }

    /// Lists every object below `prefix`.
    pub async fn list(&self, prefix: &str) -> anyhow::Result<Vec<ObjectMeta>> {
        let p = Path::from(prefix);
        self.store
            .list(Some(&p))
            .try_collect()
            .await
            .with_context(|| format!("listing {prefix}"))
    }

    /// Deletes an object; a missing object is not an error.
    pub async fn delete(&self, path: &Path) -> anyhow::Result<()> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("deleting {path}")),
        }
    }
}
