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
use p360_model::{Fact, FactBody, Value, When};
use std::sync::Arc;

/// A table of the lake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    GraphChanges,
    Observations,
    Conditions,
    Medications,
    Encounters,
    Procedures,
    Immunizations,
    Allergies,
    Documents,
    /// The access ledger's entries (who read or wrote which record, under which grant).
    AccessLog,
    /// Raw wearable and home-device samples (the graph holds their daily summaries).
    DeviceReadings,
    /// Members' enrolment from the payor's roster (birth year, sex, plan, region, coverage).
    Members,
    /// Care-gap results, one row per patient, measure and computation.
    CareGaps,
    /// Every analytics opt-in and withdrawal: population views keep to members whose latest
    /// row opts in.
    ConsentChanges,
}

/// A column: name, kind, and its meaning (the data dictionary, `LAKE.md`, is generated from
/// these, and so are the Glue tables in `infra/`).
pub type Column = (&'static str, Kind, &'static str);

const PATIENT_KEY: Column = (
    "patient_key",
    Kind::Str,
    "Keyed hash (HMAC-SHA256) of the patient id: the same member has the same key in every table; the id cannot be recovered from it",
);
const CHANGE_ID: Column = (
    "change_id",
    Kind::Str,
    "Unique id of the change this row records: a reader keeps one row per change_id (deliveries can repeat on AWS, where Firehose is at-least-once)",
);
const FACT_ID: Column = (
    "fact_id",
    Kind::Str,
    "Id of the fact in the patient graph (stable across changes of the fact)",
);
const COMMIT_ID: Column = (
    "commit_id",
    Kind::Str,
    "Graph transaction that made the change",
);
const COMMITTED_AT: Column = (
    "committed_at",
    Kind::Ts,
    "When the graph committed the change (UTC); the latest row per fact_id is the fact's current state",
);
const CHANGE_KIND: Column = (
    "change_kind",
    Kind::Str,
    "added | source_attached | status_changed | corrected | removed | source_detached",
);
const STATUS: Column = (
    "status",
    Kind::Str,
    "unconfirmed | confirmed | entered-in-error (entered-in-error rows retract the fact)",
);
const CODE_SYSTEM: Column = (
    "code_system",
    Kind::OptStr,
    "Canonical URI of the code's system",
);
const CODE: Column = ("code", Kind::OptStr, "The fact's main code");
const DISPLAY: Column = ("display", Kind::OptStr, "The code's display name");
const SOURCE_COUNT: Column = (
    "source_count",
    Kind::U32,
    "How many sources state the fact (\"confirmed by N sources\")",
);
const SOURCE_KINDS: Column = (
    "source_kinds",
    Kind::Str,
    "Comma-separated kinds of those sources: ocr, manual_entry, payor_feed, fhir_store, device, provider, patient_upload",
);
const MIN_CONFIDENCE: Column = (
    "min_confidence",
    Kind::OptF64,
    "Lowest extraction confidence among the sources (0-1), when any source has one",
);
const ANALYTICS_CONSENT: Column = (
    "analytics_consent",
    Kind::Bool,
    "The patient's population-analytics opt-in when the row was written (informational: views decide by consent_changes)",
);

/// The columns every fact table starts with.
macro_rules! fact_columns {
    ($($extra:expr),* $(,)?) => {
        &[
            PATIENT_KEY, FACT_ID, CHANGE_ID, COMMIT_ID, COMMITTED_AT, CHANGE_KIND, STATUS,
            CODE_SYSTEM, CODE, DISPLAY, $($extra,)* SOURCE_COUNT, SOURCE_KINDS, MIN_CONFIDENCE,
            ANALYTICS_CONSENT,
        ]
    };
}

impl Table {
    pub const ALL: [Table; 14] = [
        Table::GraphChanges,
        Table::Observations,
        Table::Conditions,
        Table::Medications,
        Table::Encounters,
        Table::Procedures,
        Table::Immunizations,
        Table::Allergies,
        Table::Documents,
        Table::AccessLog,
        Table::DeviceReadings,
        Table::Members,
        Table::CareGaps,
        Table::ConsentChanges,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::GraphChanges => "graph_changes",
            Table::Observations => "observations",
            Table::Conditions => "conditions",
            Table::Medications => "medications",
            Table::Encounters => "encounters",
            Table::Procedures => "procedures",
            Table::Immunizations => "immunizations",
            Table::Allergies => "allergies",
            Table::Documents => "documents",
            Table::AccessLog => "access_log",
            Table::DeviceReadings => "device_readings",
            Table::Members => "members",
            Table::CareGaps => "care_gaps",
            Table::ConsentChanges => "consent_changes",
        }
    }

    /// What a row of the table is, for the data dictionary.
    pub fn description(self) -> &'static str {
        match self {
            Table::GraphChanges => {
                "One row per change of a fact in a patient graph, of every fact type (ids and categories only)."
            }
            Table::Observations => {
                "Laboratory results, vital signs and activity summaries: one row per change of an Observation fact."
            }
            Table::Conditions => {
                "Diagnoses and problems (ICD-10-CM): one row per change of a Condition fact."
            }
            Table::Medications => {
                "Medications (RxNorm), from lists, photos and pharmacy fills: one row per change of a MedicationStatement fact."
            }
            Table::Encounters => {
                "Visits and medical episodes (claims, providers' episodes): one row per change of an Encounter fact."
            }
            Table::Procedures => "Procedures (CPT): one row per change of a Procedure fact.",
            Table::Immunizations => {
                "Vaccines given (CVX): one row per change of an Immunization fact."
            }
            Table::Allergies => {
                "Allergies and intolerances: one row per change of an AllergyIntolerance fact."
            }
            Table::Documents => {
                "Documents in the record (photos, uploads; their type and size, never their content): one row per change of a DocumentReference fact."
            }
            Table::AccessLog => {
                "The access ledger: one row per access to a record by someone other than the patient, permitted or refused."
            }
            Table::DeviceReadings => {
                "Raw wearable and home-device samples, each once (the graph holds daily summaries)."
            }
            Table::Members => {
                "Enrolment from the payor's roster: one row per member and roster batch; the latest row per patient_key is current."
            }
            Table::CareGaps => {
                "Care-gap results: one row per patient, measure and computation; the latest computed_at per patient_key and measure_id is current."
            }
            Table::ConsentChanges => {
                "Analytics opt-ins and withdrawals: one row per change; population views keep members whose latest row has population_analytics = true."
            }
        }
    }

    /// The typed table a fact's rows go to.
    fn of(fact: &Fact) -> Table {
        match fact.body {
            FactBody::Observation(_) => Table::Observations,
            FactBody::Condition(_) => Table::Conditions,
            FactBody::Medication(_) => Table::Medications,
            FactBody::Procedure(_) => Table::Procedures,
            FactBody::Allergy(_) => Table::Allergies,
            FactBody::Immunization(_) => Table::Immunizations,
            FactBody::Encounter(_) => Table::Encounters,
            FactBody::Document(_) => Table::Documents,
        }
    }

    pub fn columns(self) -> &'static [Column] {
        use Kind::*;
        match self {
            Table::GraphChanges => &[
                PATIENT_KEY,
                CHANGE_ID,
                COMMIT_ID,
                COMMITTED_AT,
                FACT_ID,
                (
                    "category",
                    Str,
                    "Clinical category, e.g. laboratory, condition, medication",
                ),
                CHANGE_KIND,
                (
                    "resource_type",
                    OptStr,
                    "FHIR resource type of the fact; empty when the fact no longer exists",
                ),
                (
                    "status",
                    OptStr,
                    "The fact's status after the change; empty when it no longer exists",
                ),
                SOURCE_COUNT,
            ],
            Table::Observations => fact_columns![
                ("kind", Str, "laboratory | vital-signs | activity"),
                ("effective_date", Date, "Day the observation is about"),
                ("value", OptF64, "Numeric value"),
                ("unit", OptStr, "UCUM unit of value"),
                ("comparator", OptStr, "< <= >= > when the value is a bound"),
                ("value_text", OptStr, "A textual or coded result"),
                ("interpretation", OptStr, "N H L A HH LL"),
                ("reference_low", OptF64, "Reference range low, in unit"),
                ("reference_high", OptF64, "Reference range high, in unit"),
            ],
            Table::Conditions => fact_columns![
                ("clinical_status", Str, "active | resolved | inactive"),
                (
                    "onset_date",
                    OptDate,
                    "Onset (or first claim's service day)"
                ),
                ("recorded_date", OptDate, "When it was recorded"),
            ],
            Table::Medications => fact_columns![
                (
                    "medication_text",
                    Str,
                    "The medication as written or as the pharmacy named it"
                ),
                ("strength", OptStr, "Strength, e.g. 500 mg"),
                ("form", OptStr, "Dose form"),
                ("dosage", OptStr, "Dosage instructions"),
                ("medication_status", Str, "active | stopped | completed"),
                ("start_date", OptDate, "Start or first fill"),
                ("end_date", OptDate, "End or last fill"),
            ],
            Table::Encounters => fact_columns![
                (
                    "class",
                    Str,
                    "Encounter class as the source states it (e.g. AMB, EMER, IMP, or a claim type)"
                ),
                ("start_date", Date, "First day of the encounter"),
                ("end_date", OptDate, "Last day, when it spans days"),
                ("reason_code", OptStr, "First reason code (ICD-10-CM)"),
                (
                    "practitioner_npi",
                    OptStr,
                    "NPI of the rendering practitioner (a provider id, not patient data)"
                ),
            ],
            Table::Procedures => fact_columns![("performed_date", Date, "Day performed")],
            Table::Immunizations => fact_columns![("occurred_date", Date, "Day given")],
            Table::Allergies => fact_columns![
                ("substance", Str, "The substance as named"),
                ("reaction", OptStr, "The reaction, when stated"),
                ("recorded_date", OptDate, "When it was recorded"),
            ],
            Table::Documents => fact_columns![
                ("media_type", Str, "Media type detected from the bytes"),
                ("size", U64, "Size in bytes"),
                ("document_date", Date, "Day the document is about"),
            ],
            Table::AccessLog => &[
                PATIENT_KEY,
                CHANGE_ID,
                (
                    "ledger_seq",
                    U64,
                    "Position in the patient's hash-chained ledger",
                ),
                ("at", Ts, "When the access happened (UTC)"),
                (
                    "actor_id",
                    Str,
                    "Id of the user who acted (a provider, analyst or the system)",
                ),
                (
                    "actor_role",
                    Str,
                    "patient | provider | payor_analyst | admin | system",
                ),
                ("grant_id", OptStr, "The grant that permitted it"),
                (
                    "resource_types",
                    Str,
                    "Comma-separated FHIR resource types touched",
                ),
                (
                    "purpose",
                    Str,
                    "Purpose of use (TREAT, ETREAT for break-glass, HOPERAT, ...)",
                ),
                ("outcome", Str, "permit | deny"),
                ("break_glass", Bool, "Emergency access"),
            ],
            Table::DeviceReadings => &[
                PATIENT_KEY,
                CHANGE_ID,
                ("device_key", Str, "Keyed hash of (patient, device id)"),
                ("metric", Str, "e.g. heart_rate, steps, blood_glucose"),
                ("start", Ts, "Start of the sample (UTC)"),
                ("end", OptTs, "End of the sample, for intervals"),
                // The start's day where it was measured: the day its summary counts it in.
                ("local_date", Date, "Day of the start where it was measured"),
                (
                    "utc_offset_minutes",
                    I32,
                    "UTC offset where it was measured",
                ),
                ("value", OptF64, "The sample's value"),
                ("unit", Str, "UCUM unit"),
                // The DeviceReadingsReceived that brought it: with the patient, its batch.
                ("received_id", Str, "The upload that brought it"),
                ("stored_at", Ts, "When p360 stored it (UTC)"),
                ANALYTICS_CONSENT,
            ],
            Table::Members => &[
                PATIENT_KEY,
                CHANGE_ID,
                ("batch_id", Str, "The roster batch that stated it"),
                ("recorded_at", Ts, "When p360 read the roster (UTC)"),
                (
                    "birth_date",
                    OptDate,
                    "Date of birth (the lake is a limited data set: dates are kept, names, member ids and addresses are not)",
                ),
                ("sex", OptStr, "female | male"),
                ("plan_id", OptStr, "The member's plan"),
                ("region", OptStr, "US state of the member's address"),
                ("coverage_start", OptDate, "First day of coverage"),
                (
                    "coverage_end",
                    OptDate,
                    "Last day of coverage; empty while covered",
                ),
            ],
            Table::CareGaps => &[
                PATIENT_KEY,
                CHANGE_ID,
                (
                    "computation_id",
                    Str,
                    "The computation that produced the row",
                ),
                ("computed_at", Ts, "When it was computed (UTC)"),
                (
                    "measure_id",
                    Str,
                    "cms122 | cms165 | cms125 | cms130 | kidney | cms347 | flu | ...",
                ),
                (
                    "measure_version",
                    Str,
                    "Version of the measure's specification",
                ),
                ("period_start", Date, "First day of the measurement period"),
                ("period_end", Date, "Last day of the measurement period"),
                (
                    "status",
                    Str,
                    "met | gap | excluded | insufficient_data | not_applicable",
                ),
                (
                    "evidence_fact_ids",
                    Str,
                    "Comma-separated ids of the facts that decided it",
                ),
                ("evidence_date", OptDate, "Latest day among the evidence"),
                (
                    "evidence_value",
                    OptF64,
                    "Value of the deciding result, when it has one (e.g. the latest HbA1c)",
                ),
                ("exclusion_reason", OptStr, "Why the patient is excluded"),
                (
                    "missing",
                    OptStr,
                    "What data would decide it, for insufficient_data and gaps",
                ),
            ],
            Table::ConsentChanges => &[
                PATIENT_KEY,
                CHANGE_ID,
                ("changed_at", Ts, "When the patient made the choice (UTC)"),
                (
                    "population_analytics",
                    Bool,
                    "Included in population dashboards",
                ),
                ("personalized_tips", Bool, "Sent personalised tips"),
            ],
        }
    }

    pub fn schema(self) -> Arc<Schema> {
        let fields: Vec<Field> = self
            .columns()
            .iter()
            .map(|(name, kind, _)| Field::new(*name, kind.data_type(), kind.nullable()))
            .collect();
        Arc::new(Schema::new(fields))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
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

    /// The type as SQL engines (DuckDB, DataFusion, Athena) name it.
    pub fn sql_type(self) -> &'static str {
        match self {
            Kind::Str | Kind::OptStr => "string",
            Kind::OptF64 => "double",
            Kind::U32 => "int (unsigned 32)",
            Kind::U64 => "bigint (unsigned 64)",
            Kind::Bool => "boolean",
            Kind::Date | Kind::OptDate => "date",
            Kind::Ts | Kind::OptTs => "timestamp (µs, UTC)",
            Kind::I32 => "int",
        }
    }

    /// The Hive/Glue type of the column.
    pub fn glue_type(self) -> &'static str {
        match self {
            Kind::Str | Kind::OptStr => "string",
            Kind::OptF64 => "double",
            // Glue has no unsigned types: the next wider signed one holds every value.
            Kind::U32 => "bigint",
            Kind::U64 => "decimal(20,0)",
            Kind::Bool => "boolean",
            Kind::Date | Kind::OptDate => "date",
            Kind::Ts | Kind::OptTs => "timestamp",
            Kind::I32 => "int",
        }
    }

    pub fn nullable(self) -> bool {
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

impl ChangeRow {
    /// A graph change of one fact: commit and fact (a commit is per patient, the key keeps it
    /// unique if it ever is not).
    pub fn change_id(&self) -> String {
        format!("{}/{}/{}", self.patient_key, self.commit_id, self.fact_id)
    }
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
        for (name, kind, _) in self.table.columns() {
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
        ("change_id", s(&change.change_id())),
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
        (
            "change_id",
            s(&format!("{patient_key}/access/{}", a.ledger_seq)),
        ),
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
        (
            "change_id",
            s(&format!(
                "{}/{}/{}/{}",
                r.received_id,
                r.device_key,
                r.metric,
                r.start.to_rfc3339()
            )),
        ),
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
        ("change_id", s(&change.change_id())),
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
    let table = Table::of(fact);
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
        FactBody::Medication(m) => {
            let (start, end) = match &m.effective {
                Some(When::Period { start, end }) => (Some(*start), *end),
                Some(w) => (Some(w.day()), None),
                None => (None, None),
            };
            row.extend([
                ("medication_text", s(&m.text)),
                ("strength", os(m.strength.as_deref())),
                ("form", os(m.form.as_deref())),
                ("dosage", os(m.dosage.as_deref())),
                ("medication_status", s(m.status.code())),
                ("start_date", Cell::Date(start)),
                ("end_date", Cell::Date(end)),
            ]);
        }
        FactBody::Encounter(e) => {
            let end = match &e.period {
                When::Period { end, .. } => *end,
                _ => None,
            };
            row.extend([
                ("class", s(&e.class)),
                ("start_date", Cell::Date(Some(e.period.day()))),
                ("end_date", Cell::Date(end)),
                ("reason_code", os(e.reason.first().map(|c| c.code.as_str()))),
                ("practitioner_npi", os(e.practitioner_npi.as_deref())),
            ]);
        }
        FactBody::Procedure(p) => {
            row.push(("performed_date", Cell::Date(Some(p.performed.day()))));
        }
        FactBody::Immunization(i) => {
            row.push(("occurred_date", Cell::Date(Some(i.occurred.day()))));
        }
        FactBody::Allergy(a) => row.extend([
            ("substance", s(&a.text)),
            ("reaction", os(a.reaction.as_deref())),
            ("recorded_date", Cell::Date(a.recorded)),
        ]),
        FactBody::Document(d) => row.extend([
            ("media_type", s(&d.media_type)),
            ("size", Cell::U64(d.size)),
            ("document_date", Cell::Date(Some(d.date.day()))),
        ]),
    }
    tables
        .entry((table, day))
        .or_insert_with(|| TableRows::new(table))
        .push(row);
}

/// One member's enrolment, as the lake keeps it (no name, member id or address).
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub patient_key: String,
    pub batch_id: String,
    pub recorded_at: DateTime<Utc>,
    pub birth_date: Option<NaiveDate>,
    pub sex: Option<String>,
    pub plan_id: Option<String>,
    pub region: Option<String>,
    pub coverage_start: Option<NaiveDate>,
    pub coverage_end: Option<NaiveDate>,
}

pub fn add_member(tables: &mut Partitions, m: &MemberRow) {
    let row = vec![
        ("patient_key", s(&m.patient_key)),
        (
            "change_id",
            s(&format!("{}/members/{}", m.patient_key, m.batch_id)),
        ),
        ("batch_id", s(&m.batch_id)),
        ("recorded_at", Cell::Ts(m.recorded_at)),
        ("birth_date", Cell::Date(m.birth_date)),
        ("sex", os(m.sex.as_deref())),
        ("plan_id", os(m.plan_id.as_deref())),
        ("region", os(m.region.as_deref())),
        ("coverage_start", Cell::Date(m.coverage_start)),
        ("coverage_end", Cell::Date(m.coverage_end)),
    ];
    tables
        .entry((Table::Members, m.recorded_at.date_naive()))
        .or_insert_with(|| TableRows::new(Table::Members))
        .push(row);
}

/// One care-gap result of one patient and measure.
#[derive(Debug, Clone)]
pub struct CareGapRow {
    pub patient_key: String,
    pub computation_id: String,
    pub computed_at: DateTime<Utc>,
    pub measure_id: String,
    pub measure_version: String,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub status: String,
    pub evidence_fact_ids: Vec<String>,
    pub evidence_date: Option<NaiveDate>,
    pub evidence_value: Option<f64>,
    pub exclusion_reason: Option<String>,
    pub missing: Option<String>,
}

pub fn add_care_gap(tables: &mut Partitions, g: &CareGapRow) {
    let row = vec![
        ("patient_key", s(&g.patient_key)),
        (
            "change_id",
            s(&format!(
                "{}/{}/{}",
                g.patient_key, g.computation_id, g.measure_id
            )),
        ),
        ("computation_id", s(&g.computation_id)),
        ("computed_at", Cell::Ts(g.computed_at)),
        ("measure_id", s(&g.measure_id)),
        ("measure_version", s(&g.measure_version)),
        ("period_start", Cell::Date(Some(g.period_start))),
        ("period_end", Cell::Date(Some(g.period_end))),
        ("status", s(&g.status)),
        ("evidence_fact_ids", s(&g.evidence_fact_ids.join(","))),
        ("evidence_date", Cell::Date(g.evidence_date)),
        ("evidence_value", Cell::F64(g.evidence_value)),
        ("exclusion_reason", os(g.exclusion_reason.as_deref())),
        ("missing", os(g.missing.as_deref())),
    ];
    tables
        .entry((Table::CareGaps, g.computed_at.date_naive()))
        .or_insert_with(|| TableRows::new(Table::CareGaps))
        .push(row);
}

/// One analytics opt-in or withdrawal.
pub fn add_consent_change(
    tables: &mut Partitions,
    patient_key: &str,
    c: &p360_events::AnalyticsConsentChanged,
) {
    let row = vec![
        ("patient_key", s(patient_key)),
        (
            "change_id",
            s(&format!("{patient_key}/consent/{}", c.change_id)),
        ),
        ("changed_at", Cell::Ts(c.changed_at)),
        ("population_analytics", Cell::Bool(c.population_analytics)),
        ("personalized_tips", Cell::Bool(c.personalized_tips)),
    ];
    tables
        .entry((Table::ConsentChanges, c.changed_at.date_naive()))
        .or_insert_with(|| TableRows::new(Table::ConsentChanges))
        .push(row);
}

/// The data dictionary (`LAKE.md`), generated from the tables' definitions.
pub fn markdown() -> String {
    let mut out = String::from(
        "# The p360 lake: data dictionary\n\n\
         Generated from `sink/src/lake/tables.rs` (`P360_BLESS=1 cargo test -p p360-sink --test \
         lake_schema`); that test fails when this file and the code disagree. Do not edit by hand.\n\n\
         Files: `<prefix>/<table>/year=YYYY/month=MM/day=DD/part-<batch>.parquet` (Snappy), \
         partitioned by the day (UTC) of the row's time column. Patient ids never appear: \
         `patient_key` is a keyed hash. Every table is a change log; `change_id` is unique per \
         change, so a reader de-duplicates repeated deliveries by keeping one row per \
         `change_id`. The views in `insights/sql/views.sql` (portable SQL, run by DataFusion \
         and DuckDB in the tests) give the current state: the latest row per fact, without \
         removed or entered-in-error facts, and only members whose latest `consent_changes` row opts in.\n",
    );
    for t in Table::ALL {
        out.push_str(&format!("\n## `{}`\n\n{}\n\n", t.name(), t.description()));
        out.push_str("| column | type | null | meaning |\n|---|---|---|---|\n");
        for (name, kind, what) in t.columns() {
            out.push_str(&format!(
                "| `{name}` | {} | {} | {} |\n",
                kind.sql_type(),
                if kind.nullable() { "yes" } else { "no" },
                what.replace('|', "\\|")
            ));
        }
    }
    out
}

/// The Glue tables of the lake, as a CloudFormation template (`infra/lake-tables.yaml`,
/// generated: a test fails when it and the code disagree). Partitions are projected from the
/// `year=/month=/day=` keys, so Athena needs no crawler and no `MSCK REPAIR`.
pub fn glue_template() -> String {
    let mut out = String::from(
        "# Generated from sink/src/lake/tables.rs by the lake_schema test (P360_BLESS=1). Do not edit.\n\
         AWSTemplateFormatVersion: \"2010-09-09\"\n\
         Description: p360 lake - the Glue database and one table per lake table (Parquet, partitions projected)\n\
         Parameters:\n  LakeBucket:\n    Type: String\n    Description: Bucket holding the lake\n  \
         LakePrefix:\n    Type: String\n    Default: lake\n  DatabaseName:\n    Type: String\n    Default: p360_lake\n\
         Resources:\n  LakeDatabase:\n    Type: AWS::Glue::Database\n    Properties:\n      \
         CatalogId: !Ref AWS::AccountId\n      DatabaseInput:\n        Name: !Ref DatabaseName\n        \
         Description: The p360 lake (pseudonymized change logs; see LAKE.md)\n",
    );
    for t in Table::ALL {
        let id: String = t
            .name()
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect();
        out.push_str(&format!(
            "  {id}Table:\n    Type: AWS::Glue::Table\n    Properties:\n      CatalogId: !Ref AWS::AccountId\n      \
             DatabaseName: !Ref LakeDatabase\n      TableInput:\n        Name: {name}\n        \
             Description: \"{desc}\"\n        TableType: EXTERNAL_TABLE\n        Parameters:\n          \
             classification: parquet\n          projection.enabled: \"true\"\n          \
             projection.year.type: integer\n          projection.year.range: \"2020,2100\"\n          \
             projection.month.type: integer\n          projection.month.range: \"1,12\"\n          \
             projection.month.digits: \"2\"\n          projection.day.type: integer\n          \
             projection.day.range: \"1,31\"\n          projection.day.digits: \"2\"\n          \
             storage.location.template: !Sub \"s3://${{LakeBucket}}/${{LakePrefix}}/{name}/year=${{!year}}/month=${{!month}}/day=${{!day}}\"\n        \
             PartitionKeys:\n          - {{ Name: year, Type: string }}\n          - {{ Name: month, Type: string }}\n          - {{ Name: day, Type: string }}\n        \
             StorageDescriptor:\n          Location: !Sub \"s3://${{LakeBucket}}/${{LakePrefix}}/{name}/\"\n          \
             InputFormat: org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat\n          \
             OutputFormat: org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat\n          \
             SerdeInfo:\n            SerializationLibrary: org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe\n          \
             Columns:\n",
            name = t.name(),
            desc = t.description().replace('"', "'"),
        ));
        for (name, kind, what) in t.columns() {
            out.push_str(&format!(
                "            - Name: {name}\n              Type: {}\n              Comment: \"{}\"\n",
                kind.glue_type(),
                what.replace('"', "'")
            ));
        }
    }
    out
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
