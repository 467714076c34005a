//! A query filtered on one hour reads only that hour's files, checked through the
//! metrics `EXPLAIN ANALYZE` reports: the files in the plan and the bytes scanned.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use lanner_query::archive::{Archive, S3Args};
use lanner_query::engine::Engine;
use lanner_query::guard::Limits;

async fn engine() -> Engine {
    let a = Archive::open(archive().dir.to_str().unwrap(), &S3Args::default()).unwrap();
    Engine::new(&a, Limits::default()).await.unwrap()
}

/// The `EXPLAIN ANALYZE` text of `sql`.
async fn analyze(e: &Engine, sql: &str) -> String {
    let out = e.collect(&format!("EXPLAIN ANALYZE {sql}")).await.unwrap();
    let bytes = lanner_query::format::to_bytes(
        lanner_query::format::Format::Csv,
        &out.schema,
        &out.batches,
    )
    .unwrap();
    String::from_utf8(bytes).unwrap()
}

/// Sum of every `name=<count>` metric in a plan (`1234`, `12.90 K`, `3.1 M`).
fn metric(plan: &str, name: &str) -> f64 {
    let key = format!("{name}=");
    plan.match_indices(&key)
        .map(|(i, _)| {
            let rest = &plan[i + key.len()..];
            let num: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let unit = rest[num.len()..].trim_start().chars().next();
            let scale = match unit {
                Some('K') => 1e3,
                Some('M') => 1e6,
                Some('G') => 1e9,
                _ => 1.0,
            };
            num.parse::<f64>().unwrap_or(0.0) * scale
        })
        .sum()
}

/// The Parquet files a plan's scans list.
fn files(plan: &str) -> Vec<String> {
    plan.split(|c: char| c == '[' || c == ']' || c == ',' || c.is_whitespace())
        .filter(|s| s.ends_with(".parquet"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hour_reads_only_that_hours_files() {
    let e = engine().await;
    // sum(length(...)) makes the scan read a column (count(*) alone is answered from
    // the files' statistics).
    let q = |filter: &str| format!("SELECT sum(length(proc_name)) FROM events {filter}");

    // Baselines read the same columns over every hour.
    let all = analyze(&e, &q("WHERE dt = '2026-01-01'")).await;
    let hour = analyze(&e, &q("WHERE dt = '2026-01-01' AND hour = 2")).await;

    let all_files = files(&all);
    let hour_files = files(&hour);
    assert!(all_files.iter().any(|f| f.contains("hour=01")), "{all}");
    assert!(all_files.iter().any(|f| f.contains("hour=03")), "{all}");
    assert!(!hour_files.is_empty(), "{hour}");
    assert!(
        hour_files
            .iter()
            .all(|f| f.contains("dt=2026-01-01/hour=02/")),
        "a file of another hour is in the plan: {hour_files:?}"
    );

    let (b_all, b_hour) = (
        metric(&all, "bytes_scanned"),
        metric(&hour, "bytes_scanned"),
    );
    assert!(b_hour > 0.0, "{hour}");
    assert!(
        b_hour * 2.0 < b_all,
        "one hour of four scanned {b_hour} bytes, all scanned {b_all}"
    );

    // The same hour by time only: other hours' files are pruned by their statistics.
    let all_time = analyze(
        &e,
        &q("WHERE evt_time >= '2026-01-01T00:00:00Z' AND evt_time < '2026-01-02T00:00:00Z'"),
    )
    .await;
    let b_all = metric(&all_time, "bytes_scanned");
    let by_time = analyze(
        &e,
        &q("WHERE evt_time >= '2026-01-01T02:00:00Z' AND evt_time < '2026-01-01T03:00:00Z'"),
    )
    .await;
    let b_time = metric(&by_time, "bytes_scanned");
    assert!(
        b_time * 2.0 < b_all,
        "time-filtered scan read {b_time} of {b_all} bytes:\n{by_time}"
    );
    // The time window lists only hour 02's files (the `dt`/`hour` predicates it
    // implies prune the folders), and they all match.
    let time_files = files(&by_time);
    assert!(!time_files.is_empty(), "{by_time}");
    assert!(
        time_files
            .iter()
            .all(|f| f.contains("dt=2026-01-01/hour=02/")),
        "a file of another hour is in the plan: {time_files:?}"
    );
    assert!(
        by_time.contains(&format!(
            "files_ranges_pruned_statistics={n} total → {n} matched",
            n = time_files.len()
        )),
        "{by_time}"
    );

    // With that derivation off, the other hours' files are listed and opened, and
    // pruned by their statistics: the same rows.
    let plain = Engine::with_config(
        &Archive::open(archive().dir.to_str().unwrap(), &S3Args::default()).unwrap(),
        Limits::default(),
        {
            let mut c = lanner_query::engine::session_config();
            c.options_mut()
                .set("lanner.time_partitions", "false")
                .unwrap();
            c
        },
    )
    .await
    .unwrap();
    let by_stats = analyze(
        &plain,
        &q("WHERE evt_time >= '2026-01-01T02:00:00Z' AND evt_time < '2026-01-01T03:00:00Z'"),
    )
    .await;
    assert!(
        by_stats.contains("files_ranges_pruned_statistics=4 total → 1 matched"),
        "{by_stats}"
    );

    let rows = e
        .collect("SELECT count(*) AS n FROM events WHERE dt = '2026-01-01' AND hour = 2")
        .await
        .unwrap();
    let text = String::from_utf8(
        lanner_query::format::to_bytes(
            lanner_query::format::Format::Csv,
            &rows.schema,
            &rows.batches,
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(text, format!("n\n{SYNTH_PER_HOUR}\n"));
}

/// The CSV text of `sql`'s result.
async fn csv(e: &Engine, sql: &str) -> String {
    let out = e.collect(sql).await.unwrap();
    String::from_utf8(
        lanner_query::format::to_bytes(
            lanner_query::format::Format::Csv,
            &out.schema,
            &out.batches,
        )
        .unwrap(),
    )
    .unwrap()
}

/// An engine over the shared archive with `settings` changed.
async fn engine_with(settings: &[(&str, &str)]) -> Engine {
    let archive = Archive::open(archive().dir.to_str().unwrap(), &S3Args::default()).unwrap();
    let mut c = lanner_query::engine::session_config();
    for (key, value) in settings {
        c.options_mut().set(key, value).unwrap();
    }
    Engine::with_config(&archive, Limits::default(), c)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_go_into_the_scan_when_they_spare_decoding_text_and_keep_few_rows() {
    let e = engine().await;
    let first = csv(
        &e,
        "SELECT evt_id FROM events WHERE container_id IS NOT NULL ORDER BY evt_time LIMIT 1",
    )
    .await;
    let id = first.lines().nth(1).unwrap().to_owned();
    // Besides the filtered column, only a time: filtered after the scan.
    let times =
        format!("SELECT count(*) AS n, min(evt_time) AS first FROM events WHERE evt_id = '{id}'");
    // Besides it, text, and the filter keeps one row: filtered in the scan, which then
    // skips the other rows' text.
    let texts = format!(
        "SELECT proc_name, count(*) AS n FROM events WHERE evt_id = '{id}' GROUP BY proc_name ORDER BY proc_name"
    );
    // Text again, but the filter keeps most rows: filtered after the scan.
    let most = "SELECT proc_name, count(*) AS n FROM events WHERE container_id IS NOT NULL GROUP BY proc_name ORDER BY proc_name";
    let plan_times = analyze(&e, &times).await;
    let plan_texts = analyze(&e, &texts).await;
    let plan_most = analyze(&e, most).await;
    // Rows through the scan's row filter (matched or pruned) show it ran there.
    let filtered_in_scan =
        |plan: &str| metric(plan, "pushdown_rows_matched") + metric(plan, "pushdown_rows_pruned");
    assert!(plan_times.contains("FilterExec"), "{plan_times}");
    assert_eq!(filtered_in_scan(&plan_times), 0.0, "{plan_times}");
    assert!(!plan_texts.contains("FilterExec"), "{plan_texts}");
    assert!(filtered_in_scan(&plan_texts) > 0.0, "{plan_texts}");
    assert!(plan_most.contains("FilterExec"), "{plan_most}");
    assert_eq!(filtered_in_scan(&plan_most), 0.0, "{plan_most}");

    // Without the sample's verdict, the filter that keeps most rows goes into the scan.
    let always = engine_with(&[("lanner.pushdown_max_selectivity", "1.0")]).await;
    let plan = analyze(&always, most).await;
    assert!(!plan.contains("FilterExec"), "{plan}");
    assert!(filtered_in_scan(&plan) > 0.0, "{plan}");

    // The same rows whichever way the filters run: against every scan filtering
    // (DataFusion's setting) and against none.
    for everywhere in ["true", "false"] {
        let other = engine_with(&[
            ("lanner.selective_pushdown", "false"),
            ("datafusion.execution.parquet.pushdown_filters", everywhere),
        ])
        .await;
        for sql in [times.as_str(), texts.as_str(), most] {
            assert_eq!(csv(&other, sql).await, csv(&e, sql).await, "{sql}");
        }
        let plan = analyze(&other, &texts).await;
        assert_eq!(plan.contains("FilterExec"), everywhere == "false", "{plan}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_on_dictionary_columns_compare_keys_and_give_the_same_rows() {
    let e = engine().await;
    let off = engine_with(&[("lanner.dictionary_filters", "false")]).await;
    let q = |filter: &str| {
        format!(
            "SELECT evt_type, count(*) AS n FROM events WHERE {filter} GROUP BY evt_type ORDER BY evt_type"
        )
    };
    let filters = [
        "evt_type = 'execve'",
        "'connect' = evt_type",
        "evt_type <> 'openat'",
        "evt_type = 'no such type'",
        "evt_type <> 'no such type'",
        "evt_type IN ('execve', 'connect')",
        "evt_type NOT IN ('execve', 'connect')",
        "evt_type = 'execve' OR container_id = 'no such container'",
    ];
    for filter in filters {
        let sql = q(filter);
        let ours = csv(&e, &sql).await;
        assert_eq!(ours, csv(&off, &sql).await, "{sql}");
        let plan = analyze(&e, &sql).await;
        assert!(plan.contains("(by dictionary keys)"), "{sql}:\n{plan}");
        let plan = analyze(&off, &sql).await;
        assert!(!plan.contains("(by dictionary keys)"), "{sql}:\n{plan}");
    }
    // Some rows kept and some dropped, so the comparison is not vacuous.
    let kept = csv(&e, &q("evt_type = 'execve'")).await;
    assert_eq!(kept.lines().count(), 2, "{kept}");
    assert!(kept.starts_with("evt_type,n\nexecve,"), "{kept}");
    let all = csv(&e, "SELECT count(DISTINCT evt_type) AS n FROM events").await;
    let others = csv(&e, &q("evt_type <> 'openat'")).await;
    let distinct: usize = all.lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(others.lines().count(), distinct, "{others}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_elements_are_taken_with_the_filter_and_give_the_same_rows() {
    let e = engine().await;
    let off = engine_with(&[("lanner.list_elements", "false")]).await;
    let q = |index: &str| {
        format!(
            "WITH dns AS (
               SELECT DISTINCT container_id, dns_name, dns_answers[{index}] AS ip FROM events
               WHERE evt_type = 'sendto' AND dns_name IS NOT NULL)
             SELECT container_id, dns_name, ip FROM dns ORDER BY container_id, dns_name, ip"
        )
    };
    for index in ["1", "2", "-1", "0", "100"] {
        let sql = q(index);
        let ours = csv(&e, &sql).await;
        assert_eq!(ours, csv(&off, &sql).await, "{sql}");
        let plan = analyze(&e, &sql).await;
        // The element is taken with the filter, for the rows it keeps, and the filter
        // still compares `evt_type`'s dictionary keys.
        let fused = plan
            .lines()
            .find(|l| l.contains("FilterElementsExec"))
            .unwrap_or_default();
        assert!(
            fused.contains(&format!("[{index}] as ip")),
            "{sql}:\n{plan}"
        );
        assert!(
            fused.contains("sendto (by dictionary keys)"),
            "{sql}:\n{plan}"
        );
        assert!(!plan.contains("FilterExec"), "{sql}:\n{plan}");
        let plan = analyze(&off, &sql).await;
        assert!(
            !plan.contains(&format!("[{index}] as ip")),
            "{sql}:\n{plan}"
        );
    }
    // The first answers are there to be taken: not every row's is null.
    let first = csv(&e, &q("1")).await;
    assert!(first.lines().skip(1).any(|l| !l.ends_with(',')), "{first}");
    let none = csv(&e, &q("0")).await;
    assert!(none.lines().skip(1).all(|l| l.ends_with(',')), "{none}");
}
