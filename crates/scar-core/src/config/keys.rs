//! Every key of `scar.cfg` and what scar does with it: scar's own keys, and every key of
//! the file SCAR 4 writes (`_DEFAULT_CFG` of `scar/parser/cfgfile.py` in grycap/scar,
//! 4.3.1), each read into a setting or, where scar has no use for it, reported with the
//! reason. A key in neither is reported as unknown: nothing in the file is ignored
//! silently.

use serde_json::{Map, Value};

/// What scar does with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// A section: each of its keys has a fate of its own.
    Section,
    /// Read into a setting (a section read whole: the names in it are the user's).
    Read,
    /// scar's earlier spelling of the key named here, which wins when both are given.
    Earlier(&'static str),
    /// A SCAR 4 key whose value (this JSON) is what scar does anyway; another value is
    /// not followed, for the reason given.
    Only(&'static str, &'static str),
    /// Read, but for this (string) value (`*` at the end: any value so starting), which
    /// SCAR gives a meaning scar has no use for: that value is not followed, for the
    /// reason given.
    Except(&'static str, &'static str),
    /// SCAR 4's `boto_profile` or `region` (the key named) of one AWS service: scar uses
    /// `aws.lambda`'s for every service, so another value is not followed.
    AsLambda(&'static str),
    /// A SCAR 4 key scar has no use for, and why.
    Unused(&'static str),
}

use Fate::{AsLambda, Earlier, Except, Only, Read, Section, Unused};

const VERSION: &str =
    "SCAR's version of the file's layout; scar reads every layout and never rewrites the file";
const OSCAR: &str = "OSCAR clusters; scar's providers are `local` and `aws`";
const SUPERVISOR: &str =
    "SCAR's supervisor (its version and layer); scar builds its own supervisor into each function";
const PYTHON: &str = "SCAR's Python runtime, its zip package's; scar's supervisor is a static binary, so a Python version has no effect, and the package stays scar's default (`-rt python3.x` or FDL `runtime: python3.x` asks for the zip package)";
const UDOCKER: &str =
    "udocker's variables; scar runs no udocker and leaves them out of its functions";
const EVENT: &str =
    "SCAR's template of the S3 event `run` sends for a file; scar sends the whole event S3 would";
const API_GATEWAY: &str = "scar makes SCAR's API Gateway as SCAR's defaults describe it (`-api`, FDL `api_gateway.name`): a `{proxy+}` resource taking ANY method without authorization, a Lambda proxy integration, stage `scar`";
const RUN: &str = "`scar run` invokes asynchronously with `-a` or `aws.lambda.asynchronous: true`, else waits for the result and shows the output";
const LAYERS: &str = "scar adds no Lambda layers: its supervisor is built into each function";
const LIMITS: &str = "scar applies Lambda's own limits (a zip over 50 MB goes through a deployment bucket, 250 MB unzipped)";
const TEMPLATE: &str = "SCAR's launch template, which installs SCAR's supervisor on Batch instances; scar's jobs carry the supervisor in their image";
const BATCH: &str = "scar's compute environments are managed (`MANAGED`) and enabled (`ENABLED`)";

/// Every key scar knows, by its path (`*` at the end of a name: any name so starting);
/// the first match wins.
const KEYS: &[(&str, Fate)] = &[
    // scar's own.
    ("provider", Read),
    ("local", Section),
    ("local.concurrency", Read),
    ("local.warm", Read),
    ("extract", Section),
    ("extract.max_image_mb", Read),
    ("extract.max_layer_ratio", Read),
    ("extract.min_free_mb", Read),
    ("registry", Section),
    ("registry.mirrors", Read),
    // SCAR 4's, with scar's earlier spellings.
    ("scar", Section),
    ("scar.config_version", Unused(VERSION)),
    ("oscar", Unused(OSCAR)),
    ("aws", Section),
    ("aws.iam", Section),
    ("aws.iam.role", Read),
    ("aws.iam.boto_profile", AsLambda("boto_profile")),
    ("aws.iam.region", AsLambda("region")),
    ("aws.lambda", Section),
    ("aws.lambda.boto_profile", Read),
    ("aws.lambda.region", Read),
    ("aws.lambda.execution_mode", Read),
    ("aws.lambda.timeout", Read),
    ("aws.lambda.time", Earlier("aws.lambda.timeout")),
    ("aws.lambda.memory", Read),
    ("aws.lambda.description", Read),
    ("aws.lambda.runtime", Except("python3.*", PYTHON)),
    ("aws.lambda.layers", Only("[]", LAYERS)),
    (
        "aws.lambda.invocation_type",
        Only("\"RequestResponse\"", RUN),
    ),
    ("aws.lambda.asynchronous", Read),
    ("aws.lambda.log_type", Only("\"Tail\"", RUN)),
    ("aws.lambda.log_level", Read),
    ("aws.lambda.environment", Section),
    ("aws.lambda.environment.Variables", Section),
    (
        "aws.lambda.environment.Variables.UDOCKER_*",
        Unused(UDOCKER),
    ),
    ("aws.lambda.environment.Variables.*", Read),
    ("aws.lambda.deployment", Section),
    (
        "aws.lambda.deployment.max_payload_size",
        Only("52428800", LIMITS),
    ),
    (
        "aws.lambda.deployment.max_s3_payload_size",
        Only("262144000", LIMITS),
    ),
    ("aws.lambda.container", Section),
    ("aws.lambda.container.environment", Section),
    ("aws.lambda.container.environment.Variables", Read),
    ("aws.lambda.container.timeout_threshold", Read),
    (
        "aws.lambda.timeout_threshold",
        Earlier("aws.lambda.container.timeout_threshold"),
    ),
    ("aws.lambda.supervisor", Unused(SUPERVISOR)),
    ("aws.s3", Section),
    ("aws.s3.boto_profile", AsLambda("boto_profile")),
    ("aws.s3.region", AsLambda("region")),
    ("aws.s3.event", Unused(EVENT)),
    // SCAR's API Gateway template: scar makes exactly the API these values describe.
    ("aws.api_gateway", Section),
    ("aws.api_gateway.boto_profile", AsLambda("boto_profile")),
    ("aws.api_gateway.region", AsLambda("region")),
    (
        "aws.api_gateway.endpoint",
        Only(
            r#""https://{api_id}.execute-api.{api_region}.amazonaws.com/{stage_name}/launch""#,
            API_GATEWAY,
        ),
    ),
    (
        "aws.api_gateway.request_parameters",
        Only(
            r#"{"integration.request.header.X-Amz-Invocation-Type":"method.request.header.X-Amz-Invocation-Type"}"#,
            API_GATEWAY,
        ),
    ),
    ("aws.api_gateway.http_method", Only(r#""ANY""#, API_GATEWAY)),
    ("aws.api_gateway.method", Section),
    (
        "aws.api_gateway.method.authorizationType",
        Only(r#""NONE""#, API_GATEWAY),
    ),
    (
        "aws.api_gateway.method.requestParameters",
        Only(
            r#"{"method.request.header.X-Amz-Invocation-Type":false}"#,
            API_GATEWAY,
        ),
    ),
    ("aws.api_gateway.integration", Section),
    (
        "aws.api_gateway.integration.type",
        Only(r#""AWS_PROXY""#, API_GATEWAY),
    ),
    (
        "aws.api_gateway.integration.integrationHttpMethod",
        Only(r#""POST""#, API_GATEWAY),
    ),
    (
        "aws.api_gateway.integration.uri",
        Only(
            r#""arn:aws:apigateway:{api_region}:lambda:path/2015-03-31/functions/arn:aws:lambda:{lambda_region}:{account_id}:function:{function_name}/invocations""#,
            API_GATEWAY,
        ),
    ),
    (
        "aws.api_gateway.integration.requestParameters",
        Only(
            r#"{"integration.request.header.X-Amz-Invocation-Type":"method.request.header.X-Amz-Invocation-Type"}"#,
            API_GATEWAY,
        ),
    ),
    (
        "aws.api_gateway.path_part",
        Only(r#""{proxy+}""#, API_GATEWAY),
    ),
    ("aws.api_gateway.stage_name", Only(r#""scar""#, API_GATEWAY)),
    (
        "aws.api_gateway.service_id",
        Only(r#""apigateway.amazonaws.com""#, API_GATEWAY),
    ),
    (
        "aws.api_gateway.source_arn_testing",
        Only(
            r#""arn:aws:execute-api:{api_region}:{account_id}:{api_id}/*""#,
            API_GATEWAY,
        ),
    ),
    (
        "aws.api_gateway.source_arn_invocation",
        Only(
            r#""arn:aws:execute-api:{api_region}:{account_id}:{api_id}/{stage_name}/ANY""#,
            API_GATEWAY,
        ),
    ),
    ("aws.cloudwatch", Section),
    ("aws.cloudwatch.boto_profile", AsLambda("boto_profile")),
    ("aws.cloudwatch.region", AsLambda("region")),
    ("aws.cloudwatch.log_retention_policy_in_days", Read),
    // What Batch mode functions take where their definition says nothing.
    ("aws.ecr", Section),
    ("aws.ecr.delete_image", Read),
    ("aws.batch", Section),
    ("aws.batch.boto_profile", AsLambda("boto_profile")),
    ("aws.batch.region", AsLambda("region")),
    ("aws.batch.vcpus", Read),
    ("aws.batch.memory", Read),
    ("aws.batch.enable_gpu", Read),
    ("aws.batch.state", Only("\"ENABLED\"", BATCH)),
    ("aws.batch.type", Only("\"MANAGED\"", BATCH)),
    ("aws.batch.environment", Section),
    ("aws.batch.environment.Variables", Read),
    ("aws.batch.compute_resources", Section),
    ("aws.batch.compute_resources.type", Read),
    ("aws.batch.compute_resources.desired_v_cpus", Read),
    ("aws.batch.compute_resources.min_v_cpus", Read),
    ("aws.batch.compute_resources.max_v_cpus", Read),
    ("aws.batch.compute_resources.subnets", Read),
    ("aws.batch.compute_resources.security_group_ids", Read),
    ("aws.batch.compute_resources.instance_types", Read),
    (
        "aws.batch.compute_resources.launch_template_name",
        Except(super::SCAR_LAUNCH_TEMPLATE, TEMPLATE),
    ),
    ("aws.batch.compute_resources.instance_role", Read),
    ("aws.batch.service_role", Read),
    // `enabled: true` is refused; the node count and index matter only then, as in SCAR.
    ("aws.batch.multi_node_parallel", Read),
];

/// The fate of the key at `path`; `None` for a key scar does not know.
fn fate(path: &[String]) -> Option<Fate> {
    let matches = |pattern: &str| {
        let names: Vec<&str> = pattern.split('.').collect();
        names.len() == path.len()
            && names
                .iter()
                .zip(path)
                .all(|(n, p)| match n.strip_suffix('*') {
                    Some(prefix) => p.starts_with(prefix),
                    None => n == p,
                })
    };
    KEYS.iter().find(|(p, _)| matches(p)).map(|(_, f)| *f)
}

/// The value at the dotted `key` of `file`.
fn value_at<'a>(file: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(file, |v, name| v.get(name))
}

/// What scar says about the keys of `file`: one line per reason, naming its keys
/// (`aws.lambda.runtime, aws.lambda.supervisor: not used by scar: ...`), in the order of
/// the keys.
pub(super) fn review(file: &Value) -> Vec<String> {
    let mut notes = Notes::default();
    if let Value::Object(map) = file {
        walk(file, map, &mut Vec::new(), &mut notes);
    }
    let mut lines: Vec<(Vec<String>, String)> = (notes.0.into_iter())
        .map(|(why, mut keys)| {
            keys.sort();
            (keys, why)
        })
        .collect();
    lines.sort();
    (lines.into_iter())
        .map(|(keys, why)| format!("{}: {why}", keys.join(", ")))
        .collect()
}

/// Reasons and the keys they are about, in the order first met.
#[derive(Default)]
struct Notes(Vec<(String, Vec<String>)>);

impl Notes {
    fn add(&mut self, key: String, why: String) {
        match self.0.iter_mut().find(|(w, _)| *w == why) {
            Some((_, keys)) => keys.push(key),
            None => self.0.push((why, vec![key])),
        }
    }
}

fn walk(file: &Value, map: &Map<String, Value>, at: &mut Vec<String>, notes: &mut Notes) {
    for (name, value) in map {
        at.push(name.clone());
        let key = at.join(".");
        match fate(at) {
            None => notes.add(key, "unknown to scar, ignored".into()),
            Some(Section) => {
                // Another type is the parser's error to report.
                if let Value::Object(inner) = value {
                    walk(file, inner, at, notes);
                }
            }
            Some(Read) => {}
            Some(Earlier(wins)) => match value_at(file, wins) {
                Some(v) if v != value => notes.add(
                    key,
                    format!("scar's earlier spelling of {wins}, which is given too and wins ({v})"),
                ),
                _ => {}
            },
            Some(Only(followed, why)) => {
                if serde_json::from_str::<Value>(followed).ok().as_ref() != Some(value) {
                    notes.add(key, format!("{value} is not followed: {why}"));
                }
            }
            Some(Except(not_followed, why)) => {
                let matches = |v: &str| match not_followed.strip_suffix('*') {
                    Some(prefix) => v.starts_with(prefix),
                    None => v == not_followed,
                };
                if value.as_str().is_some_and(matches) {
                    notes.add(key, format!("{value} is not followed: {why}"));
                }
            }
            Some(AsLambda(name)) => {
                let lambdas = value_at(file, &format!("aws.lambda.{name}"))
                    .cloned()
                    .unwrap_or_else(|| match name {
                        "region" => Value::from(super::DEFAULT_REGION),
                        _ => Value::from(super::DEFAULT_PROFILE),
                    });
                if *value != lambdas {
                    notes.add(
                        key,
                        format!("{value} is not followed: scar uses aws.lambda.{name} ({lambdas}) for every AWS service"),
                    );
                }
            }
            Some(Unused(why)) => notes.add(key, format!("not used by scar: {why}")),
        }
        at.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(key: &str) -> Vec<String> {
        key.split('.').map(String::from).collect()
    }

    #[test]
    fn patterns_match_whole_names_and_prefixes() {
        assert_eq!(fate(&path("aws.lambda.timeout")), Some(Read));
        assert_eq!(fate(&path("aws.lambda.timeouts")), None);
        assert_eq!(fate(&path("aws.lambda")), Some(Section));
        let var = |name: &str| fate(&path(&format!("aws.lambda.environment.Variables.{name}")));
        assert_eq!(var("UDOCKER_DIR"), Some(Unused(UDOCKER)));
        assert_eq!(var("MY_VAR"), Some(Read));
        assert_eq!(fate(&path("oscar")), Some(Unused(OSCAR)));
    }

    #[test]
    fn every_key_has_one_entry() {
        let mut seen = std::collections::BTreeSet::new();
        for (key, _) in KEYS {
            assert!(seen.insert(*key), "{key} is listed twice");
            // A section's keys are listed under a section.
            if let Some((parent, _)) = key.rsplit_once('.') {
                assert_eq!(
                    fate(&path(parent)),
                    Some(Section),
                    "{key}: its parent is no section"
                );
            }
        }
    }

    /// docs/configuration.md names every key scar does not simply read.
    #[test]
    fn the_docs_name_every_key_scar_does_not_simply_read() {
        let docs = include_str!("../../../../docs/configuration.md");
        for (key, fate) in KEYS {
            if !matches!(fate, Section | Read) {
                assert!(docs.contains(&format!("`{key}`")), "{key} in the docs");
            }
        }
    }
}
