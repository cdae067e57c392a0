//! Function specs: what a function is, validated to AWS Lambda's rules so that a function
//! that works on the local provider can be deployed unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::SpecError;

/// Lambda's memory bounds, in MB.
pub const MEMORY_RANGE: std::ops::RangeInclusive<u32> = 128..=10240;
/// Lambda's timeout bounds, in seconds.
pub const TIMEOUT_RANGE: std::ops::RangeInclusive<u32> = 1..=900;

/// Environment names Lambda reserves for itself; a function may not set them.
const RESERVED_ENV: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// The parts of an image's configuration that decide how its command runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    /// `KEY=VALUE` entries, as in the OCI image config.
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

/// A function: an image plus the settings it runs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionSpec {
    pub name: String,
    /// Where the image came from, as the user named it (a reference or an archive path).
    pub image: String,
    pub memory_mb: u32,
    pub timeout_s: u32,
    /// Seconds kept back from the timeout to stop the script and upload its outputs.
    pub timeout_threshold_s: u32,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// The init script's text: what runs when an invocation brings no script or arguments.
    #[serde(default)]
    pub init_script: Option<String>,
    /// The input bucket that triggers the function, if any.
    #[serde(default)]
    pub input_bucket: Option<String>,
    /// Where outputs go, when not to the triggering bucket's `output/` folder (an FDL
    /// `output:` entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputSpec>,
}

/// Where a function's output files are uploaded: `<bucket>/<folder>/<relative path>`, only
/// those whose file name starts with one of `prefix` and ends with one of `suffix` (an
/// empty list accepts all), as SCAR's FDL `output:` entries say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputSpec {
    pub bucket: String,
    /// No leading or trailing `/`; empty for the bucket's top.
    #[serde(default)]
    pub folder: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suffix: Vec<String>,
}

impl OutputSpec {
    /// Whether the output file at `relative` (under the output directory) is uploaded.
    pub fn accepts(&self, relative: &str) -> bool {
        let name = relative.rsplit('/').next().unwrap_or(relative);
        (self.prefix.is_empty() || self.prefix.iter().any(|p| name.starts_with(p.as_str())))
            && (self.suffix.is_empty() || self.suffix.iter().any(|s| name.ends_with(s.as_str())))
    }

    /// Whether `key` of `bucket` lies where this location writes: an output of the function
    /// (every key of the bucket when the folder is its top).
    pub fn holds(&self, bucket: &str, key: &str) -> bool {
        bucket == self.bucket
            && (self.folder.is_empty()
                || key
                    .strip_prefix(self.folder.as_str())
                    .is_some_and(|rest| rest.starts_with('/')))
    }

    /// The object key of the output file at `relative`.
    pub fn key(&self, relative: &str) -> String {
        if self.folder.is_empty() {
            relative.to_string()
        } else {
            format!("{}/{relative}", self.folder)
        }
    }
}

impl FunctionSpec {
    /// Checks every field against Lambda's rules.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_name(&self.name)?;
        if !MEMORY_RANGE.contains(&self.memory_mb) {
            return Err(SpecError::Memory(self.memory_mb));
        }
        if !TIMEOUT_RANGE.contains(&self.timeout_s) {
            return Err(SpecError::Timeout(self.timeout_s));
        }
        if self.timeout_threshold_s >= self.timeout_s {
            return Err(SpecError::Threshold {
                threshold: self.timeout_threshold_s,
                timeout: self.timeout_s,
            });
        }
        for key in self.environment.keys() {
            validate_env_name(key)?;
        }
        if let Some(output) = &self.output {
            crate::bucket::validate_bucket(&output.bucket).map_err(SpecError::Output)?;
            // An output folder inside `input/` is fine (its objects are told apart by
            // `is_own_output`); one that holds `input/` leaves nothing to tell them by.
            let holds_input =
                output.folder.is_empty() || output.folder == crate::bucket::INPUT_FOLDER;
            if holds_input && self.input_bucket.as_deref() == Some(output.bucket.as_str()) {
                let at = if output.folder.is_empty() {
                    output.bucket.clone()
                } else {
                    format!("{}/{}", output.bucket, output.folder)
                };
                return Err(SpecError::OutputHoldsInput(at, output.bucket.clone()));
            }
        }
        Ok(())
    }

    /// Whether `key` of the function's input bucket is one of its own outputs (its output
    /// folder lies inside `input/`): such an object never triggers the function, or every
    /// run would start another.
    pub fn is_own_output(&self, key: &str) -> bool {
        match (&self.input_bucket, &self.output) {
            (Some(bucket), Some(output)) => output.holds(bucket, key),
            _ => false,
        }
    }

    /// The buckets the function reads and writes: its input bucket, then its output
    /// bucket when that is another one.
    pub fn buckets(&self) -> Vec<String> {
        let mut buckets: Vec<String> = self.input_bucket.iter().cloned().collect();
        if let Some(out) = &self.output {
            if !buckets.contains(&out.bucket) {
                buckets.push(out.bucket.clone());
            }
        }
        buckets
    }

    /// The seconds the script may run: the timeout minus the threshold.
    pub fn script_budget_s(&self) -> u32 {
        self.timeout_s.saturating_sub(self.timeout_threshold_s)
    }
}

/// Lambda function names: 1 to 64 of `[A-Za-z0-9_-]`.
pub fn validate_name(name: &str) -> Result<(), SpecError> {
    let err = |why| {
        Err(SpecError::Name {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return err("it is empty");
    }
    if name.len() > 64 {
        return err("it is longer than 64 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return err("it has a character other than letters, digits, '-' and '_'");
    }
    Ok(())
}

/// Environment variable names: a letter first, then letters, digits and `_`; not reserved
/// by Lambda.
pub fn validate_env_name(name: &str) -> Result<(), SpecError> {
    let err = |why| {
        Err(SpecError::EnvName {
            name: name.to_string(),
            why,
        })
    };
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {}
        Some(_) => return err("it must start with a letter"),
        None => return err("it is empty"),
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return err("only letters, digits and '_' are allowed");
    }
    if RESERVED_ENV.contains(&name) || name.starts_with("AWS_LAMBDA_") {
        return err("the name is reserved by AWS Lambda");
    }
    Ok(())
}

/// Parses `KEY=VALUE` assignments (the `-e` flag), validating each name.
pub fn parse_env_assignments<S: AsRef<str>>(
    items: &[S],
) -> Result<BTreeMap<String, String>, SpecError> {
    let mut env = BTreeMap::new();
    for item in items {
        let item = item.as_ref();
        let Some((key, value)) = item.split_once('=') else {
            return Err(SpecError::EnvAssignment(item.to_string()));
        };
        validate_env_name(key)?;
        env.insert(key.to_string(), value.to_string());
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FunctionSpec {
        FunctionSpec {
            name: "fn-1_a".into(),
            image: "busybox".into(),
            memory_mb: 512,
            timeout_s: 300,
            timeout_threshold_s: 10,
            description: String::new(),
            environment: BTreeMap::new(),
            init_script: None,
            input_bucket: None,
            output: None,
        }
    }

    #[test]
    fn valid_spec_passes() {
        assert_eq!(spec().validate(), Ok(()));
        assert_eq!(spec().script_budget_s(), 290);
    }

    #[test]
    fn names_follow_lambda_rules() {
        for bad in ["", "a b", "x/y", "ñ", &"a".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_name(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn bounds_are_enforced() {
        let mut s = spec();
        s.memory_mb = 127;
        assert_eq!(s.validate(), Err(SpecError::Memory(127)));
        s.memory_mb = 10241;
        assert_eq!(s.validate(), Err(SpecError::Memory(10241)));
        s.memory_mb = 10240;
        s.timeout_s = 901;
        assert_eq!(s.validate(), Err(SpecError::Timeout(901)));
        s.timeout_s = 0;
        assert_eq!(s.validate(), Err(SpecError::Timeout(0)));
        s.timeout_s = 10;
        assert!(matches!(s.validate(), Err(SpecError::Threshold { .. })));
    }

    #[test]
    fn outputs_inside_input_are_told_apart_and_outputs_over_it_refused() {
        let mut s = spec();
        s.input_bucket = Some("photos".into());
        let at = |bucket: &str, folder: &str| OutputSpec {
            bucket: bucket.into(),
            folder: folder.into(),
            ..OutputSpec::default()
        };
        s.output = Some(at("photos", "input/results"));
        assert_eq!(s.validate(), Ok(()));
        assert!(s.is_own_output("input/results/a.png"));
        assert!(s.is_own_output("input/results/deep/a.png"));
        assert!(!s.is_own_output("input/a.png"));
        assert!(
            !s.is_own_output("input/results.png"),
            "a sibling, not inside"
        );
        assert!(!s.is_own_output("input/resultsx/a.png"));
        for folder in ["", "input"] {
            s.output = Some(at("photos", folder));
            match s.validate() {
                Err(e @ SpecError::OutputHoldsInput(..)) => {
                    assert!(e.to_string().contains("photos/input/results"), "{e}")
                }
                other => panic!("{folder:?}: {other:?}"),
            }
        }
        // Another bucket, or no input bucket: nothing overlaps.
        s.output = Some(at("elsewhere", ""));
        assert_eq!(s.validate(), Ok(()));
        assert!(!s.is_own_output("input/a.png"));
        s.input_bucket = None;
        s.output = Some(at("photos", "input"));
        assert_eq!(s.validate(), Ok(()));
        assert!(!s.is_own_output("input/a.png"));
    }

    #[test]
    fn env_assignments() {
        let env = parse_env_assignments(&["A=1", "B_2=x=y", "C="]).unwrap();
        assert_eq!(env["B_2"], "x=y");
        assert_eq!(env["C"], "");
        assert!(parse_env_assignments(&["NOEQUALS"]).is_err());
        assert!(parse_env_assignments(&["1A=x"]).is_err());
        assert!(parse_env_assignments(&["AWS_REGION=x"]).is_err());
        assert!(parse_env_assignments(&["AWS_LAMBDA_X=x"]).is_err());
    }
}
