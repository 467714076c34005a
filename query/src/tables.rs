//! The `events` and `alerts` tables over the archive.
//!
//! Each is a DataFusion listing table over `<archive>/<table>/dt=YYYY-MM-DD/hour=HH/*.parquet`:
//!
//! - the hive partitions are columns: `dt` (a `DATE`) and `hour` (an `INT`, 0–23), so
//!   `WHERE dt = '2026-01-01' AND hour = 7` lists and reads one folder only;
//! - the files' declared sort order (`evt_time`, `time` for alerts, ascending, nulls
//!   first, as the archiver writes them) lets DataFusion skip sorts and merge instead;
//! - row groups and pages are pruned by their statistics, bloom filters and the page
//!   index; filters are evaluated during the scan (late materialization) when the
//!   query reads variable-width columns (text, lists, maps) besides the filtered ones,
//!   whose decoding the filtered-out rows then skip, and when the filters keep few rows
//!   (at most `lanner.pushdown_max_selectivity`, 1 %, of a sample:
//!   [`crate::scan_sample`]). Otherwise the filters run after the scan: when the other
//!   columns are only numbers and times (the archive delta-encodes times, so a row
//!   skipped costs as much as a row read: `dns_history` in BENCHMARKS.md), or when the
//!   filters keep many rows scattered through every page (`top_talkers`), the
//!   bookkeeping of the row selections is not paid back.
//!   `lanner.selective_pushdown = false` leaves it to DataFusion's
//!   `pushdown_filters`;
//! - the schema is the archive's current one: files written before a column existed
//!   read it as nulls;
//! - nothing caches the listing (the session's list-files cache is off, see
//!   [`crate::engine`]), so files the archiver writes are seen by the next query.
//!
//! [`ArchiveTable`] wraps the listing table for two reasons. A time window on the
//! time column (`evt_time >= a AND evt_time < b`) adds the `dt`/`hour` predicates it
//! implies ([`crate::prune`]), so the listing skips other hours' files unopened. And
//! DataFusion turns an equality on a partition column into a listing prefix by
//! printing the value, and `hour = 7` would print `hour=7`, which is not the folder
//! `hour=07`. The wrapper hands `hour = 7` to the listing table as
//! `hour BETWEEN 7 AND 7`: the same rows, the day folder listed (24 small folders) and
//! the other hours pruned by value.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{ScanArgs, ScanResult, Session, TableProvider};
use datafusion::common::config::TableParquetOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Constraints, Statistics};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig};
use datafusion::datasource::physical_plan::{FileScanConfig, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::logical_expr::expr::{Between, BinaryExpr};
use datafusion::logical_expr::{
    Expr, Operator, SortExpr, TableProviderFilterPushDown, TableType, col,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

use crate::archive::Archive;
use crate::prune::{self, LannerOptions};
use crate::scan_sample;

/// Name of the events table (and its folder).
pub const EVENTS: &str = "events";
/// Name of the alerts table (and its folder).
pub const ALERTS: &str = "alerts";

/// Schema of the archive's `alerts` files (the archiver's `alerts` table, Falco's JSON
/// output shape with the fields hunts join on pulled out into columns).
pub fn alerts_file_schema() -> SchemaRef {
    lanner_contract::arrow::alerts::alerts_schema()
}

/// Schema of the archive's `events` files.
pub fn events_file_schema() -> SchemaRef {
    lanner_contract::arrow::schema()
}

/// The hive partition columns, outermost first.
pub fn partition_columns() -> Vec<(String, DataType)> {
    vec![
        ("dt".to_owned(), DataType::Date32),
        ("hour".to_owned(), DataType::Int32),
    ]
}

/// One archive table: its folder name, file schema and time (sort) column.
#[derive(Clone, Copy, Debug)]
pub struct TableDef {
    /// Table and folder name.
    pub name: &'static str,
    /// Column the rows of each file are sorted by.
    pub time_column: &'static str,
    /// Schema of the files.
    pub schema: fn() -> SchemaRef,
}

/// The archive's tables.
pub const TABLES: [TableDef; 2] = [
    TableDef {
        name: EVENTS,
        time_column: "evt_time",
        schema: events_file_schema,
    },
    TableDef {
        name: ALERTS,
        time_column: "time",
        schema: alerts_file_schema,
    },
];

/// The listing table of `def` in `archive`, reading Parquet with `parquet` (the
/// session's options: [`crate::engine::session_config`]).
pub fn listing_table(
    archive: &Archive,
    def: &TableDef,
    parquet: TableParquetOptions,
    string_view: bool,
) -> Result<ListingTable> {
    let sort: Vec<SortExpr> = vec![col(def.time_column).sort(true, true)];
    let format = ParquetFormat::default().with_options(parquet);
    let options = ListingOptions::new(Arc::new(format))
        .with_file_extension(".parquet")
        .with_table_partition_cols(partition_columns())
        .with_file_sort_order(vec![sort]);
    let config = ListingTableConfig::new(archive.table_url(def.name)?)
        .with_listing_options(options)
        .with_schema(table_schema(def, string_view));
    ListingTable::try_new(config)
}

/// The table's schema: the files' columns, with the events' top-level strings as
/// `Utf8View` when `string_view` is set, and without the files' schema metadata (the
/// tables' schema versions differ, and plans that combine both tables, such as the
/// timeline view's union, must not carry either).
pub fn table_schema(def: &TableDef, string_view: bool) -> SchemaRef {
    let schema = (def.schema)();
    let view = string_view && def.name == EVENTS;
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 if view => f.as_ref().clone().with_data_type(DataType::Utf8View),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Registers `events` and `alerts` of `archive` (and its object store) with `ctx`.
/// Reusable by benchmarks: this is exactly what the server registers.
///
/// The tables keep each file's statistics (derived from its footer, for every column)
/// in the runtime's file statistics cache, keyed by path and checked against the
/// file's size and modification time: without it, every query derived them again for
/// every file it lists (BENCHMARKS.md: ~20 ms of a query over the 96 files of the
/// benchmark archive).
pub fn register_tables(ctx: &SessionContext, archive: &Archive) -> Result<()> {
    archive.register_store(ctx);
    let state = ctx.state();
    let statistics = state.runtime_env().cache_manager.get_file_statistic_cache();
    let parquet = state.table_options().parquet.clone();
    let string_view = state
        .config_options()
        .extensions
        .get::<LannerOptions>()
        .is_some_and(|o| o.string_view);
    for def in &TABLES {
        let table = ArchiveTable {
            inner: listing_table(archive, def, parquet.clone(), string_view)?
                .with_cache(statistics.clone()),
            file_schema: table_schema(def, string_view),
            time_column: def.time_column,
        };
        ctx.register_table(def.name, Arc::new(table))?;
    }
    Ok(())
}

/// `hour = v` as `hour BETWEEN v AND v` (see the module doc), anywhere in `filter`.
pub fn padded_hour_safe(filter: &Expr) -> Expr {
    let rewritten = filter.clone().transform_up(|e| {
        if let Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) = &e
        {
            let (column, value) = match (left.as_ref(), right.as_ref()) {
                (Expr::Column(c), v @ Expr::Literal(..))
                | (v @ Expr::Literal(..), Expr::Column(c)) => (c, v),
                _ => return Ok(Transformed::no(e)),
            };
            if column.name == "hour" {
                let between = Expr::Between(Between::new(
                    Box::new(Expr::Column(column.clone())),
                    false,
                    Box::new(value.clone()),
                    Box::new(value.clone()),
                ));
                return Ok(Transformed::yes(between));
            }
        }
        Ok(Transformed::no(e))
    });
    match rewritten {
        Ok(t) => t.data,
        Err(_) => filter.clone(),
    }
}

/// Whether filtering rows inside the Parquet scan pays: when a column the scan reads
/// besides the filtered ones is variable-width (text, dictionary, list, map), whose
/// decoding the rows filtered out skip (see the module docs).
pub fn pushdown_pays(schema: &Schema, projection: Option<&[usize]>, filters: &[Expr]) -> bool {
    if filters.is_empty() {
        return false;
    }
    let filtered: std::collections::HashSet<&str> = filters
        .iter()
        .flat_map(Expr::column_refs)
        .map(|c| c.name.as_str())
        .collect();
    let fields = schema.fields();
    let read: Vec<&Field> = match projection {
        Some(p) => p
            .iter()
            .filter_map(|&i| fields.get(i).map(AsRef::as_ref))
            .collect(),
        None => fields.iter().map(AsRef::as_ref).collect(),
    };
    read.into_iter()
        .filter(|f| !filtered.contains(f.name().as_str()))
        .any(|f| variable_width(f.data_type()))
}

fn variable_width(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::Dictionary(..)
            | DataType::List(_)
            | DataType::LargeList(_)
            | DataType::ListView(_)
            | DataType::Map(..)
            | DataType::Struct(_)
    )
}

/// An archive table: the listing table, with partition filters made safe for the
/// archive's zero-padded hour folders, and partition filters derived from time windows.
#[derive(Debug)]
pub struct ArchiveTable {
    inner: ListingTable,
    /// The files' columns, as the table types them.
    file_schema: SchemaRef,
    time_column: &'static str,
}

/// The file scan of a plan from the listing table (the plan itself, or below it).
fn file_scan_config(plan: &Arc<dyn ExecutionPlan>) -> Option<&FileScanConfig> {
    if let Some(exec) = plan.downcast_ref::<DataSourceExec>() {
        return exec.data_source().downcast_ref::<FileScanConfig>();
    }
    plan.children().into_iter().find_map(file_scan_config)
}

impl ArchiveTable {
    /// `plan` with its Parquet scans filtering rows when that pays for this scan and
    /// `lanner.selective_pushdown` is on (the session's `pushdown_filters` pushes
    /// filters into every scan either way): a column it reads besides the filtered
    /// ones is variable-width ([`pushdown_pays`]), and the filters keep at most
    /// `lanner.pushdown_max_selectivity` of a sample's rows
    /// ([`scan_sample::sampled_selectivity`]; pushed when the sample cannot tell).
    async fn choose_pushdown(
        &self,
        state: &dyn Session,
        projection: Option<&[usize]>,
        filters: &[Expr],
        plan: Arc<dyn ExecutionPlan>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let options = state.config_options().extensions.get::<LannerOptions>();
        let selective = options.is_none_or(|o| o.selective_pushdown);
        if !selective || !pushdown_pays(&self.schema(), projection, filters) {
            return Ok(plan);
        }
        let max_selectivity = options.map_or(1.0, |o| o.pushdown_max_selectivity);
        if max_selectivity < 1.0
            && let Some(config) = file_scan_config(&plan)
        {
            let kept =
                scan_sample::sampled_selectivity(state, config, &self.file_schema, filters).await;
            if kept.is_some_and(|k| k > max_selectivity) {
                return Ok(plan);
            }
        }
        plan.transform_up(|node| {
            let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>() else {
                return Ok(Transformed::no(node));
            };
            let Some(parquet) = config.file_source().downcast_ref::<ParquetSource>() else {
                return Ok(Transformed::no(node));
            };
            let source = parquet.clone().with_pushdown_filters(true);
            let config = FileScanConfigBuilder::from(config.clone())
                .with_source(Arc::new(source))
                .build();
            let exec = exec.clone().with_data_source(Arc::new(config));
            Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    /// The filters handed to the listing table: the query's, `hour = v` made a range,
    /// plus the `dt`/`hour` predicates its time window implies ([`prune`]) unless the
    /// session's `lanner.time_partitions` is off.
    fn filters(&self, state: &dyn Session, filters: &[Expr]) -> Vec<Expr> {
        let mut out: Vec<Expr> = filters.iter().map(padded_hour_safe).collect();
        let derive = LannerOptions::on(state.config_options(), |o| o.time_partitions);
        if derive {
            out.extend(prune::partition_filters(filters, self.time_column));
        }
        out
    }
}

#[async_trait]
impl TableProvider for ArchiveTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.inner.constraints()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let filters = self.filters(state, filters);
        let plan = self.inner.scan(state, projection, &filters, limit).await?;
        self.choose_pushdown(state, projection.map(Vec::as_slice), &filters, plan)
            .await
    }

    async fn scan_with_args<'a>(
        &self,
        state: &dyn Session,
        args: ScanArgs<'a>,
    ) -> Result<ScanResult> {
        let filters = self.filters(state, args.filters().unwrap_or(&[]));
        let projection = args.projection().map(<[usize]>::to_vec);
        let args = ScanArgs::default()
            .with_projection(args.projection())
            .with_filters(Some(&filters))
            .with_limit(args.limit())
            .with_statistics_requests(args.statistics_requests());
        let plan = self.inner.scan_with_args(state, args).await?.into_inner();
        let plan = self
            .choose_pushdown(state, projection.as_deref(), &filters, plan)
            .await?;
        Ok(ScanResult::new(plan))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.inner.statistics()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::lit;

    #[test]
    fn alerts_schema_is_the_archivers() {
        assert_eq!(alerts_file_schema(), lanner_archiver::alerts::schema());
        assert_eq!(
            events_file_schema(),
            lanner_archiver::tables::Table::Events.schema()
        );
    }

    #[test]
    fn pushdown_pays_when_text_is_read_besides_the_filtered_columns() {
        let schema = events_file_schema();
        let idx = |names: &[&str]| -> Vec<usize> {
            names.iter().map(|n| schema.index_of(n).unwrap()).collect()
        };
        let by_container = [col("container_id").eq(lit("c1"))];
        // Only the filtered column and a time: no.
        let p = idx(&["container_id", "evt_time"]);
        assert!(!pushdown_pays(&schema, Some(&p), &by_container));
        // Numbers too: no.
        let p = idx(&["container_id", "evt_time", "proc_pid"]);
        assert!(!pushdown_pays(&schema, Some(&p), &by_container));
        // Text (plain or dictionary) or a list: yes.
        for other in ["fd_name", "proc_name", "proc_aname"] {
            let p = idx(&["container_id", other]);
            assert!(pushdown_pays(&schema, Some(&p), &by_container), "{other}");
        }
        // The text is the filtered column itself: no.
        let p = idx(&["container_id"]);
        assert!(!pushdown_pays(&schema, Some(&p), &by_container));
        // Every column, or no filter.
        assert!(pushdown_pays(&schema, None, &by_container));
        let p = idx(&["container_id", "fd_name"]);
        assert!(!pushdown_pays(&schema, Some(&p), &[]));
    }

    #[test]
    fn hour_equality_becomes_a_range() {
        let f = col("dt")
            .eq(lit("2026-01-01"))
            .and(col("hour").eq(lit(7)))
            .and(col("proc_pid").eq(lit(7)));
        let got = padded_hour_safe(&f).to_string();
        assert!(got.contains("hour BETWEEN Int32(7) AND Int32(7)"), "{got}");
        assert!(got.contains("dt = Utf8(\"2026-01-01\")"), "{got}");
        assert!(got.contains("proc_pid = Int32(7)"), "{got}");
    }
}
