//! Search snapshots: the matching fact ids of a search, kept for a few minutes under a random
//! token that the `next` links carry, so that reading page N does not re-run the search (with
//! thousands of facts the search, not the page, is the cost). Ids only, no clinical content.
//! A token that expired, or that came with other filters or another patient, is ignored and
//! the search runs again: the token is an optimization, never a source of different results.

use p360_events::PatientId;
use p360_model::FactId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(300);
const MAX_ENTRIES: usize = 2048;

struct Entry {
    patient: PatientId,
    /// The search's filters, canonicalized: a token is valid only for the same search.
    filters: String,
    ids: Arc<Vec<FactId>>,
    created: Instant,
}

#[derive(Default)]
pub struct Snapshots {
    entries: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Snapshots")
    }
}

impl Snapshots {
    /// Keeps `ids`; returns the token.
    pub fn put(&self, patient: &PatientId, filters: String, ids: Vec<FactId>) -> String {
        let token = hex::encode(rand::random::<[u8; 16]>());
        let Ok(mut entries) = self.entries.lock() else {
            return token; // poisoned: serve without snapshots
        };
        entries.retain(|_, e| e.created.elapsed() < TTL);
        if entries.len() >= MAX_ENTRIES
            && let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.created)
                .map(|(k, _)| k.clone())
        {
            entries.remove(&oldest);
        }
        entries.insert(
            token.clone(),
            Entry {
                patient: patient.clone(),
                filters,
                ids: Arc::new(ids),
                created: Instant::now(),
            },
        );
        token
    }

    /// The ids of a live snapshot of the same search of the same patient.
    pub fn get(&self, token: &str, patient: &PatientId, filters: &str) -> Option<Arc<Vec<FactId>>> {
        let entries = self.entries.lock().ok()?;
        let e = entries.get(token)?;
        (e.created.elapsed() < TTL && &e.patient == patient && e.filters == filters)
            .then(|| e.ids.clone())
    }
}

/// The consent category of facts already read, by patient and fact id (see
/// `records::index_for`). Bounded: when full it starts again, which costs only re-reads.
#[derive(Default)]
pub struct Categories {
    known: Mutex<Known>,
}

#[derive(Default)]
struct Known {
    by_patient: HashMap<PatientId, HashMap<FactId, p360_model::Category>>,
    /// Facts remembered across all patients (kept, not summed on every call).
    count: usize,
}

const MAX_CATEGORIES: usize = 2_000_000;

impl std::fmt::Debug for Categories {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Categories")
    }
}

impl Categories {
    /// Sets each entry's category from what is known; false if any is unknown.
    pub fn fill(&self, patient: &PatientId, index: &mut [p360_graph::facts::IndexEntry]) -> bool {
        let Ok(known) = self.known.lock() else {
            return false;
        };
        let Some(mine) = known.by_patient.get(patient) else {
            return index.is_empty();
        };
        for e in index.iter_mut() {
            match mine.get(&e.id) {
                Some(c) => e.category = Some(*c),
                None => return false,
            }
        }
        true
    }

    pub fn remember(&self, patient: &PatientId, index: &[p360_graph::facts::IndexEntry]) {
        let Ok(mut known) = self.known.lock() else {
            return;
        };
        if known.count + index.len() > MAX_CATEGORIES {
            *known = Known::default();
        }
        let known = &mut *known;
        let mine = known.by_patient.entry(patient.clone()).or_default();
        for e in index {
            if let Some(c) = e.category
                && mine.insert(e.id.clone(), c).is_none()
            {
                known.count += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_serves_only_its_own_search() {
        let s = Snapshots::default();
        let p = PatientId::parse("pat-1").unwrap_or_else(|_| unreachable!());
        let other = PatientId::parse("pat-2").unwrap_or_else(|_| unreachable!());
        let id = FactId::parse("obs-1").unwrap_or_else(|_| unreachable!());
        let t = s.put(&p, "_type=Observation".into(), vec![id.clone()]);
        assert_eq!(
            s.get(&t, &p, "_type=Observation").as_deref(),
            Some(&vec![id])
        );
        assert!(s.get(&t, &other, "_type=Observation").is_none());
        assert!(s.get(&t, &p, "_type=Condition").is_none());
        assert!(s.get("nope", &p, "_type=Observation").is_none());
    }
}
