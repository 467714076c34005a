//! Config files: precedence (flag > environment > file > default), subcommands, lists
//! and booleans, and clear errors naming the file and key.

#![allow(clippy::unwrap_used)]

use clap::{Parser, Subcommand};
use lanner_contract::config::{ConfigError, parse_from};

#[derive(Debug, Parser)]
struct Cli {
    #[arg(
        long,
        env = "LANNER_CFGTEST_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    nats_url: String,
    #[arg(long, default_value_t = 1024)]
    batch_events: usize,
    #[arg(long)]
    rules: Vec<String>,
    #[arg(long)]
    stdout: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    Run {
        #[arg(long, default_value = "detector")]
        durable: String,
        #[arg(long)]
        dry_run: bool,
    },
}

fn file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lanner.toml");
    std::fs::write(&path, text).unwrap();
    let p = path.display().to_string();
    (dir, p)
}

#[test]
fn file_fills_what_flags_leave_unset() {
    let (_d, f) = file(
        "version = 1\nnats-url = \"nats://bus:4222\"\nbatch-events = 64\nrules = [\"a.yaml\", \"b.yaml\"]\nstdout = true\n",
    );
    let cli: Cli = parse_from(["x", "--config", &f]).unwrap();
    assert_eq!(cli.nats_url, "nats://bus:4222");
    assert_eq!(cli.batch_events, 64);
    assert_eq!(cli.rules, ["a.yaml", "b.yaml"]);
    assert!(cli.stdout);

    let cli: Cli = parse_from([
        "x",
        "--config",
        &f,
        "--batch-events",
        "7",
        "--rules",
        "c.yaml",
    ])
    .unwrap();
    assert_eq!(cli.batch_events, 7, "the flag wins");
    assert_eq!(
        cli.rules,
        ["c.yaml"],
        "a list flag replaces the file's list"
    );
    assert_eq!(cli.nats_url, "nats://bus:4222");

    let cli: Cli = parse_from(["x"]).unwrap();
    assert_eq!(cli.batch_events, 1024, "no file, defaults");
}

#[test]
fn the_environment_beats_the_file() {
    // Setting a variable in this process would race the other tests: run this test
    // binary again, filtered to `env_child`, with the variables set.
    let (_d, f) = file("version = 1\nnats-url = \"nats://file:4222\"\n");
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--exact", "env_child", "--nocapture"])
        .env("LANNER_CFGTEST_FILE", &f)
        .env("LANNER_CFGTEST_NATS_URL", "nats://env:4222")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("nats_url=nats://env:4222"), "{stdout}");
}

#[test]
fn env_child() {
    if let Ok(f) = std::env::var("LANNER_CFGTEST_FILE") {
        let cli: Cli = parse_from(["x", "--config", &f]).unwrap();
        println!("nats_url={}", cli.nats_url);
    }
}

#[test]
fn subcommand_flags_come_from_the_file() {
    let (_d, f) = file("version = 1\ndurable = \"hunters\"\ndry-run = true\n");
    let cli: Cli = parse_from(["x", "run", "--config", &f]).unwrap();
    match cli.cmd {
        Some(Cmd::Run { durable, dry_run }) => {
            assert_eq!(durable, "hunters");
            assert!(dry_run);
        }
        None => panic!("no subcommand"),
    }
}

#[test]
fn mistakes_name_the_file_and_key() {
    let cases = [
        ("nats-url = \"x\"\n", "key `version`: missing"),
        ("version = 2\n", "key `version`: version 2 is not supported"),
        (
            "version = 1\nnats-ulr = \"x\"\n",
            "key `nats-ulr`: not a setting of this service",
        ),
        (
            "version = 1\nstdout = \"yes\"\n",
            "key `stdout`: this flag takes no value",
        ),
        (
            "version = 1\nrules = [{a = 1}]\n",
            "key `rules`: list items must be",
        ),
        (
            "version = 1\nbatch-events = \"many\"\n",
            "invalid value 'many'",
        ),
        ("version = = 1\n", "lanner.toml: "),
    ];
    for (text, want) in cases {
        let (_d, f) = file(text);
        let err = parse_from::<Cli, _, _>(["x", "--config", &f]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(want), "{text:?}: {msg}");
        if !matches!(err, ConfigError::Args(_)) {
            assert!(msg.starts_with(&f), "{msg}");
        }
    }
    let err = parse_from::<Cli, _, _>(["x", "--config", "/nonexistent/lanner.toml"]).unwrap_err();
    assert!(
        err.to_string()
            .contains("/nonexistent/lanner.toml: cannot read config file"),
        "{err}"
    );
}

#[derive(Debug, Parser)]
struct Required {
    #[arg(long, required = true)]
    rules: Vec<String>,
}

#[test]
fn a_required_flag_may_come_from_the_file() {
    let (_d, f) = file("version = 1\nrules = [\"falco_rules.yaml\"]\n");
    let cli: Required = parse_from(["x", "--config", &f]).unwrap();
    assert_eq!(cli.rules, ["falco_rules.yaml"]);
    let err = parse_from::<Required, _, _>(["x"]).unwrap_err();
    assert!(err.to_string().contains("--rules"), "{err}");
}
