//! The Concourse resource protocol around one library call: request JSON on stdin, result JSON on
//! stdout, every log line on stderr, the step's directory as `argv[1]`.
//!
//! Errors end the process with exit 1 and a single `error: …` line. The error types of this crate
//! render their whole cause in that line, so no chain of `Caused by` is ever printed.

use std::future::Future;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// One `name`/`value` pair of a step's metadata, as Concourse shows it in the UI.
#[derive(Debug, Serialize)]
pub struct Metadata {
    pub name: String,
    pub value: String,
}

impl Metadata {
    pub fn new(name: &str, value: impl Into<String>) -> Metadata {
        Metadata {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// What `in` and `out` print.
#[derive(Debug, Serialize)]
pub struct StepOutput {
    pub version: crate::Version,
    pub metadata: Vec<Metadata>,
}

/// Runs `step` with the request parsed from stdin and `argv[1]`, and prints its result.
///
/// ```no_run
/// // bin/check.rs
/// fn main() -> std::process::ExitCode {
///     image_rollout_resource::protocol::run(|req, _dir| image_rollout_resource::check(req))
/// }
/// ```
pub fn run<Req, Res, F, Fut>(step: F) -> ExitCode
where
    Req: DeserializeOwned,
    Res: Serialize,
    F: FnOnce(Req, Option<PathBuf>) -> Fut,
    Fut: Future<Output = Result<Res, Error>>,
{
    match run_inner(step) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Messages are built one line each; this holds the promise for any text a server
            // or a library put into one.
            eprintln!("error: {}", crate::error::one_line(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

fn run_inner<Req, Res, F, Fut>(step: F) -> Result<(), Error>
where
    Req: DeserializeOwned,
    Res: Serialize,
    F: FnOnce(Req, Option<PathBuf>) -> Fut,
    Fut: Future<Output = Result<Res, Error>>,
{
    // `--version` is not part of the protocol, so the version goes where a build log shows it.
    eprintln!("{}", version_line());

    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| Error::Process(format!("cannot read stdin: {e}")))?;
    let request = parse_request(&input)?;
    let dir = std::env::args_os().nth(1).map(PathBuf::from);

    let runtime = runtime()?;
    let result = runtime.block_on(step(request, dir))?;
    let json = serde_json::to_string(&result).expect("result types serialize");
    println!("{json}");
    // The step is done and the process is about to exit: tearing the runtime down (its idle
    // connection tasks, the pool, the driver's descriptors, the memory) is what the kernel
    // does at exit anyway, and ~0.1 ms every check would wait for.
    std::mem::forget(runtime);
    Ok(())
}

/// The process's async runtime, on one thread (a step waits on servers; it does not compute),
/// with ring pinned as rustls's crypto provider: both reqwest and kube speak rustls, and neither
/// should have to guess (nor a second provider be linked in). Failing to pin means one is
/// already installed.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Process(format!("cannot start the async runtime: {e}")))
}

/// `image-rollout-resource 0.1.0 check`: the first line every step prints on stderr.
pub fn version_line() -> String {
    format!(
        "image-rollout-resource {} {}",
        crate::VERSION,
        step_name().to_string_lossy()
    )
}

/// The file name this process was started as (`argv[0]`): the step, when it runs as a link.
pub fn step_name() -> std::ffi::OsString {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    PathBuf::from(argv0)
        .file_name()
        .unwrap_or_default()
        .to_owned()
}

/// The step's directory (`argv[1]`) that `in` and `out` need.
pub fn directory(dir: Option<PathBuf>) -> Result<PathBuf, Error> {
    dir.ok_or_else(|| {
        Error::Request(
            "the step's directory is missing: Concourse passes it as the first argument".into(),
        )
    })
}

/// Parses a request, naming the offending key (`source.tag: invalid type …`) on failure.
pub fn parse_request<Req: DeserializeOwned>(input: &str) -> Result<Req, Error> {
    // serde fills a struct from an array too, by position; a request is never one.
    if input.trim_start().starts_with('[') {
        return Err(Error::Request(
            "stdin is a JSON array; expected a JSON object with `source` (and `params` or `version`)"
                .into(),
        ));
    }
    let de = &mut serde_json::Deserializer::from_str(input);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // serde_json appends "at line L column C"; with the key path in front, that is noise.
        let msg = inner.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        if inner.is_syntax() || inner.is_eof() {
            Error::Request(format!("stdin is not valid JSON: {msg}"))
        } else if path == "." {
            // The top level is not an object, or lacks a key: say what a request looks like.
            Error::Request(format!(
                "expected a JSON object with `source` (and `params` or `version`): {msg}"
            ))
        } else {
            Error::Request(format!("{path}: {msg}"))
        }
    })
}
