//! `out <dir>`: see [`image_rollout_resource::steps::put`].
fn main() -> std::process::ExitCode {
    image_rollout_resource::steps::put()
}
