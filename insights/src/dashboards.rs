//! The payor's population dashboards: their SQL (`sql/`, portable across DataFusion, DuckDB and
//! Athena), the filters a reader may set, and publishing (run the SQL on a [`SqlEngine`], then
//! suppress small cells).
//!
//! A published table must not give away a small cell by subtraction from any other published
//! table, and a reader can ask for every filter split (sex=female, sex=male and everyone, or
//! any plan, age band, sex and region together). So [`publish`] never suppresses one table
//! alone: it runs the dashboard once grouped by its dimensions *and* every member attribute a
//! filter can name, adds the cells up to every filter combination, suppresses over all of them
//! at once (with the dashboard's own row, column and margin relations), and then cuts out the
//! table asked for. Each split of a population is thereby suppressed alike whichever split a
//! reader asks for.

use crate::suppress::{self, Relation};
use async_trait::async_trait;
use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

const VIEWS: &str = include_str!("../sql/views.sql");
const CCW: &str = include_str!("../sql/ccw.csv");

/// What `{{segment}}` becomes when cells are computed for every filter combination at once: the
/// member attributes the filters name, in [`Filters`] order.
const SEGMENT: &str = ", p.plan_id, p.age_band, p.sex, p.region";
const SEGMENT_COLUMNS: [&str; 4] = ["plan_id", "age_band", "sex", "region"];

/// The age bands a filter may name (`consenting_members.age_band`).
pub const AGE_BANDS: [&str; 5] = ["0-17", "18-44", "45-64", "65-74", "75+"];

/// What a result column holds, and so how it is suppressed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ColumnKind {
    /// What the rows are grouped by.
    Dimension,
    /// Distinct members: hidden from 1 to 10.
    MemberCount,
    /// Encounters, diagnoses, member-months: hidden from 1 to 10 too (the CMS policy covers
    /// admissions and services as well as people).
    EventCount,
    /// An additive amount published only where the count it follows is (exposure: a population
    /// of 3 members shows as ~36 member-months, so it goes with the member count).
    Exposure { follows: &'static str },
    /// `numerator * per / denominator`, hidden when either is.
    Rate {
        numerator: &'static str,
        denominator: &'static str,
        per: f64,
    },
}

impl ColumnKind {
    fn is_count(self) -> bool {
        matches!(self, ColumnKind::MemberCount | ColumnKind::EventCount)
    }

    fn is_additive(self) -> bool {
        self.is_count() || matches!(self, ColumnKind::Exposure { .. })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Column {
    pub name: &'static str,
    #[serde(flatten)]
    pub kind: ColumnKind,
}

/// An identity the published numbers obey besides the filter splits, so suppression must
/// respect it too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowRelation {
    /// In every row: `total` = the sum of `parts`.
    Sum {
        total: &'static str,
        parts: &'static [&'static str],
    },
    /// Down the rows in order: `total` = `total` of the row before + `of` (the first row:
    /// `total` = `of`).
    Running {
        total: &'static str,
        of: &'static str,
    },
}

/// One dashboard.
#[derive(Debug)]
pub struct Dashboard {
    pub id: &'static str,
    pub title: &'static str,
    sql: &'static str,
    pub columns: &'static [Column],
    pub relations: &'static [RowRelation],
    /// The label of a published total row, for dashboards whose rows are disjoint parts of one
    /// whole (it is a relation too: the total is the sum of the rows).
    pub total_row: Option<&'static str>,
}

const fn col(name: &'static str, kind: ColumnKind) -> Column {
    Column { name, kind }
}

use ColumnKind::{Dimension, EventCount, MemberCount};

static DASHBOARDS: [Dashboard; 6] = [
    Dashboard {
        id: "members",
        title: "Members and member-months by month",
        sql: include_str!("../sql/members.sql"),
        columns: &[
            col("month", Dimension),
            col("members", MemberCount),
            col("member_months_ytd", EventCount),
            col("new_members", MemberCount),
        ],
        relations: &[RowRelation::Running {
            total: "member_months_ytd",
            of: "members",
        }],
        total_row: None,
    },
    Dashboard {
        id: "prevalence",
        title: "Chronic conditions (CMS Chronic Conditions Warehouse categories)",
        sql: include_str!("../sql/prevalence.sql"),
        columns: &[
            col("condition", Dimension),
            col("members_with_condition", MemberCount),
            col("members", MemberCount),
            col(
                "prevalence_pct",
                ColumnKind::Rate {
                    numerator: "members_with_condition",
                    denominator: "members",
                    per: 100.0,
                },
            ),
        ],
        relations: &[],
        total_row: None,
    },
    Dashboard {
        id: "measures",
        title: "Quality measures",
        sql: include_str!("../sql/measures.sql"),
        columns: &[
            col("measure_id", Dimension),
            col("denominator", MemberCount),
            col("numerator", MemberCount),
            col(
                "performance_pct",
                ColumnKind::Rate {
                    numerator: "numerator",
                    denominator: "denominator",
                    per: 100.0,
                },
            ),
            col("exclusions", MemberCount),
            col("insufficient_data", MemberCount),
            col("open_gaps", MemberCount),
        ],
        relations: &[RowRelation::Sum {
            total: "denominator",
            parts: &["numerator", "open_gaps"],
        }],
        total_row: None,
    },
    Dashboard {
        id: "trends",
        title: "Encounters and new conditions by month",
        sql: include_str!("../sql/trends.sql"),
        columns: &[
            col("month", Dimension),
            col("encounters", EventCount),
            col("members_with_encounter", MemberCount),
            col("new_conditions", EventCount),
        ],
        relations: &[],
        total_row: None,
    },
    Dashboard {
        id: "utilisation",
        title: "Encounters per 1,000 member-years by encounter class",
        sql: include_str!("../sql/utilisation.sql"),
        columns: &[
            col("encounter_class", Dimension),
            col("encounters", EventCount),
            col("members_with_encounter", MemberCount),
            col("members", MemberCount),
            col("member_months", ColumnKind::Exposure { follows: "members" }),
            col(
                "encounters_per_1000_member_years",
                // Per 1,000 member-years = per 12,000 member-months.
                ColumnKind::Rate {
                    numerator: "encounters",
                    denominator: "member_months",
                    per: 12_000.0,
                },
            ),
        ],
        relations: &[],
        total_row: None,
    },
    Dashboard {
        id: "hba1c",
        title: "HbA1c control of members with diabetes",
        sql: include_str!("../sql/hba1c.sql"),
        columns: &[col("hba1c_band", Dimension), col("members", MemberCount)],
        relations: &[],
        total_row: Some("all members with diabetes"),
    },
];

/// Every dashboard, in menu order.
pub fn all() -> &'static [Dashboard] {
    &DASHBOARDS
}

pub fn get(id: &str) -> Option<&'static Dashboard> {
    DASHBOARDS.iter().find(|d| d.id == id)
}

impl Dashboard {
    pub fn dimensions(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.columns
            .iter()
            .filter(|c| c.kind == Dimension)
            .map(|c| c.name)
    }

    fn position(&self, name: &str) -> Result<usize, DashboardError> {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| self.bug(format!("no column {name}")))
    }

    fn bug(&self, what: String) -> DashboardError {
        DashboardError::Definition { id: self.id, what }
    }
}

/// The member filter: each set field narrows the population; values are validated on parsing,
/// so they can be put in SQL as literals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Filters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_band: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// A query parameter that is not a valid filter. Messages name the parameter and what it
/// must look like, never the value given.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("unknown filter parameter {0} (expected plan, age_band, sex or region)")]
    Unknown(String),
    #[error("filter parameter {0} is given more than once")]
    Repeated(&'static str),
    #[error("filter parameter {param} must be {expected}")]
    Invalid {
        param: &'static str,
        expected: &'static str,
    },
}

impl Filters {
    /// Reads query parameters (`plan`, `age_band`, `sex`, `region`).
    pub fn parse<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, FilterError> {
        let mut f = Filters::default();
        for (name, value) in params {
            let (slot, param, parsed) = match name {
                "plan" => (&mut f.plan, "plan", parse_plan(value)),
                "age_band" => (&mut f.age_band, "age_band", parse_age_band(value)),
                "sex" => (&mut f.sex, "sex", parse_sex(value)),
                "region" => (&mut f.region, "region", parse_region(value)),
                other => return Err(FilterError::Unknown(quote_name(other))),
            };
            if slot.is_some() {
                return Err(FilterError::Repeated(param));
            }
            *slot = Some(parsed.map_err(|expected| FilterError::Invalid { param, expected })?);
        }
        Ok(f)
    }

    /// The same filters, each checked again: a `Filters` built by hand reaches SQL only so.
    fn validated(&self) -> Result<Filters, FilterError> {
        let pairs = [
            ("plan", &self.plan),
            ("age_band", &self.age_band),
            ("sex", &self.sex),
            ("region", &self.region),
        ];
        Filters::parse(
            pairs
                .into_iter()
                .filter_map(|(n, v)| v.as_deref().map(|v| (n, v))),
        )
    }

    /// The condition on `consenting_members`; TRUE without filters.
    fn sql(&self) -> String {
        let terms: Vec<String> = [
            ("plan_id", &self.plan),
            ("age_band", &self.age_band),
            ("sex", &self.sex),
            ("region", &self.region),
        ]
        .into_iter()
        .filter_map(|(column, v)| v.as_ref().map(|v| format!("{column} = '{v}'")))
        .collect();
        if terms.is_empty() {
            "TRUE".to_owned()
        } else {
            terms.join(" AND ")
        }
    }

    /// The filter as a point of the filter lattice.
    fn levels(&self) -> [Level; 4] {
        [&self.plan, &self.age_band, &self.sex, &self.region].map(|v| {
            v.as_ref()
                .map_or(Level::Any, |v| Level::Is(Some(v.clone())))
        })
    }
}

/// A parameter name is echoed only when it looks like one (never arbitrary input).
fn quote_name(name: &str) -> String {
    let plain = !name.is_empty()
        && name.len() <= 32
        && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if plain {
        format!("`{name}`")
    } else {
        "(not a parameter name)".to_owned()
    }
}

fn parse_plan(v: &str) -> Result<String, &'static str> {
    let ok =
        (1..=32).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(v.to_owned())
    } else {
        Err("1 to 32 letters, digits or hyphens")
    }
}

fn parse_age_band(v: &str) -> Result<String, &'static str> {
    AGE_BANDS
        .iter()
        .find(|b| **b == v)
        .map(|b| (*b).to_owned())
        .ok_or("one of 0-17, 18-44, 45-64, 65-74, 75+")
}

fn parse_sex(v: &str) -> Result<String, &'static str> {
    match v.to_ascii_lowercase().as_str() {
        s @ ("female" | "male") => Ok(s.to_owned()),
        _ => Err("female or male"),
    }
}

fn parse_region(v: &str) -> Result<String, &'static str> {
    if v.len() == 2 && v.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(v.to_ascii_uppercase())
    } else {
        Err("a US state as two letters, e.g. PA")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("no dashboard {0}")]
    Unknown(String),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error("the report date must fall in the years 1900 to 9999")]
    ReportDate,
    #[error(transparent)]
    Sql(#[from] SqlError),
    /// A dashboard's definition and its SQL or result disagree: a bug, caught by the tests.
    #[error("dashboard {id}: {what}")]
    Definition { id: &'static str, what: String },
}

/// The SQL text of a dashboard: the base views, then its query, with the filters and the report
/// date in place (statements separated by `;`, the last one gives the table).
pub fn render(
    id: &str,
    filters: &Filters,
    report_date: NaiveDate,
) -> Result<String, DashboardError> {
    let d = get(id).ok_or_else(|| DashboardError::Unknown(quote_name(id)))?;
    render_sql(d, &filters.validated()?, report_date, false)
}

/// The SQL that groups a dashboard by its dimensions and by every filterable member attribute
/// (what [`publish`] runs).
pub fn render_segmented(id: &str, report_date: NaiveDate) -> Result<String, DashboardError> {
    let d = get(id).ok_or_else(|| DashboardError::Unknown(quote_name(id)))?;
    render_sql(d, &Filters::default(), report_date, true)
}

fn render_sql(
    d: &Dashboard,
    filters: &Filters,
    report_date: NaiveDate,
    segmented: bool,
) -> Result<String, DashboardError> {
    if !(1900..=9999).contains(&report_date.year()) {
        return Err(DashboardError::ReportDate);
    }
    let values = [
        (
            "{{report_date}}",
            format!("DATE '{}'", report_date.format("%Y-%m-%d")),
        ),
        ("{{report_year}}", report_date.year().to_string()),
        ("{{member_filter}}", filters.sql()),
        (
            "{{segment}}",
            if segmented { SEGMENT } else { "" }.to_owned(),
        ),
        (
            "{{ccw_categories}}",
            ccw_values().map_err(|what| d.bug(what))?,
        ),
    ];
    let mut sql = format!("{}\n{}", VIEWS.trim_end(), d.sql.trim_end());
    for (placeholder, value) in &values {
        sql = sql.replace(placeholder, value);
    }
    if sql.contains("{{") {
        return Err(d.bug("a placeholder is left in the SQL".into()));
    }
    Ok(sql)
}

/// The condition -> ICD-10-CM category rows of `ccw.csv`, as SQL VALUES rows.
fn ccw_values() -> Result<String, String> {
    let rows = ccw_categories()?;
    Ok(rows
        .iter()
        .map(|(c, k)| format!("('{c}', '{k}')"))
        .collect::<Vec<_>>()
        .join(", "))
}

/// `ccw.csv`: (condition, three-character ICD-10-CM category) pairs, each checked so that it
/// can go into SQL as a literal.
pub fn ccw_categories() -> Result<Vec<(&'static str, &'static str)>, String> {
    let mut lines = CCW.lines().filter(|l| !l.trim().is_empty());
    if lines.next().map(str::trim) != Some("condition,category3") {
        return Err("ccw.csv: the header must be condition,category3".into());
    }
    lines
        .enumerate()
        .map(|(i, line)| {
            let (condition, category) = line
                .trim()
                .split_once(',')
                .ok_or_else(|| format!("ccw.csv line {}: two columns expected", i + 2))?;
            let b = category.as_bytes();
            let category_ok = b.len() == 3
                && b[0].is_ascii_uppercase()
                && b[1].is_ascii_digit()
                && (b[2].is_ascii_digit() || b[2].is_ascii_uppercase());
            let condition_ok = !condition.is_empty()
                && condition
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c == b'_');
            if category_ok && condition_ok {
                Ok((condition, category))
            } else {
                Err(format!(
                    "ccw.csv line {}: not a condition name and an ICD-10-CM category",
                    i + 2
                ))
            }
        })
        .collect()
}

/// One value of a result.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
}

/// A query's result.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ResultTable {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// The engine failed; the message names SQL and schema, never values.
#[derive(Debug, thiserror::Error)]
#[error("SQL engine: {0}")]
pub struct SqlError(pub String);

/// The SQL engine port: DataFusion over the local lake, Athena over S3, DuckDB in tests.
#[async_trait]
pub trait SqlEngine: Send + Sync {
    /// Runs `sql`, statements separated by `;`, and returns the last statement's result.
    async fn query(&self, sql: &str) -> Result<ResultTable, SqlError>;
}

/// A cell as published: suppressed counts and whatever derives from them are null.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PublishedCell {
    pub value: Cell,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Published {
    pub id: &'static str,
    pub title: &'static str,
    pub report_date: NaiveDate,
    pub filters: Filters,
    pub columns: &'static [Column],
    pub rows: Vec<Vec<PublishedCell>>,
    /// How many cells are suppressed (small counts, their complements, derived values).
    pub suppressed: usize,
    pub policy: &'static str,
}

const POLICY: &str = "CMS cell-size suppression: counts from 1 to 10 are not shown, nor any \
                      cell from which one could be derived by subtraction, nor rates derived \
                      from a suppressed count";

/// Runs a dashboard and publishes it with its small cells suppressed.
pub async fn publish(
    engine: &dyn SqlEngine,
    id: &str,
    filters: &Filters,
    report_date: NaiveDate,
) -> Result<Published, DashboardError> {
    let mut tables = publish_many(engine, id, std::slice::from_ref(filters), report_date).await?;
    tables
        .pop()
        .ok_or_else(|| DashboardError::Unknown(quote_name(id)))
}

/// One dashboard for several filters with one query (each table as [`publish`] gives it).
pub async fn publish_many(
    engine: &dyn SqlEngine,
    id: &str,
    filters: &[Filters],
    report_date: NaiveDate,
) -> Result<Vec<Published>, DashboardError> {
    let d = get(id).ok_or_else(|| DashboardError::Unknown(quote_name(id)))?;
    let filters = filters
        .iter()
        .map(Filters::validated)
        .collect::<Result<Vec<_>, _>>()?;
    let sql = render_sql(d, &Filters::default(), report_date, true)?;
    let table = engine.query(&sql).await?;
    let cube = Cube::build(d, &table)?;
    let hidden = cube.suppress(d)?;
    filters
        .into_iter()
        .map(|f| {
            let rows = cube.cut(d, &f.levels(), &hidden)?;
            let suppressed = rows.iter().flatten().filter(|c| c.suppressed).count();
            Ok(Published {
                id: d.id,
                title: d.title,
                report_date,
                filters: f,
                columns: d.columns,
                rows,
                suppressed,
                policy: POLICY,
            })
        })
        .collect()
}

/// One member attribute of a filter combination: any value, or one value (None: the attribute
/// is missing, a value no filter can name but whose members still count in the totals).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Level {
    Any,
    Is(Option<String>),
}

/// The four member attributes a cell is segmented by (plan, age band, sex, region).
type Segment = [Option<String>; 4];
/// A column's value in a row, and whether it is hidden.
type CellLookup<'a> = dyn Fn(&str) -> Result<(i64, bool), DashboardError> + 'a;

/// A dimension value, hashable.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Null,
    Int(i64),
    Text(String),
}

impl Key {
    fn cell(&self) -> Cell {
        match self {
            Key::Null => Cell::Null,
            Key::Int(i) => Cell::Int(*i),
            Key::Text(t) => Cell::Text(t.clone()),
        }
    }
}

/// A dashboard's additive columns for every row and every filter combination.
struct Cube {
    /// Row keys in the order of the SQL's ORDER BY; a total row, when published, is last.
    rows: Vec<Vec<Key>>,
    total_row: bool,
    /// Result-column positions of the additive columns, in column order.
    additive: Vec<usize>,
    combos: Vec<[Level; 4]>,
    combo_index: HashMap<[Level; 4], usize>,
    /// `values[(combo * rows + row) * additive + a]`.
    values: Vec<i64>,
}

impl Cube {
    fn build(d: &Dashboard, t: &ResultTable) -> Result<Cube, DashboardError> {
        let dims: Vec<usize> = (0..d.columns.len())
            .filter(|i| d.columns[*i].kind == Dimension)
            .collect();
        let mut expected: Vec<&str> = d.dimensions().collect();
        expected.extend(SEGMENT_COLUMNS);
        expected.extend(
            d.columns
                .iter()
                .filter(|c| c.kind != Dimension)
                .map(|c| c.name),
        );
        if t.columns
            .iter()
            .map(String::as_str)
            .ne(expected.iter().copied())
        {
            return Err(d.bug(format!(
                "the segmented query returned columns {:?}, expected {expected:?}",
                t.columns
            )));
        }
        let additive: Vec<usize> = (0..d.columns.len())
            .filter(|i| d.columns[*i].kind.is_additive())
            .collect();
        // Result position of each column of the dashboard (the segment sits after the dims).
        let result_pos = |i: usize| {
            if i < dims.len() {
                i
            } else {
                i + SEGMENT_COLUMNS.len()
            }
        };
        let mut rows: Vec<Vec<Key>> = Vec::new();
        let mut row_index: HashMap<Vec<Key>, usize> = HashMap::new();
        let mut base: BTreeMap<Segment, Vec<(usize, Vec<i64>)>> = BTreeMap::new();
        for r in &t.rows {
            let key = dims
                .iter()
                .map(|i| key_of(&r[*i]).ok_or_else(|| d.bug("a dimension is a float".into())))
                .collect::<Result<Vec<Key>, _>>()?;
            let row = *row_index.entry(key.clone()).or_insert_with(|| {
                rows.push(key);
                rows.len() - 1
            });
            let vals = additive
                .iter()
                .map(|i| match &r[result_pos(*i)] {
                    Cell::Int(v) => Ok(*v),
                    Cell::Null => Ok(0),
                    _ => Err(d.bug(format!("{} is not an integer", d.columns[*i].name))),
                })
                .collect::<Result<Vec<i64>, _>>()?;
            if vals.iter().all(|v| *v == 0) {
                continue; // adds nothing anywhere
            }
            let seg = std::array::from_fn(|k| match &r[dims.len() + k] {
                Cell::Null => None,
                Cell::Text(s) => Some(s.clone()),
                Cell::Int(i) => Some(i.to_string()),
                Cell::Float(f) => Some(f.to_string()),
            });
            base.entry(seg).or_default().push((row, vals));
        }
        let total_row = d.total_row.is_some();
        if total_row {
            rows.push(vec![
                Key::Text(d.total_row.unwrap_or_default().to_owned());
                dims.len()
            ]);
        }
        // Every filter combination some member falls in: each segment and its 15
        // generalisations. Sorted, so that suppression sees the same order every time.
        let mut combo_set: BTreeSet<[Level; 4]> = BTreeSet::new();
        for seg in base.keys() {
            for mask in 0..16u8 {
                combo_set.insert(generalise(seg, mask));
            }
        }
        let combos: Vec<[Level; 4]> = combo_set.into_iter().collect();
        let combo_index: HashMap<[Level; 4], usize> = combos
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, c)| (c, i))
            .collect();
        let n_add = additive.len();
        let mut values = vec![0i64; combos.len() * rows.len() * n_add];
        let n_rows = rows.len();
        let margin = total_row.then(|| n_rows - 1);
        for (seg, entries) in &base {
            for mask in 0..16u8 {
                let c = combo_index[&generalise(seg, mask)];
                for (row, vals) in entries {
                    for (a, v) in vals.iter().enumerate() {
                        values[(c * n_rows + row) * n_add + a] += v;
                        if let Some(m) = margin {
                            values[(c * n_rows + m) * n_add + a] += v;
                        }
                    }
                }
            }
        }
        Ok(Cube {
            rows,
            total_row,
            additive,
            combos,
            combo_index,
            values,
        })
    }

    fn at(&self, combo: usize, row: usize, a: usize) -> usize {
        (combo * self.rows.len() + row) * self.additive.len() + a
    }

    /// Position among the additive columns of the column called `name`.
    fn additive_of(&self, d: &Dashboard, name: &str) -> Result<usize, DashboardError> {
        let i = d.position(name)?;
        self.additive
            .iter()
            .position(|a| *a == i)
            .ok_or_else(|| d.bug(format!("{name} is not additive")))
    }

    /// Which additive cells to hide, over every filter combination at once.
    fn suppress(&self, d: &Dashboard) -> Result<Vec<bool>, DashboardError> {
        let counts: Vec<usize> = (0..self.additive.len())
            .filter(|a| d.columns[self.additive[*a]].kind.is_count())
            .collect();
        let n_rows = self.rows.len();
        let data_rows = n_rows - usize::from(self.total_row);
        let mut relations = Vec::new();
        // Filter splits: a combination with an attribute left open is the sum of the
        // combinations that fix it to each value.
        let mut splits: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
        for (c, combo) in self.combos.iter().enumerate() {
            for k in 0..4 {
                if combo[k] != Level::Any {
                    let mut parent = combo.clone();
                    parent[k] = Level::Any;
                    splits
                        .entry((self.combo_index[&parent], k))
                        .or_default()
                        .push(c);
                }
            }
        }
        for ((parent, _), children) in &splits {
            for row in 0..n_rows {
                for &a in &counts {
                    relations.push(Relation {
                        total: self.at(*parent, row, a),
                        parts: children.iter().map(|c| self.at(*c, row, a)).collect(),
                    });
                }
            }
        }
        let row_relations: Vec<(usize, Vec<usize>, bool)> = d
            .relations
            .iter()
            .map(|r| match r {
                RowRelation::Sum { total, parts } => Ok((
                    self.additive_of(d, total)?,
                    parts
                        .iter()
                        .map(|p| self.additive_of(d, p))
                        .collect::<Result<_, _>>()?,
                    false,
                )),
                RowRelation::Running { total, of } => Ok((
                    self.additive_of(d, total)?,
                    vec![self.additive_of(d, of)?],
                    true,
                )),
            })
            .collect::<Result<_, DashboardError>>()?;
        for c in 0..self.combos.len() {
            for (total, parts, running) in &row_relations {
                if *running {
                    for row in 0..data_rows {
                        let mut p = vec![self.at(c, row, parts[0])];
                        if row > 0 {
                            p.push(self.at(c, row - 1, *total));
                        }
                        relations.push(Relation {
                            total: self.at(c, row, *total),
                            parts: p,
                        });
                    }
                } else {
                    for row in 0..n_rows {
                        relations.push(Relation {
                            total: self.at(c, row, *total),
                            parts: parts.iter().map(|p| self.at(c, row, *p)).collect(),
                        });
                    }
                }
            }
            if self.total_row {
                for &a in &counts {
                    relations.push(Relation {
                        total: self.at(c, n_rows - 1, a),
                        parts: (0..data_rows).map(|r| self.at(c, r, a)).collect(),
                    });
                }
            }
        }
        let is_count: Vec<bool> = (0..self.values.len())
            .map(|i| {
                d.columns[self.additive[i % self.additive.len()]]
                    .kind
                    .is_count()
            })
            .collect();
        Ok(suppress::suppress(&self.values, &is_count, &relations))
    }

    /// The published table of one filter combination.
    fn cut(
        &self,
        d: &Dashboard,
        levels: &[Level; 4],
        hidden: &[bool],
    ) -> Result<Vec<Vec<PublishedCell>>, DashboardError> {
        let combo = self.combo_index.get(levels).copied();
        let mut out = Vec::with_capacity(self.rows.len());
        for (row, key) in self.rows.iter().enumerate() {
            // (value, hidden) of an additive column; an empty population is all zeros.
            let get = |name: &str| -> Result<(i64, bool), DashboardError> {
                let a = self.additive_of(d, name)?;
                Ok(combo.map_or((0, false), |c| {
                    let i = self.at(c, row, a);
                    (self.values[i], hidden[i])
                }))
            };
            let mut cells = Vec::with_capacity(d.columns.len());
            let mut dims = key.iter();
            for column in d.columns {
                let cell = match column.kind {
                    Dimension => PublishedCell {
                        value: dims.next().map_or(Cell::Null, Key::cell),
                        suppressed: false,
                    },
                    ColumnKind::MemberCount | ColumnKind::EventCount => {
                        let (v, h) = get(column.name)?;
                        published(Cell::Int(v), h)
                    }
                    ColumnKind::Exposure { follows } => {
                        let (v, _) = get(column.name)?;
                        let (_, h) = get(follows)?;
                        published(Cell::Int(v), h)
                    }
                    ColumnKind::Rate {
                        numerator,
                        denominator,
                        per,
                    } => {
                        let (n, nh) = self.with_follows(d, numerator, &get)?;
                        let (den, dh) = self.with_follows(d, denominator, &get)?;
                        let rate = if den == 0 {
                            Cell::Null
                        } else {
                            Cell::Float(n as f64 * per / den as f64)
                        };
                        published(rate, nh || dh)
                    }
                };
                cells.push(cell);
            }
            out.push(cells);
        }
        Ok(out)
    }

    /// A rate's input: its value, hidden if it or (for exposure) the count it follows is.
    fn with_follows(
        &self,
        d: &Dashboard,
        name: &str,
        get: &CellLookup<'_>,
    ) -> Result<(i64, bool), DashboardError> {
        let (v, h) = get(name)?;
        match d.columns[d.position(name)?].kind {
            ColumnKind::Exposure { follows } => Ok((v, h || get(follows)?.1)),
            _ => Ok((v, h)),
        }
    }
}

fn published(value: Cell, suppressed: bool) -> PublishedCell {
    if suppressed {
        PublishedCell {
            value: Cell::Null,
            suppressed: true,
        }
    } else {
        PublishedCell {
            value,
            suppressed: false,
        }
    }
}

fn key_of(c: &Cell) -> Option<Key> {
    match c {
        Cell::Null => Some(Key::Null),
        Cell::Int(i) => Some(Key::Int(*i)),
        Cell::Text(t) => Some(Key::Text(t.clone())),
        Cell::Float(_) => None,
    }
}

/// The combination that keeps the attributes of `seg` whose bit in `mask` is 0.
fn generalise(seg: &[Option<String>; 4], mask: u8) -> [Level; 4] {
    std::array::from_fn(|k| {
        if mask & (1 << k) != 0 {
            Level::Any
        } else {
            Level::Is(seg[k].clone())
        }
    })
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // the attacker keeps tables of published cells by filter
mod tests {
    use super::*;

    fn date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 30).unwrap_or_default()
    }

    #[test]
    fn filters_parse_and_name_the_bad_parameter() {
        let f = Filters::parse([("plan", "MA-HMO"), ("sex", "Female"), ("region", "pa")]).unwrap();
        assert_eq!(f.plan.as_deref(), Some("MA-HMO"));
        assert_eq!(f.sex.as_deref(), Some("female"));
        assert_eq!(f.region.as_deref(), Some("PA"));
        assert_eq!(
            f.sql(),
            "plan_id = 'MA-HMO' AND sex = 'female' AND region = 'PA'"
        );
        assert_eq!(Filters::default().sql(), "TRUE");
        let err = |p: &[(&str, &str)]| Filters::parse(p.iter().copied()).unwrap_err().to_string();
        assert!(err(&[("plan", "x' OR 1=1 --")]).contains("plan must be"));
        assert!(!err(&[("plan", "x' OR 1=1 --")]).contains("OR 1=1"));
        assert!(err(&[("region", "Penn")]).contains("region must be"));
        assert!(err(&[("sex", "other")]).contains("sex must be"));
        assert!(err(&[("age_band", "40-50")]).contains("age_band must be"));
        assert!(err(&[("plan", "")]).contains("plan must be"));
        assert!(err(&[("plan", &"a".repeat(33))]).contains("plan must be"));
        assert!(err(&[("sex", "male"), ("sex", "female")]).contains("sex is given more"));
        assert!(err(&[("colour", "red")]).contains("`colour`"));
        assert!(!err(&[("x'; DROP", "1")]).contains("DROP"));
    }

    #[test]
    fn hand_built_filters_are_validated_before_reaching_sql() {
        let f = Filters {
            region: Some("P'A".into()),
            ..Filters::default()
        };
        assert!(matches!(
            render("members", &f, date()),
            Err(DashboardError::Filter(FilterError::Invalid {
                param: "region",
                ..
            }))
        ));
    }

    #[test]
    fn every_dashboard_renders_with_every_placeholder_filled() {
        let f = Filters::parse([("age_band", "65-74"), ("sex", "male")]).unwrap();
        for d in all() {
            let sql = render(d.id, &f, date()).unwrap();
            assert!(!sql.contains("{{"), "{}", d.id);
            assert!(
                sql.contains("age_band = '65-74' AND sex = 'male'"),
                "{}",
                d.id
            );
            assert!(!sql.contains(SEGMENT), "{}", d.id);
            let segmented = render_segmented(d.id, date()).unwrap();
            assert!(
                segmented.contains(SEGMENT),
                "{}: no {{{{segment}}}} in its SQL",
                d.id
            );
            // The views, then one query.
            assert_eq!(sql.matches("CREATE VIEW").count(), 9, "{}", d.id);
            assert!(d.dimensions().count() >= 1, "{}", d.id);
        }
        assert!(
            render("prevalence", &Filters::default(), date())
                .unwrap()
                .contains("('diabetes', 'E11')")
        );
        assert!(matches!(
            render("nope", &Filters::default(), date()),
            Err(DashboardError::Unknown(_))
        ));
    }

    #[test]
    fn every_column_a_definition_names_exists() {
        for d in all() {
            for c in d.columns {
                let named: Vec<&str> = match c.kind {
                    ColumnKind::Exposure { follows } => vec![follows],
                    ColumnKind::Rate {
                        numerator,
                        denominator,
                        ..
                    } => vec![numerator, denominator],
                    _ => vec![],
                };
                for n in named {
                    assert!(d.position(n).is_ok(), "{}: {n}", d.id);
                }
            }
            for r in d.relations {
                let named: Vec<&str> = match r {
                    RowRelation::Sum { total, parts } => std::iter::once(*total)
                        .chain(parts.iter().copied())
                        .collect(),
                    RowRelation::Running { total, of } => vec![*total, *of],
                };
                for n in named {
                    let kind = d.columns[d.position(n).unwrap()].kind;
                    assert!(
                        kind.is_count(),
                        "{}: {n} is in a relation but not a count",
                        d.id
                    );
                }
            }
            // Every column's name appears in the query's SQL, so the two are kept together.
            for c in d.columns {
                assert!(
                    d.sql.contains(c.name),
                    "{}: {} not in its SQL",
                    d.id,
                    c.name
                );
            }
        }
    }

    #[test]
    fn the_ccw_list_covers_the_required_conditions() {
        let rows = ccw_categories().unwrap();
        for c in [
            "diabetes",
            "hypertension",
            "hyperlipidemia",
            "chronic_kidney_disease",
            "copd",
            "asthma",
            "heart_failure",
            "ischemic_heart_disease",
            "depression",
            "obesity",
        ] {
            assert!(rows.iter().any(|(k, _)| *k == c), "{c}");
        }
        assert!(rows.contains(&("diabetes", "E11")));
        let distinct: BTreeSet<_> = rows.iter().collect();
        assert_eq!(distinct.len(), rows.len(), "a pair is listed twice");
    }

    /// An engine that answers the segmented hba1c query with fixed rows.
    struct Fixed(ResultTable);

    #[async_trait]
    impl SqlEngine for Fixed {
        async fn query(&self, sql: &str) -> Result<ResultTable, SqlError> {
            if sql.contains(SEGMENT) {
                Ok(self.0.clone())
            } else {
                Err(SqlError("unexpected query".into()))
            }
        }
    }

    fn text(s: &str) -> Cell {
        Cell::Text(s.into())
    }

    fn seg_row(band: &str, plan: &str, sex: &str, n: i64) -> Vec<Cell> {
        vec![
            text(band),
            text(plan),
            text("45-64"),
            text(sex),
            text("PA"),
            Cell::Int(n),
        ]
    }

    fn hba1c_fixture() -> Fixed {
        let columns = [
            "hba1c_band",
            "plan_id",
            "age_band",
            "sex",
            "region",
            "members",
        ]
        .map(String::from)
        .to_vec();
        Fixed(ResultTable {
            columns,
            rows: vec![
                seg_row("<7", "A", "female", 40),
                seg_row("<7", "A", "male", 35),
                seg_row("<7", "B", "female", 3),
                seg_row("<7", "B", "male", 50),
                seg_row(">9", "A", "female", 12),
                seg_row(">9", "A", "male", 0),
                seg_row(">9", "B", "female", 20),
                seg_row(">9", "B", "male", 30),
            ],
        })
    }

    fn values(p: &Published) -> Vec<Option<i64>> {
        p.rows
            .iter()
            .map(|r| match &r[1].value {
                Cell::Int(v) => Some(*v),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn publish_adds_up_segments_and_suppresses_across_splits() {
        let engine = hba1c_fixture();
        let all = publish(&engine, "hba1c", &Filters::default(), date())
            .await
            .unwrap();
        // Rows: <7, >9, then the total row.
        assert_eq!(all.rows.len(), 3);
        assert_eq!(all.rows[2][0].value, text("all members with diabetes"));
        // Every table a reader can ask for: plan A, B or any, by sex female, male or any.
        let mut tables: HashMap<(Option<&str>, Option<&str>), Vec<Option<i64>>> = HashMap::new();
        for plan in [None, Some("A"), Some("B")] {
            for sex in [None, Some("female"), Some("male")] {
                let params: Vec<(&str, &str)> = [("plan", plan), ("sex", sex)]
                    .into_iter()
                    .filter_map(|(k, v)| v.map(|v| (k, v)))
                    .collect();
                let f = Filters::parse(params).unwrap();
                let p = publish(&engine, "hba1c", &f, date()).await.unwrap();
                tables.insert((plan, sex), values(&p));
            }
        }
        let truth = |plan: Option<&str>, sex: Option<&str>| -> Vec<i64> {
            let mut v = vec![0; 3];
            for r in &engine.0.rows {
                let is = |c: &Cell, want: Option<&str>| want.is_none_or(|w| *c == text(w));
                if is(&r[1], plan) && is(&r[3], sex) {
                    let Cell::Int(n) = r[5] else { continue };
                    let row = usize::from(r[0] == text(">9"));
                    v[row] += n;
                    v[2] += n;
                }
            }
            v
        };
        // What is shown is right, and the one small count (plan B, female, <7: 3) is not.
        for ((plan, sex), shown) in &tables {
            for (s, t) in shown.iter().zip(truth(*plan, *sex)) {
                assert!(s.is_none() || *s == Some(t));
                assert!(s.is_some() || t > 0, "a zero is hidden");
            }
        }
        assert_eq!(tables[&(Some("B"), Some("female"))][0], None);
        // The attacker: rows add up to the total row; sexes add up to any sex; plans to any
        // plan. It must not solve any hidden cell.
        let mut relations: Vec<Vec<(Option<&str>, Option<&str>, usize)>> = Vec::new();
        for plan in [None, Some("A"), Some("B")] {
            for sex in [None, Some("female"), Some("male")] {
                relations.push(vec![(plan, sex, 2), (plan, sex, 0), (plan, sex, 1)]);
            }
        }
        for row in 0..3 {
            for fixed in [None, Some("A"), Some("B")] {
                relations.push(vec![
                    (fixed, None, row),
                    (fixed, Some("female"), row),
                    (fixed, Some("male"), row),
                ]);
            }
            for fixed in [None, Some("female"), Some("male")] {
                relations.push(vec![
                    (None, fixed, row),
                    (Some("A"), fixed, row),
                    (Some("B"), fixed, row),
                ]);
            }
        }
        for rel in &relations {
            let unknown = rel
                .iter()
                .filter(|(p, s, r)| tables[&(*p, *s)][*r].is_none())
                .count();
            assert_ne!(unknown, 1, "one hidden cell in {rel:?} can be recovered");
        }
        let b_female = Filters::parse([("plan", "B"), ("sex", "female")]).unwrap();
        let p = publish(&engine, "hba1c", &b_female, date()).await.unwrap();
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(
            json["rows"][0][1],
            serde_json::json!({"value": null, "suppressed": true})
        );
        assert_eq!(json["rows"][0][0], serde_json::json!({"value": "<7"}));
        assert_eq!(
            json["filters"],
            serde_json::json!({"plan": "B", "sex": "female"})
        );
        assert_eq!(
            p.suppressed,
            p.rows.iter().flatten().filter(|c| c.suppressed).count()
        );
        assert!(p.suppressed >= 2);
    }

    #[tokio::test]
    async fn an_empty_population_publishes_zeros() {
        let engine = hba1c_fixture();
        let nobody = Filters::parse([("region", "AK")]).unwrap();
        let p = publish(&engine, "hba1c", &nobody, date()).await.unwrap();
        assert_eq!(values(&p), [Some(0), Some(0), Some(0)]);
    }

    #[tokio::test]
    async fn a_result_of_another_shape_is_an_error_not_a_table() {
        let engine = Fixed(ResultTable {
            columns: vec!["hba1c_band".into(), "members".into()],
            rows: vec![],
        });
        let err = publish(&engine, "hba1c", &Filters::default(), date())
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            DashboardError::Definition { id: "hba1c", .. }
        ));
    }

    #[tokio::test]
    async fn rates_are_recomputed_and_hidden_with_their_counts() {
        let columns = [
            "measure_id",
            "plan_id",
            "age_band",
            "sex",
            "region",
            "denominator",
            "numerator",
            "performance_pct",
            "exclusions",
            "insufficient_data",
            "open_gaps",
        ]
        .map(String::from)
        .to_vec();
        let row = |m: &str, sex: &str, num: i64, gap: i64| {
            vec![
                text(m),
                text("A"),
                text("45-64"),
                text(sex),
                text("PA"),
                Cell::Int(num + gap),
                Cell::Int(num),
                Cell::Null,
                Cell::Int(0),
                Cell::Int(0),
                Cell::Int(gap),
            ]
        };
        let engine = Fixed(ResultTable {
            columns,
            rows: vec![
                row("cms125", "female", 60, 20),
                row("cms130", "female", 50, 4),
            ],
        });
        let p = publish(&engine, "measures", &Filters::default(), date())
            .await
            .unwrap();
        let pct = |r: usize| p.rows[r][3].clone();
        assert_eq!(pct(0).value, Cell::Float(75.0));
        // 4 open gaps are hidden; with them the numerator (denominator = numerator + gaps), so
        // the rate, too.
        assert!(p.rows[1][6].suppressed);
        assert!(p.rows[1][2].suppressed || p.rows[1][1].suppressed);
        assert!(pct(1).suppressed);
    }
}
