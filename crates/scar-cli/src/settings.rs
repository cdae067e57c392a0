//! Settings: flags > environment > `~/.scar/scar.cfg` > defaults, resolved in one place.

use std::path::{Path, PathBuf};

use scar_aws::{AwsConfig, AwsProvider};
use scar_core::config::{scar_home, ConfigFile, Overrides, ProviderKind, Settings};
use scar_core::provider::ProviderError;
use scar_core::ErrorCategory;
use scar_local::LocalProvider;

use crate::args::Cli;
use crate::commands::Failure;
use crate::printer::Printer;

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
    ) -> Result<Context, Failure> {
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

    /// The provider the settings name, connected (AWS: no request sent yet).
    pub async fn provider(&self, cli: &Cli) -> Result<AnyProvider, Failure> {
        let supervisor = || scar_local::find_supervisor(self.supervisor.as_deref(), &self.home);
        Ok(match self.settings.provider {
            ProviderKind::Local => {
                let background = std::env::current_exe()
                    .map_err(|e| Failure::from(e).context("cannot find the scar executable"))?;
                AnyProvider::Local(
                    LocalProvider::new(&self.home, supervisor()?, self.settings.region.clone())
                        .with_proot(self.proot())
                        .with_extract_limits(self.settings.extract)
                        .with_concurrency(self.settings.concurrency as usize)
                        .with_background(background)
                        .with_notices(|n| Printer::default().warn(n)),
                )
            }
            ProviderKind::Aws => {
                let mut config = AwsConfig::from_settings(&self.settings);
                config.connection.profile = cli.profile.clone().filter(|p| !p.is_empty());
                config.connection.endpoint_url = cli.endpoint_url.clone().filter(|u| !u.is_empty());
                config.packaging.cache_dir = Some(self.home.join("cache"));
                // Needed when a function is created; other commands need none.
                config.packaging.supervisor = supervisor().ok();
                config.packaging.proot = self.proot();
                config.packaging.extract.limits = self.settings.extract;
                config.deployment.registry_override = std::env::var(ECR_REGISTRY_VAR)
                    .ok()
                    .filter(|r| !r.trim().is_empty());
                AnyProvider::Aws(AwsProvider::connect(config).await)
            }
        })
    }

    /// The proot zip packages carry ([`scar_local::find_proot`]), if there is one.
    pub fn proot(&self) -> Option<PathBuf> {
        scar_local::find_proot(self.proot.as_deref(), &self.home)
    }
}

/// What to do next about `err`, as a `help:` line: scar-aws's errors say what failed, the
/// command line says which flag or setting fixes it.
pub fn help_for(err: &anyhow::Error) -> Option<&'static str> {
    use scar_aws::AwsError;
    let aws = err.chain().find_map(|e| e.downcast_ref::<AwsError>())?;
    Some(match aws {
        AwsError::MissingRole { .. } => {
            "set -r/--iam-role or aws.iam.role in ~/.scar/scar.cfg (the ARN of a role Lambda can assume)"
        }
        AwsError::NeedsDeploymentBucket { .. } => "give a deployment bucket with -db BUCKET",
        AwsError::MissingSupervisor { .. } => {
            "pass --supervisor PATH or set SCAR_SUPERVISOR (`cargo xtask build-supervisor` builds one)"
        }
        AwsError::MissingProot { .. } => {
            "pass --proot PATH (udocker's static proot works: `udocker install` puts it in ~/.udocker/bin), or use --package image"
        }
        AwsError::BatchNetwork { .. } => {
            "set batch.compute_resources.subnets and security_group_ids in the definition file, or in aws.batch.compute_resources of ~/.scar/scar.cfg as SCAR keeps them (`aws ec2 describe-subnets` and `aws ec2 describe-security-groups` list yours)"
        }
        _ => return None,
    })
}

/// Environment variable replacing the registry host of ECR's authorization token
/// (`host:port`): a testing and emulator knob.
pub const ECR_REGISTRY_VAR: &str = "SCAR_ECR_REGISTRY";

/// One of the providers, chosen at run time; handlers are generic over
/// [`scar_core::provider::Provider`] and reach it through [`crate::with_provider!`].
pub enum AnyProvider {
    Local(LocalProvider),
    Aws(AwsProvider),
}

/// Runs `$body` with `$p` bound to the provider inside `$any`, whichever it is.
#[macro_export]
macro_rules! with_provider {
    ($any:expr, |$p:ident| $body:expr) => {
        match $any {
            $crate::settings::AnyProvider::Local($p) => $body,
            $crate::settings::AnyProvider::Aws($p) => $body,
        }
    };
}

/// Reads a script file named on the command line.
pub fn read_script(path: &Path) -> Result<String, InputFile> {
    std::fs::read_to_string(path).map_err(|e| InputFile(path.to_path_buf(), e))
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

impl ProviderError for InputFile {
    fn category(&self) -> ErrorCategory {
        ErrorCategory::Usage
    }
}

/// The functions an FDL file defines, as `init` arguments: the file's values under the
/// flags given beside `-f` (with `-n`, only that function). Warnings about what scar
/// ignores in the file go to the printer.
pub fn expand_fdl(
    args: &crate::args::InitArgs,
    file: &Path,
    printer: &Printer,
) -> Result<Vec<crate::args::InitArgs>, Failure> {
    let fdl = read_fdl(file)?;
    for w in &fdl.warnings {
        printer.warn(format!("{}: {w}", file.display()));
    }
    let mut functions = fdl.functions;
    if let Some(name) = &args.name {
        functions.retain(|f| &f.name == name);
        if functions.is_empty() {
            return Err(InputFile(
                file.to_path_buf(),
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("it defines no function named `{name}`"),
                ),
            )
            .into());
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
                image: f.image_file.is_none().then_some(f.image),
                image_file: f.image_file,
                file: None,
                memory: args.memory.or(f.memory_mb),
                time: args.time.or(f.timeout_s),
                timeout_threshold: args.timeout_threshold.or(f.timeout_threshold_s),
                description: args.description.clone().or(f.description),
                environment,
                init_script: args.init_script.clone().or(f.init_script),
                iam_role: args.iam_role.clone().or(f.iam_role),
                storage: Some(crate::args::FdlStorage {
                    inputs: f.inputs,
                    outputs: f.outputs,
                    storage_providers: f.storage_providers,
                    lambda_environment: f.lambda_environment,
                    execution_mode: f.execution_mode,
                    batch: f.batch,
                }),
                log_retention_days: f.log_retention_days,
                ..args.clone()
            }
        })
        .collect())
}

/// The names of the functions an FDL file defines (`rm -f`).
pub fn fdl_names(file: &Path) -> Result<Vec<String>, Failure> {
    Ok(read_fdl(file)?
        .functions
        .into_iter()
        .map(|f| f.name)
        .collect())
}

fn read_fdl(file: &Path) -> Result<scar_core::fdl::Fdl, Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| InputFile(file.to_path_buf(), e))?;
    let base = file.parent().unwrap_or(Path::new("."));
    scar_core::fdl::Fdl::parse(&text, base).map_err(|e| {
        Failure::from(e).context(format!(
            "{} is not a function definition scar can use",
            file.display()
        ))
    })
}

/// The function `init` creates: the flags over the resolved settings. Not yet validated.
///
/// Inputs and outputs: `-es BUCKET` is `BUCKET/input` in and `BUCKET/output` out (the
/// seed's convention, and SCAR 3's); `-ib` and `-ob` name them as SCAR 4 does; each wins
/// over what an FDL file says.
pub fn function_spec(
    settings: &Settings,
    args: &crate::args::InitArgs,
) -> Result<scar_core::FunctionSpec, Failure> {
    use scar_core::bucket::{BucketPath, INPUT_FOLDER, OUTPUT_FOLDER};
    let fdl = args.storage.clone().unwrap_or_default();
    let mut inputs = fdl.inputs;
    let mut outputs = fdl.outputs;
    if let Some(bucket) = &args.event_source {
        let bucket = BucketPath::parse(bucket)?.bucket;
        let at = |folder: &str| BucketPath {
            bucket: bucket.clone(),
            folder: folder.into(),
        };
        inputs = vec![scar_core::InputSpec::at(&at(INPUT_FOLDER))];
        if args.output_bucket.is_none() {
            outputs = vec![scar_core::OutputSpec::at(&at(OUTPUT_FOLDER))];
        }
    }
    if let Some(path) = &args.input_bucket {
        inputs = vec![scar_core::InputSpec::at(&BucketPath::parse(path)?)];
    }
    if let Some(path) = &args.output_bucket {
        outputs = vec![scar_core::OutputSpec::at(&BucketPath::parse(path)?)];
    }
    let execution_mode = args.execution_mode.unwrap_or(fdl.execution_mode);
    let mut batch = fdl.batch.or_else(|| {
        execution_mode
            .uses_batch()
            .then(scar_core::BatchSpec::default)
    });
    // SCAR keeps the network, roles and launch template of compute environments in
    // scar.cfg's `aws.batch`: they fill what the definition leaves out.
    if let Some(b) = &mut batch {
        let d = &settings.batch;
        let c = &mut b.compute;
        if c.subnets.is_empty() {
            c.subnets = d.compute.subnets.clone();
        }
        if c.security_group_ids.is_empty() {
            c.security_group_ids = d.compute.security_group_ids.clone();
        }
        if c.instance_types.is_empty() {
            c.instance_types = d.compute.instance_types.clone();
        }
        c.instance_role = c.instance_role.take().or(d.compute.instance_role.clone());
        c.launch_template_name = c
            .launch_template_name
            .take()
            .or(d.compute.launch_template_name.clone());
        b.service_role = b.service_role.take().or(d.service_role.clone());
    }
    let mut lambda_environment = fdl.lambda_environment;
    lambda_environment.extend(scar_core::spec::parse_env_assignments(
        &args.lambda_environment,
    )?);
    let timeout_s = args.time.unwrap_or(settings.timeout_s);
    Ok(scar_core::FunctionSpec {
        name: args.name.clone().unwrap_or_default(),
        image: match (&args.image, &args.image_file) {
            (Some(i), _) => i.clone(),
            (None, Some(f)) => f.display().to_string(),
            (None, None) => String::new(),
        },
        memory_mb: args.memory.unwrap_or(settings.memory_mb),
        timeout_s,
        timeout_threshold_s: args
            .timeout_threshold
            .unwrap_or_else(|| settings.threshold_for(timeout_s)),
        description: args
            .description
            .clone()
            .unwrap_or_else(|| settings.description.clone()),
        environment: scar_core::spec::parse_container_env_assignments(&args.environment)?,
        lambda_environment,
        init_script: args.init_script.as_deref().map(read_script).transpose()?,
        inputs,
        outputs,
        storage_providers: fdl.storage_providers,
        execution_mode,
        batch,
        runtime: match args.runtime {
            Some(crate::args::Runtime::Image) => scar_core::Runtime::Image,
            Some(crate::args::Runtime::Scar) | None => scar_core::Runtime::Scar,
        },
    })
}

/// Runs a background job of the local provider (see [`scar_local::BackgroundJob`]) with
/// the settings of the environment it was started in; its failures are in the logs.
pub async fn run_background(job: scar_local::BackgroundJob) -> scar_core::ExitStatus {
    let ctx = match Context::load(Overrides::default(), Some("local"), None, None) {
        Ok(ctx) => ctx,
        Err(f) => return f.status,
    };
    let explicit = std::env::var_os("SCAR_SUPERVISOR").map(PathBuf::from);
    let supervisor = match scar_local::find_supervisor(explicit.as_deref(), &ctx.home) {
        Ok(s) => s,
        Err(e) => return Failure::from(e).status,
    };
    let provider = LocalProvider::new(&ctx.home, supervisor, ctx.settings.region.clone())
        .with_concurrency(ctx.settings.concurrency as usize);
    match provider.run_background(job).await {
        Ok(()) => scar_core::ExitStatus::Success,
        Err(e) => Failure::from(e).status,
    }
}
