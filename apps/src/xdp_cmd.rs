//! `surge xdp`.

/// Arguments of `surge xdp`.
#[derive(clap::Args)]
pub struct XdpArgs {}

/// Runs `surge xdp`.
pub fn run(_args: XdpArgs) -> anyhow::Result<()> {
    anyhow::bail!("surge xdp is being built")
}
