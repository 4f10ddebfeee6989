//! `baton`: run the whole suite (`up`), one service (`serve`), migrations, or the demo.

use std::{path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use baton::{demo, report, suite};
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
    /// Reports of a running suite, as tables.
    Report {
        #[command(subcommand)]
        what: ReportCommand,
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

#[derive(Subcommand)]
enum ReportCommand {
    /// KPIs per period and group, each value with its numerator and denominator.
    Kpis {
        /// Catalogue keys, comma-separated (e.g. opt_in_rate,leads).
        #[arg(long, value_delimiter = ',', required = true)]
        kpi: Vec<String>,
        /// Start: RFC 3339, or YYYY-MM-DD (midnight in --tz).
        #[arg(long)]
        from: String,
        /// End (exclusive), as --from.
        #[arg(long)]
        to: String,
        /// day, week, month, quarter or whole.
        #[arg(long, default_value = "day")]
        granularity: String,
        /// IANA time zone the periods follow.
        #[arg(long, default_value = "UTC")]
        tz: String,
        /// Dimensions to group by, comma-separated (channel, campaign).
        #[arg(long, value_delimiter = ',')]
        by: Vec<String>,
        /// dimension=value, repeatable.
        #[arg(long)]
        filter: Vec<String>,
    },
    /// The funnel's steps (leads, MQLs, assigned, SQLs, opportunities, won), optionally by group.
    Funnel {
        /// Start: RFC 3339, or YYYY-MM-DD (midnight in --tz).
        #[arg(long)]
        from: String,
        /// End (exclusive), as --from.
        #[arg(long)]
        to: String,
        /// IANA time zone of dates given as YYYY-MM-DD.
        #[arg(long, default_value = "UTC")]
        tz: String,
        /// Dimensions to group by, comma-separated (channel, campaign, team, ...).
        #[arg(long, value_delimiter = ',')]
        by: Vec<String>,
    },
    /// A plan's progress: per stage target, expected, actual, fill rate, projection and cost; the
    /// bottleneck; stagnating leads.
    Plan {
        /// The plan's id.
        id: String,
        /// The moment to measure at (RFC 3339 or YYYY-MM-DD, UTC); default now.
        #[arg(long)]
        as_of: Option<String>,
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
        Command::Report {
            what:
                ReportCommand::Kpis {
                    kpi,
                    from,
                    to,
                    granularity,
                    tz,
                    by,
                    filter,
                },
        } => {
            let settings = Settings::load(cli.config.as_deref())?;
            let report = report::KpiReport {
                kpis: kpi,
                from,
                to,
                granularity,
                time_zone: tz,
                group_by: by,
                filters: filter,
            };
            let endpoint = &settings.service(ServiceName::Reporting).endpoint;
            print!("{}", report::kpis(endpoint, &report).await?);
        }
        Command::Report {
            what: ReportCommand::Funnel { from, to, tz, by },
        } => {
            let settings = Settings::load(cli.config.as_deref())?;
            let endpoint = &settings.service(ServiceName::Reporting).endpoint;
            print!(
                "{}",
                report::funnel(endpoint, (&from, &to), &tz, &by).await?
            );
        }
        Command::Report {
            what: ReportCommand::Plan { id, as_of },
        } => {
            let settings = Settings::load(cli.config.as_deref())?;
            let endpoint = &settings.service(ServiceName::Reporting).endpoint;
            print!("{}", report::plan(endpoint, &id, as_of.as_deref()).await?);
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
