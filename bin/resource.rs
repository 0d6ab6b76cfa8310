//! The image's one binary: `check`, `in` or `out`, by the name it runs as (see
//! [`image_rollout_resource::steps`]).
fn main() -> std::process::ExitCode {
    image_rollout_resource::steps::by_name()
}
