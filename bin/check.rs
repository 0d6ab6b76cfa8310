//! `check`: stdin `{"source":…,"version":…}` → stdout `[{"digest":…}, …]`, oldest first.
use image_rollout_resource::{check, protocol};

fn main() -> std::process::ExitCode {
    protocol::run(|request, _dir| check(request))
}
