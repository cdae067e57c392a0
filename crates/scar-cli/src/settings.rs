//! Settings: flags > environment > `~/.scar/scar.cfg` > defaults, resolved in one place.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use scar_core::config::{scar_home, ConfigFile, Overrides, ProviderKind, Settings};
use scar_local::LocalProvider;

/// Everything a command needs: where state lives and the resolved settings.
#[derive(Debug)]
pub struct Context {
    pub home: PathBuf,
    pub settings: Settings,
    pub supervisor: Option<PathBuf>,
    /// `--proot`: the proot zip packages carry.
    pub proot: Option<PathBuf>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Context {
    /// Reads the environment and the config file (creating it on first use) and applies
    /// the flags on top.
    pub fn load(
        flags: Overrides,
        provider_flag: Option<&str>,
        supervisor: Option<PathBuf>,
        proot: Option<PathBuf>,
    ) -> anyhow::Result<Context> {
        let home = scar_home(&env)?;
        let file = ConfigFile::load_or_create(&home)?;
        let mut flags = flags;
        if let Some(p) = provider_flag {
            flags.provider = Some(p.parse()?);
        }
        let settings = Settings::resolve(&flags, &env, &file)?;
        Ok(Context {
            home,
            settings,
            supervisor,
            proot,
        })
    }

    /// The local provider, with its supervisor found. Fails with a usage error on `aws`,
    /// which this build does not have yet.
    pub fn local(&self) -> anyhow::Result<LocalProvider> {
        if self.settings.provider == ProviderKind::Aws {
            return Err(anyhow::Error::new(UnsupportedProvider));
        }
        let supervisor = scar_local::find_supervisor(self.supervisor.as_deref(), &self.home)?;
        Ok(
            LocalProvider::new(&self.home, supervisor, self.settings.region.clone())
                .with_proot(self.proot()),
        )
    }

    /// The proot zip packages carry ([`scar_local::find_proot`]), if there is one.
    pub fn proot(&self) -> Option<PathBuf> {
        scar_local::find_proot(self.proot.as_deref(), &self.home)
    }
}

/// The `aws` provider is not in this build yet.
#[derive(Debug)]
pub struct UnsupportedProvider;

impl std::error::Error for UnsupportedProvider {}

impl std::fmt::Display for UnsupportedProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "the aws provider is not available in this version of scar yet: use --provider local",
        )
    }
}

/// Reads a script file named on the command line.
pub fn read_script(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| anyhow::Error::new(InputFile(path.to_path_buf(), e)))
        .context("cannot use the script")
}

/// A file named on the command line that cannot be read: a usage error.
#[derive(Debug)]
pub struct InputFile(pub PathBuf, pub std::io::Error);

impl std::fmt::Display for InputFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot read {}: {}", self.0.display(), self.1)
    }
}

impl std::error::Error for InputFile {}

/// The function `init` creates: the flags over the resolved settings. Not yet validated.
pub fn function_spec(
    settings: &Settings,
    args: &crate::args::InitArgs,
) -> anyhow::Result<scar_core::FunctionSpec> {
    Ok(scar_core::FunctionSpec {
        name: args.name.clone(),
        image: match (&args.image, &args.image_file) {
            (Some(i), _) => i.clone(),
            (None, Some(f)) => f.display().to_string(),
            (None, None) => String::new(),
        },
        memory_mb: settings.memory_mb,
        timeout_s: settings.timeout_s,
        timeout_threshold_s: settings.timeout_threshold_s,
        description: settings.description.clone(),
        environment: scar_core::spec::parse_env_assignments(&args.environment)?,
        init_script: args.init_script.as_deref().map(read_script).transpose()?,
        input_bucket: args
            .event_source
            .as_deref()
            .map(|b| scar_core::bucket::BucketPath::parse(b).map(|p| p.bucket))
            .transpose()?,
    })
}
