//! Settings: flags > environment > `~/.scar/scar.cfg` > defaults, resolved in one place.

use std::path::{Path, PathBuf};

use scar_aws::{AwsConfig, AwsProvider};
use scar_core::config::{
    config_folder, scar_home, ConfigFile, Overrides, ProviderKind, Settings, CONFIG_FILE_NAME,
};
use scar_core::provider::{ImageInput, PackageKind};
use scar_core::{LambdaRuntime, UsageError};
use scar_local::LocalProvider;

use crate::args::Cli;
use crate::commands::Failure;
use crate::printer::Printer;

/// Everything a command needs: where state lives and the resolved settings.
#[derive(Debug, Clone)]
pub struct Context {
    pub home: PathBuf,
    pub settings: Settings,
    pub supervisor: Option<PathBuf>,
    /// `--proot`: the proot zip packages carry.
    pub proot: Option<PathBuf>,
    /// `SCAR_ECR_REGISTRY`: the registry host that replaces ECR's (a testing and emulator
    /// knob).
    pub ecr_registry: Option<String>,
    /// What the config file's keys call for (keys scar has no use for, unknown keys), each
    /// naming the file: for the printer.
    pub config_warnings: Vec<String>,
    /// Whether `--region` and `--profile` were given: they win over a definition file's.
    pub region_flag: bool,
    pub profile_flag: bool,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Context {
    /// Reads the environment and the config file (`$SCAR_CONFIG_FOLDER/scar.cfg`, else in
    /// the scar home; created on first use) and applies the flags on top.
    pub fn load(
        flags: Overrides,
        provider_flag: Option<&str>,
        supervisor: Option<PathBuf>,
        proot: Option<PathBuf>,
    ) -> Result<Context, Failure> {
        let home = scar_home(&env)?;
        let folder = config_folder(&env, &home);
        let file = ConfigFile::load_or_create(&folder)?;
        let path = folder.join(CONFIG_FILE_NAME);
        let config_warnings = (file.warnings.iter())
            .map(|w| format!("{}: {w}", path.display()))
            .collect();
        let (region_flag, profile_flag) = (flags.region.is_some(), flags.profile.is_some());
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
            ecr_registry: env(ECR_REGISTRY_VAR).filter(|r| !r.trim().is_empty()),
            config_warnings,
            region_flag,
            profile_flag,
        })
    }

    /// The context of one function of a definition file: its own `region` and
    /// `boto_profile` (SCAR's `functions.aws[].lambda`) over the settings', the flags
    /// `--region` and `--profile` over both. Without a file's entry, this context.
    pub fn for_function(&self, fdl: Option<&scar_core::fdl::FdlFunction>) -> Context {
        let mut ctx = self.clone();
        let Some(f) = fdl else {
            return ctx;
        };
        if let (Some(region), false) = (&f.region, self.region_flag) {
            ctx.settings.region = region.clone();
        }
        // `default` is the SDK's own choice, as in scar.cfg.
        let profile = f.boto_profile.as_ref().filter(|p| *p != "default");
        if let (Some(profile), false) = (profile, self.profile_flag) {
            ctx.settings.profile = Some(profile.clone());
        }
        ctx
    }

    /// The provider the settings name, connected (AWS: no request sent yet).
    pub async fn provider(&self, cli: &Cli) -> Result<AnyProvider, Failure> {
        Ok(match self.settings.provider {
            ProviderKind::Local => AnyProvider::Local(self.local_provider()?),
            ProviderKind::Aws => {
                let mut config = AwsConfig::from_settings(&self.settings);
                config.connection.endpoint_url = cli.endpoint_url.clone().filter(|u| !u.is_empty());
                config.packaging.cache_dir = Some(self.home.join("cache"));
                // Needed when a function is created; other commands need none.
                let (x86_64, arm64) = self.lambda_supervisors();
                config.packaging.supervisor = x86_64;
                config.packaging.supervisor_aarch64 = arm64;
                config.packaging.proot = self.proot();
                config.packaging.extract.limits = self.settings.extract;
                config.deployment.registry_override = self.ecr_registry.clone();
                AnyProvider::Aws(AwsProvider::connect(config).await)
            }
        })
    }

    /// The local provider of these settings: the one constructor of the foreground
    /// commands and of the background jobs they start.
    pub fn local_provider(&self) -> Result<LocalProvider, Failure> {
        let background = std::env::current_exe()
            .map_err(|e| Failure::machine("cannot find the scar executable", e))?;
        Ok(
            LocalProvider::new(&self.home, self.supervisor()?, self.settings.region.clone())
                .with_proot(self.proot())
                .with_supervisor_aarch64(self.supervisor_aarch64())
                .with_extract_limits(self.settings.extract)
                .with_registry_mirrors(self.settings.mirrors.clone())
                .with_concurrency(self.settings.concurrency as usize)
                .with_warm_reuse(self.settings.warm)
                .with_background(background)
                .with_notices(|n| Printer::default().warn(n)),
        )
    }

    fn supervisor(&self) -> Result<PathBuf, scar_local::LocalError> {
        scar_local::find_supervisor(self.supervisor.as_deref(), &self.home)
    }

    /// The arm64 supervisor (`SCAR_SUPERVISOR_AARCH64`, else beside the supervisor, see
    /// [`scar_local::find_supervisor_aarch64`]), if there is one.
    fn supervisor_aarch64(&self) -> Option<PathBuf> {
        let explicit = env("SCAR_SUPERVISOR_AARCH64").filter(|v| !v.is_empty());
        let main = self.supervisor().ok();
        scar_local::find_supervisor_aarch64(
            explicit.as_deref().map(Path::new),
            main.as_deref(),
            &self.home,
        )
    }

    /// The supervisors of x86_64 and arm64 Lambda functions. On x86_64 the first is the
    /// one found for this machine; on arm64 that one is arm64's, and x86_64's is
    /// `x86_64/bootstrap` beside it (a release archive's `lib/scar/x86_64/bootstrap`).
    fn lambda_supervisors(&self) -> (Option<PathBuf>, Option<PathBuf>) {
        use scar_core::Architecture;
        let main = self.supervisor().ok();
        let arch = |p: &Path| scar_local::elf_architecture(p);
        match main.as_deref().and_then(arch) {
            Some(Architecture::Arm64) => {
                let x86_64 = (main.as_deref().and_then(Path::parent))
                    .map(|dir| dir.join("x86_64").join("bootstrap"))
                    .filter(|p| arch(p) == Some(Architecture::X86_64));
                (x86_64, self.supervisor_aarch64().or(main))
            }
            _ => (main, self.supervisor_aarch64()),
        }
    }

    /// The proot zip packages carry ([`scar_local::find_proot`]), if there is one.
    pub fn proot(&self) -> Option<PathBuf> {
        scar_local::find_proot(self.proot.as_deref(), &self.home)
    }
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
pub fn read_script(path: &Path) -> Result<String, UsageError> {
    std::fs::read_to_string(path).map_err(UsageError::unreadable(path))
}

/// A function `init` creates, resolved once: its spec, its image and how it is deployed.
#[derive(Debug)]
pub struct NewFunction {
    pub spec: scar_core::FunctionSpec,
    /// `None`: neither the flags nor the file name one.
    pub image: Option<ImageInput>,
    /// AWS: the role it runs as (flag > file > settings).
    pub iam_role: String,
    /// AWS: days its logs are kept (file > settings).
    pub log_retention_days: u32,
    /// Where a zip package over Lambda's direct upload limit goes (`-db` > the file's
    /// `deployment.bucket`).
    pub deployment_bucket: Option<String>,
    /// Its package: `--package`, else the one SCAR's Lambda runtime means (`-rt` > the
    /// file's `runtime` > `aws.lambda.runtime`), else the provider's default.
    pub package: Option<PackageKind>,
    /// The file's entry for it, if it comes from one: its own region and profile.
    pub fdl: Option<scar_core::fdl::FdlFunction>,
    /// One warming invocation once it is created (`-ph` > the file's `preheat`).
    pub preheat: bool,
}

/// The package of a function: `--package`, else the one its SCAR Lambda runtime means
/// (`-rt` > the file's `runtime` > the settings'); `-rt` and `--package` that disagree
/// are refused.
fn package_of(
    settings: &Settings,
    args: &crate::args::InitArgs,
    fdl: Option<&scar_core::fdl::FdlFunction>,
) -> Result<Option<PackageKind>, Failure> {
    if let (Some(package), Some(runtime)) = (args.package, &args.runtime) {
        if package != runtime.package() {
            return Err(Failure::usage(format!(
                "--runtime {runtime} (-rt) means --package {}, and --package {} is given: leave out one of them",
                runtime.package().as_str(),
                package.as_str()
            )));
        }
    }
    let runtime = (args.runtime.as_ref())
        .or(fdl.and_then(|f| f.runtime.as_ref()))
        .or(settings.runtime.as_ref());
    Ok(args.package.or(runtime.map(LambdaRuntime::package)))
}

/// The one warning of a command whose functions name a Python runtime (`-rt python3.9`,
/// FDL `runtime: python3.9`): its version has no effect.
fn warn_of_python(
    args: &crate::args::InitArgs,
    fdl: &[scar_core::fdl::FdlFunction],
    printer: &Printer,
) {
    let named = args.runtime.as_ref().or_else(|| {
        let mut runtimes = fdl.iter().filter_map(|f| f.runtime.as_ref());
        runtimes.find(|r| r.notice().is_some())
    });
    if let Some(notice) = named.and_then(LambdaRuntime::notice) {
        printer.warn(notice);
    }
}

/// The functions `init` creates: the one the flags describe, or every function of the
/// definition file `-f` (with `-n`, that one), the file's values under the flags given
/// beside it, over the settings resolved once for the command. Warnings about what scar
/// ignores in the file go to the printer. Not yet validated.
pub fn new_functions(
    settings: &Settings,
    args: &crate::args::InitArgs,
    printer: &Printer,
) -> Result<Vec<NewFunction>, Failure> {
    let Some(file) = &args.file else {
        let image = match (&args.image, &args.image_file) {
            (_, Some(file)) => Some(ImageInput::Archive(file.clone())),
            (Some(reference), None) => Some(ImageInput::Reference(reference.clone())),
            (None, None) => None,
        };
        warn_of_python(args, &[], printer);
        return Ok(vec![NewFunction {
            spec: function_spec(settings, args, None)?,
            image,
            iam_role: settings.iam_role.clone(),
            log_retention_days: settings.log_retention_days,
            deployment_bucket: args.deployment_bucket.clone(),
            package: package_of(settings, args, None)?,
            fdl: None,
            preheat: args.preheat,
        }]);
    };
    let fdl = read_fdl(file)?;
    for w in &fdl.warnings {
        printer.warn(format!("{}: {w}", file.display()));
    }
    let mut functions = fdl.functions;
    if let Some(name) = &args.name {
        functions.retain(|f| &f.name == name);
        if functions.is_empty() {
            return Err(UsageError::NoSuchFunction {
                file: file.to_path_buf(),
                name: name.clone(),
            }
            .into());
        }
    }
    warn_of_python(args, &functions, printer);
    functions
        .iter()
        .map(|f| {
            Ok(NewFunction {
                spec: function_spec(settings, args, Some(f))?,
                image: Some(match &f.image_file {
                    Some(archive) => ImageInput::Archive(archive.clone()),
                    None => ImageInput::Reference(f.image.clone()),
                }),
                iam_role: args
                    .iam_role
                    .clone()
                    .or(f.iam_role.clone())
                    .unwrap_or_else(|| settings.iam_role.clone()),
                log_retention_days: f.log_retention_days.unwrap_or(settings.log_retention_days),
                deployment_bucket: args
                    .deployment_bucket
                    .clone()
                    .or(f.deployment_bucket.clone()),
                package: package_of(settings, args, Some(f))?,
                fdl: Some(f.clone()),
                preheat: args.preheat || f.preheat.unwrap_or(false),
            })
        })
        .collect()
}

/// The function a command names (`run`, `log`): `-n NAME`, or the function of the
/// definition file `-f` (with several, the one `-n` names), with the file's entry for it.
pub fn named_function(
    name: Option<&str>,
    file: Option<&Path>,
) -> Result<(String, Option<scar_core::fdl::FdlFunction>), Failure> {
    let Some(file) = file else {
        let name = name.ok_or_else(|| Failure::usage("name the function with -n or -f"))?;
        return Ok((name.to_string(), None));
    };
    let mut functions = read_fdl(file)?.functions;
    let index = match name {
        Some(name) => functions
            .iter()
            .position(|f| f.name == name)
            .ok_or_else(|| UsageError::NoSuchFunction {
                file: file.to_path_buf(),
                name: name.to_string(),
            })?,
        None if functions.len() == 1 => 0,
        None => {
            let names: Vec<&str> = functions.iter().map(|f| f.name.as_str()).collect();
            return Err(Failure::usage(format!(
                "{} defines {} functions ({}): name one with -n",
                file.display(),
                names.len(),
                names.join(", ")
            )));
        }
    };
    let function = functions.swap_remove(index);
    Ok((function.name.clone(), Some(function)))
}

/// The functions an FDL file defines (`rm -f`, `ls -f`).
pub fn fdl_functions(file: &Path) -> Result<Vec<scar_core::fdl::FdlFunction>, Failure> {
    Ok(read_fdl(file)?.functions)
}

fn read_fdl(file: &Path) -> Result<scar_core::fdl::Fdl, Failure> {
    let text = std::fs::read_to_string(file).map_err(UsageError::unreadable(file))?;
    let base = file.parent().unwrap_or(Path::new("."));
    scar_core::fdl::Fdl::parse(&text, base).map_err(|e| {
        Failure::from(e).context(format!(
            "{} is not a function definition scar can use",
            file.display()
        ))
    })
}

/// The function `init` creates: the flags, over the definition file's function `fdl` when
/// there is one, over the resolved settings. Not yet validated.
///
/// Inputs and outputs: `-es BUCKET` is `BUCKET/input` in and `BUCKET/output` out (the
/// seed's convention, and SCAR 3's); `-ib` and `-ob` name them as SCAR 4 does; each wins
/// over what the file says.
pub fn function_spec(
    settings: &Settings,
    args: &crate::args::InitArgs,
    fdl: Option<&scar_core::fdl::FdlFunction>,
) -> Result<scar_core::FunctionSpec, Failure> {
    use scar_core::bucket::{BucketPath, INPUT_FOLDER, OUTPUT_FOLDER};
    let mut inputs = fdl.map(|f| f.inputs.clone()).unwrap_or_default();
    let mut outputs = fdl.map(|f| f.outputs.clone()).unwrap_or_default();
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
    let execution_mode = args
        .execution_mode
        .or(fdl.and_then(|f| f.execution_mode))
        .unwrap_or(settings.execution_mode);
    // A Batch mode without a `batch:` block takes scar.cfg's `aws.batch` whole; a block
    // takes from it the network, roles and launch template it leaves out (SCAR keeps them
    // there).
    let mut batch = match fdl.and_then(|f| f.batch.clone()) {
        Some(mut b) => {
            fill_batch(&mut b, &settings.batch);
            Some(b)
        }
        None => execution_mode.uses_batch().then(|| settings.batch.clone()),
    };
    // SCAR's -bm, -bc and -g, over the file's `batch:` block.
    let batch_flags = args.batch_memory.is_some() || args.batch_vcpus.is_some() || args.enable_gpu;
    match &mut batch {
        Some(b) if execution_mode.uses_batch() => {
            b.memory_mb = args.batch_memory.unwrap_or(b.memory_mb);
            b.vcpus = args.batch_vcpus.unwrap_or(b.vcpus);
            b.enable_gpu |= args.enable_gpu;
        }
        _ if batch_flags => {
            return Err(Failure::usage(
                "--batch-memory (-bm), --batch-vcpus (-bc) and --enable-gpu (-g) shape the AWS Batch job: they need --execution-mode batch or lambda-batch (-em)",
            ));
        }
        _ => {}
    }
    // The config file's variables, then the definition's; the flags given beside win.
    let mut environment = settings.environment.clone();
    environment.extend(fdl.map(|f| f.environment.clone()).unwrap_or_default());
    environment.extend(scar_core::spec::parse_container_env_assignments(
        &args.environment,
    )?);
    let mut lambda_environment = settings.lambda_environment.clone();
    lambda_environment.extend(
        fdl.map(|f| f.lambda_environment.clone())
            .unwrap_or_default(),
    );
    lambda_environment.extend(scar_core::spec::parse_env_assignments(
        &args.lambda_environment,
    )?);
    let timeout_s = args
        .time
        .or(fdl.and_then(|f| f.timeout_s))
        .unwrap_or(settings.timeout_s);
    let init_script = args
        .init_script
        .clone()
        .or(fdl.and_then(|f| f.init_script.clone()));
    Ok({
        let mut spec = scar_core::FunctionSpec::new(String::new(), String::new());
        spec.name = args
            .name
            .clone()
            .or(fdl.map(|f| f.name.clone()))
            .unwrap_or_default();
        spec.image = match (&args.image, &args.image_file, fdl) {
            (Some(i), _, _) => i.clone(),
            (None, Some(f), _) => f.display().to_string(),
            (None, None, Some(f)) => match &f.image_file {
                Some(archive) => archive.display().to_string(),
                None => f.image.clone(),
            },
            (None, None, None) => String::new(),
        };
        spec.memory_mb = args
            .memory
            .or(fdl.and_then(|f| f.memory_mb))
            .unwrap_or(settings.memory_mb);
        spec.timeout_s = timeout_s;
        spec.timeout_threshold_s = args
            .timeout_threshold
            .or(fdl.and_then(|f| f.timeout_threshold_s))
            .unwrap_or_else(|| settings.threshold_for(timeout_s));
        spec.description = args
            .description
            .clone()
            .or(fdl.and_then(|f| f.description.clone()))
            .unwrap_or_else(|| settings.description.clone());
        spec.environment = environment;
        spec.lambda_environment = lambda_environment;
        spec.init_script = init_script.as_deref().map(read_script).transpose()?;
        spec.inputs = inputs;
        spec.outputs = outputs;
        spec.storage_providers = fdl.map(|f| f.storage_providers.clone()).unwrap_or_default();
        spec.execution_mode = execution_mode;
        spec.batch = batch;
        spec.runtime_client = (args.runtime_client)
            .or(fdl.and_then(|f| f.runtime_client))
            .unwrap_or_default();
        if let Some(f) = fdl {
            spec.vpc = f.vpc.clone();
            spec.file_systems = f.file_systems.clone();
            spec.reuse_image = f.create_image == Some(false);
        }
        // The file's `ecr.delete_image`, else scar.cfg's `aws.ecr.delete_image`.
        spec.keep_image = !fdl
            .and_then(|f| f.delete_image)
            .unwrap_or(settings.delete_image);
        spec.reserved_concurrency = args.reserved_concurrency;
        // SCAR's `architectures` and `log_level`: flag > file (> scar.cfg's log level).
        spec.architecture = (args.architecture)
            .or(fdl.and_then(|f| f.architecture))
            .unwrap_or_default();
        spec.log_level = (args.log_level)
            .or(fdl.and_then(|f| f.log_level))
            .or(settings.log_level);
        spec.network = (args.network)
            .or(fdl.and_then(|f| f.network))
            .unwrap_or_default();
        spec.api_gateway =
            (args.api_gateway_name.clone()).or_else(|| fdl.and_then(|f| f.api_gateway.clone()));
        spec.extra_payload = (args.extra_payload.clone())
            .or(fdl.and_then(|f| f.extra_payload.clone()))
            .map(|p| p.display().to_string());
        spec
    })
}

/// What a Batch function's definition leaves out of its compute environment, taken from
/// `aws.batch` of the settings.
fn fill_batch(b: &mut scar_core::BatchSpec, d: &scar_core::BatchSpec) {
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

/// Runs a background job of the local provider (see [`scar_local::BackgroundJob`]) with
/// the settings of the environment it was started in (the starting process passes its
/// home, supervisor, region and proot there); its failures are in the logs.
pub async fn run_background(job: scar_local::BackgroundJob) -> scar_core::ExitStatus {
    let explicit = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let ctx = match Context::load(
        Overrides::default(),
        Some("local"),
        explicit("SCAR_SUPERVISOR"),
        explicit("SCAR_PROOT"),
    ) {
        Ok(ctx) => ctx,
        Err(f) => return f.status,
    };
    let provider = match ctx.local_provider() {
        Ok(p) => p,
        Err(f) => return f.status,
    };
    match provider.run_background(job).await {
        Ok(()) => scar_core::ExitStatus::Success,
        Err(e) => Failure::from(e).status,
    }
}
