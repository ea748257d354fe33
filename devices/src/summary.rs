//! Daily summaries: per device, metric and local day, the count, mean, minimum, maximum and
//! sum of the samples, and the Observation fact that carries the day into the graph.
//!
//! The day is the sample's own local day (the offset the device wrote), so a night in another
//! time zone counts where it was lived. Sleep is the exception: a segment counts toward the
//! day of its end plus six hours, so that a night's segments before and after midnight land
//! on the morning they end in, while a nap ends on its own day.

use crate::metric::{Metric, Statistic};
use crate::sample::Sample;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use p360_events::PatientId;
use p360_model::{
    CodeSystem, Coding, Fact, FactBody, FactId, Observation, Producer, Provenance, SourceKind,
    Status, Value, When,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Sleep ending after 18:00 local time counts toward the next day (see the module docs).
const SLEEP_DAY_SHIFT: Duration = Duration::hours(6);

/// The local day a sample counts toward.
pub fn summary_day(s: &Sample) -> NaiveDate {
    match s.metric {
        Metric::Sleep => {
            let end = s
                .end
                .unwrap_or_else(|| s.start + Duration::seconds((s.value * 60.0).round() as i64));
            (end + SLEEP_DAY_SHIFT).date_naive()
        }
        _ => s.start.date_naive(),
    }
}

/// The UTC days whose stored samples can count toward local day `day` (offsets reach ±14 h;
/// sleep segments end up to 24 h after they start and shift by 6 h).
pub fn utc_days_for(day: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    (-2..=1).filter_map(move |d| day.checked_add_signed(Duration::days(d)))
}

/// One device's metric over one local day.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DaySummary {
    pub device: String,
    pub metric: Metric,
    pub day: NaiveDate,
    pub count: u32,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
}

impl DaySummary {
    /// The summary of the samples of `device`'s `metric` whose [`summary_day`] is `day`
    /// (others are skipped); `None` when there are none.
    pub fn of<'a>(
        device: &str,
        metric: Metric,
        day: NaiveDate,
        samples: impl IntoIterator<Item = &'a Sample>,
    ) -> Option<Self> {
        let mut count = 0u32;
        let (mut sum, mut min, mut max) = (0.0, f64::INFINITY, f64::NEG_INFINITY);
        for s in samples {
            if s.device != device || s.metric != metric || summary_day(s) != day {
                continue;
            }
            count += 1;
            sum += s.value;
            min = min.min(s.value);
            max = max.max(s.value);
        }
        (count > 0).then(|| DaySummary {
            device: device.to_owned(),
            metric,
            day,
            count,
            mean: sum / f64::from(count),
            min,
            max,
            sum,
        })
    }

    /// The value the graph holds: the mean of a level, the total of an amount, rounded to
    /// the metric's precision.
    pub fn value(&self) -> f64 {
        let v = match self.metric.statistic() {
            Statistic::Mean => self.mean,
            Statistic::Sum => self.sum,
        };
        let scale = 10f64.powi(self.metric.decimals());
        (v * scale).round() / scale
    }

    /// The Observation fact of this day. Its id derives from (patient, device, metric, day),
    /// not from the value, so a recomputed day is the same fact with a new value.
    pub fn to_fact(&self, patient: &PatientId, recorded: DateTime<Utc>) -> Fact {
        let m = self.metric;
        let source = Provenance {
            producer: Some(Producer {
                name: "p360-devices".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            }),
            ..Provenance::new(SourceKind::Device, self.device.as_str(), recorded)
        };
        Fact {
            id: fact_id(patient, &self.device, m, self.day),
            patient: patient.clone(),
            // A measurement stated outright by the device: nothing for the patient to review.
            status: Status::Confirmed,
            body: FactBody::Observation(Observation {
                kind: m.kind(),
                code: vec![Coding::new(CodeSystem::Loinc, m.loinc(), Some(m.display()))],
                value: Some(Value::Quantity {
                    value: self.value(),
                    unit: m.summary_unit().into(),
                    comparator: None,
                }),
                effective: When::Date(self.day),
                reference_range: None,
                interpretation: None,
            }),
            provenance: vec![source],
        }
    }
}

/// The id of the summary fact of (patient, device, metric, day).
pub fn fact_id(patient: &PatientId, device: &str, metric: Metric, day: NaiveDate) -> FactId {
    let key = format!("device-summary\u{1f}{patient}\u{1f}{device}\u{1f}{metric}\u{1f}{day}");
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    // Hex digits after a fixed prefix are always a valid token.
    FactId::parse(&format!("obs-{}", &digest[..24])).unwrap_or_else(|_| unreachable!())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn s(metric: Metric, start: &str, end: Option<&str>, value: f64) -> Sample {
        Sample {
            device: "watch".into(),
            metric,
            start: DateTime::parse_from_rfc3339(start).unwrap(),
            end: end.map(|e| DateTime::parse_from_rfc3339(e).unwrap()),
            value,
        }
    }

    fn day(d: &str) -> NaiveDate {
        d.parse().unwrap()
    }

    #[test]
    fn levels_average_and_amounts_add_up_per_local_day() {
        let samples = [
            s(Metric::HeartRate, "2026-03-01T08:00:00-05:00", None, 60.0),
            s(Metric::HeartRate, "2026-03-01T12:00:00-05:00", None, 90.0),
            // 02:00 UTC on the 2nd, but 21:00 on the 1st where it was measured.
            s(Metric::HeartRate, "2026-03-01T21:00:00-05:00", None, 75.0),
            s(Metric::HeartRate, "2026-03-02T08:00:00-05:00", None, 100.0),
            s(
                Metric::Steps,
                "2026-03-01T08:00:00-05:00",
                Some("2026-03-01T09:00:00-05:00"),
                1200.0,
            ),
            s(
                Metric::Steps,
                "2026-03-01T18:00:00-05:00",
                Some("2026-03-01T19:00:00-05:00"),
                800.0,
            ),
        ];
        let hr = DaySummary::of("watch", Metric::HeartRate, day("2026-03-01"), &samples).unwrap();
        assert_eq!((hr.count, hr.min, hr.max, hr.sum), (3, 60.0, 90.0, 225.0));
        assert_eq!(hr.value(), 75.0);
        let steps = DaySummary::of("watch", Metric::Steps, day("2026-03-01"), &samples).unwrap();
        assert_eq!((steps.count, steps.value()), (2, 2000.0));
        assert!(DaySummary::of("phone", Metric::Steps, day("2026-03-01"), &samples).is_none());
        assert!(DaySummary::of("watch", Metric::Weight, day("2026-03-01"), &samples).is_none());

        let f = steps.to_fact(&PatientId::parse("pat-1").unwrap(), Utc::now());
        let FactBody::Observation(o) = &f.body else {
            panic!("an observation")
        };
        assert_eq!(o.code[0].code, "41950-7");
        assert_eq!(
            o.value,
            Some(Value::Quantity {
                value: 2000.0,
                unit: "/d".into(),
                comparator: None
            })
        );
        assert_eq!(o.effective, When::Date(day("2026-03-01")));
        assert_eq!(f.provenance[0].source_kind, SourceKind::Device);
        assert_eq!(f.provenance[0].source_id, "watch");
    }

    #[test]
    fn the_fact_id_is_the_day_not_the_value() {
        let p = PatientId::parse("pat-1").unwrap();
        let a = [s(Metric::HeartRate, "2026-03-01T08:00:00Z", None, 60.0)];
        let b = [
            s(Metric::HeartRate, "2026-03-01T08:00:00Z", None, 60.0),
            s(Metric::HeartRate, "2026-03-01T09:00:00Z", None, 80.0),
        ];
        let fa = DaySummary::of("watch", Metric::HeartRate, day("2026-03-01"), &a).unwrap();
        let fb = DaySummary::of("watch", Metric::HeartRate, day("2026-03-01"), &b).unwrap();
        assert_eq!(fa.to_fact(&p, Utc::now()).id, fb.to_fact(&p, Utc::now()).id);
        assert_ne!(fa.value(), fb.value());
        let other = fact_id(&p, "watch", Metric::HeartRate, day("2026-03-02"));
        assert_ne!(other, fa.to_fact(&p, Utc::now()).id);
        assert_ne!(
            fact_id(&p, "phone", Metric::HeartRate, day("2026-03-01")),
            fa.to_fact(&p, Utc::now()).id
        );
    }

    #[test]
    fn a_night_counts_toward_the_morning_it_ends_in() {
        let night = [
            s(
                Metric::Sleep,
                "2026-03-01T23:00:00+01:00",
                Some("2026-03-01T23:50:00+01:00"),
                50.0,
            ),
            s(
                Metric::Sleep,
                "2026-03-02T00:10:00+01:00",
                Some("2026-03-02T06:40:00+01:00"),
                390.0,
            ),
            // A nap the next afternoon is the 2nd's too.
            s(
                Metric::Sleep,
                "2026-03-02T14:00:00+01:00",
                Some("2026-03-02T14:30:00+01:00"),
                30.0,
            ),
        ];
        let d = DaySummary::of("watch", Metric::Sleep, day("2026-03-02"), &night).unwrap();
        assert_eq!((d.count, d.value()), (3, 470.0));
        assert!(DaySummary::of("watch", Metric::Sleep, day("2026-03-01"), &night).is_none());
        for x in &night {
            assert!(utc_days_for(summary_day(x)).any(|u| u == x.utc_day()));
        }
    }

    #[test]
    fn the_stored_days_cover_every_offset() {
        for (start, off) in [
            ("2026-03-01T00:30:00+14:00", 14),
            ("2026-03-01T23:30:00-12:00", -12),
        ] {
            let x = s(Metric::HeartRate, start, None, 70.0);
            assert!(
                utc_days_for(summary_day(&x)).any(|u| u == x.utc_day()),
                "{off}"
            );
        }
    }
}
