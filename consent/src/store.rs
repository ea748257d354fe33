//! The consent store port and its embedded adapter (SQLite).
//!
//! Grants are read on every decision, never cached: a revocation or an expiry takes effect on
//! the very next request. Changes are conditional on the grant's version, so a patient's
//! revoke racing an extend cannot both win.

use crate::model::{AnalyticsConsent, Grant, Notification, Scope};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use p360_events::{PatientId, UserId};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    #[error("no grant {0}")]
    NotFound(String),
    /// The grant changed since it was read (or was revoked): read it again and retry.
    #[error("grant {id} changed (now at version {current}); read it again")]
    Conflict { id: String, current: u64 },
    #[error("{0}")]
    Invalid(String),
    #[error("consent store unavailable: {0}")]
    Unavailable(String),
}

pub type Result<T> = std::result::Result<T, ConsentError>;

#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// Stores a new grant (its id must be new).
    async fn create(&self, grant: &Grant) -> Result<()>;
    async fn get(&self, id: &str) -> Result<Option<Grant>>;
    /// A patient's grants, newest first.
    async fn for_patient(&self, patient: &PatientId) -> Result<Vec<Grant>>;
    /// The grants given to a grantee, newest first.
    async fn for_grantee(&self, grantee: &UserId) -> Result<Vec<Grant>>;
    /// The grants between one patient and one grantee (any state), newest first.
    async fn between(&self, patient: &PatientId, grantee: &UserId) -> Result<Vec<Grant>>;
    /// Moves the end; only if the grant is at `version` and not revoked.
    async fn extend(&self, id: &str, version: u64, end: DateTime<Utc>) -> Result<Grant>;
    /// Narrows (or widens) the scope; only if the grant is at `version` and not revoked.
    async fn rescope(&self, id: &str, version: u64, scope: &Scope) -> Result<Grant>;
    /// Revokes; only if the grant is at `version` and not already revoked.
    async fn revoke(&self, id: &str, version: u64, at: DateTime<Utc>) -> Result<Grant>;
    async fn analytics(&self, patient: &PatientId) -> Result<AnalyticsConsent>;
    async fn set_analytics(&self, patient: &PatientId, consent: AnalyticsConsent) -> Result<()>;
    /// Whether the patient refused emergency (break-glass) access to their record.
    async fn break_glass_opt_out(&self, patient: &PatientId) -> Result<bool>;
    async fn set_break_glass_opt_out(&self, patient: &PatientId, opt_out: bool) -> Result<()>;
    /// Stores a notification for the patient (idempotent on its id).
    async fn notify(&self, notification: &Notification) -> Result<()>;
    /// The patient's notifications, newest first.
    async fn notifications(&self, patient: &PatientId, limit: usize) -> Result<Vec<Notification>>;
}

/// The embedded adapter: one SQLite database, grants stored as JSON beside indexed columns.
#[derive(Clone)]
pub struct SqliteConsentStore {
    conn: Arc<Mutex<Connection>>,
}

fn db(e: rusqlite::Error) -> ConsentError {
    ConsentError::Unavailable(format!("sqlite: {e}"))
}

impl SqliteConsentStore {
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| ConsentError::Unavailable(format!("{}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(db)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=10000;
             CREATE TABLE IF NOT EXISTS grants (
                id TEXT PRIMARY KEY, patient TEXT NOT NULL, grantee TEXT NOT NULL,
                version INTEGER NOT NULL, created_at TEXT NOT NULL, body TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS grants_patient ON grants (patient, created_at);
             CREATE INDEX IF NOT EXISTS grants_grantee ON grants (grantee, created_at);
             CREATE TABLE IF NOT EXISTS notifications (
                id TEXT PRIMARY KEY, patient TEXT NOT NULL, at TEXT NOT NULL, body TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS notifications_patient ON notifications (patient, at);
             CREATE TABLE IF NOT EXISTS analytics_consent (
                patient TEXT PRIMARY KEY, population INTEGER NOT NULL, tips INTEGER NOT NULL,
                updated_at TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS break_glass_opt_out (
                patient TEXT PRIMARY KEY, opted_out INTEGER NOT NULL);",
        )
        .map_err(db)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&mut this.lock()))
            .await
            .map_err(|e| ConsentError::Unavailable(format!("store task: {e}")))?
    }

    fn query(conn: &Connection, sql: &str, arg: &str) -> Result<Vec<Grant>> {
        let mut stmt = conn.prepare_cached(sql).map_err(db)?;
        let rows = stmt
            .query_map([arg], |r| r.get::<_, String>(0))
            .map_err(db)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db)?;
        rows.iter().map(|b| decode(b)).collect()
    }

    /// Applies `change` to the grant if it is at `version` and not revoked, in one transaction.
    async fn update(
        &self,
        id: &str,
        version: u64,
        change: impl FnOnce(&mut Grant) + Send + 'static,
    ) -> Result<Grant> {
        let id = id.to_owned();
        self.blocking(move |conn| {
            let tx = conn.transaction().map_err(db)?;
            let body: Option<String> = tx
                .query_row("SELECT body FROM grants WHERE id = ?1", [&id], |r| r.get(0))
                .optional()
                .map_err(db)?;
            let mut grant = decode(&body.ok_or_else(|| ConsentError::NotFound(id.clone()))?)?;
            if grant.version != version || grant.revoked_at.is_some() {
                return Err(ConsentError::Conflict {
                    id,
                    current: grant.version,
                });
            }
            change(&mut grant);
            grant.version += 1;
            let n = tx
                .execute(
                    "UPDATE grants SET body = ?2, version = ?3 WHERE id = ?1 AND version = ?4",
                    params![
                        id,
                        encode(&grant)?,
                        i64::try_from(grant.version).unwrap_or(i64::MAX),
                        i64::try_from(version).unwrap_or(i64::MAX)
                    ],
                )
                .map_err(db)?;
            if n != 1 {
                return Err(ConsentError::Conflict {
                    id,
                    current: version,
                });
            }
            tx.commit().map_err(db)?;
            Ok(grant)
        })
        .await
    }
}

fn encode(g: &Grant) -> Result<String> {
    serde_json::to_string(g).map_err(|e| ConsentError::Unavailable(format!("encoding: {e}")))
}

fn decode(body: &str) -> Result<Grant> {
    serde_json::from_str(body)
        .map_err(|e| ConsentError::Unavailable(format!("a stored grant is unreadable: {e}")))
}

#[async_trait]
impl ConsentStore for SqliteConsentStore {
    async fn create(&self, grant: &Grant) -> Result<()> {
        let g = grant.clone();
        self.blocking(move |conn| {
            let n = conn
                .execute(
                    "INSERT OR IGNORE INTO grants (id, patient, grantee, version, created_at, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        g.id,
                        g.patient.as_str(),
                        g.grantee.as_str(),
                        i64::try_from(g.version).unwrap_or(i64::MAX),
                        g.created_at
                            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                        encode(&g)?
                    ],
                )
                .map_err(db)?;
            if n == 0 {
                return Err(ConsentError::Invalid(format!(
                    "grant {} already exists",
                    g.id
                )));
            }
            Ok(())
        })
        .await
    }

    async fn get(&self, id: &str) -> Result<Option<Grant>> {
        let id = id.to_owned();
        self.blocking(move |conn| {
            Ok(
                Self::query(conn, "SELECT body FROM grants WHERE id = ?1", &id)?
                    .into_iter()
                    .next(),
            )
        })
        .await
    }

    async fn for_patient(&self, patient: &PatientId) -> Result<Vec<Grant>> {
        let p = patient.to_string();
        self.blocking(move |conn| {
            Self::query(
                conn,
                "SELECT body FROM grants WHERE patient = ?1 ORDER BY created_at DESC, id",
                &p,
            )
        })
        .await
    }

    async fn for_grantee(&self, grantee: &UserId) -> Result<Vec<Grant>> {
        let g = grantee.to_string();
        self.blocking(move |conn| {
            Self::query(
                conn,
                "SELECT body FROM grants WHERE grantee = ?1 ORDER BY created_at DESC, id",
                &g,
            )
        })
        .await
    }

    async fn between(&self, patient: &PatientId, grantee: &UserId) -> Result<Vec<Grant>> {
        let (p, g) = (patient.to_string(), grantee.to_string());
        self.blocking(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT body FROM grants WHERE patient = ?1 AND grantee = ?2
                     ORDER BY created_at DESC, id",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([&p, &g], |r| r.get::<_, String>(0))
                .map_err(db)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db)?;
            rows.iter().map(|b| decode(b)).collect()
        })
        .await
    }

    async fn extend(&self, id: &str, version: u64, end: DateTime<Utc>) -> Result<Grant> {
        self.update(id, version, move |g| g.end = end).await
    }

    async fn rescope(&self, id: &str, version: u64, scope: &Scope) -> Result<Grant> {
        let scope = scope.clone();
        self.update(id, version, move |g| g.scope = scope).await
    }

    async fn revoke(&self, id: &str, version: u64, at: DateTime<Utc>) -> Result<Grant> {
        self.update(id, version, move |g| g.revoked_at = Some(at))
            .await
    }

    async fn analytics(&self, patient: &PatientId) -> Result<AnalyticsConsent> {
        let p = patient.to_string();
        self.blocking(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT population, tips FROM analytics_consent WHERE patient = ?1",
                    [&p],
                    |r| {
                        Ok(AnalyticsConsent {
                            population_analytics: r.get(0)?,
                            personalized_tips: r.get(1)?,
                        })
                    },
                )
                .optional()
                .map_err(db)?
                // Nobody is in analytics until they opt in.
                .unwrap_or_default())
        })
        .await
    }

    async fn notify(&self, n: &Notification) -> Result<()> {
        let n = n.clone();
        self.blocking(move |conn| {
            let body = serde_json::to_string(&n)
                .map_err(|e| ConsentError::Unavailable(format!("encoding: {e}")))?;
            conn.execute(
                "INSERT OR IGNORE INTO notifications (id, patient, at, body) VALUES (?1, ?2, ?3, ?4)",
                params![
                    n.id,
                    n.patient.as_str(),
                    n.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    body
                ],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn notifications(&self, patient: &PatientId, limit: usize) -> Result<Vec<Notification>> {
        let p = patient.to_string();
        self.blocking(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT body FROM notifications WHERE patient = ?1 ORDER BY at DESC, id LIMIT ?2",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map(params![p, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                    r.get::<_, String>(0)
                })
                .map_err(db)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db)?;
            rows.iter()
                .map(|b| {
                    serde_json::from_str(b).map_err(|e| {
                        ConsentError::Unavailable(format!("a stored notification is unreadable: {e}"))
                    })
                })
                .collect()
        })
        .await
    }

    async fn set_analytics(&self, patient: &PatientId, consent: AnalyticsConsent) -> Result<()> {
        let p = patient.to_string();
        self.blocking(move |conn| {
            conn.execute(
                "INSERT INTO analytics_consent (patient, population, tips, updated_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (patient) DO UPDATE SET population = ?2, tips = ?3, updated_at = ?4",
                params![
                    p,
                    consent.population_analytics,
                    consent.personalized_tips,
                    Utc::now().to_rfc3339()
                ],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn break_glass_opt_out(&self, patient: &PatientId) -> Result<bool> {
        let p = patient.to_string();
        self.blocking(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT opted_out FROM break_glass_opt_out WHERE patient = ?1",
                    [&p],
                    |r| r.get::<_, bool>(0),
                )
                .optional()
                .map_err(db)?
                .unwrap_or(false))
        })
        .await
    }

    async fn set_break_glass_opt_out(&self, patient: &PatientId, opt_out: bool) -> Result<()> {
        let p = patient.to_string();
        self.blocking(move |conn| {
            conn.execute(
                "INSERT INTO break_glass_opt_out (patient, opted_out) VALUES (?1, ?2)
                 ON CONFLICT (patient) DO UPDATE SET opted_out = ?2",
                params![p, opt_out],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }
}
