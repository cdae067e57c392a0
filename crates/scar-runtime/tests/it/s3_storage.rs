//! The supervisor against a real S3 API: moto's server on loopback.
//! Without `moto_server` on PATH these tests are skipped loudly, or fail under `CI`.
#![cfg(feature = "s3")]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use scar_core::event::{encode_s3_key, FunctionFile};
use scar_runtime::storage::{S3Options, S3Storage, StaticCredentials};
use scar_runtime::{Invocation, Supervisor, SupervisorError};
use serde_json::json;

const REGION: &str = "us-east-1";
const KEY_ID: &str = "testing";
const SECRET: &str = "testing-secret";
/// sha256 of "payload\n".
const PAYLOAD_SHA256: &str = "d4e4877bac978b7952f0d544fc52ebff5411d351d129f1f056fa43f11da9af2b";
/// Set in the child process of the environment tests.
const CHILD_VAR: &str = "SCAR_S3_TEST_CHILD";

/// The storage options of an S3 API at `url`, with the tests' keys.
fn options_at(url: &str) -> S3Options {
    S3Options {
        endpoint_url: Some(url.into()),
        region: Some(REGION.into()),
        credentials: Some(StaticCredentials {
            access_key_id: KEY_ID.into(),
            secret_access_key: SECRET.into(),
            session_token: None,
        }),
        force_path_style: None,
    }
}

/// A moto server on a free loopback port, killed on drop.
struct Moto {
    child: Child,
    url: String,
}

impl Moto {
    /// `None`: moto is not installed and this is not CI (the caller skips).
    fn start(test: &str) -> Option<Moto> {
        let exe = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("moto_server"))
                .find(|p| p.is_file())
        });
        let Some(exe) = exe else {
            if std::env::var_os("CI").is_some() {
                panic!("moto_server is not on PATH: install it with pip install 'moto[server]' (cargo xtask test does)");
            }
            eprintln!("\n*** SKIPPED {test}: moto_server is not on PATH (pip install 'moto[server]') ***\n");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start moto_server");
        let moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server did not listen on {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(moto)
    }

    fn options(&self) -> S3Options {
        options_at(&self.url)
    }

    /// A client of the test's own, to set up and check objects.
    fn client(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new(KEY_ID, SECRET, None, None, "test"))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn put(moto: &Moto, bucket: &str, key: &str, body: &'static [u8]) {
    rt().block_on(async {
        let client = moto.client();
        let _ = client.create_bucket().bucket(bucket).send().await;
        client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from_static(body))
            .send()
            .await
            .unwrap();
    });
}

fn get(moto: &Moto, bucket: &str, key: &str) -> Option<Vec<u8>> {
    rt().block_on(async {
        let object = moto
            .client()
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(object.body.collect().await.unwrap().to_vec())
    })
}

fn s3_event(bucket: &str, key: &str) -> serde_json::Value {
    json!({"Records": [{"eventTime": "2026-01-01T00:00:00.000Z",
        "s3": {"bucket": {"name": bucket}, "object": {"key": encode_s3_key(key)}}}]})
}

fn invocation(id: &str, event: serde_json::Value) -> Invocation {
    Invocation {
        request_id: id.into(),
        deadline: SystemTime::now() + Duration::from_secs(60),
        event,
    }
}

const CHECKSUM_SCRIPT: &str = r#"echo "key=$STORAGE_OBJECT_KEY file=$(basename "$INPUT_FILE_PATH")"
cat "$INPUT_FILE_PATH"
mkdir -p "$TMP_OUTPUT_DIR/sub"
sha256sum "$INPUT_FILE_PATH" | cut -d' ' -f1 > "$TMP_OUTPUT_DIR/sub/x.sha256""#;

#[test]
fn storage_event_downloads_from_and_uploads_to_s3() {
    let Some(moto) = Moto::start("storage_event_downloads_from_and_uploads_to_s3") else {
        return;
    };
    let key = "input/dätä file+1 ✓.txt";
    put(&moto, "bkt", key, b"payload\n");
    let tmp = tempfile::tempdir().unwrap();
    let storage = S3Storage::new(moto.options());
    assert!(storage.path_style());
    let sup = Supervisor {
        function: FunctionFile {
            init_script: Some(CHECKSUM_SCRIPT.into()),
            outputs: vec![scar_core::OutputSpec::at(
                &scar_core::bucket::BucketPath::parse("bkt/output").unwrap(),
            )],
            ..FunctionFile::default()
        },
        tmp_root: tmp.path().to_path_buf(),
        echo_output: false,
        storage: Some(Arc::new(storage)),
        providers: Default::default(),
        container: None,
    };

    let r = sup
        .invoke(&invocation("s3-1", s3_event("bkt", key)))
        .unwrap();
    assert!(r.succeeded(), "{r:?}");
    assert_eq!(
        r.output,
        format!("key={key} file=dätä file+1 ✓.txt\npayload\n"),
        "the input was downloaded under its file name"
    );
    assert_eq!(r.uploaded, ["bkt/output/sub/x.sha256"]);
    assert_eq!(
        get(&moto, "bkt", "output/sub/x.sha256").expect("the output was uploaded"),
        format!("{PAYLOAD_SHA256}\n").as_bytes()
    );

    // A missing object is an error, not a run without input.
    let err = sup
        .invoke(&invocation("s3-2", s3_event("bkt", "input/nope")))
        .unwrap_err();
    match err {
        SupervisorError::Download {
            bucket,
            key,
            source,
        } => {
            assert_eq!((bucket.as_str(), key.as_str()), ("bkt", "input/nope"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{source}");
        }
        other => panic!("expected a download error, got {other:?}"),
    }
    assert!(!tmp.path().join("s3-2").exists());
}

/// Runs `test` of this binary in a child process with exactly these AWS variables (and no
/// `SCAR_STORAGE_DIR`), so that the supervisor reads its own environment.
fn in_child(test: &str, vars: &[(&str, &str)]) {
    // The test's full name in this binary: its module path without the crate's name.
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let test = format!("{module}::{test}");
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", &test, "--nocapture", "--test-threads=1"]);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("AWS_") || k == "SCAR_STORAGE_DIR" || k == "SCAR_FUNCTION_FILE" {
            cmd.env_remove(k);
        }
    }
    // Nowhere to find credentials: no profile files, no instance metadata.
    let home = tempfile::tempdir().unwrap();
    cmd.env("HOME", home.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(CHILD_VAR, "1")
        .envs(vars.iter().copied());
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{test} failed in its child:\n{text}");
    assert!(text.contains("1 passed"), "{test} did not run:\n{text}");
}

fn supervisor_from_environment(tmp: &std::path::Path, init_script: &str) -> Supervisor {
    supervisor_of(
        tmp,
        FunctionFile {
            init_script: Some(init_script.into()),
            outputs: vec![output("env-bkt/output")],
            ..FunctionFile::default()
        },
    )
}

fn output(path: &str) -> scar_core::OutputSpec {
    scar_core::OutputSpec::at(&scar_core::bucket::BucketPath::parse(path).unwrap())
}

fn supervisor_of(tmp: &std::path::Path, function: FunctionFile) -> Supervisor {
    let file = tmp.join("function.json");
    std::fs::write(&file, serde_json::to_vec(&function).unwrap()).unwrap();
    // SAFETY (edition 2021: safe): this runs alone in its own child process.
    std::env::set_var("SCAR_FUNCTION_FILE", &file);
    let mut sup = Supervisor::from_environment().unwrap();
    sup.tmp_root = tmp.to_path_buf();
    sup.echo_output = false;
    sup
}

#[test]
fn direct_invocation_needs_no_credentials() {
    if std::env::var_os(CHILD_VAR).is_none() {
        return in_child("direct_invocation_needs_no_credentials", &[]);
    }
    let tmp = tempfile::tempdir().unwrap();
    let sup = supervisor_from_environment(tmp.path(), "echo hello");
    let storage = format!("{:?}", sup.storage);
    assert!(storage.contains("S3Storage"), "{storage}");
    let started = Instant::now();
    let r = sup.invoke(&invocation("d-1", json!({}))).unwrap();
    assert!(r.succeeded(), "{r:?}");
    assert_eq!(r.output, "hello\n");
    assert!(r.uploaded.is_empty());
    assert!(started.elapsed() < Duration::from_secs(5));
    // Storage was never touched: no client, hence no credentials looked up.
    let storage = format!("{:?}", sup.storage);
    assert!(storage.contains("connected: false"), "{storage}");
}

#[test]
fn environment_endpoint_and_credentials_reach_s3() {
    if std::env::var_os(CHILD_VAR).is_none() {
        let Some(moto) = Moto::start("environment_endpoint_and_credentials_reach_s3") else {
            return;
        };
        put(&moto, "env-bkt", "input/über.txt", b"payload\n");
        // What Lambda gives, plus the SDK's own endpoint variable (moto: any key works).
        in_child(
            "environment_endpoint_and_credentials_reach_s3",
            &[
                ("AWS_ENDPOINT_URL_S3", &moto.url),
                ("AWS_ACCESS_KEY_ID", "AKIAENV"),
                ("AWS_SECRET_ACCESS_KEY", "env-secret"),
                ("AWS_SESSION_TOKEN", "env-token"),
                ("AWS_REGION", REGION),
            ],
        );
        assert_eq!(
            get(&moto, "env-bkt", "output/sub/x.sha256").expect("the output was uploaded"),
            format!("{PAYLOAD_SHA256}\n").as_bytes()
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sup = supervisor_from_environment(tmp.path(), CHECKSUM_SCRIPT);
    let r = sup
        .invoke(&invocation("e-1", s3_event("env-bkt", "input/über.txt")))
        .unwrap();
    assert!(r.succeeded(), "{r:?}");
    assert!(r.output.ends_with("payload\n"), "{}", r.output);
    assert_eq!(r.uploaded, ["env-bkt/output/sub/x.sha256"]);
}

/// The secret of the MinIO-style store in the storage-provider test.
const STORE_SECRET: &str = "store-secret-do-not-print";

/// An output to a storage provider (a second moto server standing for MinIO, with its
/// own endpoint and credentials) beside one to the function's own S3; a container
/// variable named `AWS_ACCESS_KEY_ID` (stored as `CONT_VAR_AWS_ACCESS_KEY_ID`, as SCAR
/// does) reaches the script over Lambda's own; the providers' secrets never reach the
/// script or the output.
#[test]
fn storage_provider_outputs_and_container_credentials() {
    if std::env::var_os(CHILD_VAR).is_none() {
        let test = "storage_provider_outputs_and_container_credentials";
        let (Some(s3), Some(store)) = (Moto::start(test), Moto::start(test)) else {
            return;
        };
        put(&s3, "own-bkt", "input/photo.txt", b"payload\n");
        put(&store, "archive", "keep", b"");
        let providers = json!({"minio.store": {
            "endpoint": store.url, "access_key": "store-key", "secret_key": STORE_SECRET,
        }})
        .to_string();
        in_child(
            test,
            &[
                ("AWS_ENDPOINT_URL_S3", &s3.url),
                ("AWS_ACCESS_KEY_ID", "AKIALAMBDA"),
                ("AWS_SECRET_ACCESS_KEY", "lambda-secret"),
                ("AWS_REGION", REGION),
                ("CONT_VAR_AWS_ACCESS_KEY_ID", "AKIACONTAINER"),
                ("SCAR_STORAGE_PROVIDERS", &providers),
            ],
        );
        assert_eq!(
            get(&store, "archive", "all/result.bin").expect("the store got its output"),
            b"bin\n"
        );
        assert_eq!(
            get(&s3, "own-bkt", "output/result.txt").expect("S3 got its output"),
            b"txt\n"
        );
        assert!(
            get(&s3, "own-bkt", "output/result.bin").is_none(),
            "filtered out"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sup = supervisor_of(
        tmp.path(),
        FunctionFile {
            init_script: Some(
                r#"echo "key=$AWS_ACCESS_KEY_ID"
env | grep -c SCAR_STORAGE_PROVIDERS
echo txt > "$TMP_OUTPUT_DIR/result.txt"
echo bin > "$TMP_OUTPUT_DIR/result.bin""#
                    .into(),
            ),
            outputs: vec![
                scar_core::OutputSpec {
                    suffix: vec![".txt".into()],
                    ..output("own-bkt/output")
                },
                scar_core::OutputSpec {
                    storage: Some("minio.store".into()),
                    suffix: vec![".bin".into()],
                    ..output("archive/all")
                },
            ],
            ..FunctionFile::default()
        },
    );
    assert!(!format!("{sup:?}").contains(STORE_SECRET));
    let r = sup
        .invoke(&invocation("p-1", s3_event("own-bkt", "input/photo.txt")))
        .unwrap();
    assert!(r.succeeded(), "{r:?}");
    assert_eq!(r.output, "key=AKIACONTAINER\n0\n", "{r:?}");
    assert_eq!(
        r.uploaded,
        [
            "own-bkt/output/result.txt",
            "minio.store:archive/all/result.bin"
        ]
    );
    assert!(!serde_json::to_string(&r).unwrap().contains(STORE_SECRET));
}

#[test]
fn https_endpoint_builds_its_trust_store_and_fails_cleanly() {
    // Nothing listens there: building the TLS client (the image's roots and the compiled-in
    // ones) must work, and the failure must be an error, not a panic.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let storage = S3Storage::new(options_at(&format!("https://127.0.0.1:{port}")));
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("x");
    let err = scar_runtime::Storage::download(&storage, "bkt", "input/x", &dest).unwrap_err();
    assert!(err.to_string().contains("s3://bkt/input/x"), "{err}");
    assert!(!dest.exists());
}
