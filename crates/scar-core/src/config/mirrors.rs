//! Registry mirrors: where images that name a registry are pulled from first.
//!
//! The setting is read as Docker's `registry-mirrors` and containers-registries.conf's
//! `[[registry.mirror]]` behave: each mirror of a registry is tried in order, and the
//! registry itself last, when no mirror has the image (or none answers). Unlike Docker's
//! setting, which mirrors Docker Hub only, any registry may have mirrors; the key names
//! the registry as references name it (`docker.io`, `quay.io`, `host:5000`).
//!
//! In `scar.cfg`: `{"registry": {"mirrors": {"docker.io": "http://127.0.0.1:5000"}}}` (a
//! list of mirrors is tried in its order); in the environment, which replaces the file's
//! whole setting: `SCAR_REGISTRY_MIRRORS=docker.io=http://127.0.0.1:5000` (pairs separated
//! by commas or spaces; a registry named twice has two mirrors).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The environment variable that replaces `registry.mirrors`.
pub const ENV_REGISTRY_MIRRORS: &str = "SCAR_REGISTRY_MIRRORS";

/// Docker Hub's name in references, and the other names it goes by.
const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_ALIASES: &[&str] = &[
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// `registry`: scar's addition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegistrySection {
    /// Registry (`docker.io`) to one mirror or a list of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirrors: Option<BTreeMap<String, OneOrMany>>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// One mirror, or a list of them in the order they are tried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A mirror of a registry: a registry of its own that serves the same repositories
/// (under `prefix`, when it keeps them under a path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// `host[:port]`.
    pub host: String,
    /// A path the mirror keeps the registry's repositories under (`dockerhub` in
    /// `mirror.example.com/dockerhub`), or `None`.
    pub prefix: Option<String>,
    /// `Some(true)` for `http://`, `Some(false)` for `https://`; `None` (no scheme): as
    /// for any registry, plain HTTP on loopback only.
    pub plain_http: Option<bool>,
    /// As the user wrote it, for messages.
    pub location: String,
}

impl Mirror {
    /// Reads a mirror's location: `[http://|https://]host[:port][/prefix]`.
    pub fn parse(location: &str) -> Result<Mirror, String> {
        let text = location.trim();
        let (plain_http, rest) = if let Some(r) = text.strip_prefix("http://") {
            (Some(true), r)
        } else if let Some(r) = text.strip_prefix("https://") {
            (Some(false), r)
        } else if text.contains("://") {
            return Err(format!(
                "`{location}`: a mirror is reached over `http://` or `https://`"
            ));
        } else {
            (None, text)
        };
        let rest = rest.trim_end_matches('/');
        let (host, prefix) = match rest.split_once('/') {
            Some((h, p)) => (h, Some(p.to_string())),
            None => (rest, None),
        };
        let bad_char = |c: char| c.is_whitespace() || "?#@\\".contains(c);
        if host.is_empty() || rest.chars().any(bad_char) {
            return Err(format!(
                "`{location}`: not a mirror's location (`[http://|https://]host[:port][/path]`)"
            ));
        }
        Ok(Mirror {
            host: host.to_ascii_lowercase(),
            prefix,
            plain_http,
            location: text.to_string(),
        })
    }
}

/// Each registry's mirrors, tried in order before the registry itself. Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryMirrors(BTreeMap<String, Vec<Mirror>>);

impl RegistryMirrors {
    /// `registry`'s mirrors (none for most): `registry` as a reference names it
    /// (`docker.io` for Docker Hub, whichever of its names the setting used).
    pub fn of(&self, registry: &str) -> &[Mirror] {
        self.0
            .get(&registry_key(registry))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Whether no registry has a mirror.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `mirror` to `registry`'s, after those it has.
    pub fn add(&mut self, registry: &str, location: &str) -> Result<(), String> {
        let key = registry_key(registry);
        if key.is_empty() || key.contains('/') || key.chars().any(char::is_whitespace) {
            return Err(format!(
                "`{registry}`: not a registry (`docker.io`, `quay.io`, `host:port`)"
            ));
        }
        let mirror = Mirror::parse(location)?;
        self.0.entry(key).or_default().push(mirror);
        Ok(())
    }

    /// `SCAR_REGISTRY_MIRRORS` when set and not empty (it replaces the file's setting),
    /// else the config file's `registry.mirrors`.
    pub fn resolve(
        env: &dyn Fn(&str) -> Option<String>,
        file: Option<&RegistrySection>,
    ) -> Result<RegistryMirrors, ConfigError> {
        let mut mirrors = RegistryMirrors::default();
        if let Some(value) = env(ENV_REGISTRY_MIRRORS).filter(|v| !v.trim().is_empty()) {
            let bad = |reason: String| ConfigError::Mirror {
                at: ENV_REGISTRY_MIRRORS.into(),
                reason,
            };
            for pair in value
                .split([',', ' ', '\n', '\t'])
                .filter(|p| !p.is_empty())
            {
                let (registry, location) = pair.split_once('=').ok_or_else(|| {
                    bad(format!(
                        "`{pair}`: write REGISTRY=MIRROR (`docker.io=http://127.0.0.1:5000`)"
                    ))
                })?;
                mirrors.add(registry, location).map_err(bad)?;
            }
            return Ok(mirrors);
        }
        let Some(section) = file.and_then(|s| s.mirrors.as_ref()) else {
            return Ok(mirrors);
        };
        for (registry, locations) in section {
            let list = match locations {
                OneOrMany::One(l) => std::slice::from_ref(l),
                OneOrMany::Many(ls) => ls.as_slice(),
            };
            for location in list {
                mirrors
                    .add(registry, location)
                    .map_err(|reason| ConfigError::Mirror {
                        at: format!("registry.mirrors.{registry}"),
                        reason,
                    })?;
            }
        }
        Ok(mirrors)
    }
}

/// A registry's name as the setting is keyed: lowercase, Docker Hub's other names as
/// `docker.io`.
fn registry_key(registry: &str) -> String {
    let r = registry.trim().to_ascii_lowercase();
    if DOCKER_HUB_ALIASES.contains(&r.as_str()) {
        DOCKER_HUB.into()
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn section(json: &str) -> RegistrySection {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_mirrors_location_says_its_scheme_host_and_path() {
        let m = Mirror::parse("http://127.0.0.1:5000").unwrap();
        assert_eq!(
            (m.host.as_str(), m.prefix, m.plain_http),
            ("127.0.0.1:5000", None, Some(true))
        );
        let m = Mirror::parse("https://Mirror.example.com/dockerhub/").unwrap();
        assert_eq!(
            (m.host.as_str(), m.prefix.as_deref(), m.plain_http),
            ("mirror.example.com", Some("dockerhub"), Some(false))
        );
        assert_eq!(Mirror::parse("mirror:5000").unwrap().plain_http, None);
        for bad in [
            "",
            "ftp://x",
            "http://",
            "http://a b",
            "http://u@host",
            "host?x=1",
        ] {
            assert!(Mirror::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_file_maps_registries_to_one_mirror_or_a_list() {
        let file = section(
            r#"{"mirrors": {"docker.io": "http://127.0.0.1:5000",
                "quay.io": ["https://a.example", "https://b.example/quay"]}}"#,
        );
        let m = RegistryMirrors::resolve(&env_of(&[]), Some(&file)).unwrap();
        assert_eq!(m.of("docker.io")[0].location, "http://127.0.0.1:5000");
        // Docker Hub by any of its names.
        assert_eq!(m.of("index.docker.io"), m.of("docker.io"));
        let quay: Vec<&str> = m.of("quay.io").iter().map(|m| m.host.as_str()).collect();
        assert_eq!(quay, ["a.example", "b.example"]);
        assert!(m.of("ghcr.io").is_empty());
        assert!(RegistryMirrors::resolve(&env_of(&[]), None)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn the_environment_replaces_the_files_setting() {
        let file = section(r#"{"mirrors": {"docker.io": "http://127.0.0.1:5000"}}"#);
        let env = env_of(&[(
            "SCAR_REGISTRY_MIRRORS",
            "registry-1.docker.io=http://127.0.0.1:6000, docker.io=https://m.example",
        )]);
        let m = RegistryMirrors::resolve(&env, Some(&file)).unwrap();
        let hub: Vec<&str> = m.of("docker.io").iter().map(|m| m.host.as_str()).collect();
        assert_eq!(hub, ["127.0.0.1:6000", "m.example"]);
        let empty = env_of(&[("SCAR_REGISTRY_MIRRORS", " ")]);
        assert_eq!(
            RegistryMirrors::resolve(&empty, Some(&file))
                .unwrap()
                .of("docker.io")[0]
                .host,
            "127.0.0.1:5000"
        );
    }

    /// `registry.mirrors` is a key scar reads (no warning), into the settings.
    #[test]
    fn scar_cfg_carries_the_mirrors_into_the_settings() {
        use super::super::{ConfigFile, Overrides, Settings};
        let text = r#"{"registry": {"mirrors": {"docker.io": "http://127.0.0.1:5000"}}}"#;
        let file = ConfigFile::parse(text.as_bytes()).unwrap();
        assert!(file.warnings.is_empty(), "{:?}", file.warnings);
        let s = Settings::resolve(&Overrides::default(), &env_of(&[]), &file).unwrap();
        assert_eq!(s.mirrors.of("docker.io")[0].host, "127.0.0.1:5000");
        let back = serde_json::to_value(&file).unwrap();
        assert_eq!(
            back["registry"]["mirrors"]["docker.io"],
            "http://127.0.0.1:5000"
        );
    }

    #[test]
    fn a_bad_mirror_is_refused_naming_where_it_is() {
        let e = RegistryMirrors::resolve(&env_of(&[("SCAR_REGISTRY_MIRRORS", "docker.io")]), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("SCAR_REGISTRY_MIRRORS") && e.contains("REGISTRY=MIRROR"),
            "{e}"
        );
        let file = section(r#"{"mirrors": {"docker.io": "ftp://x"}}"#);
        let e = RegistryMirrors::resolve(&env_of(&[]), Some(&file))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("registry.mirrors.docker.io") && e.contains("ftp://x"),
            "{e}"
        );
        let file = section(r#"{"mirrors": {"a/b": "http://x"}}"#);
        assert!(RegistryMirrors::resolve(&env_of(&[]), Some(&file)).is_err());
    }
}
