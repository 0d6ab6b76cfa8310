//! `in <dir>`: stdin `{"source":…,"version":…,"params":…}` → files in `<dir>`, stdout
//! `{"version":…,"metadata":[…]}`.
use image_rollout_resource::{get, protocol};

fn main() -> std::process::ExitCode {
    protocol::run(|request, dir| async move { get(request, &protocol::directory(dir)?).await })
}
