//! Grants and what they cover.

use chrono::{DateTime, Duration, Utc};
use p360_events::{PatientId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What a piece of the record is, for consent (the model's categories: each fact has one).
pub use p360_model::Category;

/// Why the provider wants access (a subset of HL7 v3 PurposeOfUse).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Treatment (TREAT).
    Treatment,
    /// Care coordination (COC).
    CareCoordination,
    /// Emergency treatment (ETREAT): break-glass only.
    Emergency,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Treatment => "treatment",
            Purpose::CareCoordination => "care_coordination",
            Purpose::Emergency => "emergency",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Purpose::Treatment,
            Purpose::CareCoordination,
            Purpose::Emergency,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }

    /// The HL7 v3 ActReason code, for the FHIR Consent.
    pub fn hl7_code(self) -> &'static str {
        match self {
            Purpose::Treatment => "TREAT",
            Purpose::CareCoordination => "COC",
            Purpose::Emergency => "ETREAT",
        }
    }
}

/// What a grant opens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// The non-sensitive categories readable; `None` means all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<BTreeSet<Category>>,
    /// Sensitive categories the patient chose to include by name.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub sensitive: BTreeSet<Category>,
    /// Whether the grantee may add episodes to the record.
    #[serde(default)]
    pub write_episodes: bool,
}

impl Scope {
    /// Everything non-sensitive, read only.
    pub fn read_all() -> Self {
        Self {
            categories: None,
            sensitive: BTreeSet::new(),
            write_episodes: false,
        }
    }

    pub fn covers(&self, category: Category) -> bool {
        if category.is_sensitive() {
            self.sensitive.contains(&category)
        } else {
            self.categories
                .as_ref()
                .is_none_or(|set| set.contains(&category))
        }
    }

    /// Checks the scope is well formed: sensitive categories only in `sensitive`, and back.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(c) = self.sensitive.iter().find(|c| !c.is_sensitive()) {
            return Err(format!(
                "'{c}' is not a sensitive category; list it in categories"
            ));
        }
        if let Some(c) = self.categories.iter().flatten().find(|c| c.is_sensitive()) {
            return Err(format!(
                "'{c}' is a sensitive category; list it in sensitive to share it"
            ));
        }
        if self.categories.as_ref().is_some_and(BTreeSet::is_empty)
            && self.sensitive.is_empty()
            && !self.write_episodes
        {
            return Err("the scope opens nothing".into());
        }
        Ok(())
    }
}

/// A patient's grant of access to a grantee.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub id: String,
    pub patient: PatientId,
    pub grantee: UserId,
    pub scope: Scope,
    pub purpose: Purpose,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// A provider's own emergency access (no patient grant), flagged everywhere.
    #[serde(default)]
    pub break_glass: bool,
    /// The reason stated for break-glass access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Bumped on every change: extend and revoke are conditional on it.
    pub version: u64,
}

/// Where a grant stands at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantState {
    Pending,
    Active,
    Expired,
    Revoked,
}

impl Grant {
    pub fn state(&self, now: DateTime<Utc>) -> GrantState {
        if self.revoked_at.is_some_and(|r| r <= now) {
            GrantState::Revoked
        } else if now < self.start {
            GrantState::Pending
        } else if now >= self.end {
            GrantState::Expired
        } else {
            GrantState::Active
        }
    }

    /// The grant as a FHIR R4 Consent resource (scope patient-privacy, provision permit for
    /// the grantee, the period, the purpose, and the categories as security labels).
    pub fn to_fhir(&self, now: DateTime<Utc>) -> serde_json::Value {
        let status = match self.state(now) {
            GrantState::Pending | GrantState::Active => "active",
            GrantState::Expired | GrantState::Revoked => "inactive",
        };
        let mut classes: Vec<&str> = match &self.scope.categories {
            None => Category::ALL
                .iter()
                .filter(|c| !c.is_sensitive())
                .map(|c| c.as_str())
                .collect(),
            Some(set) => set.iter().map(|c| c.as_str()).collect(),
        };
        classes.extend(self.scope.sensitive.iter().map(|c| c.as_str()));
        let mut actions = vec![serde_json::json!({"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}]})];
        if self.scope.write_episodes {
            actions.push(serde_json::json!({"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "correct"}]}));
        }
        serde_json::json!({
            "resourceType": "Consent",
            "id": self.id,
            "status": status,
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": format!("Patient/{}", self.patient)},
            "dateTime": self.created_at.to_rfc3339(),
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
            "provision": {
                "type": "permit",
                "period": {"start": self.start.to_rfc3339(), "end": self.revoked_at.map_or(self.end, |r| r.min(self.end)).to_rfc3339()},
                "actor": [{
                    "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                    "reference": {"reference": format!("Practitioner/{}", self.grantee)}
                }],
                "action": actions,
                "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": self.purpose.hl7_code()}],
                "class": classes.iter().map(|c| serde_json::json!({"system": "https://p360.dev/fhir/CodeSystem/consent-category", "code": c})).collect::<Vec<_>>()
            }
        })
    }
}

/// Limits on grant periods.
#[derive(Clone, Copy, Debug)]
pub struct GrantLimits {
    pub default_days: i64,
    pub max_days: i64,
    pub break_glass_hours: i64,
}

impl Default for GrantLimits {
    fn default() -> Self {
        Self {
            default_days: 90,
            max_days: 365,
            break_glass_hours: 4,
        }
    }
}

impl GrantLimits {
    /// The end of a grant starting at `start`: as asked, or the default; never past the maximum.
    pub fn end_for(
        &self,
        start: DateTime<Utc>,
        asked: Option<DateTime<Utc>>,
    ) -> Result<DateTime<Utc>, String> {
        let end = asked.unwrap_or(start + Duration::days(self.default_days));
        if end <= start {
            return Err("the end must be after the start".into());
        }
        if end > start + Duration::days(self.max_days) {
            return Err(format!("a grant lasts at most {} days", self.max_days));
        }
        Ok(end)
    }
}

/// Something the patient app shows the patient (e.g. an emergency access to their record).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    pub patient: PatientId,
    pub at: DateTime<Utc>,
    /// `break_glass`.
    pub kind: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
}

/// A patient's choices about payor uses of their data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyticsConsent {
    /// Included (pseudonymized) in population dashboards.
    pub population_analytics: bool,
    /// Sent personalized tips.
    pub personalized_tips: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_categories_need_naming() {
        let s = Scope::read_all();
        assert!(s.covers(Category::Labs));
        assert!(!s.covers(Category::BehavioralHealth));
        let mut named = Scope::read_all();
        named.sensitive.insert(Category::HivSti);
        assert!(named.covers(Category::HivSti));
        assert!(!named.covers(Category::Genetic));
        let narrow = Scope {
            categories: Some([Category::Labs].into()),
            ..Scope::read_all()
        };
        assert!(narrow.covers(Category::Labs));
        assert!(!narrow.covers(Category::Medications));
        let wrong = Scope {
            categories: Some([Category::Genetic].into()),
            ..Scope::read_all()
        };
        assert!(wrong.validate().unwrap_err().contains("sensitive"));
    }

    #[test]
    fn periods_default_to_ninety_days_and_are_capped() {
        let limits = GrantLimits::default();
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            limits.end_for(start, None).unwrap(),
            start + Duration::days(90)
        );
        assert!(
            limits
                .end_for(start, Some(start + Duration::days(400)))
                .is_err()
        );
        assert!(limits.end_for(start, Some(start)).is_err());
    }
}
