//! Member matching: which member (if any) a person-record is about.
//!
//! 1. **Deterministic** on the payor member id, current or previous (from the roster), unless
//!    the demographics flatly contradict the member (another birth date *and* another given
//!    name): then a person reviews it.
//! 2. **Probabilistic** on demographics for records without a usable id: blocking on several
//!    keys (so one wrong field does not hide the pair), Fellegi–Sunter weights from
//!    [`model::Model`], and three bands: `link` (probability ≥ 0.999, clearly ahead of the
//!    next candidate, and none of the hard-negative vetoes), `review` (≥ 0.5, or a link held
//!    back by a veto), `no link`.
//!
//! The vetoes encode the look-alikes a score alone mistakes for a match: a father and son
//! with one name and address (suffixes or birth dates differ), twins (given names differ),
//! relatives at one address, and two unrelated people with a common name (birth dates
//! differ). A false link puts one person's data in another's record: the vetoes trade recall
//! for never doing that, and send the case to a person instead.

pub mod compare;
pub mod model;
pub mod prepare;

use crate::feeds::roster::Member;
use compare::{
    BIRTH, EMAIL, FIELDS, FIRST, Gamma, LAST, NULL, PHONE, SEX, STREET, SUFFIX, compare,
};
use model::{Model, Training};
use prepare::Prepared;
use serde::Serialize;
use std::collections::HashMap;

/// Probability at or above which a pair links (with the vetoes and the margin).
pub const LINK_PROBABILITY: f64 = 0.999;
/// Probability at or above which a pair goes to review rather than "no link".
pub const REVIEW_PROBABILITY: f64 = 0.5;
/// How far (bits) the best candidate must lead the second to link.
pub const MARGIN_BITS: f64 = 8.0;
/// Blocking keys shared by more members than this are skipped (too common to narrow).
const MAX_BLOCK: usize = 2_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Linked,
    Review,
    Unmatched,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Linked => "linked",
            Decision::Review => "review",
            Decision::Unmatched => "unmatched",
        }
    }
}

/// How one field compared, for a person deciding a review.
#[derive(Clone, Debug, Serialize)]
pub struct FieldEvidence {
    pub field: &'static str,
    pub level: &'static str,
    /// Bits this field added (negative: against a match).
    pub weight: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    pub member: usize,
    /// Match weight (log2 Bayes factor), without the prior.
    pub bits: f64,
    /// P(this is the record's member), the other candidates competing.
    pub probability: f64,
    pub fields: Vec<FieldEvidence>,
    /// Why a link was held back, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub veto: Option<&'static str>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub decision: Decision,
    /// The member linked, or the candidate under review.
    pub member: Option<usize>,
    pub score: Option<f64>,
    /// How the decision was reached: `member_id`, `previous_member_id`, `demographics`.
    pub method: &'static str,
    /// The best candidates with their comparison, best first (demographics only).
    pub candidates: Vec<Candidate>,
}

/// The roster, indexed for matching.
pub struct Roster {
    pub members: Vec<Member>,
    pub prepared: Vec<Prepared>,
    by_id: HashMap<String, (usize, bool)>,
    blocks: HashMap<String, Vec<u32>>,
}

impl Roster {
    pub fn new(members: Vec<Member>) -> Roster {
        let prepared: Vec<Prepared> = members.iter().map(|m| Prepared::new(&m.person)).collect();
        let mut by_id = HashMap::new();
        let mut blocks: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, m) in members.iter().enumerate() {
            by_id.insert(m.member_id.clone(), (i, false));
            for p in &m.previous_ids {
                by_id.entry(p.clone()).or_insert((i, true));
            }
            for k in prepared[i].blocking_keys(false) {
                blocks
                    .entry(k)
                    .or_default()
                    .push(u32::try_from(i).unwrap_or(u32::MAX));
            }
        }
        Roster {
            members,
            prepared,
            by_id,
            blocks,
        }
    }

    /// The member a carried id names, and whether it was a previous id.
    pub fn by_member_id(&self, id: &str) -> Option<(usize, bool)> {
        self.by_id.get(id.trim()).copied()
    }

    fn candidates(&self, p: &Prepared) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for k in p.blocking_keys(true) {
            if let Some(v) = self.blocks.get(&k)
                && v.len() <= MAX_BLOCK
            {
                out.extend(v.iter().map(|&i| i as usize));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// A distinct person as the records describe them (records with the same demographics and
/// carried id are one identity, decided once).
#[derive(Clone, Debug)]
pub struct Identity {
    pub member_id: Option<String>,
    pub prepared: Prepared,
}

pub struct Matcher {
    pub roster: Roster,
    pub model: Model,
}

/// A small deterministic generator for sampling random pairs (reproducible runs).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const RANDOM_PAIRS: usize = 400_000;

impl Matcher {
    /// Estimates the model on these identities against the roster.
    pub fn train(roster: Roster, identities: &[Identity]) -> Matcher {
        let known = |id: &Identity| {
            id.member_id
                .as_deref()
                .and_then(|m| roster.by_member_id(m))
                .map(|(i, _)| i)
        };
        let mut t = Training::default();
        let n_members = roster.prepared.len();
        // u from records the id places: every other member is a known non-match. Without
        // enough of them, from all records (true matches then inflate u slightly).
        let labelled: Vec<(&Identity, usize)> = identities
            .iter()
            .filter_map(|i| known(i).map(|k| (i, k)))
            .collect();
        let pool: Vec<(&Identity, Option<usize>)> = if labelled.len() >= 50 {
            labelled.iter().map(|(i, k)| (*i, Some(*k))).collect()
        } else {
            identities.iter().map(|i| (i, known(i))).collect()
        };
        if n_members > 0 && !pool.is_empty() {
            if pool.len().saturating_mul(n_members) <= RANDOM_PAIRS {
                for (id, k) in &pool {
                    for (j, m) in roster.prepared.iter().enumerate() {
                        if Some(j) != *k {
                            *t.random.entry(compare(&id.prepared, m).0).or_default() += 1.0;
                        }
                    }
                }
            } else {
                let mut rng = SplitMix(0x5EED);
                for _ in 0..RANDOM_PAIRS {
                    let (id, k) = pool[rng.below(pool.len())];
                    let j = rng.below(n_members);
                    if k != Some(j) {
                        *t.random
                            .entry(compare(&id.prepared, &roster.prepared[j]).0)
                            .or_default() += 1.0;
                    }
                }
            }
        }
        for id in identities {
            let k = known(id);
            if let Some(k) = k {
                *t.matches
                    .entry(compare(&id.prepared, &roster.prepared[k]).0)
                    .or_default() += 1.0;
            }
            let mut cands = Vec::new();
            for j in roster.candidates(&id.prepared) {
                let g = compare(&id.prepared, &roster.prepared[j]).0;
                if k.is_none() {
                    cands.push(g);
                }
            }
            if k.is_none() && !cands.is_empty() {
                t.unlabelled.push(cands);
            }
        }
        let model = Model::estimate(&t, &roster.prepared);
        Matcher { roster, model }
    }

    fn candidate(&self, p: &Prepared, j: usize) -> Candidate {
        let member = &self.roster.prepared[j];
        let (g, _) = compare(p, member);
        let bits = self.model.weight(&g, member);
        let per_field = self.model.field_weights(&g);
        let fields = (0..FIELDS)
            .filter(|&f| g[f] != NULL)
            .map(|f| FieldEvidence {
                field: compare::NAMES[f],
                level: compare::level_name(f, g[f]),
                weight: (per_field[f].unwrap_or(0.0) * 100.0).round() / 100.0,
            })
            .collect();
        Candidate {
            member: j,
            bits,
            probability: 0.0,
            fields,
            veto: veto(&g),
        }
    }

    pub fn decide(&self, id: &Identity) -> Outcome {
        if let Some((j, previous)) = id
            .member_id
            .as_deref()
            .and_then(|m| self.roster.by_member_id(m))
        {
            let (g, _) = compare(&id.prepared, &self.roster.prepared[j]);
            let method = if previous {
                "previous_member_id"
            } else {
                "member_id"
            };
            // The id is trusted unless birth date and given name both say someone else.
            if g[BIRTH] == 3 && g[FIRST] == 4 {
                return Outcome {
                    decision: Decision::Review,
                    member: Some(j),
                    score: Some(0.5),
                    method,
                    candidates: vec![self.candidate(&id.prepared, j)],
                };
            }
            return Outcome {
                decision: Decision::Linked,
                member: Some(j),
                score: Some(1.0),
                method,
                candidates: Vec::new(),
            };
        }
        let mut cands: Vec<Candidate> = self
            .roster
            .candidates(&id.prepared)
            .into_iter()
            .map(|j| self.candidate(&id.prepared, j))
            .collect();
        let bits: Vec<f64> = cands.iter().map(|c| c.bits).collect();
        for (c, p) in cands.iter_mut().zip(self.model.posteriors(&bits)) {
            c.probability = p;
        }
        cands.sort_by(|a, b| b.bits.total_cmp(&a.bits));
        cands.truncate(3);
        let Some(best) = cands.first() else {
            return Outcome {
                decision: Decision::Unmatched,
                member: None,
                score: Some(0.0),
                method: "demographics",
                candidates: cands,
            };
        };
        let margin = cands.get(1).map_or(f64::INFINITY, |s| best.bits - s.bits);
        let (decision, member) =
            if best.probability >= LINK_PROBABILITY && best.veto.is_none() && margin >= MARGIN_BITS
            {
                (Decision::Linked, Some(best.member))
            } else if best.probability >= REVIEW_PROBABILITY {
                (Decision::Review, Some(best.member))
            } else {
                (Decision::Unmatched, None)
            };
        let score = Some((best.probability * 1e4).round() / 1e4);
        Outcome {
            decision,
            member,
            score,
            method: "demographics",
            candidates: cands,
        }
    }
}

/// Why a pair must not link on demographics, however high its weight.
fn veto(g: &Gamma) -> Option<&'static str> {
    if g[BIRTH] == NULL || g[BIRTH] == 3 {
        return Some("birth date missing or different");
    }
    if g[FIRST] == NULL || g[FIRST] == 4 {
        return Some("given name missing or different");
    }
    if g[SUFFIX] == 1 {
        return Some("generation suffix differs (Jr/Sr)");
    }
    if g[SEX] == 1 {
        return Some("sex differs");
    }
    if g[LAST] == NULL {
        return Some("family name missing");
    }
    let contact = g[PHONE] == 0 || g[EMAIL] == 0 || g[STREET] == 0;
    if g[LAST] == 4 && !contact {
        return Some("family name different and no contact detail agrees");
    }
    if g[FIRST] == 3 && (g[BIRTH] != 0 || g[LAST] > 1) {
        return Some("given name only sounds alike and birth date or family name is inexact");
    }
    None
}
