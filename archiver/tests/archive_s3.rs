//! Events land in Parquet on a real S3 server (s3s-fs) through `--archive s3://...`,
//! and pyarrow reads them back over S3 with the expected schema and row count.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_land_in_parquet_on_s3() {
    let nats = Nats::start();
    let s3 = S3::start();
    let js = jetstream(&nats).await;
    let node = unique("arch-s3");
    let durable = unique("arch-s3");
    let bucket = "lanner-test";
    s3.bucket(bucket);
    let prefix = unique("lake");

    let evs = events(21, &node, 1_767_225_600_000_000_000, 4000);
    publish_events(&js, &node, &evs, 500, "b").await;

    let url = format!("s3://{bucket}/{prefix}");
    let mut args = archiver_args(&node, &durable, &url, &nats);
    args.extend(
        [
            "--roll-secs",
            "1",
            "--tables",
            "events",
            "--s3-endpoint",
            &s3.endpoint,
            "--s3-region",
            "us-east-1",
        ]
        .map(String::from),
    );
    // Credentials through the usual AWS environment variables.
    let env = [
        ("AWS_ACCESS_KEY_ID", s3.key.as_str()),
        ("AWS_SECRET_ACCESS_KEY", s3.secret.as_str()),
    ];
    let mut archiver = Archiver::start(&args, &env);
    wait_drained(
        &js,
        "LANNER_EVENTS",
        &format!("{durable}-events"),
        Duration::from_secs(120),
    )
    .await;
    archiver.terminate();

    let root = format!("{bucket}/{prefix}");
    let ev = read_archive(
        "events",
        "evt_id",
        "evt_time",
        &["--s3", &s3.endpoint, &root, &s3.key, &s3.secret],
    );
    assert_eq!(num(&ev, "rows"), 4000, "{ev}");
    assert_eq!(num(&ev, "distinct_ids"), 4000);
    let want: Vec<String> = lanner_contract::arrow::schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let got: Vec<String> = serde_json::from_value(ev["columns"].clone()).unwrap();
    assert_eq!(got, want);
    assert_eq!(
        ev["partitions"],
        serde_json::json!(["dt=2026-01-01/hour=00"])
    );
    for f in ev["file_facts"].as_array().unwrap() {
        assert_eq!(f["compression"], "ZSTD", "{f}");
        assert_eq!(f["sorted"], true, "{f}");
        assert_eq!(
            f["metadata"]["lanner.schema_version"],
            lanner_contract::arrow::SCHEMA_VERSION,
            "{f}"
        );
    }

    // A create-only put of an existing name does not overwrite it on this server either.
    let archive = lanner_archiver::archive::Archive::open(
        &url,
        &lanner_archiver::archive::S3Args {
            endpoint: Some(s3.endpoint.clone()),
            region: Some("us-east-1".into()),
            access_key_id: Some(s3.key.clone()),
            secret_access_key: Some(s3.secret.clone()),
            allow_http: true,
        },
    )
    .unwrap();
    let name = ev["file_facts"][0]["name"].as_str().unwrap();
    let path = object_store::path::Path::from(format!("events/{name}"));
    let again = archive
        .put_create(&path, b"other bytes".to_vec())
        .await
        .unwrap();
    assert_eq!(again, lanner_archiver::archive::Created::AlreadyExists);
}
