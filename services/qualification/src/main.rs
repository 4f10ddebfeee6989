//! Runs the qualification service alone; `baton serve qualification` is the same.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    baton_shared::server::run_standalone(
        baton_shared::ServiceName::Qualification,
        baton_qualification::run,
    )
    .await
}
