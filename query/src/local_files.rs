//! A local archive read on the query's own threads.
//!
//! object_store's [`LocalFileSystem`] hands every read to tokio's blocking pool
//! (`spawn_blocking`) and the scan waits for it: the runtime thread that decodes
//! Parquet goes to sleep, another thread is woken to copy a few MiB from the page
//! cache, and the first is woken again. A scan reads each row group's column chunks
//! that way, ~400 times in a query over the 96 files of the benchmark archive, and on a
//! two-core machine the hand-overs left a core idle for ~30 % of the query's time
//! (`perf sched`, BENCHMARKS.md, Query, twenty-fifth session). [`InlineLocalFiles`]
//! answers ranged reads (`get_range`, `get_ranges`, a `get_opts` with a range) with a
//! `pread` on the calling thread, as DuckDB's scans do; everything else (listing,
//! whole-file and head requests, writes) goes to the wrapped [`LocalFileSystem`].
//!
//! A read from a cold disk then blocks the runtime thread for the time it takes; the
//! thread had nothing else to do in the meantime but wait for that read.

use std::fmt;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    Attributes, CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    Result,
};

/// The local file system, ranged reads done inline (see the module docs).
#[derive(Debug)]
pub struct InlineLocalFiles {
    inner: LocalFileSystem,
}

impl InlineLocalFiles {
    /// Reads the whole local file system (paths are absolute), as DataFusion's default
    /// `file://` store does.
    pub fn new() -> Self {
        InlineLocalFiles {
            inner: LocalFileSystem::new(),
        }
    }

    /// The file at `location`, open, and its metadata.
    fn open(&self, location: &Path) -> Result<(File, std::fs::Metadata)> {
        let path = self.inner.path_to_filesystem(location)?;
        let file = File::open(&path).map_err(|e| open_error(e, location))?;
        let metadata = file.metadata().map_err(|e| read_error(e, location))?;
        Ok((file, metadata))
    }
}

impl Default for InlineLocalFiles {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for InlineLocalFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InlineLocalFiles({})", self.inner)
    }
}

/// One range of `file` (of `size` bytes), checked against its size as
/// [`LocalFileSystem`] checks it.
fn read_range(file: &File, location: &Path, range: &Range<u64>, size: u64) -> Result<Bytes> {
    if range.start > range.end || range.end > size {
        return Err(object_store::Error::Generic {
            store: "InlineLocalFiles",
            source: format!(
                "range {}..{} is outside {location} ({size} bytes)",
                range.start, range.end
            )
            .into(),
        });
    }
    let len = usize::try_from(range.end - range.start).map_err(|e| read_error(e, location))?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, range.start)
        .map_err(|e| read_error(e, location))?;
    Ok(Bytes::from(buf))
}

fn open_error(e: std::io::Error, location: &Path) -> object_store::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        object_store::Error::NotFound {
            path: location.to_string(),
            source: Box::new(e),
        }
    } else {
        read_error(e, location)
    }
}

fn read_error(
    e: impl std::error::Error + Send + Sync + 'static,
    location: &Path,
) -> object_store::Error {
    object_store::Error::Generic {
        store: "InlineLocalFiles",
        source: format!("reading {location}: {e}").into(),
    }
}

#[async_trait]
impl ObjectStore for InlineLocalFiles {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        // Only a plain ranged read is answered here; conditional, versioned and head
        // requests (and whole files, streamed) keep the wrapped store's handling.
        let plain = options.if_match.is_none()
            && options.if_none_match.is_none()
            && options.if_modified_since.is_none()
            && options.if_unmodified_since.is_none()
            && options.version.is_none()
            && !options.head;
        let Some(range) = options.range.clone().filter(|_| plain) else {
            return self.inner.get_opts(location, options).await;
        };
        let (file, metadata) = self.open(location)?;
        let range = range
            .as_range(metadata.len())
            .map_err(|e| read_error(e, location))?;
        let bytes = read_range(&file, location, &range, metadata.len())?;
        let meta = ObjectMeta {
            location: location.clone(),
            last_modified: metadata
                .modified()
                .map_err(|e| read_error(e, location))?
                .into(),
            size: metadata.len(),
            e_tag: None,
            version: None,
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(stream::once(async { Ok(bytes) }).boxed()),
            meta,
            range,
            attributes: Attributes::default(),
        })
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let (file, metadata) = self.open(location)?;
        ranges
            .iter()
            .map(|range| read_range(&file, location, range, metadata.len()))
            .collect()
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use object_store::{GetRange, ObjectStoreExt};

    use super::*;

    /// A file of 1000 distinct bytes in a temporary directory, and its store path.
    fn file() -> (tempfile::TempDir, Path, Vec<u8>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let fs_path = dir.path().join("f.parquet");
        std::fs::write(&fs_path, &data).expect("write");
        let path = Path::from_filesystem_path(&fs_path).expect("path");
        (dir, path, data)
    }

    #[tokio::test]
    async fn ranged_reads_return_the_bytes_of_the_file() {
        let (_dir, path, data) = file();
        let store = InlineLocalFiles::new();
        let got = store
            .get_ranges(&path, &[0..10, 500..1000, 3..3, 990..1000])
            .await
            .expect("ranges");
        assert_eq!(got[0].as_ref(), &data[0..10]);
        assert_eq!(got[1].as_ref(), &data[500..1000]);
        assert!(got[2].is_empty());
        assert_eq!(got[3].as_ref(), &data[990..1000]);
        let one = store.get_range(&path, 17..400).await.expect("range");
        assert_eq!(one.as_ref(), &data[17..400]);
        let suffix = store
            .get_opts(
                &path,
                GetOptions {
                    range: Some(GetRange::Suffix(8)),
                    ..GetOptions::default()
                },
            )
            .await
            .expect("suffix");
        assert_eq!(suffix.range, 992..1000);
        assert_eq!(suffix.meta.size, 1000);
        assert_eq!(suffix.bytes().await.expect("bytes").as_ref(), &data[992..]);
    }

    #[tokio::test]
    async fn whole_files_heads_and_listings_are_the_local_stores() {
        let (dir, path, data) = file();
        let store = InlineLocalFiles::new();
        let whole = store.get(&path).await.expect("get");
        assert_eq!(whole.bytes().await.expect("bytes").as_ref(), &data[..]);
        assert_eq!(store.head(&path).await.expect("head").size, 1000);
        let listed: Vec<ObjectMeta> = store
            .list(Some(&Path::from_absolute_path(dir.path()).expect("dir")))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_>>()
            .expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].location, path);
    }

    #[tokio::test]
    async fn bad_ranges_and_missing_files_are_errors() {
        let (dir, path, _) = file();
        let store = InlineLocalFiles::new();
        let past_end = store.get_ranges(&path, &[990..1001, 0..1]).await;
        assert!(
            past_end
                .as_ref()
                .is_err_and(|e| e.to_string().contains("outside")),
            "{past_end:?}"
        );
        assert!(store.get_range(&path, 1001..1002).await.is_err());
        let missing = Path::from_absolute_path(dir.path().join("gone.parquet")).expect("path");
        assert!(matches!(
            store.get_ranges(&missing, &[0..1, 1..2]).await,
            Err(object_store::Error::NotFound { .. })
        ));
        assert!(matches!(
            store.get_range(&missing, 0..1).await,
            Err(object_store::Error::NotFound { .. })
        ));
    }
}
