//! The `aws` provider's commands: the same subcommands as the local provider, on AWS Lambda
//! + S3 + CloudWatch Logs (+ ECR for image packages), through `scar-aws`.
//!
//! What is printed follows the local provider (tables, `--json`, progress on stderr, exit
//! statuses of DESIGN.md §3). Secrets (credentials, the ECR password) are never printed.
//!
//! Testing knob: `SCAR_ECR_REGISTRY=host:port` pushes image packages to that registry
//! instead of the one ECR's authorization token names (for emulators such as moto, whose
//! ECR has no registry behind it).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use scar_aws::{
    AwsConfig, AwsError, AwsProvider, InitRequest, LaunchEvent, LaunchOutcome, LaunchRequest,
    LaunchResult, LaunchSummary, Package, TransferEvent,
};
use scar_core::bucket::BucketPath;
use scar_core::event::{FunctionFile, Payload};
use scar_core::provider::{FunctionInfo, LogQuery, Provider};
use scar_core::spec::parse_env_assignments;
use scar_packager::{BlobCache, ImageSource, ManifestFormat, Progress, ZipOptions};

use crate::args::{
    Cli, Command, GetArgs, InitArgs, LogArgs, LsArgs, PackageKind, PutArgs, RmArgs, RunArgs,
};
use crate::output::{print_json, print_table, write_log_line, Bars};
use crate::settings::{read_script, Context};

/// Environment variable replacing the registry host of ECR's authorization token
/// (`host:port`): a testing and emulator knob.
pub const ECR_REGISTRY_VAR: &str = "SCAR_ECR_REGISTRY";

/// How often `scar log --follow` polls CloudWatch.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(2);

/// Runs a command on AWS.
pub async fn run(ctx: &Context, cli: &Cli) -> anyhow::Result<i32> {
    // Commands that have no AWS form fail before any connection is made.
    match &cli.command {
        Command::Serve(_) => {
            return Err(usage(
                "`scar serve` is for the local provider only: on AWS, S3 invokes a function for every file put into its bucket's input/ folder by itself (use `scar put` or any S3 client); run `scar serve` without --provider aws to watch local buckets",
            ))
        }
        Command::Package(_) => {
            return Err(usage(
                "`scar package` writes a package to a file and needs no AWS account: use `scar package` without --provider aws",
            ))
        }
        _ => {}
    }
    let aws = connect(ctx, cli).await;
    match &cli.command {
        Command::Init(args) => {
            let info = create(ctx, &aws, args).await?;
            if args.json {
                print_json(&info)?;
            }
            Ok(0)
        }
        Command::Run(args) => invoke(&aws, args).await,
        Command::Ls(args) => ls(&aws, args).await,
        Command::Rm(args) => rm(&aws, args).await,
        Command::Log(args) => log(&aws, args).await,
        Command::Put(args) => put(&aws, args).await,
        Command::Get(args) => get(&aws, args).await,
        Command::Serve(_) | Command::Package(_) => unreachable!("handled above"),
    }
}

/// A usage error (exit status 2).
fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(AwsError::Input(msg.into()))
}

/// The provider configuration: the settings (region, role, log retention) plus the
/// profile and endpoint flags. Credentials come from the SDK's standard chain.
pub fn config(ctx: &Context, cli: &Cli) -> AwsConfig {
    let mut config = AwsConfig::from_settings(&ctx.settings);
    config.profile = cli.profile.clone().filter(|p| !p.is_empty());
    config.endpoint_url = cli.endpoint_url.clone().filter(|u| !u.is_empty());
    config
}

async fn connect(ctx: &Context, cli: &Cli) -> AwsProvider {
    AwsProvider::connect(config(ctx, cli)).await
}

/// A temporary file removed on drop.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `init` on AWS: connects, creates the function, says so (unless `--json`: the caller
/// prints the result).
pub async fn init(ctx: &Context, cli: &Cli, args: &InitArgs) -> anyhow::Result<FunctionInfo> {
    let mut config = config(ctx, cli);
    if let Some(days) = args.log_retention_days {
        config.log_retention_days = days;
    }
    let aws = AwsProvider::connect(config).await;
    create(ctx, &aws, args).await
}

/// Removes a function if it exists; false when there was none.
pub async fn remove_if_exists(ctx: &Context, cli: &Cli, name: &str) -> anyhow::Result<bool> {
    let aws = connect(ctx, cli).await;
    match aws.remove(name).await {
        Ok(()) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn create(ctx: &Context, aws: &AwsProvider, args: &InitArgs) -> anyhow::Result<FunctionInfo> {
    let s = &ctx.settings;
    let spec = crate::settings::function_spec(s, args)?;
    // Validate before any pull or push: bad input costs nothing.
    spec.validate()?;
    if let Some(bucket) = &args.deployment_bucket {
        BucketPath::parse(bucket)?;
    }
    if s.iam_role.trim().is_empty() {
        return Err(AwsError::MissingRole {
            function: spec.name.clone(),
        }
        .into());
    }
    match aws.function(&spec.name).await {
        Ok(_) | Err(AwsError::NotScarFunction(_)) => {
            return Err(AwsError::Exists(spec.name.clone()).into())
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    let source = match (&args.image, &args.image_file) {
        (_, Some(file)) => ImageSource::from_archive(file)?,
        (Some(reference), None) => ImageSource::detect(reference)?,
        (None, None) => return Err(usage("give an image with -i IMAGE or -if ARCHIVE")),
    };
    let supervisor = scar_local::find_supervisor(ctx.supervisor.as_deref(), &ctx.home)?;
    let bars = Bars::new(args.json);
    let cache = BlobCache::new(ctx.home.join("cache"));
    let image = scar_packager::pull(&source, &cache, &bars).await?;
    let function = FunctionFile::new(&spec, image.config.clone());
    let kind = args.package.unwrap_or(PackageKind::Image);
    let (package, _zip_file) = match kind {
        PackageKind::Zip => {
            let Some(proot) = ctx.proot() else {
                return Err(usage(
                    "a zip package needs a static proot to enter the image's root on Lambda, which allows no namespaces\nhelp: pass --proot PATH (udocker's static proot works: `udocker install` puts it in ~/.udocker/bin), or use --package image",
                ));
            };
            if !matches!(scar_local::is_static_elf(&proot), Ok(true)) {
                bars.warn(&format!(
                    "{} is not a static executable: on Lambda it runs only if Amazon Linux has what it links to",
                    proot.display()
                ));
            }
            let mut options = ZipOptions::new(&spec.name);
            options.proot = Some(proot);
            let path = std::env::temp_dir().join(format!(
                "scar-{}-{}.zip",
                spec.name.to_lowercase(),
                std::process::id()
            ));
            let zip_file = TempFile(path.clone());
            let report = scar_packager::build_zip_package(
                &image,
                &cache,
                &function,
                &supervisor,
                &path,
                &options,
                &bars,
            )
            .await?;
            for warning in &report.warnings {
                bars.warn(warning);
            }
            if report.needs_deployment_bucket && args.deployment_bucket.is_none() {
                return Err(AwsError::NeedsDeploymentBucket {
                    function: spec.name.clone(),
                    size: report.zip_size,
                }
                .into());
            }
            (Package::Zip { path }, Some(zip_file))
        }
        PackageKind::Image => {
            let pkg =
                scar_packager::build_image_package(&image, &cache, &function, &supervisor, &bars)
                    .await?;
            let repository = scar_aws::ecr_repository_name(&spec.name);
            let login = aws.ecr_login(&repository).await?;
            let registry = match std::env::var(ECR_REGISTRY_VAR) {
                Ok(r) if !r.trim().is_empty() => r.trim().trim_end_matches('/').to_string(),
                _ => login.registry.clone(),
            };
            let repo_uri = if registry == login.registry {
                login.repository_uri.clone()
            } else {
                format!("{registry}/{repository}")
            };
            let reference = format!("{repo_uri}:latest");
            let pushed = scar_packager::push_image(
                &pkg,
                &cache,
                &reference,
                Some((login.username.clone(), login.password.clone())),
                ManifestFormat::Oci,
                &bars,
            )
            .await?;
            // Pinned by digest: the function runs exactly what was pushed.
            let uri = format!("{repo_uri}@{}", pushed.manifest_digest);
            (Package::Image { uri }, None)
        }
    };
    let spec_output = spec.output.clone();
    let info = aws
        .init(InitRequest {
            spec,
            package,
            deployment_bucket: args.deployment_bucket.clone(),
        })
        .await?;
    if !args.json {
        println!(
            "Function '{}' created on AWS Lambda ({}, {}) from {} ({}).",
            info.spec.name,
            aws.region(),
            info.package,
            info.spec.image,
            image.manifest_digest
        );
        if let Some(bucket) = &info.spec.input_bucket {
            let outputs = match &spec_output {
                Some(o) => format!("s3://{}/{}", o.bucket, o.key("")),
                None => format!("s3://{bucket}/output/"),
            };
            println!("Files put into s3://{bucket}/input/ invoke it; outputs go to {outputs}.");
        }
    }
    Ok(info)
}

async fn invoke(aws: &AwsProvider, args: &RunArgs) -> anyhow::Result<i32> {
    if args.only_failed || args.pending {
        return Err(usage(
            "--only-failed and --pending are for the local provider only: on AWS the launcher invokes the function for every file under input/",
        ));
    }
    if let Some(bucket) = &args.event_source {
        return launch(aws, args, bucket).await;
    }
    let payload = Payload {
        script: args.script.as_deref().map(read_script).transpose()?,
        cmd_args: (!args.args.is_empty()).then(|| args.args.clone()),
        env: parse_env_assignments(&args.environment)?,
    };
    if args.run_async {
        let request_id = aws.invoke_async(&args.name, &payload).await?;
        if args.json {
            print_json(&serde_json::json!({"function": args.name, "request_id": request_id}))?;
        } else {
            println!(
                "Invocation {request_id} queued: `scar --provider aws log -n {} -ri {request_id}` shows it once it ran.",
                args.name
            );
        }
        return Ok(0);
    }
    let invocation = aws.invoke_detailed(&args.name, &payload).await?;
    let response = &invocation.response;
    let status = if response.succeeded() { 0 } else { 1 };
    if args.json {
        print_json(response)?;
        return Ok(status);
    }
    let mut out = std::io::stdout().lock();
    out.write_all(&response.output_bytes())?;
    out.flush()?;
    if args.verbose {
        eprintln!(
            "request id: {}\nlog stream: {} {}",
            response.request_id, response.log_group, response.log_stream
        );
        if let Some(tail) = invocation.log_tail.as_deref().filter(|t| !t.is_empty()) {
            eprintln!("log tail:\n{}", tail.trim_end());
        }
    }
    if response.timed_out {
        eprintln!(
            "error: the function timed out (request id {}): raise -t or lower the work",
            response.request_id
        );
    } else if let Some(code) = response.exit_code.filter(|c| *c != 0) {
        eprintln!(
            "error: the function exited with status {code} (request id {})",
            response.request_id
        );
    } else if response.exit_code.is_none() {
        eprintln!(
            "error: the function's script did not run to an exit status (request id {}): `scar --provider aws log -n {} -ri {}` shows why",
            response.request_id, args.name, response.request_id
        );
    }
    Ok(status)
}

/// The launcher's progress bar on stderr.
struct AwsLaunchBar {
    bar: Option<ProgressBar>,
    counts: Mutex<(u64, u64)>,
}

impl AwsLaunchBar {
    fn new(quiet: bool) -> AwsLaunchBar {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            ProgressBar::new(0).with_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} files {msg} {per_sec} {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            )
        });
        AwsLaunchBar {
            bar,
            counts: Mutex::new((0, 0)),
        }
    }

    fn event(&self, event: LaunchEvent) {
        let Some(bar) = &self.bar else { return };
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            LaunchEvent::Listed { objects } => bar.set_length(objects as u64),
            LaunchEvent::Warming { key } => {
                bar.set_message(format!("(warming up on {})", short_name(&key)));
                return;
            }
            LaunchEvent::Throttled { .. } => c.1 += 1,
            LaunchEvent::Done { ok, .. } => {
                c.0 += u64::from(!ok);
                bar.inc(1);
            }
        }
        bar.set_message(format!("({} failed, {} throttled)", c.0, c.1));
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

async fn launch(aws: &AwsProvider, args: &RunArgs, bucket: &str) -> anyhow::Result<i32> {
    let at = BucketPath::parse(bucket)?;
    let info = aws.function(&args.name).await?;
    if let Some(own) = &info.spec.input_bucket {
        if *own != at.bucket {
            return Err(usage(format!(
                "function '{}' reads bucket {own}, not {}: run it with -es {own}",
                args.name, at.bucket
            )));
        }
    }
    let mut request = LaunchRequest::new(&args.name, &at.bucket);
    if let Some(c) = args.concurrency.filter(|c| *c > 0) {
        request.concurrency = c;
    }
    let bar = AwsLaunchBar::new(args.json);
    let results = aws.launch(&request, &|e| bar.event(e)).await;
    bar.finish();
    let results = results?;
    report_launch(&args.name, &results, args.json)
}

fn launch_json(r: &LaunchResult) -> serde_json::Value {
    let mut v = serde_json::json!({"key": r.key, "attempts": r.attempts, "ok": r.ok()});
    match &r.outcome {
        LaunchOutcome::Completed(inv) => {
            v["outcome"] = "completed".into();
            v["request_id"] = inv.response.request_id.clone().into();
            v["response"] = serde_json::to_value(&inv.response).unwrap_or_default();
        }
        LaunchOutcome::Queued { request_id } => {
            v["outcome"] = "queued".into();
            v["request_id"] = request_id.clone().into();
        }
        LaunchOutcome::Failed(e) => {
            v["outcome"] = "failed".into();
            v["error"] = e.to_string().into();
        }
    }
    v
}

/// Prints the launcher's results: failures in full, then a summary; 1 when any failed.
fn report_launch(function: &str, results: &[LaunchResult], json: bool) -> anyhow::Result<i32> {
    let summary = LaunchSummary::of(results);
    let any_failed = results.iter().any(|r| !r.ok());
    if json {
        let list: Vec<_> = results.iter().map(launch_json).collect();
        print_json(&list)?;
        return Ok(i32::from(any_failed));
    }
    for r in results {
        match &r.outcome {
            LaunchOutcome::Completed(inv) if r.ok() => {
                println!("ok     {} (request {})", r.key, inv.response.request_id)
            }
            LaunchOutcome::Failed(e) => println!("FAILED {} (error: {e})", r.key),
            LaunchOutcome::Completed(inv) => {
                let resp = &inv.response;
                let how = match resp.exit_code {
                    _ if resp.timed_out => "timed out".to_string(),
                    Some(code) => format!("exit status {code}"),
                    None => "failed".to_string(),
                };
                println!("FAILED {} ({how}, request {})", r.key, resp.request_id);
                let output = String::from_utf8_lossy(&resp.output_bytes()).into_owned();
                let lines: Vec<&str> = output.lines().collect();
                for line in &lines[lines.len().saturating_sub(20)..] {
                    println!("    {line}");
                }
            }
            LaunchOutcome::Queued { .. } => {}
        }
    }
    println!(
        "{} files: {} queued, {} run at once ({} failed), {} could not be invoked; {} retries after throttling",
        summary.objects,
        summary.queued,
        summary.completed,
        summary.function_failures,
        summary.failed,
        summary.retries
    );
    if summary.queued > 0 {
        println!(
            "Queued invocations run on Lambda now; `scar --provider aws log -n {function} --follow` shows them."
        );
    }
    Ok(i32::from(any_failed))
}

async fn ls(aws: &AwsProvider, args: &LsArgs) -> anyhow::Result<i32> {
    if let Some(bucket) = &args.bucket {
        return ls_bucket(aws, bucket, args.json).await;
    }
    let functions = aws.list().await?;
    crate::output::print_functions(&functions, args.json)?;
    Ok(0)
}

/// The S3 prefix of a bucket path: `folder/`, or empty for the whole bucket.
fn prefix(at: &BucketPath) -> String {
    if at.folder.is_empty() {
        String::new()
    } else {
        format!("{}/", at.folder)
    }
}

async fn ls_bucket(aws: &AwsProvider, bucket: &str, json: bool) -> anyhow::Result<i32> {
    let at = BucketPath::parse(bucket)?;
    let objects = aws.list_inputs(&at.bucket, &prefix(&at)).await?;
    if json {
        let list: Vec<_> = objects
            .iter()
            .map(|o| {
                serde_json::json!({
                    "bucket": at.bucket,
                    "key": o.key,
                    "size": o.size,
                    "etag": o.etag,
                    "modified": o.last_modified.clone().unwrap_or_default(),
                })
            })
            .collect();
        print_json(&list)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = objects
        .iter()
        .map(|o| {
            vec![
                o.key.clone(),
                o.size.to_string(),
                o.last_modified.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["KEY", "SIZE", "MODIFIED"], &rows)?;
    Ok(0)
}

async fn rm(aws: &AwsProvider, args: &RmArgs) -> anyhow::Result<i32> {
    let names = match &args.name {
        Some(name) => {
            aws.remove(name).await?;
            vec![name.clone()]
        }
        None if args.all => aws.remove_all().await?,
        // `rm -f` is handled before the provider is chosen; nothing else gets here.
        None => {
            return Err(usage(
                "say which functions to remove: -n NAME, -f FILE or -a",
            ))
        }
    };
    if args.json {
        print_json(&serde_json::json!({ "removed": names }))?;
    } else {
        for name in &names {
            println!("Function '{name}' removed.");
        }
        if names.is_empty() {
            println!("No scar functions in {}.", aws.region());
        }
    }
    Ok(0)
}

async fn log(aws: &AwsProvider, args: &LogArgs) -> anyhow::Result<i32> {
    if args.follow {
        if args.request_id.is_some() {
            return Err(usage(
                "--follow prints every new line and cannot be combined with -ri: give one or the other",
            ));
        }
        return follow(aws, args).await;
    }
    let query = LogQuery {
        stream: args.log_stream_name.clone(),
        request_id: args.request_id.clone(),
    };
    let lines = aws.read_logs(&args.name, &query).await?;
    crate::commands::no_lines_for_request(args, &lines)?;
    let mut out = std::io::stdout().lock();
    for line in &lines {
        write_log_line(&mut out, line, args.json)?;
    }
    Ok(0)
}

/// `scar log --follow`: prints new lines until Ctrl-C (or until stdout closes).
async fn follow(aws: &AwsProvider, args: &LogArgs) -> anyhow::Result<i32> {
    let json = args.json;
    let mut broken: Option<std::io::Error> = None;
    let mut on_line = |line: scar_core::provider::LogLine| -> bool {
        let mut out = std::io::stdout().lock();
        match write_log_line(&mut out, &line, json).and_then(|()| out.flush()) {
            Ok(()) => true,
            Err(e) => {
                broken = Some(e);
                false
            }
        }
    };
    let following = aws.follow_logs(
        &args.name,
        args.log_stream_name.as_deref(),
        FOLLOW_INTERVAL,
        &mut on_line,
    );
    tokio::select! {
        r = following => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    match broken {
        Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(0),
    }
}

/// Bytes transferred, over all files, on stderr.
struct TransferBar {
    bar: Option<ProgressBar>,
    done: Mutex<HashMap<String, u64>>,
    grow: bool,
}

impl TransferBar {
    /// `total`: the bytes to transfer when known (put); else the bar grows as files start.
    fn new(quiet: bool, total: Option<u64>) -> TransferBar {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            ProgressBar::new(total.unwrap_or(0)).with_style(
                ProgressStyle::with_template(
                    "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            )
        });
        TransferBar {
            bar,
            done: Mutex::new(HashMap::new()),
            grow: total.is_none(),
        }
    }

    fn event(&self, event: TransferEvent) {
        let Some(bar) = &self.bar else { return };
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        let (key, now) = match event {
            TransferEvent::Started { key, size } => {
                if self.grow {
                    bar.inc_length(size);
                }
                bar.set_message(short_name(&key));
                (key, 0)
            }
            TransferEvent::Progress { key, done, .. } => (key, done),
            TransferEvent::Finished { key, size } => (key, size),
        };
        let before = done.entry(key).or_insert(0);
        if now > *before {
            bar.inc(now - *before);
            *before = now;
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn short_name(key: &str) -> String {
    let name = key.rsplit('/').next().unwrap_or(key);
    let chars: Vec<char> = name.chars().collect();
    if chars.len() > 24 {
        format!("…{}", chars[chars.len() - 23..].iter().collect::<String>())
    } else {
        name.to_string()
    }
}

/// The files `scar put` stores: a file under its name, or a directory's files
/// recursively under their relative paths, in key order.
fn files_to_put(path: &Path) -> anyhow::Result<Vec<(PathBuf, String, u64)>> {
    let unreadable = |p: &Path, e: std::io::Error| {
        anyhow::Error::new(crate::settings::InputFile(p.to_path_buf(), e))
    };
    let meta = std::fs::metadata(path).map_err(|e| unreadable(path, e))?;
    let mut files = Vec::new();
    if meta.is_dir() {
        let mut stack = vec![path.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).map_err(|e| unreadable(&dir, e))? {
                let entry = entry.map_err(|e| unreadable(&dir, e))?;
                let p = entry.path();
                let meta = std::fs::metadata(&p).map_err(|e| unreadable(&p, e))?;
                if meta.is_dir() {
                    stack.push(p);
                } else if meta.is_file() {
                    let rel = p
                        .strip_prefix(path)
                        .unwrap_or(&p)
                        .to_string_lossy()
                        .into_owned();
                    files.push((p, rel, meta.len()));
                }
            }
        }
        files.sort_by(|a, b| a.1.cmp(&b.1));
    } else {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push((path.to_path_buf(), name, meta.len()));
    }
    Ok(files)
}

async fn put(aws: &AwsProvider, args: &PutArgs) -> anyhow::Result<i32> {
    let at = BucketPath::parse(&args.bucket)?;
    let files = files_to_put(&args.path)?;
    let total = files.iter().map(|f| f.2).sum();
    let bar = TransferBar::new(args.json, Some(total));
    let mut stored = Vec::new();
    for (path, rel, _) in &files {
        let key = at.key(rel);
        let result = aws.put(&at.bucket, &key, path, &|e| bar.event(e)).await;
        match result {
            Ok(size) => {
                stored.push(serde_json::json!({"bucket": at.bucket, "key": key, "size": size}))
            }
            Err(e) => {
                bar.finish();
                return Err(e.into());
            }
        }
    }
    bar.finish();
    let inputs = stored
        .iter()
        .filter(|o| {
            o["key"]
                .as_str()
                .is_some_and(|k| k.starts_with(scar_aws::INPUT_FOLDER))
        })
        .count();
    if args.json {
        print_json(&stored)?;
    } else {
        println!("{} files stored in s3://{at}.", stored.len());
        if inputs > 0 {
            println!(
                "S3 invokes the bucket's function for each of the {inputs} files in input/ (`scar --provider aws log -n NAME --follow` to watch; outputs land in s3://{}/output/).",
                at.bucket
            );
        }
    }
    Ok(0)
}

async fn get(aws: &AwsProvider, args: &GetArgs) -> anyhow::Result<i32> {
    let at = BucketPath::parse(&args.bucket)?;
    let bar = TransferBar::new(args.json, None);
    let mut files = aws
        .get(&at.bucket, &prefix(&at), &args.path, &|e| bar.event(e))
        .await;
    // `-b bucket/folder/file.txt`: one object, not a folder.
    if matches!(&files, Ok(f) if f.is_empty()) && !at.folder.is_empty() {
        files = aws
            .get(&at.bucket, &at.folder, &args.path, &|e| bar.event(e))
            .await;
    }
    bar.finish();
    let files = files?;
    if args.json {
        print_json(&files)?;
    } else {
        println!(
            "{} files copied from s3://{at} to {}.",
            files.len(),
            args.path.display()
        );
    }
    Ok(0)
}
