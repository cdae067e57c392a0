//! `cargo xtask bench`: scar measured against baselines run in the same process, so that
//! the figures are ratios that survive a noisy, shared machine.
//!
//! - warm `scar run` of a trivial script vs `sh` running the same script directly;
//! - `scar init` from a ~100 MB `docker save` archive vs `umoci unpack` of the same image
//!   (alone, and with the `skopeo copy` that gets the archive into a layout first);
//! - a zip package from that archive vs the SCAR way (udocker load + create + `zip -r`)
//!   and vs `umoci unpack` + `zip -r`;
//! - files per second through the local launcher vs GNU `parallel -j2`;
//! - the aws launcher's dispatch rate against moto vs a sequential loop of the same calls;
//! - warm round trips through `scar serve`'s Lambda Invoke API (p50, p99, requests per
//!   second at concurrency 1 and 2) vs `sh` running the same script directly.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::{build_supervisor, cargo, run, target_dir};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// `skopeo copy docker-archive:ARCHIVE DEST` (`DEST` such as `oci:<layout>:bench`).
fn skopeo_copy(archive: &Path, dest: String) -> Command {
    let mut cmd = Command::new("skopeo");
    cmd.arg("copy")
        .arg(format!("docker-archive:{}", archive.display()))
        .arg(dest);
    cmd
}

/// `umoci unpack` of `<layout>:bench` into `bundle`.
fn umoci_unpack(layout: &Path, bundle: &Path) -> Command {
    let mut cmd = Command::new("umoci");
    cmd.args(["unpack", "--image"])
        .arg(format!("{}:bench", layout.display()))
        .arg(bundle);
    cmd
}

/// `zip -q -r -y ZIP .` in `dir`: a tree zipped as SCAR's own tooling zips it.
fn zip_tree(dir: &Path, zip: &Path) -> Command {
    let mut cmd = Command::new("zip");
    cmd.args(["-q", "-r", "-y"])
        .arg(zip)
        .arg(".")
        .current_dir(dir);
    cmd
}

fn time(cmd: &mut Command) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let took = started.elapsed();
    if !out.status.success() {
        anyhow::bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(took)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

pub fn run_bench(args: &[String]) -> anyhow::Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    // `--only NAME[,NAME]`: some sections (run, init, zip, zip-raw, files, dispatch, http,
    // dashboard);
    // `--long` adds the launcher over 1,000, 10,000 and 100,000 files.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let want = |section: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|s| s == section))
    };
    crate::install_test_tools()?;
    let supervisor = build_supervisor(false)?;
    // One build for scar and the aws dispatch example: built apart, their features
    // differ and the AWS SDK would be compiled twice.
    run(cargo().args([
        "build",
        "--release",
        "--package",
        "scar-cli",
        "--package",
        "scar-aws",
        "--bins",
        "--example",
        "dispatch_bench",
    ]))?;
    let scar = target_dir().join("release").join("scar");
    let work = target_dir().join("bench");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let scar_in = |home: &Path| {
        let mut cmd = Command::new(&scar);
        cmd.env("SCAR_HOME", home)
            .env("SCAR_SUPERVISOR", &supervisor);
        cmd
    };

    // 1. Warm `scar run` overhead.
    let small = work.join("small.tar");
    crate::image::busybox_docker_archive(&small)?;
    if want("run") {
        let home = work.join("home-run");
        run(scar_in(&home)
            .args(["init", "-n", "bench", "-if"])
            .arg(&small))?;
        // The same function without outbound network: what slirp4netns costs a sandbox.
        run(scar_in(&home)
            .args(["init", "-n", "bench-offline", "--network", "none", "-if"])
            .arg(&small))?;
        let script = work.join("trivial.sh");
        std::fs::write(&script, "echo hi\n")?;
        let n = if quick { 15 } else { 60 };
        let scar_run = |name: &str| {
            let mut cmd = scar_in(&home);
            cmd.args(["run", "-n", name, "-s"]).arg(&script);
            cmd
        };
        // The namespaces alone, with and without a network namespace of their own.
        let bare = |net: bool| {
            let mut cmd = Command::new("unshare");
            cmd.args(["--user", "--map-root-user", "--mount", "--pid", "--fork"]);
            if net {
                cmd.arg("--net");
            }
            cmd.arg("/bin/true");
            cmd
        };
        // The namespaces and a chroot into the function's own root, running the script's
        // `sh` there: what a sandbox must do at the least (the issue's baseline).
        let root = function_root(&home, "bench-offline")?;
        let bare_chroot = || {
            let mut cmd = Command::new("unshare");
            cmd.args(["--user", "--map-root-user", "--mount", "--pid", "--fork"])
                .arg("chroot")
                .arg(&root)
                .args(["/bin/sh", "-c", "echo hi"]);
            cmd
        };
        // `scar run --warm`: handed to a running `scar serve`, in its warm sandbox.
        let served = Served::start(&scar_in, &home)?;
        let warm_run = || {
            let mut cmd = scar_run("bench");
            cmd.arg("--warm");
            cmd
        };
        // Warm the page cache and the root once before measuring.
        time(&mut scar_run("bench"))?;
        time(&mut scar_run("bench-offline"))?;
        time(&mut warm_run())?;
        let (mut direct, mut scar_runs, mut offline_runs) = (Vec::new(), Vec::new(), Vec::new());
        let (mut bare_runs, mut bare_net_runs, mut warm_runs) =
            (Vec::new(), Vec::new(), Vec::new());
        let (mut chroot_runs, mut start_runs) = (Vec::new(), Vec::new());
        // scar's process start alone (arguments parsed, help printed, nothing else): the
        // floor under every `scar` command, `run --warm` included.
        let scar_start = || {
            let mut cmd = scar_in(&home);
            cmd.args(["run", "--help"]);
            cmd
        };
        for _ in 0..n {
            // Interleaved, so that all see the same machine load.
            direct.push(time(Command::new("/bin/sh").arg(&script))?);
            scar_runs.push(time(&mut scar_run("bench"))?);
            offline_runs.push(time(&mut scar_run("bench-offline"))?);
            warm_runs.push(time(&mut warm_run())?);
            bare_runs.push(time(&mut bare(false))?);
            bare_net_runs.push(time(&mut bare(true))?);
            chroot_runs.push(time(&mut bare_chroot())?);
            start_runs.push(time(&mut scar_start())?);
        }
        drop(served);
        let (d, s, o) = (median(direct), median(scar_runs), median(offline_runs));
        let (b, bn, w) = (median(bare_runs), median(bare_net_runs), median(warm_runs));
        let (c, p) = (median(chroot_runs), median(start_runs));
        let x = |a: Duration| a.as_secs_f64() / d.as_secs_f64();
        println!("fresh `scar run` of a trivial script, median of {n}:");
        println!("  sh directly:                      {}", ms(d));
        println!(
            "  scar run (outbound network):      {} ({:.1}x direct)",
            ms(s),
            x(s)
        );
        println!(
            "  scar run (--network none):        {} ({:.1}x direct; slirp4netns costs {})",
            ms(o),
            x(o),
            ms(s.saturating_sub(o))
        );
        println!(
            "  scar run --warm (in scar serve):  {} ({:.1}x direct; {} over it)",
            ms(w),
            x(w),
            ms(w.saturating_sub(d))
        );
        println!(
            "  scar run --help (process start):  {} ({:.1}x direct; --warm is {} over it)",
            ms(p),
            x(p),
            ms(w.saturating_sub(p))
        );
        println!(
            "  unshare user+mount+pid:           {} ({:.1}x direct)",
            ms(b),
            x(b)
        );
        println!(
            "  unshare user+mount+pid+net:       {} ({:.1}x direct; a network namespace costs {})",
            ms(bn),
            x(bn),
            ms(bn.saturating_sub(b))
        );
        println!(
            "  unshare user+mount+pid + chroot:  {} ({:.1}x direct; scar run --network none is {:.1}x it)",
            ms(c),
            x(c),
            o.as_secs_f64() / c.as_secs_f64()
        );
    }

    // 2. Creating a function from a ~100 MB image archive.
    let mb = if quick { 30 } else { 100 };
    let big = work.join("big.tar");
    crate::image::large_docker_archive(&big, mb)?;
    let size = std::fs::metadata(&big)?.len() as f64 / 1e6;
    let have_umoci = Command::new("umoci").arg("--version").output().is_ok()
        && Command::new("skopeo").arg("--version").output().is_ok();
    let rounds = if quick { 1 } else { 3 };
    if want("init") {
        let (mut inits, mut unpacks, mut copies) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..rounds {
            let home = work.join(format!("home-init-{i}"));
            inits.push(time(
                scar_in(&home).args(["init", "-n", "big", "-if"]).arg(&big),
            )?);
            let _ = std::fs::remove_dir_all(&home);
            if have_umoci {
                let layout = work.join(format!("layout-{i}"));
                let bundle = work.join(format!("bundle-{i}"));
                copies.push(time(&mut skopeo_copy(
                    &big,
                    format!("oci:{}:bench", layout.display()),
                ))?);
                unpacks.push(time(&mut umoci_unpack(&layout, &bundle))?);
                let _ = std::fs::remove_dir_all(&layout);
                let _ = std::fs::remove_dir_all(&bundle);
            }
        }
        println!("function from a {size:.0} MB docker-save archive, median of {rounds}:");
        let init = median(inits);
        println!("  scar init:                 {}", ms(init));
        if have_umoci {
            let (u, c) = (median(unpacks), median(copies));
            println!(
                "  umoci unpack (layout):     {}  -> scar is {:.2}x its time",
                ms(u),
                init.as_secs_f64() / u.as_secs_f64()
            );
            println!(
                "  skopeo copy + umoci unpack: {} -> scar is {:.2}x its time",
                ms(u + c),
                init.as_secs_f64() / (u + c).as_secs_f64()
            );
        } else {
            println!(
                "  (umoci/skopeo not installed: no baseline; `cargo xtask install-test-tools`)"
            );
        }
    }
    if want("zip") {
        zip_packages(&scar_in, &big, &work, rounds)?;
    }
    if want("zip-raw") {
        zip_from_docker_save(&scar_in, &work, rounds)?;
    }
    if want("files") {
        files_per_second(&scar_in, &small, &work, if quick { 200 } else { 1000 })?;
    }
    // `--long`: the launcher's cost as the work grows (not run by CI).
    if args.iter().any(|a| a == "--long") {
        launcher_growth(&scar_in, &small, &work, &[1_000, 10_000, 100_000])?;
    }
    if want("dispatch") {
        dispatch_rate(if quick { 200 } else { 1000 })?;
    }
    if want("http") {
        http_round_trips(&scar_in, &small, &work, if quick { 200 } else { 2000 })?;
    }
    if want("dashboard") {
        dashboard_cost(&scar_in, &small, &work, if quick { 200 } else { 1000 })?;
    }
    Ok(())
}

/// A `scar serve` on a free loopback port, stopped (SIGINT) on drop.
struct Served {
    child: std::process::Child,
    address: String,
}

impl Served {
    /// `scar serve` on `home`, once it listens.
    fn start(scar_in: &dyn Fn(&Path) -> Command, home: &Path) -> anyhow::Result<Served> {
        use std::io::BufRead as _;
        let mut child = scar_in(home)
            .args(["serve", "--listen", "127.0.0.1:0", "--json"])
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().context("serve's stdout")?;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let first = lines.next().context("serve printed nothing")??;
        let served = Served {
            child,
            address: serde_json::from_str::<serde_json::Value>(&first)?["listening"]
                .as_str()
                .context("no listening address")?
                .trim_start_matches("http://")
                .to_string(),
        };
        std::thread::spawn(move || lines.for_each(drop));
        Ok(served)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// One keep-alive HTTP/1.1 connection that POSTs and reads `Content-Length` answers.
struct Connection {
    stream: std::io::BufReader<std::net::TcpStream>,
}

impl Connection {
    fn open(address: &str) -> anyhow::Result<Connection> {
        let stream = std::net::TcpStream::connect(address)?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream: std::io::BufReader::new(stream),
        })
    }

    /// POSTs `body` to `path`; returns the status and the body.
    fn post(&mut self, path: &str, body: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
        use std::io::{BufRead as _, Read as _, Write as _};
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let stream = self.stream.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut line = String::new();
        self.stream.read_line(&mut line)?;
        let status = line.split(' ').nth(1).unwrap_or("0").parse()?;
        let mut length = 0;
        loop {
            line.clear();
            self.stream.read_line(&mut line)?;
            if line.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse()?;
                }
            }
        }
        let mut answer = vec![0; length];
        self.stream.read_exact(&mut answer)?;
        Ok((status, answer))
    }
}

/// Latencies of `n` round trips at `concurrency` (one keep-alive connection each), and
/// the wall time they took.
fn round_trips(
    address: &str,
    path: &str,
    body: &[u8],
    n: usize,
    concurrency: usize,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let started = Instant::now();
    let each = n / concurrency;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (address, path, body) = (address.to_string(), path.to_string(), body.to_vec());
            std::thread::spawn(move || -> anyhow::Result<Vec<Duration>> {
                let mut conn = Connection::open(&address)?;
                let mut times = Vec::with_capacity(each);
                for _ in 0..each {
                    let t = Instant::now();
                    let (status, answer) = conn.post(&path, &body)?;
                    anyhow::ensure!(
                        status == 200,
                        "the Invoke API answered {status}: {}",
                        String::from_utf8_lossy(&answer)
                    );
                    times.push(t.elapsed());
                }
                Ok(times)
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    for w in workers {
        all.extend(
            w.join()
                .map_err(|_| anyhow::anyhow!("a worker panicked"))??,
        );
    }
    Ok((all, started.elapsed()))
}

/// The same script run directly with `sh -c`, `n` times at `concurrency`.
fn direct_runs(
    script: &str,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let started = Instant::now();
    let each = n / concurrency;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let script = script.to_string();
            std::thread::spawn(move || -> anyhow::Result<Vec<Duration>> {
                (0..each)
                    .map(|_| time(Command::new("/bin/sh").args(["-c", &script])))
                    .collect()
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    for w in workers {
        all.extend(
            w.join()
                .map_err(|_| anyhow::anyhow!("a worker panicked"))??,
        );
    }
    Ok((all, started.elapsed()))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Warm round trips through `scar serve`'s Lambda Invoke API of a function that echoes
/// what it is sent, against `sh -c` of the same script.
fn http_round_trips(
    scar_in: &dyn Fn(&Path) -> Command,
    image: &Path,
    work: &Path,
    n: usize,
) -> anyhow::Result<()> {
    let home = work.join("home-http");
    run(scar_in(&home)
        .args(["init", "-n", "echo", "-if"])
        .arg(image))?;
    let served = Served::start(scar_in, &home)?;
    let script = "echo \"$EVENT\"";
    let body = serde_json::to_vec(&serde_json::json!({"script": script}))?;
    let path = "/2015-03-31/functions/echo/invocations";
    // Warm: a sandbox per connection, then measure.
    round_trips(&served.address, path, &body, 20, 2)?;
    println!("warm round trips through the Lambda Invoke API of `scar serve` (echo), {n} each:");
    for concurrency in [1, 2] {
        let (mut trips, wall) = round_trips(&served.address, path, &body, n, concurrency)?;
        let (mut direct, direct_wall) = direct_runs(script, n, concurrency)?;
        trips.sort();
        direct.sort();
        let (p50, p99) = (percentile(&trips, 0.5), percentile(&trips, 0.99));
        let (d50, d99) = (percentile(&direct, 0.5), percentile(&direct, 0.99));
        println!("  concurrency {concurrency}:");
        println!(
            "    Invoke API:  p50 {}  p99 {}  {:.0} requests/s",
            ms(p50),
            ms(p99),
            trips.len() as f64 / wall.as_secs_f64()
        );
        println!(
            "    sh -c:       p50 {}  p99 {}  {:.0} runs/s",
            ms(d50),
            ms(d99),
            direct.len() as f64 / direct_wall.as_secs_f64()
        );
        println!(
            "    overhead at p50: {} ({:.1}x sh)",
            ms(p50.saturating_sub(d50)),
            p50.as_secs_f64() / d50.as_secs_f64()
        );
    }
    drop(served);
    Ok(())
}

/// moto server on a free loopback port, stopped on drop.
struct Moto {
    child: std::process::Child,
    port: u16,
}

impl Moto {
    fn start() -> anyhow::Result<Moto> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("cannot start moto_server (pip install 'moto[server]')")?;
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "moto_server did not start in 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(moto)
    }

    /// The server's CPU time so far (user and system, from `/proc`), when readable.
    fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // Fields after the command name (in parentheses, which may hold spaces): utime and
        // stime are the 14th and 15th fields of the line, 12th and 13th after it.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // USER_HZ is 100 on every Linux this runs on (`getconf CLK_TCK`).
        Some(Duration::from_millis(ticks * 10))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The aws launcher's dispatch rate: `n` asynchronous invocations through the launcher's
/// dispatcher, against a sequential loop over the same calls (the `dispatch_bench` example
/// of scar-aws, which measures both in one process), with and without a 20 ms round trip;
/// against moto (a fresh server each run, its CPU time per call measured: what bounds the
/// rate there) and against the example's stand-in endpoint, which costs nothing per call
/// and so shows the dispatcher's own limit.
fn dispatch_rate(n: usize) -> anyhow::Result<()> {
    let concurrency = 32;
    let bench = |endpoint: &[&str], latency_ms: u64| -> anyhow::Result<serde_json::Value> {
        let out = Command::new(target_dir().join("release/examples/dispatch_bench"))
            .args(endpoint)
            .args(["--n", &n.to_string()])
            .args(["--concurrency", &concurrency.to_string()])
            .args(["--latency-ms", &latency_ms.to_string()])
            .output()
            .context("cannot run the dispatch_bench example")?;
        anyhow::ensure!(
            out.status.success(),
            "dispatch_bench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).context("dispatch_bench printed no JSON line")
    };
    let line = |latency_ms: u64, figures: &serde_json::Value| {
        let rate = |k: &str| figures[k].as_f64().unwrap_or(0.0);
        format!(
            "  +{latency_ms:>2} ms round trip: sequential loop {:.0}/s, launcher {:.0}/s -> {:.1}x the loop ({} failed)",
            rate("sequential_per_s"),
            rate("concurrent_per_s"),
            rate("speedup"),
            figures["failed"]
        )
    };
    println!("aws launcher: {n} asynchronous invocations, concurrency {concurrency}:");
    // As moto answers on this machine, and with the 20 ms round trip of a near region.
    if crate::have("moto_server") {
        println!("  against moto:");
        for latency_ms in [0, 20] {
            // A fresh server each run: the example sets moto up (`--moto`) and creates
            // its function, which a second run on the same server would find made.
            let moto = Moto::start()?;
            let cpu = moto.cpu_time();
            let figures = bench(
                &[
                    "--endpoint",
                    &format!("http://127.0.0.1:{}", moto.port),
                    "--moto",
                ],
                latency_ms,
            )?;
            let per_call = match (cpu, moto.cpu_time()) {
                (Some(before), Some(after)) => format!(
                    "; moto's CPU {:.2} ms per call",
                    (after - before).as_secs_f64() * 1000.0 / (2 * n) as f64
                ),
                _ => String::new(),
            };
            println!("  {}{per_call}", line(latency_ms, &figures));
        }
    } else {
        println!("  against moto: (moto_server not installed: `cargo xtask install-test-tools`)");
    }
    println!("  against a stand-in endpoint that answers at once (the dispatcher's own limit):");
    for latency_ms in [0, 20] {
        println!("  {}", line(latency_ms, &bench(&["--stub"], latency_ms)?));
    }
    Ok(())
}

/// A zip package from the ~100 MB archive: scar (`init` + `package --package zip`) against
/// the SCAR way (`udocker load` + `udocker create` + `zip -r` of the udocker tree) and
/// against `umoci unpack` + `zip -r`.
fn zip_packages(
    scar_in: &dyn Fn(&Path) -> Command,
    archive: &Path,
    work: &Path,
    rounds: usize,
) -> anyhow::Result<()> {
    let have = crate::have;
    let (mut scar_t, mut udocker_t, mut umoci_t) = (Vec::new(), Vec::new(), Vec::new());
    // udocker loads OCI archives (not this docker-save flavour): the same image, converted
    // once, untimed.
    let oci_archive = work.join("big-oci.tar");
    let udocker_ok = have("udocker")
        && have("zip")
        && have("skopeo")
        && time(&mut skopeo_copy(
            archive,
            format!("oci-archive:{}:latest", oci_archive.display()),
        ))
        .is_ok();
    for i in 0..rounds {
        let home = work.join(format!("home-zip-{i}"));
        let out = work.join(format!("scar-{i}.zip"));
        let started = Instant::now();
        run(scar_in(&home).args(["init", "-n", "z", "-if"]).arg(archive))?;
        run(scar_in(&home)
            .args(["package", "-n", "z", "--package", "zip", "-o"])
            .arg(&out))?;
        scar_t.push(started.elapsed());
        let _ = std::fs::remove_dir_all(&home);
        if udocker_ok {
            let dir = work.join(format!("udocker-{i}"));
            let zip = work.join(format!("udocker-{i}.zip"));
            let udocker = |args: &[&str]| {
                let mut cmd = Command::new("udocker");
                cmd.arg("--allow-root")
                    .args(args)
                    .env("UDOCKER_DIR", &dir)
                    .env("UDOCKER_TARBALL", "");
                cmd
            };
            let started = Instant::now();
            time(&mut udocker(&[
                "load",
                "-i",
                &oci_archive.to_string_lossy(),
                "scar-bench",
            ]))?;
            time(&mut udocker(&["create", "--name=z", "scar-bench:latest"]))?;
            time(&mut zip_tree(&dir, &zip))?;
            udocker_t.push(started.elapsed());
            let _ = std::fs::remove_dir_all(&dir);
        }
        if have("umoci") && have("skopeo") && have("zip") {
            let layout = work.join(format!("zlayout-{i}"));
            let bundle = work.join(format!("zbundle-{i}"));
            let zip = work.join(format!("umoci-{i}.zip"));
            let started = Instant::now();
            time(&mut skopeo_copy(
                archive,
                format!("oci:{}:bench", layout.display()),
            ))?;
            time(&mut umoci_unpack(&layout, &bundle))?;
            time(&mut zip_tree(&bundle, &zip))?;
            umoci_t.push(started.elapsed());
            let _ = std::fs::remove_dir_all(&layout);
            let _ = std::fs::remove_dir_all(&bundle);
        }
    }
    let s = median(scar_t);
    println!("zip package from the same archive, median of {rounds}:");
    println!("  scar init + scar package --package zip: {}", ms(s));
    if !udocker_t.is_empty() {
        let u = median(udocker_t);
        println!(
            "  udocker load + create + zip -r (SCAR):  {}  -> scar is {:.1}x faster",
            ms(u),
            u.as_secs_f64() / s.as_secs_f64()
        );
    } else {
        println!("  (udocker or zip not installed: no SCAR baseline)");
    }
    if !umoci_t.is_empty() {
        let u = median(umoci_t);
        println!(
            "  skopeo copy + umoci unpack + zip -r:    {}  -> scar is {:.1}x faster",
            ms(u),
            u.as_secs_f64() / s.as_secs_f64()
        );
    }
    Ok(())
}

/// A zip package from a `docker save` archive over Lambda's 250 MB (its layers are
/// uncompressed: scar gzips them into the package), against `gzip -1` of the same layer
/// tars, one process per layer, as many at once as the machine has cores.
fn zip_from_docker_save(
    scar_in: &dyn Fn(&Path) -> Command,
    work: &Path,
    rounds: usize,
) -> anyhow::Result<()> {
    let archive = work.join("bins.tar");
    let layers = crate::image::binaries_docker_archive(&archive, 280, 4)?;
    let raw: u64 = layers
        .iter()
        .map(|l| std::fs::metadata(l).map(|m| m.len()).unwrap_or(0))
        .sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (mut scar_t, mut gzip_t) = (Vec::new(), Vec::new());
    let (mut zip_size, mut gz_size) = (0, 0);
    for i in 0..rounds {
        // A new home each round: nothing compressed before.
        let home = work.join(format!("home-bins-{i}"));
        run(scar_in(&home)
            .args(["init", "-n", "bins", "-if"])
            .arg(&archive))?;
        let out = work.join(format!("bins-{i}.zip"));
        scar_t.push(time(
            scar_in(&home)
                .args(["package", "-n", "bins", "--package", "zip", "-o"])
                .arg(&out),
        )?);
        zip_size = std::fs::metadata(&out)?.len();
        let _ = std::fs::remove_dir_all(&home);
        let _ = std::fs::remove_file(&out);

        let started = Instant::now();
        let mut pending: Vec<&std::path::PathBuf> = layers.iter().collect();
        let mut running: Vec<std::process::Child> = Vec::new();
        while !pending.is_empty() || !running.is_empty() {
            while running.len() < cores {
                let Some(layer) = pending.pop() else { break };
                let gz = std::fs::File::create(layer.with_extension("tar.gz"))?;
                running.push(
                    Command::new("gzip")
                        .args(["-1", "-c"])
                        .arg(layer)
                        .stdout(gz)
                        .spawn()?,
                );
            }
            let child = running.remove(0);
            let status = child.wait_with_output()?.status;
            anyhow::ensure!(status.success(), "gzip failed: {status}");
        }
        gzip_t.push(started.elapsed());
        gz_size = layers
            .iter()
            .map(|l| std::fs::metadata(l.with_extension("tar.gz")).map_or(0, |m| m.len()))
            .sum();
    }
    let (s, g) = (median(scar_t), median(gzip_t));
    println!(
        "zip package from a docker-save archive of {:.0} MB (uncompressed layers), median of {rounds}:",
        raw as f64 / 1e6
    );
    println!(
        "  scar package --package zip:        {}  ({:.0} MB zip)",
        ms(s),
        zip_size as f64 / 1e6
    );
    println!(
        "  gzip -1 of the layers, {cores} at once:  {}  ({:.0} MB) -> scar takes {:.2}x its time",
        ms(g),
        gz_size as f64 / 1e6,
        s.as_secs_f64() / g.as_secs_f64()
    );
    Ok(())
}

/// Files per second through a trivial script at concurrency 2: the launcher over files in
/// a bucket's `input/` against GNU parallel (`parallel -j2`) running the script directly on
/// the same files.
/// Runs `cmd` (its output discarded) and returns its wall time and its own peak resident
/// memory, MB.
fn time_and_peak(cmd: &mut Command) -> anyhow::Result<(Duration, f64)> {
    let started = Instant::now();
    let child = cmd
        .stdout(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let took = started.elapsed();
    anyhow::ensure!(r > 0, "cannot wait for {cmd:?}");
    anyhow::ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed"
    );
    Ok((took, usage.ru_maxrss as f64 / 1024.0))
}

/// The script the launcher benches run: a checksum of its input file, written as an
/// output. Written under `work`; returns its path.
fn checksum_script(work: &Path) -> anyhow::Result<std::path::PathBuf> {
    let script = work.join("checksum.sh");
    std::fs::write(
        &script,
        "sha256sum \"$INPUT_FILE_PATH\" > \"$TMP_OUTPUT_DIR/$(basename \"$INPUT_FILE_PATH\").sum\"\n",
    )?;
    Ok(script)
}

/// Function `name` in `home`, bound to `bucket`, running the script the launcher benches
/// share ([`checksum_script`]); returns the bucket's input folder.
fn checksum_function(
    scar_in: &dyn Fn(&Path) -> Command,
    image: &Path,
    work: &Path,
    home: &Path,
    name: &str,
    bucket: &str,
) -> anyhow::Result<std::path::PathBuf> {
    let script = checksum_script(work)?;
    run(scar_in(home)
        .args(["init", "-n", name, "-es", bucket, "-if"])
        .arg(image)
        .arg("-s")
        .arg(&script))?;
    Ok(home.join("buckets").join(bucket).join("input"))
}

/// The launcher over `sizes` files each (a fresh function and bucket each time): time per
/// file and the launcher's peak memory, which should stay flat as the work grows.
fn launcher_growth(
    scar_in: &dyn Fn(&Path) -> Command,
    image: &Path,
    work: &Path,
    sizes: &[usize],
) -> anyhow::Result<()> {
    println!("the launcher as the work grows (--concurrency 2, the checksum script):");
    let mut first: Option<f64> = None;
    for &n in sizes {
        let home = work.join(format!("home-growth-{n}"));
        let input = checksum_function(scar_in, image, work, &home, "files", "growth")?;
        for i in 0..n {
            std::fs::write(
                input.join(format!("file-{i:06}.txt")),
                format!("file {i}\n"),
            )?;
        }
        let (took, peak) = time_and_peak(scar_in(&home).args([
            "run",
            "-n",
            "files",
            "-es",
            "growth",
            "--concurrency",
            "2",
            "--json",
        ]))?;
        let outputs = std::fs::read_dir(home.join("buckets/growth/output"))?.count();
        anyhow::ensure!(
            outputs == n,
            "the launcher made {outputs} outputs for {n} files"
        );
        let per_file = took.as_secs_f64() * 1000.0 / n as f64;
        let base = *first.get_or_insert(per_file);
        println!(
            "  {n:>7} files: {:.2} ms per file ({:.2}x the first size), peak memory {peak:.0} MB",
            per_file,
            per_file / base
        );
        let _ = std::fs::remove_dir_all(&home);
    }
    Ok(())
}

fn files_per_second(
    scar_in: &dyn Fn(&Path) -> Command,
    image: &Path,
    work: &Path,
    n: usize,
) -> anyhow::Result<()> {
    let home = work.join("home-files");
    let input = checksum_function(scar_in, image, work, &home, "files", "bench-files")?;
    let direct_in = work.join("direct-in");
    let direct_out = work.join("direct-out");
    std::fs::create_dir_all(&direct_in)?;
    std::fs::create_dir_all(&direct_out)?;
    for i in 0..n {
        let content = format!("small file number {i}\n");
        std::fs::write(input.join(format!("file-{i:05}.txt")), &content)?;
        std::fs::write(direct_in.join(format!("file-{i:05}.txt")), &content)?;
    }
    let launcher = time(scar_in(&home).args([
        "run",
        "-n",
        "files",
        "-es",
        "bench-files",
        "--concurrency",
        "2",
        "--json",
    ]))?;
    let outputs = std::fs::read_dir(home.join("buckets/bench-files/output"))?.count();
    anyhow::ensure!(
        outputs == n,
        "the launcher made {outputs} outputs for {n} files"
    );
    let have_parallel = Command::new("parallel").arg("--version").output().is_ok();
    println!("{n} small files through a trivial script at concurrency 2:");
    println!(
        "  scar launcher:   {:.0} files/s",
        n as f64 / launcher.as_secs_f64()
    );
    // The same work unsandboxed: one `sh` per file, two at a time (`xargs -P2`).
    let direct_script = work.join("checksum-direct.sh");
    std::fs::write(
        &direct_script,
        format!(
            "sha256sum \"$1\" > \"{}/$(basename \"$1\").sum\"\n",
            direct_out.display()
        ),
    )?;
    let mut xargs = Command::new("xargs");
    xargs
        .args(["-P2", "-n1", "sh"])
        .arg(&direct_script)
        .stdin(std::process::Stdio::piped());
    let started = Instant::now();
    let mut child = xargs.spawn()?;
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("piped");
        for i in 0..n {
            writeln!(
                stdin,
                "{}",
                direct_in.join(format!("file-{i:05}.txt")).display()
            )?;
        }
    }
    anyhow::ensure!(child.wait()?.success(), "xargs failed");
    let xargs_time = started.elapsed();
    println!(
        "  xargs -P2 sh:    {:.0} files/s -> scar is {:.2}x xargs' throughput",
        n as f64 / xargs_time.as_secs_f64(),
        xargs_time.as_secs_f64() / launcher.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&direct_out);
    std::fs::create_dir_all(&direct_out)?;
    if have_parallel {
        let script = checksum_script(work)?;
        let mut cmd = Command::new("parallel");
        cmd.args(["-j2", "--will-cite"])
            .arg(format!(
                "INPUT_FILE_PATH={{}} TMP_OUTPUT_DIR={} sh {}",
                direct_out.display(),
                script.display()
            ))
            .arg(":::");
        for i in 0..n {
            cmd.arg(direct_in.join(format!("file-{i:05}.txt")));
        }
        let parallel = time(&mut cmd)?;
        let (a, b) = (
            n as f64 / launcher.as_secs_f64(),
            n as f64 / parallel.as_secs_f64(),
        );
        println!("  parallel -j2:    {b:.0} files/s");
        println!(
            "  scar / parallel: {:.0}% of parallel's throughput",
            100.0 * a / b
        );
    } else {
        println!("  (GNU parallel not installed: no baseline; apt-get install parallel)");
    }
    Ok(())
}

/// What an open dashboard costs the files it watches: `n` small files written into a
/// watched input folder of a running `scar serve`, timed until all are processed, with and
/// without a client on the dashboard's live stream (`/api/events`), interleaved.
fn dashboard_cost(
    scar_in: &dyn Fn(&Path) -> Command,
    image: &Path,
    work: &Path,
    n: usize,
) -> anyhow::Result<()> {
    use std::io::{Read as _, Write as _};
    let home = work.join("home-dashboard");
    let input = checksum_function(scar_in, image, work, &home, "dash", "bench-dash")?;
    let record = home.join("functions/dash/processed.jsonl");
    let processed =
        || std::fs::read(&record).map_or(0, |b| b.iter().filter(|c| **c == b'\n').count());
    let rounds = 3;
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for watched in [false, true] {
            let served = Served::start(scar_in, &home)?;
            let stream = if watched {
                let mut conn = std::net::TcpStream::connect(&served.address)?;
                write!(
                    conn,
                    "GET /api/events HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
                    served.address
                )?;
                let reader = conn.try_clone()?;
                let handle = std::thread::spawn(move || {
                    let mut reader = reader;
                    let mut buf = [0u8; 16 * 1024];
                    let mut total = 0usize;
                    while let Ok(k) = reader.read(&mut buf) {
                        if k == 0 {
                            break;
                        }
                        total += k;
                    }
                    total
                });
                Some((conn, handle))
            } else {
                None
            };
            let before = processed();
            let started = Instant::now();
            for i in 0..n {
                let name = format!("r{round}-{}-{i:05}.txt", u8::from(watched));
                std::fs::write(input.join(name), format!("small file {i}\n"))?;
            }
            while processed() < before + n {
                anyhow::ensure!(
                    started.elapsed() < Duration::from_secs(600),
                    "serve processed {} of {n} files in 10 minutes",
                    processed() - before
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            let took = started.elapsed();
            drop(served);
            if let Some((conn, handle)) = stream {
                let _ = conn.shutdown(std::net::Shutdown::Both);
                let bytes = handle.join().unwrap_or(0);
                anyhow::ensure!(bytes > 0, "the dashboard's live stream sent nothing");
                with.push(took);
            } else {
                without.push(took);
            }
        }
    }
    let (a, b) = (median(without), median(with));
    println!("{n} small files through `scar serve`, median of {rounds}:");
    println!(
        "  without the dashboard open:       {:.0} files/s",
        n as f64 / a.as_secs_f64()
    );
    println!(
        "  with its live stream open:        {:.0} files/s -> {:+.1}% time",
        n as f64 / b.as_secs_f64(),
        (b.as_secs_f64() / a.as_secs_f64() - 1.0) * 100.0
    );
    Ok(())
}

/// The root directory a local function runs in (its `function.json`'s `root`).
fn function_root(home: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let file = home.join("functions").join(name).join("function.json");
    let text = std::fs::read_to_string(&file)?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    json["root"]
        .as_str()
        .map(PathBuf::from)
        .with_context(|| format!("no root in {}", file.display()))
}
