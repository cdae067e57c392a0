//! A sandbox's network, its own as on Lambda: a network namespace of its own (made by
//! [`crate::sandbox`]) whose `127.0.0.1` is the sandbox's alone. The host reaches into it
//! only through listening sockets the sandbox opens inside and hands out: the Runtime API
//! at `127.0.0.1:9001` (Lambda's address), and the loopback endpoints of the function's
//! storage providers (a MinIO on the host's `127.0.0.1`), each forwarded to the same
//! address on the host and to nothing else. The host's other loopback services, the Invoke
//! API and other sandboxes are out of its reach.
//!
//! Outbound network, as Lambda gives it, comes from `slirp4netns` (an unprivileged
//! user-mode network stack, Debian's `slirp4netns`): a `tap0` device with a default route,
//! the host's loopback *not* mapped (`--disable-host-loopback`), DNS at `10.0.2.3`. A
//! function that asks for none (`--network none`) gets only its loopback.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use scar_core::FunctionSpec;
use tokio::task::JoinHandle;

/// Where a sandbox's runtime finds its Runtime API, as on Lambda.
pub(crate) const RUNTIME_API: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9001);

/// slirp4netns's DNS forwarder, as the sandbox sees it.
pub(crate) const DNS_SERVER: &str = "10.0.2.3";

/// The program giving sandboxes outbound network.
pub(crate) const SLIRP4NETNS: &str = "slirp4netns";

/// The loopback addresses of `spec`'s storage providers (`http://127.0.0.1:9000`,
/// `http://localhost:9000`, `http://[::1]:9000`), which the sandbox reaches on the host.
pub(crate) fn forwarded_endpoints(spec: &FunctionSpec) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = spec
        .storage_providers
        .values()
        .filter_map(|p| p.endpoint.as_deref())
        .filter_map(loopback_endpoint)
        .filter(|a| *a != RUNTIME_API)
        .collect();
    out.sort();
    out.dedup();
    out.truncate(crate::sandbox::MAX_LISTENERS - 1);
    out
}

/// `scheme://host[:port][/...]` when its host is a loopback address (or `localhost`).
fn loopback_endpoint(endpoint: &str) -> Option<SocketAddr> {
    let (scheme, rest) = endpoint.split_once("://")?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse().ok()?
    };
    ip.is_loopback().then_some(SocketAddr::new(ip, port))
}

/// Serves connections made inside a sandbox to a forwarded address by connecting to the
/// same address on the host. The tasks end with it.
pub(crate) struct Forwarders {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Forwarders {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Forwarders {
    /// Starts one per listener, each to its address on the host.
    pub fn start(listeners: Vec<(std::net::TcpListener, SocketAddr)>) -> std::io::Result<Self> {
        let mut tasks = Vec::new();
        for (listener, target) in listeners {
            listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            tasks.push(tokio::spawn(async move {
                let mut connections = tokio::task::JoinSet::new();
                loop {
                    let Ok((mut inside, _)) = listener.accept().await else {
                        // Out of descriptors, for a moment: no busy loop.
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    };
                    connections.spawn(async move {
                        let Ok(mut outside) = tokio::net::TcpStream::connect(target).await else {
                            return;
                        };
                        let _ = inside.set_nodelay(true);
                        let _ = outside.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut inside, &mut outside).await;
                    });
                    while connections.try_join_next().is_some() {}
                }
            }));
        }
        Ok(Forwarders { tasks })
    }
}

/// A sandbox's outbound network: its `slirp4netns`, which exits when this is dropped (its
/// exit descriptor closes), also when scar itself is killed.
pub(crate) struct Outbound {
    _child: tokio::process::Child,
    _exit: OwnedFd,
}

/// Why a sandbox has no outbound network.
#[derive(Debug)]
pub(crate) enum OutboundError {
    /// `slirp4netns` is not installed.
    Missing,
    /// It would not start, or stopped before the network was up.
    Failed(String),
}

impl std::fmt::Display for OutboundError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutboundError::Missing => write!(
                f,
                "{SLIRP4NETNS} is not installed (Debian/Ubuntu: `apt-get install {SLIRP4NETNS}`)"
            ),
            OutboundError::Failed(why) => write!(f, "{SLIRP4NETNS} failed: {why}"),
        }
    }
}

impl Outbound {
    /// Gives the network namespace of process `pid` (a sandbox's, with its own user
    /// namespace) a `tap0` with outbound access, and waits until it is up.
    pub async fn start(pid: u32) -> Result<Outbound, OutboundError> {
        let (ready_r, ready_w) = pipe().map_err(|e| OutboundError::Failed(e.to_string()))?;
        let (exit_r, exit_w) = pipe().map_err(|e| OutboundError::Failed(e.to_string()))?;
        let mut cmd = tokio::process::Command::new(SLIRP4NETNS);
        cmd.args([
            "--configure",
            "--mtu=65520",
            "--disable-host-loopback",
            "--enable-sandbox",
            "--enable-seccomp",
            "--ready-fd=3",
            "--exit-fd=4",
        ])
        .arg(format!("--userns-path=/proc/{pid}/ns/user"))
        .args(["--netns-type=path"])
        .arg(format!("/proc/{pid}/ns/net"))
        .arg("tap0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        let (ready_fd, exit_fd) = (ready_w.as_raw_fd(), exit_r.as_raw_fd());
        // SAFETY: between fork and exec, only dup2/fcntl on descriptors this process owns.
        unsafe {
            cmd.pre_exec(move || {
                // Out of the way of 3 and 4 first, then onto them (dup2 clears CLOEXEC).
                let ready = libc::fcntl(ready_fd, libc::F_DUPFD_CLOEXEC, 10);
                let exit = libc::fcntl(exit_fd, libc::F_DUPFD_CLOEXEC, 10);
                if ready < 0 || exit < 0 || libc::dup2(ready, 3) < 0 || libc::dup2(exit, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(OutboundError::Missing)
            }
            Err(e) => return Err(OutboundError::Failed(e.to_string())),
        };
        drop(ready_w);
        drop(exit_r);
        let mut ready = tokio::fs::File::from_std(std::fs::File::from(ready_r));
        let mut byte = [0u8; 1];
        let up = tokio::io::AsyncReadExt::read(&mut ready, &mut byte).await;
        if !matches!(up, Ok(1)) {
            let _ = child.start_kill();
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(1),
                    tokio::io::AsyncReadExt::read_to_string(&mut err, &mut stderr),
                )
                .await;
            }
            let why = stderr
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or("it stopped before the network was up")
                .to_string();
            return Err(OutboundError::Failed(why));
        }
        Ok(Outbound {
            _child: child,
            _exit: exit_w,
        })
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both are fresh descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The `resolv.conf` sandboxes with outbound network see at `/etc/resolv.conf`:
/// slirp4netns's DNS forwarder. Written once under `dir`.
pub(crate) fn resolv_conf(dir: &Path) -> std::io::Result<PathBuf> {
    let path = dir.join("resolv.conf");
    let text = format!("nameserver {DNS_SERVER}\n");
    if std::fs::read_to_string(&path).is_ok_and(|t| t == text) {
        return Ok(path);
    }
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".resolv.conf.{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_endpoints_are_forwarded_and_others_are_not() {
        let cases = [
            ("http://127.0.0.1:9000", Some("127.0.0.1:9000")),
            ("http://localhost:9000/", Some("127.0.0.1:9000")),
            ("https://LOCALHOST", Some("127.0.0.1:443")),
            ("http://[::1]:9000/x", Some("[::1]:9000")),
            ("http://127.1.2.3", Some("127.1.2.3:80")),
            ("http://user:pw@127.0.0.1:9000", Some("127.0.0.1:9000")),
            ("http://minio.example.org:9000", None),
            ("http://10.0.0.1:9000", None),
            ("ftp://127.0.0.1:21", None),
            ("127.0.0.1:9000", None),
            ("http://127.0.0.1:notaport", None),
        ];
        for (endpoint, want) in cases {
            let got = loopback_endpoint(endpoint).map(|a| a.to_string());
            assert_eq!(got.as_deref(), want, "{endpoint}");
        }
    }
}
