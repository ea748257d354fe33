//! The one policy decision point: may this principal do this to this patient's record, now,
//! and why (which grant, which rule). Every read and write path asks it; it reads the grants
//! from the store on every call, so revocation and expiry bite on the next request.

use crate::model::{Category, Grant, GrantState, Purpose};
use crate::store::{ConsentStore, Result};
use chrono::{DateTime, Utc};
use p360_clock::SharedClock;
use p360_events::{PatientId, Role};
use serde::Serialize;
use std::sync::Arc;

/// What is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Read(Category),
    /// Adding to the record (providers: episodes).
    Write(Category),
}

impl Action {
    pub fn category(self) -> Category {
        match self {
            Action::Read(c) | Action::Write(c) => c,
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            Action::Read(_) => "read",
            Action::Write(_) => "write",
        }
    }
}

/// Who asks, as far as the decision is concerned.
#[derive(Clone, Debug)]
pub struct Subject<'a> {
    pub user_id: &'a str,
    pub role: Role,
    /// The record a patient owns.
    pub patient_id: Option<&'a PatientId>,
}

/// The answer, with its reason. `rule` is a stable code for programs; `reason` is for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub permit: bool,
    pub rule: &'static str,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<Purpose>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
}

impl Decision {
    /// A permit by `rule`, with no grant behind it (owner, system, an administrator's look).
    pub fn permit(rule: &'static str, reason: String) -> Self {
        Self {
            permit: true,
            rule,
            reason,
            grant_id: None,
            purpose: None,
            break_glass: false,
        }
    }

    /// A refusal by `rule`.
    pub fn deny(rule: &'static str, reason: String) -> Self {
        Self {
            permit: false,
            ..Self::permit(rule, reason)
        }
    }
}

/// Decides from the grants between the patient and the subject (already loaded). Pure: the
/// same inputs give the same answer, which is what `explain` shows.
pub fn decide(
    subject: &Subject<'_>,
    patient: &PatientId,
    action: Action,
    grants: &[Grant],
    now: DateTime<Utc>,
) -> Decision {
    match subject.role {
        Role::Patient if subject.patient_id == Some(patient) => {
            return Decision::permit("owner", "the patient's own record".into());
        }
        Role::Patient => {
            return Decision::deny(
                "not_owner",
                "a patient may act only on their own record".into(),
            );
        }
        Role::System => {
            return Decision::permit("system", "a pipeline stage on the system's behalf".into());
        }
        Role::Admin => {
            return Decision::deny(
                "admin_no_records",
                "administrators manage the system; they do not read records".into(),
            );
        }
        Role::PayorAnalyst => {
            return Decision::deny(
                "analyst_no_records",
                "payor analysts see pseudonymized population data only, not records".into(),
            );
        }
        Role::Provider => {}
    }
    let category = action.category();
    let covers = |g: &Grant| match action {
        Action::Read(c) => g.scope.covers(c),
        Action::Write(c) => g.scope.write_episodes && c == Category::Episodes,
    };
    let mine: Vec<&Grant> = grants
        .iter()
        .filter(|g| &g.patient == patient && g.grantee.as_str() == subject.user_id)
        .collect();
    // A patient's grant is preferred over the provider's own break-glass access.
    let mut usable: Vec<&&Grant> = mine
        .iter()
        .filter(|g| g.state(now) == GrantState::Active && covers(g))
        .collect();
    usable.sort_by_key(|g| (g.break_glass, std::cmp::Reverse(g.end)));
    if let Some(g) = usable.first() {
        let how = if g.break_glass {
            "emergency (break-glass) access"
        } else {
            "the patient's grant"
        };
        return Decision {
            grant_id: Some(g.id.clone()),
            purpose: Some(g.purpose),
            break_glass: g.break_glass,
            ..Decision::permit(
                if g.break_glass {
                    "break_glass"
                } else {
                    "grant"
                },
                format!(
                    "{how} {} allows {} of {category} until {}",
                    g.id,
                    action.verb(),
                    g.end.to_rfc3339()
                ),
            )
        };
    }
    // Denied: say the most useful reason, from the most recent grant.
    let explain = |g: &Grant| -> Decision {
        let (rule, reason) = match g.state(now) {
            GrantState::Revoked => (
                "grant_revoked",
                format!(
                    "grant {} was revoked at {}",
                    g.id,
                    g.revoked_at.unwrap_or(now).to_rfc3339()
                ),
            ),
            GrantState::Expired => (
                "grant_expired",
                format!("grant {} expired at {}", g.id, g.end.to_rfc3339()),
            ),
            GrantState::Pending => (
                "grant_pending",
                format!("grant {} starts at {}", g.id, g.start.to_rfc3339()),
            ),
            GrantState::Active if matches!(action, Action::Write(_)) => (
                "not_in_scope",
                format!("grant {} does not allow adding {category}", g.id),
            ),
            GrantState::Active if category.is_sensitive() => (
                "sensitive_not_named",
                format!(
                    "{category} is a sensitive category and grant {} does not name it",
                    g.id
                ),
            ),
            GrantState::Active => (
                "not_in_scope",
                format!("grant {} does not include {category}", g.id),
            ),
        };
        Decision {
            grant_id: Some(g.id.clone()),
            ..Decision::deny(rule, reason)
        }
    };
    let active = mine
        .iter()
        .find(|g| g.state(now) == GrantState::Active)
        .or_else(|| mine.first());
    match active {
        Some(g) => explain(g),
        None => Decision::deny(
            "no_grant",
            "the patient has not granted this provider access".into(),
        ),
    }
}

/// The decision point over a consent store.
#[derive(Clone)]
pub struct Pdp {
    store: Arc<dyn ConsentStore>,
    clock: SharedClock,
}

impl Pdp {
    /// A decision point on the system clock.
    pub fn new(store: Arc<dyn ConsentStore>) -> Self {
        Self {
            store,
            clock: p360_clock::system(),
        }
    }

    /// Decides at `clock`'s time (tests move it to see grants expire).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    pub fn store(&self) -> &Arc<dyn ConsentStore> {
        &self.store
    }

    /// The clock decisions are taken at; grant periods are set from it too.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Decides one action; grants are read now, never from a cache.
    pub async fn decide(
        &self,
        subject: &Subject<'_>,
        patient: &PatientId,
        action: Action,
    ) -> Result<Decision> {
        self.decide_all(subject, patient, &[action])
            .await
            .map(|mut d| d.remove(0))
    }

    /// Decides several actions on one read of the grants (a record view filters by category).
    pub async fn decide_all(
        &self,
        subject: &Subject<'_>,
        patient: &PatientId,
        actions: &[Action],
    ) -> Result<Vec<Decision>> {
        let grants = match subject.role {
            Role::Provider => {
                let grantee = p360_events::UserId::parse(subject.user_id)
                    .map_err(|e| crate::store::ConsentError::Invalid(e.to_string()))?;
                self.store.between(patient, &grantee).await?
            }
            _ => Vec::new(),
        };
        let now = self.clock.now();
        Ok(actions
            .iter()
            .map(|a| decide(subject, patient, *a, &grants, now))
            .collect())
    }

    /// "Who can see my `category`, and why": every grantee of the patient with the decision
    /// for that category now.
    pub async fn explain(
        &self,
        patient: &PatientId,
        category: Category,
    ) -> Result<Vec<(String, Decision)>> {
        let grants = self.store.for_patient(patient).await?;
        let now = self.clock.now();
        let mut grantees: Vec<&str> = grants.iter().map(|g| g.grantee.as_str()).collect();
        grantees.sort_unstable();
        grantees.dedup();
        Ok(grantees
            .into_iter()
            .map(|who| {
                let subject = Subject {
                    user_id: who,
                    role: Role::Provider,
                    patient_id: None,
                };
                let d = decide(&subject, patient, Action::Read(category), &grants, now);
                (who.to_owned(), d)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Scope;
    use chrono::Duration;
    use p360_events::UserId;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn grant(id: &str, scope: Scope, end: &str) -> Grant {
        Grant {
            id: id.into(),
            patient: PatientId::parse("pat-1").unwrap(),
            grantee: UserId::parse("dr-1").unwrap(),
            scope,
            purpose: Purpose::Treatment,
            start: at("2026-01-01T00:00:00Z"),
            end: at(end),
            created_at: at("2026-01-01T00:00:00Z"),
            revoked_at: None,
            break_glass: false,
            reason: None,
            version: 1,
        }
    }

    fn provider() -> Subject<'static> {
        Subject {
            user_id: "dr-1",
            role: Role::Provider,
            patient_id: None,
        }
    }

    #[test]
    fn each_rule_says_why() {
        let p = PatientId::parse("pat-1").unwrap();
        let now = at("2026-02-01T00:00:00Z");
        let d = decide(&provider(), &p, Action::Read(Category::Labs), &[], now);
        assert_eq!((d.permit, d.rule), (false, "no_grant"));

        let g = grant("g1", Scope::read_all(), "2026-04-01T00:00:00Z");
        let d = decide(
            &provider(),
            &p,
            Action::Read(Category::Labs),
            std::slice::from_ref(&g),
            now,
        );
        assert_eq!(
            (d.permit, d.rule, d.grant_id.as_deref()),
            (true, "grant", Some("g1"))
        );
        let d = decide(
            &provider(),
            &p,
            Action::Read(Category::BehavioralHealth),
            std::slice::from_ref(&g),
            now,
        );
        assert_eq!(d.rule, "sensitive_not_named");
        let d = decide(
            &provider(),
            &p,
            Action::Write(Category::Episodes),
            std::slice::from_ref(&g),
            now,
        );
        assert_eq!(d.rule, "not_in_scope");

        let d = decide(
            &provider(),
            &p,
            Action::Read(Category::Labs),
            std::slice::from_ref(&g),
            at("2026-04-01T00:00:00Z"),
        );
        assert_eq!(d.rule, "grant_expired", "the end is exclusive");

        let mut revoked = g.clone();
        revoked.revoked_at = Some(now - Duration::seconds(1));
        let d = decide(
            &provider(),
            &p,
            Action::Read(Category::Labs),
            &[revoked],
            now,
        );
        assert_eq!(d.rule, "grant_revoked");

        let other = PatientId::parse("pat-2").unwrap();
        let d = decide(&provider(), &other, Action::Read(Category::Labs), &[g], now);
        assert_eq!(d.rule, "no_grant", "a grant opens only its own patient");
    }

    #[test]
    fn owners_read_their_own_and_nobody_else_without_a_grant() {
        let p = PatientId::parse("pat-1").unwrap();
        let other = PatientId::parse("pat-2").unwrap();
        let now = at("2026-02-01T00:00:00Z");
        let me = Subject {
            user_id: "u-1",
            role: Role::Patient,
            patient_id: Some(&p),
        };
        assert!(decide(&me, &p, Action::Read(Category::Genetic), &[], now).permit);
        assert!(!decide(&me, &other, Action::Read(Category::Labs), &[], now).permit);
        for role in [Role::Admin, Role::PayorAnalyst] {
            let s = Subject {
                user_id: "x",
                role,
                patient_id: None,
            };
            assert!(!decide(&s, &p, Action::Read(Category::Labs), &[], now).permit);
        }
    }
}
