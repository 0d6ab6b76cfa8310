//! The three steps as process entry points, for `bin/`.
//!
//! The image ships one binary, `resource`, with `/opt/resource/check`, `in` and `out` linked to
//! it: it runs the step its name says. The steps share nearly all their code (HTTP, TLS, JSON,
//! the runtime), so one binary instead of three holds the image to about half (docs/design.md,
//! "One multi-call binary"). `bin/check.rs`, `bin/in.rs` and `bin/out.rs` are the same steps under
//! their own names, for the tests and for running one by hand.

use std::process::ExitCode;

use crate::protocol;

/// `check`: stdin `{"source":…,"version":…}` → stdout `[{"digest":…}, …]`, oldest first.
pub fn check() -> ExitCode {
    protocol::run(|request, _dir| crate::check(request))
}

/// `in <dir>`: stdin `{"source":…,"version":…,"params":…}` → files in `<dir>`, stdout
/// `{"version":…,"metadata":[…]}`.
pub fn get() -> ExitCode {
    protocol::run(
        |request, dir| async move { crate::get(request, &protocol::directory(dir)?).await },
    )
}

/// `out <dir>`: stdin `{"source":…,"params":…}` → the workloads rolled to the digest, stdout
/// `{"version":…,"metadata":[…]}`.
pub fn put() -> ExitCode {
    protocol::run(
        |request, dir| async move { crate::put(request, &protocol::directory(dir)?).await },
    )
}

/// Runs the step named by the file name this process was started as (`argv[0]`), or the GitHub
/// Action when started as `resource action` (`action.yml`'s entrypoint and argument).
pub fn by_name() -> ExitCode {
    let name = protocol::step_name();
    // Only under its own name: `out` gets a directory as argv[1], which may be called anything.
    if name == "resource" && std::env::args_os().nth(1).is_some_and(|a| a == "action") {
        return crate::action::run();
    }
    match name.to_str() {
        Some("check") => check(),
        Some("in") => get(),
        Some("out") => put(),
        _ => {
            eprintln!(
                "error: this binary is the resource's check, in and out, chosen by the name it runs as \
                 (Concourse runs /opt/resource/check, in and out), or the GitHub Action as `resource action`; it ran as {name:?}"
            );
            ExitCode::FAILURE
        }
    }
}
