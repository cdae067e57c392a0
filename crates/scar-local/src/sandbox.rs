//! Sandboxes: the supervisor started in fresh Linux user + mount + pid + network namespaces
//! with the image root as `/`.
//!
//! The child of `fork` (still single-threaded, before `exec`) unshares the namespaces, maps
//! the caller's uid and gid to root inside, brings up the sandbox's own loopback and opens
//! the listening sockets the host serves from outside (the Runtime API at `127.0.0.1:9001`,
//! forwarded ports: see [`crate::network`]), handing them to the parent over a socket
//! pair (`SCM_RIGHTS`), then forks once more so that the supervisor is
//! PID 1 of the new pid namespace; the middle process only waits and passes the exit
//! status on. Both die with their parent (`PR_SET_PDEATHSIG`), and everything in the pid
//! namespace dies with PID 1. Only async-signal-safe calls run between `fork` and `exec`:
//! every string is prepared beforehand.

use std::ffi::{CStr, CString};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use tokio::process::{Child, Command};

/// Everything a sandbox needs, prepared before `fork`.
pub(crate) struct SandboxSpec<'a> {
    /// The image root (read-only inside).
    pub root: &'a Path,
    /// The function's `opt` directory, mounted read-only at `/opt/scar` (none: the root
    /// has its own, as image packages do).
    pub opt_dir: Option<&'a Path>,
    /// The runtime's path inside the sandbox (scar's supervisor, or an image's
    /// ENTRYPOINT), and its arguments.
    pub program: &'a str,
    pub args: Vec<String>,
    /// Where it starts, inside the sandbox (none: `/`).
    pub workdir: Option<&'a str>,
    /// The supervisor's environment.
    pub env: Vec<(String, String)>,
    /// Where the supervisor's stdout and stderr go (the log stream).
    pub log: std::fs::File,
    /// Size of the private `/tmp`, MB.
    pub tmp_mb: u32,
    /// Bind mounts, after `/opt/scar`: a host directory, where it goes relative to the
    /// root (its mount point must exist), and whether it is read-only.
    pub binds: Vec<(std::path::PathBuf, String, bool)>,
    /// The file the sandbox writes itself into to join its memory cgroup
    /// ([`crate::cgroup::MemoryCgroup::join_file`]), before anything else.
    pub cgroup_join: Option<std::path::PathBuf>,
    /// Addresses listened on inside the sandbox's network namespace (loopback ones), whose
    /// listening sockets [`spawn`] returns in this order, for the host to serve.
    pub listen: Vec<SocketAddr>,
}

/// At most this many listening sockets are handed out of a sandbox.
pub(crate) const MAX_LISTENERS: usize = 16;

/// Paths and flags computed before `fork`.
struct Prepared {
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    root: CString,
    root_flags: libc::c_ulong,
    opt: Option<(CString, CString, libc::c_ulong)>,
    tmp: CString,
    tmp_opts: CString,
    proc_: CString,
    dev: CString,
    devices: Vec<(CString, CString)>,
    dev_links: Vec<(CString, CString)>,
    binds: Vec<(CString, CString, Option<libc::c_ulong>)>,
    cgroup_join: Option<CString>,
    workdir: Option<CString>,
    listen: Vec<(libc::sockaddr_storage, libc::socklen_t)>,
    /// The sandbox's end of the socket pair the listeners go through.
    channel: libc::c_int,
}

fn cstr(bytes: &[u8]) -> std::io::Result<CString> {
    CString::new(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has a NUL byte"))
}

fn path_c(p: &Path) -> std::io::Result<CString> {
    cstr(p.as_os_str().as_bytes())
}

/// The mount flags a bind mount of `path` must keep when remounted inside a user namespace
/// (the kernel refuses to drop "locked" flags such as nosuid or nodev).
fn locked_flags(path: &CString) -> std::io::Result<libc::c_ulong> {
    // SAFETY: statvfs writes into the zeroed struct we own.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut flags = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        // ST_RELATIME: the libc crate defines it for glibc only (scar is built for musl too).
        (4096, libc::MS_RELATIME),
    ] {
        if st.f_flag & st_flag != 0 {
            flags |= ms_flag;
        }
    }
    Ok(flags)
}

fn prepare(spec: &SandboxSpec<'_>) -> std::io::Result<Prepared> {
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let root = path_c(spec.root)?;
    let inside = |rel: &str| path_c(&spec.root.join(rel));
    let mut devices = Vec::new();
    for dev in ["null", "zero", "full", "random", "urandom", "tty"] {
        devices.push((
            cstr(format!("/dev/{dev}").as_bytes())?,
            inside(&format!("dev/{dev}"))?,
        ));
    }
    let mut dev_links = Vec::new();
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        dev_links.push((cstr(target.as_bytes())?, inside(&format!("dev/{name}"))?));
    }
    let opt = match spec.opt_dir {
        Some(dir) => {
            let src = path_c(dir)?;
            let flags = locked_flags(&src)?;
            Some((src, inside("opt/scar")?, flags))
        }
        None => None,
    };
    Ok(Prepared {
        uid_map: format!("0 {uid} 1").into_bytes(),
        gid_map: format!("0 {gid} 1").into_bytes(),
        root_flags: locked_flags(&root)?,
        root,
        opt,
        tmp: inside("tmp")?,
        tmp_opts: cstr(format!("size={}m,mode=1777", spec.tmp_mb).as_bytes())?,
        proc_: inside("proc")?,
        dev: inside("dev")?,
        devices,
        dev_links,
        binds: spec
            .binds
            .iter()
            .map(|(src, rel, read_only)| {
                let src = path_c(src)?;
                let flags = if *read_only {
                    Some(locked_flags(&src)?)
                } else {
                    None
                };
                Ok((src, inside(rel)?, flags))
            })
            .collect::<std::io::Result<_>>()?,
        cgroup_join: spec.cgroup_join.as_deref().map(path_c).transpose()?,
        workdir: spec.workdir.map(|w| cstr(w.as_bytes())).transpose()?,
        listen: spec.listen.iter().map(sockaddr).collect(),
        channel: -1,
    })
}

/// `addr` as the kernel takes it.
fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid; the casts write within it.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// What [`spawn`] calls as soon as the sandbox's namespaces exist, before its mounts and
/// its runtime's `exec`: with the id of the process that holds them (the middle process).
pub(crate) type OnNamespaces = Box<dyn FnOnce(u32) + Send>;

/// Starts the supervisor in a new sandbox. The returned child is the middle process: kill
/// it and the whole sandbox goes. With it come the listening sockets of `spec.listen`, in
/// the sandbox's network namespace; `early` is called (from another thread) once the
/// namespaces exist, while the sandbox is still being built.
pub(crate) fn spawn(
    spec: SandboxSpec<'_>,
    early: Option<OnNamespaces>,
) -> std::io::Result<(Child, Vec<std::net::TcpListener>)> {
    let count = spec.listen.len();
    if count > MAX_LISTENERS || count == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("a sandbox listens on 1 to {MAX_LISTENERS} addresses"),
        ));
    }
    let mut prepared = prepare(&spec)?;
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    prepared.channel = theirs.as_raw_fd();
    let mut cmd = Command::new(spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(spec.log.try_clone()?)
        .stderr(spec.log)
        .kill_on_drop(true);
    // SAFETY: the closure runs between fork and exec; it only makes async-signal-safe
    // system calls on data prepared above, and never returns in the middle process.
    unsafe {
        cmd.pre_exec(move || enter(&prepared));
    }
    // The sandbox's message arrives while `spawn` still waits for its `exec`: a thread
    // takes it then, so that `early` runs at once. It ends with the message, or when no
    // message will come (both ends of the sandbox's side closed: it failed).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("scar-sandbox-net".into())
        .spawn(move || {
            let received = receive_fds(&ours, count);
            if let (Ok((pid, _)), Some(early)) = (&received, early) {
                early(*pid);
            }
            let _ = tx.send(received);
        })?;
    let spawned = cmd.spawn();
    drop(theirs);
    let child = spawned?;
    // The sandbox sent its listeners before its runtime's `exec`, which `spawn` waited for.
    let (_, fds) = rx.recv().map_err(|_| {
        std::io::Error::other("the sandbox did not hand over its network sockets")
    })??;
    let listeners = fds.into_iter().map(std::net::TcpListener::from).collect();
    Ok((child, listeners))
}

/// The sender's process id and the `count` descriptors of the message on `channel` (one
/// message, `SCM_RIGHTS`), waiting for it.
fn receive_fds(
    channel: &std::os::unix::net::UnixStream,
    count: usize,
) -> std::io::Result<(u32, Vec<OwnedFd>)> {
    let mut pid = [0u8; 4];
    let mut iov = libc::iovec {
        iov_base: pid.as_mut_ptr().cast(),
        iov_len: pid.len(),
    };
    let mut control = [0u64; 16];
    // SAFETY: msghdr points at buffers we own for the duration of the call; the control
    // messages are read within the length the kernel reports.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        // `as _`: socklen_t on musl, size_t on glibc.
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = loop {
            let n = libc::recvmsg(channel.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                break n;
            }
        };
        if n != pid.len() as isize {
            return Err(std::io::Error::other(format!(
                "the sandbox did not hand over its network sockets: {}",
                std::io::Error::last_os_error()
            )));
        }
        let mut fds = Vec::new();
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<libc::c_int>();
                let n = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<libc::c_int>();
                for i in 0..n {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        if fds.len() != count {
            return Err(std::io::Error::other(format!(
                "the sandbox handed over {} of its {count} network sockets",
                fds.len()
            )));
        }
        Ok((u32::from_ne_bytes(pid), fds))
    }
}

fn check(ret: libc::c_int, what: &str) -> std::io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        let err = std::io::Error::last_os_error();
        say(b"scar sandbox: ");
        say(what.as_bytes());
        say(b" failed\n");
        Err(err)
    }
}

/// Writes to stderr (the log) without allocating.
fn say(bytes: &[u8]) {
    // SAFETY: write(2) from a valid buffer.
    unsafe {
        libc::write(2, bytes.as_ptr().cast(), bytes.len());
    }
}

fn write_proc(path: &[u8], data: &[u8]) -> std::io::Result<()> {
    // SAFETY: path is NUL-terminated by the caller; open/write/close are signal-safe.
    unsafe {
        let fd = libc::open(path.as_ptr().cast(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return check(-1, "open a /proc or cgroup file");
        }
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        libc::close(fd);
        if n != data.len() as isize {
            return check(-1, "write a /proc or cgroup file");
        }
    }
    Ok(())
}

/// Runs in the child of `fork`, before `exec`: enters new namespaces and the image's root.
fn enter(p: &Prepared) -> std::io::Result<()> {
    // SAFETY (whole function): only system calls on prepared, NUL-terminated buffers.
    unsafe {
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL), "prctl")?;
        if let Some(procs) = &p.cgroup_join {
            // Before the user namespace: inside it the host's cgroup files are not ours.
            write_proc(procs.as_bytes_with_nul(), b"0")?;
        }
        check(
            libc::unshare(
                libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWNET,
            ),
            "unshare (user namespaces may be disabled: see /proc/sys/kernel/unprivileged_userns_clone)",
        )?;
        write_proc(b"/proc/self/setgroups\0", b"deny")?;
        write_proc(b"/proc/self/uid_map\0", &p.uid_map)?;
        write_proc(b"/proc/self/gid_map\0", &p.gid_map)?;
        enter_network(p)?;

        let pid = libc::fork();
        if pid < 0 {
            return check(-1, "fork");
        }
        if pid > 0 {
            middle(pid);
        }
        // PID 1 of the new namespace from here on.
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL), "prctl")?;
        mount_root(p)?;
        populate_dev(p)?;
        mount_binds(p)?;
        pivot_into_root(p)
    }
}

/// In the new network namespace: its loopback up, and the listeners of `p.listen` sent to
/// the parent. They are close-on-exec: the runtime never holds them.
unsafe fn enter_network(p: &Prepared) -> std::io::Result<()> {
    // SAFETY (whole function): system calls on buffers we own.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return check(-1, "socket");
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        req.ifr_name[0] = b'l' as libc::c_char;
        req.ifr_name[1] = b'o' as libc::c_char;
        req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as i16;
        // `as _`: the request is an int on musl, an unsigned long on glibc.
        let up = libc::ioctl(s, libc::SIOCSIFFLAGS as _, &req);
        libc::close(s);
        check(up, "bring up the sandbox's loopback")?;
        if p.listen.is_empty() {
            return Ok(());
        }
        let mut fds = [-1 as libc::c_int; MAX_LISTENERS];
        for (i, (addr, len)) in p.listen.iter().enumerate() {
            let fd = libc::socket(
                addr.ss_family as libc::c_int,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
            );
            if fd < 0 {
                return check(-1, "socket");
            }
            fds[i] = fd;
            let one: libc::c_int = 1;
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_REUSEADDR,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            check(
                libc::bind(fd, (addr as *const libc::sockaddr_storage).cast(), *len),
                "listen inside the sandbox (bind)",
            )?;
            check(libc::listen(fd, 1024), "listen inside the sandbox")?;
        }
        let n = p.listen.len();
        // The data: this process's id, as the host sees it (its namespaces' holder).
        let mut pid = (libc::getpid() as u32).to_ne_bytes();
        let mut iov = libc::iovec {
            iov_base: pid.as_mut_ptr().cast(),
            iov_len: pid.len(),
        };
        let mut control = [0u64; 16];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE((n * std::mem::size_of::<libc::c_int>()) as u32) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN((n * std::mem::size_of::<libc::c_int>()) as u32) as _;
        std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg).cast(), n);
        let sent = libc::sendmsg(p.channel, &msg, libc::MSG_NOSIGNAL);
        for fd in &fds[..n] {
            libc::close(*fd);
        }
        if sent != pid.len() as isize {
            return check(-1, "hand the sandbox's sockets over");
        }
    }
    Ok(())
}

/// The image root, read-only, with a private `/tmp`, `/proc` and `/dev` over it.
unsafe fn mount_root(p: &Prepared) -> std::io::Result<()> {
    let none = std::ptr::null::<libc::c_char>();
    // SAFETY: prepared NUL-terminated paths.
    unsafe {
        check(
            libc::mount(
                none,
                c"/".as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ),
            "make / private",
        )?;
        bind_read_only(&p.root, &p.root, p.root_flags, "bind the image root")?;
        let tmp_flags = libc::MS_NOSUID | libc::MS_NODEV;
        mount_new(c"tmpfs", &p.tmp, tmp_flags, Some(&p.tmp_opts), "mount /tmp")?;
        let proc_flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        mount_new(c"proc", &p.proc_, proc_flags, None, "mount /proc")?;
        let dev_flags = libc::MS_NOSUID | libc::MS_NOEXEC;
        mount_new(
            c"tmpfs",
            &p.dev,
            dev_flags,
            Some(c"mode=755,size=64k"),
            "mount /dev",
        )
    }
}

/// The host's devices in the private `/dev`, and its `fd`, `stdin`, `stdout` and `stderr`
/// links.
unsafe fn populate_dev(p: &Prepared) -> std::io::Result<()> {
    // SAFETY: prepared NUL-terminated paths.
    unsafe {
        for (host, inside) in &p.devices {
            let fd = libc::open(
                inside.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                0o666,
            );
            if fd < 0 {
                return check(-1, "create a device mount point");
            }
            libc::close(fd);
            // A device the host lacks is left out rather than failing the sandbox.
            libc::mount(
                host.as_ptr(),
                inside.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            );
        }
        for (target, link) in &p.dev_links {
            libc::symlink(target.as_ptr(), link.as_ptr());
        }
    }
    Ok(())
}

/// `/opt/scar` (read-only), then the other bind mounts.
unsafe fn mount_binds(p: &Prepared) -> std::io::Result<()> {
    // SAFETY: prepared NUL-terminated paths.
    unsafe {
        if let Some((src, dst, flags)) = &p.opt {
            bind_read_only(src, dst, *flags, "mount /opt/scar")?;
        }
        for (src, dst, read_only) in &p.binds {
            match read_only {
                Some(flags) => bind_read_only(src, dst, *flags, "mount a read-only directory")?,
                None => bind(src, dst, "mount a bucket")?,
            }
        }
    }
    Ok(())
}

/// Makes the image root `/` (the old one detached) and goes to the working directory.
unsafe fn pivot_into_root(p: &Prepared) -> std::io::Result<()> {
    // SAFETY: prepared NUL-terminated paths.
    unsafe {
        check(libc::chdir(p.root.as_ptr()), "chdir to the root")?;
        check(
            libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) as libc::c_int,
            "pivot_root",
        )?;
        check(
            libc::umount2(c".".as_ptr(), libc::MNT_DETACH),
            "detach the old root",
        )?;
        check(libc::chdir(c"/".as_ptr()), "chdir /")?;
        if let Some(dir) = &p.workdir {
            check(libc::chdir(dir.as_ptr()), "chdir to the image's WorkingDir")?;
        }
    }
    Ok(())
}

/// Mounts a new file system of type `fs` (`tmpfs`, `proc`) at `target`, with `options`.
unsafe fn mount_new(
    fs: &CStr,
    target: &CStr,
    flags: libc::c_ulong,
    options: Option<&CStr>,
    what: &str,
) -> std::io::Result<()> {
    let data = options.map_or(std::ptr::null(), |o| o.as_ptr().cast());
    // SAFETY: NUL-terminated strings.
    unsafe {
        check(
            libc::mount(fs.as_ptr(), target.as_ptr(), fs.as_ptr(), flags, data),
            what,
        )
    }
}

/// Bind-mounts `src` at `dst`, with whatever is mounted below `src`.
unsafe fn bind(src: &CStr, dst: &CStr, what: &str) -> std::io::Result<()> {
    let none = std::ptr::null::<libc::c_char>();
    // SAFETY: NUL-terminated paths.
    unsafe {
        check(
            libc::mount(
                src.as_ptr(),
                dst.as_ptr(),
                none,
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ),
            what,
        )
    }
}

/// Bind-mounts `src` at `dst` read-only, keeping the `locked` flags of its mount.
unsafe fn bind_read_only(
    src: &CStr,
    dst: &CStr,
    locked: libc::c_ulong,
    what: &str,
) -> std::io::Result<()> {
    let none = std::ptr::null::<libc::c_char>();
    // SAFETY: NUL-terminated paths.
    unsafe {
        bind(src, dst, what)?;
        check(
            libc::mount(
                none,
                dst.as_ptr(),
                none,
                libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | locked,
                std::ptr::null(),
            ),
            what,
        )
    }
}

/// The middle process: waits for PID 1 of the sandbox and exits with its status. It holds
/// nothing open but stdout and stderr, so that the parent's `spawn` returns as soon as the
/// supervisor has `exec`ed.
fn middle(child: libc::pid_t) -> ! {
    // SAFETY: signal-safe calls only; _exit never returns.
    unsafe {
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        let mut status = 0;
        loop {
            let r = libc::waitpid(child, &mut status, 0);
            if r == child {
                break;
            }
            if r < 0 && *libc::__errno_location() != libc::EINTR {
                libc::_exit(125);
            }
        }
        if libc::WIFEXITED(status) {
            libc::_exit(libc::WEXITSTATUS(status));
        }
        libc::_exit(128 + libc::WTERMSIG(status));
    }
}
