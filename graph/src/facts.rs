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

/// The FHIR resource type of a fact class (the inverse of [`class`]).
fn resource_type_of_class(class: &str) -> Option<&'static str> {
    Some(match class {
        "Observation" => "Observation",
        "Condition" => "Condition",
        "Medication" => "MedicationStatement",
        "Procedure" => "Procedure",
        "Allergy" => "AllergyIntolerance",
        "Immunization" => "Immunization",
        "Encounter" => "Encounter",
        "Document" => "DocumentReference",
        _ => return None,
    })
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
    let mut w = FactWrite::default();
    w.fact(fact, true);
    w.to_update()
}

/// Several facts (of any patients) and extra triples written in one SPARQL update of two
/// operations, whatever their number: one DELETE of the replaced values of facts that existed,
/// one INSERT DATA of everything. Batching matters: a commit costs milliseconds, a triple
/// microseconds.
#[derive(Debug, Default)]
pub struct FactWrite {
    /// `(<graph> <fact>)` pairs whose status and content are replaced.
    replaced: Vec<String>,
    /// `(<graph> <source node>)` pairs removed with the link to them.
    dropped_sources: Vec<String>,
    /// `(<graph> <fact>)` pairs removed with all their sources.
    dropped_facts: Vec<String>,
    /// Triples per graph IRI.
    insert: BTreeMap<String, String>,
}

impl FactWrite {
    /// Adds `fact`; `existed` says whether the graph may already hold it (then its status and
    /// content are replaced; a new fact needs no delete).
    pub fn fact(&mut self, fact: &Fact, existed: bool) {
        let g = vocab::patient_graph(&fact.patient);
        if existed {
            self.replaced.push(format!(
                "({} {})",
                iri(&g),
                iri(&vocab::fact(&fact.patient, &fact.id))
            ));
        }
        let out = self.insert.entry(g).or_default();
        fact_triples(out, fact);
    }

    /// Removes one source of a fact that stays (an undone link): its node and the link to it.
    pub fn drop_source(&mut self, fact: &Fact, p: &Provenance) {
        self.dropped_sources.push(format!(
            "({} {})",
            iri(&vocab::patient_graph(&fact.patient)),
            iri(&vocab::source(&fact.patient, &fact.id, &p.source_key()))
        ));
    }

    /// Removes a fact and every source of it.
    pub fn drop_fact(&mut self, patient: &PatientId, id: &FactId) {
        self.dropped_facts.push(format!(
            "({} {})",
            iri(&vocab::patient_graph(patient)),
            iri(&vocab::fact(patient, id))
        ));
    }

    /// Adds triples (Turtle-like, each ending in ` .`) to a patient's graph.
    pub fn triples(&mut self, patient: &PatientId, triples: &str) {
        self.insert
            .entry(vocab::patient_graph(patient))
            .or_default()
            .push_str(triples);
    }

    pub fn is_empty(&self) -> bool {
        self.insert.is_empty() && self.dropped_sources.is_empty() && self.dropped_facts.is_empty()
    }

    /// The DELETEs, if any: the replaced values of facts that existed, the dropped sources,
    /// the dropped facts (their sources first, while the links to them still exist).
    pub fn delete(&self) -> Option<String> {
        let source = iri(&vocab::p("source"));
        let mut ops = Vec::new();
        if !self.replaced.is_empty() {
            ops.push(format!(
                "DELETE {{ GRAPH ?g {{ ?f {status} ?s . ?f {json} ?j }} }} WHERE {{ VALUES (?g ?f) {{ {} }} GRAPH ?g {{ ?f {status} ?s ; {json} ?j }} }}",
                self.replaced.join(" "),
                status = iri(&vocab::p("status")),
                json = iri(&vocab::p("json")),
            ));
        }
        if !self.dropped_sources.is_empty() {
            ops.push(format!(
                "DELETE {{ GRAPH ?g {{ ?f {source} ?n . ?n ?p ?o }} }} WHERE {{ VALUES (?g ?n) {{ {} }} GRAPH ?g {{ ?f {source} ?n . ?n ?p ?o }} }}",
                self.dropped_sources.join(" "),
            ));
        }
        if !self.dropped_facts.is_empty() {
            let pairs = self.dropped_facts.join(" ");
            ops.push(format!(
                "DELETE {{ GRAPH ?g {{ ?n ?p ?o }} }} WHERE {{ VALUES (?g ?f) {{ {pairs} }} GRAPH ?g {{ ?f {source} ?n . ?n ?p ?o }} }}"
            ));
            ops.push(format!(
                "DELETE {{ GRAPH ?g {{ ?f ?p ?o }} }} WHERE {{ VALUES (?g ?f) {{ {pairs} }} GRAPH ?g {{ ?f ?p ?o }} }}"
            ));
        }
        (!ops.is_empty()).then(|| ops.join(" ;\n"))
    }

    /// The quads to insert as `GRAPH <g> { … }` blocks (SPARQL quad data and TriG alike).
    pub fn quads(&self) -> String {
        let mut out = String::new();
        for (g, triples) in &self.insert {
            let _ = write!(out, "GRAPH {} {{\n{triples}}}\n", iri(g));
        }
        out
    }

    /// The whole write as one SPARQL update.
    pub fn to_update(&self) -> String {
        let mut out = String::new();
        if let Some(d) = self.delete() {
            out.push_str(&d);
            out.push_str(" ;\n");
        }
        out.push_str("INSERT DATA {\n");
        out.push_str(&self.quads());
        out.push('}');
        out
    }

    /// Applies the write through [`GraphStore::write`].
    pub async fn apply(&self, store: &dyn GraphStore) -> Result<(), GraphError> {
        store.write(self.delete().as_deref(), &self.quads()).await
    }
}

fn fact_triples(triples: &mut String, fact: &Fact) {
    let g = iri(&vocab::patient_graph(&fact.patient));
    let f = iri(&vocab::fact(&fact.patient, &fact.id));
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
        source_triples(triples, fact, p);
    }
}

/// The ids of `patient`'s facts supported by any of the named sources (provenance source ids).
pub async fn with_sources(
    store: &dyn GraphStore,
    patient: &PatientId,
    source_ids: &[String],
) -> Result<Vec<FactId>, GraphError> {
    let mut out = std::collections::BTreeSet::new();
    for chunk in source_ids.chunks(200) {
        let values: Vec<String> = chunk.iter().map(|s| string(s)).collect();
        let rows = store
            .select(&format!(
                "SELECT DISTINCT ?f WHERE {{ VALUES ?id {{ {} }} GRAPH {} {{ ?f {} ?n . ?n {} ?id }} }}",
                values.join(" "),
                iri(&vocab::patient_graph(patient)),
                iri(&vocab::p("source")),
                iri(&vocab::p("sourceId")),
            ))
            .await?;
        for row in rows {
            if let Some(Term::Iri(f)) = row.get("f")
                && let Some((_, id)) = vocab::parse_fact(f)
            {
                out.insert(id);
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// Every fact of `patient`, with all its sources, ordered by id.
pub async fn read_patient(
    store: &dyn GraphStore,
    patient: &PatientId,
) -> Result<Vec<Fact>, GraphError> {
    read(store, String::new(), &iri(&vocab::patient_graph(patient))).await
}

/// The named facts of `patient` that exist, ordered by id.
pub async fn read_facts(
    store: &dyn GraphStore,
    patient: &PatientId,
    ids: &[FactId],
) -> Result<Vec<Fact>, GraphError> {
    let keys: Vec<(PatientId, FactId)> = ids.iter().map(|i| (patient.clone(), i.clone())).collect();
    read_many(store, &keys).await
}

/// The named facts, of any patients, that exist: one query.
pub async fn read_many(
    store: &dyn GraphStore,
    keys: &[(PatientId, FactId)],
) -> Result<Vec<Fact>, GraphError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let pairs: Vec<String> = keys
        .iter()
        .map(|(p, id)| {
            format!(
                "({} {})",
                iri(&vocab::patient_graph(p)),
                iri(&vocab::fact(p, id))
            )
        })
        .collect();
    read(
        store,
        format!("VALUES (?g ?f) {{ {} }} ", pairs.join(" ")),
        "?g",
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
    let keys: Vec<_> = keys.iter().map(|(c, d)| (patient, *c, *d)).collect();
    read_by_code_and_day_many(store, &keys).await
}

/// [`read_by_code_and_day`] for several patients at once: two queries.
pub async fn read_by_code_and_day_many(
    store: &dyn GraphStore,
    keys: &[(&PatientId, &p360_model::Coding, chrono::NaiveDate)],
) -> Result<Vec<Fact>, GraphError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let triples: Vec<String> = keys
        .iter()
        .map(|(p, c, d)| {
            format!(
                "({} {} {})",
                iri(&vocab::patient_graph(p)),
                iri(&vocab::code(c)),
                typed(&d.to_string(), "date")
            )
        })
        .collect();
    let q = format!(
        "SELECT DISTINCT ?f WHERE {{ VALUES (?g ?c ?d) {{ {} }} GRAPH ?g {{ ?f {} ?c ; {} ?d }} }}",
        triples.join(" "),
        iri(&vocab::p("code")),
        iri(&vocab::p("day")),
    );
    let mut found = Vec::new();
    for row in store.select(&q).await? {
        if let Some(Term::Iri(f)) = row.get("f")
            && let Some(key) = vocab::parse_fact(f)
        {
            found.push(key);
        }
    }
    read_many(store, &found).await
}

/// Facts matching `values` (a VALUES clause binding `?f`, and `?g` when `graph` is `?g`).
async fn read(
    store: &dyn GraphStore,
    values: String,
    graph: &str,
) -> Result<Vec<Fact>, GraphError> {
    let q = format!(
        "SELECT ?f ?status ?body ?src WHERE {{ {values}GRAPH {graph} {{ ?f {status} ?status ; {json} ?body ; {source} ?s . ?s {json} ?src }} }} ORDER BY ?f ?s",
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
        let (patient, id) = vocab::parse_fact(f).ok_or_else(|| corrupt("fact IRI"))?;
        let fact = Fact {
            id,
            patient,
            status: parse_status(status.value()).ok_or_else(|| corrupt("status"))?,
            body: serde_json::from_str(body.value()).map_err(|_| corrupt("fact body"))?,
            provenance: vec![provenance],
        };
        facts.insert(f.clone(), fact);
    }
    Ok(facts.into_values().collect())
}

/// What a reader filters and pages by, without the facts' content.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexEntry {
    pub id: FactId,
    /// FHIR resource type, e.g. `MedicationStatement`.
    pub resource_type: &'static str,
    pub day: Option<chrono::NaiveDate>,
    /// When the latest source of the fact was recorded.
    pub last_recorded: Option<chrono::DateTime<chrono::Utc>>,
    /// The category consent decides on (only when asked for: it needs the fact's body).
    pub category: Option<p360_model::Category>,
}

/// Every fact of `patient` as an [`IndexEntry`], ordered by id (the order of
/// [`read_patient`]): a reader filters and pages on this, then reads only the page's facts.
pub async fn index_patient(
    store: &dyn GraphStore,
    patient: &PatientId,
) -> Result<Vec<IndexEntry>, GraphError> {
    index_patient_with(store, patient, false).await
}

/// [`index_patient`], with each fact's consent category when `categories` is set. The
/// category is computed from the stored body with today's sensitivity tables, never stored:
/// a code added to a sensitive list applies to facts written before it.
pub async fn index_patient_with(
    store: &dyn GraphStore,
    patient: &PatientId,
    categories: bool,
) -> Result<Vec<IndexEntry>, GraphError> {
    let (body_var, body_pattern) = if categories {
        (
            " (SAMPLE(?b) AS ?body)",
            format!(" ; {} ?b", iri(&vocab::p("json"))),
        )
    } else {
        ("", String::new())
    };
    let q = format!(
        "SELECT ?f ?class ?day (MAX(?rec) AS ?last){body_var} WHERE {{ GRAPH {g} {{ ?f a ?class ; {status} ?st{body_pattern} ; {source} ?s . ?s {recorded} ?rec . OPTIONAL {{ ?f {day} ?day }} }} }} GROUP BY ?f ?class ?day ORDER BY ?f",
        g = iri(&vocab::patient_graph(patient)),
        status = iri(&vocab::p("status")),
        source = iri(&vocab::p("source")),
        recorded = iri(&vocab::p("recorded")),
        day = iri(&vocab::p("day")),
    );
    let corrupt = |what: &str| GraphError::Unavailable(format!("graph holds an unreadable {what}"));
    let mut out = Vec::new();
    for row in store.select(&q).await? {
        let (Some(Term::Iri(f)), Some(Term::Iri(class))) = (row.get("f"), row.get("class")) else {
            return Err(corrupt("index row"));
        };
        let Some(resource_type) = class
            .strip_prefix(vocab::NS)
            .and_then(resource_type_of_class)
        else {
            continue; // not a fact class (e.g. a source node typed on its own)
        };
        let (_, id) = vocab::parse_fact(f).ok_or_else(|| corrupt("fact IRI"))?;
        let day = match row.get("day") {
            Some(d) => Some(d.value().parse().map_err(|_| corrupt("day"))?),
            None => None,
        };
        let last_recorded = match row.get("last") {
            Some(t) => Some(
                chrono::DateTime::parse_from_rfc3339(t.value())
                    .map_err(|_| corrupt("recorded time"))?
                    .with_timezone(&chrono::Utc),
            ),
            None => None,
        };
        let category = match (categories, row.get("body")) {
            (false, _) => None,
            (true, Some(b)) => Some(
                serde_json::from_str::<p360_model::FactBody>(b.value())
                    .map_err(|_| corrupt("fact body"))?
                    .consent_category(),
            ),
            (true, None) => return Err(corrupt("index row without a body")),
        };
        out.push(IndexEntry {
            id,
            resource_type,
            day,
            last_recorded,
            category,
        });
    }
    Ok(out)
}

/// Erases a patient's whole graph.
pub fn erase(patient: &PatientId) -> String {
    format!("DROP SILENT GRAPH {}", iri(&vocab::patient_graph(patient)))
}
