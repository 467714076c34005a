//! Time windows prune hour folders: predicates on a table's time column (`evt_time`,
//! `time`) become predicates on the hive partitions `dt`/`hour`.
//!
//! The archiver files every row under the UTC hour of its time column
//! (`dt=YYYY-MM-DD/hour=HH/`), so `evt_time >= a AND evt_time < b` implies that the row's
//! folder lies between the folders of `a` and `b`. [`partition_filters`] derives that
//! implied predicate; [`crate::tables::ArchiveTable`] hands it to the listing table
//! next to the query's own filters. The listing then skips the other hours' files
//! without opening them (no footer read, no statistics), and the query's filters still
//! decide which rows match: the derived predicate only drops files that cannot hold a
//! matching row.
//!
//! Within one day the predicate is `dt = D AND hour BETWEEN h0 AND h1` (the equality
//! on `dt` also narrows the listing to that day's folder); across days it compares
//! `(dt, hour)` pairs.

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use datafusion::common::ScalarValue;
use datafusion::common::config::ConfigExtension;
use datafusion::common::extensions_options;
use datafusion::logical_expr::expr::Between;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, col, lit};

extensions_options! {
    /// lanner-query's own session settings (`lanner.*`).
    pub struct LannerOptions {
        /// Derive `dt`/`hour` predicates from time-column predicates (see the module doc).
        pub time_partitions: bool, default = true
        /// Read the events' strings as `Utf8View` (views into the Parquet pages)
        /// rather than copying them into `Utf8` arrays.
        pub string_view: bool, default = true
        /// Group by dictionary-typed keys as text ([`crate::group_keys`]).
        pub text_group_keys: bool, default = true
        /// Run the parts of a recursive query's recursive term that do not read the
        /// previous iteration once ([`crate::loop_cache`]).
        pub cache_recursive_inputs: bool, default = true
        /// Find the groups of a partial aggregate on dictionary keys from the keys,
        /// not by hashing values ([`crate::key_aggregate`]).
        pub dictionary_aggregates: bool, default = true
        /// Compare a dictionary column with text constants in filters by its keys
        /// ([`crate::dictionary_filter`]).
        pub dictionary_filters: bool, default = true
        /// Take `list[i]` by position, before a filter under it
        /// ([`crate::list_elements`]).
        pub list_elements: bool, default = true
        /// Give a filter's predicate with an `AND` or `OR` only the columns it reads
        /// ([`crate::narrow_predicate`]).
        pub narrow_predicates: bool, default = true
        /// Compute `count(DISTINCT x)` beside plain counts by grouping on `x` first
        /// ([`crate::distinct_count`]).
        pub distinct_counts: bool, default = true
        /// Compute an aggregate over an inner join with a grouped side in part below
        /// the join, on the other side ([`crate::aggregate_below_join`]).
        pub aggregates_below_joins: bool, default = true
        /// Start the probe side of a hash join beside its build side when the probe
        /// input is a grouping ([`crate::eager_probe`]).
        pub eager_probes: bool, default = true
        /// Compile a `LIKE` pattern that needs a regular expression once per query
        /// ([`crate::like_patterns`]).
        pub compile_like_patterns: bool, default = true
        /// Filter rows inside the Parquet scan only when the query reads variable-width
        /// columns besides the filtered ones ([`crate::tables`]); off: as
        /// `datafusion.execution.parquet.pushdown_filters` says.
        pub selective_pushdown: bool, default = true
        /// With `selective_pushdown`: filter inside the scan only when the filters keep
        /// at most this share of a sample's rows ([`crate::scan_sample`]); 1.0: always.
        pub pushdown_max_selectivity: f64, default = 0.01
    }
}

impl LannerOptions {
    /// Whether `setting` is on in `config` (its default when the session has no
    /// `lanner.*` settings).
    pub fn on(
        config: &datafusion::common::config::ConfigOptions,
        setting: impl FnOnce(&LannerOptions) -> bool,
    ) -> bool {
        config.extensions.get::<LannerOptions>().is_none_or(setting)
    }
}

impl ConfigExtension for LannerOptions {
    const PREFIX: &'static str = "lanner";
}

/// One hour folder: the day (days since the epoch, as `Date32`) and the hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Folder {
    day: i32,
    hour: i32,
}

impl Folder {
    /// The folder of a UTC timestamp in nanoseconds.
    fn of_nanos(ns: i64) -> Option<Folder> {
        let t = DateTime::<Utc>::from_timestamp_nanos(ns);
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
        let day = i32::try_from(t.date_naive().signed_duration_since(epoch).num_days()).ok()?;
        let hour = i32::try_from(t.hour()).ok()?;
        Some(Folder { day, hour })
    }
}

/// Nanoseconds since the epoch of a timestamp literal (any unit, any time zone: the
/// stored value is UTC).
fn timestamp_nanos(e: &Expr) -> Option<i64> {
    let Expr::Literal(v, _) = e else { return None };
    match v {
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampMicrosecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000_000),
        _ => None,
    }
}

/// Whether `e` is the column `name`.
fn is_column(e: &Expr, name: &str) -> bool {
    matches!(e, Expr::Column(c) if c.name == name)
}

/// The time window `[lo, hi]` (inclusive, nanoseconds) that `filters`' top-level
/// conjuncts put on `time_column`; `None` on a side they leave open.
fn window(filters: &[Expr], time_column: &str) -> (Option<i64>, Option<i64>) {
    let mut lo: Option<i64> = None;
    let mut hi: Option<i64> = None;
    let mut lower = |v: i64| lo = Some(lo.map_or(v, |l| l.max(v)));
    let mut upper = |v: i64| hi = Some(hi.map_or(v, |h| h.min(v)));
    for conjunct in filters.iter().flat_map(split_conjunction) {
        match conjunct {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                // Normalise to `column op literal`.
                let (op, value) = if is_column(left, time_column) {
                    (*op, timestamp_nanos(right))
                } else if is_column(right, time_column) {
                    (op.swap().unwrap_or(*op), timestamp_nanos(left))
                } else {
                    continue;
                };
                let Some(v) = value else { continue };
                match op {
                    Operator::Gt | Operator::GtEq => lower(v),
                    Operator::Lt => upper(v.saturating_sub(1)),
                    Operator::LtEq => upper(v),
                    Operator::Eq => {
                        lower(v);
                        upper(v);
                    }
                    _ => {}
                }
            }
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) if is_column(expr, time_column) => {
                if let Some(v) = timestamp_nanos(low) {
                    lower(v);
                }
                if let Some(v) = timestamp_nanos(high) {
                    upper(v);
                }
            }
            _ => {}
        }
    }
    (lo, hi)
}

fn date(day: i32) -> Expr {
    lit(ScalarValue::Date32(Some(day)))
}

fn hour_between(lo: i32, hi: i32) -> Expr {
    Expr::Between(Between::new(
        Box::new(col("hour")),
        false,
        Box::new(lit(lo)),
        Box::new(lit(hi)),
    ))
}

/// Partition predicates implied by `filters`' bounds on `time_column` (empty when they
/// put none).
pub fn partition_filters(filters: &[Expr], time_column: &str) -> Vec<Expr> {
    let (lo, hi) = window(filters, time_column);
    let lo = lo.and_then(Folder::of_nanos);
    let hi = hi.and_then(Folder::of_nanos);
    match (lo, hi) {
        (Some(lo), Some(hi)) if lo > hi => {
            // An empty window: no folder can match.
            vec![lit(false)]
        }
        (Some(lo), Some(hi)) if lo.day == hi.day => {
            vec![col("dt").eq(date(lo.day)), hour_between(lo.hour, hi.hour)]
        }
        (lo, hi) => {
            let mut out = Vec::new();
            if let Some(lo) = lo {
                // dt > d0 OR (dt = d0 AND hour >= h0)
                out.push(
                    col("dt")
                        .gt(date(lo.day))
                        .or(col("dt").eq(date(lo.day)).and(hour_between(lo.hour, 23))),
                );
            }
            if let Some(hi) = hi {
                out.push(
                    col("dt")
                        .lt(date(hi.day))
                        .or(col("dt").eq(date(hi.day)).and(hour_between(0, hi.hour))),
                );
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NANOS_PER_HOUR: i64 = 3_600_000_000_000;

    /// 2026-01-01 00:00:00 UTC.
    const DAY0: i64 = 1_767_225_600 * 1_000_000_000;

    fn ts(ns: i64) -> Expr {
        lit(ScalarValue::TimestampNanosecond(
            Some(ns),
            Some("UTC".into()),
        ))
    }

    fn text(filters: &[Expr]) -> Vec<String> {
        filters.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_window_within_a_day_becomes_a_day_and_hours() {
        // [02:00, 05:00): hours 2 to 4, the end being exclusive on the hour.
        let f = col("evt_time")
            .gt_eq(ts(DAY0 + 2 * NANOS_PER_HOUR))
            .and(col("evt_time").lt(ts(DAY0 + 5 * NANOS_PER_HOUR)));
        let got = text(&partition_filters(&[f], "evt_time"));
        assert_eq!(
            got,
            vec![
                "dt = Date32(\"2026-01-01\")".to_owned(),
                "hour BETWEEN Int32(2) AND Int32(4)".to_owned()
            ]
        );
    }

    #[test]
    fn an_inclusive_end_on_the_hour_keeps_that_hour() {
        let f = Expr::Between(Between::new(
            Box::new(col("evt_time")),
            false,
            Box::new(ts(DAY0 + 2 * NANOS_PER_HOUR + 5)),
            Box::new(ts(DAY0 + 5 * NANOS_PER_HOUR)),
        ));
        let got = text(&partition_filters(&[f], "evt_time"));
        assert_eq!(got[1], "hour BETWEEN Int32(2) AND Int32(5)");
    }

    #[test]
    fn literals_on_the_left_and_other_units_count() {
        // 2026-01-01 23:30 <= evt_time (in microseconds) and evt_time < 2026-01-02 01:00.
        let lo = lit(ScalarValue::TimestampMicrosecond(
            Some((DAY0 + 23 * NANOS_PER_HOUR + NANOS_PER_HOUR / 2) / 1000),
            None,
        ));
        let f = lo
            .lt_eq(col("evt_time"))
            .and(col("evt_time").lt(ts(DAY0 + 25 * NANOS_PER_HOUR)));
        let got = text(&partition_filters(&[f], "evt_time"));
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].contains("dt > Date32(\"2026-01-01\")"), "{got:?}");
        assert!(
            got[0].contains("hour BETWEEN Int32(23) AND Int32(23)"),
            "{got:?}"
        );
        assert!(got[1].contains("dt < Date32(\"2026-01-02\")"), "{got:?}");
        assert!(
            got[1].contains("hour BETWEEN Int32(0) AND Int32(0)"),
            "{got:?}"
        );
    }

    #[test]
    fn other_columns_disjunctions_and_open_windows() {
        let other = col("proc_pid").gt(lit(7_u64));
        assert!(partition_filters(&[other], "evt_time").is_empty());
        // An OR is not a window (only top-level conjuncts count).
        let or = col("evt_time")
            .gt(ts(DAY0))
            .or(col("proc_pid").eq(lit(1_u64)));
        assert!(partition_filters(&[or], "evt_time").is_empty());
        // NOT BETWEEN is not a window either.
        let not_between = Expr::Between(Between::new(
            Box::new(col("evt_time")),
            true,
            Box::new(ts(DAY0)),
            Box::new(ts(DAY0 + NANOS_PER_HOUR)),
        ));
        assert!(partition_filters(&[not_between], "evt_time").is_empty());
        // Only a lower bound: one predicate.
        let since = col("evt_time").gt_eq(ts(DAY0 + 3 * NANOS_PER_HOUR));
        assert_eq!(partition_filters(&[since], "evt_time").len(), 1);
        // A window on another table's time column does not apply.
        let alerts = col("time").gt_eq(ts(DAY0));
        assert!(partition_filters(&[alerts], "evt_time").is_empty());
    }

    #[test]
    fn an_empty_window_matches_no_folder() {
        let f = col("evt_time")
            .gt_eq(ts(DAY0 + 5 * NANOS_PER_HOUR))
            .and(col("evt_time").lt(ts(DAY0 + 2 * NANOS_PER_HOUR)));
        assert_eq!(
            text(&partition_filters(&[f], "evt_time")),
            vec!["Boolean(false)"]
        );
    }
}
