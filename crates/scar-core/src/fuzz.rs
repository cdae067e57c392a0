//! Fuzz entry points: the parsers of scar-core that take untrusted input, as plain
//! functions. The fuzz targets (`fuzz/`, `cargo xtask fuzz`) call them, and so do the
//! regression tests that replay the seed corpora and past crashes. Each one must never
//! panic, whatever the bytes; errors are fine.

/// An invocation event as the supervisor receives it (S3 notification or direct payload),
/// with everything the supervisor derives from it: keys decoded, file names, scripts.
pub fn event(data: &[u8]) {
    let Ok(raw) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    match crate::event::Event::parse(&raw) {
        Ok(crate::event::Event::Storage(records)) => {
            for r in &records {
                let _ = r.file_name();
                let key = crate::event::encode_s3_key(&crate::event::decode_s3_key(&r.key));
                let _ = crate::event::decode_s3_key(&key);
            }
        }
        Ok(crate::event::Event::Direct(payload)) => {
            let _ = payload.script_text();
        }
        Ok(crate::event::Event::Http(request)) => {
            let _ = request.body.len();
        }
        Ok(crate::event::Event::Unknown(_)) | Err(_) => {}
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::event::decode_s3_key(text);
        let _ = crate::event::encode_s3_key(text);
    }
}

/// A SCAR function definition file (YAML), and the specs it makes validated.
pub fn fdl(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(fdl) = crate::fdl::Fdl::parse(text, std::path::Path::new("/nonexistent")) {
        for f in fdl.functions {
            let assignments: Vec<String> = f
                .environment
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let Ok(environment) = crate::spec::parse_container_env_assignments(&assignments) else {
                continue;
            };
            let spec = crate::FunctionSpec {
                name: f.name,
                image: f.image,
                memory_mb: f.memory_mb.unwrap_or(512),
                timeout_s: f.timeout_s.unwrap_or(300),
                timeout_threshold_s: f.timeout_threshold_s.unwrap_or(10),
                description: f.description.unwrap_or_default(),
                environment,
                init_script: None,
                lambda_environment: f.lambda_environment,
                inputs: f.inputs,
                outputs: f.outputs,
                storage_providers: f.storage_providers,
                execution_mode: crate::ExecutionMode::Lambda,
                batch: None,
                runtime_client: Default::default(),
                vpc: f.vpc,
                file_systems: f.file_systems,
                reuse_image: !f.create_image.unwrap_or(true),
                keep_image: !f.delete_image.unwrap_or(true),
                reserved_concurrency: None,
                architecture: f.architecture.unwrap_or_default(),
                log_level: f.log_level,
                api_gateway: f.api_gateway,
                extra_payload: f.extra_payload.map(|p| p.display().to_string()),
                network: f.network.unwrap_or_default(),
            };
            let _ = spec.validate();
            let _ = spec.buckets();
            let _ = spec.redacted();
        }
    }
}

/// The config file (`scar.cfg`), then settings resolved from it.
pub fn config_file(data: &[u8]) {
    let Ok(file) = crate::config::ConfigFile::parse(data) else {
        return;
    };
    let _ = crate::config::Settings::resolve(&Default::default(), &|_| None, &file);
    let _ = serde_json::to_vec(&file);
}
