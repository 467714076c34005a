//! How many rows a scan's filters keep, estimated from a sample: the first row group of
//! the scan's largest file, at most [`SAMPLE_ROWS`] rows of the filtered columns.
//!
//! [`crate::tables`] filters rows inside the Parquet scan only when they are few: a
//! filter keeping one row in a thousand (`evt_type = 'execve' AND proc_tty <> 0`) spares
//! the scan decoding the other columns' rows, while one keeping 15 % of them
//! (`evt_type = 'connect'`), scattered through every page, costs more in the reader's
//! row-selection bookkeeping than decoding every row's dictionary keys and filtering
//! afterwards (BENCHMARKS.md, Query, twentieth session). Statistics cannot tell the two
//! apart (both values are in every row group), so the filter is evaluated on a sample.

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::DFSchema;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::physical_plan::parquet::{
    CachedParquetFileReaderFactory, ParquetFileReaderFactory,
};
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::TryStreamExt;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};

/// Rows of the sample, at most.
pub const SAMPLE_ROWS: usize = 65_536;

/// The share of the sample's rows that `filters` keep (0.0–1.0), reading the files of
/// `config` whose columns are `file_schema`. Conjuncts on other columns (the hive
/// partitions) are left out: the listing already applied them. `None` when it cannot
/// tell: no file, no conjunct on the file's columns, a file of another schema, or an
/// error reading; the caller then decides without it.
pub async fn sampled_selectivity(
    state: &dyn Session,
    config: &FileScanConfig,
    file_schema: &SchemaRef,
    filters: &[Expr],
) -> Option<f64> {
    let conjuncts: Vec<Expr> = filters
        .iter()
        .flat_map(split_conjunction)
        .filter(|e| {
            e.column_refs()
                .iter()
                .all(|c| file_schema.index_of(&c.name).is_ok())
        })
        .cloned()
        .collect();
    let predicate = conjunction(conjuncts)?;
    let columns: Vec<usize> = {
        let mut c: Vec<usize> = predicate
            .column_refs()
            .iter()
            .filter_map(|c| file_schema.index_of(&c.name).ok())
            .collect();
        c.sort_unstable();
        c.dedup();
        c
    };
    let file = config
        .file_groups
        .iter()
        .flat_map(|g| g.files())
        .max_by_key(|f| f.object_meta.size)?;
    let store = state
        .runtime_env()
        .object_store(&config.object_store_url)
        .ok()?;
    // The session's cache of file metadata: the footer of a file queries read is
    // parsed once.
    let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
    let reader: Box<dyn AsyncFileReader> = CachedParquetFileReaderFactory::new(store, cache)
        .create_reader(0, file.clone(), None, &ExecutionPlanMetricsSet::new())
        .ok()?;
    // Read with the table's types (text as the table declares it), which the filters
    // were planned against; a file of another schema (fewer columns) is refused here.
    let options = ArrowReaderOptions::new().with_schema(Arc::clone(file_schema));
    let builder = ParquetRecordBatchStreamBuilder::new_with_options(reader, options)
        .await
        .ok()?;
    if builder.metadata().num_row_groups() == 0 {
        return None;
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), columns.iter().copied());
    let projected: Schema = file_schema.project(&columns).ok()?;
    let df_schema = DFSchema::try_from(projected).ok()?;
    let expr = state.create_physical_expr(predicate, &df_schema).ok()?;
    let mut stream = builder
        .with_projection(mask)
        .with_row_groups(vec![0])
        .with_limit(SAMPLE_ROWS)
        .build()
        .ok()?;
    let (mut rows, mut kept) = (0usize, 0usize);
    while let Some(batch) = stream.try_next().await.ok()? {
        let result = expr.evaluate(&batch).ok()?;
        let mask = result.into_array(batch.num_rows()).ok()?;
        kept += mask.as_boolean_opt()?.true_count();
        rows += batch.num_rows();
    }
    (rows > 0).then(|| kept as f64 / rows as f64)
}
