//! Generated function specs, for the spec codec's tests: the codec's own unit test, and
//! the round trip through moto (`tests/moto_spec_roundtrip.rs` includes this file).
//! Every spec passes [`FunctionSpec::validate`] and covers the whole spec: init scripts,
//! Batch blocks, several inputs (a MinIO one among them), outputs with filters, storage
//! providers with keys, the function's and the container's variables, images and
//! descriptions with characters a tag value does not allow.

use std::collections::BTreeMap;

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use scar_core::spec::{ComputeResources, COMPUTE_KINDS};
use scar_core::{
    BatchSpec, ExecutionMode, FunctionSpec, InputSpec, OutputSpec, RuntimeClient, StorageProvider,
};

/// The storage provider inputs and outputs may name.
pub const MINIO: &str = "minio.store";

/// Text with characters a tag value does not allow (`,`, quotes, newlines, non-Latin).
fn odd_text(max: usize) -> BoxedStrategy<String> {
    proptest::string::string_regex(&format!("[ -~éü€日本\n\t😀]{{0,{max}}}"))
        .expect("a valid regex")
        .boxed()
}

fn storage_provider() -> impl Strategy<Value = StorageProvider> {
    (
        option::of("https://minio\\.example\\.org(:[0-9]{4})?"),
        option::of("(us|eu)-(east|west)-[1-3]"),
        any::<bool>(),
        option::of("[A-Z0-9]{8,20}"),
        option::of("[A-Za-z0-9/+]{16,40}"),
    )
        .prop_map(
            |(endpoint, region, verify, access_key, secret_key)| StorageProvider {
                endpoint,
                region,
                verify,
                access_key,
                secret_key,
            },
        )
}

fn folder() -> impl Strategy<Value = String> {
    "([a-z0-9]{1,6}(/[a-z0-9]{1,6})?)?"
}

/// Up to two inputs, each in a bucket of its own (so they never overlap), a MinIO one
/// when `minio`.
fn inputs(minio: bool) -> impl Strategy<Value = Vec<InputSpec>> {
    let storage = if minio {
        option::of(Just(MINIO.to_string())).boxed()
    } else {
        Just(None).boxed()
    };
    vec((storage, folder()), 0..=2).prop_map(|inputs| {
        inputs
            .into_iter()
            .enumerate()
            .map(|(i, (storage, folder))| InputSpec {
                storage,
                bucket: format!("in-bucket-{i}"),
                folder,
            })
            .collect()
    })
}

/// Up to three outputs, in buckets no input uses, some with filters.
fn outputs(minio: bool) -> impl Strategy<Value = Vec<OutputSpec>> {
    let storage = if minio {
        option::of(Just(MINIO.to_string())).boxed()
    } else {
        Just(None).boxed()
    };
    let filters = || vec("[a-z._-]{1,6}", 0..=2);
    vec((storage, 0..2usize, folder(), filters(), filters()), 0..=3).prop_map(|outputs| {
        outputs
            .into_iter()
            .map(|(storage, bucket, folder, prefix, suffix)| OutputSpec {
                storage,
                bucket: format!("out-bucket-{bucket}"),
                folder,
                prefix,
                suffix,
            })
            .collect()
    })
}

fn compute() -> impl Strategy<Value = ComputeResources> {
    (
        prop::sample::select(COMPUTE_KINDS.to_vec()),
        (1u32..16).prop_flat_map(|max| (Just(max), 0..=max, 0..=max)),
        vec("subnet-[0-9a-f]{8}", 0..=2),
        vec("sg-[0-9a-f]{8}", 0..=2),
        vec("[a-z][0-9]\\.(large|xlarge)", 0..=2),
        option::of("[a-z-]{3,12}"),
        option::of("arn:aws:iam::[0-9]{12}:instance-profile/[a-zA-Z]{3,10}"),
    )
        .prop_map(
            |(kind, (max, min, desired), subnets, sgs, types, template, role)| ComputeResources {
                kind: kind.to_string(),
                desired_vcpus: desired,
                min_vcpus: min,
                max_vcpus: max,
                subnets,
                security_group_ids: sgs,
                instance_types: types,
                launch_template_name: template,
                instance_role: role,
            },
        )
}

fn batch() -> impl Strategy<Value = BatchSpec> {
    (
        1u32..8,
        4u32..8192,
        any::<bool>(),
        option::of("arn:aws:iam::[0-9]{12}:role/[a-zA-Z]{3,10}"),
        btree_map("B[A-Z0-9_]{0,8}", odd_text(20), 0..=3),
        compute(),
    )
        .prop_map(
            |(vcpus, memory_mb, enable_gpu, service_role, environment, compute)| BatchSpec {
                vcpus,
                memory_mb,
                enable_gpu,
                service_role,
                environment,
                compute,
            },
        )
}

/// The parts of a spec that do not depend on each other.
#[derive(Debug, Clone)]
struct Parts {
    name: String,
    image: String,
    memory_mb: u32,
    timeouts: (u32, u32),
    description: String,
    environment: BTreeMap<String, String>,
    lambda_environment: BTreeMap<String, String>,
    init_script: Option<String>,
    inputs: Vec<InputSpec>,
    outputs: Vec<OutputSpec>,
    storage_providers: BTreeMap<String, StorageProvider>,
    execution_mode: ExecutionMode,
    batch: Option<BatchSpec>,
    runtime_client: RuntimeClient,
}

/// Valid specs; with `batch_modes`, their execution mode is any (else `lambda`: a Batch
/// mode needs an image package and a network to deploy).
pub fn specs(batch_modes: bool) -> impl Strategy<Value = FunctionSpec> {
    let modes = if batch_modes {
        prop::sample::select(vec![
            ExecutionMode::Lambda,
            ExecutionMode::LambdaBatch,
            ExecutionMode::Batch,
        ])
        .boxed()
    } else {
        Just(ExecutionMode::Lambda).boxed()
    };
    let image = prop_oneof![
        Just("docker.io/library/alpine:3.20".to_string()),
        "registry\\.example\\.org:5000/team/app@sha256:[0-9a-f]{64}",
        odd_text(60),
    ];
    let script = option::of(
        proptest::string::string_regex("#!/bin/sh\n[ -~\n]{0,400}").expect("a valid regex"),
    );
    let first = (
        "[A-Za-z][A-Za-z0-9_-]{0,20}",
        image,
        128u32..=10240,
        (2u32..=900).prop_flat_map(|timeout| (Just(timeout), 0..timeout)),
        odd_text(80),
        btree_map("C[A-Z0-9_]{0,10}", odd_text(30), 0..=3),
        btree_map("L[A-Z0-9_]{0,10}", odd_text(30), 0..=3),
        script,
    );
    let second = (
        any::<bool>(),
        modes,
        option::of(batch()),
        any::<bool>(),
        option::of(storage_provider()),
    );
    (first, second)
        .prop_flat_map(|(first, (own_runtime, mode, batch, other, minio))| {
            let has_minio = minio.is_some();
            (
                Just((first, own_runtime, mode, batch, other, minio)),
                inputs(has_minio),
                outputs(has_minio),
            )
        })
        .prop_map(
            |((first, own_runtime, mode, batch, other, minio), inputs, outputs)| {
                let (name, image, memory_mb, timeouts, description, env, lambda_env, script) =
                    first;
                let mut storage_providers = BTreeMap::new();
                if let Some(minio) = minio {
                    storage_providers.insert(MINIO.to_string(), minio);
                }
                if other {
                    storage_providers.insert(
                        "s3.other".to_string(),
                        StorageProvider {
                            region: Some("eu-west-1".into()),
                            access_key: Some("AKIAOTHER".into()),
                            secret_key: Some("other/secret+key".into()),
                            ..StorageProvider::default()
                        },
                    );
                }
                // A Runtime API client of the image's own takes no init script and no Batch mode.
                let runtime_client =
                    if own_runtime && script.is_none() && mode == ExecutionMode::Lambda {
                        RuntimeClient::Image
                    } else {
                        RuntimeClient::Scar
                    };
                Parts {
                    name,
                    image,
                    memory_mb,
                    timeouts,
                    description,
                    environment: env,
                    lambda_environment: lambda_env,
                    init_script: script,
                    inputs,
                    outputs,
                    storage_providers,
                    execution_mode: mode,
                    batch,
                    runtime_client,
                }
            },
        )
        .prop_map(|p| {
            let mut spec = FunctionSpec::new(String::new(), String::new());
            spec.name = p.name;
            spec.image = p.image;
            spec.memory_mb = p.memory_mb;
            spec.timeout_s = p.timeouts.0;
            spec.timeout_threshold_s = p.timeouts.1;
            spec.description = p.description;
            spec.environment = p.environment;
            spec.lambda_environment = p.lambda_environment;
            spec.init_script = p.init_script;
            spec.inputs = p.inputs;
            spec.outputs = p.outputs;
            spec.storage_providers = p.storage_providers;
            spec.execution_mode = p.execution_mode;
            spec.batch = p.batch;
            spec.runtime_client = p.runtime_client;
            spec
        })
        .prop_filter("a valid spec", |s| s.validate().is_ok())
}
