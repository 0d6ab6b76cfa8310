//! `in <dir>`: see [`image_rollout_resource::steps::get`].
fn main() -> std::process::ExitCode {
    image_rollout_resource::steps::get()
}
