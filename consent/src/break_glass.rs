//! Break-glass as a policy: who may open a record in an emergency without the patient's
//! grant, how often, and the patient's right to say no in advance.
//!
//! The check is a pure function of what the caller looked up (the provider's NPI status, the
//! patient's opt-out, the provider's sessions in the last 24 hours), so the property test can
//! hold it against a reference model and `explain` can say why.

use crate::model::Grant;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Who may break the glass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BreakGlassMode {
    /// Nobody: emergency access only through a grant the patient gave beforehand.
    Off,
    /// Providers whose profile carries an NPI (check digit verified when it was set).
    #[default]
    VerifiedNpi,
    /// Any provider account.
    AnyProvider,
}

/// The deployment's break-glass policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakGlassPolicy {
    pub mode: BreakGlassMode,
    /// Sessions one provider may open in any 24 hours, across all patients.
    pub per_day: u32,
}

impl Default for BreakGlassPolicy {
    fn default() -> Self {
        Self {
            mode: BreakGlassMode::VerifiedNpi,
            per_day: 3,
        }
    }
}

/// What the check needs to know about this request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakGlassRequest {
    pub verified_npi: bool,
    pub patient_opted_out: bool,
    /// Break-glass sessions this provider opened in the 24 hours before now.
    pub opened_last_day: u32,
}

/// Why a break-glass request is refused: a stable rule for programs, a reason for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub rule: &'static str,
    pub reason: String,
}

impl BreakGlassPolicy {
    /// Permits or refuses opening a session now. The patient's opt-out wins over everything
    /// else the provider could show: it is the patient's decision.
    pub fn check(&self, req: BreakGlassRequest) -> Result<(), Refusal> {
        let refuse = |rule, reason: &str| {
            Err(Refusal {
                rule,
                reason: reason.to_owned(),
            })
        };
        if self.mode == BreakGlassMode::Off {
            return refuse(
                "break_glass_off",
                "emergency access is turned off in this deployment",
            );
        }
        if self.mode == BreakGlassMode::VerifiedNpi && !req.verified_npi {
            return refuse(
                "break_glass_unverified",
                "emergency access needs a provider profile with a verified NPI",
            );
        }
        if req.patient_opted_out {
            return refuse(
                "break_glass_opted_out",
                "the patient has opted out of emergency access to their record",
            );
        }
        if req.opened_last_day >= self.per_day {
            return Err(Refusal {
                rule: "break_glass_limit",
                reason: format!(
                    "at most {} emergency sessions per provider in 24 hours",
                    self.per_day
                ),
            });
        }
        Ok(())
    }
}

/// How many of a provider's grants are break-glass sessions opened in the 24 hours before
/// `now`.
pub fn opened_last_day(grants: &[Grant], now: DateTime<Utc>) -> u32 {
    let since = now - Duration::hours(24);
    let n = grants
        .iter()
        .filter(|g| g.break_glass && g.created_at > since && g.created_at <= now)
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(verified_npi: bool, patient_opted_out: bool, opened_last_day: u32) -> BreakGlassRequest {
        BreakGlassRequest {
            verified_npi,
            patient_opted_out,
            opened_last_day,
        }
    }

    #[test]
    fn each_refusal_has_its_rule() {
        let p = BreakGlassPolicy::default();
        assert_eq!(p.check(req(true, false, 0)), Ok(()));
        assert_eq!(
            p.check(req(false, false, 0)).unwrap_err().rule,
            "break_glass_unverified"
        );
        assert_eq!(
            p.check(req(true, true, 0)).unwrap_err().rule,
            "break_glass_opted_out"
        );
        assert_eq!(
            p.check(req(true, false, 3)).unwrap_err().rule,
            "break_glass_limit"
        );
        let any = BreakGlassPolicy {
            mode: BreakGlassMode::AnyProvider,
            per_day: 1,
        };
        assert_eq!(any.check(req(false, false, 0)), Ok(()));
        assert_eq!(
            any.check(req(false, false, 1)).unwrap_err().rule,
            "break_glass_limit"
        );
        let off = BreakGlassPolicy {
            mode: BreakGlassMode::Off,
            per_day: 10,
        };
        assert_eq!(
            off.check(req(true, false, 0)).unwrap_err().rule,
            "break_glass_off"
        );
    }
}
