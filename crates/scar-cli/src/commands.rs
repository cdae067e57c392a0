//! One function per subcommand: turn arguments into provider calls and print the result.

use std::io::Write;

use scar_core::config::Overrides;
use scar_core::event::Payload;
use scar_core::provider::{ImageInput, LogQuery, Provider};
use scar_core::spec::parse_env_assignments;
use scar_core::FunctionSpec;

use crate::args::{Cli, Command, InitArgs, LogArgs, LsArgs, RmArgs, RunArgs};
use crate::output::{print_json, print_table, Bars};
use crate::settings::{read_script, Context};

/// Runs a parsed command line; returns the exit status.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
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
    let ctx = Context::load(overrides, cli.provider.as_deref(), cli.supervisor.clone())?;
    match cli.command {
        Command::Init(args) => init(&ctx, args).await,
        Command::Run(args) => invoke(&ctx, args).await,
        Command::Ls(args) => ls(&ctx, args).await,
        Command::Rm(args) => rm(&ctx, args).await,
        Command::Log(args) => log(&ctx, args).await,
    }
}

async fn init(ctx: &Context, args: InitArgs) -> anyhow::Result<i32> {
    let provider = ctx.local()?;
    let s = &ctx.settings;
    let spec = FunctionSpec {
        name: args.name.clone(),
        image: match (&args.image, &args.image_file) {
            (Some(i), _) => i.clone(),
            (None, Some(f)) => f.display().to_string(),
            (None, None) => String::new(),
        },
        memory_mb: s.memory_mb,
        timeout_s: s.timeout_s,
        timeout_threshold_s: s.timeout_threshold_s,
        description: s.description.clone(),
        environment: parse_env_assignments(&args.environment)?,
        init_script: args.init_script.as_deref().map(read_script).transpose()?,
        input_bucket: None,
    };
    // Validate before any pull: bad input costs nothing.
    spec.validate()?;
    let image = match (args.image, args.image_file) {
        (_, Some(file)) => ImageInput::Archive(file),
        (Some(reference), None) => ImageInput::Reference(reference),
        (None, None) => anyhow::bail!("give an image with -i IMAGE or -if ARCHIVE"),
    };
    let bars = Bars::new(args.json);
    let info = provider.init(spec, &image, &bars).await?;
    if args.json {
        print_json(&info)?;
    } else {
        println!(
            "Function '{}' created from {} ({}).",
            info.spec.name, info.spec.image, info.image_digest
        );
    }
    Ok(0)
}

async fn invoke(ctx: &Context, args: RunArgs) -> anyhow::Result<i32> {
    let provider = ctx.local()?;
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
    let functions = provider.list().await?;
    if args.json {
        print_json(&functions)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = functions
        .iter()
        .map(|f| {
            vec![
                f.spec.name.clone(),
                format!("{} MB", f.spec.memory_mb),
                format!("{} s", f.spec.timeout_s),
                f.package.clone(),
                f.spec.image.clone(),
                f.created.clone(),
            ]
        })
        .collect();
    print_table(
        &["NAME", "MEMORY", "TIMEOUT", "PACKAGE", "IMAGE", "CREATED"],
        &rows,
    )?;
    Ok(0)
}

async fn rm(ctx: &Context, args: RmArgs) -> anyhow::Result<i32> {
    let provider = ctx.local()?;
    let names: Vec<String> = match (args.name, args.all) {
        (Some(name), _) => vec![name],
        (None, _) => provider
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
        stream: args.log_stream_name,
        request_id: args.request_id,
    };
    let lines = provider.logs(&args.name, &query).await?;
    let mut out = std::io::stdout().lock();
    for line in &lines {
        if args.json {
            serde_json::to_writer(&mut out, line)?;
            writeln!(out)?;
        } else {
            writeln!(out, "{}", line.message)?;
        }
    }
    Ok(0)
}
