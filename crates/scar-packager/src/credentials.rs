//! Registry credentials found as Docker finds them: in the Docker config file
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), from the credential helper
//! that `credHelpers` names for the registry, else from the one `credsStore` names for all,
//! else from `auths`.
//!
//! A credential helper is a program `docker-credential-<name>` on `PATH`: it is run as
//! `docker-credential-<name> get` with the registry's server address on its standard input
//! (Docker Hub's is `https://index.docker.io/v1/`, any other registry's its `host[:port]`)
//! and answers `{"ServerURL": .., "Username": .., "Secret": ..}`; a helper that has nothing
//! for the registry fails with `credentials not found in native keychain`.
//!
//! As with `docker pull`, a helper that cannot be run or fails leaves the registry to be
//! tried without credentials (a public image still comes in); what went wrong is kept in
//! [`Credentials::origin`], which the error of a registry that then refuses tells. Secrets
//! are never in an origin, an error or a `Debug` output.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use base64::Engine;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

/// Docker Hub's server address: its key in `credHelpers` and `auths`, and what its
/// credential helper is asked for.
pub(crate) const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// The user name with which a credential helper hands an identity token, not a password.
const TOKEN_USERNAME: &str = "<token>";

/// What a helper says when it has nothing for the registry (docker-credential-helpers'
/// `errCredentialsNotFoundMessage`).
const NOT_FOUND: &str = "credentials not found in native keychain";

/// The credentials offered to one registry, and where they came from.
#[derive(Debug)]
pub(crate) struct Credentials {
    /// What is sent (its `Debug` shows no secret).
    pub(crate) auth: RegistryAuth,
    /// What was offered and from where, without the secret: "no credentials: ..." or "the
    /// credentials from ...". An authentication error tells it.
    pub(crate) origin: String,
}

impl Credentials {
    fn none(why: String) -> Credentials {
        Credentials {
            auth: RegistryAuth::Anonymous,
            origin: format!("no credentials: {why}"),
        }
    }

    /// Basic credentials given by the caller (ECR's authorization token).
    pub(crate) fn given(user: String, password: String) -> Credentials {
        Credentials {
            auth: RegistryAuth::Basic(user, password),
            origin: "the user name and password it was given".into(),
        }
    }
}

/// One entry of `auths`. No `Debug`: it holds secrets.
#[derive(Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
    registrytoken: Option<String>,
}

/// What scar reads of the Docker config file.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

/// The Docker config file and the `PATH` its credential helpers are looked up on.
pub(crate) struct DockerConfig {
    path: PathBuf,
    file: ConfigFile,
    /// Why the file gave nothing, when it could not be read or parsed.
    unreadable: Option<String>,
    search_path: Option<OsString>,
}

impl DockerConfig {
    /// `$DOCKER_CONFIG/config.json` (when `DOCKER_CONFIG` is set and not empty), else
    /// `$HOME/.docker/config.json`; helpers on `$PATH`.
    pub(crate) fn from_env() -> DockerConfig {
        let dir = match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".docker"))
                .unwrap_or_else(|| PathBuf::from(".docker")),
        };
        DockerConfig::load(&dir, std::env::var_os("PATH"))
    }

    /// `dir/config.json`, helpers looked up on `search_path` (a `PATH`-style list).
    pub(crate) fn load(dir: &Path, search_path: Option<OsString>) -> DockerConfig {
        let path = dir.join("config.json");
        let (file, unreadable) = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(file) => (file, None),
                Err(e) => (
                    ConfigFile::default(),
                    Some(format!("{} is not valid JSON: {e}", path.display())),
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (ConfigFile::default(), None),
            Err(e) => (
                ConfigFile::default(),
                Some(format!("cannot read {}: {e}", path.display())),
            ),
        };
        DockerConfig {
            path,
            file,
            unreadable,
            search_path,
        }
    }

    /// The credentials for `registry` (`host[:port]` as the reference names it; Docker
    /// Hub's names are `docker.io`, `index.docker.io` and `registry-1.docker.io`).
    pub(crate) async fn credentials(&self, registry: &str) -> Credentials {
        if let Some(why) = &self.unreadable {
            return Credentials::none(why.clone());
        }
        let server = server_address(registry);
        let (helper, key) = match self.file.cred_helpers.get(server) {
            Some(h) => (h.as_str(), "credHelpers"),
            None => (
                self.file.creds_store.as_deref().unwrap_or_default(),
                "credsStore",
            ),
        };
        // An empty `credHelpers` entry sends its registry to `auths`, as in Docker.
        if helper.is_empty() {
            return self.in_auths(registry, server);
        }
        let named = format!(
            "`docker-credential-{helper}` ({key} in {})",
            self.path.display()
        );
        match self.run_helper(helper, server).await {
            Ok(HelperAnswer { username, secret }) => {
                if username == TOKEN_USERNAME {
                    Credentials::none(format!(
                        "{named} gave an identity token for {registry}, which scar cannot use: \
                         it logs in with a user name and password"
                    ))
                } else if username.is_empty() && secret.is_empty() {
                    Credentials::none(format!("{named} has none for {registry}"))
                } else {
                    Credentials {
                        auth: RegistryAuth::Basic(username, secret),
                        origin: format!("the credentials from {named}"),
                    }
                }
            }
            Err(HelperFailure::NotFound) => {
                Credentials::none(format!("{named} has none for {registry}"))
            }
            Err(HelperFailure::Other(why)) => Credentials::none(format!("{named} {why}")),
        }
    }

    fn in_auths(&self, registry: &str, server: &str) -> Credentials {
        let hub = server == DOCKER_HUB;
        // Docker's file store: the exact key, else a key whose host is the registry (keys
        // may carry a scheme and a path, as `https://index.docker.io/v1/` does).
        let entry = self.file.auths.get(server).or_else(|| {
            self.file.auths.iter().find_map(|(key, entry)| {
                let host = key
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .split('/')
                    .next()
                    .unwrap_or_default();
                let same = if hub {
                    server_address(host) == DOCKER_HUB
                } else {
                    host == registry
                };
                same.then_some(entry)
            })
        });
        let file = self.path.display();
        let Some(entry) = entry else {
            return Credentials::none(format!("none for {registry} in {file}"));
        };
        let origin = format!("the credentials for {registry} in `auths` of {file}");
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok());
            return match decoded.as_deref().and_then(|d| d.split_once(':')) {
                Some((user, pass)) if !user.is_empty() => Credentials {
                    auth: RegistryAuth::Basic(user.into(), pass.trim_matches('\0').into()),
                    origin,
                },
                _ => Credentials::none(format!(
                    "the `auth` of {registry} in `auths` of {file} is not base64 of `user:password`"
                )),
            };
        }
        if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
            return Credentials {
                auth: RegistryAuth::Basic(u.clone(), p.clone()),
                origin,
            };
        }
        if let Some(token) = entry.registrytoken.as_deref().filter(|t| !t.is_empty()) {
            return Credentials {
                auth: RegistryAuth::Bearer(token.into()),
                origin,
            };
        }
        if entry
            .identitytoken
            .as_deref()
            .is_some_and(|t| !t.is_empty())
        {
            return Credentials::none(format!(
                "{registry} has an identity token in `auths` of {file}, which scar cannot use: \
                 it logs in with a user name and password"
            ));
        }
        Credentials::none(format!("the entry for {registry} in {file} is empty"))
    }

    /// `docker-credential-<helper> get`, `server` on its standard input.
    async fn run_helper(&self, helper: &str, server: &str) -> Result<HelperAnswer, HelperFailure> {
        let program = format!("docker-credential-{helper}");
        let Some(exe) = self.search_path.as_ref().and_then(|p| {
            std::env::split_paths(p)
                .map(|d| d.join(&program))
                .find(|p| p.is_file())
        }) else {
            return Err(HelperFailure::Other("is not on PATH".into()));
        };
        let mut tries = 0;
        let mut child = loop {
            let spawned = tokio::process::Command::new(&exe)
                .arg("get")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn();
            match spawned {
                // A helper just written (by an installer, or a test) may still be open for
                // writing in a child another thread forked: try again shortly.
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 20 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                }
                Err(e) => return Err(HelperFailure::Other(format!("cannot be run: {e}"))),
                Ok(child) => break child,
            }
        };
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading is judged by its exit status below.
            let _ = stdin.write_all(server.as_bytes()).await;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| HelperFailure::Other(format!("cannot be run: {e}")))?;
        if !out.status.success() {
            let stdout = String::from_utf8_lossy(&out.stdout);
            if stdout.trim() == NOT_FOUND {
                return Err(HelperFailure::NotFound);
            }
            let how = match out.status.code() {
                Some(code) => format!("failed (exit status {code})"),
                None => format!("failed ({})", out.status),
            };
            return Err(HelperFailure::Other(
                match said(&stdout).or_else(|| said(&String::from_utf8_lossy(&out.stderr))) {
                    Some(line) => format!("{how}: {line}"),
                    None => how,
                },
            ));
        }
        serde_json::from_slice(&out.stdout).map_err(|_| {
            HelperFailure::Other(
                "answered with something other than the credential-helper JSON \
                 ({\"Username\": .., \"Secret\": ..})"
                    .into(),
            )
        })
    }
}

/// What a failing helper said: its first line, short, unless it looks like it holds a
/// secret.
fn said(output: &str) -> Option<String> {
    let line = output.lines().map(str::trim).find(|l| !l.is_empty())?;
    if line.contains("Secret") || line.contains("secret") {
        return None;
    }
    Some(line.chars().take(200).collect())
}

/// A helper's answer. No `Debug`: it holds a secret.
#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

enum HelperFailure {
    /// The helper has nothing for this registry.
    NotFound,
    /// Why it could not answer (said after the helper's name).
    Other(String),
}

/// The key Docker looks `registry` up with: Docker Hub's server address for its names,
/// else `host[:port]` itself.
fn server_address(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use scar_test_support::images::{
        build_busybox_image, credential_helper, credential_helper_script, helper_asked,
        require_tools, TestRegistry,
    };

    use super::*;
    use crate::registry::Ctx;
    use crate::{BlobCache, NoProgress, PackagerError};

    /// A Docker config directory holding `config` (JSON), and a directory for helpers.
    struct Home {
        dir: tempfile::TempDir,
    }

    impl Home {
        fn new(config: &str) -> Home {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir(dir.path().join("bin")).unwrap();
            if !config.is_empty() {
                std::fs::write(dir.path().join("config.json"), config).unwrap();
            }
            Home { dir }
        }

        fn bin(&self) -> PathBuf {
            self.dir.path().join("bin")
        }

        /// A helper running `body` (see [`credential_helper_script`]).
        fn helper(&self, name: &str, body: &str) {
            credential_helper_script(&self.bin(), name, body);
        }

        /// A helper that answers `user`/`secret` for `server` and has nothing for others.
        fn answering(&self, name: &str, server: &str, user: &str, secret: &str) {
            credential_helper(&self.bin(), name, &[(server, user, secret)]);
        }

        fn asked(&self, name: &str) -> String {
            helper_asked(&self.bin(), name)
        }

        fn config(&self) -> DockerConfig {
            DockerConfig::load(self.dir.path(), Some(self.bin().into_os_string()))
        }

        async fn credentials(&self, registry: &str) -> Credentials {
            self.config().credentials(registry).await
        }
    }

    fn basic(c: &Credentials) -> Option<(&str, &str)> {
        match &c.auth {
            RegistryAuth::Basic(u, p) => Some((u, p)),
            _ => None,
        }
    }

    #[tokio::test]
    async fn auths_are_read_as_docker_login_writes_them() {
        let home = Home::new(
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},
                "reg:5000":{"auth":"YWxpY2U6czNjcjN0"},
                "https://other:443/v2/":{"username":"bob","password":"pw"},
                "tok:5000":{"registrytoken":"abc"},
                "id:5000":{"identitytoken":"refresh"},
                "bad:5000":{"auth":"not base64!"}}}"#,
        );
        let c = home.credentials("reg:5000").await;
        assert_eq!(basic(&c), Some(("alice", "s3cr3t")));
        assert!(c.origin.contains("`auths`"), "{}", c.origin);
        for hub in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            assert_eq!(
                basic(&home.credentials(hub).await),
                Some(("u", "p")),
                "{hub}"
            );
        }
        assert_eq!(
            basic(&home.credentials("other:443").await),
            Some(("bob", "pw"))
        );
        assert!(matches!(
            home.credentials("tok:5000").await.auth,
            RegistryAuth::Bearer(t) if t == "abc"
        ));
        let id = home.credentials("id:5000").await;
        assert_eq!(id.auth, RegistryAuth::Anonymous);
        assert!(id.origin.contains("identity token"), "{}", id.origin);
        let bad = home.credentials("bad:5000").await;
        assert_eq!(bad.auth, RegistryAuth::Anonymous);
        assert!(bad.origin.contains("not base64"), "{}", bad.origin);
        let none = home.credentials("elsewhere:5000").await;
        assert_eq!(none.auth, RegistryAuth::Anonymous);
        assert!(
            none.origin
                .starts_with("no credentials: none for elsewhere:5000 in "),
            "{}",
            none.origin
        );
    }

    #[tokio::test]
    async fn a_missing_or_broken_config_file_means_no_credentials() {
        let missing = Home::new("").credentials("reg:5000").await;
        assert_eq!(missing.auth, RegistryAuth::Anonymous);
        let broken = Home::new("{not json").credentials("reg:5000").await;
        assert_eq!(broken.auth, RegistryAuth::Anonymous);
        assert!(
            broken.origin.contains("is not valid JSON"),
            "{}",
            broken.origin
        );
    }

    #[tokio::test]
    async fn cred_helpers_then_creds_store_then_auths() {
        let home = Home::new(
            r#"{"credHelpers":{"reg:5000":"per","https://index.docker.io/v1/":"hub","plain:5000":""},
                "credsStore":"store",
                "auths":{"reg:5000":{"auth":"ZmlsZTpmaWxl"},"plain:5000":{"auth":"ZmlsZTpmaWxl"},
                         "other:5000":{"auth":"ZmlsZTpmaWxl"}}}"#,
        );
        home.answering("per", "reg:5000", "per-user", "per-secret");
        home.answering("hub", DOCKER_HUB, "hub-user", "hub-secret");
        home.answering("store", "other:5000", "store-user", "store-secret");

        let per = home.credentials("reg:5000").await;
        assert_eq!(basic(&per), Some(("per-user", "per-secret")));
        assert!(
            per.origin
                .contains("`docker-credential-per` (credHelpers in "),
            "{}",
            per.origin
        );
        // Docker Hub's helper is asked for its server URL, whatever name the reference used.
        let hub = home.credentials("docker.io").await;
        assert_eq!(basic(&hub), Some(("hub-user", "hub-secret")));
        assert_eq!(home.asked("hub"), format!("{DOCKER_HUB}\n"));
        // credsStore for the others, even where `auths` has an entry (Docker keeps only
        // empty entries there when a store is in use).
        let store = home.credentials("other:5000").await;
        assert_eq!(basic(&store), Some(("store-user", "store-secret")));
        assert!(store.origin.contains("(credsStore in "), "{}", store.origin);
        // An empty credHelpers entry opts its registry out of the store.
        assert_eq!(
            basic(&home.credentials("plain:5000").await),
            Some(("file", "file"))
        );
        // A helper that has nothing: anonymous, and said so.
        let unknown = home.credentials("unknown:5000").await;
        assert_eq!(unknown.auth, RegistryAuth::Anonymous);
        assert!(
            unknown.origin.contains("`docker-credential-store`")
                && unknown.origin.contains("has none for unknown:5000"),
            "{}",
            unknown.origin
        );
        assert_eq!(home.asked("per"), "reg:5000\n");
        assert_eq!(home.asked("store"), "other:5000\nunknown:5000\n");
    }

    #[tokio::test]
    async fn helpers_that_fail_are_named_without_their_secrets() {
        let home = Home::new(
            r#"{"credHelpers":{"missing:1":"missing","fails:1":"fails","garbage:1":"garbage",
                "token:1":"token","leaky:1":"leaky"}}"#,
        );
        home.helper("fails", "echo 'keychain is locked' >&2; exit 4");
        home.helper("garbage", "echo 'Username: x'");
        home.helper(
            "token",
            r#"printf '{"ServerURL":"token:1","Username":"<token>","Secret":"refresh-s3cr3t"}'"#,
        );
        home.helper(
            "leaky",
            r#"printf '{"Username":"u","Secret":"leaked-s3cr3t"}'; exit 1"#,
        );
        let cases = [
            ("missing:1", "`docker-credential-missing` (credHelpers in "),
            ("missing:1", "is not on PATH"),
            ("fails:1", "failed (exit status 4): keychain is locked"),
            (
                "garbage:1",
                "answered with something other than the credential-helper JSON",
            ),
            (
                "token:1",
                "gave an identity token for token:1, which scar cannot use",
            ),
            ("leaky:1", "`docker-credential-leaky` (credHelpers in "),
        ];
        for (registry, says) in cases {
            let c = home.credentials(registry).await;
            assert_eq!(c.auth, RegistryAuth::Anonymous, "{registry}");
            assert!(c.origin.contains(says), "{registry}: {}", c.origin);
            let shown = format!("{} {c:?}", c.origin);
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
        // Debug never shows a secret either.
        let home = Home::new(r#"{"credsStore":"ok"}"#);
        home.answering("ok", "reg:1", "alice", "hidden-s3cr3t");
        let c = home.credentials("reg:1").await;
        assert_eq!(basic(&c), Some(("alice", "hidden-s3cr3t")));
        assert!(!format!("{c:?}").contains("s3cr3t"), "{c:?}");
    }

    /// The whole chain with real components: `docker-registry` behind an htpasswd login,
    /// a credential helper script, a pull and a push through scar-packager.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_registry_behind_a_login_is_pulled_from_and_pushed_to_with_a_helper() {
        if !require_tools(&["docker-registry", "htpasswd", "umoci", "skopeo", "busybox"]) {
            return;
        }
        let work = tempfile::tempdir().unwrap();
        let registry = TestRegistry::with_login("alice", "s3cr3t-pw");
        let reference = build_busybox_image(work.path()).push(&registry, "test/private:v1", false);
        let addr = registry.addr.as_str();
        let caches = std::cell::Cell::new(0);
        let pull = |docker: DockerConfig| {
            caches.set(caches.get() + 1);
            let cache = BlobCache::new(work.path().join(format!("cache{}", caches.get())));
            let reference = reference.clone();
            async move {
                let pulled = crate::registry::pull_with(
                    &reference,
                    &cache,
                    &NoProgress,
                    &docker,
                    &Default::default(),
                )
                .await;
                (pulled, cache)
            }
        };

        // Without credentials: refused, and the error says it is about authentication.
        let no_config = Home::new("");
        let err = pull(no_config.config()).await.0.unwrap_err();
        let text = error_text(&err);
        assert!(matches!(err, PackagerError::RegistryAuth { .. }), "{text}");
        assert!(
            text.contains(&format!("registry {addr} refused access")),
            "{text}"
        );
        assert!(text.contains("401 Unauthorized"), "{text}");
        assert!(
            text.contains(&format!("no credentials: none for {addr} in ")),
            "{text}"
        );
        assert!(text.contains("credHelpers"), "{text}");

        // credHelpers names a helper for this registry: the pull goes through.
        let per_registry = Home::new(&format!(r#"{{"credHelpers":{{"{addr}":"scartest"}}}}"#));
        per_registry.answering("scartest", addr, "alice", "s3cr3t-pw");
        let (image, cache) = pull(per_registry.config()).await;
        let image = image.unwrap();
        assert_eq!(image.layers.len(), 1);
        assert_eq!(per_registry.asked("scartest"), format!("{addr}\n"));

        // credsStore: the default helper for every registry.
        let store = Home::new(r#"{"credsStore":"scartest"}"#);
        store.answering("scartest", addr, "alice", "s3cr3t-pw");
        assert_eq!(pull(store.config()).await.0.unwrap(), image);

        // The helper named but not installed: the error names it and the registry.
        let missing = Home::new(r#"{"credsStore":"scartest"}"#);
        let err = pull(missing.config()).await.0.unwrap_err();
        let text = error_text(&err);
        assert!(
            text.contains(&format!("registry {addr} refused access"))
                && text.contains("`docker-credential-scartest` (credsStore in ")
                && text.contains("is not on PATH"),
            "{text}"
        );

        // A helper whose password the registry refuses: said, and never shown.
        let wrong = Home::new(r#"{"credsStore":"scartest"}"#);
        wrong.answering("scartest", addr, "alice", "wrong-s3cr3t");
        let err = pull(wrong.config()).await.0.unwrap_err();
        let text = error_text(&err);
        assert!(
            text.contains("401 Unauthorized")
                && text.contains("scar offered the credentials from `docker-credential-scartest`"),
            "{text}"
        );
        assert!(!text.contains("s3cr3t") && !format!("{err:?}").contains("s3cr3t"));

        // A push with the helper's credentials, and refused without them.
        let package = crate::unchanged_image_package(&image, &cache).unwrap();
        let target = format!("{addr}/test/pushed:v1");
        let push = |docker: DockerConfig| {
            let (package, cache, target) = (package.clone(), cache.clone(), target.clone());
            async move {
                let target = Ctx::connect(&target, None, true, &docker).await?;
                crate::package::push_to(
                    target,
                    &package,
                    &cache,
                    crate::ManifestFormat::Oci,
                    &NoProgress,
                )
                .await
            }
        };
        let err = push(no_config.config()).await.unwrap_err();
        assert!(matches!(err, PackagerError::RegistryAuth { .. }), "{err}");
        let report = push(per_registry.config()).await.unwrap();
        assert_eq!(report.pushed.len(), 2, "{report:?}");
        let cache = BlobCache::new(work.path().join("cache-back"));
        let back = crate::registry::pull_with(
            &target,
            &cache,
            &NoProgress,
            &store.config(),
            &Default::default(),
        )
        .await
        .unwrap();
        assert_eq!(back.manifest_digest, report.manifest_digest);
        assert_eq!((back.layers, back.config), (image.layers, image.config));
    }

    /// An error and its sources, as the CLI prints them.
    fn error_text(e: &dyn std::error::Error) -> String {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            text.push_str(&format!("\ncaused by: {s}"));
            source = s.source();
        }
        text
    }
}
