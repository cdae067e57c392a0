//! A moto server on a free loopback port (stopped on drop), raw HTTP to its control API, a
//! throttling [`proxy`] in front of it, and packages made on the spot. Clients are built by
//! the tests that use them (scar-aws's from [`Moto::endpoint`], [`Moto::role_arn`],
//! [`REGION`] and [`ACCESS_KEY`]): this crate does not depend on scar-aws.

pub mod proxy;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The role functions are created with (made in moto's IAM by [`Moto::start`]).
pub const ROLE_NAME: &str = "scar-test-role";
pub const ACCOUNT: &str = "123456789012";
/// The region moto is addressed in.
pub const REGION: &str = "us-east-1";
/// The access key id and secret moto accepts from tests (any would do; these are the
/// values moto's documentation uses).
pub const ACCESS_KEY: &str = "testing";

/// A running `moto_server`, killed on drop.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts moto with Lambda in its no-Docker mode and the test role created; `None`
    /// (after a loud SKIPPED) when moto_server is not installed, unless `CI` is set, in
    /// which case the test fails.
    pub fn start() -> Option<Moto> {
        Moto::start_with(&[])
    }

    /// [`Moto::start`] with more variables in moto's environment (such as
    /// `MOTO_SIMPLE_BATCH_FAIL_AFTER`).
    pub fn start_with(vars: &[(&str, &str)]) -> Option<Moto> {
        let port = free_port();
        let spawned = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if std::env::var_os("CI").is_some() {
                    panic!("moto_server is not installed (pip install 'moto[server]'), and CI is set: failing");
                }
                eprintln!("\n==== SKIPPED: moto_server is not installed (pip install 'moto[server]') ====\n");
                return None;
            }
            Err(e) => panic!("cannot start moto_server: {e}"),
        };
        let moto = Moto { child, port };
        let started = Instant::now();
        loop {
            if let Ok((200..=299, _)) = moto.http("GET", "/moto-api/config", &[], b"") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server did not answer within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        prepare(&moto.addr(), ROLE_NAME).expect("moto takes the tests' setup");
        Some(moto)
    }

    /// Points a `scar` command at this moto: `--provider aws --endpoint-url`, static test
    /// credentials and region in the environment (the standard chain reads them), no
    /// profile or shared config files (they would be under `scratch`, which holds none),
    /// and the machine's `proot` for zip packages.
    pub fn aws_cli(&self, cmd: &mut Command, scratch: &Path) {
        self.aws_cli_at(cmd, scratch, &self.endpoint());
    }

    /// [`Moto::aws_cli`] with `--endpoint-url endpoint`: something in front of this moto
    /// (a stand-in for a service moto does not serve, which forwards the rest to moto).
    pub fn aws_cli_at(&self, cmd: &mut Command, scratch: &Path, endpoint: &str) {
        cmd.args(["--provider", "aws", "--endpoint-url", endpoint])
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", ACCESS_KEY)
            .env("AWS_REGION", REGION)
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_ENDPOINT_URL")
            .env("AWS_CONFIG_FILE", scratch.join("no-aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                scratch.join("no-aws-credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true");
        if let Some(proot) = crate::images::which("proot") {
            cmd.env("SCAR_PROOT", proot);
        }
    }

    /// One request to CloudWatch Logs' JSON API on moto, which must answer 200; its answer.
    pub fn logs_api(&self, action: &str, body: serde_json::Value) -> serde_json::Value {
        self.logs_api_in(REGION, action, body)
    }

    /// One request of `action` to `path` of moto's JSON API of `service`, signed for it, with
    /// `headers`; it must answer 200; its answer.
    fn json_api(
        &self,
        service: &str,
        path: &str,
        headers: &[(&str, &str)],
        action: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let authorization = authorization(service);
        let mut headers = headers.to_vec();
        headers.push(("Authorization", &authorization));
        let (status, text) = self
            .http("POST", path, &headers, body.to_string().as_bytes())
            .unwrap();
        assert_eq!(status, 200, "{action}: {}", String::from_utf8_lossy(&text));
        serde_json::from_slice(&text).unwrap_or_default()
    }

    /// Lambda's GetFunction of `name` in `region`, straight from moto; `None` when moto
    /// has no such function there.
    pub fn lambda_function(&self, region: &str, name: &str) -> Option<serde_json::Value> {
        let authorization = authorization_in(region, "lambda");
        let path = format!("/2015-03-31/functions/{name}");
        let (status, text) = self
            .http("GET", &path, &[("Authorization", &authorization)], b"")
            .unwrap();
        match status {
            404 => None,
            200 => Some(serde_json::from_slice(&text).unwrap()),
            _ => panic!(
                "GetFunction {name}: {status} {}",
                String::from_utf8_lossy(&text)
            ),
        }
    }

    /// A GET of `path` from API Gateway's REST API on moto (`/restapis`,
    /// `/restapis/<id>/resources`, ...): its status and answer.
    pub fn apigateway_get(&self, path: &str) -> (u16, serde_json::Value) {
        let authorization = authorization("apigateway");
        let (status, text) = self
            .http("GET", path, &[("Authorization", &authorization)], b"")
            .unwrap();
        (status, serde_json::from_slice(&text).unwrap_or_default())
    }

    /// The REST APIs on moto, as GetRestApis lists them (`items`).
    pub fn rest_apis(&self) -> Vec<serde_json::Value> {
        let (status, out) = self.apigateway_get("/restapis");
        assert_eq!(status, 200, "GetRestApis: {out}");
        out["item"]
            .as_array()
            .or(out["items"].as_array())
            .cloned()
            .unwrap_or_default()
    }

    /// Lambda's GetPolicy of function `name` (its resource policy, parsed); `None` when
    /// the function has none.
    pub fn lambda_policy(&self, name: &str) -> Option<serde_json::Value> {
        let authorization = authorization("lambda");
        let path = format!("/2015-03-31/functions/{name}/policy");
        let (status, text) = self
            .http("GET", &path, &[("Authorization", &authorization)], b"")
            .unwrap();
        if status == 404 {
            return None;
        }
        assert_eq!(
            status,
            200,
            "GetPolicy {name}: {}",
            String::from_utf8_lossy(&text)
        );
        let out: serde_json::Value = serde_json::from_slice(&text).unwrap();
        serde_json::from_str(out["Policy"].as_str()?).ok()
    }

    /// One request to ECR's JSON API on moto in `region`: its status and answer.
    pub fn ecr_api(
        &self,
        region: &str,
        action: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let target = format!("AmazonEC2ContainerRegistry_V20150921.{action}");
        let authorization = authorization_in(region, "ecr");
        let headers = [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", target.as_str()),
            ("Authorization", authorization.as_str()),
        ];
        let (status, text) = self
            .http("POST", "/", &headers, body.to_string().as_bytes())
            .unwrap();
        (status, serde_json::from_slice(&text).unwrap_or_default())
    }

    /// One request to CloudWatch Logs' JSON API on moto in `region`, which must answer 200.
    pub fn logs_api_in(
        &self,
        region: &str,
        action: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let target = format!("Logs_20140328.{action}");
        let authorization = authorization_in(region, "logs");
        let headers = [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", target.as_str()),
            ("Authorization", authorization.as_str()),
        ];
        let (status, text) = self
            .http("POST", "/", &headers, body.to_string().as_bytes())
            .unwrap();
        assert_eq!(status, 200, "{action}: {}", String::from_utf8_lossy(&text));
        serde_json::from_slice(&text).unwrap_or_default()
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn role_arn(&self) -> String {
        format!("arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}")
    }

    /// One HTTP/1.1 request to moto; returns the status and body.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        http(&self.addr(), method, path, headers, body)
    }

    /// `127.0.0.1:PORT`.
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// One request to a query API of moto's (IAM, EC2: `Action=...&Version=...`), which
    /// must answer 200; its XML answer.
    pub fn query_api(&self, service: &str, body: &str) -> String {
        let authorization = authorization(service);
        let (status, text) = self
            .http(
                "POST",
                "/",
                &[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("Authorization", &authorization),
                ],
                body.as_bytes(),
            )
            .unwrap();
        let text = String::from_utf8_lossy(&text).into_owned();
        assert_eq!(status, 200, "{service} {body}: {text}");
        text
    }

    /// Turns on moto's AWS Batch without Docker: jobs then succeed without running (or
    /// fail, with `MOTO_SIMPLE_BATCH_FAIL_AFTER` in moto's environment).
    pub fn enable_batch(&self) {
        self.configure(r#"{"batch":{"use_docker":false}}"#);
    }

    /// Changes moto's own configuration (`POST /moto-api/config`).
    fn configure(&self, config: &str) {
        configure(&self.addr(), config).unwrap_or_else(|e| panic!("moto config {config}: {e}"));
    }

    /// One request to AWS Batch's REST API on moto (`/v1/<action>`), which must answer
    /// 200; its answer.
    pub fn batch_api(&self, action: &str, body: serde_json::Value) -> serde_json::Value {
        let path = format!("/v1/{action}");
        let headers = [("Content-Type", "application/json")];
        self.json_api("batch", &path, &headers, action, body)
    }

    /// One request to EC2's query API on moto (`Action=...&...`); its XML answer.
    pub fn ec2_api(&self, query: &str) -> String {
        self.query_api("ec2", &format!("{query}&Version=2016-11-15"))
    }

    /// A VPC with a subnet and a security group, as a Batch compute environment needs
    /// them, and SCAR's default instance profile `ecsInstanceRole`: `(subnet id, security
    /// group id)`.
    pub fn batch_network(&self) -> (String, String) {
        self.create_instance_profile("ecsInstanceRole");
        let vpc = xml_text(
            &self.ec2_api("Action=CreateVpc&CidrBlock=10.0.0.0%2F16"),
            "vpcId",
        );
        let subnet = xml_text(
            &self.ec2_api(&format!(
                "Action=CreateSubnet&VpcId={vpc}&CidrBlock=10.0.0.0%2F24"
            )),
            "subnetId",
        );
        let group = xml_text(
            &self.ec2_api(&format!(
                "Action=CreateSecurityGroup&VpcId={vpc}&GroupName=scar-test&GroupDescription=scar"
            )),
            "groupId",
        );
        (subnet, group)
    }

    /// A new IAM user `name` with an access key, through moto's IAM query API: its access
    /// key id and secret. Requests signed with them are the user's (STS GetCallerIdentity
    /// answers `arn:aws:iam::123456789012:user/<name>`), where [`ACCESS_KEY`]'s are moto's
    /// default identity.
    pub fn create_user(&self, name: &str) -> (String, String) {
        let iam = |action: &str| {
            let query = format!("Action={action}&Version=2010-05-08&UserName={name}");
            self.query_api("iam", &query)
        };
        iam("CreateUser");
        let key = iam("CreateAccessKey");
        (
            xml_text(&key, "AccessKeyId"),
            xml_text(&key, "SecretAccessKey"),
        )
    }

    /// Creates an IAM instance profile through moto's IAM query API (EC2 compute
    /// environments name one: SCAR's default is `ecsInstanceRole`).
    pub fn create_instance_profile(&self, name: &str) {
        self.query_api(
            "iam",
            &format!("Action=CreateInstanceProfile&Version=2010-05-08&InstanceProfileName={name}"),
        );
    }

    /// Queues canned invoke results (moto's no-Docker Lambda answers them, one per
    /// invocation, before echoing payloads again).
    pub fn queue_invoke_results(&self, results: &[String]) {
        self.queue_invoke_results_in(REGION, results);
    }

    /// [`Moto::queue_invoke_results`] for functions in `region` (moto keeps a queue per
    /// region).
    pub fn queue_invoke_results_in(&self, region: &str, results: &[String]) {
        let body = serde_json::json!({"results": results, "region": region});
        let (status, text) = self
            .http(
                "POST",
                "/moto-api/static/lambda-simple/response",
                &[("Content-Type", "application/json")],
                body.to_string().as_bytes(),
            )
            .unwrap();
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&text));
    }
}

/// The text of the first `<name>` element of `xml` (moto's query APIs answer XML).
fn xml_text(xml: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let start = xml.find(&open).map(|i| i + open.len()).unwrap_or_else(|| {
        panic!("no <{name}> in {xml}");
    });
    let end = xml[start..].find('<').unwrap() + start;
    xml[start..end].to_string()
}

/// The `Authorization` header of a request to moto's API of `service` (moto checks the
/// credential's form, not the signature).
pub fn authorization(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20240101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    )
}

/// The `Authorization` header of a request to moto's API of `service` in `region`: moto
/// keeps each region's resources apart by the credential's scope.
pub fn authorization_in(region: &str, service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20240101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    )
}

/// Sets up the moto server at `addr` (`host:port`) as scar's tests and benchmarks use it:
/// Lambda in its no-Docker mode (invocations answer canned results or echo their payload),
/// and the IAM role `role` that functions are created with.
pub fn prepare(addr: &str, role: &str) -> std::io::Result<()> {
    configure(addr, r#"{"lambda":{"use_docker":false}}"#)?;
    let policy = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
    let query = format!(
        "Action=CreateRole&Version=2010-05-08&RoleName={role}&AssumeRolePolicyDocument={policy}"
    );
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Authorization", &authorization("iam")),
    ];
    answered(http(addr, "POST", "/", &headers, query.as_bytes())?)
}

/// Changes the configuration of the moto server at `addr` (`POST /moto-api/config`).
fn configure(addr: &str, config: &str) -> std::io::Result<()> {
    let json = [("Content-Type", "application/json")];
    answered(http(
        addr,
        "POST",
        "/moto-api/config",
        &json,
        config.as_bytes(),
    )?)
}

/// A 2xx answer, or an error that shows the answer.
fn answered((status, body): (u16, Vec<u8>)) -> std::io::Result<()> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let body = String::from_utf8_lossy(&body);
    Err(std::io::Error::other(format!(
        "moto answered {status}: {body}"
    )))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A minimal blocking HTTP/1.1 client (Connection: close) to `addr` (`host:port`).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status"))?;
    Ok((status, raw[split + 4..].to_vec()))
}

/// A small zip package (stored, no compression) holding an executable `bootstrap`.
pub fn make_zip(dir: &Path) -> PathBuf {
    let path = dir.join("function.zip");
    let data = b"#!/bin/sh\necho hello from bootstrap\n";
    std::fs::write(&path, stored_zip("bootstrap", data, 0o100755)).unwrap();
    path
}

/// One-entry zip, method 0 (stored), with Unix permissions.
pub fn stored_zip(name: &str, data: &[u8], mode: u32) -> Vec<u8> {
    let mut crc = flate2::Crc::new();
    crc.update(data);
    let crc = crc.sum();
    let n = name.len() as u16;
    let size = data.len() as u32;
    let mut out = Vec::new();
    let u16s = |out: &mut Vec<u8>, fields: &[u16]| {
        fields
            .iter()
            .for_each(|f| out.extend_from_slice(&f.to_le_bytes()))
    };
    let u32s = |out: &mut Vec<u8>, fields: &[u32]| {
        fields
            .iter()
            .for_each(|f| out.extend_from_slice(&f.to_le_bytes()))
    };
    // What the local header and the central directory both say of the entry: version
    // needed, flags, method (stored), time, date (1980-01-01); CRC, sizes; name length,
    // extra length.
    let entry = |out: &mut Vec<u8>| {
        u16s(out, &[20, 0, 0, 0, 0x21]);
        u32s(out, &[crc, size, size]);
        u16s(out, &[n, 0]);
    };
    // Local file header.
    u32s(&mut out, &[0x04034b50]);
    entry(&mut out);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(data);
    let central = out.len() as u32;
    // Central directory header: made by Unix, the entry, no comment, disk 0, no internal
    // attributes; the Unix mode; the local header at offset 0.
    u32s(&mut out, &[0x02014b50]);
    u16s(&mut out, &[(3 << 8) | 20]);
    entry(&mut out);
    u16s(&mut out, &[0, 0, 0]);
    u32s(&mut out, &[mode << 16, 0]);
    out.extend_from_slice(name.as_bytes());
    let central_size = out.len() as u32 - central;
    // End of central directory: disk 0, one entry, the directory's size and offset, no
    // comment.
    u32s(&mut out, &[0x06054b50]);
    u16s(&mut out, &[0, 0, 1, 1]);
    u32s(&mut out, &[central_size, central]);
    u16s(&mut out, &[0]);
    out
}

/// A function spec with scar's defaults.
pub fn spec(name: &str) -> scar_core::FunctionSpec {
    scar_core::FunctionSpec::new(name, "docker.io/library/busybox:latest")
        .with_description("test function")
}

/// `spec(name)` with `-es bucket`'s folders: `bucket/input` in, `bucket/output` out.
pub fn spec_with_bucket(name: &str, bucket: &str) -> scar_core::FunctionSpec {
    let at = |folder: &str| scar_core::bucket::BucketPath {
        bucket: bucket.into(),
        folder: folder.into(),
    };
    spec(name)
        .with_input(scar_core::InputSpec::at(&at("input")))
        .with_output(scar_core::OutputSpec::at(&at("output")))
}

/// A scar response as the supervisor would answer it.
pub fn scar_response(request_id: &str, output: &str) -> String {
    let mut response =
        scar_core::event::Response::new(request_id, scar_core::event::Ending::Exited(0));
    response.output = output.into();
    serde_json::to_string(&response).unwrap()
}
