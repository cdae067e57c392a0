//! SCAR's own function definition files (every `.yaml` of grycap/scar, under
//! `tests/data/scar-upstream/`, unchanged) through `scar init -f` and `scar rm -f` on the
//! local provider: which ones scar accepts, which it refuses and why. Their images are
//! replaced by a locally built busybox image (CI has no Docker Hub) and the init scripts
//! they name are stubbed; nothing else in them is touched.
//!
//! The table below is the measure: when the parser learns something, a row moves from
//! refused to accepted here.

use std::path::{Path, PathBuf};

use scar_test_support::images::{build_busybox_image, require_tools};
use scar_test_support::scar::Scar;

/// What `scar init -f` must do with one upstream file.
enum Expect {
    /// Exit 0, and exactly these functions exist afterwards (a file's `aws` functions,
    /// chained through folders or not; `oscar` ones are ignored).
    Accepted(&'static [&'static str]),
    /// Exit 2, nothing created, and stderr names the cause.
    Refused {
        /// Why, in a few words, for the table.
        reason: &'static str,
        /// Part of the error scar prints.
        error: &'static str,
    },
}
use Expect::{Accepted, Refused};

/// Every `.yaml` of the data directory, by its path in SCAR's repository.
const FILES: &[(&str, Expect)] = &[
    // Three functions chained through folders, in `lambda-batch` and `batch` modes.
    (
        "examples/av-workflow/scar-av-workflow.yaml",
        Accepted(&[
            "scar-av-workflow-ffmpeg",
            "scar-av-workflow-audio2srt",
            "scar-av-workflow-yolov3",
        ]),
    ),
    // A container AWS_ACCESS_KEY_ID: the container's variables, not Lambda's (SCAR 4).
    (
        "examples/aws-cli/scar-aws-cli.yaml",
        Accepted(&["scar-aws-cli"]),
    ),
    (
        "examples/cowsay-ecr/basic-cow.yaml",
        Accepted(&["scar-ecr-cowsay"]),
    ),
    // Not a function definition file: the per-function configuration SCAR generates.
    (
        "examples/cowsay-ecr/function_config.yaml",
        Refused {
            reason: "not an FDL file (SCAR's generated function config)",
            error: "the file: it has no `functions:` section",
        },
    ),
    ("examples/cowsay/scar-cowsay.yaml", Accepted(&["scar-cowsay"])),
    // SCAR's documented `container.image_file` (a `docker save` archive).
    (
        "examples/cowsay/scar-minicow.yaml",
        Accepted(&["scar-minicow"]),
    ),
    (
        "examples/darknet/scar-darknet-api-s3.yaml",
        Accepted(&["scar-darknet-api-s3"]),
    ),
    (
        "examples/darknet/scar-darknet.yaml",
        Accepted(&["scar-darknet-s3"]),
    ),
    (
        "examples/deep-audio/scar-deepaas-audio.yaml",
        Accepted(&["scar-deepaas-audio"]),
    ),
    ("examples/elixir/scar-elixir.yaml", Accepted(&["scar-elixir"])),
    ("examples/erlang/scar-erlang.yaml", Accepted(&["scar-erlang"])),
    ("examples/ffmpeg/scar-ffmpeg.yaml", Accepted(&["scar-ffmpeg"])),
    (
        "examples/imagemagick/scar-imagemagick.yaml",
        Accepted(&["scar-imagemagick"]),
    ),
    // One aws function fed by an OSCAR service (ignored) through `s3.my_s3`.
    (
        "examples/mask-detector-workflow/scar-mask-detector-workflow.yaml",
        Accepted(&["scar-mask-detector"]),
    ),
    // MPI across several instances: refused by name.
    (
        "examples/mpi/batch.yaml",
        Refused {
            reason: "multi-node parallel Batch jobs",
            error: "functions.aws[0].batch.multi_node_parallel: multi-node parallel jobs (MPI across instances) are not supported",
        },
    ),
    ("examples/mpi/lambda.yaml", Accepted(&["scar-mpi"])),
    ("examples/mrbayes/scar-mrbayes.yaml", Accepted(&["scar-mrbayes"])),
    (
        "examples/plant-classification/scar-plant-classification.yaml",
        Accepted(&["scar-plants"]),
    ),
    ("examples/r/scar-r.yaml", Accepted(&["scar-r"])),
    ("examples/ruby/scar-ruby.yaml", Accepted(&["scar-ruby"])),
    (
        "examples/spectacle/scar-spectacle.yaml",
        Accepted(&["scar-spectacle"]),
    ),
    ("examples/theano/scar-theano.yaml", Accepted(&["scar-theano"])),
    // Two functions chained through `scar-video/split-images`; the first one is Batch.
    (
        "examples/video-process/scar-video-process.yaml",
        Accepted(&["scar-batch-ffmpeg-split", "scar-lambda-darknet"]),
    ),
    // Every option SCAR has: a MinIO input, an S3 output with filters, Batch settings
    // unused (`execution_mode: lambda`), OneData and OSCAR ignored with warnings.
    ("fdl-example.yaml", Accepted(&["function1"])),
    // A draft layout from SCAR's own parser tests, which SCAR 4 does not read either.
    (
        "test/functional/parser/fdl.yaml",
        Refused {
            reason: "not an FDL file (draft layout of SCAR's parser test)",
            error: "functions: expected a mapping",
        },
    ),
    // A 2019 draft layout (`lambda.image`, no `container:`), which SCAR 4 does not read.
    (
        "video-process.yaml",
        Refused {
            reason: "draft layout: `lambda.image` instead of `container.image`",
            error: "functions.aws[0].lambda: it has no `container:` with an `image`",
        },
    ),
];

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/scar-upstream")
}

/// Every `.yaml` under `dir`, relative to `root`, sorted.
fn yaml_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            let rel = path.strip_prefix(root).unwrap();
            out.push(rel.to_str().unwrap().to_string());
        }
    }
    out.sort();
}

/// The value of `key:` on this line (not a comment; `- key:` too), with its indentation.
fn yaml_value<'a>(line: &'a str, key: &str) -> Option<(&'a str, &'a str)> {
    let body = line.trim_start();
    let body = body.strip_prefix("- ").unwrap_or(body);
    let value = body.strip_prefix(key)?.strip_prefix(':')?;
    Some((&line[..line.len() - body.len()], value.trim()))
}

/// The file with every `image:` set to `image` and every `image_file:` (SCAR's
/// `docker save` archive) set to `archive`; nothing else changed.
fn with_local_images(yaml: &str, image: &str, archive: &str) -> String {
    let mut out = String::new();
    for line in yaml.split_inclusive('\n') {
        let eol = &line[line.trim_end_matches(['\r', '\n']).len()..];
        let replaced = [("image", image), ("image_file", archive)]
            .into_iter()
            .find_map(|(key, to)| {
                yaml_value(line, key).map(|(indent, _)| format!("{indent}{key}: {to}{eol}"))
            });
        out.push_str(replaced.as_deref().unwrap_or(line));
    }
    out
}

/// A one-line stub for every relative `init_script:` the file names that is not there
/// (SCAR's scripts are not copied: what they do is not under test). Absolute paths
/// (`examples/mpi/batch.yaml`'s `/tmp/run_batch.sh`) are left alone: nothing is written
/// outside the test's directory.
fn stub_init_scripts(yaml: &str, dir: &Path) {
    for line in yaml.lines() {
        let Some((_, script)) = yaml_value(line, "init_script") else {
            continue;
        };
        let script = Path::new(script.trim_matches(['"', '\'']));
        let path = dir.join(script);
        if script.is_relative() && !path.exists() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "echo stub\n").unwrap();
        }
    }
}

fn listed_names(scar: &Scar) -> Vec<String> {
    let listed = scar.run(&["ls", "--json"]).ok().json();
    let mut names: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["spec"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// Runs each file (after `edit`) through `init -f`, `ls`, `rm -f`, `ls` in a fresh scar
/// home; prints the table; fails listing every row that is not as expected.
fn check_files(title: &str, files: &[(&str, Expect)], edit: impl Fn(&str) -> String) {
    if !require_tools(&["umoci", "busybox", "skopeo"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let image = build_busybox_image(&work.path().join("image"));
    let archive = work.path().join("image.tar");
    image.docker_archive(&archive);
    let (image, archive) = (image.image_arg(), archive.to_str().unwrap().to_string());

    let mut table = Vec::new();
    let mut wrong = Vec::new();
    let mut accepted = 0;
    for (rel, expect) in files {
        let Some(scar) = Scar::new(env!("CARGO_BIN_EXE_scar")) else {
            return;
        };
        let file = work.path().join("files").join(rel);
        let dir = file.parent().unwrap();
        std::fs::create_dir_all(dir).unwrap();
        let yaml = std::fs::read_to_string(data_dir().join(rel)).unwrap();
        let yaml = with_local_images(&edit(&yaml), &image, &archive);
        stub_init_scripts(&yaml, dir);
        std::fs::write(&file, &yaml).unwrap();
        let file = file.to_str().unwrap();

        let init = scar.run(&["init", "-f", file]);
        let names = listed_names(&scar);
        let rm = scar.run(&["rm", "-f", file]);
        let left = listed_names(&scar);
        let (verdict, reason, ok) = match expect {
            Accepted(functions) => {
                let mut want: Vec<String> = functions.iter().map(|f| f.to_string()).collect();
                want.sort();
                let ok = init.status == 0 && names == want && rm.status == 0 && left.is_empty();
                ("accepted", format!("creates {}", functions.join(", ")), ok)
            }
            Refused { reason, error } => {
                let ok = init.status == 2 && init.stderr.contains(error) && names.is_empty();
                ("refused", reason.to_string(), ok)
            }
        };
        if init.status == 0 {
            accepted += 1;
        }
        // scar's own words: the cause under `error: <file> is not a function definition`.
        let said = init
            .stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix("caused by: "))
            .or_else(|| init.stderr.lines().find(|l| l.starts_with("error:")))
            .unwrap_or("");
        let verdict = if ok { verdict } else { "UNEXPECTED" };
        table.push(format!("| {rel} | {verdict} | {reason} | {said} |"));
        if !ok {
            wrong.push(format!(
                "{rel}: expected {reason}; init exited {} with functions {names:?}, rm exited {} \
                 leaving {left:?}\ninit stderr:\n{}\nrm stderr:\n{}",
                init.status, rm.status, init.stderr, rm.stderr
            ));
        }
    }
    eprintln!(
        "\n{title}: {accepted} of {} accepted\n\
         | file | outcome | reason | scar's error |\n|---|---|---|---|\n{}\n",
        files.len(),
        table.join("\n")
    );
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n\n"));
}

#[test]
fn scar_upstream_definition_files_are_accepted_or_refused_as_expected() {
    let mut on_disk = Vec::new();
    yaml_files(&data_dir(), &data_dir(), &mut on_disk);
    let listed: Vec<&str> = FILES.iter().map(|(f, _)| *f).collect();
    assert_eq!(on_disk, listed, "every upstream file has a row, in order");
    check_files(
        "SCAR's upstream definition files through `scar init -f`",
        FILES,
        str::to_string,
    );
}

/// The keys of SCAR's upstream files that scar warns it does not use, file by file: what
/// SCAR users still read "not used by scar, ignored" about. A key scar learns leaves this
/// list; a new warning is a change to look at.
#[test]
fn upstream_keys_scar_does_not_use() {
    let mut unused = Vec::new();
    for (rel, _) in FILES {
        let path = data_dir().join(rel);
        let yaml = std::fs::read_to_string(&path).unwrap();
        let Ok(fdl) = scar_core::fdl::Fdl::parse(&yaml, path.parent().unwrap()) else {
            continue;
        };
        for w in fdl
            .warnings
            .iter()
            .filter(|w| w.contains("not used by scar"))
        {
            let key = w.split(':').next().unwrap_or_default();
            unused.push(format!("{rel}: {key}"));
        }
    }
    eprintln!(
        "{} \"not used\" warnings:\n{}",
        unused.len(),
        unused.join("\n")
    );
    assert_eq!(unused, UNUSED_KEYS);
}

/// [`upstream_keys_scar_does_not_use`]'s expected list: 3 warnings, all keys with no use in
/// scar's design (13 before region, vpc, file_system, create_image, delete_image and
/// boto_profile were read; 6 before log_level; 5 before api_gateway).
/// (`timeout_threshold"` is a typo of the upstream file, quote and all.)
const UNUSED_KEYS: &[&str] = &[
    "fdl-example.yaml: functions.aws[0].lambda.layers",
    "fdl-example.yaml: functions.aws[0].lambda.supervisor",
    "fdl-example.yaml: functions.aws[0].lambda.container.timeout_threshold\"",
];
