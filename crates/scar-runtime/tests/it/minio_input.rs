//! A MinIO input folder at the supervisor: two moto servers on loopback, one
//! the function's own S3, the other standing for a MinIO server (`minio.store`), with the
//! same object name in both. An event whose record is MinIO's (`eventSource` `minio:s3`), or
//! that names an object of a MinIO input folder, is downloaded from the MinIO server; an
//! object of an input folder of the function's own storage from its own S3.
#![cfg(feature = "s3")]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use scar_core::bucket::ObjectCreated;
use scar_core::event::FunctionFile;
use scar_core::{InputSpec, StorageProvider};
use scar_runtime::storage::{S3Storage, Storage};
use scar_runtime::{Invocation, Supervisor, SupervisorError};
use scar_test_support::moto::Moto;

const SECRET: &str = "minio-secret-never-shown";

fn provider(moto: &Moto) -> StorageProvider {
    StorageProvider {
        endpoint: Some(moto.endpoint()),
        access_key: Some("minio-user".into()),
        secret_key: Some(SECRET.into()),
        ..StorageProvider::default()
    }
}

/// Creates `bucket` on `moto` and stores `body` as `bucket/key` through `storage`.
fn put(moto: &Moto, storage: &dyn Storage, bucket: &str, key: &str, body: &str) {
    let (status, text) = moto.http("PUT", &format!("/{bucket}"), &[], b"").unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&text));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), body).unwrap();
    storage.upload(file.path(), bucket, key, 1).unwrap();
}

fn event(bucket: &str, key: &str, minio: bool) -> serde_json::Value {
    let created = ObjectCreated {
        bucket: bucket.into(),
        key: key.into(),
        size: 1,
        etag: "e".into(),
        event_time: "2026-01-01T00:00:00.000Z".into(),
        region: "us-east-1".into(),
        sequence: 1,
        chain: 1,
    };
    if minio {
        created.to_minio_event()
    } else {
        created.to_event()
    }
}

fn invocation(id: &str, event: serde_json::Value) -> Invocation {
    Invocation {
        request_id: id.into(),
        deadline: SystemTime::now() + Duration::from_secs(60),
        event,
    }
}

#[test]
fn a_minio_record_is_downloaded_from_the_minio_server() {
    let (Some(own), Some(minio)) = (Moto::start(), Moto::start()) else {
        return;
    };
    let own_storage = S3Storage::new(scar_runtime::storage::S3Options {
        endpoint_url: Some(own.endpoint()),
        region: Some("us-east-1".into()),
        credentials: Some(scar_runtime::storage::StaticCredentials {
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
            session_token: None,
        }),
        force_path_style: None,
    });
    let minio_storage = S3Storage::for_provider("minio.store", provider(&minio));
    put(&own, &own_storage, "archive", "in/doc.txt", "from own S3\n");
    put(&own, &own_storage, "own-b", "in/doc.txt", "own input\n");
    put(
        &minio,
        &minio_storage,
        "archive",
        "in/doc.txt",
        "from MinIO\n",
    );
    let listed = minio_storage.list("archive", "in/").unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].key, "in/doc.txt");
    assert_eq!(listed[0].size, 11);

    let tmp = tempfile::tempdir().unwrap();
    let mut providers: HashMap<String, Arc<dyn Storage>> = HashMap::new();
    providers.insert("minio.store".into(), Arc::new(minio_storage));
    let mut sup = Supervisor {
        function: FunctionFile {
            init_script: Some(r#"cat "$INPUT_FILE_PATH""#.into()),
            inputs: vec![
                InputSpec {
                    storage: Some("minio.store".into()),
                    bucket: "archive".into(),
                    folder: "in".into(),
                },
                InputSpec {
                    storage: None,
                    bucket: "own-b".into(),
                    folder: "in".into(),
                },
            ],
            ..FunctionFile::default()
        },
        tmp_root: tmp.path().to_path_buf(),
        echo_output: false,
        storage: Some(Arc::new(own_storage)),
        providers,
        container: None,
    };

    // MinIO's event: from the MinIO server, not the own S3's object of the same name.
    let r = sup
        .invoke(&invocation("m-1", event("archive", "in/doc.txt", true)))
        .unwrap();
    assert!(r.succeeded(), "{r:?}");
    assert_eq!(r.output, "from MinIO\n");
    // An S3-shaped record of the MinIO input folder: from MinIO too (the bucket says so).
    let r = sup
        .invoke(&invocation("m-2", event("archive", "in/doc.txt", false)))
        .unwrap();
    assert_eq!(r.output, "from MinIO\n", "{r:?}");
    // The own input folder: from the own S3.
    let r = sup
        .invoke(&invocation("m-3", event("own-b", "in/doc.txt", false)))
        .unwrap();
    assert_eq!(r.output, "own input\n", "{r:?}");

    // Without the provider's storage: an error that names it, never its keys.
    let minio_storage = sup.providers.remove("minio.store").unwrap();
    let err = sup
        .invoke(&invocation("m-4", event("archive", "in/doc.txt", true)))
        .unwrap_err();
    assert!(
        matches!(err, SupervisorError::NoProvider { ref storage, .. } if storage == "minio.store"),
        "{err:?}"
    );
    for shown in [
        err.to_string(),
        format!("{err:?}"),
        format!("{minio_storage:?}"),
    ] {
        assert!(!shown.contains(SECRET), "{shown}");
    }
    // A MinIO record no input folder holds, with exactly one MinIO provider: that one.
    sup.providers.insert("minio.store".into(), minio_storage);
    sup.function.inputs.truncate(1);
    sup.function.inputs[0].folder = "elsewhere".into();
    let r = sup
        .invoke(&invocation("m-5", event("archive", "in/doc.txt", true)))
        .unwrap();
    assert_eq!(r.output, "from MinIO\n", "{r:?}");
}
