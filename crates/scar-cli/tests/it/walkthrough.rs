//! SCAR's documentation, followed as a SCAR user would: every `scar` command line printed in
//! SCAR's `docs/source/basic_usage.rst`, `advanced_usage.rst`, `image_env_usage.rst` and
//! `api_gateway.rst` (its cowsay GET and its ImageMagick POST) (grycap/scar; Apache License
//! 2.0, Copyright GRyCAP - I3M - UPV), run unchanged on the local provider, in the docs'
//! order, with the files the docs write (written here from the docs' text) and SCAR's
//! `homer.png`. SCAR's images come from a `docker-registry` on loopback under their Docker
//! Hub names, through the registry mirror that `scar.cfg` sets for `docker.io`:
//! `grycap/cowsay` and `grycap/minicow` are stand-ins built by scar-test-support,
//! `grycap/imagemagick` a Debian root with the real ImageMagick (debootstrap, built once and
//! cached under the target directory); `cowsay.tar.gz` and `minicow.tar.gz` are what
//! `docker save` writes.
//!
//! Each line is split as a shell splits it (`'...'` kept whole); `log-stream-name` and
//! `request-id` stand for the names an earlier output printed, as the docs say. Steps that
//! are not the docs' lines (a `scar rm` where the docs create a function of the same name
//! again, a check of what a function prints) are marked `extra:` in what the test prints.

use std::collections::BTreeSet;

use scar_test_support::images::{
    cowsay_image, imagemagick_image, minicow_image, TestRegistry, COWSAY, MINICOW,
};
use scar_test_support::scar::{Run, Scar};

use crate::common::scar_with;

/// Every `scar` line of the four pages, as printed, in order (`scar  init` with its two
/// spaces, as image_env_usage.rst has it).
const DOC_LINES: &[&str] = &[
    // basic_usage.rst: a configuration file.
    "scar init -f basic-cow.yaml",
    "scar run -f basic-cow.yaml",
    "scar log -f basic-cow.yaml",
    "scar rm -f basic-cow.yaml",
    // basic_usage.rst: the command line.
    "scar init -n scar-cowsay -i grycap/cowsay",
    "scar --help",
    "scar run -n scar-cowsay",
    "scar log -n scar-cowsay",
    "scar log -n scar-cowsay -ls 'log-stream-name'",
    "scar log -n scar-cowsay -ri request-id",
    "scar log -n scar-cowsay -ls 'log-stream-name' -ri request-id",
    "scar rm -n scar-cowsay",
    // advanced_usage.rst
    "scar init -f cow.yaml",
    "scar init -s cow.sh -n scar-cowsay -i grycap/cowsay",
    "scar run -f cow.yaml",
    "scar init -f cow.yaml",
    "scar run -n scar-cowsay",
    "scar run -f cow.yaml",
    "scar run -n scar-cowsay -s runcow.sh",
    "scar run -f cow.yaml -s runcow.sh",
    "scar init -f cow-env.yaml",
    "scar init -n scar-cowsay -i grycap/cowsay -e TEST1=45 -e TEST2=69 -s cow.sh",
    "scar run -f cow.yaml df -h",
    "scar run -f cow.yaml -j",
    "scar init -f cow.yaml",
    "scar init -db scar-cowsay -n scar-cowsay -if cowsay.tar.gz",
    "scar init -f minicow.yaml",
    // image_env_usage.rst
    "scar  init -f function_def.yaml -rt image",
    // api_gateway.rst (locally, with `scar serve` running: an extra step)
    "scar init -f api-cow.yaml",
    "scar ls",
    "scar invoke -f api-cow.yaml",
    "scar invoke -f api-cow.yaml -a",
    "scar init -f image-parser.yaml",
    "scar invoke -f image-parser.yaml -db homer.png",
    "scar init -f image-parser.yaml",
    "scar invoke -f image-parser.yaml -db homer.png -o grey_homer.png",
];

/// The docs' scripts and files, as they print them (their `cat >> FILE << EOF` bodies).
const BASIC_COW_YAML: &str = "functions:
  aws:
  - lambda:
      name: scar-cowsay
      container:
        image: grycap/cowsay
";
const COW_SH_INIT: &str = "#!/bin/bash
/usr/games/cowsay \"Executing init script !!\"
";
const COW_YAML_INIT_SCRIPT: &str = "functions:
  aws:
  - lambda:
      name: scar-cowsay
      init_script: cow.sh
      container:
        image: grycap/cowsay
";
const RUNCOW_SH: &str = "#!/bin/bash
/usr/games/cowsay \"Executing run script !!\"
";
const COW_YAML_RUN_SCRIPT: &str = "functions:
  aws:
  - lambda:
      name: scar-cowsay
      run_script: runcow.sh
      container:
        image: grycap/cowsay
";
const COW_SH_ENV: &str = "#!/bin/bash
env | /usr/games/cowsay
";
const COW_ENV_YAML: &str = "functions:
  aws:
  - lambda:
      name: scar-cowsay
      run_script: runcow.sh
      container:
        image: grycap/cowsay
        environment:
          Variables:
            TESTKEY1: val1
            TESTKEY2: val2
";
const COW_YAML_IMAGE_FILE: &str = "functions:
  aws:
  - lambda:
      name: scar-cowsay
      container:
        image_file: cowsay.tar.gz
      deployment:
        bucket: scar-test
";
const MINICOW_YAML: &str = "functions:
  aws:
  - lambda:
      name: scar-cowsay
      container:
        image_file: minicow.tar.gz
";
/// image_env_usage.rst's function definition (its first), and a `script.sh` for it (the
/// docs name one and do not print it: this one is ours).
const FUNCTION_DEF_YAML: &str = "functions:
  aws:
  - lambda:
      runtime: image
      name: scar-function
      memory: 2048
      init_script: script.sh
      container:
        image: image/name
";
/// api_gateway.rst's first function definition.
const API_COW_YAML: &str = "functions:
  aws:
  - lambda:
      name: scar-api-cow
      container:
        image: grycap/cowsay
    api_gateway:
      name: api-cow
";
/// api_gateway.rst's "POST Request": the script and the definition as printed, first with an
/// output folder, then writing the image to the function's output. Typed into a shell, the
/// unquoted `EOF` would expand `` `basename $INPUT_FILE_PATH` `` and the variables while
/// writing the file; the docs mean the text they print, which is what is written here.
const GRAYIFY_IMAGE_SH: &str = "#! /bin/sh
FILE_NAME=`basename $INPUT_FILE_PATH`
OUTPUT_FILE=$TMP_OUTPUT_DIR/$FILE_NAME
convert $INPUT_FILE_PATH -type Grayscale $OUTPUT_FILE
";
const IMAGE_PARSER_YAML: &str = "functions:
  aws:
  - lambda:
      name: scar-imagemagick
      init_script: grayify-image.sh
      container:
        image: grycap/imagemagick
      output:
      - storage_provider: s3
        path: scar-imagemagick/output
    api_gateway:
      name: image-api
";
const GRAYIFY_IMAGE_SH_CAT: &str = "#! /bin/sh
FILE_NAME=`basename $INPUT_FILE_PATH`
OUTPUT_FILE=$TMP_OUTPUT_DIR/$FILE_NAME
convert $INPUT_FILE_PATH -type Grayscale $OUTPUT_FILE
cat $OUTPUT_FILE
";
const IMAGE_PARSER_YAML_NO_OUTPUT: &str = "functions:
  aws:
  - lambda:
      name: scar-imagemagick
      init_script: grayify-image.sh
      container:
        image: grycap/imagemagick
    api_gateway:
      name: image-api
";
/// The picture the docs convert (`examples/imagemagick/homer.png` of grycap/scar).
const HOMER_PNG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/scar-upstream/examples/imagemagick/homer.png"
);

const SCRIPT_SH: &str = "#!/bin/bash
/usr/games/cowsay \"Executing the image runtime's init script !!\"
";

/// The cow under every bubble, as cowsay draws it.
const COW: &str = "        \\   ^__^
         \\  (oo)\\_______
            (__)\\       )\\/\\
                ||----w |
                ||     ||
";

/// A SCAR user's directory: the files the docs write, `scar` run in it with a home whose
/// `scar.cfg` sets the mirror of `docker.io`.
struct Walk {
    scar: Scar,
    dir: tempfile::TempDir,
    /// The docs' lines run so far (pending ones included).
    ran: Vec<String>,
}

impl Walk {
    /// `cat >> name << EOF ... EOF`.
    fn append(&self, name: &str, text: &str) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(name))
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    /// A section starts from none of the files it writes: the docs' `cat >>` blocks are
    /// each a section's own file. Appended as they are typed, `cow.yaml` would hold two
    /// `functions:` keys from the second section on (scar refuses the file; SCAR's
    /// PyYAML keeps the last one silently), and `cow.sh` the init script and the `env`
    /// one, one after the other.
    fn fresh(&self, names: &[&str]) {
        for name in names {
            let _ = std::fs::remove_file(self.dir.path().join(name));
        }
    }

    /// `line`, split as a shell splits it, after the names it stands for are put in
    /// (`(placeholder, real)`); `scar` run in the directory; it must succeed.
    fn doc(&mut self, line: &str, names: &[(&str, &str)]) -> Run {
        self.ran.push(line.to_string());
        let mut typed = line.to_string();
        for (placeholder, real) in names {
            typed = typed.replace(placeholder, real);
        }
        let r = self.shell(&typed);
        eprintln!("$ {typed}\n{}{}", r.stdout, r.stderr);
        assert_eq!(r.status, 0, "the docs' `{typed}` failed: {r:#?}");
        r
    }

    /// A step that is not one of the docs' lines, said as such.
    fn extra(&self, line: &str) -> Run {
        let r = self.shell(line);
        eprintln!("extra: $ {line}\n{}{}", r.stdout, r.stderr);
        r
    }

    fn shell(&self, line: &str) -> Run {
        let words = shlex::split(line).expect("a line a shell can split");
        assert_eq!(words[0], "scar", "{line}");
        Run::of(
            self.scar
                .command()
                .current_dir(self.dir.path())
                .args(&words[1..]),
        )
    }

    /// The function's output from `scar run ARGS` (an extra step), which must succeed.
    fn says(&self, args: &str) -> String {
        let r = self.extra(&format!("scar run {args}"));
        assert_eq!(r.status, 0, "{r:#?}");
        r.stdout
    }
}

/// What the cow says, its bubble's lines joined (`< a >`, or `/ a \`, `| b |`, `\ c /`).
#[track_caller]
fn cow_says(output: &str) -> String {
    assert!(output.contains(COW), "no cow in:\n{output}");
    let bubble: Vec<&str> = output
        .lines()
        .skip_while(|l| !l.starts_with(" _"))
        .skip(1)
        .take_while(|l| !l.starts_with(" -"))
        .collect();
    assert!(!bubble.is_empty(), "no speech bubble in:\n{output}");
    bubble
        .iter()
        .map(|l| l[2..l.len() - 2].trim_end())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A saying of the stand-in's fortune (what the image's CMD prints), not a script's.
#[track_caller]
fn says_a_fortune(output: &str) {
    let said = cow_says(output);
    let sayings = include_str!("../../../scar-test-support/src/cowsay/fortunes");
    let sayings: Vec<String> = sayings
        .split("%\n")
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(sayings.contains(&said), "not a fortune: {said:?}");
}

/// The functions this home has.
fn functions(walk: &Walk) -> BTreeSet<String> {
    let r = walk.extra("scar ls -j");
    assert_eq!(r.status, 0, "{r:#?}");
    let list = r.json();
    let items = list
        .as_array()
        .cloned()
        .or_else(|| list["functions"].as_array().cloned());
    items
        .unwrap_or_default()
        .iter()
        .filter_map(|f| f["name"].as_str().map(str::to_string))
        .collect()
}

/// The log stream of request `id`, from `scar log -j` (scar's `run` prints it with `-v`
/// only, where SCAR's printed it always).
fn stream_of(walk: &Walk, id: &str) -> String {
    let r = walk.extra("scar log -n scar-cowsay -j");
    let start = format!("START RequestId: {id} ");
    r.stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["message"].as_str().is_some_and(|m| m.starts_with(&start)))
        .and_then(|l| l["stream"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no stream for {id} in {r:#?}"))
}

/// SCAR's four usage pages, every `scar` line, in order.
#[test]
fn scars_documented_command_lines_run_unchanged() {
    let tools = ["docker-registry", "umoci", "skopeo", "busybox"];
    let Some(scar) = scar_with(&tools) else {
        return;
    };
    // The real ImageMagick in a Debian root: built once (debootstrap), cached in target/.
    let cache = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target")
        })
        .join("test-images");
    let Some(imagemagick) = imagemagick_image(&cache) else {
        return;
    };
    let registry = TestRegistry::start();
    registry.push_archive("oci-archive", &imagemagick, "grycap/imagemagick:latest");
    let images = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // SCAR's images under their names, in the registry that stands in for Docker Hub;
    // `docker save NAME > NAME.tar.gz` as the docs make them.
    let cowsay = cowsay_image(&images.path().join("cowsay"));
    cowsay.push(&registry, &format!("{COWSAY}:latest"), true);
    cowsay.push(&registry, "image/name:latest", false);
    cowsay.docker_save(
        &dir.path().join("cowsay.tar.gz"),
        &format!("{COWSAY}:latest"),
    );
    let minicow = minicow_image(&images.path().join("minicow"));
    minicow.push(&registry, &format!("{MINICOW}:latest"), false);
    minicow.docker_save(
        &dir.path().join("minicow.tar.gz"),
        &format!("{MINICOW}:latest"),
    );
    std::fs::write(
        scar.home.path().join("scar.cfg"),
        format!(
            r#"{{"registry": {{"mirrors": {{"docker.io": "http://{}"}}}}}}"#,
            registry.addr
        ),
    )
    .unwrap();
    let mut walk = Walk {
        scar,
        dir,
        ran: Vec::new(),
    };

    basic_usage_with_a_file(&mut walk);
    basic_usage_on_the_command_line(&mut walk);
    advanced_usage(&mut walk);
    image_env_usage(&mut walk);
    api_gateway(&mut walk);

    assert_eq!(walk.ran, DOC_LINES, "the walk and the docs' list differ");
    assert!(functions(&walk).is_empty(), "the walk leaves no function");
}

fn basic_usage_with_a_file(walk: &mut Walk) {
    walk.append("basic-cow.yaml", BASIC_COW_YAML);
    let r = walk.doc("scar init -f basic-cow.yaml", &[]);
    assert!(r.stdout.contains("'scar-cowsay' created"), "{r:#?}");
    assert!(r.stdout.contains(COWSAY), "from SCAR's image name: {r:#?}");
    let r = walk.doc("scar run -f basic-cow.yaml", &[]);
    says_a_fortune(&r.stdout);
    let log = walk.doc("scar log -f basic-cow.yaml", &[]);
    assert!(
        log.stdout.contains("START RequestId: ") && log.stdout.contains(&r.stdout),
        "the invocation and what it printed: {log:#?}"
    );
    walk.doc("scar rm -f basic-cow.yaml", &[]);
    assert!(functions(walk).is_empty());
}

fn basic_usage_on_the_command_line(walk: &mut Walk) {
    let r = walk.doc("scar init -n scar-cowsay -i grycap/cowsay", &[]);
    assert!(r.stdout.contains("from grycap/cowsay"), "{r:#?}");
    let help = walk.doc("scar --help", &[]);
    for command in ["Usage: scar", "init", "run", "log", "rm"] {
        assert!(help.stdout.contains(command), "{help:#?}");
    }
    let run = walk.doc("scar run -n scar-cowsay", &[]);
    says_a_fortune(&run.stdout);
    let log = walk.doc("scar log -n scar-cowsay", &[]);
    assert!(log.stdout.contains(&run.stdout), "{log:#?}");
    // The request id is in the START line `scar log` printed.
    let id = log
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("START RequestId: "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a START line")
        .to_string();
    let stream = stream_of(walk, &id);
    let names = [
        ("log-stream-name", stream.as_str()),
        ("request-id", id.as_str()),
    ];
    let by_stream = walk.doc("scar log -n scar-cowsay -ls 'log-stream-name'", &names);
    assert!(by_stream.stdout.contains(&run.stdout), "{by_stream:#?}");
    let by_id = walk.doc("scar log -n scar-cowsay -ri request-id", &names);
    let lines: Vec<&str> = by_id.stdout.lines().collect();
    assert!(
        lines[0].starts_with(&format!("START RequestId: {id}"))
            && lines
                .last()
                .unwrap()
                .starts_with(&format!("REPORT RequestId: {id}")),
        "the invocation's lines: {by_id:#?}"
    );
    let both = walk.doc(
        "scar log -n scar-cowsay -ls 'log-stream-name' -ri request-id",
        &names,
    );
    assert_eq!(both.stdout, by_id.stdout);
    walk.doc("scar rm -n scar-cowsay", &[]);
    assert!(functions(walk).is_empty());
    let gone = walk.extra("scar run -n scar-cowsay");
    assert_eq!(gone.status, 2, "removed: {gone:#?}");
}

fn advanced_usage(walk: &mut Walk) {
    // A shell-script for each invocation.
    walk.fresh(&["cow.sh", "cow.yaml"]);
    walk.append("cow.sh", COW_SH_INIT);
    walk.append("cow.yaml", COW_YAML_INIT_SCRIPT);
    walk.doc("scar init -f cow.yaml", &[]);
    assert_eq!(
        cow_says(&walk.says("-n scar-cowsay")),
        "Executing init script !!"
    );
    walk.extra("scar rm -n scar-cowsay").ok();
    walk.doc("scar init -s cow.sh -n scar-cowsay -i grycap/cowsay", &[]);
    let r = walk.doc("scar run -f cow.yaml", &[]);
    assert_eq!(cow_says(&r.stdout), "Executing init script !!");

    // A user-defined shell-script.
    walk.fresh(&["runcow.sh", "cow.yaml"]);
    walk.append("runcow.sh", RUNCOW_SH);
    walk.append("cow.yaml", COW_YAML_RUN_SCRIPT);
    walk.extra("scar rm -n scar-cowsay").ok();
    walk.doc("scar init -f cow.yaml", &[]);
    // Without a script, the image's own command: a fortune.
    let r = walk.doc("scar run -n scar-cowsay", &[]);
    says_a_fortune(&r.stdout);
    for line in [
        "scar run -f cow.yaml",
        "scar run -n scar-cowsay -s runcow.sh",
        "scar run -f cow.yaml -s runcow.sh",
    ] {
        let r = walk.doc(line, &[]);
        assert_eq!(cow_says(&r.stdout), "Executing run script !!", "{line}");
    }

    // Environment variables.
    walk.fresh(&["cow.sh", "cow-env.yaml"]);
    walk.append("cow.sh", COW_SH_ENV);
    walk.append("cow-env.yaml", COW_ENV_YAML);
    walk.extra("scar rm -n scar-cowsay").ok();
    walk.doc("scar init -f cow-env.yaml", &[]);
    let env = cow_says(&walk.says("-n scar-cowsay -s cow.sh"));
    for var in ["TESTKEY1=val1", "TESTKEY2=val2"] {
        assert!(env.split(' ').any(|w| w == var), "{var} in {env}");
    }
    walk.extra("scar rm -n scar-cowsay").ok();
    walk.doc(
        "scar init -n scar-cowsay -i grycap/cowsay -e TEST1=45 -e TEST2=69 -s cow.sh",
        &[],
    );
    let env = cow_says(&walk.says("-n scar-cowsay"));
    for var in ["TEST1=45", "TEST2=69"] {
        assert!(env.split(' ').any(|w| w == var), "{var} in {env}");
    }

    // Custom commands: the command replaces any script (cow.yaml's run_script here).
    let r = walk.doc("scar run -f cow.yaml df -h", &[]);
    let header = r.stdout.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("Filesystem") && header.ends_with("Mounted on"),
        "{r:#?}"
    );
    assert!(!r.stdout.contains(COW), "{r:#?}");

    // JSON output.
    let r = walk.doc("scar run -f cow.yaml -j", &[]);
    let json = r.json();
    let output = json["output"].as_str().unwrap_or_default();
    assert_eq!(cow_says(output), "Executing run script !!", "{json}");
    assert_eq!(json["exit_code"], 0, "{json}");
    for key in ["request_id", "log_group", "log_stream"] {
        assert!(
            json[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key}: {json}"
        );
    }
    let id = json["request_id"].as_str().unwrap();
    let log = walk.extra(&format!("scar log -n scar-cowsay -ri {id}"));
    assert!(
        log.stdout.contains(output),
        "the invocation is logged: {log:#?}"
    );

    // Image files (`docker save`) and a deployment bucket: scar's packages go through a
    // deployment bucket only as Lambda's do (a zip over 50 MB), and the local provider
    // says so, as the aws one would.
    walk.fresh(&["cow.yaml"]);
    walk.append("cow.yaml", COW_YAML_IMAGE_FILE);
    walk.extra("scar rm -n scar-cowsay").ok();
    let r = walk.doc("scar init -f cow.yaml", &[]);
    assert!(r.stdout.contains("from cowsay.tar.gz"), "{r:#?}");
    assert!(
        r.stderr.contains("-db scar-test: not used, as on AWS"),
        "{r:#?}"
    );
    says_a_fortune(&walk.says("-n scar-cowsay"));
    walk.extra("scar rm -n scar-cowsay").ok();
    let r = walk.doc(
        "scar init -db scar-cowsay -n scar-cowsay -if cowsay.tar.gz",
        &[],
    );
    assert!(
        r.stderr.contains("-db scar-cowsay: not used, as on AWS"),
        "{r:#?}"
    );
    assert!(
        !walk.scar.bucket("scar-cowsay").exists(),
        "no bucket for nothing"
    );
    says_a_fortune(&walk.says("-n scar-cowsay"));

    // A slim image in the payload.
    walk.fresh(&["minicow.yaml"]);
    walk.append("minicow.yaml", MINICOW_YAML);
    walk.extra("scar rm -n scar-cowsay").ok();
    let r = walk.doc("scar init -f minicow.yaml", &[]);
    assert!(r.stdout.contains("from minicow.tar.gz"), "{r:#?}");
    says_a_fortune(&walk.says("-f minicow.yaml"));
    walk.extra("scar rm -f minicow.yaml").ok();
}

fn image_env_usage(walk: &mut Walk) {
    walk.append("function_def.yaml", FUNCTION_DEF_YAML);
    walk.append("script.sh", SCRIPT_SH);
    // SCAR's image runtime: the image with the supervisor in it, scar's image package.
    walk.doc("scar  init -f function_def.yaml -rt image", &[]);
    let listed = walk.extra("scar ls -j").json();
    let f = (listed.as_array().unwrap().iter())
        .find(|f| f["spec"]["name"] == "scar-function")
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(f["package"], "image", "{f}");
    assert_eq!(f["spec"]["memory_mb"], 2048, "{f}");
    assert_eq!(
        cow_says(&walk.says("-n scar-function")),
        "Executing the image runtime's init script !!"
    );
    walk.extra("scar rm -f function_def.yaml").ok();
}

fn api_gateway(walk: &mut Walk) {
    use std::io::BufRead as _;
    walk.append("api-cow.yaml", API_COW_YAML);
    walk.doc("scar init -f api-cow.yaml", &[]);
    // Locally the endpoint is `scar serve`'s: started as the user would, in the background,
    // and left running for the whole page.
    eprintln!("extra: $ scar serve &");
    let mut serve = Serve(walk.scar.spawn(
        &["serve", "--listen", "127.0.0.1:0", "--json"],
        std::process::Stdio::piped(),
    ));
    let mut lines = std::io::BufReader::new(serve.0.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    std::thread::spawn(move || lines.for_each(drop));
    let endpoint = first["listening"].as_str().unwrap().to_string();

    api_gateway_cowsay(walk, &endpoint);
    walk.extra("scar rm -f api-cow.yaml").ok();
    api_gateway_imagemagick(walk);

    // SIGINT, as Ctrl-C: serve lets the asynchronous invocation finish.
    let _ = std::process::Command::new("kill")
        .args(["-INT", &serve.0.id().to_string()])
        .status();
    let _ = serve.0.wait();
}

/// `scar serve` in the background, killed if a step fails before the walk stops it.
struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// api_gateway.rst up to "POST Request": the cow behind a GET.
fn api_gateway_cowsay(walk: &mut Walk, endpoint: &str) {
    use std::io::{Read as _, Write as _};
    let r = walk.doc("scar ls", &[]);
    let url = format!("{endpoint}/restapis/scar-api-cow/scar/_user_request_/launch");
    assert!(
        r.stdout.contains("API_URL") && r.stdout.contains(&url),
        "{r:#?}"
    );
    // `curl -s URL | base64 --decode`, as the docs have it.
    let address = endpoint.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(address).unwrap();
    let path = url.trim_start_matches(endpoint);
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .unwrap();
    eprintln!(
        "extra: $ curl -s {url} | base64 --decode\n{}",
        String::from_utf8_lossy(&decoded)
    );
    says_a_fortune(&String::from_utf8(decoded).unwrap());
    let r = walk.doc("scar invoke -f api-cow.yaml", &[]);
    says_a_fortune(&r.stdout);
    let r = walk.doc("scar invoke -f api-cow.yaml -a", &[]);
    assert!(r.stdout.contains("Request accepted"), "{r:#?}");
}

/// api_gateway.rst's "POST Request": homer.png through ImageMagick's `convert`, its result
/// first in the output folder, then in the answer.
fn api_gateway_imagemagick(walk: &mut Walk) {
    let homer = std::fs::read(HOMER_PNG).unwrap();
    let (width, height, _) = png_header(&homer);
    std::fs::write(walk.dir.path().join("homer.png"), &homer).unwrap();

    walk.fresh(&["grayify-image.sh", "image-parser.yaml"]);
    walk.append("grayify-image.sh", GRAYIFY_IMAGE_SH);
    walk.append("image-parser.yaml", IMAGE_PARSER_YAML);
    walk.doc("scar init -f image-parser.yaml", &[]);
    walk.doc("scar invoke -f image-parser.yaml -db homer.png", &[]);
    // The body file is `api_event_file` (SCAR's name), so is the script's output.
    let uploaded = walk
        .scar
        .bucket("scar-imagemagick/output")
        .join("api_event_file");
    let grey = std::fs::read(&uploaded)
        .unwrap_or_else(|e| panic!("no output at {}: {e}", uploaded.display()));
    let (w, h, colour) = png_header(&grey);
    assert_eq!((w, h), (width, height), "homer's size");
    assert!(
        matches!(colour, 0 | 4),
        "a grayscale PNG, not colour type {colour}"
    );

    walk.fresh(&["grayify-image.sh", "image-parser.yaml"]);
    walk.append("grayify-image.sh", GRAYIFY_IMAGE_SH_CAT);
    walk.append("image-parser.yaml", IMAGE_PARSER_YAML_NO_OUTPUT);
    walk.extra("scar rm -f image-parser.yaml").ok();
    walk.doc("scar init -f image-parser.yaml", &[]);
    walk.doc(
        "scar invoke -f image-parser.yaml -db homer.png -o grey_homer.png",
        &[],
    );
    let grey = std::fs::read(walk.dir.path().join("grey_homer.png")).unwrap();
    let (w, h, colour) = png_header(&grey);
    assert_eq!((w, h), (width, height), "homer's size");
    assert!(
        matches!(colour, 0 | 4),
        "a grayscale PNG, not colour type {colour}"
    );
    walk.extra("scar rm -f image-parser.yaml").ok();
}

/// A PNG's width, height and colour type (IHDR, the first chunk); panics on anything else,
/// and on a PNG that does not end with its IEND chunk.
#[track_caller]
fn png_header(png: &[u8]) -> (u32, u32, u8) {
    assert!(
        png.len() > 25 && png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR",
        "not a PNG: {:?}",
        String::from_utf8_lossy(&png[..png.len().min(400)])
    );
    // Whole: nothing (a note, a log line) added after its last chunk.
    assert!(
        png.ends_with(b"IEND\xaeB`\x82"),
        "a PNG with something after IEND: {:?}",
        String::from_utf8_lossy(&png[png.len().saturating_sub(200)..])
    );
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20), png[25])
}
