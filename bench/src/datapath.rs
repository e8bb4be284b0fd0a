//! `surge-bench datapath`.

/// Arguments of `surge-bench datapath`.
#[derive(clap::Args)]
pub struct DatapathArgs {}

/// Runs the datapath benchmark.
pub fn run(_args: DatapathArgs) -> anyhow::Result<()> {
    anyhow::bail!("the datapath benchmark is being built")
}
