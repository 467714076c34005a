//! The same tables over an S3 archive: the real archiver writes to a real S3 server
//! (s3s-fs), and the CLI reads it back with the archiver's `--archive s3://...` and S3
//! flags, credentials from the usual AWS variables.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::*;
use lanner_tests::S3;

#[test]
fn queries_an_s3_archive() {
    let s3 = S3::start();
    let bucket = "lanner-query-test";
    s3.bucket(bucket);
    let url = format!("s3://{bucket}/{}", unique("lake"));
    // The archiver takes its S3 settings from the environment here.
    let env: Vec<(String, String)> = [
        ("LANNER_S3_ENDPOINT", s3.endpoint.as_str()),
        ("LANNER_S3_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", s3.key.as_str()),
        ("AWS_SECRET_ACCESS_KEY", s3.secret.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let u = url.clone();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(build_archive(&u, &env));
    })
    .join()
    .unwrap();

    let out = Command::new(query_bin())
        .args([
            "sql",
            "SELECT hour, count(*) AS n FROM events GROUP BY hour ORDER BY hour",
        ])
        .args(["--archive", &url, "--format", "csv"])
        .args(["--s3-endpoint", &s3.endpoint, "--s3-region", "us-east-1"])
        .env("AWS_ACCESS_KEY_ID", &s3.key)
        .env("AWS_SECRET_ACCESS_KEY", &s3.secret)
        .output()
        .unwrap();
    let csv = ok_stdout(&out);
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        ["hour,n", "0,11", "1,3000", "2,3000", "3,3000"]
    );
    let out = Command::new(query_bin())
        .args([
            "sql",
            "SELECT session_pid, login_user FROM exec_sessions",
            "--format",
            "csv",
        ])
        .args(["--archive", &url])
        .args(["--s3-endpoint", &s3.endpoint, "--s3-region", "us-east-1"])
        .args([
            "--s3-access-key-id",
            &s3.key,
            "--s3-secret-access-key",
            &s3.secret,
        ])
        .output()
        .unwrap();
    assert_eq!(ok_stdout(&out), "session_pid,login_user\n4242,alice\n");
}
