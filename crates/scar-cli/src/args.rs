//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use scar_core::provider::PackageKind;
use scar_core::{LambdaRuntime, RuntimeClient};

/// The help heading of the options every command takes.
const GLOBAL: &str = "Global options";
/// Help headings of `init`'s and `run`'s options.
const FUNCTION: &str = "The function";
const IMAGE: &str = "Its image";
const EVENTS: &str = "Events and storage";
const AWS: &str = "AWS";
const INVOCATION: &str = "The invocation";
const OUTPUT: &str = "Output";

/// Run container images as serverless functions, on this machine or on AWS Lambda.
#[derive(Debug, Clone, Parser)]
#[command(name = "scar", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Where functions run: `local` (default) or `aws`.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub provider: Option<String>,
    /// The static supervisor (`bootstrap`) to run functions with.
    #[arg(long, global = true, help_heading = GLOBAL, env = "SCAR_SUPERVISOR", hide_env_values = true)]
    pub supervisor: Option<PathBuf>,
    /// The static proot that zip packages carry, so that they enter the image's root on
    /// Lambda (default: `$SCAR_HOME/bin/proot`, else udocker's `~/.udocker/bin/proot-<arch>`).
    #[arg(long, global = true, help_heading = GLOBAL, env = "SCAR_PROOT", hide_env_values = true)]
    pub proot: Option<PathBuf>,
    /// AWS: the credentials profile (else `AWS_PROFILE`, else `aws.lambda.boto_profile` in the config).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub profile: Option<String>,
    /// AWS: the region (else `AWS_REGION`, else `aws.lambda.region` in the config).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub region: Option<String>,
    /// AWS: one endpoint for every service, for S3-compatible stores and emulators.
    #[arg(long, global = true, help_heading = GLOBAL, env = "SCAR_ENDPOINT_URL", hide_env_values = true)]
    pub endpoint_url: Option<String>,
}

/// `--package`: scar-core's [`PackageKind`], each value with its help.
fn package_kinds() -> impl clap::builder::TypedValueParser<Value = PackageKind> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new([
        PossibleValue::new("image").help("The image plus a supervisor layer (AWS default)"),
        PossibleValue::new("zip")
            .help("`bootstrap` plus a udocker tree, under Lambda's 250 MB (SCAR's format)"),
    ])
    .try_map(|s| s.parse::<PackageKind>())
}

/// `--runtime-client`: scar-core's [`RuntimeClient`], each value with its help.
fn runtime_clients() -> impl clap::builder::TypedValueParser<Value = RuntimeClient> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new([
        PossibleValue::new("scar")
            .help("scar's supervisor: scripts, arguments, the image's command (default)"),
        PossibleValue::new("image").help(
            "the image's own ENTRYPOINT + CMD, a Lambda Runtime API client (a Lambda container image), run as Lambda runs it",
        ),
    ])
    .try_map(|s| s.parse::<RuntimeClient>())
}

/// `--runtime` (`-rt`): SCAR's Lambda runtime, `image` or `python3.x`; scar's earlier
/// `--runtime scar` is refused with the flag it became.
fn parse_lambda_runtime(s: &str) -> Result<LambdaRuntime, String> {
    s.parse()
}

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Create a function from a container image.
    Init(InitArgs),
    /// Invoke a function and print its output.
    Run(RunArgs),
    /// List functions.
    Ls(LsArgs),
    /// Remove functions.
    Rm(RmArgs),
    /// Show a function's logs.
    Log(LogArgs),
    /// Store files in a bucket; files put into a function's input folder invoke it.
    Put(PutArgs),
    /// Copy files out of a bucket.
    Get(GetArgs),
    /// Call a function through its HTTP endpoint (its API Gateway; locally, `scar serve`'s
    /// route), as a client would: a file or JSON in, what it answers out.
    Invoke(InvokeArgs),
    /// Watch every function's input folder and invoke it for each file that lands there,
    /// and serve the Lambda Invoke API (`aws lambda invoke --endpoint-url`) and a
    /// dashboard (`/`, JSON under `/api/`).
    Serve(ServeArgs),
    /// Write a function's deployment package to a file (an OCI archive, or the zip).
    Package(PackageArgs),
    /// Per function: files waiting, running, done, failed, timed out and loop-stopped, and
    /// invocation duration percentiles (on aws: the last 24 h of REPORT lines and the
    /// objects in its folders; `-` for counts AWS does not keep).
    Stats(StatsArgs),
}

#[derive(Debug, Clone, Args)]
pub struct StatsArgs {
    /// Only this function.
    #[arg(short = 'n', long)]
    pub name: Option<String>,
    /// Print JSON.
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PackageArgs {
    /// The function.
    #[arg(short = 'n', long)]
    pub name: String,
    /// The package kind.
    #[arg(long, value_parser = package_kinds(), default_value = "image")]
    pub package: PackageKind,
    /// Where to write it.
    #[arg(short = 'o', long)]
    pub output: PathBuf,
    /// Print JSON.
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// The function's name (letters, digits, '-' and '_'; at most 64). With `-f`: only
    /// this function of the file.
    #[arg(short = 'n', long, required_unless_present = "file", help_heading = FUNCTION)]
    pub name: Option<String>,
    /// A SCAR function definition file (YAML): creates every function it defines; flags
    /// given beside it win over its values.
    #[arg(short = 'f', long = "file", visible_alias = "conf-file", value_name = "FDL", conflicts_with_all = ["image", "image_file"], help_heading = FUNCTION)]
    pub file: Option<PathBuf>,
    /// Memory in MB (128..=10240).
    #[arg(short = 'm', long, help_heading = FUNCTION)]
    pub memory: Option<u32>,
    /// Timeout in seconds (1..=900).
    #[arg(short = 't', long = "time", visible_alias = "timeout", help_heading = FUNCTION)]
    pub time: Option<u32>,
    /// Seconds kept back from the timeout to stop the script and upload outputs.
    #[arg(long = "timeout-threshold", value_name = "SECONDS", help_heading = FUNCTION)]
    pub timeout_threshold: Option<u32>,
    /// A description.
    #[arg(short = 'd', long, help_heading = FUNCTION)]
    pub description: Option<String>,
    /// A variable of the container, for the script: KEY=VALUE (repeatable; any name,
    /// `AWS_ACCESS_KEY_ID` included).
    #[arg(short = 'e', long = "environment", value_name = "KEY=VALUE", help_heading = FUNCTION)]
    pub environment: Vec<String>,
    /// A variable of the function itself (Lambda's environment): KEY=VALUE (repeatable;
    /// Lambda's reserved names are refused).
    #[arg(long = "lambda-environment", value_name = "KEY=VALUE", help_heading = FUNCTION)]
    pub lambda_environment: Vec<String>,
    /// A script file run when an invocation brings no script or arguments.
    #[arg(short = 's', long = "init-script", value_name = "FILE", help_heading = FUNCTION)]
    pub init_script: Option<PathBuf>,
    /// Where invocations run: `lambda`, `lambda-batch` (Lambda, handing over to Batch at
    /// the timeout threshold) or `batch` (every event a Batch job).
    #[arg(long = "execution-mode", value_name = "MODE", value_parser = parse_execution_mode, help_heading = FUNCTION)]
    pub execution_mode: Option<scar_core::ExecutionMode>,
    /// With a Batch mode: the job container's memory in MiB (default 1024).
    #[arg(long = "batch-memory", value_name = "MIB", help_heading = FUNCTION)]
    pub batch_memory: Option<u32>,
    /// With a Batch mode: vCPUs reserved for the job's container (default 1).
    #[arg(long = "batch-vcpus", value_name = "N", help_heading = FUNCTION)]
    pub batch_vcpus: Option<u32>,
    /// With a Batch mode: reserve a GPU for the job's container.
    #[arg(short = 'g', long = "enable-gpu", help_heading = FUNCTION)]
    pub enable_gpu: bool,
    /// The image: a registry reference (`busybox`, `host:port/repo:tag`) or an OCI layout
    /// directory.
    #[arg(
        short = 'i',
        long,
        required_unless_present_any = ["image_file", "file"],
        conflicts_with = "image_file",
        help_heading = IMAGE
    )]
    pub image: Option<String>,
    /// An image archive: `docker save` or OCI archive.
    #[arg(long = "image-file", value_name = "ARCHIVE", help_heading = IMAGE)]
    pub image_file: Option<PathBuf>,
    /// SCAR's Lambda runtime, which picks the package as in SCAR: `image` (the image with
    /// the supervisor in it, pushed to ECR on AWS: `--package image`) or `python3.x`
    /// (SCAR's zip: `--package zip`; scar's supervisor is a static binary, so the version
    /// has no effect). The Runtime API client is `--runtime-client`.
    #[arg(long, value_name = "RUNTIME", value_parser = parse_lambda_runtime, help_heading = IMAGE)]
    pub runtime: Option<LambdaRuntime>,
    /// The package: `image` or `zip`. Default: none on `local` (the image root runs as
    /// it is), `image` on `aws`. On `local` a package is built and run as Lambda would.
    #[arg(long, value_parser = package_kinds(), help_heading = IMAGE)]
    pub package: Option<PackageKind>,
    /// What answers Lambda's Runtime API in the function: `scar` (default), or `image`:
    /// the image's own client (an existing Lambda container image, pushed as it is).
    #[arg(long = "runtime-client", value_name = "CLIENT", value_parser = runtime_clients(), help_heading = IMAGE)]
    pub runtime_client: Option<RuntimeClient>,
    /// Refuse an image with any hostile entry (a path out of the root, an absolute name,
    /// a hard link out, a symlink loop) instead of skipping the entry.
    #[arg(long, help_heading = IMAGE)]
    pub strict: bool,
    /// List every entry extraction dropped or changed (by default only a summary).
    #[arg(short = 'v', long, help_heading = IMAGE)]
    pub verbose: bool,
    /// A bucket whose `input/` folder triggers the function; outputs go to its `output/`.
    #[arg(
        long = "event-source",
        value_name = "BUCKET",
        conflicts_with = "input_bucket",
        help_heading = EVENTS
    )]
    pub event_source: Option<String>,
    /// A folder whose new files trigger the function: `BUCKET` (all of it) or
    /// `BUCKET/FOLDER`. Without `-ob`, output files are not uploaded (SCAR 4's rule).
    #[arg(long = "input-bucket", value_name = "BUCKET[/FOLDER]", help_heading = EVENTS)]
    pub input_bucket: Option<String>,
    /// Where output files go: `BUCKET` or `BUCKET/FOLDER`.
    #[arg(long = "output-bucket", value_name = "BUCKET[/FOLDER]", help_heading = EVENTS)]
    pub output_bucket: Option<String>,
    /// At most N invocations at once (Lambda's reserved concurrency): one more through
    /// `scar serve`'s Invoke API is throttled with 429 (local provider).
    #[arg(long, value_name = "N", help_heading = FUNCTION)]
    pub reserved_concurrency: Option<u32>,
    /// The supervisor's log level: CRITICAL, ERROR, WARNING, INFO (default) or DEBUG.
    #[arg(long = "log-level", value_name = "LEVEL", value_parser = parse_log_level, help_heading = FUNCTION)]
    pub log_level: Option<scar_core::LogLevel>,
    /// The architecture the function runs on: `x86_64` (default) or `arm64` (FDL
    /// `architectures`).
    #[arg(long = "architecture", visible_alias = "arch", value_name = "ARCH", value_parser = parse_architecture, help_heading = FUNCTION)]
    pub architecture: Option<scar_core::Architecture>,
    /// A folder shipped with the function: its files are in `/var/task`, which
    /// `$EXTRA_PAYLOAD` names, for the script.
    #[arg(long = "extra-payload", value_name = "FOLDER", help_heading = FUNCTION)]
    pub extra_payload: Option<PathBuf>,
    /// Invoke the function once after creating it, to warm it; `init` fails when that
    /// invocation does.
    #[arg(long, help_heading = FUNCTION)]
    pub preheat: bool,
    /// Network beyond the sandbox's own loopback: `outbound` (default, as Lambda gives it)
    /// or `none` (local provider).
    #[arg(long, value_name = "NETWORK", value_parser = parse_network, help_heading = FUNCTION)]
    pub network: Option<scar_core::NetworkAccess>,
    /// The IAM role the function runs with (else `aws.iam.role` in the config).
    #[arg(short = 'r', long = "iam-role", help_heading = AWS)]
    pub iam_role: Option<String>,
    /// A bucket for zips over 50 MB (on `local`, the local bucket keeps it the same way).
    #[arg(long = "deployment-bucket", value_name = "BUCKET", help_heading = AWS)]
    pub deployment_bucket: Option<String>,
    /// An API Gateway in front of the function (SCAR's): a REST API of this name, whose
    /// URL `scar ls` shows (on AWS; locally a route of `scar serve`).
    #[arg(long = "api-gateway-name", value_name = "NAME", help_heading = AWS)]
    pub api_gateway_name: Option<String>,
    /// Print the result as JSON.
    #[arg(short = 'j', long, help_heading = OUTPUT)]
    pub json: bool,
}

fn parse_log_level(s: &str) -> Result<scar_core::LogLevel, String> {
    s.parse()
}

fn parse_architecture(s: &str) -> Result<scar_core::Architecture, String> {
    s.parse()
}

fn parse_network(s: &str) -> Result<scar_core::NetworkAccess, String> {
    s.parse()
}

fn parse_execution_mode(s: &str) -> Result<scar_core::ExecutionMode, String> {
    scar_core::ExecutionMode::parse(s)
        .ok_or_else(|| format!("`{s}`: use `lambda`, `lambda-batch` or `batch`"))
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The function to invoke; with `-f`, this function of the file.
    #[arg(short = 'n', long, required_unless_present = "file", help_heading = FUNCTION)]
    pub name: Option<String>,
    /// A SCAR function definition file (YAML): its function (with several, the one `-n`
    /// names); its `run_script` is the script when neither `-s` nor a command is given.
    #[arg(
        short = 'f',
        long = "file",
        visible_alias = "conf-file",
        value_name = "FDL",
        help_heading = FUNCTION
    )]
    pub file: Option<PathBuf>,
    /// A script file to run in the function with /bin/sh.
    #[arg(
        short = 's',
        long = "script",
        visible_alias = "run-script",
        value_name = "FILE",
        help_heading = INVOCATION
    )]
    pub script: Option<PathBuf>,
    /// An environment variable for this invocation: KEY=VALUE (repeatable).
    #[arg(short = 'e', long = "environment", value_name = "KEY=VALUE", help_heading = INVOCATION)]
    pub environment: Vec<String>,
    /// Print the whole response as JSON.
    #[arg(short = 'j', long, help_heading = OUTPUT)]
    pub json: bool,
    /// Also print the request id and log stream.
    #[arg(short = 'v', long, help_heading = OUTPUT)]
    pub verbose: bool,
    /// Run the function once for every file in this bucket's `input/` folder: the
    /// launcher. The bucket must be the function's.
    #[arg(long = "event-source", value_name = "BUCKET", help_heading = EVENTS)]
    pub event_source: Option<String>,
    /// With `-es`: invocations at once (default: local, the config's `local.concurrency`,
    /// else the number of cores; aws, 32).
    #[arg(long, help_heading = EVENTS)]
    pub concurrency: Option<usize>,
    /// With `-es`: only the files whose last run failed or timed out.
    #[arg(long, requires = "event_source", help_heading = EVENTS)]
    pub only_failed: bool,
    /// With `-es`: only the files not yet processed in their current version.
    #[arg(long, requires = "event_source", help_heading = EVENTS)]
    pub pending: bool,
    /// Invoke asynchronously: return at once with the request id; the invocation completes
    /// and is logged on its own (Lambda's `Event` invocation).
    #[arg(
        short = 'a',
        long = "async",
        visible_alias = "asynchronous",
        conflicts_with = "event_source",
        help_heading = INVOCATION
    )]
    pub run_async: bool,
    /// Write the function's output to this file instead of the terminal (with `-j`, the
    /// JSON still holds it).
    #[arg(short = 'o', long = "output-file", value_name = "FILE", conflicts_with_all = ["event_source", "run_async"], help_heading = OUTPUT)]
    pub output_file: Option<PathBuf>,
    /// Warm reuse: hand the invocation to the `scar serve` running on this scar home, to
    /// run in one of its warm sandboxes; without one, a sandbox of its own (local
    /// provider; the default is the config's `local.warm`, `SCAR_WARM`). On AWS, Lambda
    /// reuses warm sandboxes by itself.
    #[arg(long, conflicts_with_all = ["event_source", "run_async", "fresh"], help_heading = INVOCATION)]
    pub warm: bool,
    /// A sandbox of its own even when `local.warm` or `SCAR_WARM` says `--warm`.
    #[arg(long, conflicts_with_all = ["event_source", "run_async"], help_heading = INVOCATION)]
    pub fresh: bool,
    /// The whole event, as JSON, sent as it is (for a function whose runtime is its
    /// image's own: `--runtime-client image`); `@FILE` reads it from a file.
    #[arg(long, value_name = "JSON|@FILE", conflicts_with_all = ["script", "environment", "args", "event_source"], help_heading = INVOCATION)]
    pub payload: Option<String>,
    /// A command and its arguments, run instead of the image's CMD.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD ARGS",
        help_heading = INVOCATION
    )]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct InvokeArgs {
    /// The function to call; with `-f`, this function of the file.
    #[arg(short = 'n', long, required_unless_present = "file")]
    pub name: Option<String>,
    /// A SCAR function definition file (YAML): its function (with several, the one `-n`
    /// names).
    #[arg(
        short = 'f',
        long = "file",
        visible_alias = "conf-file",
        value_name = "FDL"
    )]
    pub file: Option<PathBuf>,
    /// A file sent as the request's body, base64 as SCAR sends it (a POST); the function
    /// finds it decoded at `$INPUT_FILE_PATH`.
    #[arg(
        long = "data-binary",
        value_name = "FILE",
        conflicts_with = "json_data"
    )]
    pub data_binary: Option<PathBuf>,
    /// JSON sent as the request's body (a POST, `Content-Type: application/json`).
    #[arg(long = "json-data", value_name = "JSON")]
    pub json_data: Option<String>,
    /// A query parameter, KEY=VALUE (repeatable), or SCAR's JSON object of them: the
    /// script's variables.
    #[arg(short = 'p', long = "parameters", value_name = "KEY=VALUE|JSON")]
    pub parameters: Vec<String>,
    /// Asynchronous: the endpoint accepts the request (202) and the function runs on its
    /// own (`X-Amz-Invocation-Type: Event`, as SCAR sends it).
    #[arg(short = 'a', long = "asynchronous", visible_alias = "async")]
    pub asynchronous: bool,
    /// Write the response body to this file instead of the terminal.
    #[arg(
        short = 'o',
        long = "output-file",
        value_name = "FILE",
        conflicts_with = "asynchronous"
    )]
    pub output_file: Option<PathBuf>,
    /// Print a JSON object: status, request id, exit code, and the output (or its file).
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct LsArgs {
    /// List the files of this bucket (and folder) instead of functions.
    #[arg(short = 'b', long, value_name = "BUCKET[/FOLDER]")]
    pub bucket: Option<String>,
    /// On AWS, every scar function of the account and region, not only yours (those
    /// tagged with your identity); the local provider has one owner: the same list.
    #[arg(long, conflicts_with = "bucket")]
    pub all_owners: bool,
    /// The functions a definition file defines (those that exist), each in its own
    /// region (`region:` of the file).
    #[arg(
        short = 'f',
        long = "file",
        visible_alias = "conf-file",
        value_name = "FDL",
        conflicts_with = "bucket"
    )]
    pub file: Option<PathBuf>,
    /// Print JSON.
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PutArgs {
    /// Where to: a bucket and optional folder (`mybucket/input`).
    #[arg(short = 'b', long, value_name = "BUCKET[/FOLDER]")]
    pub bucket: String,
    /// A file, or a directory (its files, recursively).
    #[arg(short = 'p', long)]
    pub path: PathBuf,
    /// Return once the files are stored; their invocations run in the background.
    #[arg(long = "async")]
    pub run_async: bool,
    /// Invocations at once, locally (default: the config's `local.concurrency`, else the
    /// number of cores; on aws, S3 invokes the function for each file).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Print JSON.
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    /// What: a bucket and optional folder (`mybucket/output`).
    #[arg(short = 'b', long, value_name = "BUCKET[/FOLDER]")]
    pub bucket: String,
    /// Where to (default: the current directory).
    #[arg(short = 'p', long, default_value = ".")]
    pub path: PathBuf,
    /// Print JSON.
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Invocations at once (of files landing in input folders).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Where the Lambda Invoke API and the dashboard listen (`ADDR:PORT`; port 0: any free
    /// port). Default 127.0.0.1:3001, or a free loopback port when that one is taken. Any
    /// address but loopback lets other machines invoke your functions.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,
    /// Stop a warm sandbox after it has been idle this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub idle_timeout: u64,
    /// Print JSON lines: where the Invoke API listens, then one per finished file.
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["name", "all", "file"])))]
pub struct RmArgs {
    /// The function to remove.
    #[arg(short = 'n', long)]
    pub name: Option<String>,
    /// Remove every function (on AWS, every one of yours: see --all-owners).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Remove the functions a SCAR function definition file (YAML) defines.
    #[arg(
        short = 'f',
        long = "file",
        visible_alias = "conf-file",
        value_name = "FDL"
    )]
    pub file: Option<PathBuf>,
    /// On AWS, remove other owners' functions too (and those with no owner recorded), not
    /// only yours; the local provider has one owner: the same removal.
    #[arg(long)]
    pub all_owners: bool,
    /// Print JSON.
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// The function whose logs to show; with `-f`, this function of the file.
    #[arg(short = 'n', long, required_unless_present = "file")]
    pub name: Option<String>,
    /// A SCAR function definition file (YAML): its function (with several, the one `-n`
    /// names).
    #[arg(
        short = 'f',
        long = "file",
        visible_alias = "conf-file",
        value_name = "FDL"
    )]
    pub file: Option<PathBuf>,
    /// Only this log stream.
    #[arg(long = "log-stream-name", value_name = "STREAM")]
    pub log_stream_name: Option<String>,
    /// Only this invocation: its START..REPORT lines.
    #[arg(long = "request-id", value_name = "ID")]
    pub request_id: Option<String>,
    /// Keep printing new lines as they come (the last minute's first), until Ctrl-C.
    #[arg(long, conflicts_with = "request_id")]
    pub follow: bool,
    /// Print JSON lines (`{"stream", "message"}`).
    #[arg(short = 'j', long)]
    pub json: bool,
}

/// SCAR's multi-letter short flags, which clap cannot declare, and their long forms.
const SCAR_SHORTS: &[(&str, &str)] = &[
    ("-if", "--image-file"),
    ("-tt", "--timeout-threshold"),
    ("-ls", "--log-stream-name"),
    ("-ri", "--request-id"),
    ("-es", "--event-source"),
    ("-db", "--deployment-bucket"),
    ("-ib", "--input-bucket"),
    ("-ob", "--output-bucket"),
    ("-le", "--lambda-environment"),
    ("-em", "--execution-mode"),
    ("-pf", "--profile"),
    ("-bm", "--batch-memory"),
    ("-bc", "--batch-vcpus"),
    ("-rt", "--runtime"),
    ("-ll", "--log-level"),
    ("-ph", "--preheat"),
    ("-api", "--api-gateway-name"),
    ("-ep", "--extra-payload"),
];

/// SCAR's multi-letter short flags of `scar invoke`, where `-db` is the request's body
/// (elsewhere, the deployment bucket).
const INVOKE_SHORTS: &[(&str, &str)] = &[("-db", "--data-binary"), ("-jd", "--json-data")];

/// The flags that take a value (`-n`, `--name`, their aliases), of every subcommand: read
/// from the command line's definition, so that a new option never needs listing twice.
fn value_flags(cmd: &clap::Command) -> std::collections::HashSet<String> {
    fn walk(cmd: &clap::Command, out: &mut std::collections::HashSet<String>) {
        for a in cmd.get_arguments() {
            if a.is_positional() || !a.get_num_args().unwrap_or_default().takes_values() {
                continue;
            }
            out.extend(
                a.get_short_and_visible_aliases()
                    .into_iter()
                    .flatten()
                    .map(|c| format!("-{c}")),
            );
            out.extend(
                a.get_long_and_visible_aliases()
                    .into_iter()
                    .flatten()
                    .map(|l| format!("--{l}")),
            );
            if let Some(aliases) = a.get_all_aliases() {
                out.extend(aliases.into_iter().map(|l| format!("--{l}")));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = std::collections::HashSet::new();
    walk(cmd, &mut out);
    out
}

/// The command line's definition: [`Cli`]'s, each option that has one of SCAR's
/// multi-letter short forms ([`SCAR_SHORTS`], which clap cannot declare) showing it in its
/// help as clap shows aliases (`[short alias: -if]`).
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    fn show_shorts(cmd: clap::Command) -> clap::Command {
        // In place (`mut_arg` would move each option to the end, and so its heading).
        let cmd = cmd.mut_args(|a| {
            let Some(long) = a.get_long().map(|l| format!("--{l}")) else {
                return a;
            };
            let shorts = SCAR_SHORTS.iter().chain(INVOKE_SHORTS);
            let Some((short, _)) = shorts.clone().find(|(_, l)| *l == long) else {
                return a;
            };
            let note = format!("[short alias: {short}]");
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            let long_help = a.get_long_help().map(|h| h.to_string());
            let a = a.help(format!("{help} {note}"));
            match long_help {
                Some(long) => a.long_help(format!("{long}\n\n{note}")),
                None => a,
            }
        });
        let names: Vec<String> = (cmd.get_subcommands())
            .map(|s| s.get_name().to_string())
            .collect();
        names
            .into_iter()
            .fold(cmd, |cmd, name| cmd.mut_subcommand(name, show_shorts))
    }
    show_shorts(Cli::command())
}

/// Parses the command line: SCAR's multi-letter short flags rewritten
/// ([`rewrite_scar_flags`]), then [`command`]'s definition; exits with clap's message and
/// status on a usage error, as `Cli::parse_from` does.
pub fn parse(args: Vec<String>) -> Cli {
    use clap::FromArgMatches;
    // One definition, built once, for the rewriting and the parsing.
    let mut cmd = command();
    cmd.build();
    let rewritten = rewrite_with(args, &value_flags(&cmd));
    let matches = cmd
        .try_get_matches_from_mut(rewritten)
        .unwrap_or_else(|e| e.exit());
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut cmd).exit())
}

/// Rewrites SCAR's multi-letter short flags (`-if`, `-tt`, `-ls`, `-ri`, ...) into their
/// long forms, up to the first positional argument after the subcommand (so that `scar run
/// -n f ls -ls` keeps `-ls` as an argument of `ls`) or `--`.
pub fn rewrite_scar_flags(args: impl IntoIterator<Item = String>) -> Vec<String> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    // Built, so that each argument says how many values it takes.
    cmd.build();
    rewrite_with(args, &value_flags(&cmd))
}

/// [`rewrite_scar_flags`], knowing which flags take a value (`value_flags`).
fn rewrite_with(
    args: impl IntoIterator<Item = String>,
    value_flags: &std::collections::HashSet<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen_subcommand = false;
    let mut invoke = false;
    let mut expect_value = false;
    let mut done = false;
    for arg in args {
        if done {
            out.push(arg);
            continue;
        }
        if out.is_empty() {
            out.push(arg); // argv[0]
            continue;
        }
        if expect_value {
            expect_value = false;
            out.push(arg);
            continue;
        }
        if arg == "--" {
            done = true;
            out.push(arg);
            continue;
        }
        let own = if invoke { INVOKE_SHORTS } else { &[] };
        let arg = (own.iter().chain(SCAR_SHORTS))
            .find(|(short, _)| *short == arg)
            .map(|(_, long)| long.to_string())
            .unwrap_or(arg);
        if arg.starts_with('-') {
            expect_value = value_flags.contains(&arg);
        } else if seen_subcommand {
            done = true;
        } else {
            seen_subcommand = true;
            invoke = arg == "invoke";
        }
        out.push(arg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(s: &str) -> String {
        rewrite_scar_flags(s.split(' ').map(String::from)).join(" ")
    }

    #[test]
    fn scar_shorts_become_long_flags() {
        assert_eq!(
            rw("scar init -n f -if img.tar -tt 5"),
            "scar init -n f --image-file img.tar --timeout-threshold 5"
        );
        // After any option's value (every value-taking option is known from clap's
        // definition, so that a new one never stops the rewriting).
        assert_eq!(
            rw("scar init -n f --network none -if img.tar --arch arm64 -ll DEBUG"),
            "scar init -n f --network none --image-file img.tar --arch arm64 --log-level DEBUG"
        );
        assert_eq!(
            rw("scar log -n f -ri abc"),
            "scar log -n f --request-id abc"
        );
        // The command's own arguments are left alone.
        assert_eq!(rw("scar run -n f ls -ls"), "scar run -n f ls -ls");
        assert_eq!(rw("scar run -n -if ls"), "scar run -n -if ls");
        assert_eq!(rw("scar run -n f -- -tt"), "scar run -n f -- -tt");
        // SCAR's profile and Batch flags; a Batch flag's value is not `run`'s command.
        assert_eq!(rw("scar ls -pf dev -j"), "scar ls --profile dev -j");
        // `-db` is `invoke`'s body, and the deployment bucket elsewhere.
        assert_eq!(
            rw("scar invoke -n f -db a.png -jd {} -o out.png"),
            "scar invoke -n f --data-binary a.png --json-data {} -o out.png"
        );
        assert_eq!(
            rw("scar init -n f -db bkt"),
            "scar init -n f --deployment-bucket bkt"
        );
        assert_eq!(
            rw("scar init -n f -em batch -bm 2048 -bc 2 -g"),
            "scar init -n f --execution-mode batch --batch-memory 2048 --batch-vcpus 2 -g"
        );
        assert_eq!(
            rw("scar init -n f -ll DEBUG -ph -ep payload -i busybox"),
            "scar init -n f --log-level DEBUG --preheat --extra-payload payload -i busybox"
        );
        assert_eq!(
            rw("scar init -n f -i busybox -api my-api"),
            "scar init -n f -i busybox --api-gateway-name my-api"
        );
    }

    #[test]
    fn definitions_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        command().debug_assert();
    }
}
