//! Runs the nurture service alone; `baton serve nurture` is the same.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    baton_shared::server::run_standalone(baton_shared::ServiceName::Nurture, baton_nurture::run)
        .await
}
