//! The insights store (SQLite, `<data>/insights.db`): members' enrolment profiles, the latest
//! care-gap result per patient and measure, and tips with the patient's feedback.
//!
//! A tip keeps its id across recomputations (the engine derives it from what it is about), so
//! a dismissal or a "this is wrong" sticks: the tip stays hidden while the engine keeps
//! producing it, and a tip the engine no longer produces is marked resolved.

use chrono::{DateTime, NaiveDate, Utc};
use p360_events::{MemberProfile, PatientId};
use p360_insights::engine::MeasureResult;
use p360_insights::tips::Tip;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::path::Path;
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("insights store: {0}")]
    Db(String),
    #[error("no tip {0} for this patient")]
    NoSuchTip(String),
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Db(e.to_string())
}

/// Where a tip stands for the patient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TipState {
    Open,
    /// The patient does not want to see it.
    Dismissed,
    /// The patient says it is wrong (kept as feedback for the payor's clinical team).
    Wrong,
    /// The engine no longer produces it (the gap closed, the trend ended).
    Resolved,
}

impl TipState {
    fn as_str(self) -> &'static str {
        match self {
            TipState::Open => "open",
            TipState::Dismissed => "dismissed",
            TipState::Wrong => "wrong",
            TipState::Resolved => "resolved",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "dismissed" => TipState::Dismissed,
            "wrong" => TipState::Wrong,
            "resolved" => TipState::Resolved,
            _ => TipState::Open,
        }
    }
}

/// A tip as kept: what the engine said, and what the patient did with it.
#[derive(Clone, Debug, Serialize)]
pub struct StoredTip {
    #[serde(flatten)]
    pub tip: Tip,
    pub state: TipState,
    pub first_seen: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
}

/// What [`InsightsStore::put_tips`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TipChanges {
    /// Tips never seen before: the patient is notified of these.
    pub new: Vec<String>,
    pub resolved: usize,
}

#[derive(Clone, Debug)]
pub struct InsightsStore {
    conn: Arc<Mutex<Connection>>,
}

impl InsightsStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        Self::init(conn)
    }

    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(db)?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS profiles (
                patient TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS results (
                patient TEXT NOT NULL, measure TEXT NOT NULL, status TEXT NOT NULL,
                body TEXT NOT NULL, computed_at TEXT NOT NULL, PRIMARY KEY (patient, measure));
             CREATE TABLE IF NOT EXISTS tips (
                patient TEXT NOT NULL, tip TEXT NOT NULL, body TEXT NOT NULL,
                state TEXT NOT NULL, feedback TEXT, first_seen TEXT NOT NULL,
                updated_at TEXT NOT NULL, PRIMARY KEY (patient, tip));",
        )
        .map_err(db)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (each call is one
        // statement or transaction), so a poisoned lock is still usable.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores a member's profile; true when it differs from the one kept.
    pub fn put_profile(&self, p: &MemberProfile, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let body = serde_json::to_string(p).map_err(|e| StoreError::Db(e.to_string()))?;
        let conn = self.lock();
        let old: Option<String> = conn
            .query_row(
                "SELECT body FROM profiles WHERE patient = ?1",
                [p.patient_id.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        if old.as_deref() == Some(body.as_str()) {
            return Ok(false);
        }
        conn.execute(
            "INSERT INTO profiles (patient, body, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (patient) DO UPDATE SET body = ?2, updated_at = ?3",
            params![p.patient_id.as_str(), body, at.to_rfc3339()],
        )
        .map_err(db)?;
        Ok(true)
    }

    pub fn profile(&self, patient: &PatientId) -> Result<Option<MemberProfile>, StoreError> {
        let body: Option<String> = self
            .lock()
            .query_row(
                "SELECT body FROM profiles WHERE patient = ?1",
                [patient.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        Ok(body.and_then(|b| serde_json::from_str(&b).ok()))
    }

    /// Whether any result was ever computed for the patient.
    pub fn has_results(&self, patient: &PatientId) -> Result<bool, StoreError> {
        self.lock()
            .query_row(
                "SELECT 1 FROM results WHERE patient = ?1 LIMIT 1",
                [patient.as_str()],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(db)
    }

    /// Replaces the patient's results with `results` (one per measure).
    pub fn put_results(
        &self,
        patient: &PatientId,
        results: &[MeasureResult],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        tx.execute("DELETE FROM results WHERE patient = ?1", [patient.as_str()])
            .map_err(db)?;
        for r in results {
            let body = serde_json::to_string(r).map_err(|e| StoreError::Db(e.to_string()))?;
            let status = serde_json::to_value(r.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            tx.execute(
                "INSERT INTO results (patient, measure, status, body, computed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    patient.as_str(),
                    r.measure_id,
                    status,
                    body,
                    at.to_rfc3339()
                ],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    pub fn results(&self, patient: &PatientId) -> Result<Vec<MeasureResult>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT body FROM results WHERE patient = ?1 ORDER BY measure")
            .map_err(db)?;
        let rows = stmt
            .query_map([patient.as_str()], |r| r.get::<_, String>(0))
            .map_err(db)?;
        let mut out = Vec::new();
        for body in rows {
            let body = body.map_err(db)?;
            if let Ok(r) = serde_json::from_str(&body) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Records the tips the engine produces now: new ones open, known ones refreshed (their
    /// state kept), the ones no longer produced resolved.
    pub fn put_tips(
        &self,
        patient: &PatientId,
        tips: &[Tip],
        at: DateTime<Utc>,
    ) -> Result<TipChanges, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let mut changes = TipChanges::default();
        let now = at.to_rfc3339();
        let known: Vec<(String, String)> = {
            let mut stmt = tx
                .prepare("SELECT tip, state FROM tips WHERE patient = ?1")
                .map_err(db)?;
            stmt.query_map([patient.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(db)?
                .collect::<Result<_, _>>()
                .map_err(db)?
        };
        for t in tips {
            let body = serde_json::to_string(t).map_err(|e| StoreError::Db(e.to_string()))?;
            match known.iter().find(|(id, _)| id == &t.id) {
                None => {
                    tx.execute(
                        "INSERT INTO tips (patient, tip, body, state, first_seen, updated_at)
                         VALUES (?1, ?2, ?3, 'open', ?4, ?4)",
                        params![patient.as_str(), t.id, body, now],
                    )
                    .map_err(db)?;
                    changes.new.push(t.id.clone());
                }
                Some((_, state)) => {
                    // A resolved tip that comes back is open again; the patient's own choice
                    // (dismissed, wrong) stays.
                    let state = if state == "resolved" { "open" } else { state };
                    tx.execute(
                        "UPDATE tips SET body = ?3, state = ?4, updated_at = ?5
                         WHERE patient = ?1 AND tip = ?2",
                        params![patient.as_str(), t.id, body, state, now],
                    )
                    .map_err(db)?;
                }
            }
        }
        for (id, state) in &known {
            if state == "open" && !tips.iter().any(|t| &t.id == id) {
                tx.execute(
                    "UPDATE tips SET state = 'resolved', updated_at = ?3
                     WHERE patient = ?1 AND tip = ?2",
                    params![patient.as_str(), id, now],
                )
                .map_err(db)?;
                changes.resolved += 1;
            }
        }
        tx.commit().map_err(db)?;
        Ok(changes)
    }

    /// The patient's tips, open ones first, newest first within a state.
    pub fn tips(&self, patient: &PatientId) -> Result<Vec<StoredTip>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT body, state, feedback, first_seen FROM tips WHERE patient = ?1
                 ORDER BY CASE state WHEN 'open' THEN 0 ELSE 1 END, first_seen DESC, tip",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map([patient.as_str()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(db)?;
        let mut out = Vec::new();
        for row in rows {
            let (body, state, feedback, first_seen) = row.map_err(db)?;
            let Ok(tip) = serde_json::from_str::<Tip>(&body) else {
                continue;
            };
            out.push(StoredTip {
                tip,
                state: TipState::parse(&state),
                first_seen: DateTime::parse_from_rfc3339(&first_seen)
                    .map(|t| t.to_utc())
                    .unwrap_or_default(),
                feedback,
            });
        }
        Ok(out)
    }

    /// The patient dismissed a tip, or said it is wrong (with their words, kept as feedback).
    pub fn feedback(
        &self,
        patient: &PatientId,
        tip: &str,
        state: TipState,
        comment: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let n = self
            .lock()
            .execute(
                "UPDATE tips SET state = ?3, feedback = COALESCE(?4, feedback), updated_at = ?5
                 WHERE patient = ?1 AND tip = ?2",
                params![
                    patient.as_str(),
                    tip,
                    state.as_str(),
                    comment,
                    at.to_rfc3339()
                ],
            )
            .map_err(db)?;
        if n == 0 {
            return Err(StoreError::NoSuchTip(tip.to_owned()));
        }
        Ok(())
    }

    /// Forgets a patient's tips (they withdrew from tips: nothing of theirs stays prepared).
    pub fn clear_tips(&self, patient: &PatientId) -> Result<(), StoreError> {
        self.lock()
            .execute("DELETE FROM tips WHERE patient = ?1", [patient.as_str()])
            .map_err(db)?;
        Ok(())
    }
}

/// A profile's birth date, read as the measures need it.
pub fn birth_date(p: Option<&MemberProfile>) -> Option<NaiveDate> {
    p.and_then(|p| p.birth_date)
}
