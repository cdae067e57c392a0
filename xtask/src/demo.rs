//! `cargo xtask demo`: what scar is for, in a few seconds, on a fresh clone.
//!
//! It installs what it needs (musl's C compiler and the musl target for the static
//! supervisor, busybox for the image), builds scar and a supervisor (debug builds: the
//! quickest to a first run), assembles a busybox image here (nothing is pulled), and then
//! goes through the programming model: a function bound to a bucket with an init script,
//! files put into `input/` (one invocation each), the outputs listed and fetched, the log of
//! one invocation, the launcher over files already in the bucket, and `rm`. Its state
//! lives under `target/demo` and is removed at the end (`SCAR_DEMO_KEEP=1` keeps it).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};

use crate::{
    build_supervisor, cargo, ensure_tools, image, run, target_dir, Tool, SUPERVISOR_TOOLS,
};

const FUNCTION: &str = "word-count";
const BUCKET: &str = "demo";

/// The init script: runs once per file that lands in `demo/input/`.
const SCRIPT: &str = r#"#!/bin/sh
# Runs once for every file that lands in the function's input folder.
name=$(basename "$INPUT_FILE_PATH")
set -- $(wc -l -w -c < "$INPUT_FILE_PATH")
echo "$name: $1 lines, $2 words, $3 bytes" > "$TMP_OUTPUT_DIR/$name.count"
echo "counted $name (request $REQUEST_ID)"
"#;

const TEXTS: [(&str, &str); 5] = [
    ("ozymandias.txt", "I met a traveller from an antique land,\nWho said: Two vast and trunkless legs of stone\nStand in the desert.\n"),
    ("raven.txt", "Once upon a midnight dreary, while I pondered, weak and weary,\nOver many a quaint and curious volume of forgotten lore\n"),
    ("tyger.txt", "Tyger Tyger, burning bright,\nIn the forests of the night;\nWhat immortal hand or eye,\nCould frame thy fearful symmetry?\n"),
    ("daffodils.txt", "I wandered lonely as a cloud\nThat floats on high o'er vales and hills,\n"),
    ("road.txt", "Two roads diverged in a yellow wood,\nAnd sorry I could not travel both\nAnd be one traveler, long I stood\n"),
];

const MORE: [(&str, &str); 3] = [
    (
        "sonnet-18.txt",
        "Shall I compare thee to a summer's day?\nThou art more lovely and more temperate:\n",
    ),
    (
        "if.txt",
        "If you can keep your head when all about you\nAre losing theirs and blaming it on you,\n",
    ),
    (
        "invictus.txt",
        "Out of the night that covers me,\nBlack as the pit from pole to pole,\n",
    ),
];

/// Bold titles only on a terminal, and never with `NO_COLOR` set.
fn styled() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

struct Demo {
    scar: PathBuf,
    supervisor: PathBuf,
    home: PathBuf,
    work: PathBuf,
    bold: bool,
}

impl Demo {
    fn step(&self, title: &str, why: &str) {
        if self.bold {
            println!("\n\x1b[1m$ {title}\x1b[0m");
        } else {
            println!("\n$ {title}");
        }
        println!("# {why}");
    }

    fn scar(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.scar);
        cmd.args(args)
            .current_dir(&self.work)
            .env("SCAR_HOME", &self.home)
            .env("SCAR_SUPERVISOR", &self.supervisor)
            .env_remove("SCAR_PROVIDER");
        cmd
    }

    /// Runs scar with its output shown; fails when scar fails.
    fn show(&self, args: &[&str]) -> anyhow::Result<()> {
        run(&mut self.scar(args))
    }

    /// Runs scar, shows its stdout and returns it.
    fn capture(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self
            .scar(args)
            .stdout(Stdio::piped())
            .output()
            .with_context(|| format!("cannot start {}", self.scar.display()))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        print!("{text}");
        if !out.status.success() {
            bail!("scar {} failed: {}", args.join(" "), out.status);
        }
        Ok(text)
    }
}

fn write_files(dir: &Path, files: &[(&str, &str)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in files {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

pub fn run_demo() -> anyhow::Result<()> {
    let mut tools = SUPERVISOR_TOOLS.to_vec();
    tools.push(Tool::Apt {
        probe: "busybox",
        package: "busybox-static",
    });
    ensure_tools(&tools, "the demo")?;
    let supervisor = build_supervisor(true)?;
    run(cargo().args(["build", "--package", "scar-cli", "--bin", "scar"]))?;
    let scar = target_dir().join("debug").join("scar");

    let work = target_dir().join("demo");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let demo = Demo {
        scar,
        supervisor,
        home: work.join("home"),
        work: work.clone(),
        bold: styled(),
    };
    let result = walk_through(&demo);
    if std::env::var_os("SCAR_DEMO_KEEP").is_some() {
        println!("\nThe demo's state is kept under {}.", work.display());
    } else if let Err(e) = std::fs::remove_dir_all(&work) {
        eprintln!("xtask: cannot remove {}: {e}", work.display());
    }
    result
}

fn walk_through(demo: &Demo) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    image::busybox_docker_archive(&demo.work.join("demo-image.tar"))?;
    std::fs::write(demo.work.join("word-count.sh"), SCRIPT)?;
    write_files(&demo.work.join("texts"), &TEXTS)?;
    println!(
        "In {}: demo-image.tar (a busybox image assembled here, as `docker save` writes it),\n\
         word-count.sh (the function's script) and texts/ ({} files).",
        demo.work.display(),
        TEXTS.len()
    );
    println!("word-count.sh:\n{}", indent(SCRIPT));

    demo.step(
        &format!("scar init -n {FUNCTION} -if demo-image.tar -es {BUCKET} -s word-count.sh"),
        &format!("a function bound to bucket `{BUCKET}`: every file in {BUCKET}/input/ runs it once, what it writes to $TMP_OUTPUT_DIR lands in {BUCKET}/output/"),
    );
    demo.show(&[
        "init",
        "-n",
        FUNCTION,
        "-if",
        "demo-image.tar",
        "-es",
        BUCKET,
        "-s",
        "word-count.sh",
    ])?;

    demo.step(
        &format!("scar put -b {BUCKET}/input -p texts/"),
        "each file put into input/ invokes the function once; put waits for the results",
    );
    let put = demo.capture(&["put", "-b", &format!("{BUCKET}/input"), "-p", "texts/"])?;

    demo.step(&format!("scar ls -b {BUCKET}/output"), "what came out");
    demo.show(&["ls", "-b", &format!("{BUCKET}/output")])?;

    demo.step(
        &format!("scar get -b {BUCKET}/output -p results/ && cat results/tyger.txt.count"),
        "outputs come back as files",
    );
    demo.show(&["get", "-b", &format!("{BUCKET}/output"), "-p", "results/"])?;
    let count = demo.work.join("results").join("tyger.txt.count");
    print!(
        "{}",
        std::fs::read_to_string(&count)
            .with_context(|| format!("the function wrote no {}", count.display()))?
    );

    let request =
        request_id_of(&put, "tyger.txt").context("scar put printed no request id for tyger.txt")?;
    demo.step(
        &format!("scar log -n {FUNCTION} -ri {request}"),
        "the log of exactly one invocation (the request id is in put's results)",
    );
    demo.show(&["log", "-n", FUNCTION, "-ri", &request])?;

    // Another program (here, a plain copy) writes into the bucket's folder.
    let more = demo.work.join("more");
    write_files(&more, &MORE)?;
    let input = demo.home.join("buckets").join(BUCKET).join("input");
    for (name, _) in MORE {
        std::fs::copy(more.join(name), input.join(name))?;
    }
    demo.step(
        &format!("cp more/*.txt $SCAR_HOME/buckets/{BUCKET}/input/ && scar run -n {FUNCTION} -es {BUCKET} --pending"),
        "files that another program wrote into the bucket: the launcher runs the function for those not processed yet (without --pending: for every file in input/)",
    );
    demo.show(&["run", "-n", FUNCTION, "-es", BUCKET, "--pending"])?;

    demo.step(
        &format!("scar rm -n {FUNCTION}"),
        "the function goes; the bucket and its files stay",
    );
    demo.show(&["rm", "-n", FUNCTION])?;
    println!(
        "\nDone in {:.1} s. Next: README.md (`scar init -f` for SCAR's definition files, packages, `--provider aws`).",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// The request id that `scar put` printed on the line of `file`.
fn request_id_of(put_output: &str, file: &str) -> Option<String> {
    put_output
        .lines()
        .find(|l| l.contains(file))
        .and_then(|l| l.split("request ").nth(1))
        .map(|rest| rest.trim_end_matches(')').trim().to_string())
        .filter(|id| !id.is_empty())
}
