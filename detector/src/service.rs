//! The detection service (placeholder until the NATS stage lands).

/// Flags of `lanner-detector run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Rule files.
    #[arg(long = "rules", required = true)]
    pub rules: Vec<std::path::PathBuf>,
}

/// Runs the service.
pub fn main(args: RunArgs) -> anyhow::Result<()> {
    anyhow::bail!(
        "run is not implemented yet ({} rule files)",
        args.rules.len()
    )
}
