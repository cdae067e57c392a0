//! The spec codec: how a [`FunctionSpec`] is written onto a Lambda function and read back
//! from GetFunction's answer, whole.
//!
//! **Where.** The spec is a document the function carries in its tags: the spec as
//! compact JSON, deflated, base64-encoded, cut into tag values `scar:spec:0`,
//! `scar:spec:1`, ... under a header tag `scar:spec` = `<version> <chunks>`. Tags are read
//! by the GetFunction call that `function`, `list`, `invoke` and `rm` make anyway, need
//! no bucket (not every function has one) and no permission beyond Lambda's; a function's
//! variables could hold the document too, but Lambda gives all of them 4 KB together,
//! which the container's variables need; its description holds 256 characters.
//!
//! **Limits.** Lambda allows 50 tags per function and 256 characters per value; base64's
//! alphabet is among the characters a tag value allows. The document gets
//! [`SPEC_MAX_CHUNKS`] tags, so at most [`SPEC_DOCUMENT_LIMIT`] characters once deflated
//! and encoded; the other tags (`createdby` and the legacy tags below, 7 at most), the
//! [owner](crate::OWNER_TAG) and the header leave one tag free. A larger spec is an error
//! at `init` ([`AwsError::SpecTooLarge`]), never cut.
//!
//! **Secrets stay out of tags.** Tags are shown by `ListTags` and the console to anyone
//! who may read the function. Values of the container's, the function's and the Batch
//! job's variables and the storage providers' keys are left out of the document and stay
//! in Lambda's variables (the container's as `CONT_VAR_<name>`, the Batch job's as
//! `SCAR_BATCH_VAR_<name>`, the storage providers in `SCAR_STORAGE_PROVIDERS`), where
//! [`decode`] merges them back. The document keeps only the container variables' names
//! for a Runtime API client of the image's own, whose variables have no prefix.
//!
//! **Lambda's own values win.** The name, memory, timeout and description come from the
//! function's configuration (what it runs with, should someone change it on the
//! console); everything else from the document.
//!
//! **Functions made before the document** carry only the legacy tags (`scar:image`,
//! `scar:input`, `scar:output`, ...): [`decode_legacy`] reads them as scar always did
//! (no init script, no Batch block, no output filters). New functions carry the legacy
//! tags too, where their values are valid tag values, for older scar versions; so does
//! a function whose document cannot be read (a tag edited by hand), which then reads as
//! an old one.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read as _, Write as _};

use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
use aws_sdk_lambda::types::{FunctionConfiguration, PackageType};
use base64::Engine as _;
use scar_core::config::ProviderKind;
use scar_core::contract::{
    BATCH_JOB_DEFINITION_VAR, BATCH_JOB_QUEUE_VAR, CONTAINER_VAR_PREFIX, STORAGE_PROVIDERS_VAR,
};
use scar_core::provider::{FunctionInfo, PackageKind};
use scar_core::spec_options::LOG_LEVEL_VAR;
use scar_core::{FunctionSpec, RuntimeClient, StorageProvider};

use crate::apigateway::API_ID_VAR;
use crate::{AwsError, OWNER_TAG};

/// The tag every function (and ECR repository) scar creates carries: `createdby=scar`.
pub const CREATED_BY_TAG: (&str, &str) = ("createdby", "scar");

/// The header tag of the spec document: `<version> <chunks>`.
const SPEC_TAG: &str = "scar:spec";
/// The document's chunks are tags `scar:spec:0`, `scar:spec:1`, ...
const SPEC_CHUNK_TAG: &str = "scar:spec:";
/// The document's format: JSON, deflated, base64 (standard alphabet, padded).
const SPEC_VERSION: u32 = 1;
/// The longest tag value Lambda allows, in characters.
pub const TAG_VALUE_LIMIT: usize = 256;
/// Tags the spec document may take (Lambda allows 50 per function).
pub const SPEC_MAX_CHUNKS: usize = 40;
/// The longest spec document, deflated and base64-encoded, in characters.
pub const SPEC_DOCUMENT_LIMIT: usize = SPEC_MAX_CHUNKS * TAG_VALUE_LIMIT;
/// The most an inflated document may take: a bound against a hand-made tag.
const INFLATED_LIMIT: u64 = 4 * 1024 * 1024;
/// Lambda variables holding the Batch job's variables (the Batch block's `environment`).
const BATCH_VAR_PREFIX: &str = "SCAR_BATCH_VAR_";

/// Tag of a function whose ECR image `rm` keeps (`ecr.delete_image: false`): `false`.
pub const DELETE_IMAGE_TAG: &str = "scar:delete_image";
/// Legacy tag: the image the function was made from, as the user named it.
const IMAGE_TAG: &str = "scar:image";
/// Legacy tag: the supervisor's timeout threshold, in seconds.
const THRESHOLD_TAG: &str = "scar:timeout_threshold";
/// Legacy tag: the input folders (`[<provider>:]bucket[/folder]`, separated by spaces).
const INPUT_TAG: &str = "scar:input";
/// Legacy tag of the first scar versions: the bucket whose `input/` folder triggers.
const INPUT_BUCKET_TAG: &str = "scar:input_bucket";
/// Legacy tag: where outputs go (`[<provider>:]bucket[/folder]`, separated by spaces),
/// without their filters.
const OUTPUT_TAG: &str = "scar:output";
/// Legacy tag: a function's Runtime API client when it is not scar's supervisor (`image`);
/// it keeps the key of its earlier name (`runtime`), which older versions read.
const RUNTIME_TAG: &str = "scar:runtime";
/// Legacy tag: a function's execution mode (absent: `lambda`).
const MODE_TAG: &str = "scar:execution_mode";

/// What a function carries of its spec: its tags and its Lambda variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Encoded {
    pub(crate) tags: HashMap<String, String>,
    pub(crate) variables: BTreeMap<String, String>,
}

/// The tags and variables that hold `spec`, and `owner` (the creator's identity, a valid
/// tag value) as its [owner tag](crate::OWNER_TAG); [`AwsError::SpecTooLarge`] when its
/// document takes more than [`SPEC_DOCUMENT_LIMIT`] characters.
pub(crate) fn encode(spec: &FunctionSpec, owner: Option<&str>) -> Result<Encoded, AwsError> {
    let mut variables = lambda_variables(spec);
    for (name, value) in spec.batch.iter().flat_map(|b| &b.environment) {
        if !is_variable_name(name) {
            return Err(AwsError::Input(format!(
                "the Batch variable name {name:?} of function {:?} cannot be stored: use letters, digits and _, starting with a letter",
                spec.name
            )));
        }
        variables.insert(format!("{BATCH_VAR_PREFIX}{name}"), value.clone());
    }
    let document = encode_document(&without_secrets(spec));
    if document.len() > SPEC_DOCUMENT_LIMIT {
        return Err(AwsError::SpecTooLarge {
            function: spec.name.clone(),
            size: document.len(),
            limit: SPEC_DOCUMENT_LIMIT,
        });
    }
    let mut tags = legacy_tags(spec);
    if let Some(owner) = owner.filter(|o| is_tag_value(o)) {
        tags.insert(OWNER_TAG.into(), owner.into());
    }
    let chunks: Vec<&str> = document
        .as_bytes()
        .chunks(TAG_VALUE_LIMIT)
        // base64 is ASCII: every chunk is text.
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    tags.insert(SPEC_TAG.into(), format!("{SPEC_VERSION} {}", chunks.len()));
    for (i, chunk) in chunks.iter().enumerate() {
        tags.insert(format!("{SPEC_CHUNK_TAG}{i}"), chunk.to_string());
    }
    Ok(Encoded { tags, variables })
}

/// A function as scar lists it, from GetFunction's answer: its spec from the document
/// and its variables, or from the legacy tags when it has no document; its API's URL on
/// AWS, or at the `endpoint` override (see [`api_url`](crate::api_url)).
pub(crate) fn decode(out: &GetFunctionOutput, endpoint: Option<&str>) -> FunctionInfo {
    let stored = Stored::of(out);
    let mut spec = match decode_document(&stored.tags) {
        Some(document) => with_stored_values(document, &stored),
        None => decode_legacy(&stored),
    };
    // The tag wins over the document: `rm` keeps the image when either says so.
    spec.keep_image |= stored.tags.get(DELETE_IMAGE_TAG).map(String::as_str) == Some("false");
    FunctionInfo {
        spec,
        provider: ProviderKind::Aws,
        package: Some(if stored.is_image {
            PackageKind::Image
        } else {
            PackageKind::Zip
        }),
        image_digest: stored.digest(),
        created: stored
            .last_modified
            .as_deref()
            .map(rfc3339)
            .unwrap_or_default(),
        owner: stored
            .tags
            .get(OWNER_TAG)
            .filter(|o| !o.is_empty())
            .cloned(),
        api_url: (stored.variables.get(API_ID_VAR))
            .filter(|id| !id.is_empty())
            .map(|id| crate::api_url(id, &stored.region, endpoint)),
        // A variable, not a tag: the tags are nearly all taken (see the module's doc).
        supervisor_version: (stored
            .variables
            .get(scar_core::contract::SUPERVISOR_VERSION_VAR))
        .filter(|v| !v.is_empty())
        .cloned(),
    }
}

/// The document of `spec`: its compact JSON, deflated, base64-encoded.
fn encode_document(spec: &FunctionSpec) -> String {
    let json = serde_json::to_vec(spec).unwrap_or_default();
    let mut deflater = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let deflated = deflater
        .write_all(&json)
        .and_then(|()| deflater.finish())
        .unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(deflated)
}

/// The spec in the document tags, if they hold one this version reads.
fn decode_document(tags: &HashMap<String, String>) -> Option<FunctionSpec> {
    let (version, chunks) = tags.get(SPEC_TAG)?.split_once(' ')?;
    if version.parse::<u32>().ok()? != SPEC_VERSION {
        return None;
    }
    let chunks: usize = chunks.parse().ok()?;
    let mut document = String::new();
    for i in 0..chunks.min(SPEC_MAX_CHUNKS) {
        document.push_str(tags.get(&format!("{SPEC_CHUNK_TAG}{i}"))?);
    }
    let deflated = base64::engine::general_purpose::STANDARD
        .decode(document)
        .ok()?;
    let mut json = Vec::new();
    flate2::read::DeflateDecoder::new(deflated.as_slice())
        .take(INFLATED_LIMIT)
        .read_to_end(&mut json)
        .ok()?;
    serde_json::from_slice(&json).ok()
}

/// `spec` as its document holds it: no variable values, no storage provider keys; the
/// container variables' names only for a runtime of the image's own (whose variables
/// carry no prefix that tells them apart).
fn without_secrets(spec: &FunctionSpec) -> FunctionSpec {
    let mut document = spec.clone();
    document.lambda_environment.clear();
    match spec.runtime_client {
        RuntimeClient::Scar => document.environment.clear(),
        RuntimeClient::Image => document.environment.values_mut().for_each(String::clear),
    }
    if let Some(batch) = &mut document.batch {
        batch.environment.clear();
    }
    for provider in document.storage_providers.values_mut() {
        provider.access_key = None;
        provider.secret_key = None;
    }
    document
}

/// The document's spec with what Lambda holds: its configuration's name, memory, timeout
/// and description, and the values the document leaves out, from the variables.
fn with_stored_values(document: FunctionSpec, stored: &Stored) -> FunctionSpec {
    let mut spec = document;
    spec.name = stored.name.clone();
    spec.memory_mb = stored.memory_mb;
    spec.timeout_s = stored.timeout_s;
    spec.description = stored.description.clone();
    // The VPC it runs in is Lambda's (someone may have changed it on the console).
    spec.vpc = stored.vpc.clone();
    spec.file_systems = stored.file_systems.clone().unwrap_or(spec.file_systems);
    let container_names: Vec<String> = std::mem::take(&mut spec.environment).into_keys().collect();
    for (name, value) in &stored.variables {
        let container = match spec.runtime_client {
            RuntimeClient::Scar => name.strip_prefix(CONTAINER_VAR_PREFIX),
            RuntimeClient::Image => container_names.contains(name).then_some(name.as_str()),
        };
        let batch = spec.batch.as_mut().zip(name.strip_prefix(BATCH_VAR_PREFIX));
        if let Some(container) = container {
            spec.environment
                .insert(container.to_string(), value.clone());
        } else if let Some((batch, name)) = batch {
            batch.environment.insert(name.to_string(), value.clone());
        } else if name == STORAGE_PROVIDERS_VAR {
            // The whole providers, keys and all.
            spec.storage_providers.extend(storage_providers(value));
        } else if name == LOG_LEVEL_VAR && spec.log_level.is_some() {
            // The supervisor's, from `log_level`.
        } else if name == scar_core::contract::EXTRA_PAYLOAD_VAR && spec.extra_payload.is_some() {
            // Where the extra payload is, from `extra_payload`.
        } else if !is_scar_variable(name) {
            spec.lambda_environment.insert(name.clone(), value.clone());
        }
    }
    spec
}

/// The spec of a function made before the document, from its legacy tags and variables:
/// no init script, no Batch block, outputs without filters.
fn decode_legacy(stored: &Stored) -> FunctionSpec {
    let tags = &stored.tags;
    let mut environment = BTreeMap::new();
    let mut lambda_environment = BTreeMap::new();
    let mut storage_providers = BTreeMap::new();
    for (k, v) in &stored.variables {
        if let Some(name) = k.strip_prefix(CONTAINER_VAR_PREFIX) {
            environment.insert(name.to_string(), v.clone());
        } else if k == STORAGE_PROVIDERS_VAR {
            storage_providers = self::storage_providers(v);
        } else if !is_scar_variable(k) {
            lambda_environment.insert(k.clone(), v.clone());
        }
    }
    let mut inputs: Vec<scar_core::InputSpec> = legacy_paths(tags, INPUT_TAG)
        .into_iter()
        .map(|(storage, p)| scar_core::InputSpec {
            storage,
            ..scar_core::InputSpec::at(&p)
        })
        .collect();
    // Functions made before `scar:input`: their bucket's `input/` folder.
    if let Some(bucket) = tags.get(INPUT_BUCKET_TAG).filter(|_| inputs.is_empty()) {
        inputs.push(scar_core::InputSpec {
            storage: None,
            bucket: bucket.clone(),
            folder: scar_core::bucket::INPUT_FOLDER.into(),
        });
    }
    let outputs = legacy_paths(tags, OUTPUT_TAG)
        .into_iter()
        .map(|(storage, p)| scar_core::OutputSpec {
            storage,
            ..scar_core::OutputSpec::at(&p)
        })
        .collect();
    let image = tags
        .get(IMAGE_TAG)
        .cloned()
        .or_else(|| stored.image_uri.clone())
        .unwrap_or_else(|| if stored.is_image { "image" } else { "zip" }.into());
    let default_threshold =
        scar_core::config::DEFAULT_THRESHOLD_S.min(stored.timeout_s.saturating_sub(1));
    let mut spec = FunctionSpec::new(stored.name.clone(), image);
    spec.memory_mb = stored.memory_mb;
    spec.timeout_s = stored.timeout_s;
    spec.timeout_threshold_s = tags
        .get(THRESHOLD_TAG)
        .and_then(|t| t.parse().ok())
        .unwrap_or(default_threshold);
    spec.description = stored.description.clone();
    spec.environment = environment;
    spec.lambda_environment = lambda_environment;
    spec.inputs = inputs;
    spec.outputs = outputs;
    spec.storage_providers = storage_providers;
    spec.execution_mode = tags
        .get(MODE_TAG)
        .and_then(|m| scar_core::ExecutionMode::parse(m))
        .unwrap_or_default();
    spec.runtime_client = match tags.get(RUNTIME_TAG).map(String::as_str) {
        Some("image") => RuntimeClient::Image,
        _ => RuntimeClient::Scar,
    };
    spec
}

/// The legacy tags, each where its value is a valid tag value: what scar wrote before
/// the document, still read by older versions (and by [`decode_legacy`]).
fn legacy_tags(spec: &FunctionSpec) -> HashMap<String, String> {
    let mut tags = HashMap::from([
        (CREATED_BY_TAG.0.to_string(), CREATED_BY_TAG.1.to_string()),
        (THRESHOLD_TAG.into(), spec.timeout_threshold_s.to_string()),
    ]);
    let mut insert = |tag: &str, value: String| {
        if !value.is_empty() && is_tag_value(&value) {
            tags.insert(tag.into(), value);
        }
    };
    insert(IMAGE_TAG, spec.image.clone());
    // Every input folder, a storage provider's as `<provider>:<path>`.
    let inputs: Vec<String> = spec.inputs.iter().map(|i| i.to_string()).collect();
    insert(INPUT_TAG, inputs.join(" "));
    let outputs: Vec<String> = spec.outputs.iter().map(|o| o.to_string()).collect();
    insert(OUTPUT_TAG, outputs.join(" "));
    if spec.execution_mode.uses_batch() {
        insert(MODE_TAG, spec.execution_mode.to_string());
    }
    if spec.runtime_client == RuntimeClient::Image {
        insert(RUNTIME_TAG, spec.runtime_client.as_str().into());
    }
    if spec.keep_image {
        insert(DELETE_IMAGE_TAG, "false".into());
    }
    tags
}

/// The folders a legacy tag lists: `[<provider>:]bucket[/folder]`, separated by spaces.
fn legacy_paths(
    tags: &HashMap<String, String>,
    tag: &str,
) -> Vec<(Option<String>, scar_core::bucket::BucketPath)> {
    let Some(value) = tags.get(tag) else {
        return Vec::new();
    };
    value
        .split(' ')
        .filter_map(|p| {
            let (storage, path) = match p.split_once(':') {
                Some((s, p)) => (Some(s.to_string()), p),
                None => (None, p),
            };
            scar_core::bucket::BucketPath::parse(path)
                .ok()
                .map(|b| (storage, b))
        })
        .collect()
}

/// The function's Lambda variables: its own, its container's under `CONT_VAR_` (so
/// that any name, Lambda's reserved ones included, can be stored), and its storage
/// providers for the supervisor.
pub(crate) fn lambda_variables(spec: &FunctionSpec) -> BTreeMap<String, String> {
    let mut vars = spec.lambda_environment.clone();
    for (k, v) in &spec.environment {
        // A runtime of the image's own reads its variables as they are: no supervisor
        // strips the prefix.
        let name = match spec.runtime_client {
            RuntimeClient::Image => k.clone(),
            RuntimeClient::Scar => format!("{CONTAINER_VAR_PREFIX}{k}"),
        };
        vars.insert(name, v.clone());
    }
    if let Some(level) = spec.log_level {
        vars.insert(LOG_LEVEL_VAR.into(), level.to_string());
    }
    if spec.extra_payload.is_some() {
        vars.insert(
            scar_core::contract::EXTRA_PAYLOAD_VAR.into(),
            scar_core::contract::EXTRA_PAYLOAD_DIR.into(),
        );
    }
    if !spec.storage_providers.is_empty() {
        vars.insert(
            STORAGE_PROVIDERS_VAR.into(),
            serde_json::to_string(&spec.storage_providers).unwrap_or_default(),
        );
    }
    vars
}

/// The storage providers a `SCAR_STORAGE_PROVIDERS` variable holds.
fn storage_providers(value: &str) -> BTreeMap<String, StorageProvider> {
    serde_json::from_str(value).unwrap_or_default()
}

/// Variables scar sets for the supervisor itself, never the user's.
fn is_scar_variable(name: &str) -> bool {
    name == BATCH_JOB_QUEUE_VAR
        || name == BATCH_JOB_DEFINITION_VAR
        || name == API_ID_VAR
        || name == scar_core::contract::SUPERVISOR_VERSION_VAR
}

/// Whether `name` is a valid Lambda variable name once prefixed: letters, digits and `_`.
fn is_variable_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether the tags are those of a function (or resource) scar created.
pub(crate) fn is_scar(tags: Option<&HashMap<String, String>>) -> bool {
    tags.and_then(|t| t.get(CREATED_BY_TAG.0))
        .is_some_and(|v| v == CREATED_BY_TAG.1)
}

/// Lambda tag values: up to 256 of letters, digits, spaces and `_ . : / = + - @`.
pub(crate) fn is_tag_value(value: &str) -> bool {
    value.len() <= TAG_VALUE_LIMIT
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || " _.:/=+-@".contains(c))
}

/// What GetFunction says of a function, as the decoders need it.
struct Stored {
    name: String,
    memory_mb: u32,
    timeout_s: u32,
    description: String,
    is_image: bool,
    image_uri: Option<String>,
    resolved_image_uri: Option<String>,
    last_modified: Option<String>,
    tags: HashMap<String, String>,
    variables: BTreeMap<String, String>,
    vpc: Option<scar_core::VpcSpec>,
    /// `None`: Lambda's answer has no FileSystemConfigs (some emulators keep none).
    file_systems: Option<Vec<scar_core::FileSystemSpec>>,
    /// The function's region, from its ARN.
    region: String,
}

impl Stored {
    fn of(out: &GetFunctionOutput) -> Stored {
        let empty = FunctionConfiguration::builder().build();
        let config = out.configuration().unwrap_or(&empty);
        Stored {
            name: config.function_name().unwrap_or_default().to_string(),
            memory_mb: config.memory_size().unwrap_or(128).max(0) as u32,
            timeout_s: config.timeout().unwrap_or(3).max(0) as u32,
            description: config.description().unwrap_or_default().to_string(),
            is_image: matches!(config.package_type(), Some(PackageType::Image)),
            image_uri: out.code().and_then(|c| c.image_uri()).map(str::to_string),
            resolved_image_uri: out
                .code()
                .and_then(|c| c.resolved_image_uri())
                .map(str::to_string),
            last_modified: config.last_modified().map(str::to_string),
            tags: out.tags().cloned().unwrap_or_default(),
            variables: config
                .environment()
                .and_then(|e| e.variables())
                .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            vpc: config
                .vpc_config()
                .filter(|v| !v.subnet_ids().is_empty())
                .map(|v| scar_core::VpcSpec {
                    subnet_ids: v.subnet_ids().to_vec(),
                    security_group_ids: v.security_group_ids().to_vec(),
                }),
            region: (config.function_arn().and_then(|arn| arn.split(':').nth(3)))
                .filter(|r| !r.is_empty())
                .unwrap_or(scar_core::config::DEFAULT_REGION)
                .to_string(),
            file_systems: config.file_system_configs.as_ref().map(|c| {
                c.iter()
                    .map(|fs| scar_core::FileSystemSpec {
                        arn: fs.arn().to_string(),
                        local_mount_path: fs.local_mount_path().to_string(),
                    })
                    .collect()
            }),
        }
    }

    /// The digest the image package is pinned by, if any.
    fn digest(&self) -> String {
        self.resolved_image_uri
            .as_deref()
            .or(self.image_uri.as_deref())
            .and_then(|u| u.split_once('@'))
            .map(|(_, d)| d.to_string())
            .unwrap_or_default()
    }
}

/// Lambda's `LastModified` (`2024-01-02T03:04:05.000+0000`) as RFC 3339.
fn rfc3339(text: &str) -> String {
    chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .unwrap_or_else(|_| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_lambda::types::EnvironmentResponse;
    use proptest::prelude::*;

    /// GetFunction's answer for a function created with `encoded`.
    fn stored_as(spec: &FunctionSpec, encoded: Encoded) -> GetFunctionOutput {
        let environment = EnvironmentResponse::builder()
            .set_variables(Some(encoded.variables.into_iter().collect()))
            .build();
        let config = FunctionConfiguration::builder()
            .function_name(&spec.name)
            .memory_size(spec.memory_mb as i32)
            .timeout(spec.timeout_s as i32)
            .description(&spec.description)
            .environment(environment)
            .package_type(PackageType::Zip)
            .build();
        GetFunctionOutput::builder()
            .configuration(config)
            .set_tags(Some(encoded.tags))
            .build()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the spec, its tags are tags Lambda accepts, they hold no secret, and
        /// the function reads back as the spec.
        #[test]
        fn specs_read_back_whole(spec in crate::spec_strategy::specs(true)) {
            // The longest owner a tag holds.
            let owner = format!("arn:aws:iam::123456789012:user/{}", "a".repeat(224));
            let encoded = encode(&spec, Some(&owner)).unwrap();
            prop_assert!(encoded.tags.len() <= 50);
            prop_assert_eq!(&encoded.tags[OWNER_TAG], &owner);
            for (key, value) in &encoded.tags {
                prop_assert!(key.len() <= 128 && is_tag_value(key), "{key}");
                prop_assert!(value.is_empty() || is_tag_value(value), "{key}={value}");
            }
            let document = decode_document(&encoded.tags).unwrap();
            prop_assert!(document.lambda_environment.is_empty());
            prop_assert!(document.environment.values().all(String::is_empty));
            prop_assert!(document.batch.iter().all(|b| b.environment.is_empty()));
            prop_assert!(document
                .storage_providers
                .values()
                .all(|p| p.access_key.is_none() && p.secret_key.is_none()));
            let info = decode(&stored_as(&spec, encoded), None);
            prop_assert_eq!(info.spec, spec);
            prop_assert_eq!(info.owner, Some(owner));
        }
    }

    /// A function's extra payload: the folder in the document, `EXTRA_PAYLOAD=/var/task`
    /// among its Lambda variables and not among the user's when read back.
    #[test]
    fn extra_payload_reads_back_without_its_variable() {
        let spec = scar_test_support::moto::spec("ep-fn").with_extra_payload("./payload");
        let encoded = encode(&spec, None).unwrap();
        assert_eq!(
            encoded.variables.get("EXTRA_PAYLOAD").map(String::as_str),
            Some("/var/task")
        );
        let info = decode(&stored_as(&spec, encoded), None);
        assert_eq!(info.spec, spec);
        assert!(!info.spec.lambda_environment.contains_key("EXTRA_PAYLOAD"));
        let plain = scar_test_support::moto::spec("plain");
        assert!(!encode(&plain, None)
            .unwrap()
            .variables
            .contains_key("EXTRA_PAYLOAD"));
    }

    /// A function's API Gateway: its name in the document, its id in SCAR's variable (not
    /// one of the user's), its URL from the id and the function's region.
    #[test]
    fn api_gateway_reads_back_with_its_url() {
        let spec = scar_test_support::moto::spec("api-fn").with_api_gateway("my api");
        let mut encoded = encode(&spec, None).unwrap();
        encoded
            .variables
            .insert(API_ID_VAR.into(), "a1b2c3d4e5".into());
        let mut out = stored_as(&spec, encoded);
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:api-fn";
        out.configuration.as_mut().unwrap().function_arn = Some(arn.into());
        let info = decode(&out, None);
        assert_eq!(
            info.spec, spec,
            "API_GATEWAY_ID is no variable of the user's"
        );
        assert_eq!(
            info.api_url.as_deref(),
            Some("https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/scar/launch")
        );
        // With an endpoint override, the emulator's URL of the same API.
        assert_eq!(
            decode(&out, Some("http://127.0.0.1:5000"))
                .api_url
                .as_deref(),
            Some("http://127.0.0.1:5000/restapis/a1b2c3d4e5/scar/_user_request_/launch")
        );
        let without = scar_test_support::moto::spec("plain");
        let info = decode(&stored_as(&without, encode(&without, None).unwrap()), None);
        assert_eq!((info.spec.api_gateway, info.api_url), (None, None));
    }

    /// Functions made before the document read as they always did: the legacy tags,
    /// the container's variables under `CONT_VAR_`, the storage providers' variable.
    #[test]
    fn legacy_tags_still_read() {
        let tags = HashMap::from([
            ("createdby".to_string(), "scar".to_string()),
            ("scar:image".into(), "docker.io/library/alpine:3.20".into()),
            ("scar:timeout_threshold".into(), "7".into()),
            (
                "scar:input".into(),
                "flow/start minio.store:media/in".into(),
            ),
            ("scar:output".into(), "flow/out".into()),
            ("scar:execution_mode".into(), "lambda-batch".into()),
        ]);
        let variables = BTreeMap::from([
            ("CONT_VAR_GREETING".to_string(), "hi".to_string()),
            ("MODE".into(), "fast".into()),
            (BATCH_JOB_QUEUE_VAR.into(), "scar-old".into()),
            (
                STORAGE_PROVIDERS_VAR.into(),
                r#"{"minio.store":{"endpoint":"https://m.example.org","access_key":"ak","secret_key":"sk"}}"#.into(),
            ),
        ]);
        let mut spec = scar_test_support::moto::spec("old");
        spec.description = "made long ago".into();
        let info = decode(&stored_as(&spec, Encoded { tags, variables }), None);
        let got = info.spec;
        assert_eq!(got.image, "docker.io/library/alpine:3.20");
        assert_eq!(got.timeout_threshold_s, 7);
        assert_eq!(got.description, "made long ago");
        let inputs: Vec<String> = got.inputs.iter().map(|i| i.to_string()).collect();
        assert_eq!(inputs, ["flow/start", "minio.store:media/in"]);
        assert_eq!(got.outputs[0].to_string(), "flow/out");
        assert_eq!(got.execution_mode, scar_core::ExecutionMode::LambdaBatch);
        assert_eq!(got.environment["GREETING"], "hi");
        assert_eq!(got.lambda_environment.keys().collect::<Vec<_>>(), ["MODE"]);
        assert_eq!(
            got.storage_providers["minio.store"].secret_key.as_deref(),
            Some("sk")
        );
        assert_eq!((got.init_script, got.batch), (None, None));

        // The first scar versions: one input bucket.
        let tags = HashMap::from([
            ("createdby".to_string(), "scar".to_string()),
            ("scar:input_bucket".into(), "oldbucket".into()),
        ]);
        let got = decode(
            &stored_as(
                &spec,
                Encoded {
                    tags,
                    variables: BTreeMap::new(),
                },
            ),
            None,
        )
        .spec;
        assert_eq!(got.inputs[0].to_string(), "oldbucket/input");
    }

    /// A bug this prevents: outputs whose tag value was not a valid one (a `,` in a
    /// filter's folder, more than 256 characters) were silently left out, and init
    /// scripts, Batch blocks and output filters were never read back at all.
    #[test]
    fn what_the_legacy_tags_lost_reads_back() {
        let mut spec = scar_test_support::moto::spec("full");
        spec.init_script = Some("#!/bin/sh\necho hi, there\n".into());
        spec.outputs = (0..12)
            .map(|i| scar_core::OutputSpec {
                prefix: vec![format!("p{i}")],
                suffix: vec![".txt".into(), ".json".into()],
                ..scar_core::OutputSpec::at(
                    &scar_core::bucket::BucketPath::parse(&format!(
                        "a-long-output-bucket-name/folder-{i}"
                    ))
                    .unwrap(),
                )
            })
            .collect();
        spec.batch = Some(scar_core::BatchSpec::default());
        let encoded = encode(&spec, None).unwrap();
        assert!(
            !encoded.tags.contains_key(OUTPUT_TAG),
            "over 256 characters"
        );
        assert_eq!(decode(&stored_as(&spec, encoded), None).spec, spec);
    }

    /// A document that cannot be read (a tag edited by hand, a chunk missing) reads as a
    /// function without one: from the legacy tags.
    #[test]
    fn an_unreadable_document_falls_back_to_the_legacy_tags() {
        let mut spec = scar_test_support::moto::spec("edited");
        spec.init_script = Some("echo hi".into());
        let mut encoded = encode(&spec, None).unwrap();
        encoded
            .tags
            .insert("scar:spec:0".into(), "bm90IGRlZmxhdGU=".into());
        let got = decode(&stored_as(&spec, encoded.clone()), None).spec;
        assert_eq!(got.init_script, None);
        assert_eq!(got.image, spec.image);
        encoded.tags.remove("scar:spec:0");
        assert_eq!(
            decode(&stored_as(&spec, encoded), None).spec.init_script,
            None
        );
    }

    /// A spec whose document does not fit is refused, naming the limit; never cut.
    #[test]
    fn a_spec_too_large_is_refused_with_the_limit() {
        let mut spec = scar_test_support::moto::spec("huge");
        // Text that does not deflate: a pseudo-random sequence.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let script: String = (0..12_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'!' + (x % 90) as u8)
            })
            .collect();
        spec.init_script = Some(script);
        let err = encode(&spec, None).unwrap_err();
        assert!(
            matches!(
                err,
                AwsError::SpecTooLarge {
                    limit: SPEC_DOCUMENT_LIMIT,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("10240"), "{err}");
    }

    #[test]
    fn tag_values_and_times() {
        assert!(is_tag_value("docker.io/library/ubuntu:22.04"));
        assert!(is_tag_value("AZaz09+/="));
        assert!(!is_tag_value("a,b"));
        assert_eq!(
            rfc3339("2024-01-02T03:04:05.000+0000"),
            "2024-01-02T03:04:05Z"
        );
    }
}
