//! `out <dir>`: stdin `{"source":…,"params":…}` → the workloads rolled to the digest, stdout
//! `{"version":…,"metadata":[…]}`.
use image_rollout_resource::{Error, protocol, put};

fn main() -> std::process::ExitCode {
    protocol::run(|request, dir| async move {
        let dir = dir.ok_or_else(|| {
            Error::Request("out needs the build directory as its argument".into())
        })?;
        put(request, &dir).await
    })
}
