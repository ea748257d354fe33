//! Samples and the checks every one passes, from the JSON API or an Apple Health export.
//!
//! A refused sample is reported by its position (index or line) and field with a reason that
//! names the expected form, never the value sent: values are patient data.

use crate::metric::Metric;
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most samples one JSON request may carry (a day of per-minute heart rate is 1 440).
pub const MAX_SAMPLES: usize = 10_000;

/// How far ahead of the server's clock a device's clock may run.
pub const FUTURE_SKEW: Duration = Duration::minutes(10);

/// Longest a sample may span (a night's sleep, a day's steps).
pub const MAX_SPAN: Duration = Duration::hours(24);

/// A device, as its owner's app names it. Only `id` leaves the object store (in provenance
/// and, keyed, in the lake): names may carry a person's name ("Jane's Watch").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// `[A-Za-z0-9._:-]`, 1 to 128 characters, stable per device.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// One checked sample, its value in [`Metric::unit`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub device: String,
    pub metric: Metric,
    /// With the offset the device gave: it decides the local day.
    pub start: DateTime<FixedOffset>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<FixedOffset>>,
    pub value: f64,
}

/// What makes two samples the same: device, metric and start instant (whatever the offset
/// it is written with).
pub type SampleKey = (String, Metric, DateTime<Utc>);

impl Sample {
    pub fn key(&self) -> SampleKey {
        (self.device.clone(), self.metric, self.start.to_utc())
    }

    /// The UTC day of the start: where the sample is stored.
    pub fn utc_day(&self) -> NaiveDate {
        self.start.to_utc().date_naive()
    }
}

/// Why a sample was refused: the field and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Invalid {
    pub field: &'static str,
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Invalid {
    Invalid {
        field,
        reason: reason.into(),
    }
}

/// The earliest instant a sample may have: before it a device's clock was surely unset.
fn earliest() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

/// Checks one sample and converts its value into the metric's unit.
pub fn check(
    device: &str,
    metric: Metric,
    start: DateTime<FixedOffset>,
    end: Option<DateTime<FixedOffset>>,
    value: f64,
    unit: &str,
    now: DateTime<Utc>,
) -> Result<Sample, Invalid> {
    let latest = now + FUTURE_SKEW;
    if start.to_utc() > latest {
        return Err(invalid("start", "in the future"));
    }
    if start.to_utc() < earliest() {
        return Err(invalid("start", "before 1970"));
    }
    if let Some(end) = end {
        if end < start {
            return Err(invalid("end", "before start"));
        }
        if end - start > MAX_SPAN {
            return Err(invalid("end", "more than 24 hours after start"));
        }
        if end.to_utc() > latest {
            return Err(invalid("end", "in the future"));
        }
    }
    if !value.is_finite() {
        return Err(invalid("value", "must be a finite number"));
    }
    let canonical = metric.to_canonical(value, unit).ok_or_else(|| {
        let units: Vec<&str> = metric.units().iter().map(|(u, _)| *u).collect();
        invalid(
            "unit",
            format!(
                "not a unit of {} (expected one of {})",
                metric.name(),
                units.join(", ")
            ),
        )
    })?;
    let (low, high) = metric.range();
    if !(low..=high).contains(&canonical) {
        return Err(invalid(
            "value",
            format!(
                "not a plausible {} (expected {low}–{high} {})",
                metric.name(),
                metric.unit()
            ),
        ));
    }
    if metric == Metric::Sleep
        && let Some(end) = end
        && canonical > (end - start).num_seconds() as f64 / 60.0 + 1.0
    {
        return Err(invalid(
            "value",
            "more minutes asleep than between start and end",
        ));
    }
    Ok(Sample {
        device: device.to_owned(),
        metric,
        start,
        end,
        value: canonical,
    })
}

/// Checks a device id: the same characters as every other id (it goes into object keys).
pub fn check_device(device: &Device) -> Result<(), Invalid> {
    p360_events::check_token("device id", &device.id).map_err(|_| {
        invalid(
            "device.id",
            "only letters, digits, '.', '_', ':' and '-' (1 to 128 characters)",
        )
    })?;
    for (field, v) in [
        ("device.name", &device.name),
        ("device.model", &device.model),
    ] {
        if v.as_ref().is_some_and(|s| s.chars().count() > 200) {
            return Err(invalid(field, "at most 200 characters"));
        }
    }
    Ok(())
}

const START_SHAPE: &str = "an RFC 3339 instant with its UTC offset, e.g. 2026-03-01T07:30:00+01:00";

fn instant(
    v: Option<&Value>,
    field: &'static str,
) -> Result<Option<DateTime<FixedOffset>>, Invalid> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(Some)
            .map_err(|_| invalid(field, format!("expected {START_SHAPE}"))),
        Some(_) => Err(invalid(field, format!("expected {START_SHAPE}"))),
    }
}

/// Reads and checks one sample of a JSON request (`{metric, start, end?, value, unit}`).
pub fn from_json(device: &str, v: &Value, now: DateTime<Utc>) -> Result<Sample, Invalid> {
    let Value::Object(o) = v else {
        return Err(invalid(
            "sample",
            "expected {\"metric\", \"start\", \"end\"?, \"value\", \"unit\"}",
        ));
    };
    if o.keys()
        .any(|k| !matches!(k.as_str(), "metric" | "start" | "end" | "value" | "unit"))
    {
        return Err(invalid(
            "sample",
            "unknown field (expected metric, start, end, value, unit)",
        ));
    }
    let metric = o
        .get("metric")
        .and_then(Value::as_str)
        .and_then(Metric::parse)
        .ok_or_else(|| invalid("metric", format!("expected one of {}", Metric::names())))?;
    let start = instant(o.get("start"), "start")?
        .ok_or_else(|| invalid("start", format!("required, {START_SHAPE}")))?;
    let end = instant(o.get("end"), "end")?;
    let value = o
        .get("value")
        .and_then(Value::as_f64)
        .ok_or_else(|| invalid("value", "required, a number"))?;
    let unit = o
        .get("unit")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("unit", format!("required, e.g. {}", metric.unit())))?;
    check(device, metric, start, end, value, unit, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-18T12:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn field(v: Value) -> (&'static str, String) {
        let e = from_json("watch-1", &v, now()).unwrap_err();
        (e.field, e.reason)
    }

    #[test]
    fn a_good_sample_is_converted_into_the_metric_unit() {
        let s = from_json(
            "scale-1",
            &json!({"metric": "weight", "start": "2026-03-01T07:30:00+01:00", "value": 179.7, "unit": "[lb_av]"}),
            now(),
        )
        .unwrap();
        assert!((s.value - 81.51).abs() < 0.01);
        assert_eq!(s.start.offset().local_minus_utc(), 3600);
        assert_eq!(s.utc_day(), NaiveDate::from_ymd_opt(2026, 3, 1).unwrap());
        let g = from_json(
            "meter",
            &json!({"metric": "glucose", "start": "2026-03-01T07:30:00Z", "value": 5.5, "unit": "mmol/L"}),
            now(),
        )
        .unwrap();
        assert!((g.value - 99.09).abs() < 0.01);
    }

    #[test]
    fn errors_name_the_field_and_never_the_value() {
        let base = json!({"metric": "heart_rate", "start": "2026-03-01T07:30:00Z", "value": 72, "unit": "/min"});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        let (f, r) = field(with("value", json!(4321.5)));
        assert_eq!(f, "value");
        assert!(r.contains("heart rate") && !r.contains("4321"), "{r}");
        let (f, r) = field(with("unit", json!("furlongs/min")));
        assert_eq!(f, "unit");
        assert!(!r.contains("furlongs"), "{r}");
        let (f, r) = field(with("metric", json!("mood-of-jane")));
        assert_eq!(f, "metric");
        assert!(!r.contains("jane"), "{r}");
        let (f, _) = field(with("start", json!("yesterday")));
        assert_eq!(f, "start");
        let (f, _) = field(with("start", json!("2026-03-01T07:30:00")));
        assert_eq!(f, "start", "an instant without offset has no local day");
        let (f, r) = field(with("start", json!("2026-03-18T13:00:00Z")));
        assert_eq!((f, r.as_str()), ("start", "in the future"));
        assert!(from_json("w", &with("start", json!("2026-03-18T12:05:00Z")), now()).is_ok());
        let (f, _) = field(with("end", json!("2026-03-01T07:00:00Z")));
        assert_eq!(f, "end");
        let (f, _) = field(with("end", json!("2026-03-02T08:00:00Z")));
        assert_eq!(f, "end");
        let (f, _) = field(with("value", json!("72")));
        assert_eq!(f, "value");
        let (f, r) = field(with("secret", json!("Jane Doe")));
        assert_eq!(f, "sample");
        assert!(!r.contains("secret"), "{r}");
        let (f, _) = field(json!([1, 2]));
        assert_eq!(f, "sample");
    }

    #[test]
    fn sleep_cannot_exceed_its_span() {
        let s = json!({"metric": "sleep", "start": "2026-03-01T23:00:00Z", "end": "2026-03-02T00:00:00Z", "value": 90, "unit": "min"});
        assert_eq!(field(s).0, "value");
        let s = json!({"metric": "sleep", "start": "2026-03-01T23:00:00Z", "end": "2026-03-02T00:00:00Z", "value": 1, "unit": "h"});
        assert!(from_json("w", &s, now()).is_ok());
    }

    #[test]
    fn device_ids_are_tokens() {
        let d = |id: &str| Device {
            id: id.into(),
            name: None,
            model: None,
        };
        assert!(check_device(&d("withings-bpm-01")).is_ok());
        for bad in ["", "../x", "a/b", "Jane's watch"] {
            assert_eq!(
                check_device(&d(bad)).unwrap_err().field,
                "device.id",
                "{bad}"
            );
        }
    }
}
