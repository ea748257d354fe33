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

impl Model {
    /// Estimates the model. `random`: comparison vectors of random record–member pairs not
    /// known to match; `labelled`: pairs the member id says match (the starting m);
    /// `blocked`: every blocked pair, the data EM runs on; `members`: for name frequencies.
    pub fn estimate(
        random: &Patterns,
        labelled: &Patterns,
        blocked: &Patterns,
        members: &[Prepared],
    ) -> Model {
        let uc = level_counts(random, |_, n| n);
        let mut u = [[0.0; MAX_LEVELS]; FIELDS];
        for f in 0..FIELDS {
            u[f] = normalise(&uc[f], LEVELS[f], 0.5);
        }
        // Starting m: from the id-linked pairs when there are enough, else a generic guess
        // (most mass on agreement, decreasing with each level).
        let mut m = [[0.0; MAX_LEVELS]; FIELDS];
        let lc = level_counts(labelled, |_, n| n);
        for f in 0..FIELDS {
            let n: f64 = lc[f][..LEVELS[f]].iter().sum();
            m[f] = if n >= 20.0 {
                normalise(&lc[f], LEVELS[f], 1.0)
            } else {
                let mut guess = [0.0; MAX_LEVELS];
                for (l, g) in guess.iter_mut().enumerate().take(LEVELS[f]) {
                    *g = 0.9f64.powi(1) * 0.1f64.powi(l as i32) + 1e-3;
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
        model.em(blocked);
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
    fn em(&mut self, blocked: &Patterns) {
        if blocked.is_empty() {
            return;
        }
        for it in 0..50 {
            let mut posterior: HashMap<&Gamma, f64> = HashMap::with_capacity(blocked.len());
            let mut matched = 0.0;
            let mut total = 0.0;
            for (g, &n) in blocked {
                let bf = self.bayes_factor_untf(g);
                let odds = self.lambda / (1.0 - self.lambda) * bf;
                let p = if odds.is_infinite() {
                    1.0
                } else {
                    odds / (1.0 + odds)
                };
                posterior.insert(g, p);
                matched += p * n;
                total += n;
            }
            let mc = level_counts(blocked, |g, n| posterior.get(g).copied().unwrap_or(0.0) * n);
            let mut delta: f64 = 0.0;
            for f in 0..FIELDS {
                let next = normalise(&mc[f], LEVELS[f], 0.1);
                for l in 0..LEVELS[f] {
                    delta = delta.max((next[l] - self.m[f][l]).abs());
                }
                self.m[f] = next;
            }
            self.lambda = (matched / total).clamp(1e-4, 1.0 - 1e-4);
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

    /// The prior log-odds of a match among blocked pairs, in bits.
    pub fn prior_bits(&self) -> f64 {
        (self.lambda / (1.0 - self.lambda)).log2()
    }
}

/// Probability from a match weight in bits (prior included).
pub fn probability(bits: f64) -> f64 {
    let odds = bits.clamp(-60.0, 60.0).exp2();
    odds / (1.0 + odds)
}
