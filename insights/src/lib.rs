//! Insights: care gaps computed from quality-measure definitions kept as data (`measures/`),
//! tips for patients built from open gaps and trends, each with the evidence behind it.

pub mod dashboards;
pub mod engine;
pub mod measure;
pub mod record;
pub mod suppress;
pub mod tips;
