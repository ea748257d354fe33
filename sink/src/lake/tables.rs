//! The lake's tables: Arrow schemas and the rows one graph change contributes.
//!
//! Every table is an append-only change log: one row per change of a fact, carrying the
//! fact's state as the graph held it when the change was copied. The latest row per `fact_id`
//! (by `committed_at`) is the fact's current state; `status = 'entered-in-error'` rows retract.
//! `device_readings` is the exception: raw samples, each once (the devices stage keeps only
//! samples new per device, metric and start), partitioned by the day they were stored.

use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, StringBuilder,
    TimestampMicrosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use p360_events::{AccessOutcome, AccessRecorded};
use p360_graph::facts::status_str;
use p360_model::{Fact, FactBody, Value};
use std::sync::Arc;

/// A table of the lake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    GraphChanges,
    Observations,
    Conditions,
    Medications,
    /// The access ledger's entries (who read or wrote which record, under which grant).
    AccessLog,
    /// Raw wearable and home-device samples (the graph holds their daily summaries).
    DeviceReadings,
}

impl Table {
    pub const ALL: [Table; 6] = [
        Table::GraphChanges,
        Table::Observations,
        Table::Conditions,
        Table::Medications,
        Table::AccessLog,
        Table::DeviceReadings,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::GraphChanges => "graph_changes",
            Table::Observations => "observations",
            Table::Conditions => "conditions",
            Table::Medications => "medications",
            Table::AccessLog => "access_log",
            Table::DeviceReadings => "device_readings",
        }
    }

    /// The typed table a fact's rows go to, if any.
    fn of(fact: &Fact) -> Option<Table> {
        match fact.body {
            FactBody::Observation(_) => Some(Table::Observations),
            FactBody::Condition(_) => Some(Table::Conditions),
            FactBody::Medication(_) => Some(Table::Medications),
            _ => None,
        }
    }

    fn columns(self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        match self {
            Table::GraphChanges => &[
                ("patient_key", Str),
                ("commit_id", Str),
                ("committed_at", Ts),
                ("fact_id", Str),
                ("category", Str),
                ("change_kind", Str),
                ("resource_type", OptStr),
                ("status", OptStr),
                ("source_count", U32),
            ],
            Table::Observations => &[
                ("patient_key", Str),
                ("fact_id", Str),
                ("commit_id", Str),
                ("committed_at", Ts),
                ("change_kind", Str),
                ("status", Str),
                ("kind", Str),
                ("code_system", OptStr),
                ("code", OptStr),
                ("display", OptStr),
                ("effective_date", Date),
                ("value", OptF64),
                ("unit", OptStr),
                ("comparator", OptStr),
                ("value_text", OptStr),
                ("interpretation", OptStr),
                ("reference_low", OptF64),
                ("reference_high", OptF64),
                ("source_count", U32),
                ("source_kinds", Str),
                ("min_confidence", OptF64),
                ("analytics_consent", Bool),
            ],
            Table::Conditions => &[
                ("patient_key", Str),
                ("fact_id", Str),
                ("commit_id", Str),
                ("committed_at", Ts),
                ("change_kind", Str),
                ("status", Str),
                ("code_system", OptStr),
                ("code", OptStr),
                ("display", OptStr),
                ("clinical_status", Str),
                ("onset_date", OptDate),
                ("recorded_date", OptDate),
                ("source_count", U32),
                ("source_kinds", Str),
                ("min_confidence", OptF64),
                ("analytics_consent", Bool),
            ],
            Table::Medications => &[
                ("patient_key", Str),
                ("fact_id", Str),
                ("commit_id", Str),
                ("committed_at", Ts),
                ("change_kind", Str),
                ("status", Str),
                ("code_system", OptStr),
                ("code", OptStr),
                ("display", OptStr),
                ("medication_text", Str),
                ("strength", OptStr),
                ("form", OptStr),
                ("dosage", OptStr),
                ("medication_status", Str),
                ("start_date", OptDate),
                ("source_count", U32),
                ("source_kinds", Str),
                ("min_confidence", OptF64),
                ("analytics_consent", Bool),
            ],
            Table::AccessLog => &[
                ("patient_key", Str),
                ("ledger_seq", U64),
                ("at", Ts),
                ("actor_id", Str),
                ("actor_role", Str),
                ("grant_id", OptStr),
                ("resource_types", Str),
                ("purpose", Str),
                ("outcome", Str),
                ("break_glass", Bool),
            ],
            Table::DeviceReadings => &[
                ("patient_key", Str),
                ("device_key", Str),
                ("metric", Str),
                ("start", Ts),
                ("end", OptTs),
                // The start's day where it was measured: the day its summary counts it in.
                ("local_date", Date),
                ("utc_offset_minutes", I32),
                ("value", OptF64),
                ("unit", Str),
                // The DeviceReadingsReceived that brought it: with the patient, its batch.
                ("received_id", Str),
                ("stored_at", Ts),
                ("analytics_consent", Bool),
            ],
        }
    }

    pub fn schema(self) -> Arc<Schema> {
        let fields: Vec<Field> = self
            .columns()
            .iter()
            .map(|(name, kind)| Field::new(*name, kind.data_type(), kind.nullable()))
            .collect();
        Arc::new(Schema::new(fields))
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Str,
    OptStr,
    OptF64,
    U32,
    U64,
    Bool,
    Date,
    OptDate,
    Ts,
    OptTs,
    I32,
}

impl Kind {
    fn data_type(self) -> DataType {
        match self {
            Kind::Str | Kind::OptStr => DataType::Utf8,
            Kind::OptF64 => DataType::Float64,
            Kind::U32 => DataType::UInt32,
            Kind::U64 => DataType::UInt64,
            Kind::Bool => DataType::Boolean,
            Kind::Date | Kind::OptDate => DataType::Date32,
            Kind::Ts | Kind::OptTs => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            Kind::I32 => DataType::Int32,
        }
    }

    fn nullable(self) -> bool {
        matches!(
            self,
            Kind::OptStr | Kind::OptF64 | Kind::OptDate | Kind::OptTs
        )
    }
}

/// One cell. Cells are written by column name, so a row reads like the table it fills.
#[derive(Debug)]
enum Cell {
    Str(Option<String>),
    F64(Option<f64>),
    U32(u32),
    U64(u64),
    Bool(bool),
    Date(Option<NaiveDate>),
    Ts(DateTime<Utc>),
    OptTs(Option<DateTime<Utc>>),
    I32(i32),
}

/// A graph change as the lake sees it: ids already pseudonymized.
#[derive(Debug, Clone)]
pub struct ChangeRow {
    pub patient_key: String,
    pub commit_id: String,
    pub committed_at: DateTime<Utc>,
    pub fact_id: String,
    pub category: String,
    pub change_kind: String,
    /// Whether the patient had opted in to population analytics when the row was written;
    /// dashboards keep to rows (and patients) where it is true.
    pub analytics_consent: bool,
}

/// Rows of one table, being collected for one Parquet file.
pub struct TableRows {
    table: Table,
    rows: Vec<Vec<(&'static str, Cell)>>,
}

impl TableRows {
    pub fn new(table: Table) -> Self {
        Self {
            table,
            rows: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Builds the Arrow batch; an error here is a bug in this module (a column missing from a
    /// row or of the wrong kind), caught by the tests.
    pub fn finish(&self) -> Result<RecordBatch, ArrowError> {
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for (name, kind) in self.table.columns() {
            let cells = self
                .rows
                .iter()
                .map(|r| {
                    r.iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, c)| c)
                        .ok_or_else(|| self.error(name, "a row lacks it"))
                })
                .collect::<Result<Vec<&Cell>, _>>()?;
            let array: ArrayRef = match kind {
                Kind::Str | Kind::OptStr => {
                    self.column(name, &cells, StringBuilder::new(), |b, c| {
                        let Cell::Str(v) = c else { return false };
                        b.append_option(v.as_deref());
                        true
                    })?
                }
                Kind::OptF64 => self.column(name, &cells, Float64Builder::new(), |b, c| {
                    let Cell::F64(v) = c else { return false };
                    b.append_option(*v);
                    true
                })?,
                Kind::U32 => self.column(name, &cells, UInt32Builder::new(), |b, c| {
                    let Cell::U32(v) = c else { return false };
                    b.append_value(*v);
                    true
                })?,
                Kind::U64 => self.column(name, &cells, UInt64Builder::new(), |b, c| {
                    let Cell::U64(v) = c else { return false };
                    b.append_value(*v);
                    true
                })?,
                Kind::Bool => self.column(name, &cells, BooleanBuilder::new(), |b, c| {
                    let Cell::Bool(v) = c else { return false };
                    b.append_value(*v);
                    true
                })?,
                Kind::Date | Kind::OptDate => {
                    self.column(name, &cells, Date32Builder::new(), |b, c| {
                        let Cell::Date(v) = c else { return false };
                        b.append_option(v.map(days_since_epoch));
                        true
                    })?
                }
                Kind::Ts => self.column(
                    name,
                    &cells,
                    TimestampMicrosecondBuilder::new().with_timezone("UTC"),
                    |b, c| {
                        let Cell::Ts(v) = c else { return false };
                        b.append_value(v.timestamp_micros());
                        true
                    },
                )?,
                Kind::OptTs => self.column(
                    name,
                    &cells,
                    TimestampMicrosecondBuilder::new().with_timezone("UTC"),
                    |b, c| {
                        let Cell::OptTs(v) = c else { return false };
                        b.append_option(v.map(|t| t.timestamp_micros()));
                        true
                    },
                )?,
                Kind::I32 => self.column(name, &cells, Int32Builder::new(), |b, c| {
                    let Cell::I32(v) = c else { return false };
                    b.append_value(*v);
                    true
                })?,
            };
            arrays.push(array);
        }
        RecordBatch::try_new(self.table.schema(), arrays)
    }

    /// One column: `append` adds a cell to the builder, or says it is of another kind.
    fn column<B: ArrayBuilder>(
        &self,
        name: &str,
        cells: &[&Cell],
        mut builder: B,
        append: impl Fn(&mut B, &Cell) -> bool,
    ) -> Result<ArrayRef, ArrowError> {
        for c in cells {
            if !append(&mut builder, c) {
                return Err(self.error(name, "a cell is of another kind"));
            }
        }
        Ok(builder.finish())
    }

    fn error(&self, column: &str, what: &str) -> ArrowError {
        ArrowError::InvalidArgumentError(format!("{}: column {column}: {what}", self.table.name()))
    }

    fn push(&mut self, row: Vec<(&'static str, Cell)>) {
        self.rows.push(row);
    }
}

fn days_since_epoch(d: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    i32::try_from((d - epoch).num_days()).unwrap_or(i32::MAX)
}

fn s(v: &str) -> Cell {
    Cell::Str(Some(v.to_owned()))
}

fn os(v: Option<&str>) -> Cell {
    Cell::Str(v.map(str::to_owned))
}

/// Columns every typed table starts with.
fn common(change: &ChangeRow, fact: &Fact) -> Vec<(&'static str, Cell)> {
    let mut kinds: Vec<&str> = fact
        .provenance
        .iter()
        .map(|p| p.source_kind.as_str())
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    let min_confidence = fact
        .provenance
        .iter()
        .filter_map(|p| p.confidence)
        .map(f64::from)
        .reduce(f64::min);
    let code = fact.body.primary_code();
    vec![
        ("patient_key", s(&change.patient_key)),
        ("fact_id", s(&change.fact_id)),
        ("commit_id", s(&change.commit_id)),
        ("committed_at", Cell::Ts(change.committed_at)),
        ("change_kind", s(&change.change_kind)),
        ("status", s(status_str(fact.status))),
        ("code_system", os(code.map(|c| c.system.uri()))),
        ("code", os(code.map(|c| c.code.as_str()))),
        ("display", os(code.and_then(|c| c.display.as_deref()))),
        (
            "source_count",
            Cell::U32(u32::try_from(fact.provenance.len()).unwrap_or(u32::MAX)),
        ),
        ("source_kinds", s(&kinds.join(","))),
        ("min_confidence", Cell::F64(min_confidence)),
        ("analytics_consent", Cell::Bool(change.analytics_consent)),
    ]
}

/// Adds the row of one access-ledger entry (`patient_key` already pseudonymized).
pub fn add_access(tables: &mut Partitions, patient_key: &str, a: &AccessRecorded) {
    let row = vec![
        ("patient_key", s(patient_key)),
        ("ledger_seq", Cell::U64(a.ledger_seq)),
        ("at", Cell::Ts(a.at)),
        ("actor_id", s(a.actor_id.as_str())),
        ("actor_role", s(a.actor_role.as_str())),
        ("grant_id", os(a.grant_id.as_deref())),
        ("resource_types", s(&a.resource_types.join(","))),
        ("purpose", s(&a.purpose)),
        (
            "outcome",
            s(match a.outcome {
                AccessOutcome::Permit => "permit",
                AccessOutcome::Deny => "deny",
            }),
        ),
        ("break_glass", Cell::Bool(a.break_glass)),
    ];
    tables
        .entry((Table::AccessLog, a.at.date_naive()))
        .or_insert_with(|| TableRows::new(Table::AccessLog))
        .push(row);
}

/// One raw device sample, ids already pseudonymized.
#[derive(Debug, Clone)]
pub struct ReadingRow {
    pub patient_key: String,
    /// Keyed hash of (patient, device id).
    pub device_key: String,
    pub metric: String,
    pub start: DateTime<FixedOffset>,
    pub end: Option<DateTime<FixedOffset>>,
    pub value: f64,
    pub unit: String,
    pub received_id: String,
    pub stored_at: DateTime<Utc>,
}

/// Adds one raw device sample, partitioned by the day it was stored.
pub fn add_reading(tables: &mut Partitions, r: &ReadingRow, analytics_consent: bool) {
    let row = vec![
        ("patient_key", s(&r.patient_key)),
        ("device_key", s(&r.device_key)),
        ("metric", s(&r.metric)),
        ("start", Cell::Ts(r.start.to_utc())),
        ("end", Cell::OptTs(r.end.map(|e| e.to_utc()))),
        ("local_date", Cell::Date(Some(r.start.date_naive()))),
        (
            "utc_offset_minutes",
            Cell::I32(r.start.offset().local_minus_utc() / 60),
        ),
        ("value", Cell::F64(Some(r.value))),
        ("unit", s(&r.unit)),
        ("received_id", s(&r.received_id)),
        ("stored_at", Cell::Ts(r.stored_at)),
        ("analytics_consent", Cell::Bool(analytics_consent)),
    ];
    tables
        .entry((Table::DeviceReadings, r.stored_at.date_naive()))
        .or_insert_with(|| TableRows::new(Table::DeviceReadings))
        .push(row);
}

/// Rows grouped by table and partition day (the day of `committed_at`, UTC).
pub type Partitions = std::collections::BTreeMap<(Table, NaiveDate), TableRows>;

/// Adds the rows one change contributes: always one `graph_changes` row, and one typed row
/// when the fact (still) exists and has a typed table.
pub fn add_change(tables: &mut Partitions, change: &ChangeRow, fact: Option<&Fact>) {
    let log = vec![
        ("patient_key", s(&change.patient_key)),
        ("commit_id", s(&change.commit_id)),
        ("committed_at", Cell::Ts(change.committed_at)),
        ("fact_id", s(&change.fact_id)),
        ("category", s(&change.category)),
        ("change_kind", s(&change.change_kind)),
        ("resource_type", os(fact.map(|f| f.body.resource_type()))),
        ("status", os(fact.map(|f| status_str(f.status)))),
        (
            "source_count",
            Cell::U32(fact.map_or(0, |f| u32::try_from(f.provenance.len()).unwrap_or(u32::MAX))),
        ),
    ];
    let day = change.committed_at.date_naive();
    tables
        .entry((Table::GraphChanges, day))
        .or_insert_with(|| TableRows::new(Table::GraphChanges))
        .push(log);
    let Some(fact) = fact else { return };
    let Some(table) = Table::of(fact) else { return };
    let mut row = common(change, fact);
    match &fact.body {
        FactBody::Observation(o) => {
            let (value, unit, comparator, text) = match &o.value {
                Some(Value::Quantity {
                    value,
                    unit,
                    comparator,
                }) => (
                    Some(*value),
                    Some(unit.clone()),
                    comparator.map(|c| c.as_str().to_owned()),
                    None,
                ),
                Some(Value::Text { text }) => (None, None, None, Some(text.clone())),
                Some(Value::Coded { coding }) => (None, None, None, Some(coding.code.clone())),
                None => (None, None, None, None),
            };
            let range = o.reference_range.as_ref();
            row.extend([
                ("kind", s(o.kind.code())),
                ("effective_date", Cell::Date(Some(o.effective.day()))),
                ("value", Cell::F64(value)),
                ("unit", Cell::Str(unit)),
                ("comparator", Cell::Str(comparator)),
                ("value_text", Cell::Str(text)),
                ("interpretation", os(o.interpretation.map(|i| i.code()))),
                ("reference_low", Cell::F64(range.and_then(|r| r.low))),
                ("reference_high", Cell::F64(range.and_then(|r| r.high))),
            ]);
        }
        FactBody::Condition(c) => row.extend([
            ("clinical_status", s(c.clinical_status.code())),
            ("onset_date", Cell::Date(c.onset)),
            ("recorded_date", Cell::Date(c.recorded)),
        ]),
        FactBody::Medication(m) => row.extend([
            ("medication_text", s(&m.text)),
            ("strength", os(m.strength.as_deref())),
            ("form", os(m.form.as_deref())),
            ("dosage", os(m.dosage.as_deref())),
            ("medication_status", s(m.status.code())),
            (
                "start_date",
                Cell::Date(m.effective.as_ref().map(|w| w.day())),
            ),
        ]),
        _ => return,
    }
    tables
        .entry((table, day))
        .or_insert_with(|| TableRows::new(table))
        .push(row);
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;

    #[test]
    fn device_readings_rows_fill_their_table() {
        let start = DateTime::parse_from_rfc3339("2026-03-01T21:30:00-05:00").unwrap();
        let stored = DateTime::parse_from_rfc3339("2026-03-18T08:00:00Z")
            .unwrap()
            .to_utc();
        let row = |end: Option<DateTime<FixedOffset>>| ReadingRow {
            patient_key: "pk".into(),
            device_key: "dk".into(),
            metric: "heart_rate".into(),
            start,
            end,
            value: 72.0,
            unit: "/min".into(),
            received_id: "r-1".into(),
            stored_at: stored,
        };
        let mut parts = Partitions::new();
        add_reading(&mut parts, &row(None), true);
        add_reading(
            &mut parts,
            &row(Some(start + chrono::Duration::minutes(5))),
            false,
        );
        let rows = &parts[&(Table::DeviceReadings, stored.date_naive())];
        let batch = rows.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), Table::DeviceReadings.schema());
        let local = batch
            .column_by_name("local_date")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::Date32Array>()
            .unwrap()
            .value(0);
        // 21:30 at -05:00 is the 1st where it was measured (the 2nd in UTC).
        assert_eq!(
            local,
            days_since_epoch(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap())
        );
        let offset = batch
            .column_by_name("utc_offset_minutes")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::Int32Array>()
            .unwrap()
            .value(0);
        assert_eq!(offset, -300);
        assert_eq!(batch.column_by_name("end").unwrap().null_count(), 1);
    }
}
