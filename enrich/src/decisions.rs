//! The review queue's decisions, and undoing a link.
//!
//! The enrich stage leaves, per batch, `_identities.ndjson` (each identity it linked or held
//! for review, with the source records its facts came from) and `_held/<identity>.json` (the
//! facts a held identity would add to its candidate, resolved aside). A decision is a record
//! `feeds/<batch>/_decisions/<identity>/<seq>.json` (who, when, what), written create-only so
//! that two staff deciding the same identity at once cannot both win:
//!
//! - **accept** a held identity: its held facts go to the candidate (FactsResolved);
//! - **reject** it: nothing changes in the graph, the decision is kept;
//! - **unlink** a linked or accepted identity: its sources are detached from the member's facts
//!   (SourcesDetached), exactly, because every fact names its sources.
//!
//! Each event's id derives from the decision, so publishing it twice applies it once. The
//! event is published by the caller at once and, through an outbox marker written before the
//! decision, again by [`pending`] until it is marked sent: a crash between the decision and
//! its publication loses nothing.

use crate::intake::PREFIX;
use chrono::{DateTime, Utc};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use p360_events::{
    BatchId, Envelope, Event, EventId, FactsResolved, ObjectRef, PatientId, Producer,
    SourcesDetached,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Per batch: each identity linked or held, with its sources (written by the stage).
pub const IDENTITIES: &str = "_identities.ndjson";
/// Per batch: `_held/<identity>.json`, the facts of a held identity for its candidate.
pub const HELD: &str = "_held";
const DECISIONS: &str = "_decisions";
/// Markers of decisions whose event may not have been published yet.
const OUTBOX: &str = "feeds-outbox";
/// The event source of decisions.
const EVENT_SOURCE: &str = "/p360/feeds/decisions";

/// One line of `_identities.ndjson`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityLine {
    pub identity: u32,
    /// `linked` or `review`, as the matcher decided.
    pub decision: String,
    /// The linked member, or the review's candidate.
    pub member_id: String,
    /// Provenance source ids (`<batch>/<file>#<record>`) of the identity's facts.
    pub sources: Vec<String>,
    /// Facts held for the candidate (review only).
    pub held_facts: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Accept,
    Reject,
    Unlink,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "accept" => Some(Action::Accept),
            "reject" => Some(Action::Reject),
            "unlink" => Some(Action::Unlink),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Reject => "reject",
            Action::Unlink => "unlink",
        }
    }
}

/// Where an identity stands after its decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Linked by the matcher; no decision since.
    Linked,
    /// Held for a person to decide.
    Review,
    Accepted,
    Rejected,
    Unlinked,
}

impl fmt::Display for LinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkState::Linked => "linked",
            LinkState::Review => "held for review",
            LinkState::Accepted => "accepted",
            LinkState::Rejected => "rejected",
            LinkState::Unlinked => "unlinked",
        })
    }
}

/// A recorded decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub batch_id: String,
    pub identity: u32,
    /// Its place among the identity's decisions (0, 1, …).
    pub seq: u32,
    pub action: Action,
    pub member_id: String,
    /// The deciding account's id.
    pub decided_by: String,
    pub decided_at: DateTime<Utc>,
    /// The event it caused, if any (reject and an accept with no facts cause none).
    pub event_id: Option<EventId>,
}

#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("batch {0} has not been resolved yet (no identities recorded)")]
    NotResolved(String),
    #[error("batch {0} has no linked or held identity {1}")]
    UnknownIdentity(String, u32),
    #[error("batch {0} has no person-record {2} in {1}")]
    UnknownRecord(String, String, String),
    #[error("cannot {action} identity {identity}: it is {state}")]
    NotAllowed {
        action: &'static str,
        identity: u32,
        state: LinkState,
    },
    #[error("another decision on identity {0} was recorded at the same moment; reload and retry")]
    Conflict(u32),
    #[error("{0} is unreadable")]
    Corrupt(String),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
}

impl DecisionError {
    /// Whether the caller asked for something this batch cannot do (not a store failure).
    pub fn is_request_error(&self) -> bool {
        !matches!(self, DecisionError::Store(_) | DecisionError::Corrupt(_))
    }
}

async fn get(store: &dyn ObjectStore, key: &str) -> Result<Option<bytes::Bytes>, DecisionError> {
    match store.get(&ObjectPath::from(key)).await {
        Ok(r) => Ok(Some(r.bytes().await?)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn lines<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<Vec<T>, DecisionError> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(|l| serde_json::from_slice(l).map_err(|_| DecisionError::Corrupt(key.to_string())))
        .collect()
}

/// Every identity the stage linked or held in `batch`.
pub async fn identities(
    store: &dyn ObjectStore,
    batch: &BatchId,
) -> Result<Vec<IdentityLine>, DecisionError> {
    let key = format!("{PREFIX}/{batch}/{IDENTITIES}");
    let bytes = get(store, &key)
        .await?
        .ok_or_else(|| DecisionError::NotResolved(batch.to_string()))?;
    lines(&key, &bytes)
}

/// The identity a person-record (`source` file, `record` key, as in `links.ndjson`) belongs to.
pub async fn identity_of(
    store: &dyn ObjectStore,
    batch: &BatchId,
    source: &str,
    record: &str,
) -> Result<u32, DecisionError> {
    #[derive(Deserialize)]
    struct Link {
        source: String,
        record: String,
        identity: Option<u32>,
    }
    let key = format!("{PREFIX}/{batch}/_links.ndjson");
    let bytes = get(store, &key)
        .await?
        .ok_or_else(|| DecisionError::NotResolved(batch.to_string()))?;
    lines::<Link>(&key, &bytes)?
        .into_iter()
        .find(|l| l.source == source && l.record == record)
        .and_then(|l| l.identity)
        .ok_or_else(|| {
            DecisionError::UnknownRecord(batch.to_string(), source.to_string(), record.to_string())
        })
}

/// The decisions of one identity, in order.
pub async fn history(
    store: &dyn ObjectStore,
    batch: &BatchId,
    identity: u32,
) -> Result<Vec<Decision>, DecisionError> {
    let prefix = ObjectPath::from(format!("{PREFIX}/{batch}/{DECISIONS}/{identity}"));
    let listing = store.list_with_delimiter(Some(&prefix)).await?;
    let mut keys: Vec<String> = listing
        .objects
        .into_iter()
        .map(|o| o.location.to_string())
        .collect();
    keys.sort();
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        if let Some(b) = get(store, &k).await? {
            out.push(serde_json::from_slice(&b).map_err(|_| DecisionError::Corrupt(k.clone()))?);
        }
    }
    Ok(out)
}

/// Where an identity stands: the matcher's decision, then each recorded one.
pub fn state(line: &IdentityLine, decisions: &[Decision]) -> LinkState {
    let mut s = if line.decision == "review" {
        LinkState::Review
    } else {
        LinkState::Linked
    };
    for d in decisions {
        s = match d.action {
            Action::Accept => LinkState::Accepted,
            Action::Reject => LinkState::Rejected,
            Action::Unlink => LinkState::Unlinked,
        };
    }
    s
}

fn allowed(action: Action, s: LinkState) -> bool {
    matches!(
        (action, s),
        (Action::Accept, LinkState::Review | LinkState::Rejected)
            | (Action::Reject, LinkState::Review)
            | (Action::Unlink, LinkState::Linked | LinkState::Accepted)
    )
}

fn decision_key(batch: &str, identity: u32, seq: u32) -> String {
    format!("{PREFIX}/{batch}/{DECISIONS}/{identity}/{seq:06}.json")
}

fn outbox_key(batch: &str, identity: u32, seq: u32) -> ObjectPath {
    ObjectPath::from(format!("{OUTBOX}/{batch}/{identity}/{seq:06}"))
}

/// The event a decision causes, if any: a function of the stored records, so that the outbox
/// can rebuild it after a crash.
async fn event_of(
    store: &dyn ObjectStore,
    d: &Decision,
    line: &IdentityLine,
) -> Result<Option<Envelope>, DecisionError> {
    let Some(id) = d.event_id else {
        return Ok(None);
    };
    let batch_id = BatchId::parse(&d.batch_id)
        .map_err(|_| DecisionError::Corrupt(decision_key(&d.batch_id, d.identity, d.seq)))?;
    let patient_id = PatientId::parse(&d.member_id)
        .map_err(|_| DecisionError::Corrupt(decision_key(&d.batch_id, d.identity, d.seq)))?;
    let event = match d.action {
        Action::Accept => {
            let key = format!("{PREFIX}/{}/{HELD}/{}.json", d.batch_id, d.identity);
            let body = get(store, &key)
                .await?
                .ok_or_else(|| DecisionError::Corrupt(key.clone()))?;
            Event::FactsResolved(FactsResolved {
                batch_id,
                patient_id,
                facts: ObjectRef {
                    sha256: hex::encode(Sha256::digest(&body)),
                    size: body.len() as u64,
                    media_type: "application/json".into(),
                    key,
                },
                fact_count: u32::try_from(line.held_facts).unwrap_or(u32::MAX),
                matched_by: "review".into(),
                resolver: Producer {
                    name: "p360-enrich".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                },
            })
        }
        Action::Unlink => Event::SourcesDetached(SourcesDetached {
            batch_id,
            patient_id,
            sources: line.sources.clone(),
            decision: decision_key(&d.batch_id, d.identity, d.seq),
        }),
        Action::Reject => return Ok(None),
    };
    Ok(Some(Envelope::new(id, EVENT_SOURCE, event)))
}

/// Records `action` on `identity` of `batch` by `by` at `at`; returns the decision and the
/// event to publish (then call [`sent`]).
pub async fn decide(
    store: &dyn ObjectStore,
    batch: &BatchId,
    identity: u32,
    action: Action,
    by: &str,
    at: DateTime<Utc>,
) -> Result<(Decision, Option<Envelope>), DecisionError> {
    let line = identities(store, batch)
        .await?
        .into_iter()
        .find(|l| l.identity == identity)
        .ok_or_else(|| DecisionError::UnknownIdentity(batch.to_string(), identity))?;
    let past = history(store, batch, identity).await?;
    let now = state(&line, &past);
    if !allowed(action, now) {
        return Err(DecisionError::NotAllowed {
            action: action.as_str(),
            identity,
            state: now,
        });
    }
    let seq = u32::try_from(past.len()).unwrap_or(u32::MAX);
    let causes = match action {
        Action::Accept => line.held_facts > 0,
        Action::Unlink => !line.sources.is_empty(),
        Action::Reject => false,
    };
    let d = Decision {
        batch_id: batch.to_string(),
        identity,
        seq,
        action,
        member_id: line.member_id.clone(),
        decided_by: by.to_string(),
        decided_at: at,
        event_id: causes
            .then(|| EventId::for_key("feed.decision", &format!("{batch}:{identity}:{seq}"))),
    };
    let create = || PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    if d.event_id.is_some() {
        store
            .put(
                &outbox_key(batch.as_str(), identity, seq),
                PutPayload::new(),
            )
            .await?;
    }
    let body = serde_json::to_vec_pretty(&d).unwrap_or_default();
    match store
        .put_opts(
            &ObjectPath::from(decision_key(batch.as_str(), identity, seq)),
            PutPayload::from(body),
            create(),
        )
        .await
    {
        Ok(_) => {}
        Err(object_store::Error::AlreadyExists { .. }) => {
            return Err(DecisionError::Conflict(identity));
        }
        Err(e) => return Err(e.into()),
    }
    let event = event_of(store, &d, &line).await?;
    Ok((d, event))
}

/// Marks a decision's event published.
pub async fn sent(store: &dyn ObjectStore, d: &Decision) -> Result<(), DecisionError> {
    match store
        .delete(&outbox_key(&d.batch_id, d.identity, d.seq))
        .await
    {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Decisions whose event may not have been published (a crash, a failed publish), with the
/// event; outbox markers whose decision was never recorded (a conflict, a crash before it)
/// are removed once older than a minute.
pub async fn pending(
    store: &dyn ObjectStore,
    now: DateTime<Utc>,
) -> Result<Vec<(Decision, Envelope)>, DecisionError> {
    use futures::TryStreamExt;
    let markers: Vec<_> = store
        .list(Some(&ObjectPath::from(OUTBOX)))
        .try_collect()
        .await?;
    let mut out = Vec::new();
    for m in markers {
        let parts: Vec<&str> = m.location.as_ref().split('/').collect();
        let [_, batch, identity, seq] = parts.as_slice() else {
            continue;
        };
        let (Ok(batch), Ok(identity), Ok(seq)) = (
            BatchId::parse(batch),
            identity.parse::<u32>(),
            seq.parse::<u32>(),
        ) else {
            continue;
        };
        let key = decision_key(batch.as_str(), identity, seq);
        let Some(body) = get(store, &key).await? else {
            if now.signed_duration_since(m.last_modified) > chrono::Duration::minutes(1) {
                let _ = store.delete(&m.location).await;
            }
            continue;
        };
        let d: Decision = serde_json::from_slice(&body).map_err(|_| DecisionError::Corrupt(key))?;
        let Some(line) = identities(store, &batch)
            .await?
            .into_iter()
            .find(|l| l.identity == identity)
        else {
            continue;
        };
        if let Some(e) = event_of(store, &d, &line).await? {
            out.push((d, e));
        } else {
            sent(store, &d).await?;
        }
    }
    Ok(out)
}

/// The batch's review queue: each held identity's evidence (the stage's `_review.ndjson`
/// entries) with where it stands and its decisions.
pub async fn queue(
    store: &dyn ObjectStore,
    batch: &BatchId,
) -> Result<Vec<serde_json::Value>, DecisionError> {
    let key = format!("{PREFIX}/{batch}/_review.ndjson");
    let bytes = get(store, &key)
        .await?
        .ok_or_else(|| DecisionError::NotResolved(batch.to_string()))?;
    let items: Vec<serde_json::Value> = lines(&key, &bytes)?;
    let ids = identities(store, batch).await.unwrap_or_default();
    let mut out = Vec::with_capacity(items.len());
    for mut item in items {
        let Some(i) = item
            .get("identity")
            .and_then(serde_json::Value::as_u64)
            .and_then(|i| u32::try_from(i).ok())
        else {
            continue;
        };
        let past = history(store, batch, i).await?;
        let line = ids.iter().find(|l| l.identity == i);
        let st = line.map_or(LinkState::Review, |l| state(l, &past));
        let Some(fields) = item.as_object_mut() else {
            continue;
        };
        fields.insert("state".into(), serde_json::to_value(st).unwrap_or_default());
        fields.insert("held_facts".into(), line.map_or(0, |l| l.held_facts).into());
        fields.insert(
            "decisions".into(),
            serde_json::to_value(&past).unwrap_or_default(),
        );
        out.push(item);
    }
    Ok(out)
}
