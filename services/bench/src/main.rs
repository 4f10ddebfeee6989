//! `baton-bench`: Baton's benchmarks. Each runs the services it needs in this process, on a
//! scratch SQLite database, or on a scratch PostgreSQL database (created and dropped on the
//! server) when `BATON_TEST_DATABASE_URL` is set, and reports the subject beside a baseline
//! measured in the same run. Kept out of the shipped `baton` binary: it creates and drops databases.

mod attainment;
mod capture;
mod kpis;
mod measure;
mod mql;
mod nurture;
mod route;

use std::{process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "baton-bench",
    about = "Baton's benchmarks, each beside its baseline"
)]
struct Cli {
    #[command(subcommand)]
    what: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// CaptureLead beside the echo ceiling (health Check on the same server and layers).
    Capture {
        /// Concurrent calls on one connection.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Rounds; the median round is reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// ImportLeads beside two PostgreSQL COPY baselines.
    Import {
        /// Rows per import round.
        #[arg(long, default_value_t = 5000)]
        rows: usize,
        /// Rounds; the median round is reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Capture → MQL and capture → assignment latency, captures sent open-loop at `--rate`.
    Mql {
        /// Captures per second.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        /// Seconds of sending.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// The KPI engine: reporting applying a capture log (beside the log's stream alone), and
    /// GetKpis of 12 KPIs over a quarter by week × channel (beside an empty quarter).
    Kpis {
        /// Leads whose facts the query runs over.
        #[arg(long, default_value_t = 1_000_000)]
        leads: usize,
        /// Activities per lead.
        #[arg(long, default_value_t = 10)]
        activities: usize,
        /// Leads in the log reporting applies.
        #[arg(long, default_value_t = 5_000)]
        apply_leads: usize,
        /// GetKpis calls measured.
        #[arg(long, default_value_t = 100)]
        calls: usize,
    },
    /// GetAttainment of a contract with `--handoffs` handoffs (beside GetContract), and
    /// WatchAttainment's delay after each outcome while outcomes arrive at `--rate` per second.
    Attainment {
        #[arg(long, default_value_t = 100_000)]
        handoffs: usize,
        /// GetAttainment calls measured (each kind).
        #[arg(long, default_value_t = 1_000)]
        calls: usize,
        /// Outcomes per second during the watch.
        #[arg(long, default_value_t = 200)]
        rate: u64,
        /// Seconds of outcomes.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Nurture: the scheduler sending `--mails` due steps into the file sink and to a local
    /// SMTP server (each beside the transport alone), and the tracking endpoint under
    /// `--concurrency` HTTP clients (beside its health route) and at `--rate` hits per second
    /// offered in an open loop.
    Nurture {
        #[arg(long, default_value_t = 5000)]
        mails: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Hits per second offered to the tracking endpoint in its open-loop run.
        #[arg(long, default_value_t = 5000)]
        rate: u32,
    },
    /// A routing decision's latency (ReassignLead one call at a time), `--rows` leads.
    Route {
        #[arg(long, default_value_t = 5000)]
        rows: usize,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.what {
        Bench::Capture {
            concurrency,
            seconds,
            rounds,
        } => capture::print_capture(concurrency, Duration::from_secs(seconds), rounds).await,
        Bench::Import { rows, rounds } => capture::print_import(rows, rounds).await,
        Bench::Mql { rate, seconds } => mql::print(rate, Duration::from_secs(seconds)).await,
        Bench::Route { rows } => route::print(rows).await,
        Bench::Nurture {
            mails,
            concurrency,
            seconds,
            rate,
        } => nurture::print(mails, concurrency, seconds, rate).await,
        Bench::Attainment {
            handoffs,
            calls,
            rate,
            seconds,
        } => attainment::print(handoffs, calls, rate, seconds).await,
        Bench::Kpis {
            leads,
            activities,
            apply_leads,
            calls,
        } => kpis::print(leads, activities, apply_leads, calls).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("baton-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
