//! Runs the reporting service alone; `baton serve reporting` is the same.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    baton_shared::server::run_standalone(baton_shared::ServiceName::Reporting, baton_reporting::run)
        .await
}
