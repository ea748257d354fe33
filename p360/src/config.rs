//! Configuration: built-in defaults, then an optional TOML file (`p360.toml`, or `--config`),
//! then environment overrides `P360__SECTION__KEY` (e.g. `P360__API__LISTEN=0.0.0.0:8360`).
//! Every setting has a default, so `p360 serve` runs with no file at all. Unknown keys are
//! errors, so a typo is not silently ignored.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Root of all local state: queue, databases, object store, drop folder, keys.
    pub data_dir: PathBuf,
    pub api: ApiConfig,
    pub identity: IdentityConfig,
    pub queue: QueueConfig,
    pub store: StoreConfig,
    pub graph: GraphConfig,
    pub lake: LakeConfig,
    pub ocr: OcrConfig,
    pub consent: ConsentConfig,
    pub drop_folder: DropFolderConfig,
    pub stages: StagesConfig,
    pub aws: AwsConfig,
}

/// Grants: how long they last by default and at most.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsentConfig {
    /// `sqlite` (embedded, `<data>/consent.db`) or `dynamodb` (feature `aws`).
    pub store: ConsentStoreKind,
    /// With `store = "dynamodb"`: the table (the stack's `ConsentTableName` output).
    pub dynamodb_table: String,
    pub default_days: i64,
    pub max_days: i64,
    /// The key that chains the access ledger (created on first use).
    pub ledger_key_file: Option<PathBuf>,
    /// Who may open a record in an emergency: `off`, `verified-npi` (providers whose profile
    /// has an NPI; the default) or `any-provider`.
    pub break_glass: p360_consent::BreakGlassMode,
    /// Emergency sessions one provider may open in any 24 hours.
    pub break_glass_per_day: u32,
    /// How long an emergency session lasts.
    pub break_glass_hours: i64,
    /// How often the ledger's head is checkpointed to the object store (also at shutdown).
    pub checkpoint_secs: u64,
    /// With the `aws` feature: the S3 bucket (with Object Lock) for ledger checkpoints, the
    /// stack's `LedgerCheckpointBucket` output. Default: the main object store.
    pub checkpoint_bucket: Option<String>,
}

impl Default for ConsentConfig {
    fn default() -> Self {
        let bg = p360_consent::BreakGlassPolicy::default();
        Self {
            store: ConsentStoreKind::Sqlite,
            dynamodb_table: "p360-consent".into(),
            default_days: 90,
            max_days: 365,
            ledger_key_file: None,
            break_glass: bg.mode,
            break_glass_per_day: bg.per_day,
            break_glass_hours: p360_consent::GrantLimits::default().break_glass_hours,
            checkpoint_secs: 60,
            checkpoint_bucket: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentStoreKind {
    Sqlite,
    Dynamodb,
}

/// The OCR engine and clinical NLP of the extract stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OcrConfig {
    pub engine: OcrEngine,
    /// Tesseract language(s), e.g. `eng` or `eng+spa` (Debian: `tesseract-ocr-<lang>`).
    pub language: String,
    /// Directory of `.traineddata` files; default: the library's own.
    pub datapath: Option<String>,
    /// With `engine = "textract"`: `analyze` (AnalyzeDocument, TABLES + FORMS) or `detect`
    /// (DetectDocumentText, cheaper).
    pub textract_mode: TextractModeConfig,
    /// Diagnoses and medications: `builtin` or `comprehend-medical` (feature `aws`).
    pub nlp: NlpEngine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OcrEngine {
    Tesseract,
    Textract,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextractModeConfig {
    Analyze,
    Detect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NlpEngine {
    Builtin,
    ComprehendMedical,
}

impl Default for OcrConfig {
    fn default() -> Self {
        Self {
            engine: OcrEngine::Tesseract,
            language: "eng".into(),
            datapath: None,
            textract_mode: TextractModeConfig::Analyze,
            nlp: NlpEngine::Builtin,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            api: ApiConfig::default(),
            identity: IdentityConfig::default(),
            queue: QueueConfig::default(),
            store: StoreConfig::default(),
            graph: GraphConfig::default(),
            lake: LakeConfig::default(),
            ocr: OcrConfig::default(),
            consent: ConsentConfig::default(),
            drop_folder: DropFolderConfig::default(),
            stages: StagesConfig::default(),
            aws: AwsConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    /// Base URL clients use; the built-in issuer's `iss`. Defaults to `http://<listen>`.
    pub public_url: Option<String>,
    /// Largest accepted document.
    pub max_upload_bytes: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8360)),
            public_url: None,
            max_upload_bytes: 25 * 1024 * 1024,
        }
    }
}

impl ApiConfig {
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IdentityMode {
    /// The built-in issuer and user directory (local mode).
    Builtin,
    /// An external OIDC provider (Amazon Cognito) verified through its JWKS.
    Jwks,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    pub mode: IdentityMode,
    pub audience: String,
    pub token_ttl_secs: u64,
    /// `jwks` mode: the expected `iss`, e.g. `https://cognito-idp.<region>.amazonaws.com/<pool>`.
    pub issuer: Option<String>,
    /// `jwks` mode: defaults to `<issuer>/.well-known/jwks.json`.
    pub jwks_url: Option<String>,
    /// `jwks` mode: accepted algorithms (Cognito signs RS256).
    pub algorithms: Vec<String>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            mode: IdentityMode::Builtin,
            audience: "p360".into(),
            token_ttl_secs: 3600,
            issuer: None,
            jwks_url: None,
            algorithms: vec!["RS256".into()],
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum QueueKind {
    Embedded,
    Sqs,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DurabilityConfig {
    /// fsync every commit (survives power loss).
    Full,
    /// survive process crashes only.
    Normal,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    pub kind: QueueKind,
    pub durability: DurabilityConfig,
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// `sqs`: prefix of the queue names of this deployment.
    pub sqs_prefix: String,
    /// `sqs`: publish through this EventBridge bus (fan-out by rules) instead of sending to
    /// the subscribed queues directly.
    pub eventbridge_bus: Option<String>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            kind: QueueKind::Embedded,
            durability: DurabilityConfig::Full,
            max_attempts: 5,
            backoff_base_ms: 1000,
            backoff_max_ms: 300_000,
            sqs_prefix: "p360-".into(),
            eventbridge_bus: None,
        }
    }
}

impl QueueConfig {
    pub fn policy(&self) -> p360_queue::QueuePolicy {
        p360_queue::QueuePolicy {
            max_attempts: self.max_attempts.max(1),
            backoff_base: Duration::from_millis(self.backoff_base_ms),
            backoff_max: Duration::from_millis(self.backoff_max_ms),
            ..p360_queue::QueuePolicy::default()
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// `<data_dir>/objects` on the local filesystem.
    Local,
    S3,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub kind: StoreKind,
    /// `s3`: the bucket of raw documents and the lake.
    pub bucket: Option<String>,
    /// `s3`: the photo-drop bucket (`<drop_prefix>/<patient-id>/…`), whose `ObjectCreated`
    /// notifications arrive on the `s3-drop` queue. Unset: no S3 drop.
    pub drop_bucket: Option<String>,
    pub drop_prefix: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::Local,
            bucket: None,
            drop_bucket: None,
            drop_prefix: "drop".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GraphKind {
    /// Oxigraph in process, RocksDB under `<data_dir>/graph`.
    Oxigraph,
    /// A SPARQL 1.1 Protocol endpoint (Amazon Neptune, Virtuoso…).
    Sparql,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphConfig {
    pub kind: GraphKind,
    /// `sparql`: the query endpoint, e.g. `https://<neptune>:8182/sparql`.
    pub query_url: Option<String>,
    /// `sparql`: the update endpoint (defaults to `query_url`).
    pub update_url: Option<String>,
    /// `sparql`: sign requests with SigV4 (Neptune with IAM database authentication), with the
    /// credentials and region of the `[aws]` section. Needs a build with `--features aws`.
    pub sigv4: bool,
}

impl Default for GraphConfig {
    fn default() -> Self {
        Self {
            kind: GraphKind::Oxigraph,
            query_url: None,
            update_url: None,
            sigv4: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LakeConfig {
    /// Key prefix of the Parquet lake in the object store.
    pub prefix: String,
    /// Longest a graph change waits before it is written.
    pub flush_interval_ms: u64,
    /// A batch is written early once it holds this many changes.
    pub max_rows: usize,
    /// Key of the patient pseudonyms; defaults to `<data_dir>/keys/lake-pseudonym.key`,
    /// created on first use.
    pub pseudonym_key_file: Option<PathBuf>,
    /// How often the lake sink compacts small files (seconds; 0: only after a withdrawal).
    pub compact_interval_s: u64,
}

impl Default for LakeConfig {
    fn default() -> Self {
        Self {
            prefix: "lake".into(),
            flush_interval_ms: 5000,
            // Below the lake-sink's concurrency, so that a full batch is written at once
            // instead of waiting out the interval.
            max_rows: 2000,
            pseudonym_key_file: None,
            compact_interval_s: 3600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DropFolderConfig {
    pub enabled: bool,
    /// Defaults to `<data_dir>/drop`.
    pub path: Option<PathBuf>,
    pub interval_ms: u64,
    /// A file is taken once unchanged for this long.
    pub settle_ms: u64,
}

impl Default for DropFolderConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: None,
            interval_ms: 1000,
            settle_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StageConfig {
    pub concurrency: usize,
    pub visibility_secs: u64,
}

impl Default for StageConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            visibility_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StagesConfig {
    pub register: StageConfig,
    /// Its concurrency is also the number of OCR engines (one per core is the sweet spot).
    pub extract: StageConfig,
    #[serde(rename = "graph-writer")]
    pub graph_writer: StageConfig,
    /// Its concurrency bounds a lake batch: events wait in the buffer until the flush.
    #[serde(rename = "lake-sink")]
    pub lake_sink: StageConfig,
    /// One batch at a time by default: a batch already uses every core to parse and match.
    pub enrich: StageConfig,
}

impl Default for StagesConfig {
    fn default() -> Self {
        Self {
            register: StageConfig::default(),
            extract: StageConfig {
                concurrency: std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1),
                // The runner extends a lease every third of this while a document is being
                // read, so a long PDF keeps it; a short one lets a crashed worker's documents
                // come back within a minute.
                visibility_secs: 60,
            },
            // Events handled at once share a graph transaction (group commit).
            graph_writer: StageConfig {
                concurrency: 128,
                visibility_secs: 60,
            },
            lake_sink: StageConfig {
                concurrency: 2048,
                visibility_secs: 60,
            },
            // The runner extends the lease while a batch runs; a crashed worker's batch comes
            // back within five minutes.
            enrich: StageConfig {
                concurrency: 1,
                visibility_secs: 300,
            },
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfig {
    pub region: String,
    /// An AWS-compatible endpoint (tests: a moto server on 127.0.0.1).
    pub endpoint_url: Option<String>,
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            endpoint_url: None,
        }
    }
}

impl Config {
    /// Loads defaults ← `file` (if given, it must exist; else `./p360.toml` if present) ←
    /// `P360__…` environment variables.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut builder = config::Config::builder();
        match file {
            Some(f) => {
                anyhow::ensure!(f.exists(), "config file {} does not exist", f.display());
                builder = builder.add_source(config::File::from(f));
            }
            None => {
                builder = builder.add_source(config::File::with_name("p360.toml").required(false));
            }
        }
        let built = builder
            .add_source(
                config::Environment::with_prefix("P360")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?;
        let cfg: Config = built
            .try_deserialize()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        Ok(cfg)
    }

    pub fn ledger_key_path(&self) -> PathBuf {
        self.consent
            .ledger_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keys").join("ledger.key"))
    }

    pub fn pseudonym_key_path(&self) -> PathBuf {
        self.lake
            .pseudonym_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keys").join("lake-pseudonym.key"))
    }

    pub fn drop_path(&self) -> PathBuf {
        self.drop_folder
            .path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("drop"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_file() {
        let c = Config::default();
        assert_eq!(c.queue.kind, QueueKind::Embedded);
        assert_eq!(c.api.public_url(), "http://127.0.0.1:8360");
    }

    #[test]
    fn file_values_and_typos() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p360.toml");
        std::fs::write(
            &f,
            "data_dir = \"/tmp/x\"\n[api]\nlisten = \"127.0.0.1:9000\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&f)).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.api.listen.port(), 9000);
        std::fs::write(&f, "[api]\nlisen = \"127.0.0.1:9000\"\n").unwrap();
        let err = Config::load(Some(&f)).unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");
        assert!(Config::load(Some(&dir.path().join("missing.toml"))).is_err());
    }
}
