//! Consent: the patient decides which provider sees what, for how long.
//!
//! - [`model`]: grants (grantee, scope of categories, purpose, period), sensitive categories
//!   that must be named, analytics consent, grants as FHIR Consent resources;
//! - [`store`]: the consent store port and its SQLite adapter (conditional extend / revoke);
//! - [`decision`]: the one policy decision point, permit/deny with the rule and the reason;
//! - [`break_glass`]: the emergency-access policy (who, how often, the patient's opt-out);
//! - [`ledger`]: the patient-visible, hash-chained access ledger, anchored by checkpoints
//!   ([`checkpoint`]) kept outside its database.

pub mod break_glass;
pub mod checkpoint;
pub mod decision;
#[cfg(feature = "aws")]
pub mod dynamodb;
pub mod ledger;
pub mod model;
pub mod store;
#[cfg(feature = "testsuite")]
pub mod testsuite;

pub use break_glass::{BreakGlassMode, BreakGlassPolicy};
pub use decision::{Action, Decision, Pdp, Subject};
pub use model::{
    AnalyticsConsent, Category, Grant, GrantLimits, GrantState, Notification, Purpose, Scope,
};
pub use store::{ConsentError, ConsentStore, SqliteConsentStore};
