//! The decision point against a reference model.
//!
//! Random sequences of grant / extend / narrow / revoke / clock-advance / break-glass /
//! opt-out / read / write operations by random callers run against the real store (SQLite),
//! the real decision point and the real break-glass policy, and every answer (permit or deny,
//! and the rule) must equal what the model below says. The model is written from the rules as
//! the README states them, not from the code: grants as plain records, time as a number.
//! Failing sequences are kept by proptest in `proptest-regressions/` and rerun first.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, Utc};
use p360_consent::break_glass::{BreakGlassRequest, opened_last_day};
use p360_consent::{
    Action, BreakGlassMode, BreakGlassPolicy, Category, ConsentStore, Grant, GrantLimits, Pdp,
    Purpose, Scope, SqliteConsentStore, Subject,
};
use p360_events::{PatientId, Role, UserId};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

// --- a clock that moves only when told ----------------------------------------------------

#[derive(Debug)]
struct ManualClock(Mutex<DateTime<Utc>>);

impl p360_clock::Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

// --- operations ------------------------------------------------------------------------------

const SHAREABLE: [Category; 5] = [
    Category::Labs,
    Category::Vitals,
    Category::Medications,
    Category::Documents,
    Category::Conditions,
];
const SENSITIVE: [Category; 2] = [Category::HivSti, Category::BehavioralHealth];
const ASKED: [Category; 9] = [
    Category::Labs,
    Category::Vitals,
    Category::Medications,
    Category::Documents,
    Category::Conditions,
    Category::Immunizations,
    Category::HivSti,
    Category::BehavioralHealth,
    Category::Genetic,
];
/// Providers 0 and 1 have a verified NPI; provider 2 does not.
const PROVIDERS: usize = 3;

#[derive(Clone, Debug)]
struct ScopeSpec {
    /// `None`: every non-sensitive category.
    shareable: Option<BTreeSet<usize>>,
    sensitive: BTreeSet<usize>,
    write: bool,
}

#[derive(Clone, Debug)]
enum Op {
    Grant {
        provider: usize,
        scope: ScopeSpec,
        /// Starts this many hours from now (0: at once).
        starts_in_hours: i64,
        days: i64,
    },
    Extend {
        grant: usize,
        days: i64,
    },
    Narrow {
        grant: usize,
        scope: ScopeSpec,
    },
    Revoke {
        grant: usize,
    },
    Advance {
        hours: i64,
    },
    BreakGlass {
        provider: usize,
    },
    OptOut(bool),
    Read {
        caller: usize,
        category: usize,
    },
    Write {
        caller: usize,
    },
}

fn scope_spec() -> impl Strategy<Value = ScopeSpec> {
    (
        prop::option::weighted(0.7, prop::collection::btree_set(0..SHAREABLE.len(), 1..=3)),
        prop::collection::btree_set(0..SENSITIVE.len(), 0..=2),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(shareable, sensitive, write)| ScopeSpec {
            shareable,
            sensitive,
            write,
        })
}

/// Callers: 0..3 providers, 3 the patient, 4 another patient, 5 an admin, 6 an analyst.
const CALLERS: usize = PROVIDERS + 4;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..PROVIDERS, scope_spec(), prop_oneof![3 => Just(0i64), 1 => 1i64..48], prop_oneof![1..=120i64, 360..=400i64])
            .prop_map(|(provider, scope, starts_in_hours, days)| Op::Grant { provider, scope, starts_in_hours, days }),
        1 => (0..8usize, prop_oneof![1..=200i64, 360..=400i64]).prop_map(|(grant, days)| Op::Extend { grant, days }),
        1 => (0..8usize, scope_spec()).prop_map(|(grant, scope)| Op::Narrow { grant, scope }),
        1 => (0..8usize).prop_map(|grant| Op::Revoke { grant }),
        2 => prop_oneof![1..=6i64, 20..=30i64, 24 * 80..=24 * 100i64].prop_map(|hours| Op::Advance { hours }),
        1 => (0..PROVIDERS).prop_map(|provider| Op::BreakGlass { provider }),
        1 => any::<bool>().prop_map(Op::OptOut),
        6 => (0..CALLERS, 0..ASKED.len()).prop_map(|(caller, category)| Op::Read { caller, category }),
        2 => (0..CALLERS).prop_map(|caller| Op::Write { caller }),
    ]
}

// --- the reference model --------------------------------------------------------------------

/// A grant as the model sees it. Times are hours since the start of the run.
#[derive(Clone, Debug)]
struct MGrant {
    provider: usize,
    shareable: Option<BTreeSet<Category>>,
    sensitive: BTreeSet<Category>,
    write: bool,
    start: i64,
    end: i64,
    created: i64,
    revoked: Option<i64>,
    break_glass: bool,
}

impl MGrant {
    fn revoked_by(&self, t: i64) -> bool {
        self.revoked.is_some_and(|r| r <= t)
    }

    fn active(&self, t: i64) -> bool {
        !self.revoked_by(t) && self.start <= t && t < self.end
    }

    /// Sensitive categories are readable only when named; others when listed (or all).
    fn reads(&self, c: Category) -> bool {
        if SENSITIVE.contains(&c) || c == Category::Genetic {
            self.sensitive.contains(&c)
        } else {
            self.shareable.as_ref().is_none_or(|s| s.contains(&c))
        }
    }
}

#[derive(Default)]
struct Model {
    now: i64,
    /// In creation order; index = the grant's number.
    grants: Vec<MGrant>,
    opted_out: bool,
}

const MAX_DAYS: i64 = 365;
const BG_HOURS: i64 = 4;
const BG_PER_DAY: u32 = 2;

impl Model {
    /// (permit, rule) for `caller` doing `action`.
    fn decide(&self, caller: usize, action: Action) -> (bool, &'static str) {
        match caller {
            3 => return (true, "owner"),
            4 => return (false, "not_owner"),
            5 => return (false, "admin_no_records"),
            6 => return (false, "analyst_no_records"),
            _ => {}
        }
        let t = self.now;
        let covers = |g: &MGrant| match action {
            Action::Read(c) => g.reads(c),
            Action::Write(c) => g.write && c == Category::Episodes,
        };
        let mine: Vec<&MGrant> = self
            .grants
            .iter()
            .filter(|g| g.provider == caller)
            .collect();
        let usable: Vec<&&MGrant> = mine.iter().filter(|g| g.active(t) && covers(g)).collect();
        if !usable.is_empty() {
            // The patient's own grant before the provider's emergency access.
            return if usable.iter().any(|g| !g.break_glass) {
                (true, "grant")
            } else {
                (true, "break_glass")
            };
        }
        // The reason comes from the newest grant that is active, else the newest grant
        // (newest: created last; of grants created at the same moment, the first made).
        let newest_first = |a: &&MGrant, b: &&MGrant| b.created.cmp(&a.created);
        let mut ordered = mine.clone();
        ordered.sort_by(newest_first); // stable: same-moment grants keep creation order
        let pick = ordered
            .iter()
            .find(|g| g.active(t))
            .or_else(|| ordered.first());
        let Some(g) = pick else {
            return (false, "no_grant");
        };
        let rule = if g.revoked_by(t) {
            "grant_revoked"
        } else if t < g.start {
            "grant_pending"
        } else if t >= g.end {
            "grant_expired"
        } else if matches!(action, Action::Write(_)) {
            "not_in_scope"
        } else if matches!(action, Action::Read(c) if SENSITIVE.contains(&c) || c == Category::Genetic)
        {
            "sensitive_not_named"
        } else {
            "not_in_scope"
        };
        (false, rule)
    }

    /// Whether a break-glass request is accepted, or the rule refusing it.
    fn break_glass(&self, provider: usize) -> Result<(), &'static str> {
        if provider == 2 {
            return Err("break_glass_unverified");
        }
        if self.opted_out {
            return Err("break_glass_opted_out");
        }
        let t = self.now;
        let recent = self
            .grants
            .iter()
            .filter(|g| {
                g.provider == provider && g.break_glass && g.created > t - 24 && g.created <= t
            })
            .count() as u32;
        if recent >= BG_PER_DAY {
            return Err("break_glass_limit");
        }
        Ok(())
    }
}

fn cats(spec: &ScopeSpec) -> (Option<BTreeSet<Category>>, BTreeSet<Category>) {
    (
        spec.shareable
            .as_ref()
            .map(|s| s.iter().map(|i| SHAREABLE[*i]).collect()),
        spec.sensitive.iter().map(|i| SENSITIVE[*i]).collect(),
    )
}

// --- the system under test ------------------------------------------------------------------

struct Real {
    store: Arc<SqliteConsentStore>,
    pdp: Pdp,
    clock: Arc<ManualClock>,
    t0: DateTime<Utc>,
    patient: PatientId,
    other: PatientId,
    ids: Vec<String>,
    limits: GrantLimits,
    policy: BreakGlassPolicy,
}

fn provider_id(i: usize) -> UserId {
    UserId::parse(&format!("dr-{i}")).unwrap()
}

impl Real {
    fn new() -> Self {
        let store = Arc::new(SqliteConsentStore::open(std::path::Path::new(":memory:")).unwrap());
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let clock = Arc::new(ManualClock(Mutex::new(t0)));
        let pdp = Pdp::new(store.clone()).with_clock(clock.clone());
        Self {
            store,
            pdp,
            clock,
            t0,
            patient: PatientId::parse("pat-1").unwrap(),
            other: PatientId::parse("pat-2").unwrap(),
            ids: Vec::new(),
            limits: GrantLimits {
                default_days: 90,
                max_days: MAX_DAYS,
                break_glass_hours: BG_HOURS,
            },
            policy: BreakGlassPolicy {
                mode: BreakGlassMode::VerifiedNpi,
                per_day: BG_PER_DAY,
            },
        }
    }

    fn now(&self) -> DateTime<Utc> {
        *self.clock.0.lock().unwrap()
    }

    fn scope(spec: &ScopeSpec) -> Scope {
        let (shareable, sensitive) = cats(spec);
        Scope {
            categories: shareable,
            sensitive,
            write_episodes: spec.write,
        }
    }

    async fn create(&mut self, grant: Grant) {
        self.store.create(&grant).await.unwrap();
        self.ids.push(grant.id);
    }

    async fn decide(&self, caller: usize, action: Action) -> (bool, &'static str) {
        let (user, role, owns) = match caller {
            c if c < PROVIDERS => (format!("dr-{c}"), Role::Provider, None),
            3 => ("u-pat-1".into(), Role::Patient, Some(&self.patient)),
            4 => ("u-pat-2".into(), Role::Patient, Some(&self.other)),
            5 => ("admin".into(), Role::Admin, None),
            _ => ("analyst".into(), Role::PayorAnalyst, None),
        };
        let subject = Subject {
            user_id: &user,
            role,
            patient_id: owns,
        };
        let d = self
            .pdp
            .decide(&subject, &self.patient, action)
            .await
            .unwrap();
        (d.permit, d.rule)
    }
}

// --- running one sequence ---------------------------------------------------------------------

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut real = Real::new();
    let mut model = Model::default();
    for (step, op) in ops.into_iter().enumerate() {
        let at = format!("step {step}: {op:?}");
        match op {
            Op::Grant {
                provider,
                scope,
                starts_in_hours,
                days,
            } => {
                let now = real.now();
                let start = now + Duration::hours(starts_in_hours);
                let end = real
                    .limits
                    .end_for(start, Some(start + Duration::days(days)));
                prop_assert_eq!(end.is_ok(), days <= MAX_DAYS, "{}", at);
                let Ok(end) = end else { continue };
                let s = Real::scope(&scope);
                prop_assert!(s.validate().is_ok(), "{}", at);
                let n = real.ids.len();
                real.create(Grant {
                    id: format!("g{n:04}"),
                    patient: real.patient.clone(),
                    grantee: provider_id(provider),
                    scope: s,
                    purpose: Purpose::Treatment,
                    start,
                    end,
                    created_at: now,
                    revoked_at: None,
                    break_glass: false,
                    reason: None,
                    version: 1,
                })
                .await;
                let (shareable, sensitive) = cats(&scope);
                model.grants.push(MGrant {
                    provider,
                    shareable,
                    sensitive,
                    write: scope.write,
                    start: model.now + starts_in_hours,
                    end: model.now + starts_in_hours + days * 24,
                    created: model.now,
                    revoked: None,
                    break_glass: false,
                });
            }
            // The grant index is a guess: no such grant yet, nothing to do.
            Op::Extend { grant, .. } | Op::Narrow { grant, .. } | Op::Revoke { grant }
                if grant >= real.ids.len() => {}
            Op::Extend { grant, days } => {
                let id = real.ids[grant].clone();
                let g = real.store.get(&id).await.unwrap().unwrap();
                let end = real
                    .limits
                    .end_for(g.start, Some(g.start + Duration::days(days)));
                prop_assert_eq!(end.is_ok(), days <= MAX_DAYS, "{}", at);
                let Ok(end) = end else { continue };
                let result = real.store.extend(&id, g.version, end).await;
                let m = &mut model.grants[grant];
                // A revoked grant stays revoked: changing it is a conflict.
                prop_assert_eq!(result.is_ok(), m.revoked.is_none(), "{}: {:?}", at, result);
                if result.is_ok() {
                    m.end = m.start + days * 24;
                }
            }
            Op::Narrow { grant, scope } => {
                let id = real.ids[grant].clone();
                let g = real.store.get(&id).await.unwrap().unwrap();
                let result = real
                    .store
                    .rescope(&id, g.version, &Real::scope(&scope))
                    .await;
                let m = &mut model.grants[grant];
                prop_assert_eq!(result.is_ok(), m.revoked.is_none(), "{}: {:?}", at, result);
                if result.is_ok() {
                    let (shareable, sensitive) = cats(&scope);
                    m.shareable = shareable;
                    m.sensitive = sensitive;
                    m.write = scope.write;
                }
            }
            Op::Revoke { grant } => {
                let id = real.ids[grant].clone();
                let g = real.store.get(&id).await.unwrap().unwrap();
                let result = real.store.revoke(&id, g.version, real.now()).await;
                let m = &mut model.grants[grant];
                prop_assert_eq!(result.is_ok(), m.revoked.is_none(), "{}: {:?}", at, result);
                if result.is_ok() {
                    m.revoked = Some(model.now);
                }
            }
            Op::Advance { hours } => {
                *real.clock.0.lock().unwrap() += Duration::hours(hours);
                model.now += hours;
            }
            Op::OptOut(v) => {
                real.store
                    .set_break_glass_opt_out(&real.patient, v)
                    .await
                    .unwrap();
                model.opted_out = v;
            }
            Op::BreakGlass { provider } => {
                let now = real.now();
                let request = BreakGlassRequest {
                    verified_npi: provider != 2,
                    patient_opted_out: real.store.break_glass_opt_out(&real.patient).await.unwrap(),
                    opened_last_day: opened_last_day(
                        &real
                            .store
                            .for_grantee(&provider_id(provider))
                            .await
                            .unwrap(),
                        now,
                    ),
                };
                let got = real.policy.check(request).map_err(|r| r.rule);
                let want = model.break_glass(provider);
                prop_assert_eq!(got, want, "{}", at);
                if got.is_ok() {
                    let n = real.ids.len();
                    real.create(Grant {
                        id: format!("g{n:04}"),
                        patient: real.patient.clone(),
                        grantee: provider_id(provider),
                        scope: Scope::read_all(),
                        purpose: Purpose::Emergency,
                        start: now,
                        end: now + Duration::hours(BG_HOURS),
                        created_at: now,
                        revoked_at: None,
                        break_glass: true,
                        reason: Some("unconscious in the emergency room".into()),
                        version: 1,
                    })
                    .await;
                    model.grants.push(MGrant {
                        provider,
                        shareable: None,
                        sensitive: BTreeSet::new(),
                        write: false,
                        start: model.now,
                        end: model.now + BG_HOURS,
                        created: model.now,
                        revoked: None,
                        break_glass: true,
                    });
                }
            }
            Op::Read { caller, category } => {
                let action = Action::Read(ASKED[category]);
                let got = real.decide(caller, action).await;
                prop_assert_eq!(got, model.decide(caller, action), "{}", at);
            }
            Op::Write { caller } => {
                let action = Action::Write(Category::Episodes);
                let got = real.decide(caller, action).await;
                prop_assert_eq!(got, model.decide(caller, action), "{}", at);
            }
        }
        prop_assert!(real.now() - real.t0 == Duration::hours(model.now), "{}", at);
    }
    Ok(())
}

/// Sequences per run: `PROPTEST_CASES` overrides (CI runs the default).
const SEQUENCES: u32 = 2000;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(SEQUENCES),
        ..ProptestConfig::default()
    })]

    #[test]
    fn decisions_match_the_reference_model(ops in prop::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops))?;
    }
}
