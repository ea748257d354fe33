//! What a device measures: each metric's unit, the units it may arrive in, the range a sample
//! can take, and the LOINC code and statistic of its daily summary.

use p360_model::ObservationKind;
use serde::{Deserialize, Serialize};

/// A kind of sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    HeartRate,
    Steps,
    /// Minutes asleep (a segment of a night, or a whole night).
    Sleep,
    /// Oxygen saturation by pulse oximetry.
    Spo2,
    /// Body weight.
    Weight,
    BloodPressureSystolic,
    BloodPressureDiastolic,
    /// Blood glucose (meter or CGM).
    Glucose,
}

/// How a day's samples become the summary's one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statistic {
    /// Levels (heart rate, weight…): the mean of the day's samples.
    Mean,
    /// Amounts (steps, minutes asleep): the day's total.
    Sum,
}

impl Metric {
    pub const ALL: [Metric; 8] = [
        Metric::HeartRate,
        Metric::Steps,
        Metric::Sleep,
        Metric::Spo2,
        Metric::Weight,
        Metric::BloodPressureSystolic,
        Metric::BloodPressureDiastolic,
        Metric::Glucose,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::HeartRate => "heart_rate",
            Metric::Steps => "steps",
            Metric::Sleep => "sleep",
            Metric::Spo2 => "spo2",
            Metric::Weight => "weight",
            Metric::BloodPressureSystolic => "blood_pressure_systolic",
            Metric::BloodPressureDiastolic => "blood_pressure_diastolic",
            Metric::Glucose => "glucose",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// The names `parse` accepts, for messages.
    pub fn names() -> String {
        Self::ALL.map(Metric::as_str).join(", ")
    }

    /// What it is called in messages.
    pub fn name(self) -> &'static str {
        match self {
            Metric::HeartRate => "heart rate",
            Metric::Steps => "step count",
            Metric::Sleep => "sleep duration",
            Metric::Spo2 => "oxygen saturation",
            Metric::Weight => "body weight",
            Metric::BloodPressureSystolic => "systolic blood pressure",
            Metric::BloodPressureDiastolic => "diastolic blood pressure",
            Metric::Glucose => "glucose",
        }
    }

    /// The UCUM unit samples are stored in.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::HeartRate => "/min",
            Metric::Steps => "{steps}",
            Metric::Sleep => "min",
            Metric::Spo2 => "%",
            Metric::Weight => "kg",
            Metric::BloodPressureSystolic | Metric::BloodPressureDiastolic => "mm[Hg]",
            Metric::Glucose => "mg/dL",
        }
    }

    /// The UCUM units a sample may arrive in, each with its factor into [`Metric::unit`].
    /// Listed rather than converted generically so that a dimensionless unit cannot pass as
    /// another (`%` as steps) and glucose gets its molar mass.
    pub fn units(self) -> &'static [(&'static str, f64)] {
        match self {
            Metric::HeartRate => &[("/min", 1.0), ("{beats}/min", 1.0), ("{beat}/min", 1.0)],
            Metric::Steps => &[
                ("{steps}", 1.0),
                ("{step}", 1.0),
                ("{count}", 1.0),
                ("1", 1.0),
            ],
            Metric::Sleep => &[("min", 1.0), ("h", 60.0), ("s", 1.0 / 60.0)],
            // A fraction (0.97) or a percentage (97).
            Metric::Spo2 => &[("%", 1.0), ("1", 100.0)],
            Metric::Weight => &[("kg", 1.0), ("g", 0.001), ("[lb_av]", 0.453_592_37)],
            Metric::BloodPressureSystolic | Metric::BloodPressureDiastolic => {
                &[("mm[Hg]", 1.0), ("kPa", 1000.0 / 133.322)]
            }
            // Glucose is 180.156 g/mol: 1 mmol/L = 18.0156 mg/dL.
            Metric::Glucose => &[("mg/dL", 1.0), ("mmol/L", 18.0156), ("g/L", 100.0)],
        }
    }

    /// `value` in `unit` converted into [`Metric::unit`], if `unit` is one it accepts.
    pub fn to_canonical(self, value: f64, unit: &str) -> Option<f64> {
        self.units()
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, f)| value * f)
    }

    /// The range one sample can take, in [`Metric::unit`]: physically possible values (the
    /// model's plausibility table where it has the code), so that a glitch (a heart rate of 0,
    /// a weight of 0.01 kg) is refused but no abnormal reading ever is.
    pub fn range(self) -> (f64, f64) {
        let from_model = |code: &str, fallback: (f64, f64)| {
            p360_model::plausibility::limits(code).map_or(fallback, |l| (l.low, l.high))
        };
        match self {
            Metric::HeartRate => from_model("8867-4", (5.0, 600.0)),
            // Per sample and per day alike: ultramarathons stay under 200 000 steps a day.
            Metric::Steps => from_model("41950-7", (0.0, 200_000.0)),
            Metric::Sleep => (0.0, 24.0 * 60.0),
            Metric::Spo2 => from_model("59408-5", (1.0, 100.0)),
            Metric::Weight => from_model("29463-7", (0.2, 700.0)),
            Metric::BloodPressureSystolic => from_model("8480-6", (20.0, 500.0)),
            Metric::BloodPressureDiastolic => from_model("8462-4", (5.0, 400.0)),
            Metric::Glucose => from_model("2339-0", (1.0, 3000.0)),
        }
    }

    /// The LOINC code of the daily summary.
    pub fn loinc(self) -> &'static str {
        match self {
            Metric::HeartRate => "8867-4",
            // A day's total: "Number of steps in 24 hour Measured", not 55423-8 (steps in an
            // unspecified time), which says nothing of the period summed.
            Metric::Steps => "41950-7",
            Metric::Sleep => "93832-4",
            Metric::Spo2 => "59408-5",
            Metric::Weight => "29463-7",
            Metric::BloodPressureSystolic => "8480-6",
            Metric::BloodPressureDiastolic => "8462-4",
            Metric::Glucose => "2339-0",
        }
    }

    /// The display of [`Metric::loinc`].
    pub fn display(self) -> &'static str {
        match self {
            Metric::HeartRate => "Heart rate",
            Metric::Steps => "Number of steps in 24 hour Measured",
            Metric::Sleep => "Sleep duration",
            Metric::Spo2 => "Oxygen saturation in Arterial blood by Pulse oximetry",
            Metric::Weight => "Body weight",
            Metric::BloodPressureSystolic => "Systolic blood pressure",
            Metric::BloodPressureDiastolic => "Diastolic blood pressure",
            Metric::Glucose => "Glucose [Mass/volume] in Blood",
        }
    }

    /// The UCUM unit of the daily summary's value.
    pub fn summary_unit(self) -> &'static str {
        match self {
            Metric::Steps => "/d",
            other => other.unit(),
        }
    }

    pub fn statistic(self) -> Statistic {
        match self {
            Metric::Steps | Metric::Sleep => Statistic::Sum,
            _ => Statistic::Mean,
        }
    }

    /// Decimals the summary keeps: the devices' own precision, so a recomputed day that did
    /// not change reads the same.
    pub fn decimals(self) -> i32 {
        match self {
            Metric::Steps | Metric::Sleep => 0,
            Metric::Weight => 2,
            _ => 1,
        }
    }

    /// The FHIR observation category of the summary: glucose is a blood analyte (consent's
    /// `labs`), steps and sleep are activity, the rest vital signs.
    pub fn kind(self) -> ObservationKind {
        match self {
            Metric::Steps | Metric::Sleep => ObservationKind::Activity,
            Metric::Glucose => ObservationKind::Laboratory,
            _ => ObservationKind::VitalSigns,
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_units_are_well_formed() {
        for m in Metric::ALL {
            assert_eq!(p360_model::coding::check_loinc(m.loinc()), Ok(()), "{m}");
            assert!(p360_model::ucum::parse(m.unit()).is_ok(), "{m}");
            assert!(p360_model::ucum::parse(m.summary_unit()).is_ok(), "{m}");
            assert_eq!(Metric::parse(m.as_str()), Some(m));
            let (low, high) = m.range();
            assert!(low < high, "{m}");
            for (u, f) in m.units() {
                assert!(p360_model::ucum::parse(u).is_ok(), "{m}: {u}");
                // Where UCUM can convert (all but molar glucose), it agrees with the table.
                if let Some(v) = p360_model::ucum::convert(10.0, u, m.unit()) {
                    assert!((v - 10.0 * f).abs() < 1e-6 * v.abs().max(1.0), "{m}: {u}");
                }
            }
        }
        assert_eq!(Metric::parse("Heart_Rate"), None);
    }

    #[test]
    fn conversions() {
        let kg = Metric::Weight.to_canonical(179.7, "[lb_av]").unwrap();
        assert!((kg - 81.51).abs() < 0.01, "{kg}");
        let mg = Metric::Glucose.to_canonical(5.5, "mmol/L").unwrap();
        assert!((mg - 99.09).abs() < 0.01, "{mg}");
        assert_eq!(Metric::Spo2.to_canonical(0.97, "1"), Some(97.0));
        assert_eq!(Metric::Sleep.to_canonical(7.5, "h"), Some(450.0));
        assert_eq!(Metric::Steps.to_canonical(10.0, "%"), None);
        assert_eq!(Metric::HeartRate.to_canonical(72.0, "kg"), None);
    }
}
