//! `in <dir>`: stdin `{"source":…,"version":…,"params":…}` → files in `<dir>`, stdout
//! `{"version":…,"metadata":[…]}`.
use image_rollout_resource::{Error, get, protocol};

fn main() -> std::process::ExitCode {
    protocol::run(|request, dir| async move {
        let dir = dir.ok_or_else(|| {
            Error::Request("in needs the destination directory as its argument".into())
        })?;
        get(request, &dir).await
    })
}
