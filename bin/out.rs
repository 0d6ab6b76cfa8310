//! `out <dir>`: stdin `{"source":…,"params":…}` → the workloads rolled to the digest, stdout
//! `{"version":…,"metadata":[…]}`.
use image_rollout_resource::{protocol, put};

fn main() -> std::process::ExitCode {
    protocol::run(|request, dir| async move { put(request, &protocol::directory(dir)?).await })
}
