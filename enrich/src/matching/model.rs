//! The Fellegi–Sunter model: for each field and level, m = P(level | same person) and
//! u = P(level | different people); a pair's match weight is Σ log2(m/u) over the fields it
//! has. u is counted on random pairs (minus those the member id says are the same person),
//! m is estimated by expectation–maximisation on the blocked pairs, starting from the pairs
//! the member id links. Exact name agreement is weighted by how common the name is
//! (term-frequency adjustment): two "Smith"s agreeing says less than two "Oyelaran"s.
//!
//! Written here: the Rust crates that do this (e.g. `weldrs`) are built on Polars, far heavier
//! than the few hundred lines the model needs.

// Parameters are tables indexed by field and level; index loops read as the formulas do.
#![allow(clippy::needless_range_loop)]

use super::compare::{FIELDS, FIRST, Gamma, LAST, LEVELS, NULL};
use super::prepare::Prepared;
use serde::Serialize;
use std::collections::HashMap;

const MAX_LEVELS: usize = 5;
const FLOOR: f64 = 1e-6;

#[derive(Clone, Debug, Serialize)]
pub struct Model {
    pub m: [[f64; MAX_LEVELS]; FIELDS],
    pub u: [[f64; MAX_LEVELS]; FIELDS],
    /// P(match) among blocked pairs, from EM.
    pub lambda: f64,
    pub em_iterations: usize,
    #[serde(skip)]
    tf_first: HashMap<String, f64>,
    #[serde(skip)]
    tf_last: HashMap<String, f64>,
}

/// Counts of comparison vectors (pairs with the same vector are one row for EM).
pub type Patterns = HashMap<Gamma, f64>;

fn normalise(counts: &[f64; MAX_LEVELS], levels: usize, prior: f64) -> [f64; MAX_LEVELS] {
    let total: f64 = counts[..levels].iter().sum::<f64>() + prior * levels as f64;
    let mut out = [0.0; MAX_LEVELS];
    for l in 0..levels {
        out[l] = ((counts[l] + prior) / total).clamp(FLOOR, 1.0 - FLOOR);
    }
    out
}

fn level_counts(
    patterns: &Patterns,
    weight: impl Fn(&Gamma, f64) -> f64,
) -> [[f64; MAX_LEVELS]; FIELDS] {
    let mut c = [[0.0; MAX_LEVELS]; FIELDS];
    for (g, &n) in patterns {
        let w = weight(g, n);
        for f in 0..FIELDS {
            if g[f] != NULL {
                c[f][usize::from(g[f])] += w;
            }
        }
    }
    c
}

/// The pairs the model is estimated on.
#[derive(Default)]
pub struct Training {
    /// Random record–member pairs not known to match: u is counted on them.
    pub random: Patterns,
    /// Pairs the member id says match (posterior 1 in EM).
    pub matches: Patterns,
    /// Records without a usable id, each with the comparison vectors of its blocked
    /// candidates: EM estimates which (if any) is the record's member.
    pub unlabelled: Vec<Vec<Gamma>>,
}

impl Model {
    /// Estimates the model: u from random pairs, m by EM over the blocked pairs, where pairs
    /// the member id decides keep their known class (semi-supervised EM) and the others get
    /// their posterior; `members` gives the name frequencies.
    pub fn estimate(t: &Training, members: &[Prepared]) -> Model {
        let uc = level_counts(&t.random, |_, n| n);
        let mut u = [[0.0; MAX_LEVELS]; FIELDS];
        for f in 0..FIELDS {
            u[f] = normalise(&uc[f], LEVELS[f], 0.5);
        }
        // Starting m: from the id-linked pairs when there are enough, else a generic guess
        // (most mass on agreement, decreasing with each level).
        let mut m = [[0.0; MAX_LEVELS]; FIELDS];
        let lc = level_counts(&t.matches, |_, n| n);
        for f in 0..FIELDS {
            let n: f64 = lc[f][..LEVELS[f]].iter().sum();
            m[f] = if n >= 20.0 {
                normalise(&lc[f], LEVELS[f], 1.0)
            } else {
                let mut guess = [0.0; MAX_LEVELS];
                for (l, g) in guess.iter_mut().enumerate().take(LEVELS[f]) {
                    *g = 0.9 * 0.1f64.powi(l as i32) + 1e-3;
                }
                normalise(&guess, LEVELS[f], 0.0)
            };
        }
        let mut model = Model {
            m,
            u,
            lambda: 0.5,
            em_iterations: 0,
            tf_first: HashMap::new(),
            tf_last: HashMap::new(),
        };
        model.em(t);
        let n = members.len().max(1) as f64;
        for p in members {
            if !p.first.is_empty() {
                *model.tf_first.entry(p.first.clone()).or_default() += 1.0 / n;
            }
            if !p.last.is_empty() {
                *model.tf_last.entry(p.last.clone()).or_default() += 1.0 / n;
            }
        }
        model
    }

    /// Expectation–maximisation of m and λ with u held (Splink's approach: u from random
    /// pairs is the better estimate, and fixing it keeps EM from swapping the two classes).
    /// Without the known non-matches, EM on blocked pairs drifts: blocking gathers people who
    /// share a birth date or a family name, and with u fixed from random pairs such pairs look
    /// like matches, so m would learn that a different given name is common among matches.
    fn em(&mut self, t: &Training) {
        if t.unlabelled.is_empty() && t.matches.is_empty() {
            return;
        }
        for it in 0..50 {
            // E-step. A record is about at most one member: its candidates compete, so a
            // second person with the same common name does not count as a second match.
            // P(member j) = λ·BF_j / ((1 − λ) + λ·Σ_k BF_k), λ = P(the record's member is
            // among its candidates).
            let mut mc = [[0.0; MAX_LEVELS]; FIELDS];
            let mut matched = 0.0;
            let mut total = 0.0;
            for cands in &t.unlabelled {
                let bfs: Vec<f64> = cands
                    .iter()
                    .map(|g| self.bayes_factor_untf(g).min(1e300))
                    .collect();
                let denom = (1.0 - self.lambda) + self.lambda * bfs.iter().sum::<f64>();
                for (g, bf) in cands.iter().zip(&bfs) {
                    let p = if denom > 0.0 {
                        self.lambda * bf / denom
                    } else {
                        0.0
                    };
                    for f in 0..FIELDS {
                        if g[f] != NULL {
                            mc[f][usize::from(g[f])] += p;
                        }
                    }
                    matched += p;
                }
                total += 1.0;
            }
            let known = level_counts(&t.matches, |_, n| n);
            for f in 0..FIELDS {
                for l in 0..LEVELS[f] {
                    mc[f][l] += known[f][l];
                }
            }
            // The id-linked records have their member among their candidates by definition.
            let linked: f64 = t.matches.values().sum();
            matched += linked;
            total += linked;
            let mut delta: f64 = 0.0;
            for f in 0..FIELDS {
                let next = normalise(&mc[f], LEVELS[f], 0.1);
                for l in 0..LEVELS[f] {
                    delta = delta.max((next[l] - self.m[f][l]).abs());
                }
                self.m[f] = next;
            }
            if total > 0.0 {
                self.lambda = (matched / total).clamp(1e-4, 1.0 - 1e-4);
            }
            self.em_iterations = it + 1;
            if delta < 1e-5 {
                break;
            }
        }
    }

    fn bayes_factor_untf(&self, g: &Gamma) -> f64 {
        let mut bf = 1.0;
        for f in 0..FIELDS {
            if g[f] != NULL {
                let l = usize::from(g[f]);
                bf *= self.m[f][l] / self.u[f][l];
            }
        }
        bf
    }

    /// The match weight of a pair, in bits (log2 of the Bayes factor), with exact name
    /// agreement weighted by the member's name frequency.
    pub fn weight(&self, g: &Gamma, member: &Prepared) -> f64 {
        let mut w = 0.0;
        for f in 0..FIELDS {
            if g[f] == NULL {
                continue;
            }
            let l = usize::from(g[f]);
            let mut u = self.u[f][l];
            if l == 0 && f == FIRST {
                u = self
                    .tf_first
                    .get(&member.first)
                    .copied()
                    .unwrap_or(u)
                    .max(u * 0.1)
                    .min(1.0);
            } else if l == 0 && f == LAST {
                u = self
                    .tf_last
                    .get(&member.last)
                    .copied()
                    .unwrap_or(u)
                    .max(u * 0.1)
                    .min(1.0);
            }
            w += (self.m[f][l] / u.max(FLOOR)).log2();
        }
        w
    }

    /// Each field's part of the weight, for the review queue's evidence.
    pub fn field_weights(&self, g: &Gamma) -> [Option<f64>; FIELDS] {
        let mut out = [None; FIELDS];
        for f in 0..FIELDS {
            if g[f] != NULL {
                let l = usize::from(g[f]);
                out[f] = Some((self.m[f][l] / self.u[f][l]).log2());
            }
        }
        out
    }

    /// P(candidate j is the record's member) for each candidate of one record, from their
    /// weights in bits: λ·2^w_j / ((1 − λ) + λ·Σ_k 2^w_k), the candidates competing.
    pub fn posteriors(&self, bits: &[f64]) -> Vec<f64> {
        // Scaled by the largest weight so that 2^w cannot overflow.
        let top = bits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !top.is_finite() {
            return vec![0.0; bits.len()];
        }
        let scaled: Vec<f64> = bits.iter().map(|b| (b - top).exp2()).collect();
        let none = (1.0 - self.lambda) * (-top).clamp(-1000.0, 1000.0).exp2();
        let denom = none + self.lambda * scaled.iter().sum::<f64>();
        scaled.iter().map(|s| self.lambda * s / denom).collect()
    }
}
