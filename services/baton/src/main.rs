//! `baton`: run the whole suite (`up`), one service (`serve`), migrations, or the demo.

use std::{path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use baton::{access, demo, events, import, local_keys, models, report, suite};
use baton_shared::{
    ServiceName, Settings,
    auth::{Role, token::TokenSpec},
    server, telemetry,
};
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
    /// Sign a token with the local key (auth.signing_key_file, or the development key `baton up`
    /// creates) and print it.
    Token {
        /// The tenant the token is for ("*" only with --role service: every tenant's event logs).
        #[arg(long)]
        tenant: Option<String>,
        /// marketing, inside_sales, field_sales, sales_ops, admin or service; repeatable or
        /// comma-separated.
        #[arg(long = "role", value_delimiter = ',', required = true)]
        roles: Vec<Role>,
        /// Who the token names: the person or service (the actor of its decisions).
        #[arg(long)]
        sub: String,
        /// How long it is valid: e.g. 90s, 15m, 1h, 7d.
        #[arg(long, default_value = "1h", value_parser = access::parse_ttl)]
        ttl: Duration,
    },
    /// The events the running services could not apply (dead letters), and their replay.
    Events {
        #[command(subcommand)]
        what: EventsCommand,
    },
    /// Scoring models in qualification.
    Models {
        #[command(subcommand)]
        what: ModelsCommand,
    },
    /// Import leads from a CSV file (a header row names the columns: email, first_name,
    /// last_name, company_name, phone, title, role, department, channel, campaign, request_id,
    /// email_opt_in) through capture's ImportLeads, with one result per row written to
    /// `--results`. Exit code 3 when any row was rejected.
    Import(import::ImportArgs),
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
enum ModelsCommand {
    /// Make scoring model version `model_id` the active one (a draft, or a retired version to
    /// roll back) and follow the re-scoring of every lead with a progress bar.
    Activate {
        /// The version's model_id (ListScoringModels, CreateScoringModel).
        model_id: String,
        /// Return at once; the re-scoring goes on in the background.
        #[arg(long)]
        no_wait: bool,
    },
}

#[derive(Subcommand)]
enum EventsCommand {
    /// List the dead letters of one service, or of every service that follows another's log.
    DeadLetters {
        /// capture, nurture, qualification, distribution or reporting.
        #[arg(long)]
        service: Option<ServiceName>,
        /// Also those already replayed.
        #[arg(long)]
        all: bool,
    },
    /// Apply dead letter `id` of `--service` again (after the cause was mended), or with
    /// `--all` every waiting one of it, oldest first, with a progress bar.
    Replay {
        /// The dead letter's id, as `baton events dead-letters` lists it.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        /// Every dead letter of the service that still waits.
        #[arg(long)]
        all: bool,
        /// The service whose dead letter it is.
        #[arg(long)]
        service: ServiceName,
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
        Err(e) if e.downcast_ref::<RowsRejected>().is_some() => {
            eprintln!("baton: {e:#}");
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("baton: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `baton import` finished, and some rows were rejected (exit code 3; the results file says why).
#[derive(Debug)]
struct RowsRejected(i64);

impl std::fmt::Display for RowsRejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} row(s) rejected (see the results file)", self.0)
    }
}

impl std::error::Error for RowsRejected {}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Import(args) => import_file(cli.config.as_deref(), args).await?,
        Command::Serve { service } => {
            server::run_one(service, cli.config, move |s, l, t| {
                suite::run_service(service, s, l, t)
            })
            .await?;
        }
        Command::Up => {
            let settings = Settings::load(cli.config.as_deref())?;
            let _telemetry = telemetry::init(&settings.telemetry, "baton")?;
            let created = local_keys::ensure(&settings)?;
            let suite = suite::Suite::start(settings.clone()).await?;
            print_where(&suite, &settings);
            print_admin_token(&settings, created)?;
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
            print!("{}", report::kpis(&settings, &report).await?);
        }
        Command::Report {
            what: ReportCommand::Funnel { from, to, tz, by },
        } => {
            let settings = Settings::load(cli.config.as_deref())?;
            print!(
                "{}",
                report::funnel(&settings, (&from, &to), &tz, &by).await?
            );
        }
        Command::Report {
            what: ReportCommand::Plan { id, as_of },
        } => {
            let settings = Settings::load(cli.config.as_deref())?;
            print!("{}", report::plan(&settings, &id, as_of.as_deref()).await?);
        }
        Command::Token {
            tenant,
            roles,
            sub,
            ttl,
        } => {
            let settings = Settings::load(cli.config.as_deref())?;
            let spec = TokenSpec {
                sub,
                tenant: tenant.unwrap_or_else(|| settings.tenancy.default_tenant.clone()),
                roles,
                ttl,
            };
            println!("{}", access::mint(&settings, &spec)?);
        }
        Command::Events {
            what: EventsCommand::DeadLetters { service, all },
        } => {
            let settings = Settings::load(cli.config.as_deref())?;
            print!("{}", events::dead_letters(&settings, service, all).await?);
        }
        Command::Events {
            what: EventsCommand::Replay { id, all, service },
        } => {
            let settings = Settings::load(cli.config.as_deref())?;
            match id {
                Some(id) if !all => print!("{}", events::replay(&settings, service, id).await?),
                _ => print!("{}", events::replay_waiting(&settings, service).await?),
            }
        }
        Command::Models {
            what: ModelsCommand::Activate { model_id, no_wait },
        } => {
            let settings = Settings::load(cli.config.as_deref())?;
            print!(
                "{}",
                models::activate(&settings, &model_id, !no_wait).await?
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

/// `baton import`: runs the import and prints its summary; some rows rejected is exit code 3.
async fn import_file(
    config: Option<&std::path::Path>,
    args: import::ImportArgs,
) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    let results = args.results_path();
    let s = import::run(&settings, args).await?;
    println!(
        "{} rows: {} created, {} matched existing leads, {} already imported, {} rejected; results in {}",
        s.rows,
        s.created,
        s.matched_existing,
        s.already_imported,
        s.rejected,
        results.display()
    );
    if s.rejected > 0 {
        return Err(RowsRejected(s.rejected).into());
    }
    Ok(())
}

/// What `baton up` serves, and where.
fn print_where(suite: &suite::Suite, settings: &Settings) {
    println!("baton is up (Ctrl-C to stop):");
    for (name, endpoint) in suite.endpoints() {
        println!("  {:<14} {endpoint}", name.as_str());
    }
    if let Some(addr) = suite.metrics_addr() {
        println!(
            "  {:<14} http://{addr}/metrics (Prometheus; /readyz, /livez)",
            "metrics"
        );
    }
    println!(
        "  {:<14} {} (HTTP: open pixel, clicks, unsubscribe)",
        "tracking", settings.tracking.base_url
    );
    if settings.delivery.transport == baton_shared::settings::MailTransport::File {
        println!(
            "  {:<14} {}/*.eml (what nurture sends; set delivery.transport = \"smtp\" to send)",
            "mail", settings.delivery.outbox_dir
        );
    }
}

/// What `baton up` prints for a first call: a day's admin token of the default tenant, signed
/// with the local key, and how to make others.
fn print_admin_token(settings: &Settings, created: Vec<PathBuf>) -> anyhow::Result<()> {
    if !settings.auth.enabled {
        println!("auth is off (auth.enabled = false): calls need no token");
        return Ok(());
    }
    for path in created {
        println!("created {} (first start)", path.display());
    }
    if !settings.tls.ca_file.is_empty() {
        println!(
            "clients trust the suite's certificate through {} (tls.ca_file)",
            settings.tls.ca_file
        );
    }
    let token = access::mint(
        settings,
        &TokenSpec {
            sub: "admin".into(),
            tenant: settings.tenancy.default_tenant.clone(),
            roles: vec![Role::Admin],
            ttl: Duration::from_secs(86_400),
        },
    )?;
    println!(
        "admin token for tenant {:?} (24 h; send it as `authorization: Bearer <token>`):",
        settings.tenancy.default_tenant
    );
    println!("  export BATON_TOKEN={token}");
    println!(
        "other tokens: baton token --tenant acme --role inside_sales --sub alice@acme.example --ttl 8h"
    );
    Ok(())
}
