//! The insights stage and its store: a patient's care gaps (every measure of
//! `p360_insights::measure`) recomputed from their graph on each change, the tips built from
//! them for patients who opted in, and what the patient said about each tip.

pub mod stage;
pub mod store;

pub use stage::InsightsStage;
pub use store::{InsightsStore, StoredTip, TipState};
