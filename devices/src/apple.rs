//! Apple Health `export.xml`, read as a stream.
//!
//! An export is one `<HealthData>` with millions of `<Record>`s (and `<Correlation>`s that
//! nest the two halves of a blood pressure, `<Workout>`s, `<ActivitySummary>`s…), often
//! gigabytes. [`AppleHealthReader`] reads it event by event with quick-xml over any
//! `BufRead` and hands out checked samples in chunks ([`AppleHealthReader::next_chunk`]), so
//! memory stays bounded by the chunk size whatever the file's.
//!
//! Records of the types p360 keeps become samples; records of other types are counted, not
//! failed; a record that does not parse or pass the checks is reported by its line. A file
//! that breaks off (truncated, or malformed XML) ends the import with an error naming the
//! line; what was read before it is kept. Nothing of a record's content ever goes into a
//! message: the source name (often a person's name) only becomes a hashed device id.

use crate::metric::Metric;
use crate::sample::{self, Device, Invalid, Sample};
use chrono::{DateTime, FixedOffset, Utc};
use quick_xml::events::{BytesStart, Event};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, Read};

/// The most distinct sources (devices, apps) one import may name.
const MAX_DEVICES: usize = 1000;

/// A record refused, by its line in the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineError {
    pub line: u64,
    /// The attribute at fault (`value`, `unit`, `startDate`, `endDate`…), or `Record`.
    pub field: &'static str,
    pub reason: String,
}

/// Why reading stopped before the end of the export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ReadError {
    pub line: u64,
    pub reason: String,
}

/// Counts over the whole file so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// `<Record>` elements seen.
    pub records: u64,
    /// Samples that passed the checks.
    pub samples: u64,
    /// Records of types p360 does not keep.
    pub unknown_types: u64,
    /// Sleep records that are not sleep (in bed, awake).
    pub not_asleep: u64,
    /// Records refused.
    pub rejected: u64,
}

/// The next part of an import.
#[derive(Debug, Default)]
pub struct Chunk {
    pub samples: Vec<Sample>,
    /// The devices these samples name.
    pub devices: Vec<Device>,
    pub rejected: Vec<LineError>,
    /// The file is read to its end (or stopped: see `failure`).
    pub done: bool,
    pub failure: Option<ReadError>,
}

/// Counts the lines of what quick-xml consumes, so errors can name a line.
struct Lines<R> {
    inner: R,
    newlines: u64,
}

impl<R: BufRead> Read for Lines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.newlines += count_newlines(&buf[..n]);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Lines<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        // The bytes being consumed are the head of the buffer just filled.
        if let Ok(buf) = self.inner.fill_buf() {
            self.newlines += count_newlines(&buf[..amt.min(buf.len())]);
        }
        self.inner.consume(amt);
    }
}

fn count_newlines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// The streaming reader of one export.
pub struct AppleHealthReader<R: BufRead> {
    xml: quick_xml::Reader<Lines<R>>,
    buf: Vec<u8>,
    now: DateTime<Utc>,
    depth: usize,
    seen_root: bool,
    finished: bool,
    /// Source name → device; only its id leaves this reader's chunks' devices.
    devices: BTreeMap<String, Device>,
    counts: Counts,
}

impl<R: BufRead> AppleHealthReader<R> {
    /// `now` bounds sample times (see [`sample::check`]).
    pub fn new(input: R, now: DateTime<Utc>) -> Self {
        let mut xml = quick_xml::Reader::from_reader(Lines {
            inner: input,
            newlines: 0,
        });
        xml.config_mut().check_end_names = true;
        Self {
            xml,
            buf: Vec::with_capacity(4096),
            now,
            depth: 0,
            seen_root: false,
            finished: false,
            devices: BTreeMap::new(),
            counts: Counts::default(),
        }
    }

    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    fn line(&self) -> u64 {
        self.xml.get_ref().newlines + 1
    }

    /// Reads until `max` samples are ready or the file ends.
    pub fn next_chunk(&mut self, max: usize) -> Chunk {
        let mut chunk = Chunk::default();
        let mut used: BTreeMap<String, Device> = BTreeMap::new();
        while !self.finished && chunk.samples.len() < max {
            self.buf.clear();
            let event = match self.xml.read_event_into(&mut self.buf) {
                Ok(e) => e,
                Err(e) => {
                    let line = self.line();
                    self.finished = true;
                    chunk.failure = Some(ReadError {
                        line,
                        reason: describe(&e),
                    });
                    break;
                }
            };
            let (element, opens) = match event {
                Event::Start(e) => (e.into_owned(), true),
                Event::Empty(e) => (e.into_owned(), false),
                Event::End(_) => {
                    self.depth = self.depth.saturating_sub(1);
                    continue;
                }
                Event::Eof => {
                    self.finished = true;
                    if !self.seen_root {
                        chunk.failure = Some(ReadError {
                            line: self.line(),
                            reason: "not an Apple Health export (no <HealthData> element)".into(),
                        });
                    } else if self.depth > 0 {
                        chunk.failure = Some(ReadError {
                            line: self.line(),
                            reason: "the file ends inside an element: it is truncated".into(),
                        });
                    }
                    break;
                }
                _ => continue,
            };
            if opens {
                self.depth += 1;
            }
            if !self.seen_root {
                if element.name().as_ref() != b"HealthData" {
                    self.finished = true;
                    chunk.failure = Some(ReadError {
                        line: self.line(),
                        reason: "not an Apple Health export (the root element is not <HealthData>)"
                            .into(),
                    });
                    break;
                }
                self.seen_root = true;
                continue;
            }
            if element.name().as_ref() != b"Record" {
                continue;
            }
            self.counts.records += 1;
            let line = self.line();
            match self.record(&element) {
                Ok(Some((sample, source))) => {
                    self.counts.samples += 1;
                    if let Some(d) = self.devices.get(&source) {
                        used.entry(d.id.clone()).or_insert_with(|| d.clone());
                    }
                    chunk.samples.push(sample);
                }
                Ok(None) => {}
                Err(Invalid { field, reason }) => {
                    self.counts.rejected += 1;
                    chunk.rejected.push(LineError {
                        line,
                        field,
                        reason,
                    });
                }
            }
        }
        chunk.done = self.finished;
        chunk.devices = used.into_values().collect();
        chunk
    }

    /// One `<Record>`: a sample, `None` for a type p360 does not keep, or why it is refused.
    fn record(&mut self, e: &BytesStart<'_>) -> Result<Option<(Sample, String)>, Invalid> {
        let mut kind = None;
        let mut source = String::new();
        let mut unit = None;
        let mut start = None;
        let mut end = None;
        let mut value = None;
        for attr in e.attributes() {
            let attr = attr.map_err(|_| refuse("Record", "malformed attributes"))?;
            let text = || {
                attr.unescape_value()
                    .map(|v| v.into_owned())
                    .map_err(|_| refuse("Record", "malformed attribute value"))
            };
            match attr.key.as_ref() {
                b"type" => kind = Some(text()?),
                b"sourceName" => source = text()?,
                b"unit" => unit = Some(text()?),
                b"startDate" => start = Some(text()?),
                b"endDate" => end = Some(text()?),
                b"value" => value = Some(text()?),
                _ => {}
            }
        }
        let Some(kind) = kind else {
            return Err(refuse("type", "required"));
        };
        let Some(metric) = metric_of(&kind) else {
            self.counts.unknown_types += 1;
            return Ok(None);
        };
        let start =
            date(start.as_deref(), "startDate")?.ok_or_else(|| refuse("startDate", "required"))?;
        let end = date(end.as_deref(), "endDate")?;
        let (value, unit) = if metric == Metric::Sleep {
            if !value.as_deref().is_some_and(is_asleep) {
                self.counts.not_asleep += 1;
                return Ok(None);
            }
            let end = end.ok_or_else(|| refuse("endDate", "required for sleep"))?;
            ((end - start).num_seconds() as f64 / 60.0, "min".to_owned())
        } else {
            let v: f64 = value
                .as_deref()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| refuse("value", "required, a number"))?;
            let unit = unit.ok_or_else(|| refuse("unit", "required"))?;
            apple_unit(metric, v, &unit).ok_or_else(|| {
                refuse(
                    "unit",
                    format!("not a unit of {} this import knows", metric.name()),
                )
            })?
        };
        let device = self.device_for(&source)?;
        let sample =
            sample::check(&device, metric, start, end, value, &unit, self.now).map_err(|i| {
                Invalid {
                    field: match i.field {
                        "start" => "startDate",
                        "end" => "endDate",
                        other => other,
                    },
                    reason: i.reason,
                }
            })?;
        Ok(Some((sample, source)))
    }

    /// The device id of a source: a hash of its name, which may name a person.
    fn device_for(&mut self, source: &str) -> Result<String, Invalid> {
        if let Some(d) = self.devices.get(source) {
            return Ok(d.id.clone());
        }
        if self.devices.len() >= MAX_DEVICES {
            return Err(refuse(
                "sourceName",
                "too many distinct sources in one export",
            ));
        }
        let id = device_id(source);
        self.devices.insert(
            source.to_owned(),
            Device {
                id: id.clone(),
                name: Some(source.chars().take(200).collect()),
                model: None,
            },
        );
        Ok(id)
    }
}

fn refuse(field: &'static str, reason: impl Into<String>) -> Invalid {
    Invalid {
        field,
        reason: reason.into(),
    }
}

/// The id p360 gives an Apple Health source (`sourceName`).
pub fn device_id(source: &str) -> String {
    let digest = hex::encode(Sha256::digest(
        format!("apple-health\u{1f}{source}").as_bytes(),
    ));
    format!("apple-health.{}", &digest[..16])
}

/// The HealthKit identifiers p360 keeps.
pub fn metric_of(kind: &str) -> Option<Metric> {
    Some(match kind {
        "HKQuantityTypeIdentifierHeartRate" => Metric::HeartRate,
        "HKQuantityTypeIdentifierStepCount" => Metric::Steps,
        "HKCategoryTypeIdentifierSleepAnalysis" => Metric::Sleep,
        "HKQuantityTypeIdentifierOxygenSaturation" => Metric::Spo2,
        "HKQuantityTypeIdentifierBodyMass" => Metric::Weight,
        "HKQuantityTypeIdentifierBloodPressureSystolic" => Metric::BloodPressureSystolic,
        "HKQuantityTypeIdentifierBloodPressureDiastolic" => Metric::BloodPressureDiastolic,
        "HKQuantityTypeIdentifierBloodGlucose" => Metric::Glucose,
        _ => return None,
    })
}

/// Sleep analysis values that are sleep (iOS 16 splits `Asleep` into stages; `InBed` and
/// `Awake` are not sleep).
fn is_asleep(v: &str) -> bool {
    matches!(
        v,
        "HKCategoryValueSleepAnalysisAsleep"
            | "HKCategoryValueSleepAnalysisAsleepUnspecified"
            | "HKCategoryValueSleepAnalysisAsleepCore"
            | "HKCategoryValueSleepAnalysisAsleepDeep"
            | "HKCategoryValueSleepAnalysisAsleepREM"
    )
}

/// HealthKit's unit strings as UCUM (the value adjusted where HealthKit's differs).
fn apple_unit(metric: Metric, value: f64, unit: &str) -> Option<(f64, String)> {
    let ucum = match (metric, unit) {
        (Metric::HeartRate, "count/min") => "/min",
        (Metric::Steps, "count") => "{steps}",
        // HealthKit writes saturation as a fraction with unit "%" (0.97).
        (Metric::Spo2, "%") if value <= 1.0 => "1",
        (Metric::Spo2, "%") => "%",
        (Metric::Weight, "kg") => "kg",
        (Metric::Weight, "g") => "g",
        (Metric::Weight, "lb") => "[lb_av]",
        (Metric::BloodPressureSystolic | Metric::BloodPressureDiastolic, "mmHg") => "mm[Hg]",
        (Metric::Glucose, "mg/dL") => "mg/dL",
        // HealthKit names the molar mass it used: mmol<180.1558800000541>/L.
        (Metric::Glucose, u) if u == "mmol/L" || (u.starts_with("mmol<") && u.ends_with(">/L")) => {
            "mmol/L"
        }
        _ => return None,
    };
    Some((value, ucum.to_owned()))
}

/// HealthKit's dates: `2024-01-01 10:00:00 -0500`.
fn date(v: Option<&str>, field: &'static str) -> Result<Option<DateTime<FixedOffset>>, Invalid> {
    v.map(|s| {
        DateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S %z")
            .map_err(|_| refuse(field, "expected a date like 2024-01-01 10:00:00 -0500"))
    })
    .transpose()
}

/// quick-xml's error, without any of the file's content (names in end tags, entity text).
fn describe(e: &quick_xml::Error) -> String {
    use quick_xml::Error as E;
    match e {
        E::Io(_) => "the file could not be read to its end".into(),
        E::Syntax(s) => format!("malformed XML ({s}): the file is truncated or damaged"),
        E::IllFormed(_) => "malformed XML (an end tag does not match its start tag)".into(),
        E::InvalidAttr(_) => "malformed XML (an attribute)".into(),
        E::Encoding(_) => "the file is not UTF-8".into(),
        E::Escape(_) => "malformed XML (a character or entity reference)".into(),
        E::Namespace(_) => "malformed XML (a namespace)".into(),
    }
}

/// A blocking `Read` over chunks sent from async code (an HTTP body): the reader runs on a
/// blocking thread while the request streams in, never holding more than the channel's few
/// chunks.
pub struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl ChannelReader {
    pub fn new(rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>) -> Self {
        Self {
            rx,
            current: bytes::Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-18T12:00:00Z")
            .unwrap()
            .to_utc()
    }

    /// A small export with every kind of record, generated here (no real data).
    fn export() -> String {
        let rec = |t: &str, src: &str, unit: &str, start: &str, end: &str, v: &str| {
            format!(
                "  <Record type=\"{t}\" sourceName=\"{src}\" sourceVersion=\"17.2\" unit=\"{unit}\" creationDate=\"{end}\" startDate=\"{start}\" endDate=\"{end}\" value=\"{v}\"/>\n"
            )
        };
        let mut x = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE HealthData [\n<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary)*)>\n<!ATTLIST HealthData locale CDATA #REQUIRED>\n]>\n<HealthData locale=\"en_US\">\n <ExportDate value=\"2026-03-18 08:00:00 -0500\"/>\n <Me HKCharacteristicTypeIdentifierDateOfBirth=\"1980-01-01\" HKCharacteristicTypeIdentifierBiologicalSex=\"HKBiologicalSexFemale\"/>\n",
        );
        let watch = "Test Person&apos;s Apple Watch";
        x += &rec(
            "HKQuantityTypeIdentifierHeartRate",
            watch,
            "count/min",
            "2026-03-01 08:00:00 -0500",
            "2026-03-01 08:00:00 -0500",
            "60",
        );
        // A record with children (metadata), as HealthKit writes many.
        x += &format!(
            "  <Record type=\"HKQuantityTypeIdentifierHeartRate\" sourceName=\"{watch}\" unit=\"count/min\" startDate=\"2026-03-01 09:00:00 -0500\" endDate=\"2026-03-01 09:00:00 -0500\" value=\"80\">\n   <MetadataEntry key=\"HKMetadataKeyHeartRateMotionContext\" value=\"0\"/>\n  </Record>\n"
        );
        x += &rec(
            "HKQuantityTypeIdentifierStepCount",
            "iPhone",
            "count",
            "2026-03-01 10:00:00 -0500",
            "2026-03-01 10:10:00 -0500",
            "1200",
        );
        x += &rec(
            "HKQuantityTypeIdentifierOxygenSaturation",
            watch,
            "%",
            "2026-03-01 03:00:00 -0500",
            "2026-03-01 03:00:00 -0500",
            "0.97",
        );
        x += &rec(
            "HKQuantityTypeIdentifierBodyMass",
            "Scale",
            "lb",
            "2026-03-01 07:00:00 -0500",
            "2026-03-01 07:00:00 -0500",
            "179.7",
        );
        x += &rec(
            "HKQuantityTypeIdentifierBloodGlucose",
            "Meter",
            "mmol&lt;180.1558800000541&gt;/L",
            "2026-03-01 07:05:00 -0500",
            "2026-03-01 07:05:00 -0500",
            "5.5",
        );
        x += &rec(
            "HKCategoryTypeIdentifierSleepAnalysis",
            watch,
            "",
            "2026-03-01 23:30:00 -0500",
            "2026-03-02 06:30:00 -0500",
            "HKCategoryValueSleepAnalysisAsleepCore",
        );
        x += &rec(
            "HKCategoryTypeIdentifierSleepAnalysis",
            watch,
            "",
            "2026-03-01 23:00:00 -0500",
            "2026-03-02 07:00:00 -0500",
            "HKCategoryValueSleepAnalysisInBed",
        );
        x += &rec(
            "HKQuantityTypeIdentifierActiveEnergyBurned",
            watch,
            "kcal",
            "2026-03-01 10:00:00 -0500",
            "2026-03-01 10:10:00 -0500",
            "12",
        );
        // Line 20: a heart rate no heart has; line 21: a date HealthKit never writes.
        x += &rec(
            "HKQuantityTypeIdentifierHeartRate",
            watch,
            "count/min",
            "2026-03-01 11:00:00 -0500",
            "2026-03-01 11:00:00 -0500",
            "4321",
        );
        x += &rec(
            "HKQuantityTypeIdentifierHeartRate",
            watch,
            "count/min",
            "March 1st",
            "2026-03-01 11:00:00 -0500",
            "70",
        );
        x += " <Correlation type=\"HKCorrelationTypeIdentifierBloodPressure\" sourceName=\"Cuff\" startDate=\"2026-03-01 07:10:00 -0500\" endDate=\"2026-03-01 07:10:00 -0500\">\n";
        x += &rec(
            "HKQuantityTypeIdentifierBloodPressureSystolic",
            "Cuff",
            "mmHg",
            "2026-03-01 07:10:00 -0500",
            "2026-03-01 07:10:00 -0500",
            "121",
        );
        x += &rec(
            "HKQuantityTypeIdentifierBloodPressureDiastolic",
            "Cuff",
            "mmHg",
            "2026-03-01 07:10:00 -0500",
            "2026-03-01 07:10:00 -0500",
            "79",
        );
        x += " </Correlation>\n";
        x += " <Workout workoutActivityType=\"HKWorkoutActivityTypeWalking\" duration=\"30\"/>\n";
        x += "</HealthData>\n";
        x
    }

    fn read_all(xml: &str, max: usize) -> (Vec<Chunk>, Counts) {
        let mut r = AppleHealthReader::new(xml.as_bytes(), now());
        let mut chunks = Vec::new();
        loop {
            let c = r.next_chunk(max);
            let done = c.done;
            chunks.push(c);
            if done {
                break;
            }
        }
        (chunks, r.counts().clone())
    }

    #[test]
    fn every_kind_of_record_is_read() {
        let (chunks, counts) = read_all(&export(), 1000);
        assert_eq!(chunks.len(), 1);
        let c = &chunks[0];
        assert!(c.failure.is_none(), "{:?}", c.failure);
        let by = |m: Metric| {
            c.samples
                .iter()
                .filter(|s| s.metric == m)
                .collect::<Vec<_>>()
        };
        assert_eq!(by(Metric::HeartRate).len(), 2);
        assert_eq!(by(Metric::Steps)[0].value, 1200.0);
        assert!((by(Metric::Spo2)[0].value - 97.0).abs() < 1e-9);
        assert!((by(Metric::Weight)[0].value - 81.51).abs() < 0.01);
        assert!((by(Metric::Glucose)[0].value - 99.09).abs() < 0.01);
        assert_eq!(by(Metric::Sleep)[0].value, 420.0);
        assert_eq!(by(Metric::BloodPressureSystolic)[0].value, 121.0);
        assert_eq!(by(Metric::BloodPressureDiastolic)[0].value, 79.0);
        assert_eq!(
            counts,
            Counts {
                records: 13,
                samples: 9,
                unknown_types: 1,
                not_asleep: 1,
                rejected: 2
            }
        );
        assert_eq!(
            c.rejected
                .iter()
                .map(|e| (e.line, e.field))
                .collect::<Vec<_>>(),
            [(20, "value"), (21, "startDate")]
        );
        for e in &c.rejected {
            assert!(
                !e.reason.contains("4321") && !e.reason.contains("March"),
                "{e:?}"
            );
        }
        // Sources become hashed ids; the name stays on the device, never in the id.
        let watch = device_id("Test Person's Apple Watch");
        assert!(!watch.contains("Person"));
        assert_eq!(by(Metric::HeartRate)[0].device, watch);
        assert_eq!(c.devices.len(), 5);
        assert!(c.devices.iter().any(|d| d.id == watch));
        assert_eq!(
            by(Metric::HeartRate)[0].start.offset().local_minus_utc(),
            -5 * 3600
        );
    }

    #[test]
    fn chunks_bound_what_is_held() {
        let (chunks, counts) = read_all(&export(), 2);
        assert!(chunks.len() >= 5);
        assert!(chunks.iter().all(|c| c.samples.len() <= 2));
        assert_eq!(chunks.iter().map(|c| c.samples.len()).sum::<usize>(), 9);
        assert_eq!(counts.samples, 9);
        assert!(chunks.last().unwrap().done);
    }

    #[test]
    fn a_truncated_export_keeps_what_was_read_and_names_the_line() {
        let full = export();
        // Cut in the middle of line 14 (the oxygen saturation record).
        let cut = full.match_indices('\n').nth(12).unwrap().0 + 40;
        let (chunks, counts) = read_all(&full[..cut], 1000);
        let failure = chunks.last().unwrap().failure.clone().unwrap();
        assert_eq!(failure.line, 14, "{failure}");
        assert!(failure.reason.contains("truncated"), "{failure}");
        assert_eq!(counts.samples, 3, "the records before the cut are kept");

        // Cut between two records: the XML is well-formed so far, but unfinished.
        let cut = full.match_indices('\n').nth(13).unwrap().0 + 1;
        let (chunks, counts) = read_all(&full[..cut], 1000);
        let failure = chunks.last().unwrap().failure.clone().unwrap();
        assert!(failure.reason.contains("truncated"), "{failure}");
        assert_eq!(counts.samples, 4);
    }

    #[test]
    fn malformed_xml_stops_with_its_line() {
        let bad = export().replace(" </Correlation>\n", " </Corelation>\n");
        let (chunks, counts) = read_all(&bad, 1000);
        let failure = chunks.last().unwrap().failure.clone().unwrap();
        assert_eq!(failure.line, 25, "{failure}");
        assert!(!failure.reason.contains("Corelation"), "{failure}");
        assert_eq!(counts.samples, 9);

        let (chunks, _) = read_all("<html><body>hello</body></html>", 10);
        assert!(
            chunks[0]
                .failure
                .clone()
                .unwrap()
                .reason
                .contains("not an Apple Health export")
        );
        let (chunks, _) = read_all("", 10);
        assert!(chunks[0].failure.is_some());
    }

    #[test]
    fn a_channel_feeds_the_reader() {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let xml = export();
        let sender = std::thread::spawn(move || {
            for part in xml.as_bytes().chunks(7) {
                tx.blocking_send(Ok(bytes::Bytes::copy_from_slice(part)))
                    .unwrap();
            }
        });
        let mut r = AppleHealthReader::new(std::io::BufReader::new(ChannelReader::new(rx)), now());
        let c = r.next_chunk(1000);
        sender.join().unwrap();
        assert!(c.done && c.failure.is_none(), "{:?}", c.failure);
        assert_eq!(c.samples.len(), 9);
    }
}
