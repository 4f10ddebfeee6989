//! `baton import leads.csv`: a CSV of leads streamed through capture's ImportLeads (client
//! streaming, in batches, read as it is sent), with a progress bar, and one result per row written
//! to a CSV file. Rows go in calls of at most `--rows-per-call` (the server's
//! `import.max_results_per_call` bounds one answer), each call with its own import id
//! (`<import id>.<n>`), so running the same file again with the same import id changes nothing.

use std::{collections::HashMap, path::PathBuf};

use anyhow::Context;
use baton_proto::capture::v1::{
    CaptureLeadRequest, Consent, ImportAnswer, ImportLeadsRequest, ImportLeadsResponse,
    ImportRowStatus, LeadSource, capture_service_client::CaptureServiceClient,
};
use baton_shared::{ServiceName, Settings};
use indicatif::ProgressBar;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// The columns a CSV may have (a header row names them; unknown columns are an error, so a typo
/// does not silently drop data). `email` is required by capture; the rest are optional.
pub const COLUMNS: [&str; 12] = [
    "request_id",
    "email",
    "first_name",
    "last_name",
    "company_name",
    "phone",
    "title",
    "role",
    "department",
    "channel",
    "campaign",
    "email_opt_in",
];

/// What `baton import` is asked to do.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The CSV file.
    pub file: PathBuf,
    /// Where the per-row results go (CSV: row, status, lead_id, violations); default
    /// `<file>.results.csv`.
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Names the import (default: the file's name): running it again with the same id changes
    /// nothing (rows answer already_imported).
    #[arg(long)]
    pub import_id: Option<String>,
    /// Rows per streamed message.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Rows per ImportLeads call (the server answers at most import.max_results_per_call).
    #[arg(long, default_value_t = 50_000)]
    pub rows_per_call: usize,
}

impl ImportArgs {
    /// Where the results go: `--results`, else `<file>.results.csv`.
    pub fn results_path(&self) -> PathBuf {
        self.results.clone().unwrap_or_else(|| {
            let mut name = self.file.as_os_str().to_owned();
            name.push(".results.csv");
            PathBuf::from(name)
        })
    }
}

/// What the whole import did, summed over its calls.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub rows: i64,
    pub created: i64,
    pub matched_existing: i64,
    pub already_imported: i64,
    pub rejected: i64,
}

impl Summary {
    fn add(&mut self, r: &ImportLeadsResponse) {
        self.rows += r.rows;
        self.created += r.created;
        self.matched_existing += r.matched_existing;
        self.already_imported += r.already_imported;
        self.rejected += r.rejected;
    }
}

/// One CSV record as a capture request.
fn row_of(header: &HashMap<String, usize>, record: &csv::StringRecord) -> CaptureLeadRequest {
    let get = |name: &str| {
        header
            .get(name)
            .and_then(|&i| record.get(i))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let opt_in = matches!(
        get("email_opt_in").to_ascii_lowercase().as_str(),
        "true" | "yes" | "1"
    );
    CaptureLeadRequest {
        request_id: get("request_id"),
        email: get("email"),
        first_name: get("first_name"),
        last_name: get("last_name"),
        company_name: get("company_name"),
        phone: get("phone"),
        title: get("title"),
        role: get("role"),
        department: get("department"),
        source: Some(LeadSource {
            channel: get("channel"),
            campaign: get("campaign"),
            ..Default::default()
        }),
        consent: opt_in.then(|| Consent {
            email_opt_in: true,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The header's columns by position; an unknown column is an error.
fn header_of(reader: &mut csv::Reader<std::fs::File>) -> anyhow::Result<HashMap<String, usize>> {
    let mut header = HashMap::new();
    for (i, name) in reader.headers()?.iter().enumerate() {
        let name = name.trim().to_ascii_lowercase();
        if !COLUMNS.contains(&name.as_str()) {
            anyhow::bail!(
                "unknown column {name:?}; the columns are {}",
                COLUMNS.join(", ")
            );
        }
        header.insert(name, i);
    }
    if !header.contains_key("email") {
        anyhow::bail!("the header has no email column");
    }
    Ok(header)
}

/// Reads the file on a blocking thread and sends its rows in batches of `batch`, one call (a
/// list of batches ending with `None`) per `rows_per_call` rows; the progress bar follows the
/// bytes read.
fn read_rows(
    args: &ImportArgs,
    bar: ProgressBar,
    tx: mpsc::Sender<Option<Vec<CaptureLeadRequest>>>,
) -> anyhow::Result<()> {
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
    let header = header_of(&mut reader)?;
    let mut batch = Vec::with_capacity(args.batch);
    let mut in_call = 0;
    for record in reader.records() {
        let record = record.with_context(|| format!("{} is not valid CSV", args.file.display()))?;
        bar.set_position(record.position().map_or(0, |p| p.byte()));
        batch.push(row_of(&header, &record));
        in_call += 1;
        if batch.len() == args.batch || in_call == args.rows_per_call {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(args.batch));
            if tx.blocking_send(Some(full)).is_err() {
                return Ok(());
            }
        }
        if in_call == args.rows_per_call {
            in_call = 0;
            if tx.blocking_send(None).is_err() {
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Some(batch));
    }
    Ok(())
}

/// One row's result as a line of the results file (its row number in the whole file).
fn result_line(offset: i64, r: &baton_proto::capture::v1::ImportRowResult) -> Vec<String> {
    let status = ImportRowStatus::try_from(r.status)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("IMPORT_ROW_STATUS_")
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let why = r
        .violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ");
    vec![
        (offset + r.row_number).to_string(),
        status,
        r.lead_id.clone(),
        why,
    ]
}

/// Runs the import against capture; returns the summary (the results file is written as the
/// calls answer).
pub async fn run(settings: &Settings, args: ImportArgs) -> anyhow::Result<Summary> {
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    anyhow::ensure!(args.rows_per_call > 0, "--rows-per-call must be at least 1");
    let endpoint = settings.service(ServiceName::Capture).endpoint.clone();
    let client = CaptureServiceClient::new(crate::access::connect(settings, &endpoint).await?);
    let size = std::fs::metadata(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?
        .len();
    let bar = crate::progress::bytes(size);
    let import_id = args.import_id.clone().unwrap_or_else(|| {
        args.file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "import".into())
    });
    let results = args.results_path();
    let mut out = csv::Writer::from_path(&results)
        .with_context(|| format!("cannot write {}", results.display()))?;
    out.write_record(["row", "status", "lead_id", "violations"])?;
    let (tx, mut rx) = mpsc::channel(4);
    let reader = {
        let bar = bar.clone();
        let args = args.clone();
        tokio::task::spawn_blocking(move || read_rows(&args, bar, tx))
    };
    let mut summary = Summary::default();
    let mut call = 0;
    let mut first = rx.recv().await;
    while let Some(Some(batch)) = first {
        call += 1;
        let id = format!("{import_id}.{call}");
        let (call_tx, call_rx) = mpsc::channel(2);
        let answer = {
            let mut client = client.clone();
            tokio::spawn(async move { client.import_leads(ReceiverStream::new(call_rx)).await })
        };
        let mut next = Some(Some(batch));
        loop {
            match next.take() {
                Some(Some(rows)) => {
                    let message = ImportLeadsRequest {
                        import_id: id.clone(),
                        rows,
                        answer: ImportAnswer::EveryRow as i32,
                    };
                    // A refused send means the call ended early: its answer says why.
                    if call_tx.send(message).await.is_err() {
                        break;
                    }
                    next = rx.recv().await;
                }
                other => {
                    next = other;
                    break;
                }
            }
        }
        drop(call_tx);
        let answer = answer
            .await?
            .map_err(|s| anyhow::anyhow!("ImportLeads: {}", s.message()))?;
        let answer = answer.into_inner();
        for r in &answer.results {
            out.write_record(result_line(summary.rows, r))?;
        }
        summary.add(&answer);
        bar.set_message(format!(
            "{} rows, {} rejected",
            summary.rows, summary.rejected
        ));
        // `next` is None (the file ended) or Some(None) (this call is full: go on).
        first = match next {
            Some(None) => rx.recv().await,
            other => other,
        };
    }
    reader.await??;
    out.flush()?;
    bar.finish();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_becomes_a_capture_request_by_its_header() {
        let header: HashMap<String, usize> = [("email", 0), ("first_name", 1), ("email_opt_in", 2)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let record = csv::StringRecord::from(vec![" ada@example.com ", "Ada", "yes"]);
        let row = row_of(&header, &record);
        assert_eq!(
            (row.email.as_str(), row.first_name.as_str()),
            ("ada@example.com", "Ada")
        );
        assert!(row.consent.unwrap().email_opt_in);
        let short = csv::StringRecord::from(vec!["bob@example.com"]);
        let row = row_of(&header, &short);
        assert_eq!((row.first_name.as_str(), row.consent), ("", None));
    }
}
