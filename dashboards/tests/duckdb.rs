//! The dashboards on a synthetic lake: DataFusion against DuckDB (an independent engine on the
//! same files and the same SQL), against the population they were made from, suppression
//! against an attacker, and a withdrawal of consent.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
use p360_dashboards::LakeSql;
use p360_dashboards::population::{Config, Member, Population};
use p360_insights::dashboards::{
    self, Cell, ColumnKind, Filters, Published, ResultTable, RowRelation, SqlEngine,
};
use p360_insights::engine::{self, Status as GapStatus};
use p360_insights::suppress::is_small;
use p360_model::{ClinicalStatus, CodeSystem, FactBody, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

const MEMBERS: usize = 3_000;
const SEED: u64 = 20_260_630;

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()
}

/// One population and its lake for the tests that only read it.
fn shared() -> &'static (Population, tempfile::TempDir) {
    static LAKE: OnceLock<(Population, tempfile::TempDir)> = OnceLock::new();
    LAKE.get_or_init(|| make_lake(MEMBERS, SEED))
}

fn make_lake(members: usize, seed: u64) -> (Population, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let pop = Population::generate(&Config {
        members,
        seed,
        as_of: as_of(),
    });
    let stats = pop.write_lake(dir.path()).unwrap();
    eprintln!(
        "lake: {members} members, {} rows in {} files, {:.1} s",
        stats.rows,
        stats.files,
        started.elapsed().as_secs_f64()
    );
    (pop, dir)
}

fn filters(pairs: &[(&str, &str)]) -> Filters {
    Filters::parse(pairs.iter().copied()).unwrap()
}

/// The interpreter with DuckDB: P360_DUCKDB_PYTHON, else the one scripts/test.sh prepares for
/// the lake readers (P360_LAKE_PYTHON), else the splink venv, else python3.
fn duckdb_python() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let candidates: Vec<PathBuf> = if let Some(p) = std::env::var_os("P360_DUCKDB_PYTHON") {
        vec![PathBuf::from(p)]
    } else {
        let mut c: Vec<PathBuf> = std::env::var_os("P360_LAKE_PYTHON")
            .map(PathBuf::from)
            .into_iter()
            .collect();
        c.push(home.join(".cache/p360/splink-venv/bin/python"));
        c.push(PathBuf::from("python3"));
        c
    };
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import duckdb"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/insights/duckdb_dashboards.py")
}

/// Runs named SQL texts with DuckDB on `lake`.
fn duckdb(python: &Path, lake: &Path, queries: &[(String, String)]) -> Vec<ResultTable> {
    let job = serde_json::json!({
        "lake": lake,
        "schema": p360_dashboards::duckdb_schema().unwrap(),
        "queries": queries.iter().map(|(n, sql)| serde_json::json!({"name": n, "sql": sql})).collect::<Vec<_>>(),
    });
    let mut child = Command::new(python)
        .arg(script())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(job.to_string().as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "duckdb_dashboards.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    results
        .iter()
        .map(|r| ResultTable {
            columns: r["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_owned())
                .collect(),
            rows: r["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|row| {
                    row.as_array()
                        .unwrap()
                        .iter()
                        .map(|v| match v {
                            serde_json::Value::Null => Cell::Null,
                            serde_json::Value::Number(n) => n
                                .as_i64()
                                .map_or_else(|| Cell::Float(n.as_f64().unwrap()), Cell::Int),
                            serde_json::Value::String(s) => Cell::Text(s.clone()),
                            other => Cell::Text(other.to_string()),
                        })
                        .collect()
                })
                .collect(),
        })
        .collect()
}

/// Rows sorted by their first `dims` cells (the dimensions), as text.
fn sorted(t: &ResultTable, dims: usize) -> Vec<Vec<Cell>> {
    let mut rows = t.rows.clone();
    rows.sort_by_key(|r| {
        r[..dims]
            .iter()
            .map(|c| format!("{c:?}"))
            .collect::<Vec<_>>()
    });
    rows
}

fn same(a: &Cell, b: &Cell) -> bool {
    let num = |c: &Cell| match c {
        Cell::Int(i) => Some(*i as f64),
        Cell::Float(f) => Some(*f),
        _ => None,
    };
    match (a, b) {
        (Cell::Int(x), Cell::Int(y)) => x == y,
        (Cell::Text(x), Cell::Text(y)) => x == y,
        (Cell::Null, Cell::Null) => true,
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
            _ => false,
        },
    }
}

#[tokio::test]
async fn datafusion_and_duckdb_agree_on_every_dashboard() {
    let Some(python) = duckdb_python() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "DuckDB (PyPI duckdb) is needed for the cross-check in CI: set P360_DUCKDB_PYTHON"
        );
        eprintln!(
            "\n!!! SKIPPED: no Python with duckdb found (set P360_DUCKDB_PYTHON); \
             the DataFusion/DuckDB cross-check did not run !!!\n"
        );
        return;
    };
    let (_, dir) = shared();
    let engine = LakeSql::open(dir.path(), as_of()).unwrap();
    let filter_sets = [
        filters(&[]),
        filters(&[("sex", "female")]),
        filters(&[("plan", "MA-HMO"), ("age_band", "65-74")]),
        filters(&[("region", "PA"), ("sex", "male")]),
    ];
    let mut queries = Vec::new();
    let mut dims = Vec::new();
    for d in dashboards::all() {
        for f in &filter_sets {
            queries.push((
                format!("{} {f:?}", d.id),
                dashboards::render(d.id, f, as_of()).unwrap(),
            ));
            dims.push(d.dimensions().count());
        }
        // The query publishing runs: grouped by the member attributes as well.
        queries.push((
            format!("{} segmented", d.id),
            dashboards::render_segmented(d.id, as_of()).unwrap(),
        ));
        dims.push(d.dimensions().count() + 4);
    }
    let started = Instant::now();
    let mut ours = Vec::new();
    for (name, sql) in &queries {
        let t = Instant::now();
        ours.push(engine.query(sql).await.unwrap());
        eprintln!("datafusion {name}: {} ms", t.elapsed().as_millis());
    }
    let df_time = started.elapsed();
    let started = Instant::now();
    let theirs = duckdb(&python, dir.path(), &queries);
    eprintln!(
        "{} queries: DataFusion {:.2} s, DuckDB {:.2} s (incl. its start)",
        queries.len(),
        df_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(ours.len(), theirs.len());
    let mut cells = 0;
    for (((name, _), (a, b)), dims) in queries.iter().zip(ours.iter().zip(&theirs)).zip(&dims) {
        assert_eq!(a.columns, b.columns, "{name}: columns");
        assert!(!a.rows.is_empty(), "{name}: no rows");
        let (ra, rb) = (sorted(a, *dims), sorted(b, *dims));
        assert_eq!(ra.len(), rb.len(), "{name}: row count");
        for (x, y) in ra.iter().zip(&rb) {
            for (c, (u, v)) in x.iter().zip(y).enumerate() {
                assert!(
                    same(u, v),
                    "{name}: {} differs: {u:?} vs {v:?}",
                    a.columns[c]
                );
                cells += 1;
            }
        }
    }
    eprintln!("DuckDB and DataFusion agree on {cells} cells");
}

/// Members in analytics now, by the population's own account.
fn consenting(pop: &Population) -> impl Iterator<Item = &Member> {
    pop.members.iter().filter(|m| m.in_analytics())
}

fn column(t: &ResultTable, name: &str) -> usize {
    t.columns.iter().position(|c| c == name).unwrap()
}

fn int(c: &Cell) -> i64 {
    match c {
        Cell::Int(i) => *i,
        other => panic!("not an integer: {other:?}"),
    }
}

/// `(dimension text, column) -> value` of a result.
fn by_dim(t: &ResultTable, col: &str) -> BTreeMap<String, i64> {
    let c = column(t, col);
    t.rows
        .iter()
        .map(|r| {
            let key = match &r[0] {
                Cell::Text(s) => s.clone(),
                Cell::Int(i) => i.to_string(),
                other => format!("{other:?}"),
            };
            (key, int(&r[c]))
        })
        .collect()
}

/// The member's active current ICD-10-CM condition categories.
fn categories(m: &Member) -> Vec<String> {
    m.facts
        .iter()
        .filter_map(|(f, _)| match &f.body {
            FactBody::Condition(c) if c.clinical_status == ClinicalStatus::Active => c
                .code
                .first()
                .filter(|k| k.system == CodeSystem::Icd10Cm)
                .map(|k| k.code[..3].to_owned()),
            _ => None,
        })
        .collect()
}

/// The latest HbA1c of the report year as a band, computed from the member's facts.
fn hba1c_band(m: &Member, as_of: NaiveDate) -> &'static str {
    let mut latest: Option<(NaiveDate, f64)> = None;
    for (f, _) in &m.facts {
        let FactBody::Observation(o) = &f.body else {
            continue;
        };
        let Some(code) = o.code.first() else { continue };
        if !(code.code == "4548-4" || code.code == "17856-6") {
            continue;
        }
        let Some(Value::Quantity { value, unit, .. }) = &o.value else {
            continue;
        };
        let pct = if unit == "mmol/mol" {
            value * 0.09148 + 2.152
        } else {
            *value
        };
        let day = o.effective.day();
        if day.year() != as_of.year() || day > as_of {
            continue;
        }
        latest = match latest {
            Some((d, v)) if d > day || (d == day && v <= pct) => Some((d, v)),
            _ => Some((day, pct)),
        };
    }
    match latest {
        None => "no result",
        Some((_, v)) if v < 7.0 => "<7",
        Some((_, v)) if v < 8.0 => "7-8",
        Some((_, v)) if v <= 9.0 => "8-9",
        Some(_) => ">9",
    }
}

#[tokio::test]
async fn dashboards_count_what_the_population_holds() {
    let (pop, dir) = shared();
    let engine = LakeSql::open(dir.path(), as_of()).unwrap();
    let run = |id: &str, f: Filters| {
        let sql = dashboards::render(id, &f, as_of()).unwrap();
        let engine = &engine;
        async move { engine.query(&sql).await.unwrap() }
    };
    let in_analytics: Vec<&Member> = consenting(pop).collect();
    let share = in_analytics.len() as f64 / pop.members.len() as f64;
    assert!((0.8..0.92).contains(&share), "analytics opt-in {share}");

    // Members by month.
    let t = run("members", Filters::default()).await;
    let months = by_dim(&t, "members");
    assert_eq!(months.len(), 6, "January to the report date's June");
    for (month, n) in &months {
        let month: u32 = month.parse().unwrap();
        let first = NaiveDate::from_ymd_opt(2026, month, 1).unwrap();
        let last = (first + Duration::days(32)).with_day(1).unwrap() - Duration::days(1);
        let expected = in_analytics
            .iter()
            .filter(|m| m.coverage_start <= last && m.coverage_end.is_none_or(|e| e >= first))
            .count() as i64;
        assert_eq!(*n, expected, "members in month {month}");
    }
    let ytd = by_dim(&t, "member_months_ytd");
    assert_eq!(ytd["6"], months.values().sum::<i64>());

    // Prevalence, with the CCW list read independently of the SQL.
    let ccw = dashboards::ccw_categories().unwrap();
    let t = run("prevalence", Filters::default()).await;
    let prevalent = by_dim(&t, "members_with_condition");
    let total = by_dim(&t, "members");
    for (condition, n) in &prevalent {
        let expected = in_analytics
            .iter()
            .filter(|m| {
                categories(m)
                    .iter()
                    .any(|k| ccw.iter().any(|(c, cat)| c == condition && cat == k))
            })
            .count() as i64;
        assert_eq!(*n, expected, "{condition}");
        assert_eq!(total[condition], in_analytics.len() as i64);
    }
    let pct = |c: &str| prevalent[c] as f64 / in_analytics.len() as f64;
    // Diagnosed diabetes is about 11 % of US adults and over 20 % of those past 65; a payor's
    // book with Medicare Advantage members sits between.
    assert!(
        (0.09..0.18).contains(&pct("diabetes")),
        "diabetes {}",
        pct("diabetes")
    );
    assert!(
        (0.22..0.36).contains(&pct("hypertension")),
        "hypertension {}",
        pct("hypertension")
    );
    assert!(pct("chronic_kidney_disease") > 0.02 && pct("copd") > 0.01 && pct("asthma") > 0.03);

    // HbA1c bands of diabetics: about one in six tested above 9 %.
    let t = run("hba1c", Filters::default()).await;
    let bands = by_dim(&t, "members");
    let mut expected: BTreeMap<String, i64> = ["<7", "7-8", "8-9", ">9", "no result"]
        .iter()
        .map(|b| ((*b).to_owned(), 0))
        .collect();
    for m in &in_analytics {
        if categories(m)
            .iter()
            .any(|k| ["E10", "E11", "E13"].contains(&k.as_str()))
        {
            *expected.get_mut(hba1c_band(m, as_of())).unwrap() += 1;
        }
    }
    assert_eq!(bands, expected);
    let tested: i64 = bands
        .iter()
        .filter(|(b, _)| *b != "no result")
        .map(|(_, n)| n)
        .sum();
    let poor = bands[">9"] as f64 / tested as f64;
    assert!((0.12..0.24).contains(&poor), "latest HbA1c > 9 %: {poor}");

    // Measures: the engine's statuses of the consenting members, counted.
    let t = run("measures", Filters::default()).await;
    let mut expected: BTreeMap<String, [i64; 4]> = BTreeMap::new();
    for m in &in_analytics {
        for r in engine::evaluate_all(&m.record(), as_of()) {
            let e = expected.entry(r.measure_id.clone()).or_default();
            match r.status {
                GapStatus::Met => e[0] += 1,
                GapStatus::Gap => e[1] += 1,
                GapStatus::Excluded => e[2] += 1,
                GapStatus::InsufficientData => e[3] += 1,
                GapStatus::NotApplicable => {}
            }
        }
    }
    let (num, gaps, excl, insuf, den) = (
        by_dim(&t, "numerator"),
        by_dim(&t, "open_gaps"),
        by_dim(&t, "exclusions"),
        by_dim(&t, "insufficient_data"),
        by_dim(&t, "denominator"),
    );
    assert_eq!(num.len(), expected.len());
    for (measure, [met, gap, ex, ins]) in &expected {
        assert_eq!(
            [num[measure], gaps[measure], excl[measure], insuf[measure]],
            [*met, *gap, *ex, *ins],
            "{measure}"
        );
        assert_eq!(den[measure], met + gap);
    }

    // A filter narrows the population and nothing else.
    let t = run(
        "prevalence",
        filters(&[("sex", "female"), ("region", "PA")]),
    )
    .await;
    let n = in_analytics
        .iter()
        .filter(|m| m.sex == "female" && m.region == "PA")
        .count() as i64;
    assert!(by_dim(&t, "members").values().all(|v| *v == n));

    // Encounters of the year by class, by the facts.
    let t = run("utilisation", Filters::default()).await;
    let got = by_dim(&t, "encounters");
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for m in &in_analytics {
        for (f, _) in &m.facts {
            if let FactBody::Encounter(e) = &f.body {
                let day = e.period.day();
                if day.year() == 2026 && day <= as_of() {
                    *expected.entry(e.class.clone()).or_default() += 1;
                }
            }
        }
    }
    assert_eq!(got, expected);
}

/// The cells of a published table as (visible value or None), by (row, column).
fn grid(p: &Published) -> Vec<Vec<Option<f64>>> {
    p.rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| match &c.value {
                    Cell::Int(i) => Some(*i as f64),
                    Cell::Float(f) => Some(*f),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

/// Every filter a reader can set on this population, alone, and sex with each other one.
fn all_filters(pop: &Population) -> Vec<Filters> {
    let mut plans: Vec<&str> = pop.members.iter().map(|m| m.plan).collect();
    plans.sort_unstable();
    plans.dedup();
    let mut regions: Vec<&str> = pop.members.iter().map(|m| m.region).collect();
    regions.sort_unstable();
    regions.dedup();
    let mut out = vec![filters(&[])];
    let mut singles: Vec<(&str, &str)> = Vec::new();
    for s in ["female", "male"] {
        singles.push(("sex", s));
    }
    for p in &plans {
        singles.push(("plan", p));
    }
    for b in dashboards::AGE_BANDS {
        singles.push(("age_band", b));
    }
    for r in &regions {
        singles.push(("region", r));
    }
    for s in &singles {
        out.push(filters(&[*s]));
    }
    for s in ["female", "male"] {
        for other in singles.iter().filter(|(k, _)| *k != "sex") {
            out.push(filters(&[("sex", s), *other]));
        }
    }
    out
}

/// The attacker: sees every published table, knows the dashboard's definition and the filter
/// values, and solves any identity left with one unknown, again and again. Returns how many
/// hidden cells it recovered.
fn attack(d: &dashboards::Dashboard, tables: &[(Filters, Vec<Vec<Option<f64>>>)]) -> usize {
    let count_cols: Vec<usize> = d
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.kind, ColumnKind::MemberCount | ColumnKind::EventCount))
        .map(|(i, _)| i)
        .collect();
    let col = |n: &str| d.columns.iter().position(|c| c.name == n).unwrap();
    let index: HashMap<String, usize> = tables
        .iter()
        .enumerate()
        .map(|(i, (f, _))| (format!("{f:?}"), i))
        .collect();
    let rows = tables[0].1.len();
    let data_rows = rows - usize::from(d.total_row.is_some());
    // Identities as lists of (table, row, column) with the first = the sum of the others.
    let mut identities: Vec<Vec<(usize, usize, usize)>> = Vec::new();
    let values_of = |field: &str| -> Vec<String> {
        let mut v: Vec<String> = tables
            .iter()
            .filter_map(|(f, _)| match field {
                "sex" => f.sex.clone(),
                "plan" => f.plan.clone(),
                "age_band" => f.age_band.clone(),
                _ => f.region.clone(),
            })
            .collect();
        v.sort();
        v.dedup();
        v
    };
    for (t, (f, _)) in tables.iter().enumerate() {
        for field in ["sex", "plan", "age_band", "region"] {
            let mut children = Vec::new();
            let mut complete = true;
            for v in values_of(field) {
                let mut g = f.clone();
                let slot = match field {
                    "sex" => &mut g.sex,
                    "plan" => &mut g.plan,
                    "age_band" => &mut g.age_band,
                    _ => &mut g.region,
                };
                if slot.is_some() {
                    complete = false;
                    break;
                }
                *slot = Some(v);
                match index.get(&format!("{g:?}")) {
                    Some(i) => children.push(*i),
                    None => complete = false,
                }
            }
            if !complete || children.is_empty() {
                continue;
            }
            for r in 0..rows {
                for &c in &count_cols {
                    let mut id = vec![(t, r, c)];
                    id.extend(children.iter().map(|ch| (*ch, r, c)));
                    identities.push(id);
                }
            }
        }
        for rel in d.relations {
            match rel {
                RowRelation::Sum { total, parts } => {
                    for r in 0..rows {
                        let mut id = vec![(t, r, col(total))];
                        id.extend(parts.iter().map(|p| (t, r, col(p))));
                        identities.push(id);
                    }
                }
                RowRelation::Running { total, of } => {
                    for r in 0..data_rows {
                        let mut id = vec![(t, r, col(total)), (t, r, col(of))];
                        if r > 0 {
                            id.push((t, r - 1, col(total)));
                        }
                        identities.push(id);
                    }
                }
            }
        }
        if d.total_row.is_some() {
            for &c in &count_cols {
                let mut id = vec![(t, rows - 1, c)];
                id.extend((0..data_rows).map(|r| (t, r, c)));
                identities.push(id);
            }
        }
    }
    let mut known: Vec<Vec<Vec<Option<f64>>>> = tables.iter().map(|(_, g)| g.clone()).collect();
    let mut recovered = 0;
    loop {
        let mut progress = false;
        for id in &identities {
            let unknown: Vec<&(usize, usize, usize)> = id
                .iter()
                .filter(|(t, r, c)| known[*t][*r][*c].is_none())
                .collect();
            if let [&(t, r, c)] = unknown[..] {
                let parts: f64 = id[1..]
                    .iter()
                    .filter_map(|(t, r, c)| known[*t][*r][*c])
                    .sum();
                let total = known[id[0].0][id[0].1][id[0].2];
                known[t][r][c] = Some(match total {
                    Some(total) => total - parts,
                    None => parts,
                });
                recovered += 1;
                progress = true;
            }
        }
        if !progress {
            return recovered;
        }
    }
}

#[tokio::test]
async fn published_tables_hide_small_cells_from_an_attacker() {
    let (pop, dir) = shared();
    let engine = LakeSql::open(dir.path(), as_of()).unwrap();
    let all = all_filters(pop);
    let mut hidden_total = 0;
    let mut naive_leaks = 0;
    for d in dashboards::all() {
        let started = Instant::now();
        let published = dashboards::publish_many(&engine, d.id, &all, as_of())
            .await
            .unwrap();
        eprintln!(
            "publish {} for {} filters: {} ms",
            d.id,
            all.len(),
            started.elapsed().as_millis()
        );
        let tables: Vec<(Filters, Vec<Vec<Option<f64>>>)> = published
            .iter()
            .map(|p| (p.filters.clone(), grid(p)))
            .collect();
        // Everyone and the sex split, checked against the engine's own numbers for that filter
        // (and published naively, with only counts of 1 to 10 hidden, for the control below).
        let mut naive = Vec::new();
        for p in published.iter().filter(|p| {
            p.filters.plan.is_none() && p.filters.age_band.is_none() && p.filters.region.is_none()
        }) {
            let direct = engine
                .query(&dashboards::render(d.id, &p.filters, as_of()).unwrap())
                .await
                .unwrap();
            let data_rows = p.rows.len() - usize::from(d.total_row.is_some());
            assert_eq!(direct.rows.len(), data_rows, "{} {:?}", d.id, p.filters);
            let mut raw = grid(p);
            for (r, row) in p.rows.iter().enumerate().take(data_rows) {
                for (c, cell) in row.iter().enumerate() {
                    let truth = direct.rows[r][c].clone();
                    if cell.suppressed {
                        raw[r][c] = match truth {
                            Cell::Int(i) => Some(i as f64),
                            Cell::Float(f) => Some(f),
                            _ => None,
                        };
                    } else {
                        assert!(
                            same(&cell.value, &truth),
                            "{} {:?}: {} differs",
                            d.id,
                            p.filters,
                            d.columns[c].name
                        );
                    }
                }
            }
            if d.total_row.is_some() {
                // The total row's true values: the rows' sums.
                let total = raw.len() - 1;
                for c in 1..raw[total].len() {
                    raw[total][c] = Some((0..total).filter_map(|r| raw[r][c]).sum());
                }
            }
            let naive_grid: Vec<Vec<Option<f64>>> = raw
                .iter()
                .map(|row| {
                    row.iter()
                        .enumerate()
                        .map(|(c, v)| match (d.columns[c].kind, v) {
                            (ColumnKind::MemberCount | ColumnKind::EventCount, Some(x))
                                if is_small(*x as i64) =>
                            {
                                None
                            }
                            _ => *v,
                        })
                        .collect()
                })
                .collect();
            naive.push((p.filters.clone(), naive_grid));
        }
        for p in &published {
            hidden_total += p.suppressed;
            for row in &p.rows {
                for (c, cell) in row.iter().enumerate() {
                    if let (ColumnKind::MemberCount | ColumnKind::EventCount, Cell::Int(v)) =
                        (d.columns[c].kind, &cell.value)
                    {
                        assert!(!is_small(*v), "{}: a count of {v} is shown", d.id);
                    }
                }
            }
        }
        assert_eq!(
            attack(d, &tables),
            0,
            "{}: the attacker recovered hidden cells",
            d.id
        );
        naive_leaks += attack(d, &naive);
    }
    eprintln!("{hidden_total} cells hidden; primary suppression alone would leak {naive_leaks}");
    assert!(hidden_total > 0);
    // The attacker is able: against primary suppression alone it recovers cells.
    assert!(naive_leaks > 0);
}

#[tokio::test]
async fn a_member_who_withdraws_disappears_from_every_dashboard() {
    let (mut pop, dir) = make_lake(400, 7);
    let engine = LakeSql::open(dir.path(), as_of()).unwrap();
    // A consenting diabetic with encounters this year, covered now.
    let index = pop
        .members
        .iter()
        .position(|m| {
            m.in_analytics()
                && m.coverage_end.is_none()
                && categories(m).iter().any(|k| k == "E11")
                && m.facts.iter().any(|(f, _)| matches!(&f.body, FactBody::Encounter(e) if e.period.day().year() == 2026))
        })
        .unwrap();
    let key = pop.members[index].patient_key.clone();
    let views = [
        "consenting_members",
        "current_observations",
        "current_conditions",
        "current_medications",
        "current_encounters",
        "current_care_gaps",
    ];
    let rows_of = |view: &str| {
        let views_sql = dashboards::render("members", &Filters::default(), as_of()).unwrap();
        // The views, then a count of the member's rows instead of the dashboard query.
        let views_only = views_sql[..views_sql.rfind("WITH population").unwrap()].to_owned();
        format!("{views_only}\nSELECT COUNT(*) AS n FROM {view} WHERE patient_key = '{key}'")
    };
    let mut before = HashMap::new();
    for v in views {
        let n = int(&engine.query(&rows_of(v)).await.unwrap().rows[0][0]);
        before.insert(v, n);
    }
    for v in [
        "consenting_members",
        "current_conditions",
        "current_encounters",
        "current_care_gaps",
    ] {
        assert!(before[v] > 0, "{v}");
    }
    let mut tables = HashMap::new();
    for d in dashboards::all() {
        let sql = dashboards::render(d.id, &Filters::default(), as_of()).unwrap();
        tables.insert(d.id, engine.query(&sql).await.unwrap());
    }

    let at = Utc.from_utc_datetime(&as_of().and_hms_opt(9, 30, 0).unwrap());
    pop.withdraw(dir.path(), index, at).unwrap();

    // The same engine, the next query: the member is gone from every view...
    for v in views {
        let n = int(&engine.query(&rows_of(v)).await.unwrap().rows[0][0]);
        assert_eq!(n, 0, "{v} still has the member");
    }
    // ...and from every dashboard, each by exactly the member's part.
    let after = |id: &str| {
        let sql = dashboards::render(id, &Filters::default(), as_of()).unwrap();
        let engine = &engine;
        async move { engine.query(&sql).await.unwrap() }
    };
    let m = &pop.members[index];
    let t = after("prevalence").await;
    let (was, now) = (
        by_dim(&tables["prevalence"], "members_with_condition"),
        by_dim(&t, "members_with_condition"),
    );
    for (condition, n) in &was {
        let had = u8::from(m.conditions.contains(condition.as_str()));
        assert_eq!(now[condition], n - i64::from(had), "{condition}");
    }
    let (was, now) = (
        by_dim(&tables["prevalence"], "members"),
        by_dim(&t, "members"),
    );
    assert!(was.iter().all(|(k, v)| now[k] == v - 1));
    let t = after("members").await;
    let (was, now) = (by_dim(&tables["members"], "members"), by_dim(&t, "members"));
    assert_eq!(now["6"], was["6"] - 1);
    let t = after("hba1c").await;
    let band = hba1c_band(m, as_of());
    let (was, now) = (by_dim(&tables["hba1c"], "members"), by_dim(&t, "members"));
    for (b, n) in &was {
        assert_eq!(now[b], n - i64::from(b == band), "{b}");
    }
    let t = after("trends").await;
    let mine = m
        .facts
        .iter()
        .filter(|(f, _)| matches!(&f.body, FactBody::Encounter(e) if e.period.day().year() == 2026))
        .count() as i64;
    let was: i64 = by_dim(&tables["trends"], "encounters").values().sum();
    let now: i64 = by_dim(&t, "encounters").values().sum();
    assert_eq!(now, was - mine);
    let t = after("measures").await;
    let statuses = engine::evaluate_all(&m.record(), as_of());
    let (was, now) = (
        by_dim(&tables["measures"], "denominator"),
        by_dim(&t, "denominator"),
    );
    for r in statuses {
        let counted = i64::from(matches!(r.status, GapStatus::Met | GapStatus::Gap));
        assert_eq!(
            now[&r.measure_id],
            was[&r.measure_id] - counted,
            "{}",
            r.measure_id
        );
    }
    let t = after("utilisation").await;
    let (was, now) = (
        by_dim(&tables["utilisation"], "members"),
        by_dim(&t, "members"),
    );
    assert!(was.iter().all(|(k, v)| now[k] == v - 1));
}

#[test]
fn generation_is_deterministic_by_seed() {
    let config = Config {
        members: 200,
        seed: 42,
        as_of: as_of(),
    };
    let a = Population::generate(&config);
    let b = Population::generate(&config);
    let c = Population::generate(&Config { seed: 43, ..config });
    let summary = |p: &Population| -> Vec<(String, usize, &'static str)> {
        p.members
            .iter()
            .map(|m| (m.patient_key.clone(), m.facts.len(), m.plan))
            .collect()
    };
    assert_eq!(summary(&a), summary(&b));
    assert_ne!(summary(&a), summary(&c));
    assert_eq!(a.records(), b.records());
}
