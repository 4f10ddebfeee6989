//! Runs the capture service alone (as a Kubernetes Deployment does); `baton serve capture` is the same.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    baton_shared::server::run_standalone(baton_shared::ServiceName::Capture, baton_capture::run)
        .await
}
