//! A sandbox's network is its own, as on Lambda: its `127.0.0.1` is its alone, with its
//! Runtime API at `127.0.0.1:9001`; the host's loopback services (a server on the host's
//! 127.0.0.1, `scar serve`'s Invoke API) are out of its reach, while outbound network goes
//! through slirp4netns (or is none with `--network none`). Checked on both ways in: `scar
//! run` (a fresh sandbox) and the Invoke API (a warm one).

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, TcpListener};

use super::common::{scar_with, with_busybox_image};
use super::serve_http::{http, Served};

/// A server answering `HTTP/1.0 200` to anything, on `address`; its port.
fn answering_server(address: &str) -> u16 {
    let listener = TcpListener::bind(address).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.0 200 OK\r\n\r\nhost-secret\n");
        }
    });
    port
}

/// The address this machine's outbound traffic leaves from (no packet is sent).
fn host_address() -> IpAddr {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    s.connect("192.0.2.1:9")
        .expect("this machine has a route out (needed to check outbound network)");
    s.local_addr().unwrap().ip()
}

/// A script printing, per probe, `name:STATUS` (an HTTP status), `name:refused` or
/// `name:other:...`, then what the runtime sees.
fn probes(targets: &[(&str, String, u16)]) -> String {
    let mut script = String::from(
        r#"probe() {
  # The request, then stdin held open a moment: busybox nc half-closes the connection at
  # the end of its input, and an HTTP server may close at once on that, unanswered.
  out=$( (printf 'GET /ping HTTP/1.0\r\n\r\n'; [ "$4" = hold ] && sleep 0.5) | nc -w 3 "$2" "$3" 2>&1 | head -1 | tr -d '\r')
  case "$out" in
    *refused*) echo "$1:refused" ;;
    HTTP/*) echo "$1:$(echo "$out" | cut -d' ' -f2)" ;;
    *) echo "$1:other:$out" ;;
  esac
}
echo "api:$AWS_LAMBDA_RUNTIME_API"
echo "resolv:$(cat /etc/resolv.conf 2>/dev/null | head -1)"
"#,
    );
    for (name, host, port) in targets {
        let hold = if *port == 9001 { " hold" } else { "" };
        script.push_str(&format!("probe {name} {host} {port}{hold}\n"));
    }
    script
}

/// The probe's line of `name` in `output`.
fn line<'a>(output: &'a str, name: &str) -> &'a str {
    output
        .lines()
        .find(|l| l.starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no `{name}` line in:\n{output}"))
}

#[test]
fn a_sandbox_reaches_its_own_runtime_api_and_neither_the_hosts_loopback_nor_the_invoke_api() {
    let Some(_) = scar_with(&["slirp4netns"]) else {
        return;
    };
    let Some((scar, _work, image)) = with_busybox_image() else {
        return;
    };
    let loopback_only = answering_server("127.0.0.1:0");
    let everywhere = answering_server("0.0.0.0:0");
    let host = host_address().to_string();
    scar.run(&["init", "-n", "net", "-i", &image, "-t", "30"])
        .ok();
    scar.run(&[
        "init",
        "-n",
        "offline",
        "-i",
        &image,
        "-t",
        "30",
        "--network",
        "none",
    ])
    .ok();
    let served = Served::start(&scar, &[]);
    let invoke_port: u16 = served.endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let script = probes(&[
        ("runtime", "127.0.0.1".into(), 9001),
        ("host-loopback", "127.0.0.1".into(), loopback_only),
        (
            "host-loopback-via-gateway",
            "10.0.2.2".into(),
            loopback_only,
        ),
        ("invoke-api", "127.0.0.1".into(), invoke_port),
        ("invoke-api-via-gateway", "10.0.2.2".into(), invoke_port),
        ("sandbox-loopback", "127.0.0.1".into(), everywhere),
        ("outbound", host.clone(), everywhere),
    ]);

    // The launcher's fresh sandbox, and the Invoke API's warm one (twice: the second
    // request reuses the first one's sandbox).
    let launched = scar.run(&["run", "-n", "net", &script]).ok().stdout;
    let mut through_http = Vec::new();
    for _ in 0..2 {
        let payload = serde_json::json!({ "script": script }).to_string();
        let (status, _, body) = http(
            &served.endpoint,
            "POST",
            "/2015-03-31/functions/net/invocations",
            &[],
            payload.as_bytes(),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        through_http.push(v["output"].as_str().unwrap().to_string());
    }
    for output in std::iter::once(&launched).chain(&through_http) {
        assert_eq!(line(output, "api"), "api:127.0.0.1:9001", "{output}");
        // The Runtime API answers (404 for a path it does not serve).
        assert_eq!(line(output, "runtime"), "runtime:404", "{output}");
        for closed in [
            "host-loopback",
            "host-loopback-via-gateway",
            "invoke-api",
            "invoke-api-via-gateway",
            "sandbox-loopback",
        ] {
            let l = line(output, closed);
            assert!(
                l == format!("{closed}:refused") || l.starts_with(&format!("{closed}:other:")),
                "{closed} was reached from inside the sandbox:\n{output}"
            );
        }
        assert_eq!(line(output, "outbound"), "outbound:200", "{output}");
        assert_eq!(
            line(output, "resolv"),
            "resolv:nameserver 10.0.2.3",
            "{output}"
        );
    }

    // `--network none`: the loopback and the Runtime API only.
    let offline = scar.run(&["run", "-n", "offline", &script]).ok().stdout;
    assert_eq!(line(&offline, "runtime"), "runtime:404", "{offline}");
    let out = line(&offline, "outbound");
    assert!(out.starts_with("outbound:other:"), "{offline}");
    assert!(
        out.contains("unreachable"),
        "no outbound network expected: {offline}"
    );
    let ls = scar.run(&["ls", "--json"]).ok().json();
    let offline_spec = ls
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["spec"]["name"] == "offline")
        .unwrap();
    assert_eq!(offline_spec["spec"]["network"], "none", "{ls}");
}

#[test]
fn a_bad_network_value_is_refused_with_the_choices() {
    let Some((scar, _work, image)) = with_busybox_image() else {
        return;
    };
    let r = scar.run(&["init", "-n", "f", "-i", &image, "--network", "host"]);
    assert_eq!(r.status, 2, "{r:#?}");
    assert!(
        r.stderr
            .contains("unknown network `host`: `outbound` or `none`"),
        "{r:#?}"
    );
}
