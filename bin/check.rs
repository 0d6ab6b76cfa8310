//! `check`: see [`image_rollout_resource::steps::check`].
fn main() -> std::process::ExitCode {
    image_rollout_resource::steps::check()
}
