//! One function per subcommand: turn arguments into provider calls and print the result.

use std::io::Write;

use scar_core::config::Overrides;
use scar_core::event::Payload;
use scar_core::provider::{ImageInput, LogQuery, Provider};
use scar_core::spec::parse_env_assignments;

use scar_core::bucket::BucketPath;
use scar_local::{FileResult, LaunchOptions, LocalProvider, Outcome, ServeEvent};

use crate::args::{
    Cli, Command, GetArgs, InitArgs, LogArgs, LsArgs, PutArgs, RmArgs, RunArgs, ServeArgs,
};
use crate::output::{print_json, print_table, write_log_line, Bars, LaunchBar};
use crate::settings::{read_script, Context};

/// Runs a parsed command line; returns the exit status.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    if let Command::Init(args) = &cli.command {
        return init_all(&cli, args).await;
    }
    // clap makes -n, -a and -f exclusive, and one of them required.
    if let Command::Rm(
        args @ RmArgs {
            file: Some(file), ..
        },
    ) = &cli.command
    {
        return rm_file(&cli, args, file).await;
    }
    let ctx = context(&cli)?;
    if ctx.settings.provider == scar_core::config::ProviderKind::Aws {
        return crate::aws::run(&ctx, &cli).await;
    }
    match cli.command {
        Command::Init(_) => dispatched_early(),
        Command::Run(args) => invoke(&ctx, args).await,
        Command::Ls(args) => ls(&ctx, args).await,
        Command::Rm(args) => rm(&ctx, args).await,
        Command::Log(args) => log(&ctx, args).await,
        Command::Put(args) => put(&ctx, args).await,
        Command::Get(args) => get(&ctx, args).await,
        Command::Serve(args) => serve(&ctx, args).await,
        Command::Package(args) => package(&ctx, args).await,
    }
}

/// For the arms [`run`] has already handled before choosing the provider.
fn dispatched_early() -> anyhow::Result<i32> {
    anyhow::bail!("internal error: this command is handled before the provider is chosen")
}

/// The settings for one command line: its flags over the environment and the config.
fn context(cli: &Cli) -> anyhow::Result<Context> {
    let overrides = match &cli.command {
        Command::Init(a) => Overrides {
            memory_mb: a.memory,
            timeout_s: a.time,
            timeout_threshold_s: a.timeout_threshold,
            description: a.description.clone(),
            ..Overrides::default()
        },
        _ => Overrides::default(),
    };
    let overrides = Overrides {
        region: cli.region.clone(),
        iam_role: match &cli.command {
            Command::Init(a) => a.iam_role.clone(),
            _ => None,
        },
        ..overrides
    };
    Context::load(
        overrides,
        cli.provider.as_deref(),
        cli.supervisor.clone(),
        cli.proot.clone(),
    )
}

/// `init`: one function, or every function of an FDL file (`-f`), each with its own
/// settings; `--json` prints the created function, or a list for `-f`.
async fn init_all(cli: &Cli, args: &InitArgs) -> anyhow::Result<i32> {
    let each = match &args.file {
        Some(file) => crate::settings::expand_fdl(args, file)?,
        None => vec![args.clone()],
    };
    let mut created = Vec::new();
    for one in each {
        let single = Cli {
            command: Command::Init(one.clone()),
            ..cli.clone()
        };
        let ctx = context(&single)?;
        let info = if ctx.settings.provider == scar_core::config::ProviderKind::Aws {
            crate::aws::init(&ctx, &single, &one).await?
        } else {
            init(&ctx, one).await?
        };
        created.push(info);
    }
    if args.json {
        if args.file.is_some() {
            print_json(&created)?;
        } else if let Some(info) = created.first() {
            print_json(info)?;
        }
    }
    Ok(0)
}

/// `rm -f FILE`: removes the functions the file defines (those that exist).
async fn rm_file(cli: &Cli, args: &RmArgs, file: &std::path::Path) -> anyhow::Result<i32> {
    let names = crate::settings::fdl_names(file)?;
    let mut removed = Vec::new();
    for name in names {
        let single = Cli {
            command: Command::Rm(RmArgs {
                name: Some(name.clone()),
                all: false,
                file: None,
                json: true,
            }),
            ..cli.clone()
        };
        let ctx = context(&single)?;
        let exists = if ctx.settings.provider == scar_core::config::ProviderKind::Aws {
            crate::aws::remove_if_exists(&ctx, &single, &name).await?
        } else {
            remove_if_exists(&ctx, &name).await?
        };
        if exists {
            removed.push(name.clone());
        }
        if !args.json {
            if exists {
                println!("Function '{name}' removed.");
            } else {
                println!("Function '{name}' does not exist: nothing to remove.");
            }
        }
    }
    if args.json {
        print_json(&serde_json::json!({ "removed": removed }))?;
    }
    Ok(0)
}

async fn remove_if_exists(ctx: &Context, name: &str) -> anyhow::Result<bool> {
    let provider = ctx.local()?;
    match provider.remove(name).await {
        Ok(()) => Ok(true),
        Err(scar_local::LocalError::NotFound(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The concurrency bound: the flag, else the config, else the number of cores.
fn concurrency(ctx: &Context, flag: Option<usize>) -> usize {
    flag.filter(|c| *c > 0)
        .or_else(|| (ctx.settings.concurrency > 0).then_some(ctx.settings.concurrency as usize))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

async fn init(ctx: &Context, args: InitArgs) -> anyhow::Result<scar_core::provider::FunctionInfo> {
    let provider = ctx.local()?.with_strict_extraction(args.strict);
    let spec = crate::settings::function_spec(&ctx.settings, &args)?;
    // Validate before any pull: bad input costs nothing.
    spec.validate()?;
    let image = match (args.image, args.image_file) {
        (_, Some(file)) => ImageInput::Archive(file),
        (Some(reference), None) => ImageInput::Reference(reference),
        (None, None) => anyhow::bail!("give an image with -i IMAGE or -if ARCHIVE"),
    };
    let bars = Bars::new(args.json).with_notes(args.verbose);
    let info = provider
        .init(spec, &image, args.package.map(package_kind), &bars)
        .await?;
    if !args.json {
        println!(
            "Function '{}' created from {} ({}).",
            info.spec.name, info.spec.image, info.image_digest
        );
    }
    Ok(info)
}

async fn invoke(ctx: &Context, args: RunArgs) -> anyhow::Result<i32> {
    let provider = ctx.local()?;
    if let Some(bucket) = &args.event_source {
        let result = launch(ctx, &provider, &args, bucket).await;
        provider.shutdown().await;
        return result;
    }
    let payload = Payload {
        script: args.script.as_deref().map(read_script).transpose()?,
        cmd_args: (!args.args.is_empty()).then_some(args.args),
        env: parse_env_assignments(&args.environment)?,
    };
    let result = provider.invoke(&args.name, &payload).await;
    provider.shutdown().await;
    let response = result?;
    let status = if response.succeeded() { 0 } else { 1 };
    if args.json {
        print_json(&response)?;
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
    }
    Ok(status)
}

async fn ls(ctx: &Context, args: LsArgs) -> anyhow::Result<i32> {
    let provider = ctx.local()?;
    if let Some(bucket) = &args.bucket {
        return ls_bucket(&provider, bucket, args.json).await;
    }
    let functions = provider.list().await?;
    crate::output::print_functions(&functions, args.json)?;
    Ok(0)
}

async fn rm(ctx: &Context, args: RmArgs) -> anyhow::Result<i32> {
    let provider = ctx.local()?;
    let names: Vec<String> = match (args.name, args.all) {
        (Some(name), _) => vec![name],
        (None, false) => return dispatched_early(),
        (None, true) => provider
            .list()
            .await?
            .into_iter()
            .map(|f| f.spec.name)
            .collect(),
    };
    for name in &names {
        provider.remove(name).await?;
        if !args.json {
            println!("Function '{name}' removed.");
        }
    }
    if args.json {
        print_json(&serde_json::json!({ "removed": names }))?;
    }
    Ok(0)
}

async fn log(ctx: &Context, args: LogArgs) -> anyhow::Result<i32> {
    let provider = ctx.local()?;
    let query = LogQuery {
        stream: args.log_stream_name.clone(),
        request_id: args.request_id.clone(),
    };
    let lines = provider.logs(&args.name, &query).await?;
    no_lines_for_request(&args, &lines)?;
    let mut out = std::io::stdout().lock();
    for line in &lines {
        write_log_line(&mut out, line, args.json)?;
    }
    Ok(0)
}

/// `log -ri ID` that found nothing is an error (exit 2), not an empty success.
pub(crate) fn no_lines_for_request(
    args: &LogArgs,
    lines: &[scar_core::provider::LogLine],
) -> Result<(), scar_core::provider::NoLogLines> {
    match &args.request_id {
        Some(id) if lines.is_empty() => Err(scar_core::provider::NoLogLines {
            function: args.name.clone(),
            request_id: id.clone(),
        }),
        _ => Ok(()),
    }
}

async fn launch(
    ctx: &Context,
    provider: &LocalProvider,
    args: &RunArgs,
    bucket: &str,
) -> anyhow::Result<i32> {
    let wanted = BucketPath::parse(bucket)?.bucket;
    let bound = provider.function_for_bucket(&wanted)?;
    if bound.as_deref() != Some(args.name.as_str()) {
        anyhow::bail!(scar_local::LocalError::WrongBucket {
            function: args.name.clone(),
            bucket: wanted,
        });
    }
    let options = LaunchOptions {
        concurrency: concurrency(ctx, args.concurrency),
        only_failed: args.only_failed,
        pending_only: args.pending,
    };
    let bar = LaunchBar::new(args.json);
    let results = provider
        .launch(&args.name, &options, &|e| bar.event(e))
        .await?;
    bar.finish();
    report_results(&results, args.json)
}

/// Prints per-file results (failed ones in full) and a summary; 1 when any failed.
fn report_results(results: &[FileResult], json: bool) -> anyhow::Result<i32> {
    let failed = results
        .iter()
        .filter(|r| r.outcome != Outcome::Succeeded)
        .count();
    if json {
        print_json(&results)?;
    } else {
        // One line per file, in the order they finished; failures with their output.
        for r in results {
            let how = match (r.outcome, r.exit_code, &r.error) {
                (Outcome::Succeeded, _, _) => match r.uploaded.len() {
                    1 => "1 output".to_string(),
                    n => format!("{n} outputs"),
                },
                (_, _, Some(e)) => format!("error: {e}"),
                (Outcome::TimedOut, _, _) => "timed out".to_string(),
                (_, Some(code), _) => format!("exit status {code}"),
                _ => "failed".to_string(),
            };
            let status = if r.outcome == Outcome::Succeeded {
                "ok"
            } else {
                "FAILED"
            };
            println!("{status:<6} {} ({how}, request {})", r.key, r.request_id);
            if r.outcome != Outcome::Succeeded {
                for line in r.output_tail.lines() {
                    println!("    {line}");
                }
            }
        }
        let timed_out = results
            .iter()
            .filter(|r| r.outcome == Outcome::TimedOut)
            .count();
        println!(
            "{} files: {} succeeded, {} failed, {} timed out; {} outputs uploaded",
            results.len(),
            results.len() - failed,
            failed - timed_out,
            timed_out,
            results.iter().map(|r| r.uploaded.len()).sum::<usize>()
        );
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

async fn put(ctx: &Context, args: PutArgs) -> anyhow::Result<i32> {
    let provider = ctx.local()?;
    let at = BucketPath::parse(&args.bucket)?;
    let stored = provider.buckets().put(&at, &args.path)?;
    let Some((function, inputs)) = provider.triggered_by(&at.bucket, &stored)? else {
        if args.json {
            print_json(&stored)?;
        } else {
            println!("{} files stored in {at}.", stored.len());
        }
        return Ok(0);
    };
    if args.run_async {
        // A background launcher runs what is pending, unless `scar serve` already does.
        let exe = std::env::current_exe()?;
        let spawned = std::process::Command::new(exe)
            .args([
                "run",
                "-n",
                &function,
                "--event-source",
                &at.bucket,
                "--pending",
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if args.json {
            print_json(
                &serde_json::json!({"stored": stored, "function": function, "async": true}),
            )?;
        } else {
            println!(
                "{} files stored in {at}; function '{function}' runs for {} of them in the background (`scar log -n {function}`).",
                stored.len(),
                inputs.len()
            );
        }
        spawned?;
        return Ok(0);
    }
    let bar = LaunchBar::new(args.json);
    let results = match provider
        .process_objects(
            &function,
            inputs.clone(),
            concurrency(ctx, args.concurrency),
            &|e| bar.event(e),
        )
        .await
    {
        Err(scar_local::LocalError::Busy(_)) => {
            // `scar serve` is processing this bucket: wait for its results.
            provider
                .wait_for(
                    &function,
                    &inputs,
                    std::time::Duration::from_secs(24 * 3600),
                    &|e| bar.event(e),
                )
                .await?
        }
        other => other?,
    };
    provider.shutdown().await;
    bar.finish();
    report_results(&results, args.json)
}

async fn get(ctx: &Context, args: GetArgs) -> anyhow::Result<i32> {
    let provider = ctx.local()?;
    let at = BucketPath::parse(&args.bucket)?;
    let files = provider.buckets().get(&at, &args.path)?;
    if args.json {
        print_json(&files)?;
    } else {
        println!(
            "{} files copied from {at} to {}.",
            files.len(),
            args.path.display()
        );
    }
    Ok(0)
}

async fn ls_bucket(provider: &LocalProvider, bucket: &str, json: bool) -> anyhow::Result<i32> {
    let at = BucketPath::parse(bucket)?;
    let objects = provider.buckets().list(&at)?;
    if json {
        print_json(&objects)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = objects
        .iter()
        .map(|o| vec![o.key.clone(), o.size.to_string(), o.modified.clone()])
        .collect();
    print_table(&["KEY", "SIZE", "MODIFIED"], &rows)?;
    Ok(0)
}

async fn serve(ctx: &Context, args: ServeArgs) -> anyhow::Result<i32> {
    let provider = ctx.local()?;
    let json = args.json;
    let on_event = move |e: &ServeEvent| match e {
        ServeEvent::Watching { function, bucket } if !json => {
            eprintln!("watching {bucket}/input/ for function '{function}'");
        }
        ServeEvent::Finished { function, result } => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"function": function, "result": result})
                );
            } else {
                let status = match result.outcome {
                    Outcome::Succeeded => "ok",
                    Outcome::Failed => "FAILED",
                    Outcome::TimedOut => "TIMED OUT",
                };
                println!(
                    "{status} {function} {} ({} outputs)",
                    result.key,
                    result.uploaded.len()
                );
            }
        }
        _ => {}
    };
    let stop = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    provider
        .serve(concurrency(ctx, args.concurrency), &on_event, stop)
        .await?;
    Ok(0)
}

fn package_kind(kind: crate::args::PackageKind) -> scar_local::PackageKind {
    match kind {
        crate::args::PackageKind::Image => scar_local::PackageKind::Image,
        crate::args::PackageKind::Zip => scar_local::PackageKind::Zip,
    }
}

async fn package(ctx: &Context, args: crate::args::PackageArgs) -> anyhow::Result<i32> {
    let provider = ctx.local()?;
    let bars = Bars::new(args.json);
    let report = provider
        .package(&args.name, package_kind(args.package), &args.output, &bars)
        .await?;
    if args.json {
        print_json(&report)?;
        return Ok(0);
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "{} package of '{}' written to {} ({:.1} MB).",
        report.package,
        args.name,
        report.path.display(),
        report.size as f64 / 1e6
    );
    if let Some(digest) = &report.digest {
        println!("manifest digest: {digest}");
    }
    if report.needs_deployment_bucket == Some(true) {
        println!("over 50 MB: on AWS it must be deployed through a bucket (-db BUCKET)");
    }
    if report.includes_root == Some(false) {
        println!("the root does not fit under 250 MB: it is built from the layers at cold start");
    }
    Ok(0)
}
