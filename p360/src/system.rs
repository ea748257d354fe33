//! Wiring: builds every port's adapter from the configuration, the stages, and the API state,
//! then runs them. The only place that knows which runtime and which adapters are in use.

use crate::config::{Config, DurabilityConfig, GraphKind, IdentityMode, QueueKind, StoreKind};
use anyhow::{Context, bail};
use object_store::ObjectStore;
use p360_api::AppState;
use p360_clock::SharedClock;
use p360_identity::issuer::Issuer;
use p360_identity::users::Directory;
use p360_identity::verify::{JwksSource, Verifier, VerifierConfig};
use p360_ingest::drop_folder::DropFolder;
use p360_ingest::{ContentLimits, DocumentRegister, IngestService, RegisterStage};
use p360_queue::embedded::{Durability, EmbeddedQueue};
use p360_queue::{Publisher, Queue, QueuePublisher, Routes};
use p360_runtime::local::{RunnerConfig, Wiring};
use p360_runtime::{RunnerMetrics, Stage};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Name of the queue fed by the S3 drop bucket's notifications.
pub const S3_DROP_QUEUE: &str = "s3-drop";

/// The assembled system.
pub struct System {
    pub config: Config,
    pub graph: Arc<dyn p360_graph::GraphStore>,
    pub queue: Arc<dyn Queue>,
    pub publisher: Arc<dyn Publisher>,
    pub stages: Vec<Arc<dyn Stage>>,
    pub metrics: RunnerMetrics,
    pub register: DocumentRegister,
    pub ingest: IngestService,
    pub issuer: Option<Arc<Issuer>>,
    pub directory: Option<Directory>,
    pub state: AppState,
    /// Where the access ledger's head is checkpointed.
    pub checkpoints: Arc<dyn ObjectStore>,
    pub clock: SharedClock,
    /// The object store (documents, facts, feed batches, the lake).
    pub objects: Arc<dyn ObjectStore>,
    drop_store: Option<Arc<dyn ObjectStore>>,
}

/// What the process will do with the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Run stages and the API: open every store for writing.
    Run,
    /// Admin commands (`dlq`, `users`, stages that do not read the graph) beside a running
    /// server: the embedded graph is not opened (one process owns it; see `NotOpened`).
    Admin,
}

impl System {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with(config, Mode::Run).await
    }

    pub async fn build_with(config: Config, mode: Mode) -> anyhow::Result<Self> {
        Self::build_at(config, mode, p360_clock::system()).await
    }

    /// Builds the system on `clock` (tests pass a clock they move forward).
    pub async fn build_at(config: Config, mode: Mode, clock: SharedClock) -> anyhow::Result<Self> {
        let data = &config.data_dir;
        std::fs::create_dir_all(data)
            .with_context(|| format!("creating the data directory {}", data.display()))?;

        let register = DocumentRegister::open(&data.join("documents.db"))?;
        let insights = p360_insights_stage::InsightsStore::open(&data.join("insights.db"))?;
        let store = build_store(&config)?;
        if mode == Mode::Run && config.store.kind == StoreKind::Local {
            let root = config.data_dir.join("objects");
            match sweep_staging_files(&root, STAGING_MIN_AGE) {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "removed staging files of interrupted writes"),
                Err(e) => tracing::warn!(error = %e, "staging file sweep failed"),
            }
        }
        let graph = build_graph(&config, mode).await?;
        let pseudonyms = {
            use p360_sink::lake::pseudonym::Pseudonymizer;
            let path = config.pseudonym_key_path();
            let key = p360_identity::secret_file::load_or_create(&path, || {
                Ok(Pseudonymizer::generate_hex().into_bytes())
            })
            .with_context(|| format!("reading the pseudonym key {}", path.display()))?;
            Pseudonymizer::from_hex(&String::from_utf8_lossy(&key))
                .with_context(|| format!("pseudonym key file {}", path.display()))?
        };
        let lake = p360_sink::LakeConfig {
            prefix: config.lake.prefix.clone(),
            flush_interval: Duration::from_millis(config.lake.flush_interval_ms.max(1)),
            max_rows: config.lake.max_rows.max(1),
            compact_interval: (config.lake.compact_interval_s > 0)
                .then(|| Duration::from_secs(config.lake.compact_interval_s)),
        };
        let (consent, ledger) = build_consent(&config).await?;
        let consent = consent.with_clock(clock.clone());
        let checkpoints = build_checkpoint_store(&config, &store)?;
        let enrich_metrics = p360_enrich::stage::EnrichMetrics::default();
        let stages: Vec<Arc<dyn Stage>> = vec![
            Arc::new(RegisterStage::new(register.clone(), store.clone())),
            Arc::new(build_extract(&config, store.clone(), register.clone()).await?),
            Arc::new(
                p360_enrich::stage::EnrichStage::new(
                    store.clone(),
                    std::thread::available_parallelism().map_or(1, |n| n.get()),
                )
                .with_metrics(enrich_metrics.clone())
                .with_work_root(config.data_dir.join("work/enrich")),
            ),
            Arc::new(p360_devices::DevicesStage::new(store.clone())),
            Arc::new(p360_sink::GraphWriter::new(graph.clone(), store.clone())),
            Arc::new(
                p360_sink::LakeSink::new(graph.clone(), store.clone(), pseudonyms, lake)
                    .with_consent(consent.store().clone()),
            ),
            Arc::new(p360_insights_stage::InsightsStage::new(
                graph.clone(),
                store.clone(),
                consent.store().clone(),
                insights.clone(),
                clock.clone(),
            )),
        ];

        let queue = build_queue(&config).await?;
        let policy = config.queue.policy();
        let mut routes = Routes::new();
        let mut queues = Vec::new();
        for stage in &stages {
            queue.declare(stage.name(), policy.clone()).await?;
            queues.push(stage.name().to_owned());
            for t in stage.subscribes() {
                routes.subscribe(*t, stage.name());
            }
        }
        let drop_store = build_drop_store(&config)?;
        if drop_store.is_some() {
            queue.declare(S3_DROP_QUEUE, policy.clone()).await?;
            queues.push(S3_DROP_QUEUE.to_owned());
        }
        let publisher = build_publisher(&config, queue.clone(), routes).await?;

        let limits = ContentLimits {
            max_bytes: config.api.max_upload_bytes,
            ..ContentLimits::default()
        };
        let ingest = IngestService::new(store.clone(), publisher.clone(), limits);

        let (issuer, directory, verifier) = build_identity(&config, &clock)?;

        let mut registry = Registry::with_prefix("p360");
        let metrics = RunnerMetrics::register(&mut registry);
        enrich_metrics.register(&mut registry);
        let queue_depth = p360_api::ops::QueueDepth::default();
        registry.register(
            "queue_messages",
            "Messages per queue and state (ready, in_flight, delayed, dead)",
            queue_depth.clone(),
        );

        let state = AppState {
            verifier: Arc::new(verifier),
            issuer: issuer.clone(),
            directory: directory.clone(),
            ingest: ingest.clone(),
            register: register.clone(),
            publisher: publisher.clone(),
            graph: graph.clone(),
            queue: queue.clone(),
            queues: Arc::new(queues),
            registry: Arc::new(registry),
            queue_depth,
            login_limiter: Arc::default(),
            snapshots: Arc::default(),
            categories: Arc::default(),
            consent,
            ledger,
            grant_limits: p360_consent::GrantLimits {
                default_days: config.consent.default_days.max(1),
                max_days: config.consent.max_days.max(1),
                break_glass_hours: config.consent.break_glass_hours.max(1),
            },
            break_glass: p360_consent::BreakGlassPolicy {
                mode: config.consent.break_glass,
                per_day: config.consent.break_glass_per_day,
            },
            clock: clock.clone(),
            notified: Arc::default(),
            insights: Some(insights),
            dashboards: build_dashboards(&config, &clock)?,
        };
        Ok(Self {
            config,
            graph,
            queue,
            publisher,
            stages,
            metrics,
            register,
            ingest,
            issuer,
            directory,
            state,
            checkpoints,
            clock,
            objects: store.clone(),
            drop_store,
        })
    }

    pub fn stage(&self, name: &str) -> Option<Arc<dyn Stage>> {
        self.stages.iter().find(|s| s.name() == name).cloned()
    }

    fn runner_config(&self, stage: &str) -> RunnerConfig {
        let s = match stage {
            "register" => &self.config.stages.register,
            "extract" => &self.config.stages.extract,
            "graph-writer" => &self.config.stages.graph_writer,
            "lake-sink" => &self.config.stages.lake_sink,
            "enrich" => &self.config.stages.enrich,
            _ => &Default::default(),
        };
        RunnerConfig {
            concurrency: s.concurrency,
            visibility: Duration::from_secs(s.visibility_secs.max(1)),
            ..RunnerConfig::default()
        }
    }

    fn wiring(&self) -> Wiring {
        Wiring {
            queue: self.queue.clone(),
            publisher: self.publisher.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// Starts the named stages' runners; returns their join handles.
    pub fn spawn_stages(
        &self,
        names: &[&str],
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
        let mut handles = Vec::new();
        for name in names {
            let Some(stage) = self.stage(name) else {
                let known: Vec<_> = self.stages.iter().map(|s| s.name()).collect();
                bail!("unknown stage '{name}'; stages: {}", known.join(", "));
            };
            handles.push(tokio::spawn(p360_runtime::local::run(
                stage,
                self.wiring(),
                self.runner_config(name),
                shutdown.clone(),
            )));
        }
        Ok(handles)
    }

    /// Starts the sources: the drop folder and, when configured, the S3 drop.
    pub fn spawn_sources(&self, shutdown: &CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
        let mut handles = Vec::new();
        if self.config.drop_folder.enabled {
            let folder = DropFolder::new(
                self.config.drop_path(),
                self.ingest.clone(),
                Duration::from_millis(self.config.drop_folder.settle_ms),
            );
            handles.push(tokio::spawn(folder.run(
                Duration::from_millis(self.config.drop_folder.interval_ms.max(50)),
                shutdown.clone(),
            )));
        }
        handles.push(tokio::spawn(mirror_ledger(
            self.state.ledger.clone(),
            self.publisher.clone(),
            self.clock.clone(),
            shutdown.clone(),
        )));
        handles.push(tokio::spawn(checkpoint_ledger(
            self.state.ledger.clone(),
            self.checkpoints.clone(),
            self.clock.clone(),
            Duration::from_secs(self.config.consent.checkpoint_secs.max(1)),
            shutdown.clone(),
        )));
        handles.push(tokio::spawn(watch_feeds(
            self.objects.clone(),
            self.publisher.clone(),
            Duration::from_millis(self.config.drop_folder.interval_ms.max(50)),
            shutdown.clone(),
        )));
        if let Some(drop_store) = &self.drop_store {
            let source = p360_ingest::s3_drop::S3Drop::new(
                drop_store.clone(),
                self.config.store.drop_prefix.clone(),
                self.ingest.clone(),
                self.queue.clone(),
                S3_DROP_QUEUE,
            );
            handles.push(tokio::spawn(source.run(shutdown.clone())));
        }
        handles
    }

    /// `p360 serve`: the API, every stage and every source, until `shutdown`.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let names: Vec<&str> = self.stages.iter().map(|s| s.name()).collect();
        let mut handles = self.spawn_stages(&names, &shutdown)?;
        handles.extend(self.spawn_sources(&shutdown));
        let app = p360_api::router(self.state.clone());
        tracing::info!(addr = %listener.local_addr()?, "api listening");
        let token = shutdown.clone();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await
            .context("api server")?;
        for h in handles {
            let _ = h.await;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Announces payor batches whose manifest has landed under `feeds/` (FeedBatchReceived, one
/// per batch and content), then marks them received. A crash between the two re-announces the
/// batch with the same event id, which the queue and the stages absorb.
async fn watch_feeds(
    objects: Arc<dyn object_store::ObjectStore>,
    publisher: Arc<dyn Publisher>,
    every: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let pending = match p360_enrich::intake::pending(&*objects).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "listing feed batches failed");
                continue;
            }
        };
        for (id, batch) in pending {
            let envelope = p360_events::Envelope::new(
                id,
                "/p360/feeds",
                p360_events::Event::FeedBatchReceived(batch.clone()),
            );
            match publisher.publish(&[envelope]).await {
                Ok(()) => {
                    if let Err(e) = p360_enrich::intake::mark_received(&*objects, &batch).await {
                        tracing::warn!(batch_id = %batch.batch_id, error = %e, "marking a feed batch received failed");
                    }
                    tracing::info!(batch_id = %batch.batch_id, event_id = %id, "feed batch received");
                }
                Err(e) => {
                    tracing::warn!(batch_id = %batch.batch_id, error = %e, "announcing a feed batch failed")
                }
            }
        }
        publish_decisions(&*objects, &*publisher).await;
    }
}

/// Publishes the events of review decisions and unlinks that were recorded but not (yet)
/// published: made by `p360 feeds` beside the server, or cut by a crash or a failed publish.
/// Their event ids derive from the decision, so a second publication applies once.
async fn publish_decisions(objects: &dyn object_store::ObjectStore, publisher: &dyn Publisher) {
    let pending = match p360_enrich::decisions::pending(objects, chrono::Utc::now()).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "reading the feed decision outbox failed");
            return;
        }
    };
    for (decision, envelope) in pending {
        match publisher.publish(&[envelope]).await {
            Ok(()) => {
                if let Err(e) = p360_enrich::decisions::sent(objects, &decision).await {
                    tracing::warn!(batch_id = %decision.batch_id, identity = decision.identity, error = %e, "marking a feed decision sent failed");
                } else {
                    tracing::info!(batch_id = %decision.batch_id, identity = decision.identity, "feed decision published");
                }
            }
            Err(e) => {
                tracing::warn!(batch_id = %decision.batch_id, identity = decision.identity, error = %e, "publishing a feed decision failed")
            }
        }
    }
}

/// Sends the access-ledger entries whose own publish failed (or was cut by a crash) to the
/// lake, every few seconds: the ledger is the outbox.
async fn mirror_ledger(
    ledger: p360_consent::ledger::Ledger,
    publisher: Arc<dyn Publisher>,
    clock: SharedClock,
    shutdown: CancellationToken,
) {
    const EVERY: Duration = Duration::from_secs(5);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
        let cutoff = clock.now() - chrono::Duration::seconds(10);
        let l = ledger.clone();
        let pending = match tokio::task::spawn_blocking(move || l.unpublished(cutoff, 500)).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reading the ledger outbox failed");
                continue;
            }
            Err(_) => continue,
        };
        for entry in pending {
            let sent = match p360_consent::ledger::access_event(&entry) {
                Ok(event) => publisher.publish(&[event]).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match sent {
                Ok(()) => {
                    let l = ledger.clone();
                    let seq = entry.seq;
                    let _ = tokio::task::spawn_blocking(move || l.mark_published(seq)).await;
                    tracing::info!(seq, "access mirrored to the lake by the outbox");
                }
                Err(e) => {
                    tracing::warn!(error = %e, seq = entry.seq, "access not mirrored yet");
                    break;
                }
            }
        }
    }
}

/// Checkpoints the ledger's head every `every` when it moved, and once more at shutdown, so
/// that `p360 ledger verify` can tell a cut of the newest entries from a quiet ledger.
async fn checkpoint_ledger(
    ledger: p360_consent::ledger::Ledger,
    store: Arc<dyn ObjectStore>,
    clock: SharedClock,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut last: Option<u64> = None;
    loop {
        let stopping = tokio::select! {
            () = shutdown.cancelled() => true,
            () = tokio::time::sleep(every) => false,
        };
        let l = ledger.clone();
        let head = match tokio::task::spawn_blocking(move || l.head()).await {
            Ok(Ok(h)) => h.map(|(seq, _)| seq),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reading the ledger head failed");
                None
            }
            Err(_) => None,
        };
        if head.is_some() && head != last {
            match p360_consent::checkpoint::write(&ledger, &*store, clock.now()).await {
                Ok(cp) => last = cp.map(|c| c.seq),
                Err(e) => tracing::warn!(error = %e, "ledger checkpoint not written"),
            }
        }
        if stopping {
            return;
        }
    }
}

/// Where ledger checkpoints go: their own (Object Lock) bucket when configured, else the
/// main object store.
pub fn build_checkpoint_store(
    config: &Config,
    main: &Arc<dyn ObjectStore>,
) -> anyhow::Result<Arc<dyn ObjectStore>> {
    match &config.consent.checkpoint_bucket {
        None => Ok(main.clone()),
        #[cfg(feature = "aws")]
        Some(bucket) => crate::aws::s3_locked_store(&config.aws, bucket),
        #[cfg(not(feature = "aws"))]
        Some(_) => bail!("consent.checkpoint_bucket needs a build with the `aws` feature"),
    }
}

/// The main object store and the checkpoint store, for admin commands (`p360 ledger`).
pub fn build_stores(
    config: &Config,
) -> anyhow::Result<(Arc<dyn ObjectStore>, Arc<dyn ObjectStore>)> {
    let main = build_store(config)?;
    let checkpoints = build_checkpoint_store(config, &main)?;
    Ok((main, checkpoints))
}

/// The consent store and decision point, and the access ledger with its chaining key.
pub async fn build_consent(
    config: &Config,
) -> anyhow::Result<(p360_consent::Pdp, p360_consent::ledger::Ledger)> {
    use crate::config::ConsentStoreKind;
    let store: Arc<dyn p360_consent::ConsentStore> = match config.consent.store {
        ConsentStoreKind::Sqlite => {
            let path = config.data_dir.join("consent.db");
            Arc::new(
                p360_consent::SqliteConsentStore::open(&path)
                    .with_context(|| format!("opening the consent store {}", path.display()))?,
            )
        }
        #[cfg(feature = "aws")]
        ConsentStoreKind::Dynamodb => {
            Arc::new(p360_consent::dynamodb::DynamoConsentStore::from_conf(
                &crate::aws::sdk_config(&config.aws).await,
                config.consent.dynamodb_table.clone(),
            ))
        }
        #[cfg(not(feature = "aws"))]
        ConsentStoreKind::Dynamodb => {
            bail!("consent.store = \"dynamodb\" needs a build with the `aws` feature")
        }
    };
    let key_path = config.ledger_key_path();
    let key = p360_identity::secret_file::load_or_create(&key_path, || {
        Ok(rand::random::<[u8; 32]>().to_vec())
    })
    .with_context(|| format!("reading the ledger key {}", key_path.display()))?;
    let ledger_path = config.data_dir.join("ledger.db");
    let ledger = p360_consent::ledger::Ledger::open(&ledger_path, key)
        .with_context(|| format!("opening the access ledger {}", ledger_path.display()))?;
    Ok((p360_consent::Pdp::new(store), ledger))
}

/// The extract stage with the OCR engine and clinical NLP the configuration names.
async fn build_extract(
    config: &Config,
    store: Arc<dyn ObjectStore>,
    register: DocumentRegister,
) -> anyhow::Result<p360_extract::stage::ExtractStage> {
    use crate::config::{NlpEngine, OcrEngine};
    use p360_extract::ocr::Ocr;
    let ocr: Arc<dyn Ocr> = match config.ocr.engine {
        OcrEngine::Tesseract => Arc::new(p360_extract::ocr::tesseract::LazyTesseract::new(
            p360_extract::ocr::tesseract::TesseractConfig {
                workers: config.stages.extract.concurrency.max(1),
                language: config.ocr.language.clone(),
                datapath: config.ocr.datapath.clone(),
            },
        )),
        #[cfg(feature = "aws")]
        OcrEngine::Textract => {
            use p360_extract::ocr::textract::{TextractMode, TextractOcr};
            let mode = match config.ocr.textract_mode {
                crate::config::TextractModeConfig::Analyze => TextractMode::Analyze,
                crate::config::TextractModeConfig::Detect => TextractMode::Detect,
            };
            Arc::new(TextractOcr::from_conf(
                &crate::aws::sdk_config(&config.aws).await,
                mode,
            ))
        }
        #[cfg(not(feature = "aws"))]
        OcrEngine::Textract => {
            bail!("ocr.engine = \"textract\" needs a build with the `aws` feature")
        }
    };
    let stage = p360_extract::stage::ExtractStage::new(store, ocr, register);
    Ok(match config.ocr.nlp {
        NlpEngine::Builtin => stage,
        #[cfg(feature = "aws")]
        NlpEngine::ComprehendMedical => stage.with_nlp(Arc::new(
            p360_extract::comprehend::ComprehendMedical::from_conf(
                &crate::aws::sdk_config(&config.aws).await,
            ),
        )),
        #[cfg(not(feature = "aws"))]
        NlpEngine::ComprehendMedical => {
            bail!("ocr.nlp = \"comprehend-medical\" needs a build with the `aws` feature")
        }
    })
}

async fn build_queue(config: &Config) -> anyhow::Result<Arc<dyn Queue>> {
    match config.queue.kind {
        QueueKind::Embedded => {
            let durability = match config.queue.durability {
                DurabilityConfig::Full => Durability::Full,
                DurabilityConfig::Normal => Durability::Normal,
            };
            let path = config.data_dir.join("queue.db");
            Ok(Arc::new(
                EmbeddedQueue::open(&path, durability)
                    .with_context(|| format!("opening the queue {}", path.display()))?,
            ))
        }
        #[cfg(feature = "aws")]
        QueueKind::Sqs => Ok(Arc::new(p360_queue::sqs::SqsQueue::from_conf(
            &crate::aws::sdk_config(&config.aws).await,
            config.queue.sqs_prefix.clone(),
        ))),
        #[cfg(not(feature = "aws"))]
        QueueKind::Sqs => bail!("queue.kind = \"sqs\" needs a build with the `aws` feature"),
    }
}

async fn build_publisher(
    config: &Config,
    queue: Arc<dyn Queue>,
    routes: Routes,
) -> anyhow::Result<Arc<dyn Publisher>> {
    match &config.queue.eventbridge_bus {
        None => Ok(Arc::new(QueuePublisher::new(queue, routes))),
        #[cfg(feature = "aws")]
        Some(bus) => Ok(Arc::new(
            p360_queue::eventbridge::EventBridgePublisher::from_conf(
                &crate::aws::sdk_config(&config.aws).await,
                bus.clone(),
            ),
        )),
        #[cfg(not(feature = "aws"))]
        Some(_) => bail!("queue.eventbridge_bus needs a build with the `aws` feature"),
    }
}

/// Staging files younger than this may belong to a write in progress in another process.
const STAGING_MIN_AGE: Duration = Duration::from_secs(3600);

/// Removes the `<key>#<n>` staging files that object_store's local store leaves when a write is
/// cut short (a crash between writing and renaming into place). Readers never see them; this
/// only returns their space. Returns how many were removed.
pub fn sweep_staging_files(root: &std::path::Path, min_age: Duration) -> std::io::Result<usize> {
    let mut removed = 0;
    let mut dirs = vec![root.to_path_buf()];
    let now = std::time::SystemTime::now();
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push(entry.path());
                continue;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let staging = name
                .rsplit_once('#')
                .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            let old = entry
                .metadata()?
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age >= min_age);
            if kind.is_file() && staging && old {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

fn build_store(config: &Config) -> anyhow::Result<Arc<dyn ObjectStore>> {
    match config.store.kind {
        StoreKind::Local => {
            let root = config.data_dir.join("objects");
            std::fs::create_dir_all(&root)
                .with_context(|| format!("creating {}", root.display()))?;
            Ok(Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(&root)?,
            ))
        }
        #[cfg(feature = "aws")]
        StoreKind::S3 => {
            let bucket = config
                .store
                .bucket
                .as_deref()
                .context("store.kind = \"s3\" needs store.bucket")?;
            crate::aws::s3_store(&config.aws, bucket)
        }
        #[cfg(not(feature = "aws"))]
        StoreKind::S3 => bail!("store.kind = \"s3\" needs a build with the `aws` feature"),
    }
}

async fn build_graph(
    config: &Config,
    mode: Mode,
) -> anyhow::Result<Arc<dyn p360_graph::GraphStore>> {
    let path = config.data_dir.join("graph");
    match config.graph.kind {
        GraphKind::Oxigraph if mode == Mode::Admin => Ok(Arc::new(p360_graph::embedded::NotOpened)),
        GraphKind::Oxigraph => Ok(Arc::new(p360_graph::embedded::OxigraphStore::open(&path)?)),
        GraphKind::Sparql => {
            let query = config
                .graph
                .query_url
                .clone()
                .context("graph.kind = \"sparql\" needs graph.query_url")?;
            let update = config
                .graph
                .update_url
                .clone()
                .unwrap_or_else(|| query.clone());
            let store = p360_graph::remote::RemoteStore::new(query, update);
            if !config.graph.sigv4 {
                return Ok(Arc::new(store));
            }
            #[cfg(feature = "aws")]
            {
                let sdk = crate::aws::sdk_config(&config.aws).await;
                let credentials = sdk
                    .credentials_provider()
                    .context("graph.sigv4 needs AWS credentials (none found)")?;
                Ok(Arc::new(store.with_sigv4(
                    p360_graph::remote::sigv4::Signer::new(
                        credentials,
                        &config.aws.region,
                        p360_graph::remote::sigv4::NEPTUNE,
                    ),
                )))
            }
            #[cfg(not(feature = "aws"))]
            anyhow::bail!("graph.sigv4 needs a build with --features aws")
        }
    }
}

fn build_drop_store(config: &Config) -> anyhow::Result<Option<Arc<dyn ObjectStore>>> {
    match &config.store.drop_bucket {
        None => Ok(None),
        #[cfg(feature = "aws")]
        Some(bucket) => Ok(Some(crate::aws::s3_store(&config.aws, bucket)?)),
        #[cfg(not(feature = "aws"))]
        Some(_) => bail!("store.drop_bucket needs a build with the `aws` feature"),
    }
}

type Identity = (Option<Arc<Issuer>>, Option<Directory>, Verifier);

fn build_identity(config: &Config, clock: &SharedClock) -> anyhow::Result<Identity> {
    let id = &config.identity;
    match id.mode {
        IdentityMode::Builtin => {
            let dir = config.data_dir.join("identity");
            let issuer = Arc::new(
                Issuer::load_or_create(
                    &dir.join("signing-key.pem"),
                    config.api.public_url(),
                    id.audience.clone(),
                    Duration::from_secs(id.token_ttl_secs),
                )?
                .with_clock(clock.clone()),
            );
            let directory = Directory::open(&dir.join("users.db"))?;
            let verifier = Verifier::new(VerifierConfig {
                issuer: issuer.issuer().to_owned(),
                audience: issuer.audience().to_owned(),
                algorithms: vec![jsonwebtoken::Algorithm::ES256],
                jwks: JwksSource::Static(serde_json::from_value(issuer.jwks())?),
                leeway: Duration::from_secs(30),
            })
            .with_clock(clock.clone());
            Ok((Some(issuer), Some(directory), verifier))
        }
        IdentityMode::Jwks => {
            let issuer = id
                .issuer
                .clone()
                .context("identity.mode = \"jwks\" needs identity.issuer")?;
            let url = id.jwks_url.clone().unwrap_or_else(|| {
                format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/'))
            });
            let algorithms = id
                .algorithms
                .iter()
                .map(|a| {
                    a.parse::<jsonwebtoken::Algorithm>()
                        .map_err(|_| anyhow::anyhow!("identity.algorithms: unknown algorithm {a}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok((
                None,
                None,
                Verifier::new(VerifierConfig {
                    issuer,
                    audience: id.audience.clone(),
                    algorithms,
                    jwks: JwksSource::Url(url),
                    leeway: Duration::from_secs(30),
                })
                .with_clock(clock.clone()),
            ))
        }
    }
}

/// The dashboards' SQL engine: DataFusion over the local lake. With the lake in S3 the API
/// serves no dashboards (an Athena engine for the same SQL is not built yet).
fn build_dashboards(
    config: &Config,
    clock: &SharedClock,
) -> anyhow::Result<Option<Arc<dyn p360_insights::dashboards::SqlEngine>>> {
    if config.store.kind != StoreKind::Local {
        return Ok(None);
    }
    let lake = config
        .data_dir
        .join("objects")
        .join(config.lake.prefix.trim_matches('/'));
    let engine = p360_dashboards::LakeSql::open(&lake, clock.now().date_naive())
        .map_err(|e| anyhow::anyhow!("opening the lake for dashboards: {e}"))?;
    Ok(Some(Arc::new(engine)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_removes_only_old_staging_files() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw/pat-1");
        std::fs::create_dir_all(&raw).unwrap();
        let old = std::time::SystemTime::now() - Duration::from_secs(7200);
        for (name, aged) in [
            ("a.png#3", true),
            ("b.png#12", false),
            ("c.png", true),
            ("d#x.png", true),
        ] {
            let f = std::fs::File::create(raw.join(name)).unwrap();
            if aged {
                f.set_modified(old).unwrap();
            }
        }
        assert_eq!(sweep_staging_files(dir.path(), STAGING_MIN_AGE).unwrap(), 1);
        assert!(!raw.join("a.png#3").exists());
        for kept in ["b.png#12", "c.png", "d#x.png"] {
            assert!(raw.join(kept).exists(), "{kept}");
        }
        assert_eq!(
            sweep_staging_files(&dir.path().join("missing"), STAGING_MIN_AGE).unwrap(),
            0
        );
    }
}
