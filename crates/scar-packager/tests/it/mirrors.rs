//! Registry mirrors against real registries: two `docker-registry`s, one the registry an
//! image names, the other its mirror; images built with umoci and pushed with skopeo.

use std::sync::Mutex;

use scar_packager::{
    pull_through, BlobCache, ImageSource, PackagerError, Progress, PulledImage, RegistryMirrors,
};
use scar_test_support::images::{build_busybox_image, require_tools, OciImage, TestRegistry};

const TOOLS: &[&str] = &["docker-registry", "umoci", "skopeo", "busybox"];

/// The notes a pull gives (which mirror served it, which were passed over).
#[derive(Default)]
struct Notes(Mutex<Vec<String>>);

impl Progress for Notes {
    fn note(&self, msg: &str) {
        self.0.lock().unwrap().push(msg.to_string());
    }
    fn warn(&self, msg: &str) {
        self.0.lock().unwrap().push(format!("warning: {msg}"));
    }
}

impl Notes {
    fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

/// `reference` pulled into a fresh cache under `work` through `mirrors`, and its notes.
async fn pull_via(
    work: &std::path::Path,
    reference: &str,
    mirrors: &RegistryMirrors,
) -> (Result<PulledImage, PackagerError>, String) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let cache = BlobCache::new(work.join(format!("cache-{n}")));
    let notes = Notes::default();
    let source = ImageSource::detect(reference).unwrap();
    let pulled = pull_through(&source, &cache, &notes, mirrors).await;
    (pulled, notes.text())
}

fn mirrors(pairs: &[(&str, &str)]) -> RegistryMirrors {
    let mut m = RegistryMirrors::default();
    for (registry, location) in pairs {
        m.add(registry, location).unwrap();
    }
    m
}

/// The busybox image, with `WHICH=<which>` in its config: two images that differ.
fn image(work: &std::path::Path, which: &str) -> OciImage {
    let img = build_busybox_image(&work.join(which));
    img.config(&[&format!("--config.env=WHICH={which}")]);
    img
}

fn which(image: &PulledImage) -> &str {
    image
        .config
        .env
        .iter()
        .find_map(|e| e.strip_prefix("WHICH="))
        .unwrap_or("")
}

/// A mirror is tried first (it wins over the registry for the same tag), the registry is
/// the fallback for what the mirror lacks or when the mirror does not answer, and a
/// mirror may keep the registry's repositories under a path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_is_tried_first_and_the_registry_is_the_fallback() {
    if !require_tools(TOOLS) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (upstream, mirror) = (TestRegistry::start(), TestRegistry::start());
    let (up, mi) = (upstream.addr.as_str(), mirror.addr.as_str());
    let ours = image(work.path(), "upstream");
    ours.push(&upstream, "team/tool:1", false);
    ours.push(&upstream, "team/only-upstream:1", false);
    let theirs = image(work.path(), "mirror");
    theirs.push(&mirror, "team/tool:1", true);
    theirs.push(&mirror, "hub/team/tool:1", false);
    let via_mirror = mirrors(&[(up, &format!("http://{mi}"))]);

    // The same tag on both: the mirror's comes, and the note says where from.
    let (pulled, notes) = pull_via(work.path(), &format!("{up}/team/tool:1"), &via_mirror).await;
    let pulled = pulled.unwrap();
    assert_eq!(which(&pulled), "mirror", "{notes}");
    assert!(
        notes.contains(&format!("came from its mirror http://{mi}")),
        "{notes}"
    );
    // The image keeps the name the user gave it.
    assert_eq!(pulled.source, format!("{up}/team/tool:1"));

    // What the mirror lacks comes from the registry, and the note says the mirror was
    // passed over and why.
    let (pulled, notes) = pull_via(
        work.path(),
        &format!("{up}/team/only-upstream:1"),
        &via_mirror,
    )
    .await;
    assert_eq!(which(&pulled.unwrap()), "upstream");
    assert!(
        notes.contains(&format!("warning: mirror http://{mi} passed over"))
            && notes.contains("team/only-upstream"),
        "{notes}"
    );

    // A mirror that does not answer is passed over too.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (pulled, notes) = pull_via(
        work.path(),
        &format!("{up}/team/tool:1"),
        &mirrors(&[(up, &dead)]),
    )
    .await;
    assert_eq!(which(&pulled.unwrap()), "upstream");
    assert!(
        notes.contains(&format!("mirror {dead} passed over")),
        "{notes}"
    );

    // Mirrors in order; one keeping the registry's repositories under a path.
    let two = mirrors(&[(up, &dead), (up, &format!("http://{mi}/hub"))]);
    let (pulled, notes) = pull_via(work.path(), &format!("{up}/team/tool:1"), &two).await;
    assert_eq!(which(&pulled.unwrap()), "mirror", "{notes}");

    // A digest is verified on the mirror as on the registry: the registry's image by
    // digest is not the mirror's, which has not that digest, so the registry serves it.
    let digest = ours.manifest_digest();
    let (pulled, notes) = pull_via(
        work.path(),
        &format!("{up}/team/tool@{digest}"),
        &via_mirror,
    )
    .await;
    let pulled = pulled.unwrap();
    assert_eq!(
        (which(&pulled), pulled.manifest_digest.as_str()),
        ("upstream", digest.as_str())
    );
    assert!(notes.contains("passed over"), "{notes}");

    // No mirror for a registry: nothing is said.
    let (pulled, notes) = pull_via(
        work.path(),
        &format!("{up}/team/tool:1"),
        &mirrors(&[("quay.io", &format!("http://{mi}"))]),
    )
    .await;
    assert_eq!((which(&pulled.unwrap()), notes.as_str()), ("upstream", ""));
}

/// Docker Hub's names (`grycap/cowsay`, `busybox` = `library/busybox`) come from a mirror
/// of `docker.io`, keyed by any of Docker Hub's names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_hub_names_come_from_a_mirror_of_docker_io() {
    if !require_tools(TOOLS) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let mirror = TestRegistry::start();
    let img = image(work.path(), "hub");
    img.push(&mirror, "grycap/cowsay:latest", false);
    img.push(&mirror, "library/busybox:latest", true);
    let hub = mirrors(&[("docker.io", &format!("http://{}", mirror.addr))]);
    for name in ["grycap/cowsay", "docker.io/grycap/cowsay:latest", "busybox"] {
        let (pulled, notes) = pull_via(work.path(), name, &hub).await;
        let pulled = pulled.unwrap_or_else(|e| panic!("{name}: {e}\n{notes}"));
        assert_eq!(which(&pulled), "hub", "{name}");
        assert!(notes.contains("came from its mirror"), "{notes}");
    }
    // Docker Hub's other names key the same mirror.
    let other = mirrors(&[("index.docker.io", &format!("http://{}", mirror.addr))]);
    assert!(pull_via(work.path(), "grycap/cowsay", &other)
        .await
        .0
        .is_ok());
}
