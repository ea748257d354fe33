//! Wearables and home devices.
//!
//! Samples (heart rate, steps, sleep, SpO2, weight, blood pressure, glucose) come in through
//! the API as JSON ([`sample::from_json`]) or as an Apple Health export
//! ([`apple::AppleHealthReader`], streaming). Each is checked ([`sample::check`]: the metric's
//! units, converted into one; a physically possible value; a time with its offset, not in the
//! future) and taken in by [`store::submit`]: idempotent per (device, metric, start), stored
//! as a content-addressed batch and announced (DeviceReadingsReceived). The
//! [`stage::DevicesStage`] merges the batch into per-day files, recomputes the daily summaries
//! it touches ([`summary::DaySummary`]: count, mean, min, max, sum per device, metric and
//! local day) as Observation facts for the graph writer, and announces the new raw samples
//! for the lake (DeviceReadingsStored).

pub mod apple;
pub mod import;
pub mod metric;
pub mod sample;
pub mod stage;
pub mod store;
pub mod summary;

pub use metric::{Metric, Statistic};
pub use sample::{Device, Invalid, Sample};
pub use stage::DevicesStage;
