//! Runs the distribution service alone; `baton serve distribution` is the same.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    baton_shared::server::run_standalone(
        baton_shared::ServiceName::Distribution,
        baton_distribution::run,
    )
    .await
}
