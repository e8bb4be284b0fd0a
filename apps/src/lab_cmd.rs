//! `surge lab`.

/// Arguments of `surge lab`.
#[derive(clap::Args)]
pub struct LabArgs {}

/// Runs `surge lab`.
pub fn run(_args: LabArgs) -> anyhow::Result<()> {
    anyhow::bail!("surge lab is being built")
}
