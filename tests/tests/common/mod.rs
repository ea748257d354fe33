//! Starts the whole system in process on a free port, with its own data directory.
#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use p360::{Config, System};
use p360_identity::Role;
use p360_identity::users::{NewUser, User};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct Sandbox {
    pub base: String,
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub directory: p360_identity::users::Directory,
    pub issuer: Arc<p360_identity::issuer::Issuer>,
    /// The system's clock: tests move it forward to expire grants, sessions and tokens.
    pub clock: Arc<p360_clock::TestClock>,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Sandbox {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        config.api.listen = addr;
        config.queue.durability = p360::config::DurabilityConfig::Normal;
        config.drop_folder.interval_ms = 100;
        config.drop_folder.settle_ms = 0;
        config.lake.flush_interval_ms = 200;
        tweak(&mut config);
        let clock = p360_clock::TestClock::new();
        let system = System::build_at(config.clone(), p360::system::Mode::Run, clock.clone())
            .await
            .unwrap();
        let directory = system.directory.clone().unwrap();
        let issuer = system.issuer.clone().unwrap();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(system.serve(listener, shutdown.clone()));
        Self {
            base: format!("http://{addr}"),
            dir,
            config,
            directory,
            issuer,
            clock,
            http: reqwest::Client::new(),
            shutdown,
            server: Some(server),
        }
    }

    pub fn user(&self, username: &str, role: Role) -> User {
        self.directory
            .add(NewUser {
                username,
                password: "correct horse battery",
                role,
                patient_id: None,
            })
            .unwrap()
    }

    /// Logs in through the API.
    pub async fn login(&self, username: &str) -> String {
        let r = self
            .http
            .post(format!("{}/auth/token", self.base))
            .json(&serde_json::json!({"username": username, "password": "correct horse battery"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<serde_json::Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// GET `path` with `token`; asserts 200 and returns the JSON body.
    pub async fn get_json(&self, path: &str, token: &str) -> serde_json::Value {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    /// The Parquet lake's directory (the local object store's `lake/`).
    pub fn lake_dir(&self) -> std::path::PathBuf {
        self.config.data_dir.join("objects").join("lake")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Polls the patient's document list until `n` documents are registered.
    pub async fn wait_for_documents(
        &self,
        patient: &str,
        token: &str,
        n: usize,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let list: serde_json::Value = self
                .http
                .get(self.url(&format!("/v1/patients/{patient}/documents")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if list["documents"].as_array().map_or(0, Vec::len) >= n {
                return list;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "documents not registered: {list}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(s) = self.server.take() {
            s.await.unwrap().unwrap();
        }
    }
}

pub fn png(width: u32, height: u32, seed: u8) -> Vec<u8> {
    let img = image::GrayImage::from_fn(width, height, |x, y| {
        image::Luma([((x ^ y) as u8).wrapping_add(seed)])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A multipart upload form with one `file` part.
pub fn file(bytes: Vec<u8>, name: &str, mime: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes)
            .file_name(name.to_owned())
            .mime_str(mime)
            .unwrap(),
    )
}

pub fn sample(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../testdata/documents/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn row_json(row: &parquet::record::Row) -> serde_json::Value {
    use parquet::record::Field;
    let mut out = serde_json::Map::new();
    for (name, field) in row.get_column_iter() {
        let v = match field {
            Field::Null => serde_json::Value::Null,
            Field::Str(s) => serde_json::json!(s),
            Field::Double(d) => serde_json::json!(d),
            Field::UInt(u) => serde_json::json!(u),
            Field::ULong(u) => serde_json::json!(u),
            Field::Bool(b) => serde_json::json!(b),
            other => serde_json::json!(other.to_string()),
        };
        out.insert(name.clone(), v);
    }
    serde_json::Value::Object(out)
}

/// Rows of a lake table, read with the parquet crate.
pub fn lake_rows(sb: &Sandbox, table: &str) -> Vec<serde_json::Value> {
    let mut rows = Vec::new();
    let dir = sb.lake_dir().join(table);
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "parquet") {
                let reader = parquet::file::reader::SerializedFileReader::new(
                    std::fs::File::open(&path).unwrap(),
                )
                .unwrap();
                rows.extend(
                    parquet::file::reader::FileReader::get_row_iter(&reader, None)
                        .unwrap()
                        .map(|r| row_json(&r.unwrap())),
                );
            }
        }
    }
    rows
}

pub async fn wait_for_lake_rows(sb: &Sandbox, table: &str, n: usize) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows = lake_rows(sb, table);
        if rows.len() >= n {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{table}: {} rows in the lake, waiting for {n}",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
