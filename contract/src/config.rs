//! Versioned config files for every service: `--config FILE` (or `LANNER_CONFIG`).
//!
//! A config file is TOML whose keys are the service's long flag names, plus a
//! `version`; a value fills a flag the command line and the environment left unset, so
//! the precedence is **flag > `LANNER_*` environment > file > default**:
//!
//! ```toml
//! version = 1
//! nats-url = "nats://nats.internal:4222"
//! rules = ["/etc/lanner/falco_rules.yaml", "/etc/lanner/local_rules.yaml"]
//! rule-matching = "all"
//! ```
//!
//! Unknown keys, a missing or unknown `version`, and values of the wrong shape are
//! errors naming the file and the key, so a typo never silently falls back to a default.
//!
//! ```
//! use clap::Parser;
//! #[derive(Parser)]
//! struct Cli {
//!     #[arg(long, env = "LANNER_DOC_NODE", default_value = "here")]
//!     node: String,
//!     #[arg(long)]
//!     rules: Vec<String>,
//! }
//! let dir = tempfile::tempdir().unwrap();
//! let file = dir.path().join("lanner.toml");
//! std::fs::write(&file, "version = 1\nnode = \"edge-1\"\nrules = [\"a.yaml\", \"b.yaml\"]\n").unwrap();
//! let args = ["svc", "--config", file.to_str().unwrap(), "--rules", "mine.yaml"];
//! let cli: Cli = lanner_contract::config::parse_from(args).unwrap();
//! assert_eq!(cli.node, "edge-1"); // from the file
//! assert_eq!(cli.rules, ["mine.yaml"]); // the command line wins
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

/// The config file format version this build reads.
pub const CONFIG_VERSION: i64 = 1;

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read config file: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{file}: {message}")]
    Syntax {
        /// The file.
        file: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A key or value the service does not accept.
    #[error("{file}: key `{key}`: {message}")]
    Key {
        /// The file.
        file: PathBuf,
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The arguments (after the file's values were added) are invalid.
    #[error("{0}")]
    Args(#[from] clap::Error),
}

/// Parses the process's arguments with the config file applied; prints clap's usage
/// message and exits on bad arguments, as `Parser::parse` does, and exits with status
/// 2 and the reason on a bad config file.
pub fn parse<T: CommandFactory + FromArgMatches>() -> T {
    match parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(ConfigError::Args(e)) => e.exit(),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}

/// [`parse`] over the given arguments (the first is the program name).
pub fn parse_from<T, I, A>(args: I) -> Result<T, ConfigError>
where
    T: CommandFactory + FromArgMatches,
    I: IntoIterator<Item = A>,
    A: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let command = || with_config_arg(T::command());
    // A first, tolerant pass finds the file and what the command line and environment
    // set; required flags may be in the file, so their absence is not an error yet.
    let matches = command().ignore_errors(true).try_get_matches_from(&args)?;
    let Some(file) = matches.get_one::<PathBuf>(CONFIG_ID).cloned() else {
        let matches = command().try_get_matches_from(&args)?;
        return Ok(T::from_arg_matches(&matches)?);
    };
    // The keys are the flags of the (sub)command being run.
    let root = command();
    let (mut cmd, mut sub) = (&root, &matches);
    while let Some((name, m)) = sub.subcommand() {
        match cmd.find_subcommand(name) {
            Some(c) => (cmd, sub) = (c, m),
            None => break,
        }
    }
    let extra = file_args(cmd, sub, &file)?;
    // Only flags the command line and environment left unset are added, so where they
    // go does not change precedence; at the end they follow the subcommand.
    let mut merged = args;
    merged.extend(extra);
    let matches = command().try_get_matches_from(&merged)?;
    Ok(T::from_arg_matches(&matches)?)
}

const CONFIG_ID: &str = "lanner_config_file";

fn with_config_arg(cmd: clap::Command) -> clap::Command {
    cmd.arg(
        clap::Arg::new(CONFIG_ID)
            .long("config")
            .env("LANNER_CONFIG")
            .value_name("FILE")
            .value_parser(clap::value_parser!(PathBuf))
            .global(true)
            .help("Config file (TOML: `version = 1` and long flag names as keys); flags and LANNER_* variables override it"),
    )
}

/// The file's values as command-line arguments, for the flags the command line and
/// the environment left unset.
fn file_args(
    cmd: &clap::Command,
    matches: &ArgMatches,
    file: &Path,
) -> Result<Vec<OsString>, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        file: file.to_owned(),
        source,
    })?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            file: file.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
    let key_error = |key: &str, message: String| ConfigError::Key {
        file: file.to_owned(),
        key: key.to_owned(),
        message,
    };
    match table.get("version") {
        Some(toml::Value::Integer(CONFIG_VERSION)) => {}
        Some(v) => {
            let v = scalar(v).map_or_else(
                || "of this shape".into(),
                |v| v.to_string_lossy().into_owned(),
            );
            return Err(key_error(
                "version",
                format!("version {v} is not supported (this build reads {CONFIG_VERSION})"),
            ));
        }
        None => {
            return Err(key_error(
                "version",
                format!("missing: start the file with `version = {CONFIG_VERSION}`"),
            ));
        }
    }
    let mut out = Vec::new();
    for (key, value) in &table {
        if key == "version" {
            continue;
        }
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()) && a.get_id() != CONFIG_ID)
            .ok_or_else(|| key_error(key, "not a setting of this service".to_owned()))?;
        let id = arg.get_id().as_str();
        if matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let flag = format!("--{key}");
        let takes_value = arg.get_action().takes_values();
        match value {
            toml::Value::Boolean(b) if !takes_value => {
                if *b {
                    out.push(flag.into());
                }
            }
            toml::Value::Array(items) if takes_value => {
                for item in items {
                    out.push(flag.clone().into());
                    out.push(scalar(item).ok_or_else(|| {
                        key_error(
                            key,
                            "list items must be strings, numbers or booleans".into(),
                        )
                    })?);
                }
            }
            v if takes_value => {
                out.push(flag.into());
                out.push(scalar(v).ok_or_else(|| {
                    key_error(key, "expected a string, number, boolean or list".into())
                })?);
            }
            _ => {
                return Err(key_error(
                    key,
                    "this flag takes no value: use true or false".into(),
                ));
            }
        }
    }
    Ok(out)
}

fn scalar(v: &toml::Value) -> Option<OsString> {
    Some(match v {
        toml::Value::String(s) => s.into(),
        toml::Value::Integer(i) => i.to_string().into(),
        toml::Value::Float(f) => f.to_string().into(),
        toml::Value::Boolean(b) => b.to_string().into(),
        _ => return None,
    })
}
