//! `p360`: the command-line entry point. See `p360 --help`.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a CLI prints by design

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use p360::bench::queue::{QueueBench, run_queue, run_reference};
use p360::system::Mode;
use p360::{Config, System};
use p360_identity::Role;
use p360_identity::users::NewUser;
use p360_queue::embedded::Durability;
use std::io::Read;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "p360",
    version,
    about = "Patient-owned health records for a payor: the p360 server and tools"
)]
struct Cli {
    /// Configuration file (default: ./p360.toml if present; every setting has a default).
    #[arg(long, global = true, env = "P360_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (overrides `data_dir` in the configuration).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API, every pipeline stage and the sources in one process.
    Serve {
        /// Seed a demo patient, provider and analyst and drop sample documents.
        #[arg(long)]
        demo: bool,
        /// Listen address (overrides `api.listen`).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Run one pipeline stage alone (scale a stage out with more workers).
    Worker {
        /// Stage name, e.g. `register`.
        stage: String,
    },
    /// Run one stage as an AWS Lambda function fed by its SQS queue.
    #[cfg(feature = "aws")]
    Lambda { stage: String },
    /// Extract coded facts from photos/scans offline: one FHIR R4 Bundle per input
    /// (`<stem>.fhir.json`) in `--out`.
    Extract {
        /// A document (JPEG, PNG, TIFF, PDF) or a directory of them.
        input: std::path::PathBuf,
        #[arg(long, default_value = "extracted")]
        out: std::path::PathBuf,
        /// Documents read at once (one OCR engine each); default: the number of cores.
        #[arg(long)]
        jobs: Option<usize>,
        /// Read the `.txt` transcripts in the directory instead of the images, as a perfect OCR
        /// would: what is lost then is lost by extraction, not by OCR.
        #[arg(long)]
        text: bool,
    },
    /// Match a payor batch to the roster and resolve its facts offline: `links.ndjson`, one
    /// FHIR R4 Bundle per member under `members/`, `report.json`, `review.ndjson`.
    Enrich {
        /// The eligibility roster; its folder is the batch folder sources are named from.
        #[arg(long)]
        members: std::path::PathBuf,
        /// Feed files or folders (default: the roster's folder).
        feeds: Vec<std::path::PathBuf>,
        #[arg(long, default_value = "enriched")]
        out: std::path::PathBuf,
        /// Files read at once; default: the number of cores.
        #[arg(long)]
        jobs: Option<usize>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Payor feed batches in the configured object store (read by `p360 serve`'s enrich stage).
    Feeds {
        #[command(subcommand)]
        command: p360::feeds_cmd::FeedsCommand,
    },
    /// Wearables and home devices.
    Devices {
        #[command(subcommand)]
        command: DevicesCommand,
    },
    /// The access ledger: `p360 ledger verify` checks its hash chain.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Inspect and replay dead letters.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Manage local user accounts (built-in identity mode).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Benchmarks, each printed beside a reference measured in the same run.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum DevicesCommand {
    /// Import an Apple Health `export.xml` into a patient's record, as the API's
    /// `POST /v1/patients/{id}/device-readings/apple-health` does (beside a running server:
    /// its devices stage takes the batches in). Prints the counts as JSON.
    ImportAppleHealth {
        export: PathBuf,
        #[arg(long)]
        patient: String,
    },
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Walk the whole chain and hold it against the newest checkpoint; exits non-zero at the
    /// first entry that does not verify, or when entries a checkpoint recorded are gone.
    Verify,
    /// Write a checkpoint of the ledger's head now (`serve` writes one every minute and at
    /// shutdown).
    Checkpoint,
}

#[derive(Subcommand)]
enum DlqCommand {
    /// List dead letters (all queues, or one).
    List {
        #[arg(long)]
        queue: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Put dead letters back on their queue.
    Replay {
        #[arg(long)]
        queue: String,
        /// Only this message id (default: all of the queue's dead letters).
        #[arg(long)]
        id: Option<String>,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create an account. The password is read from stdin if --password is not given.
    Add {
        #[arg(long)]
        username: String,
        /// patient, provider, payor_analyst or admin.
        #[arg(long)]
        role: String,
        #[arg(long)]
        password: Option<String>,
        /// For a patient: the id of their record (a new one is made if absent).
        #[arg(long)]
        patient_id: Option<String>,
        /// For a provider: their National Provider Identifier (checked).
        #[arg(long, requires = "organization")]
        npi: Option<String>,
        /// For a provider: their organization.
        #[arg(long, requires = "npi")]
        organization: Option<String>,
    },
    /// List accounts.
    List,
    /// Print an access token for an account (operators and scripts on this machine).
    Token {
        #[arg(long)]
        username: String,
    },
    /// Disable an account: its tokens stop working at once.
    Disable {
        #[arg(long)]
        username: String,
    },
    /// Delete an account (and its provider profile): its tokens stop working at once.
    Delete {
        #[arg(long)]
        username: String,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Embedded queue: enqueue → handle → ack, beside a plain SQLite insert+delete loop.
    Queue {
        #[arg(long, default_value_t = 20_000)]
        messages: usize,
        #[arg(long, default_value_t = 10)]
        batch: usize,
        #[arg(long, default_value_t = 4)]
        consumers: usize,
        /// Skip fsync on commit (`synchronous=NORMAL`) in both the queue and the reference.
        #[arg(long)]
        no_fsync: bool,
    },
    /// Manual observations → graph writer → lake sink, beside Oxigraph's bulk loader on the
    /// same triples.
    Ingest {
        #[arg(long, default_value_t = 20_000)]
        observations: usize,
        #[arg(long, default_value_t = 200)]
        patients: usize,
        /// Events per publish call.
        #[arg(long, default_value_t = 100)]
        batch: usize,
    },
    /// A payor batch end to end through the enrich stage, the graph writer (Oxigraph on disk)
    /// and the lake sink (Parquet), beside parsing the same files alone and Oxigraph's bulk
    /// loader on the same quads; peak memory per phase.
    Enrich {
        /// A feed set (`batch/` + `truth/`).
        #[arg(long)]
        set: Option<PathBuf>,
        /// Generate a set of about this many feed lines with scripts/feedgen instead.
        #[arg(long, default_value_t = 1_000_000)]
        lines: usize,
        #[arg(long, default_value_t = 2)]
        jobs: usize,
    },
    /// Care gaps for a generated population (members/s) and every population dashboard
    /// refreshed with p360's engine beside DuckDB on the same Parquet files.
    Insights {
        #[arg(long, default_value_t = 100_000)]
        members: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Runs of each dashboard query (the best counts, for both engines).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// A Python with `duckdb` installed.
        #[arg(long, env = "P360_LAKE_PYTHON", default_value = "python3")]
        python: PathBuf,
    },
    /// The member matcher beside Splink on the same person-records of a feed set (its
    /// `truth/links.json` scores both): precision, recall, F1, false links, seconds.
    Match {
        /// A feed set (`batch/` + `truth/`), e.g. testdata/feeds/sample.
        #[arg(long, default_value = "testdata/feeds/sample")]
        set: PathBuf,
        /// Generate a set of this many members with scripts/feedgen instead (bench profile).
        #[arg(long)]
        generate: Option<usize>,
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// A Python with `splink` 4 installed.
        #[arg(long, env = "P360_SPLINK_PYTHON", default_value = "python3")]
        python: PathBuf,
    },
    /// Pages/s of OCR (warm engines, one per core) beside the plain `tesseract` CLI on the same
    /// pages (one process per core), and the clinical NLP time on its own.
    Extract {
        /// Directory of page images.
        #[arg(long, default_value = "testdata/documents")]
        dir: PathBuf,
        /// Passes over the directory.
        #[arg(long, default_value_t = 1)]
        rounds: usize,
        /// OCR engines and CLI processes (default: the number of cores).
        #[arg(long)]
        workers: Option<usize>,
    },
    /// `Patient/$everything` of a large record over HTTP at 1 and 32 clients, beside a raw
    /// SPARQL CONSTRUCT of the same graph on the same store.
    Read {
        #[arg(long, default_value_t = 5_000)]
        facts: usize,
        /// Full reads per client.
        #[arg(long, default_value_t = 10)]
        rounds: usize,
        /// Client counts, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = vec![1, 32])]
        clients: Vec<usize>,
    },
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("P360_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=info,aws=warn,hyper=warn"));
    let json = std::env::var("P360_LOG_FORMAT").is_ok_and(|v| v == "json")
        || std::env::var("AWS_LAMBDA_FUNCTION_NAME").is_ok();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Cancelled on SIGINT or SIGTERM.
fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested; finishing in-flight work");
        t.cancel();
    });
    token
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    p360_extract::ocr::tesseract::ensure_single_threaded_openmp();
    init_tracing();
    // On Lambda the runtime starts the binary (`bootstrap`) without arguments: the function's
    // environment names the stage instead.
    #[cfg(feature = "aws")]
    if let Ok(stage) = std::env::var("P360_LAMBDA_STAGE") {
        let system = System::build(Config::load(None)?).await?;
        let s = system
            .stage(&stage)
            .with_context(|| format!("P360_LAMBDA_STAGE names an unknown stage '{stage}'"))?;
        return p360_runtime::lambda::run(s, system.publisher.clone(), Some(system.queue.clone()))
            .await
            .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"));
    }
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(d) = cli.data_dir {
        config.data_dir = d;
    }
    match cli.command {
        Command::Serve { demo, listen } => {
            if let Some(l) = listen {
                config.api.listen = l;
            }
            let listener = tokio::net::TcpListener::bind(config.api.listen)
                .await
                .with_context(|| format!("binding {}", config.api.listen))?;
            let addr = listener.local_addr()?;
            let system = System::build(config).await?;
            if demo {
                let accounts = p360::demo::seed(&system)?;
                if let Some(p) = accounts.first().and_then(|a| a.user.patient_id.clone()) {
                    p360::demo::seed_record(&system, &p).await?;
                }
                print_demo(&accounts, addr);
            }
            system.serve(listener, shutdown_signal()).await
        }
        Command::Worker { stage } => {
            // The embedded graph belongs to one process: the stages that use it open it (a
            // second process is refused by RocksDB's lock); the others leave it closed.
            let mode = if matches!(stage.as_str(), "graph-writer" | "lake-sink") {
                Mode::Run
            } else {
                Mode::Admin
            };
            let system = System::build_with(config, mode).await?;
            let shutdown = shutdown_signal();
            for h in system.spawn_stages(&[stage.as_str()], &shutdown)? {
                h.await?;
            }
            Ok(())
        }
        #[cfg(feature = "aws")]
        Command::Lambda { stage } => {
            let system = System::build(config).await?;
            let s = system
                .stage(&stage)
                .with_context(|| format!("unknown stage '{stage}'"))?;
            p360_runtime::lambda::run(s, system.publisher.clone(), Some(system.queue.clone()))
                .await
                .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"))
        }
        Command::Extract {
            input,
            out,
            jobs,
            text,
        } => {
            let jobs = jobs.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            });
            p360::extract_cmd::run(&input, &out, jobs, text).await
        }
        Command::Enrich {
            members,
            feeds,
            out,
            jobs,
            quiet,
        } => {
            let jobs = jobs.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            });
            p360::enrich_cmd::run(&members, &feeds, &out, jobs, quiet)
        }
        Command::Feeds { command } => {
            let (objects, _) = p360::system::build_stores(&config)?;
            p360::feeds_cmd::run(command, &*objects).await
        }
        Command::Devices {
            command: DevicesCommand::ImportAppleHealth { export, patient },
        } => {
            let patient = p360_events::PatientId::parse(&patient)
                .map_err(|_| anyhow::anyhow!("--patient: not a valid patient id"))?;
            let file = std::fs::File::open(&export)
                .with_context(|| format!("opening {}", export.display()))?;
            let system = System::build_with(config, Mode::Admin).await?;
            let report = p360_devices::import::import(
                std::io::BufReader::with_capacity(256 * 1024, file),
                &*system.objects,
                &*system.publisher,
                &patient,
                &p360_events::UserId::parse("p360-cli")?,
                "/p360/cli/devices",
                chrono::Utc::now(),
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if let Some(f) = report.failure {
                bail!("the export stops being readable at {f}; what was read before was kept");
            }
            Ok(())
        }
        Command::Ledger { command } => {
            let (_, ledger) = p360::system::build_consent(&config).await?;
            let (_, checkpoints) = p360::system::build_stores(&config)?;
            match command {
                LedgerCommand::Verify => {
                    let report = p360_consent::checkpoint::verify(&ledger, &*checkpoints).await?;
                    if !report.ok() {
                        bail!("{}", report.summary());
                    }
                    println!("{}", report.summary());
                    Ok(())
                }
                LedgerCommand::Checkpoint => {
                    match p360_consent::checkpoint::write(
                        &ledger,
                        &*checkpoints,
                        chrono::Utc::now(),
                    )
                    .await?
                    {
                        Some(cp) => println!("checkpoint at entry {} ({})", cp.seq, cp.hash),
                        None => println!("the ledger is empty: nothing to checkpoint"),
                    }
                    Ok(())
                }
            }
        }
        Command::Dlq { command } => dlq(config, command).await,
        Command::Users { command } => users(config, command).await,
        Command::Bench { command } => bench(command).await,
    }
}

fn print_demo(accounts: &[p360::demo::DemoAccount], addr: std::net::SocketAddr) {
    let base = format!("http://{addr}");
    eprintln!("\n  p360 demo is running at {base}");
    for a in accounts {
        eprintln!(
            "    {:<14} password {}  ({})",
            a.user.username, a.password, a.user.role
        );
    }
    if let Some(p) = accounts.first().and_then(|a| a.user.patient_id.as_ref()) {
        eprintln!("\n  Sample documents were dropped for the demo patient ({p}). Try:");
        eprintln!(
            "    TOKEN=$(curl -s {base}/auth/token -H 'content-type: application/json' \\\n      -d '{{\"username\":\"demo-patient\",\"password\":\"{}\"}}' | jq -r .access_token)",
            accounts[0].password
        );
        eprintln!(
            "    curl -s {base}/v1/patients/{p}/documents -H \"authorization: Bearer $TOKEN\" | jq"
        );
        eprintln!(
            "    curl -s {base}/v1/patients/{p}/documents -H \"authorization: Bearer $TOKEN\" -F file=@photo.jpg"
        );
        eprintln!(
            "  Their payor history (claims, pharmacy fills, an HIE's labs) was submitted as a feed batch; once enriched:"
        );
        eprintln!(
            "    curl -s {base}/v1/patients/{p}/tips -H \"authorization: Bearer $TOKEN\" | jq"
        );
        eprintln!(
            "    curl -s {base}/v1/patients/{p}/care-gaps -H \"authorization: Bearer $TOKEN\" | jq"
        );
    }
    eprintln!("  Credentials are also in the data directory's demo-credentials.txt.\n");
}

async fn dlq(config: Config, command: DlqCommand) -> anyhow::Result<()> {
    let system = System::build_with(config, Mode::Admin).await?;
    match command {
        DlqCommand::List { queue, limit } => {
            let names = match queue {
                Some(q) => vec![q],
                None => system.state.queues.to_vec(),
            };
            let mut total = 0;
            for q in names {
                for d in system.queue.dead_letters(&q, limit).await? {
                    total += 1;
                    let when = chrono::DateTime::from_timestamp_millis(d.failed_at_ms)
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_else(|| "-".into());
                    println!(
                        "{q}\t{}\tattempts={}\tfailed_at={when}\terror={}",
                        d.id, d.attempts, d.last_error
                    );
                }
            }
            eprintln!("{total} dead letter(s)");
            Ok(())
        }
        DlqCommand::Replay { queue, id } => {
            let n = system.queue.replay(&queue, id.as_deref()).await?;
            eprintln!("replayed {n} message(s) onto {queue}");
            Ok(())
        }
    }
}

async fn users(config: Config, command: UsersCommand) -> anyhow::Result<()> {
    let system = System::build_with(config, Mode::Admin).await?;
    let dir = system
        .directory
        .clone()
        .context("user accounts are managed by the external identity provider in jwks mode")?;
    match command {
        UsersCommand::Add {
            username,
            role,
            password,
            patient_id,
            npi,
            organization,
        } => {
            let role: Role = p360_identity::parse_role(&role)?;
            let profile = match (npi, organization) {
                (Some(npi), Some(organization)) => {
                    anyhow::ensure!(
                        role == Role::Provider,
                        "--npi and --organization are for provider accounts"
                    );
                    p360_identity::users::check_npi(&npi)?;
                    Some(p360_identity::users::ProviderProfile { npi, organization })
                }
                _ => None,
            };
            let password = match password {
                Some(p) => p,
                None => {
                    let mut s = String::new();
                    std::io::stdin().read_to_string(&mut s)?;
                    s.trim_end_matches(['\n', '\r']).to_owned()
                }
            };
            let patient_id = patient_id
                .map(|p| p360_events::PatientId::parse(&p))
                .transpose()?;
            let user = tokio::task::spawn_blocking(move || {
                let user = dir.add(NewUser {
                    username: &username,
                    password: &password,
                    role,
                    patient_id,
                })?;
                if let Some(p) = &profile {
                    dir.set_provider_profile(&user.id, p)?;
                }
                Ok::<_, p360_identity::IdentityError>(user)
            })
            .await??;
            println!(
                "{}\t{}\t{}\t{}",
                user.id,
                user.username,
                user.role,
                user.patient_id.map(|p| p.to_string()).unwrap_or_default()
            );
            Ok(())
        }
        UsersCommand::List => {
            for u in dir.list()? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    u.id,
                    u.username,
                    u.role,
                    u.patient_id.map(|p| p.to_string()).unwrap_or_default(),
                    if u.active { "active" } else { "disabled" }
                );
            }
            Ok(())
        }
        UsersCommand::Token { username } => {
            let user = dir
                .by_username(&username)?
                .with_context(|| format!("no account named {username}"))?;
            if !user.active {
                bail!("account {username} is disabled");
            }
            let issuer = system.issuer.context("no built-in issuer")?;
            println!("{}", issuer.issue(&user.principal())?);
            Ok(())
        }
        UsersCommand::Disable { username } => {
            let user = dir
                .by_username(&username)?
                .with_context(|| format!("no account named {username}"))?;
            dir.disable(&user.id)?;
            eprintln!("disabled {username}");
            Ok(())
        }
        UsersCommand::Delete { username } => {
            let user = dir
                .by_username(&username)?
                .with_context(|| format!("no account named {username}"))?;
            dir.delete(&user.id)?;
            eprintln!("deleted {username} ({})", user.id);
            Ok(())
        }
    }
}

async fn bench(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Queue {
            messages,
            batch,
            consumers,
            no_fsync,
        } => {
            anyhow::ensure!(
                messages > 0 && batch > 0,
                "messages and batch must be positive"
            );
            let cfg = QueueBench {
                messages,
                batch,
                consumers,
                durability: if no_fsync {
                    Durability::Normal
                } else {
                    Durability::Full
                },
            };
            // Next to the data directory's disk by default: the same disk the queue uses.
            let dir = tempfile::Builder::new()
                .prefix("p360-bench-")
                .tempdir_in(".")?;
            eprintln!(
                "bench queue: {messages} messages, batch {batch}, {consumers} consumers, fsync {}",
                if no_fsync { "off" } else { "on" }
            );
            let reference = {
                let (cfg, path) = (cfg.clone(), dir.path().to_path_buf());
                tokio::task::spawn_blocking(move || run_reference(&cfg, &path)).await??
            };
            let (queue, group) = run_queue(&cfg, dir.path()).await?;
            println!(
                "{:<34} {:>12} {:>10} {:>10}",
                "", "msg/s", "p50 ms", "p99 ms"
            );
            println!(
                "{:<34} {:>12.0} {:>10.2} {:>10.2}",
                "p360 embedded queue", queue.per_second, queue.p50_ms, queue.p99_ms
            );
            println!(
                "{:<34} {:>12.0} {:>10.2} {:>10.2}",
                "reference: SQLite insert+delete",
                reference.per_second,
                reference.p50_ms,
                reference.p99_ms
            );
            println!(
                "ratio (queue / reference): {:.2}x   group commit: {group:.1} operations per commit",
                queue.per_second / reference.per_second
            );
            Ok(())
        }
        BenchCommand::Ingest {
            observations,
            patients,
            batch,
        } => {
            let dir = tempfile::Builder::new()
                .prefix("p360-bench-")
                .tempdir_in(".")?;
            eprintln!(
                "bench ingest: {observations} manual observations, {patients} patients, fsync on"
            );
            let cfg = p360::bench::ingest::IngestBench {
                observations,
                patients,
                batch,
            };
            let r = p360::bench::ingest::run(&cfg, dir.path()).await?;
            println!(
                "{:<44} {:>10} {:>10} {:>10}",
                "", "facts/s", "p50 ms", "p99 ms"
            );
            println!(
                "{:<44} {:>10.0} {:>10.1} {:>10.1}",
                "p360 pipeline, event in → visible in graph",
                r.pipeline.per_second,
                r.pipeline.p50_ms,
                r.pipeline.p99_ms
            );
            println!(
                "{:<44} {:>10.0}",
                "reference: Oxigraph bulk loader, same triples", r.reference.per_second
            );
            println!(
                "ratio (pipeline / bulk loader): {:.2}x   {} triples, {:.1} events per graph commit",
                r.pipeline.per_second / r.reference.per_second,
                r.triples,
                r.events_per_commit
            );
            println!(
                "graph: {:.1} s; lake holds every row after {:.1} s (flush interval 5 s)",
                r.pipeline.seconds, r.lake_seconds
            );
            println!(
                "before the clock: entry objects stored at {:.0}/s (one file each, as the API does)",
                r.objects_per_second
            );
            Ok(())
        }
        BenchCommand::Enrich { set, lines, jobs } => {
            let tmp = tempfile::tempdir()?;
            let set = match set {
                Some(s) => s,
                // ~10.6 feed lines per member with the bench profile (roster not counted).
                None => {
                    p360::bench::matching::generate(tmp.path(), lines.div_ceil(10).max(10), 12)?
                }
            };
            p360::bench::enrich::run(&set, jobs).await
        }
        BenchCommand::Insights {
            members,
            seed,
            rounds,
            python,
        } => {
            let dir = tempfile::tempdir()?;
            let cfg = p360::bench::insights::InsightsBench {
                members,
                seed,
                rounds,
                python,
            };
            p360::bench::insights::run(&cfg, dir.path()).await
        }
        BenchCommand::Match {
            set,
            generate,
            jobs,
            python,
        } => {
            let tmp = tempfile::tempdir()?;
            let set = match generate {
                Some(n) => p360::bench::matching::generate(tmp.path(), n, 11)?,
                None => set,
            };
            p360::bench::matching::run(&set, jobs, &python)
        }
        BenchCommand::Extract {
            dir,
            rounds,
            workers,
        } => {
            let workers = workers.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            });
            let r = p360::bench::extract::run(&dir, rounds.max(1), workers).await?;
            eprintln!(
                "bench extract: {} pages ({} words read), {} engines / CLI processes",
                r.pages, r.words, r.workers
            );
            let ours = r.pages as f64 / r.ours_seconds;
            let cli = r.pages as f64 / r.cli_seconds;
            println!("{:<44} {:>8} {:>10}", "", "pages/s", "s/page");
            println!(
                "{:<44} {:>8.2} {:>10.2}",
                "p360 OCR (normalise + prepare + OCR + re-read)",
                ours,
                r.ours_seconds / r.pages as f64
            );
            println!(
                "{:<44} {:>8.2} {:>10.2}",
                "tesseract CLI (reference)",
                cli,
                r.cli_seconds / r.pages as f64
            );
            println!(
                "ratio: p360 OCR / CLI pages/s = {:.2}x (higher is better)",
                ours / cli
            );
            println!();
            println!("{:<44} {:>10} {:>8}", "time per stage", "s/page", "share");
            let cpu = r.ours_seconds * r.workers as f64;
            let per_page = |s: f64| s / r.pages as f64;
            for (step, seconds) in &r.steps {
                println!(
                    "{:<44} {:>10.3} {:>7.0}%",
                    format!("  {step} (CPU, of {} engines)", r.workers),
                    per_page(*seconds),
                    100.0 * seconds / cpu.max(1e-9)
                );
            }
            println!(
                "{:<44} {:>10.4}",
                "  layout: reading order (one core)",
                per_page(r.layout_seconds)
            );
            println!(
                "{:<44} {:>10.4}",
                "  clinical NLP (one core)",
                per_page(r.nlp_seconds)
            );
            Ok(())
        }
        BenchCommand::Read {
            facts,
            rounds,
            clients,
        } => {
            let dir = tempfile::Builder::new()
                .prefix("p360-bench-")
                .tempdir_in(".")?;
            let cfg = p360::bench::read::ReadBench {
                facts,
                rounds: rounds.max(1),
                concurrency: clients,
            };
            let (stored, rows) = p360::bench::read::run(&cfg, dir.path()).await?;
            eprintln!("bench read: one patient with {stored} facts, full record per read");
            println!(
                "{:>7}  {:>22} {:>22} {:>22} {:>8} {:>8}",
                "clients",
                "owner p50/p99 ms",
                "provider p50/p99 ms",
                "CONSTRUCT p50/p99 ms",
                "consent",
                "owner"
            );
            for r in &rows {
                println!(
                    "{:>7}  {:>10.1} /{:>10.1} {:>10.1} /{:>10.1} {:>10.1} /{:>10.1} {:>7.2}x {:>7.2}x",
                    r.clients,
                    r.everything.p50_ms,
                    r.everything.p99_ms,
                    r.granted.p50_ms,
                    r.granted.p99_ms,
                    r.construct.p50_ms,
                    r.construct.p99_ms,
                    r.granted.p50_ms / r.everything.p50_ms,
                    r.everything.p50_ms / r.construct.p50_ms
                );
            }
            for r in &rows {
                let clients = if r.clients == 1 { "client" } else { "clients" };
                println!(
                    "consent overhead p50 {} {clients}: {:.2}x (provider under a grant / owner)",
                    r.clients,
                    r.granted.p50_ms / r.everything.p50_ms
                );
            }
            for r in &rows {
                let clients = if r.clients == 1 { "client" } else { "clients" };
                println!(
                    "owner path p50 {} {clients}: {:.2}x raw SPARQL CONSTRUCT",
                    r.clients,
                    r.everything.p50_ms / r.construct.p50_ms
                );
            }
            println!("ratios of p50 latencies, same run (lower is better; 1.00x = free)");
            Ok(())
        }
    }
}
