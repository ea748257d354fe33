//! Facts in the graph: the SPARQL that writes one (idempotently) and the query that reads a
//! patient's facts back. The same text runs on Oxigraph and on any SPARQL 1.1 server.

use crate::sparql::{decimal, iri, string, typed};
use crate::store::{GraphError, GraphStore, Term};
use crate::vocab;
use p360_events::PatientId;
use p360_model::{Fact, FactBody, FactId, Provenance, Status, Value};
use std::collections::BTreeMap;
use std::fmt::Write;

fn class(body: &FactBody) -> &'static str {
    match body {
        FactBody::Observation(_) => "Observation",
        FactBody::Condition(_) => "Condition",
        FactBody::Medication(_) => "Medication",
        FactBody::Procedure(_) => "Procedure",
        FactBody::Allergy(_) => "Allergy",
        FactBody::Immunization(_) => "Immunization",
        FactBody::Encounter(_) => "Encounter",
        FactBody::Document(_) => "Document",
    }
}

pub fn status_str(s: Status) -> &'static str {
    match s {
        Status::Unconfirmed => "unconfirmed",
        Status::Confirmed => "confirmed",
        Status::EnteredInError => "entered-in-error",
    }
}

fn parse_status(s: &str) -> Option<Status> {
    match s {
        "unconfirmed" => Some(Status::Unconfirmed),
        "confirmed" => Some(Status::Confirmed),
        "entered-in-error" => Some(Status::EnteredInError),
        _ => None,
    }
}

fn json_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v)
        .expect("model types always serialize: string keys, finite numbers checked")
}

/// Triples of one source of `fact`, in Turtle-like SPARQL syntax.
fn source_triples(out: &mut String, fact: &Fact, p: &Provenance) {
    let node = iri(&vocab::source(&fact.patient, &fact.id, &p.source_key()));
    let _ = write!(
        out,
        "{} {} {node} .\n{node} a {} ; {} {} ; {} {} ; {} {} ; {} {}",
        iri(&vocab::fact(&fact.patient, &fact.id)),
        iri(&vocab::p("source")),
        iri(&vocab::p("Source")),
        iri(&vocab::p("sourceKind")),
        string(p.source_kind.as_str()),
        iri(&vocab::p("sourceId")),
        string(&p.source_id),
        iri(&vocab::p("recorded")),
        typed(
            &p.recorded
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "dateTime"
        ),
        iri(&vocab::p("json")),
        string(&json_of(p)),
    );
    if let Some(d) = &p.document {
        let _ = write!(
            out,
            " ; {} {}",
            iri(&vocab::p("document")),
            iri(&vocab::document(&fact.patient, d))
        );
    }
    if let Some(page) = p.page {
        let _ = write!(out, " ; {} {}", iri(&vocab::p("page")), page);
    }
    if let Some(c) = p.confidence.and_then(|c| decimal(f64::from(c))) {
        let _ = write!(out, " ; {} {c}", iri(&vocab::p("confidence")));
    }
    if let Some(a) = &p.author {
        let _ = write!(
            out,
            " ; {} {}",
            iri(&vocab::p("author")),
            string(a.as_str())
        );
    }
    if let Some(c) = &p.confirmed_by {
        let _ = write!(
            out,
            " ; {} {}",
            iri(&vocab::p("confirmedBy")),
            string(c.as_str())
        );
    }
    out.push_str(" .\n");
}

/// The SPARQL update that writes `fact` into its patient's graph. Idempotent: the status and
/// content are replaced, sources are added (a source already present is the same triples).
pub fn upsert(fact: &Fact) -> String {
    let g = iri(&vocab::patient_graph(&fact.patient));
    let f = iri(&vocab::fact(&fact.patient, &fact.id));
    let mut triples = String::new();
    let _ = write!(
        triples,
        "{f} a {} ; {} {} ; {} {} ; {} {} ; {} {}",
        iri(&vocab::p(class(&fact.body))),
        iri(&vocab::p("patient")),
        g,
        iri(&vocab::p("category")),
        string(fact.body.category().as_str()),
        iri(&vocab::p("status")),
        string(status_str(fact.status)),
        iri(&vocab::p("json")),
        string(&json_of(&fact.body)),
    );
    let codes = match &fact.body {
        FactBody::Observation(o) => &o.code,
        FactBody::Condition(c) => &c.code,
        FactBody::Medication(m) => &m.code,
        FactBody::Procedure(p) => &p.code,
        FactBody::Allergy(a) => &a.code,
        FactBody::Immunization(i) => &i.vaccine,
        FactBody::Encounter(e) => &e.kind,
        FactBody::Document(d) => &d.kind,
    };
    for c in codes {
        let _ = write!(
            triples,
            " ; {} {}",
            iri(&vocab::p("code")),
            iri(&vocab::code(c))
        );
    }
    if let Some(day) = fact.body.day() {
        let _ = write!(
            triples,
            " ; {} {}",
            iri(&vocab::p("day")),
            typed(&day.to_string(), "date")
        );
    }
    if let FactBody::Observation(o) = &fact.body {
        match &o.value {
            Some(Value::Quantity {
                value,
                unit,
                comparator,
            }) => {
                if let Some(v) = decimal(*value) {
                    let _ = write!(triples, " ; {} {v}", iri(&vocab::p("value")));
                }
                let _ = write!(
                    triples,
                    " ; {} {}",
                    iri(&vocab::p("unit")),
                    iri(&vocab::unit(unit))
                );
                if let Some(c) = comparator {
                    let _ = write!(
                        triples,
                        " ; {} {}",
                        iri(&vocab::p("comparator")),
                        string(c.as_str())
                    );
                }
            }
            Some(Value::Text { text }) => {
                let _ = write!(triples, " ; {} {}", iri(&vocab::p("text")), string(text));
            }
            Some(Value::Coded { coding }) => {
                let _ = write!(
                    triples,
                    " ; {} {}",
                    iri(&vocab::p("valueCode")),
                    iri(&vocab::code(coding))
                );
            }
            None => {}
        }
    }
    triples.push_str(" .\n");
    for p in &fact.provenance {
        source_triples(&mut triples, fact, p);
    }
    format!(
        "DELETE WHERE {{ GRAPH {g} {{ {f} {status} ?s }} }} ;\n\
         DELETE WHERE {{ GRAPH {g} {{ {f} {json} ?j }} }} ;\n\
         INSERT DATA {{ GRAPH {g} {{\n{triples}}} }}",
        status = iri(&vocab::p("status")),
        json = iri(&vocab::p("json")),
    )
}

/// Every fact of `patient`, with all its sources, ordered by id.
pub async fn read_patient(
    store: &dyn GraphStore,
    patient: &PatientId,
) -> Result<Vec<Fact>, GraphError> {
    read(store, patient, String::new()).await
}

/// The named facts of `patient` that exist, ordered by id.
pub async fn read_facts(
    store: &dyn GraphStore,
    patient: &PatientId,
    ids: &[FactId],
) -> Result<Vec<Fact>, GraphError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = ids
        .iter()
        .map(|id| iri(&vocab::fact(patient, id)))
        .collect();
    read(
        store,
        patient,
        format!("VALUES ?f {{ {} }} ", list.join(" ")),
    )
    .await
}

/// The facts of `patient` with one of the given primary codes on the given day: the
/// candidates for matching a new statement within tolerance.
pub async fn read_by_code_and_day(
    store: &dyn GraphStore,
    patient: &PatientId,
    keys: &[(&p360_model::Coding, chrono::NaiveDate)],
) -> Result<Vec<Fact>, GraphError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let g = iri(&vocab::patient_graph(patient));
    let pairs: Vec<String> = keys
        .iter()
        .map(|(c, d)| {
            format!(
                "({} {})",
                iri(&vocab::code(c)),
                typed(&d.to_string(), "date")
            )
        })
        .collect();
    let q = format!(
        "SELECT DISTINCT ?f WHERE {{ VALUES (?c ?d) {{ {} }} GRAPH {g} {{ ?f {} ?c ; {} ?d }} }}",
        pairs.join(" "),
        iri(&vocab::p("code")),
        iri(&vocab::p("day")),
    );
    let mut ids = Vec::new();
    for row in store.select(&q).await? {
        if let Some(Term::Iri(f)) = row.get("f")
            && let Some((_, id)) = f.rsplit_once("/fact/")
            && let Ok(id) = FactId::parse(id)
        {
            ids.push(id);
        }
    }
    read_facts(store, patient, &ids).await
}

async fn read(
    store: &dyn GraphStore,
    patient: &PatientId,
    values: String,
) -> Result<Vec<Fact>, GraphError> {
    let g = iri(&vocab::patient_graph(patient));
    let q = format!(
        "SELECT ?f ?status ?body ?src WHERE {{ {values}GRAPH {g} {{ ?f {status} ?status ; {json} ?body ; {source} ?s . ?s {json} ?src }} }} ORDER BY ?f ?s",
        status = iri(&vocab::p("status")),
        json = iri(&vocab::p("json")),
        source = iri(&vocab::p("source")),
    );
    let rows = store.select(&q).await?;
    let mut facts: BTreeMap<String, Fact> = BTreeMap::new();
    let corrupt = |what: &str| GraphError::Unavailable(format!("graph holds an unreadable {what}"));
    for row in rows {
        let (Some(Term::Iri(f)), Some(status), Some(body), Some(src)) = (
            row.get("f"),
            row.get("status"),
            row.get("body"),
            row.get("src"),
        ) else {
            return Err(corrupt("fact row"));
        };
        let provenance: Provenance =
            serde_json::from_str(src.value()).map_err(|_| corrupt("source"))?;
        if let Some(existing) = facts.get_mut(f) {
            existing.attach(provenance);
            continue;
        }
        let id = f
            .rsplit_once("/fact/")
            .map(|(_, id)| id)
            .ok_or_else(|| corrupt("fact IRI"))?;
        let fact = Fact {
            id: FactId::parse(id).map_err(|_| corrupt("fact id"))?,
            patient: patient.clone(),
            status: parse_status(status.value()).ok_or_else(|| corrupt("status"))?,
            body: serde_json::from_str(body.value()).map_err(|_| corrupt("fact body"))?,
            provenance: vec![provenance],
        };
        facts.insert(f.clone(), fact);
    }
    Ok(facts.into_values().collect())
}

/// Erases a patient's whole graph.
pub fn erase(patient: &PatientId) -> String {
    format!("DROP SILENT GRAPH {}", iri(&vocab::patient_graph(patient)))
}
