//! The security log: one structured line per refused request, ids only (user, role, patient,
//! rule), under its own target so that operators can route it to a SIEM and tests can read
//! it. Accesses to a patient's data are also in the patient's ledger; this log also covers
//! refusals that touch no record (bad tokens, role-only endpoints).

use crate::auth::Caller;
use p360_events::PatientId;

/// The `tracing` target of security events.
pub const TARGET: &str = "p360::security";

/// An authenticated caller was refused.
pub(crate) fn denied(caller: &Caller, patient: Option<&PatientId>, rule: &str) {
    tracing::warn!(
        target: TARGET,
        event = "access_denied",
        user_id = %caller.0.user_id,
        role = %caller.0.role,
        patient_id = patient.map_or("", PatientId::as_str),
        rule,
        "access denied"
    );
}

/// A request without a usable token was refused. `reason` is the verifier's (it never quotes
/// the token).
pub(crate) fn token_refused(reason: &str) {
    tracing::warn!(
        target: TARGET,
        event = "token_refused",
        reason,
        "token refused"
    );
}
