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

    /// The local provider, with its supervisor found. Fails with a usage error when the
    /// settings say `aws` (commands for AWS go through `crate::aws` instead).
    pub fn local(&self) -> anyhow::Result<LocalProvider> {
        if self.settings.provider == ProviderKind::Aws {
            return Err(anyhow::Error::new(UnsupportedProvider));
        }
        let supervisor = scar_local::find_supervisor(self.supervisor.as_deref(), &self.home)?;
        Ok(
            LocalProvider::new(&self.home, supervisor, self.settings.region.clone())
                .with_proot(self.proot())
                .with_extract_limits(self.settings.extract),
        )
    }

    /// The proot zip packages carry ([`scar_local::find_proot`]), if there is one.
    pub fn proot(&self) -> Option<PathBuf> {
        scar_local::find_proot(self.proot.as_deref(), &self.home)
    }
}

/// A local-only path reached with `--provider aws`.
#[derive(Debug)]
pub struct UnsupportedProvider;

impl std::error::Error for UnsupportedProvider {}

impl std::fmt::Display for UnsupportedProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "this runs on the local provider only: drop --provider aws (or SCAR_PROVIDER=aws)",
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

/// The functions an FDL file defines, as `init` arguments: the file's values under the
/// flags given beside `-f` (with `-n`, only that function). Warnings about what scar
/// ignores in the file go to stderr.
pub fn expand_fdl(
    args: &crate::args::InitArgs,
    file: &Path,
) -> anyhow::Result<Vec<crate::args::InitArgs>> {
    let fdl = read_fdl(file)?;
    for w in &fdl.warnings {
        eprintln!("warning: {}: {w}", file.display());
    }
    let mut functions = fdl.functions;
    if let Some(name) = &args.name {
        functions.retain(|f| &f.name == name);
        if functions.is_empty() {
            return Err(anyhow::Error::new(InputFile(
                file.to_path_buf(),
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("it defines no function named `{name}`"),
                ),
            )));
        }
    }
    Ok(functions
        .into_iter()
        .map(|f| {
            // The file's variables first: `-e` given beside `-f` wins.
            let mut environment: Vec<String> = f
                .environment
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            environment.extend(args.environment.iter().cloned());
            crate::args::InitArgs {
                name: Some(f.name),
                image: Some(f.image),
                image_file: None,
                file: None,
                memory: args.memory.or(f.memory_mb),
                time: args.time.or(f.timeout_s),
                timeout_threshold: args.timeout_threshold.or(f.timeout_threshold_s),
                description: args.description.clone().or(f.description),
                environment,
                init_script: args.init_script.clone().or(f.init_script),
                event_source: args.event_source.clone().or(f.input_bucket),
                iam_role: args.iam_role.clone().or(f.iam_role),
                output: f.output,
                log_retention_days: f.log_retention_days,
                ..args.clone()
            }
        })
        .collect())
}

/// The names of the functions an FDL file defines (`rm -f`).
pub fn fdl_names(file: &Path) -> anyhow::Result<Vec<String>> {
    Ok(read_fdl(file)?
        .functions
        .into_iter()
        .map(|f| f.name)
        .collect())
}

fn read_fdl(file: &Path) -> anyhow::Result<scar_core::fdl::Fdl> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::Error::new(InputFile(file.to_path_buf(), e)))?;
    let base = file.parent().unwrap_or(Path::new("."));
    scar_core::fdl::Fdl::parse(&text, base).with_context(|| {
        format!(
            "{} is not a function definition scar can use",
            file.display()
        )
    })
}

/// The function `init` creates: the flags over the resolved settings. Not yet validated.
pub fn function_spec(
    settings: &Settings,
    args: &crate::args::InitArgs,
) -> anyhow::Result<scar_core::FunctionSpec> {
    Ok(scar_core::FunctionSpec {
        name: args.name.clone().unwrap_or_default(),
        image: match (&args.image, &args.image_file) {
            (Some(i), _) => i.clone(),
            (None, Some(f)) => f.display().to_string(),
            (None, None) => String::new(),
        },
        memory_mb: args.memory.unwrap_or(settings.memory_mb),
        timeout_s: args.time.unwrap_or(settings.timeout_s),
        timeout_threshold_s: args
            .timeout_threshold
            .unwrap_or(settings.timeout_threshold_s),
        description: args
            .description
            .clone()
            .unwrap_or_else(|| settings.description.clone()),
        environment: scar_core::spec::parse_env_assignments(&args.environment)?,
        init_script: args.init_script.as_deref().map(read_script).transpose()?,
        input_bucket: args
            .event_source
            .as_deref()
            .map(|b| scar_core::bucket::BucketPath::parse(b).map(|p| p.bucket))
            .transpose()?,
        output: args.output.clone(),
    })
}
