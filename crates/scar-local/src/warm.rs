//! Warm sandboxes: a function's runtime started in a sandbox ([`crate::sandbox`]) and
//! waiting on its Runtime API, and the pools they go back to between invocations (one per
//! function and terms, see [`RunAs::pool`]).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::api::RuntimeApi;
use crate::cgroup::MemoryCgroup;
use crate::logs::LogStream;
use crate::provider::RunAs;
use crate::state::StoredFunction;
use crate::{network, sandbox, LocalError, LocalProvider};

/// A warm sandbox: the runtime running, waiting on its Runtime API.
pub(crate) struct Sandbox {
    pub child: tokio::process::Child,
    pub api: RuntimeApi,
    /// Its forwarded ports and outbound network (see [`crate::network`]).
    _network: SandboxNetwork,
    pub log: LogStream,
    /// When it started, until its first invocation: the init phase is waited for then.
    pub started: Option<Instant>,
    /// Declared after `child`, so that it is removed after the sandbox is killed.
    pub cgroup: Option<MemoryCgroup>,
}

impl Sandbox {
    /// Whether its runtime still runs (one that died while idle is not used again).
    fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills it and waits for it to go.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Peak memory of its runtime (VmHWM of PID 1), in MB.
    pub fn max_memory_mb(&self) -> u64 {
        let Some(pid) = self.child.id() else { return 0 };
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        let Some(init) = children.split_whitespace().next() else {
            return 0;
        };
        let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kb| kb.div_ceil(1024))
            .unwrap_or(0)
    }

    /// Peak memory of the whole sandbox (its memory cgroup's), else of its runtime, in MB.
    pub fn peak_memory_mb(&self) -> u64 {
        self.cgroup
            .as_ref()
            .and_then(MemoryCgroup::peak_mb)
            .unwrap_or_else(|| self.max_memory_mb())
    }

    /// How many times the kernel's OOM killer has killed in it (0 without a cgroup).
    pub fn oom_kills(&self) -> u64 {
        self.cgroup.as_ref().map_or(0, MemoryCgroup::oom_kills)
    }
}

/// A sandbox waiting in its pool, and since when.
struct Idle {
    sandbox: Sandbox,
    since: Instant,
}

/// The warm sandboxes, by pool. The most recently used is taken first, as Lambda reuses
/// the environment that just served, so that the others stay idle and can be reclaimed
/// ([`WarmPool::reclaim`]).
#[derive(Default)]
pub(crate) struct WarmPool {
    pools: Mutex<HashMap<String, Vec<Idle>>>,
}

impl WarmPool {
    fn pools(&self) -> MutexGuard<'_, HashMap<String, Vec<Idle>>> {
        self.pools.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A sandbox of `pool` whose runtime still runs; those that died while idle are dropped.
    pub fn take(&self, pool: &str) -> Option<Sandbox> {
        loop {
            let mut idle = self.pools().get_mut(pool).and_then(Vec::pop)?;
            if idle.sandbox.is_alive() {
                return Some(idle.sandbox);
            }
        }
    }

    /// Puts `sandbox` back into `pool`, for the next invocation.
    pub fn put(&self, pool: &str, sandbox: Sandbox) {
        self.pools()
            .entry(pool.to_string())
            .or_default()
            .push(Idle {
                sandbox,
                since: Instant::now(),
            });
    }

    /// Takes the sandboxes of `pools` out, whatever their revision (`POOL@REVISION`);
    /// they are killed when dropped.
    pub fn remove(&self, pools: &[String]) -> Vec<Sandbox> {
        let mut all = self.pools();
        let keys: Vec<String> = all
            .keys()
            .filter(|key| {
                let base = key.split_once('@').map_or(key.as_str(), |(base, _)| base);
                pools.iter().any(|p| p == base)
            })
            .cloned()
            .collect();
        keys.iter()
            .filter_map(|key| all.remove(key))
            .flatten()
            .map(|idle| idle.sandbox)
            .collect()
    }

    /// Takes every sandbox out.
    pub fn drain(&self) -> Vec<Sandbox> {
        self.pools()
            .drain()
            .flat_map(|(_, v)| v)
            .map(|idle| idle.sandbox)
            .collect()
    }

    /// Takes out the sandboxes idle for `idle` or longer, as Lambda reclaims an execution
    /// environment that served nothing for a while.
    pub fn reclaim(&self, idle: Duration) -> Vec<Sandbox> {
        let mut pools = self.pools();
        let mut out = Vec::new();
        for sandboxes in pools.values_mut() {
            let (old, kept): (Vec<Idle>, Vec<Idle>) = std::mem::take(sandboxes)
                .into_iter()
                .partition(|i| i.since.elapsed() >= idle);
            *sandboxes = kept;
            out.extend(old.into_iter().map(|i| i.sandbox));
        }
        pools.retain(|_, v| !v.is_empty());
        out
    }
}

impl LocalProvider {
    /// Starts a sandbox for `stored`, run as `run` says: its Runtime API, its log stream,
    /// its memory cgroup, and its runtime in the environment
    /// [`LocalProvider::environment`] gives it.
    pub(crate) async fn start_sandbox(
        &self,
        stored: &StoredFunction,
        run: &RunAs,
    ) -> Result<Sandbox, LocalError> {
        let spec = &stored.info.spec;
        let logs_dir = self.layout().logs(&spec.name);
        let log = LogStream::create(&logs_dir)?;
        let api_address = network::RUNTIME_API.to_string();
        let mut environment = self.environment(stored, run, &api_address, &log.name)?;
        let outbound = spec.network.is_outbound() && self.can_give_outbound_network();
        if outbound {
            self.bind_resolv_conf(stored, &mut environment)?;
        }
        let forwarded = network::forwarded_endpoints(spec);
        let cgroup = self.memory_cgroup(run);
        let handle = log
            .handle()
            .map_err(LocalError::io("cannot open the log stream", &logs_dir))?;
        let started = Instant::now();
        let (ready_tx, ready) = tokio::sync::watch::channel(!outbound);
        // Outbound network starts as soon as the sandbox's namespaces exist, while its
        // mounts are made and its runtime starts (the first invocation waits for it).
        let network_task = std::sync::Arc::new(std::sync::Mutex::new(None));
        let early: Option<sandbox::OnNamespaces> = outbound.then(|| {
            let runtime = tokio::runtime::Handle::current();
            let slot = network_task.clone();
            let log = log.handle().ok();
            Box::new(move |pid: u32| {
                let task = runtime.spawn(async move {
                    let result = network::Outbound::start(pid).await;
                    if let (Err(why), Some(mut log)) = (&result, log) {
                        use std::io::Write;
                        let _ = writeln!(log, "scar: this sandbox has no outbound network: {why}");
                    }
                    let _ = ready_tx.send(true);
                    result.ok()
                });
                if let Ok(mut slot) = slot.lock() {
                    *slot = Some(NetworkTask(task));
                }
            }) as sandbox::OnNamespaces
        });
        let (child, mut listeners) = sandbox::spawn(
            sandbox::SandboxSpec {
                root: &stored.root,
                opt_dir: environment.opt.as_deref(),
                program: &environment.program,
                args: environment.args,
                workdir: environment.workdir.as_deref(),
                env: environment.env,
                log: handle,
                tmp_mb: 512,
                binds: environment.binds,
                cgroup_join: cgroup.as_ref().map(MemoryCgroup::join_file),
                listen: std::iter::once(network::RUNTIME_API)
                    .chain(forwarded.iter().copied())
                    .collect(),
            },
            early,
        )
        .map_err(|source| LocalError::Sandbox {
            function: spec.name.clone(),
            hint: sandbox_hint(&source),
            source,
        })?;
        let runtime_listener = listeners.remove(0);
        let api = RuntimeApi::serve(runtime_listener, ready).map_err(LocalError::io(
            "cannot serve the Runtime API of",
            &spec.name,
        ))?;
        let forwarders = network::Forwarders::start(listeners.into_iter().zip(forwarded).collect())
            .map_err(LocalError::io("cannot forward ports into", &spec.name))?;
        // Set by the sandbox's thread before `spawn` returned.
        let outbound = network_task.lock().ok().and_then(|mut slot| slot.take());
        Ok(Sandbox {
            child,
            api,
            _network: SandboxNetwork {
                _forwarders: forwarders,
                _outbound: outbound,
            },
            log,
            started: Some(started),
            cgroup,
        })
    }

    /// A memory cgroup limiting the sandbox to `run`'s memory; none where the machine does
    /// not allow one (the user is told once).
    fn memory_cgroup(&self, run: &RunAs) -> Option<MemoryCgroup> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match MemoryCgroup::create(&id, run.memory_mb) {
            Ok(cgroup) => Some(cgroup),
            Err(why) => {
                self.warn_memory_not_enforced(&why);
                None
            }
        }
    }
}

/// A sandbox's network, held as long as the sandbox: its port forwarders and its
/// `slirp4netns` (started in the background; the first invocation waits for it).
struct SandboxNetwork {
    _forwarders: network::Forwarders,
    _outbound: Option<NetworkTask>,
}

/// The task starting a sandbox's outbound network; what it started goes with it.
struct NetworkTask(tokio::task::JoinHandle<Option<network::Outbound>>);

impl Drop for NetworkTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl LocalProvider {
    /// Whether sandboxes can have outbound network (`slirp4netns` is installed); the user
    /// is told once when not.
    fn can_give_outbound_network(&self) -> bool {
        static FOUND: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let found = *FOUND.get_or_init(|| {
            std::env::var_os("PATH").is_some_and(|path| {
                std::env::split_paths(&path).any(|dir| dir.join(network::SLIRP4NETNS).is_file())
            })
        });
        if !found {
            self.warn_no_outbound_network(&network::OutboundError::Missing.to_string());
        }
        found
    }

    /// `/etc/resolv.conf` naming the DNS forwarder of the sandbox's outbound network, as
    /// Lambda gives a function its resolver (the image's own is covered).
    fn bind_resolv_conf(
        &self,
        stored: &StoredFunction,
        environment: &mut crate::environment::Environment,
    ) -> Result<(), LocalError> {
        let dir = self.layout().home.join("network");
        let host = network::resolv_conf(&dir)
            .map_err(LocalError::io("cannot write", dir.join("resolv.conf")))?;
        crate::state::ensure_mount_point(&stored.root, "etc")?;
        let inside = stored.root.join("etc/resolv.conf");
        // A regular file to mount over: never a symlink, which could lead out of the root.
        match std::fs::symlink_metadata(&inside) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => {
                std::fs::remove_file(&inside).map_err(LocalError::io("cannot replace", &inside))?;
                std::fs::write(&inside, b"").map_err(LocalError::io("cannot create", &inside))?;
            }
            Err(_) => {
                std::fs::write(&inside, b"").map_err(LocalError::io("cannot create", &inside))?;
            }
        }
        environment
            .binds
            .push((host, "etc/resolv.conf".into(), true));
        Ok(())
    }
}

/// What the user can do about a sandbox that would not start.
fn sandbox_hint(err: &std::io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) | Some(libc::ENOSPC) => {
            " (this machine does not allow unprivileged user namespaces: enable them with `sysctl kernel.unprivileged_userns_clone=1` or `kernel.apparmor_restrict_unprivileged_userns=0`, or run scar where they are allowed)"
        }
        Some(libc::ENOENT) => " (the supervisor is missing from the function: recreate it with `scar rm` and `scar init`)",
        _ => "",
    }
}
