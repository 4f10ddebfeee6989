//! `baton`: run the whole suite (`up`), one service (`serve`), migrations, or the demo.

use std::{path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use baton::{bench, demo, suite};
use baton_shared::{ServiceName, Settings, server, telemetry};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "baton",
    version,
    about = "Lead handoff from marketing to inside sales to field sales, over gRPC"
)]
struct Cli {
    /// Settings file (TOML); overrides ./baton.toml, overridden by BATON__SECTION__KEY variables.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BenchTarget {
    Capture,
    Import,
    Mql,
    Route,
}

#[derive(Subcommand)]
enum Command {
    /// Run all five services in this process (SQLite under ./data by default).
    Up,
    /// Run one service against the database its settings name (PostgreSQL in production).
    Serve {
        /// capture, nurture, qualification, distribution or reporting.
        service: ServiceName,
    },
    /// Apply pending migrations to one service's database, or to all five, and exit.
    Migrate { service: Option<ServiceName> },
    /// Measure CaptureLead beside the echo ceiling of the same server (median of several rounds).
    /// Uses a scratch SQLite database, or a scratch PostgreSQL database on the server named by
    /// BATON_TEST_DATABASE_URL.
    Bench {
        /// What to measure: `capture` (CaptureLead vs the echo ceiling), `import` (ImportLeads
        /// vs PostgreSQL COPY of the same rows), `mql` (capture → MQL and → assignment latency at
        /// `--rate`) or `route` (a routing decision's latency, `--rows` leads).
        #[arg(default_value = "capture")]
        what: BenchTarget,
        /// Rows per import round.
        #[arg(long, default_value_t = 5000)]
        rows: usize,
        /// Concurrent calls on one connection.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Rounds; the median round is reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Captures per second, for `mql`.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
    },
    /// Drive a small lead flow through a running suite and print the funnel.
    Demo {
        /// Leads to capture.
        #[arg(long, default_value_t = 20)]
        leads: usize,
        /// Reps to create.
        #[arg(long, default_value_t = 3)]
        reps: usize,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("baton: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { service } => {
            server::run_one(service, cli.config, move |s, l, t| {
                suite::run_service(service, s, l, t)
            })
            .await?;
        }
        Command::Up => {
            let settings = Settings::load(cli.config.as_deref())?;
            let _telemetry = telemetry::init(&settings.telemetry, "baton")?;
            let suite = suite::Suite::start(settings).await?;
            println!("baton is up (Ctrl-C to stop):");
            for (name, endpoint) in suite.endpoints() {
                println!("  {:<14} {endpoint}", name.as_str());
            }
            let shutdown = CancellationToken::new();
            tokio::spawn(server::cancel_on_signal(shutdown.clone()));
            suite.run_until(shutdown).await?;
        }
        Command::Migrate { service } => {
            let settings = Settings::load(cli.config.as_deref())?;
            for name in service.map_or(ServiceName::ALL.to_vec(), |s| vec![s]) {
                suite::migrate_service(name, &settings).await?;
                println!("{name}: migrated");
            }
        }
        Command::Bench {
            what: BenchTarget::Import,
            rows,
            rounds,
            ..
        } => {
            let r = bench::import_leads(rows, rounds).await?;
            println!("baton bench import: {rows} rows per round, median of {rounds}");
            if let Some(copy) = r.copy_plain {
                println!("COPY, plain table (baseline)      {copy:>9.0} rows/s");
            }
            if let Some(copy) = r.copy_lead {
                println!("COPY, stored rows, `lead`-shaped   {copy:>9.0} rows/s");
            }
            println!("ImportLeads                       {:>9.0} rows/s", r.import);
            if let Some(copy) = r.copy_plain {
                println!("ImportLeads / COPY plain: {:.1} %", 100.0 * r.import / copy);
            }
            if let Some(copy) = r.copy_lead {
                println!(
                    "ImportLeads / COPY lead-shaped: {:.1} %",
                    100.0 * r.import / copy
                );
            }
        }
        Command::Bench {
            what: BenchTarget::Mql,
            rate,
            seconds,
            ..
        } => {
            let m = bench::capture_to_mql(rate, Duration::from_secs(seconds)).await?;
            let db = if m.postgres { "PostgreSQL" } else { "SQLite" };
            println!("baton bench mql: {rate} captures/s open-loop for {seconds} s, {db}");
            println!(
                "sent {} in {:.2} s ({:.0}/s), captured {}, MQL events seen {}",
                m.sent,
                m.send_elapsed.as_secs_f64(),
                m.sent as f64 / m.send_elapsed.as_secs_f64(),
                m.captured,
                m.mql.count
            );
            let line = |label: &str, l: &bench::Latency| {
                println!(
                    "{label:<58} p50 {:>6.1} ms   p99 {:>6.1} ms   max {:>6.1} ms",
                    l.p50.as_secs_f64() * 1e3,
                    l.p99.as_secs_f64() * 1e3,
                    l.max.as_secs_f64() * 1e3
                )
            };
            line("  CaptureLead answered", &m.answered);
            line("  LeadCaptured published on capture's log", &m.published);
            line("capture -> MQL visible", &m.mql);
            line(
                &format!(
                    "capture -> assigned ({} leads; 200 reps, 20 rules)",
                    m.assigned.count
                ),
                &m.assigned,
            );
        }
        Command::Bench {
            what: BenchTarget::Route,
            rows,
            ..
        } => {
            let (m, postgres) = bench::route(rows).await?;
            let db = if postgres { "PostgreSQL" } else { "SQLite" };
            println!(
                "baton bench route: {rows} ReassignLead calls one at a time, 200 reps, 20 rules, {db}"
            );
            println!("{}", bench::report("routing decision (ReassignLead)", &m));
        }
        Command::Bench {
            concurrency,
            seconds,
            rounds,
            ..
        } => {
            let plan = bench::BenchPlan {
                concurrency,
                duration: Duration::from_secs(seconds),
                rounds,
            };
            let (echo, capture, postgres) = bench::capture_lead(&plan).await?;
            let db = if postgres { "PostgreSQL" } else { "SQLite" };
            println!(
                "baton bench: {concurrency} concurrent calls, one connection, median of {rounds} x {seconds} s, {db}"
            );
            println!("{}", bench::report("echo ceiling (health Check)", &echo));
            println!("{}", bench::report("CaptureLead", &capture));
            println!(
                "CaptureLead / echo ceiling: {:.1} %",
                100.0 * capture.per_second() / echo.per_second()
            );
        }
        Command::Demo { leads, reps } => {
            let settings = Arc::new(Settings::load(cli.config.as_deref())?);
            let plan = demo::DemoPlan {
                leads,
                reps,
                ..Default::default()
            };
            let funnel = demo::run(&settings, &plan, Duration::from_secs(30)).await?;
            print!("{}", demo::render(&funnel));
        }
    }
    Ok(())
}
