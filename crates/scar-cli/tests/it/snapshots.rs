//! Snapshots (insta) of what users read: `--help` of scar and of every subcommand, and the
//! messages of usage errors, with temporary paths and request ids filtered out. A change to
//! any of them shows up in review as a snapshot diff (`cargo insta review`, or
//! `INSTA_UPDATE=always cargo test -p scar-cli --test it snapshots::` and read the diff).

use scar_test_support::scar as support;
use support::Scar;

const SUBCOMMANDS: &[&str] = &[
    "init", "run", "ls", "rm", "log", "put", "get", "invoke", "serve", "package", "stats",
];

fn settings(scar: &Scar) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(
        &regex_escape(&scar.home.path().display().to_string()),
        "[HOME]",
    );
    s.add_filter(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[ID]",
    );
    s.add_filter(r"/tmp/\.tmp[A-Za-z0-9]+", "[TMP]");
    s.set_prepend_module_to_snapshot(false);
    s
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

#[test]
fn help_of_every_command() {
    let Some(scar) = Scar::new(env!("CARGO_BIN_EXE_scar")) else {
        return;
    };
    settings(&scar).bind(|| {
        let top = scar.run(&["--help"]).ok();
        insta::assert_snapshot!("help", top.stdout);
        for cmd in SUBCOMMANDS {
            let r = scar.run(&[cmd, "--help"]).ok();
            insta::assert_snapshot!(format!("help-{cmd}"), r.stdout);
        }
    });
}

#[test]
fn usage_error_messages() {
    let Some(scar) = Scar::new(env!("CARGO_BIN_EXE_scar")) else {
        return;
    };
    let cases: &[(&str, &[&str])] = &[
        ("bad-name", &["init", "-n", "bad name", "-i", "busybox"]),
        (
            "bad-memory",
            &["init", "-n", "f", "-i", "busybox", "-m", "5"],
        ),
        (
            "bad-env",
            &["init", "-n", "f", "-i", "busybox", "-e", "NOEQUALS"],
        ),
        ("bad-bucket", &["ls", "-b", "Not_A_Bucket"]),
        ("missing-function", &["run", "-n", "nobody"]),
        ("missing-log", &["log", "-n", "nobody", "-ri", "x"]),
        (
            "missing-script",
            &["run", "-n", "f", "-s", "/nonexistent/script.sh"],
        ),
        ("missing-fdl", &["init", "-f", "/nonexistent/scar.yaml"]),
        (
            "missing-extra-payload",
            &[
                "init",
                "-n",
                "f",
                "-i",
                "busybox",
                "-ep",
                "/nonexistent/payload",
            ],
        ),
        ("unknown-provider", &["--provider", "gcp", "ls"]),
        (
            "follow-with-request",
            &["log", "-n", "f", "--follow", "-ri", "x"],
        ),
        // scar's earlier `--runtime scar` (its own-client switch), now `--runtime-client`.
        (
            "runtime-scar",
            &["init", "-n", "f", "-i", "busybox", "--runtime", "scar"],
        ),
        (
            "runtime-unknown",
            &["init", "-n", "f", "-i", "busybox", "-rt", "java21"],
        ),
        (
            "runtime-and-package",
            &[
                "init",
                "-n",
                "f",
                "-i",
                "busybox",
                "-rt",
                "image",
                "--package",
                "zip",
            ],
        ),
    ];
    settings(&scar).bind(|| {
        for (name, args) in cases {
            let r = scar.run(args);
            insta::assert_snapshot!(
                format!("error-{name}"),
                format!("$ scar {}\nexit {}\n{}", args.join(" "), r.status, r.stderr)
            );
        }
    });
}
