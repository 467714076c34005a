//! The same tables over an S3 archive: the real archiver writes to a real S3 server
//! (s3s-fs), and the CLI reads it back with the archiver's `--archive s3://...` and S3
//! flags, credentials from the usual AWS variables.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// `LANNER_TEST_S3_*` from scripts/test, or a private s3s-fs.
struct S3 {
    endpoint: String,
    key: String,
    secret: String,
    root: std::path::PathBuf,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl S3 {
    fn start() -> S3 {
        if let (Ok(endpoint), Ok(root)) = (
            std::env::var("LANNER_TEST_S3_ENDPOINT"),
            std::env::var("LANNER_TEST_S3_ROOT"),
        ) {
            return S3 {
                endpoint,
                key: std::env::var("LANNER_TEST_S3_ACCESS_KEY").unwrap_or_else(|_| "lanner".into()),
                secret: std::env::var("LANNER_TEST_S3_SECRET_KEY")
                    .unwrap_or_else(|_| "lanner-secret".into()),
                root: root.into(),
                child: None,
                _dir: None,
            };
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", "lanner", "--secret-key", "lanner-secret"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs (scripts/install-s3s-fs installs it)");
        wait_for_port(port, Duration::from_secs(15));
        S3 {
            endpoint: format!("http://127.0.0.1:{port}"),
            key: "lanner".into(),
            secret: "lanner-secret".into(),
            root: dir.path().to_owned(),
            child: Some(child),
            _dir: Some(dir),
        }
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn queries_an_s3_archive() {
    let s3 = S3::start();
    let bucket = "lanner-query-test";
    std::fs::create_dir_all(s3.root.join(bucket)).unwrap();
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
