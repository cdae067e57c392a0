//! `cargo xtask bench`: scar against baselines measured in the same run.

pub fn run(_args: &[String]) -> anyhow::Result<()> {
    anyhow::bail!("bench: not written yet")
}
