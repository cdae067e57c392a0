//! Images built from real tools: `umoci` and `skopeo` build and move them, Debian's
//! `docker-registry` serves them.
//!
//! - [`require_tools`]: skip (or fail under `CI`) when a tool is missing;
//! - [`build_busybox_image`]: an OCI layout with a busybox root, `/etc/passwd`, markers and
//!   a config (entrypoint, cmd, env, workdir); [`busybox_archive`] the same as a docker
//!   archive;
//! - [`OciImage`]: `unpack`/`repack`/`config` with umoci, `copy_to` with skopeo;
//! - [`TestRegistry`]: a registry on a free loopback port, killed on drop, open to all or
//!   behind a login ([`TestRegistry::with_login`]);
//! - [`cowsay_image`], [`minicow_image`]: stand-ins for SCAR's example images
//!   `grycap/cowsay` and `grycap/minicow` (a cowsay and a fortune on busybox);
//! - [`awslambdaric_image`]: a Lambda container image on AWS's Python runtime client, in a
//!   Debian root made by debootstrap, built once and cached;
//! - [`imagemagick_image`]: SCAR's `grycap/imagemagick`, a Debian root with the real
//!   ImageMagick, built the same way; [`TestRegistry::push_archive`] pushes it;
//! - [`credential_helper`]: a Docker credential helper (a shell script) for such a login;
//! - [`snapshot`]: a comparable view of a directory tree;
//! - [`RawTar`], [`raw_entry`], [`pax`], [`tar_of`]: tars no well-behaved tool writes, and
//!   the malformed layers made of them that more than one crate's tests try
//!   ([`layer_with_header`], [`pax_layer`], [`layer_with_bad_checksum`],
//!   [`layer_with_garbage_size`], [`layer_with_negative_size`], [`layer_with_long_name`],
//!   [`layer_with_unknown_sparse`]).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// True when every tool is on PATH. Otherwise: under `CI`, panic naming what is missing;
/// elsewhere print a loud `SKIPPED` line and return false (the test should return).
pub fn require_tools(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "CI: required tools not installed: {} (apt-get install -y docker-registry skopeo umoci busybox-static apache2-utils)",
            missing.join(", ")
        );
    }
    eprintln!("\n*** SKIPPED: {} not installed ***\n", missing.join(", "));
    false
}

pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Runs a command, panicking with its output if it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// The busybox applets linked in test images.
pub const APPLETS: &[&str] = &[
    "sh",
    "echo",
    "cat",
    "ls",
    "sleep",
    "env",
    "id",
    "pwd",
    "wc",
    "sha256sum",
    "mkdir",
    "touch",
    "rm",
    "printf",
    "test",
    "true",
    "false",
    "uname",
];

/// An image in an OCI layout directory, named `layout:tag` for umoci and skopeo.
#[derive(Debug, Clone)]
pub struct OciImage {
    pub layout: PathBuf,
    pub tag: String,
}

impl OciImage {
    /// `layout:tag`, as umoci's `--image` wants it.
    pub fn image_arg(&self) -> String {
        format!("{}:{}", self.layout.display(), self.tag)
    }

    /// A new empty image (`umoci init` + `umoci new`).
    pub fn create(layout: &Path, tag: &str) -> OciImage {
        if !layout.join("index.json").exists() {
            run(Command::new("umoci")
                .arg("init")
                .arg("--layout")
                .arg(layout));
        }
        let img = OciImage {
            layout: layout.to_path_buf(),
            tag: tag.to_string(),
        };
        run(Command::new("umoci").args(["new", "--image", &img.image_arg()]));
        img
    }

    /// `umoci unpack` into `bundle` (must not exist); the root is `bundle/rootfs`.
    pub fn unpack(&self, bundle: &Path) -> PathBuf {
        let mut cmd = Command::new("umoci");
        cmd.arg("unpack");
        if !is_root() {
            cmd.arg("--rootless");
        }
        run(cmd.args(["--image", &self.image_arg()]).arg(bundle));
        bundle.join("rootfs")
    }

    /// `umoci repack`: one new layer with the changes made in `bundle/rootfs` since unpack
    /// (deletions become whiteouts). The bundle is removed afterwards, since umoci diffs
    /// against the unpack, not the last repack.
    pub fn repack(&self, bundle: &Path) {
        run(Command::new("umoci")
            .args(["repack", "--image", &self.image_arg()])
            .arg(bundle));
        let _ = Command::new("chmod")
            .arg("-R")
            .arg("u+rwX")
            .arg(bundle)
            .status();
        std::fs::remove_dir_all(bundle).expect("remove bundle");
    }

    /// Unpacks, lets `f` change the root, repacks: one layer.
    pub fn add_layer(&self, work: &Path, f: impl FnOnce(&Path)) {
        let bundle = work.join(format!("bundle-{}", uuid_like()));
        let rootfs = self.unpack(&bundle);
        f(&rootfs);
        self.repack(&bundle);
    }

    /// `umoci config` with the given flags (e.g. `--config.entrypoint=/bin/sh`).
    pub fn config(&self, args: &[&str]) {
        run(Command::new("umoci")
            .args(["config", "--image", &self.image_arg()])
            .args(args));
    }

    /// `skopeo copy oci:<layout>:<tag> <dest>` (e.g. `docker-archive:/x.tar:test/img:latest`).
    pub fn copy_to(&self, dest: &str, extra: &[&str]) {
        run(Command::new("skopeo")
            .args(["--insecure-policy", "copy", "-q"])
            .args(extra)
            .arg(format!("oci:{}", self.image_arg()))
            .arg(dest));
    }

    /// A `docker save`-format archive (skopeo's docker-archive).
    pub fn docker_archive(&self, path: &Path) {
        self.docker_save(path, "test/img:latest");
    }

    /// What `docker save NAME > path` writes (skopeo's docker-archive, tagged `name`).
    pub fn docker_save(&self, path: &Path, name: &str) {
        self.copy_to(&format!("docker-archive:{}:{name}", path.display()), &[]);
    }

    /// An OCI archive.
    pub fn oci_archive(&self, path: &Path) {
        self.copy_to(&format!("oci-archive:{}:latest", path.display()), &[]);
    }

    /// Pushes to `registry` as `repo:tag` (logged in when it wants a login); `v2s2` converts
    /// to Docker schema 2.
    pub fn push(&self, registry: &TestRegistry, repo_tag: &str, v2s2: bool) -> String {
        let reference = format!("{}/{}", registry.addr, repo_tag);
        let mut extra = vec!["--dest-tls-verify=false".to_string()];
        if v2s2 {
            extra.extend(["--format".into(), "v2s2".into()]);
        }
        if let Some((user, password)) = &registry.login {
            extra.push(format!("--dest-creds={user}:{password}"));
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        self.copy_to(&format!("docker://{reference}"), &extra);
        reference
    }
}

fn uuid_like() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{n:x}")
}

/// Fills `rootfs` with busybox (static), its applet symlinks, /etc/passwd, /etc/group, /tmp
/// and marker files.
pub fn fill_busybox_rootfs(rootfs: &Path) {
    let busybox = which("busybox").expect("busybox on PATH");
    for d in ["bin", "etc", "tmp", "root", "srv"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    std::fs::set_permissions(
        rootfs.join("bin/busybox"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    std::fs::write(rootfs.join("etc/scar-marker"), "scar test image\n").unwrap();
    std::fs::write(rootfs.join("srv/hello.txt"), "hello from the image\n").unwrap();
}

/// Builds a one-layer busybox image at `<work>/oci:latest` with entrypoint `/bin/sh -c`,
/// cmd `echo hello`, env `GREETING=hello`, workdir `/srv`.
pub fn build_busybox_image(work: &Path) -> OciImage {
    let img = OciImage::create(&work.join("oci"), "latest");
    img.add_layer(work, fill_busybox_rootfs);
    img.config(&[
        "--config.entrypoint=/bin/sh",
        "--config.entrypoint=-c",
        "--config.cmd=echo hello",
        "--config.env=GREETING=hello",
        "--config.env=PATH=/bin",
        "--config.workingdir=/srv",
        "--os=linux",
        &format!("--architecture={}", host_architecture()),
    ]);
    img
}

/// [`build_busybox_image`] in `work`, saved as a docker archive (`docker save`'s format)
/// at `<work>/image.tar`, which it returns.
pub fn busybox_archive(work: &Path) -> PathBuf {
    let archive = work.join("image.tar");
    build_busybox_image(work).docker_archive(&archive);
    archive
}

/// SCAR's example image (`examples/cowsay/Dockerfile` in grycap/scar: Ubuntu with the
/// `cowsay` and `fortunes` packages) and the name it has on Docker Hub.
pub const COWSAY: &str = "grycap/cowsay";
/// SCAR's slim cowsay (made with minicon) and its name on Docker Hub.
pub const MINICOW: &str = "grycap/minicow";

/// The applets of the cow images: what their commands and SCAR's documented scripts use
/// (`env | cowsay`, `df -h`).
const COW_APPLETS: &[&str] = &["sh", "cat", "awk", "env", "df", "echo", "ls"];

/// Puts the stand-ins for cowsay and fortune (`/usr/games`) and their sayings into `rootfs`.
fn add_cow_games(rootfs: &Path) {
    let games = rootfs.join("usr/games");
    let sayings = rootfs.join("usr/share/games/fortunes");
    std::fs::create_dir_all(&games).unwrap();
    std::fs::create_dir_all(&sayings).unwrap();
    for (name, text) in [
        ("cowsay", include_str!("cowsay/cowsay")),
        ("fortune", include_str!("cowsay/fortune")),
    ] {
        std::fs::write(games.join(name), text).unwrap();
        std::fs::set_permissions(games.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(sayings.join("fortunes"), include_str!("cowsay/fortunes")).unwrap();
}

/// A busybox root of `applets` only, with /etc/passwd and /etc/group, /tmp and /root.
fn small_busybox_root(rootfs: &Path, applets: &[&str]) {
    for d in ["bin", "etc", "tmp", "root"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let busybox = rootfs.join("bin/busybox");
    std::fs::copy(which("busybox").expect("busybox on PATH"), &busybox).unwrap();
    std::fs::set_permissions(&busybox, std::fs::Permissions::from_mode(0o755)).unwrap();
    for a in applets {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
}

/// SCAR's image's config: no ENTRYPOINT; CMD `fortune -a | cowsay` in a shell (its
/// Dockerfile's shell-form CMD); `/usr/games` on PATH as Debian's is.
fn cow_config(img: &OciImage) {
    img.config(&[
        "--config.cmd=/bin/sh",
        "--config.cmd=-c",
        "--config.cmd=/usr/games/fortune -a | /usr/games/cowsay",
        "--config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/games",
        "--os=linux",
        &format!("--architecture={}", host_architecture()),
    ]);
}

/// A stand-in for [`COWSAY`] at `<work>/oci:latest`, two layers as a base image and a
/// package install make: a busybox root (the base image's applets), then `/usr/games/cowsay`
/// (the words of its arguments, else of its standard input, in a speech bubble over a cow,
/// as cowsay draws them) and `/usr/games/fortune` (a saying at random). Its CMD prints a
/// fortune through cowsay, as SCAR's image does.
pub fn cowsay_image(work: &Path) -> OciImage {
    let img = OciImage::create(&work.join("oci"), "latest");
    img.add_layer(work, |rootfs| {
        let mut applets = APPLETS.to_vec();
        applets.extend(["awk", "df"]);
        small_busybox_root(rootfs, &applets);
    });
    img.add_layer(work, add_cow_games);
    cow_config(&img);
    img
}

/// A stand-in for [`MINICOW`] at `<work>/oci:latest`: what [`cowsay_image`] does in one
/// layer of just what its command and SCAR's documented scripts use (as minicon makes it).
pub fn minicow_image(work: &Path) -> OciImage {
    let img = OciImage::create(&work.join("oci"), "latest");
    img.add_layer(work, |rootfs| {
        small_busybox_root(rootfs, COW_APPLETS);
        add_cow_games(rootfs);
    });
    cow_config(&img);
    img
}

/// This machine's architecture as OCI names it: the same mapping as
/// `scar_packager::host_architecture`, which this crate may not depend on (scar-packager's
/// tests check that the two agree).
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Debian's `docker-registry` on a free loopback port, killed on drop.
pub struct TestRegistry {
    child: Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// The one user it lets in, when it was started with [`TestRegistry::with_login`]:
    /// `(user, password)`.
    pub login: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl TestRegistry {
    /// A registry anyone may pull from and push to.
    pub fn start() -> TestRegistry {
        TestRegistry::serve(None)
    }

    /// A registry that lets only `user` with `password` in (HTTP basic auth against an
    /// htpasswd file of bcrypt entries, made by apache2-utils' `htpasswd -B`); anyone else
    /// gets 401. [`OciImage::push`] logs in.
    pub fn with_login(user: &str, password: &str) -> TestRegistry {
        TestRegistry::serve(Some((user.to_string(), password.to_string())))
    }

    fn serve(login: Option<(String, String)>) -> TestRegistry {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let addr = format!("127.0.0.1:{port}");
        let auth = match &login {
            Some((user, password)) => {
                let htpasswd = dir.path().join("htpasswd");
                let entry = run(Command::new("htpasswd").args(["-Bbn", user, password]));
                std::fs::write(&htpasswd, entry).unwrap();
                format!(
                    "auth: {{htpasswd: {{realm: scar-test, path: {}}}}}\n",
                    htpasswd.display()
                )
            }
            None => String::new(),
        };
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\nhttp: {{addr: {addr}}}\n{auth}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let ready = if login.is_some() { 401 } else { 200 };
        let reg = TestRegistry {
            child,
            addr,
            login,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if http_status(&reg.addr, "/v2/") == Some(ready) {
                return reg;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not answer on {} within 15 s", reg.addr);
    }
}

impl TestRegistry {
    /// Pushes an image archive (`oci-archive` or `docker-archive`, as `transport` says) as
    /// `repo:tag`; returns the reference.
    pub fn push_archive(&self, transport: &str, archive: &Path, repo_tag: &str) -> String {
        let reference = format!("{}/{}", self.addr, repo_tag);
        let mut cmd = Command::new("skopeo");
        cmd.args(["--insecure-policy", "copy", "-q", "--dest-tls-verify=false"]);
        if let Some((user, password)) = &self.login {
            cmd.arg(format!("--dest-creds={user}:{password}"));
        }
        run(cmd
            .arg(format!("{transport}:{}", archive.display()))
            .arg(format!("docker://{reference}")));
        reference
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Docker credential helper for tests: `dir/docker-credential-<name>`, a shell script
/// that, asked `get`, reads the server address from its standard input as `$server`,
/// appends it to `dir/<name>.asked` (see [`helper_asked`]), then runs `body`.
pub fn credential_helper_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(format!("docker-credential-{name}"));
    let asked = dir.join(format!("{name}.asked"));
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nserver=$(cat)\nprintf '%s\\n' \"$server\" >> '{}'\n{body}\n",
        asked.display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// [`credential_helper_script`] answering as the credential-helper protocol says: for
/// each `(server, user, secret)` of `answers`, `{"ServerURL", "Username", "Secret"}`; for
/// any other server, `credentials not found in native keychain` and exit status 1.
pub fn credential_helper(dir: &Path, name: &str, answers: &[(&str, &str, &str)]) -> PathBuf {
    let mut body = String::from("case \"$server\" in\n");
    for (server, user, secret) in answers {
        body.push_str(&format!(
            "  '{server}') printf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}' \"$server\" ;;\n"
        ));
    }
    body.push_str("  *) echo 'credentials not found in native keychain'; exit 1 ;;\nesac");
    credential_helper_script(dir, name, &body)
}

/// The server addresses helper `name` in `dir` was asked for, one a line.
pub fn helper_asked(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.asked"))).unwrap_or_default()
}

/// The status code of a plain `GET`, or `None` if nothing answers.
pub fn http_status(addr: &str, path: &str) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let line = String::from_utf8_lossy(&buf[..n]);
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What matters of one file for comparing trees (not times, not owners).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir { mode: u32 },
    File { mode: u32, content: Vec<u8> },
    Symlink { target: PathBuf },
    Other { mode: u32 },
}

/// Every path under `root` (relative) with its type, permission bits, link target and
/// content.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Node>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let mode = m.permissions().mode() & 0o7777;
            let node = if m.file_type().is_symlink() {
                Node::Symlink {
                    target: std::fs::read_link(&p).unwrap(),
                }
            } else if m.is_dir() {
                walk(root, &p, out);
                Node::Dir { mode }
            } else if m.is_file() {
                Node::File {
                    mode,
                    content: std::fs::read(&p).unwrap(),
                }
            } else {
                Node::Other { mode }
            };
            out.insert(rel, node);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Asserts two trees are equal, listing the differences (not whole file contents).
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let a = snapshot(expected);
    let b = snapshot(actual);
    let mut diffs = Vec::new();
    for (k, v) in &a {
        match b.get(k) {
            None => diffs.push(format!("missing: {}", k.display())),
            Some(w) if w != v => diffs.push(format!(
                "differs: {} expected {} got {}",
                k.display(),
                short(v),
                short(w)
            )),
            _ => {}
        }
    }
    for k in b.keys() {
        if !a.contains_key(k) {
            diffs.push(format!("unexpected: {}", k.display()));
        }
    }
    assert!(diffs.is_empty(), "trees differ:\n{}", diffs.join("\n"));
}

fn short(n: &Node) -> String {
    match n {
        Node::File { mode, content } => format!("file {mode:o} ({} bytes)", content.len()),
        other => format!("{other:?}"),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn write_blob(layout: &Path, bytes: &[u8]) -> String {
    let hex = sha256_hex(bytes);
    std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
    format!("sha256:{hex}")
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

impl OciImage {
    fn index_entry(&self) -> (serde_json::Value, usize) {
        let index = read_json(&self.layout.join("index.json"));
        let pos = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .position(|m| {
                m["annotations"]["org.opencontainers.image.ref.name"] == self.tag.as_str()
            })
            .expect("tag in index.json");
        (index, pos)
    }

    /// The image manifest's digest.
    pub fn manifest_digest(&self) -> String {
        let (index, pos) = self.index_entry();
        index["manifests"][pos]["digest"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Appends a hand-made layer (an uncompressed tar, gzipped here) to the image: for layer
    /// contents umoci would never produce (opaque whiteouts, odd orderings).
    pub fn append_raw_layer(&self, tar_bytes: &[u8]) {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(tar_bytes).unwrap();
        let gz = gz.finish().unwrap();
        let layer_digest = write_blob(&self.layout, &gz);
        let diff_id = format!("sha256:{}", sha256_hex(tar_bytes));

        let (mut index, pos) = self.index_entry();
        let mdigest = index["manifests"][pos]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let mut manifest = read_json(&blob_path(&self.layout, &mdigest));
        let cdigest = manifest["config"]["digest"].as_str().unwrap().to_string();
        let mut config = read_json(&blob_path(&self.layout, &cdigest));
        config["rootfs"]["diff_ids"]
            .as_array_mut()
            .unwrap()
            .push(diff_id.into());
        let config_bytes = serde_json::to_vec(&config).unwrap();
        manifest["config"]["digest"] = write_blob(&self.layout, &config_bytes).into();
        manifest["config"]["size"] = config_bytes.len().into();
        manifest["layers"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer_digest,
                "size": gz.len(),
            }));
        let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
        index["manifests"][pos]["digest"] = write_blob(&self.layout, &manifest_bytes).into();
        index["manifests"][pos]["size"] = manifest_bytes.len().into();
        std::fs::write(
            self.layout.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }

    /// Adds to the layout an image index (tag `tag`) listing `images` with their platforms
    /// (taken from each image's config): a multi-platform image.
    pub fn make_index(layout: &Path, tag: &str, images: &[OciImage]) -> OciImage {
        let mut entries = Vec::new();
        for img in images {
            let (index, pos) = img.index_entry();
            let entry = &index["manifests"][pos];
            let manifest = read_json(&blob_path(layout, entry["digest"].as_str().unwrap()));
            let config = read_json(&blob_path(
                layout,
                manifest["config"]["digest"].as_str().unwrap(),
            ));
            entries.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": entry["digest"],
                "size": entry["size"],
                "platform": {"architecture": config["architecture"], "os": config["os"]},
            }));
        }
        let idx = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        });
        let bytes = serde_json::to_vec(&idx).unwrap();
        let digest = write_blob(layout, &bytes);
        let mut index = read_json(&layout.join("index.json"));
        index["manifests"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": digest,
                "size": bytes.len(),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }));
        std::fs::write(
            layout.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
        OciImage {
            layout: layout.to_path_buf(),
            tag: tag.to_string(),
        }
    }
}

/// A tar built entry by entry with raw names (so `..` and absolute names are possible).
pub struct RawTar {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for RawTar {
    fn default() -> Self {
        Self::new()
    }
}

impl RawTar {
    pub fn new() -> RawTar {
        RawTar {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn header(name: &str, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        let bytes = name.as_bytes();
        assert!(bytes.len() < 100, "name too long for a raw header");
        // Written into the header directly: `set_path` refuses `..`.
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_600_000_000);
        h
    }

    pub fn file(mut self, name: &str, mode: u32, content: &[u8]) -> Self {
        let mut h = Self::header(name, tar::EntryType::Regular, mode, content.len() as u64);
        h.set_cksum();
        self.builder.append(&h, content).unwrap();
        self
    }

    pub fn dir(mut self, name: &str, mode: u32) -> Self {
        let mut h = Self::header(name, tar::EntryType::Directory, mode, 0);
        h.set_cksum();
        self.builder.append(&h, &[][..]).unwrap();
        self
    }

    fn link(mut self, kind: tar::EntryType, name: &str, target: &str) -> Self {
        let mut h = Self::header(name, kind, 0o777, 0);
        let t = target.as_bytes();
        assert!(t.len() < 100);
        h.as_old_mut().linkname[..t.len()].copy_from_slice(t);
        h.set_cksum();
        self.builder.append(&h, &[][..]).unwrap();
        self
    }

    pub fn symlink(self, name: &str, target: &str) -> Self {
        self.link(tar::EntryType::Symlink, name, target)
    }

    pub fn hardlink(self, name: &str, target: &str) -> Self {
        self.link(tar::EntryType::Link, name, target)
    }

    pub fn special(mut self, name: &str, kind: tar::EntryType) -> Self {
        let mut h = Self::header(name, kind, 0o644, 0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        h.set_cksum();
        self.builder.append(&h, &[][..]).unwrap();
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.builder.into_inner().unwrap()
    }
}

// udocker (PyPI) driven offline: no tools tarball, Debian's proot.

/// A bash wrapper around Debian's proot that drops udocker's `-k <kernel>` (proot 5.1.0
/// fails with it).
pub fn proot_wrapper(dir: &Path) -> PathBuf {
    let path = dir.join("proot-wrapper");
    std::fs::write(
        &path,
        "#!/bin/bash\na=()\nwhile [ $# -gt 0 ]; do\n  if [ \"$1\" = \"-k\" ]; then shift 2; continue; fi\n  a+=(\"$1\"); shift\ndone\nexec proot \"${a[@]}\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

pub fn udocker(udocker_dir: &Path, wrapper: &Path, args: &[&str]) -> String {
    run(Command::new("udocker")
        .env("UDOCKER_DIR", udocker_dir)
        .env("UDOCKER_TARBALL", "")
        .env("UDOCKER_USE_PROOT_EXECUTABLE", wrapper)
        .args(["--allow-root", "-q"])
        .args(args))
}

pub fn unzip(zip: &Path, dest: &Path) {
    run(Command::new("unzip").arg("-q").arg(zip).arg("-d").arg(dest));
}

/// `len` bytes that do not compress at all: xorshift64 from `seed` (not 0), the low byte of
/// each step.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// `len` bytes that gzip about as well as real binaries do (2.5x to 3x at `gzip -1`):
/// random literals between words of a small vocabulary, most of them within deflate's
/// window. Deterministic for a seed; never zeros, which compress a thousandfold.
pub fn binary_like(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let vocab: Vec<Vec<u8>> = (0..1024)
        .map(|_| {
            let n = 8 + (next() % 33) as usize;
            (0..n).map(|_| next() as u8).collect()
        })
        .collect();
    let mut out = Vec::with_capacity(len + 64);
    while out.len() < len {
        let r = next();
        if r % 100 < 20 {
            let n = 1 + (r >> 8) as usize % 6;
            out.extend((0..n).map(|_| next() as u8));
        } else {
            // Skewed towards the first words, as instruction and symbol patterns are.
            let u = (r >> 11) as f64 / (1u64 << 53) as f64;
            out.extend_from_slice(&vocab[((u * u * u) * 1024.0) as usize % 1024]);
        }
    }
    out.truncate(len);
    out
}

/// One tar entry from raw bytes: a GNU header for `name`, `edit`ed after it is built, the
/// checksum recomputed unless `keep_cksum`, then `data` padded to 512 bytes.
pub fn raw_entry(
    name: &str,
    kind: tar::EntryType,
    data: &[u8],
    edit: impl FnOnce(&mut tar::Header),
    keep_cksum: bool,
) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(1_600_000_000);
    h.set_cksum();
    edit(&mut h);
    if !keep_cksum {
        h.set_cksum();
    }
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// A PAX extended header (`x`) holding `records`, for the entry after it.
pub fn pax(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in records {
        let rest = k.len() + v.len() + 3; // ' ', '=', '\n'
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        body.extend_from_slice(format!("{len} {k}=").as_bytes());
        body.extend_from_slice(v);
        body.push(b'\n');
    }
    raw_entry(
        "PaxHeaders/x",
        tar::EntryType::XHeader,
        &body,
        |_| {},
        false,
    )
}

pub fn tar_of(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = parts.concat();
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// A layer of one regular file, `f` holding `data`, whose header `edit` changes after it is
/// built (the checksum recomputed).
pub fn layer_with_header(edit: impl FnOnce(&mut tar::Header)) -> Vec<u8> {
    tar_of(&[raw_entry(
        "f",
        tar::EntryType::Regular,
        b"data",
        edit,
        false,
    )])
}

/// A layer whose one header has a checksum that does not add up.
pub fn layer_with_bad_checksum() -> Vec<u8> {
    let cksum = |h: &mut tar::Header| h.as_old_mut().cksum = *b"0000001\0";
    tar_of(&[raw_entry("f", tar::EntryType::Regular, b"x", cksum, true)])
}

/// A layer whose one header's size is not a number.
pub fn layer_with_garbage_size() -> Vec<u8> {
    layer_with_header(|h| h.as_old_mut().size = *b"zzzzzzzzzzz\0")
}

/// A layer whose one header's size is negative (base-256 -1).
pub fn layer_with_negative_size() -> Vec<u8> {
    layer_with_header(|h| h.as_old_mut().size = [0xff; 12])
}

/// A layer of one file whose name (from a PAX header) has a component of 300 bytes, over
/// the 255 a file system holds.
pub fn layer_with_long_name() -> Vec<u8> {
    let long = "n".repeat(300);
    pax_layer(
        &[("path", long.as_bytes())],
        "f",
        tar::EntryType::Regular,
        b"x",
    )
}

/// A layer of one PAX sparse file of a format version GNU tar never wrote (2.0).
pub fn layer_with_unknown_sparse() -> Vec<u8> {
    let records: [(&str, &[u8]); 3] = [
        ("GNU.sparse.major", b"2"),
        ("GNU.sparse.minor", b"0"),
        ("GNU.sparse.realsize", b"10"),
    ];
    pax_layer(&records, "f", tar::EntryType::Regular, b"x")
}

/// A layer of one entry, `name` of `kind` holding `data`, after a PAX header holding
/// `records`.
pub fn pax_layer(
    records: &[(&str, &[u8])],
    name: &str,
    kind: tar::EntryType,
    data: &[u8],
) -> Vec<u8> {
    tar_of(&[pax(records), raw_entry(name, kind, data, |_| {}, false)])
}

/// A Lambda container image on AWS's Python runtime client, as a docker-archive: a Debian
/// bookworm root (debootstrap) with python3 and `awslambdaric` from PyPI, ENTRYPOINT
/// `/lambda-entrypoint.sh`, CMD `app.handler` (`awslambdaric/app.py` in this crate), Env
/// `FROM_IMAGE=image-env`, WorkingDir `/var/task`. Built once into `cache` (about two
/// minutes) and reused; `None` (skipped loudly, a failure under `CI`) without debootstrap,
/// umoci or skopeo, or when not root (debootstrap needs it).
pub fn awslambdaric_image(cache: &Path) -> Option<PathBuf> {
    // Bump when the image's recipe changes.
    let archive = cache.join("awslambdaric-bookworm-1.tar");
    if archive.is_file() {
        return Some(archive);
    }
    let (work, root) = debootstrap_root(cache, "awslambdaric", "python3,python3-pip")?;
    // pip in the chroot, lent the host's CA bundle (the registry may be reached through a
    // TLS-intercepting proxy) and none of the host's certificate variables.
    std::fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        root.join("tmp/host-ca.pem"),
    )
    .unwrap();
    let _ = std::fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf"));
    let mut pip = Command::new("chroot");
    pip.arg(&root)
        .args([
            "pip",
            "install",
            "--no-cache-dir",
            "--break-system-packages",
        ])
        .arg("awslambdaric")
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root")
        .env("PIP_CERT", "/tmp/host-ca.pem");
    for (k, v) in std::env::vars() {
        if k.to_ascii_lowercase().ends_with("_proxy") {
            pip.env(k, v);
        }
    }
    run(&mut pip);
    std::fs::remove_file(root.join("tmp/host-ca.pem")).unwrap();
    remove_device_nodes(&root);
    std::fs::create_dir_all(root.join("var/task")).unwrap();
    std::fs::write(
        root.join("var/task/app.py"),
        include_str!("awslambdaric/app.py"),
    )
    .unwrap();
    let entrypoint = root.join("lambda-entrypoint.sh");
    std::fs::write(
        &entrypoint,
        include_str!("awslambdaric/lambda-entrypoint.sh"),
    )
    .unwrap();
    std::fs::set_permissions(&entrypoint, std::fs::Permissions::from_mode(0o755)).unwrap();

    let image = OciImage::create(&work.path().join("oci"), "latest");
    image.add_layer(work.path(), |rootfs| {
        run(Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", root.display()))
            .arg(rootfs));
    });
    image.config(&[
        "--config.entrypoint=/lambda-entrypoint.sh",
        "--config.cmd=app.handler",
        "--config.env=FROM_IMAGE=image-env",
        "--config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--config.workingdir=/var/task",
        "--os=linux",
        &format!("--architecture={}", host_architecture()),
    ]);
    let partial = work.path().join("image.tar");
    image.docker_archive(&partial);
    std::fs::rename(&partial, &archive).unwrap();
    Some(archive)
}

/// SCAR's ImageMagick image (`grycap/imagemagick` on Docker Hub, used by SCAR's
/// `api_gateway.rst` and `examples/imagemagick`), as an OCI archive: a Debian bookworm root
/// (debootstrap) with Debian's `imagemagick` package, so `convert` is ImageMagick's own; no
/// ENTRYPOINT or CMD, as SCAR's image has none of use. Built once into `cache` (a minute or
/// two) and reused; `None` (skipped loudly, a failure under `CI`) without debootstrap, umoci
/// or skopeo, or when not root (debootstrap needs it).
pub fn imagemagick_image(cache: &Path) -> Option<PathBuf> {
    // Bump when the image's recipe changes.
    let archive = cache.join("imagemagick-bookworm-1.oci.tar");
    if archive.is_file() {
        return Some(archive);
    }
    let (work, root) = debootstrap_root(cache, "imagemagick", "imagemagick")?;
    remove_device_nodes(&root);
    let image = OciImage::create(&work.path().join("oci"), "latest");
    image.add_layer(work.path(), |rootfs| {
        run(Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", root.display()))
            .arg(rootfs));
    });
    image.config(&[
        "--config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--os=linux",
        &format!("--architecture={}", host_architecture()),
    ]);
    let partial = work.path().join("image.tar");
    image.oci_archive(&partial);
    std::fs::rename(&partial, &archive).unwrap();
    Some(archive)
}

/// A Debian bookworm root made by `debootstrap --variant=minbase --include=PACKAGES` in a
/// work directory under `cache` (`(work, root)`). `None` (skipped
/// loudly, a failure under `CI`) without debootstrap, umoci or skopeo, or when not root.
fn debootstrap_root(
    cache: &Path,
    image: &str,
    packages: &str,
) -> Option<(tempfile::TempDir, PathBuf)> {
    if !require_tools(&["debootstrap", "umoci", "skopeo"]) {
        return None;
    }
    if !is_root() {
        let msg = format!("building the {image} image needs root (debootstrap)");
        if std::env::var_os("CI").is_some() {
            panic!("CI: {msg}");
        }
        eprintln!("\n*** SKIPPED: {msg} ***\n");
        return None;
    }
    std::fs::create_dir_all(cache).unwrap();
    let work = tempfile::tempdir_in(cache).unwrap();
    let root = work.path().join("root");
    run(Command::new("debootstrap")
        .args([
            "--variant=minbase",
            &format!("--include={packages}"),
            "bookworm",
        ])
        .arg(&root)
        .arg(debian_mirror()));
    Some((work, root))
}

/// Device nodes are the host's business, not an image's: `root/dev` emptied.
fn remove_device_nodes(root: &Path) {
    for entry in std::fs::read_dir(root.join("dev")).unwrap().flatten() {
        let _ = std::fs::remove_file(entry.path());
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

/// The Debian mirror apt uses here (debootstrap wants one), else deb.debian.org.
fn debian_mirror() -> String {
    let sources = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources")
        .or_else(|_| std::fs::read_to_string("/etc/apt/sources.list"))
        .unwrap_or_default();
    sources
        .lines()
        .find_map(|l| {
            let l = l.trim();
            l.strip_prefix("URIs:")
                .map(|u| u.split_whitespace().next().unwrap_or("").to_string())
                .or_else(|| {
                    l.strip_prefix("deb ")
                        .and_then(|r| r.split_whitespace().find(|w| w.starts_with("http")))
                        .map(str::to_string)
                })
        })
        .filter(|m| !m.is_empty() && !m.contains("security"))
        .unwrap_or_else(|| "http://deb.debian.org/debian".into())
}
