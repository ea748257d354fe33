//! The conformance suite every [`GraphStore`] adapter must pass (feature `testsuite`). Each
//! check uses its own graphs under `urn:p360:test:<prefix>:…`, so a shared server is fine.

use crate::sparql::{decimal, iri, string, typed};
use crate::store::{GraphError, GraphStore, Term};

pub async fn run_all(store: &dyn GraphStore, prefix: &str) {
    insert_select_in_a_named_graph(store, prefix).await;
    inserting_twice_is_a_no_op(store, prefix).await;
    named_graphs_are_isolated(store, prefix).await;
    delete_insert_replaces_a_value(store, prefix).await;
    literals_round_trip(store, prefix).await;
    dropping_a_graph_leaves_the_others(store, prefix).await;
    invalid_sparql_is_refused_as_invalid(store).await;
    construct_returns_n_triples(store, prefix).await;
    facts_round_trip(store, prefix).await;
}

/// CONSTRUCT returns the graph as N-Triples.
pub async fn construct_returns_n_triples(store: &dyn GraphStore, prefix: &str) {
    let graph = g(prefix, "construct");
    store
        .update(&format!(
            "INSERT DATA {{ GRAPH {graph} {{ <urn:s> <urn:p> \"o\" . <urn:s> <urn:q> <urn:o> . }} }}"
        ))
        .await
        .expect("insert");
    let nt = store
        .construct(&format!(
            "CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH {graph} {{ ?s ?p ?o }} }}"
        ))
        .await
        .expect("construct");
    // Parsed, not compared as text: servers differ in whitespace.
    let triples: Vec<String> =
        oxigraph::io::RdfParser::from_format(oxigraph::io::RdfFormat::NTriples)
            .for_slice(nt.as_bytes())
            .map(|q| q.expect("valid N-Triples").to_string())
            .collect();
    assert_eq!(triples.len(), 2, "{nt}");
    assert!(
        triples.iter().any(|t| t == "<urn:s> <urn:q> <urn:o>"),
        "{triples:?}"
    );
}

fn g(prefix: &str, name: &str) -> String {
    iri(&format!("urn:p360:test:{prefix}:{name}"))
}

async fn count(store: &dyn GraphStore, graph: &str) -> usize {
    let rows = store
        .select(&format!(
            "SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH {graph} {{ ?s ?p ?o }} }}"
        ))
        .await
        .expect("count");
    rows[0]["n"].value().parse().expect("a count")
}

pub async fn insert_select_in_a_named_graph(store: &dyn GraphStore, prefix: &str) {
    let graph = g(prefix, "a");
    store
        .update(&format!(
            "INSERT DATA {{ GRAPH {graph} {{ <urn:fact:1> <urn:p:code> <http://loinc.org/rdf/4548-4> ; <urn:p:status> \"unconfirmed\" . }} }}"
        ))
        .await
        .expect("insert");
    let rows = store
        .select(&format!(
            "SELECT ?code ?status WHERE {{ GRAPH {graph} {{ <urn:fact:1> <urn:p:code> ?code ; <urn:p:status> ?status }} }}"
        ))
        .await
        .expect("select");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0]["code"],
        Term::Iri("http://loinc.org/rdf/4548-4".into())
    );
    assert_eq!(rows[0]["status"].value(), "unconfirmed");
}

pub async fn inserting_twice_is_a_no_op(store: &dyn GraphStore, prefix: &str) {
    let graph = g(prefix, "twice");
    let insert = format!(
        "INSERT DATA {{ GRAPH {graph} {{ <urn:s> <urn:p> \"o\" . <urn:s> <urn:q> 1 . }} }}"
    );
    store.update(&insert).await.expect("insert");
    store.update(&insert).await.expect("insert again");
    assert_eq!(count(store, &graph).await, 2);
}

pub async fn named_graphs_are_isolated(store: &dyn GraphStore, prefix: &str) {
    let (a, b) = (g(prefix, "iso-a"), g(prefix, "iso-b"));
    store
        .update(&format!(
            "INSERT DATA {{ GRAPH {a} {{ <urn:s> <urn:p> \"in a\" }} GRAPH {b} {{ <urn:s> <urn:p> \"in b\" }} }}"
        ))
        .await
        .expect("insert");
    let rows = store
        .select(&format!(
            "SELECT ?o WHERE {{ GRAPH {a} {{ <urn:s> <urn:p> ?o }} }}"
        ))
        .await
        .expect("select");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["o"].value(), "in a");
}

pub async fn delete_insert_replaces_a_value(store: &dyn GraphStore, prefix: &str) {
    let graph = g(prefix, "replace");
    store
        .update(&format!(
            "INSERT DATA {{ GRAPH {graph} {{ <urn:f> <urn:status> \"unconfirmed\" }} }}"
        ))
        .await
        .expect("insert");
    // Two operations in one request: applied together.
    store
        .update(&format!(
            "DELETE WHERE {{ GRAPH {graph} {{ <urn:f> <urn:status> ?s }} }} ;
             INSERT DATA {{ GRAPH {graph} {{ <urn:f> <urn:status> \"confirmed\" }} }}"
        ))
        .await
        .expect("replace");
    let rows = store
        .select(&format!(
            "SELECT ?s WHERE {{ GRAPH {graph} {{ <urn:f> <urn:status> ?s }} }}"
        ))
        .await
        .expect("select");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["s"].value(), "confirmed");
}

pub async fn literals_round_trip(store: &dyn GraphStore, prefix: &str) {
    let graph = g(prefix, "literals");
    let tricky = "He said \"ok\"\\ then\nleft\t— naïve 血糖 😀";
    store
        .update(&format!(
            "INSERT DATA {{ GRAPH {graph} {{ <urn:f> <urn:text> {} ; <urn:value> {} ; <urn:day> {} ; <urn:at> {} . }} }}",
            string(tricky),
            decimal(7.25).expect("finite"),
            typed("2026-03-17", "date"),
            typed("2026-03-17T08:15:00Z", "dateTime"),
        ))
        .await
        .expect("insert");
    let rows = store
        .select(&format!(
            "SELECT ?text ?value ?day ?at WHERE {{ GRAPH {graph} {{ <urn:f> <urn:text> ?text ; <urn:value> ?value ; <urn:day> ?day ; <urn:at> ?at }} }}"
        ))
        .await
        .expect("select");
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r["text"].value(), tricky);
    assert_eq!(r["value"].value().parse::<f64>().expect("decimal"), 7.25);
    assert!(
        matches!(&r["value"], Term::Literal { datatype: Some(d), .. } if d.ends_with("#decimal"))
    );
    assert_eq!(r["day"].value(), "2026-03-17");
    assert!(matches!(&r["day"], Term::Literal { datatype: Some(d), .. } if d.ends_with("#date")));
    assert!(r["at"].value().starts_with("2026-03-17T08:15:00"));
}

pub async fn dropping_a_graph_leaves_the_others(store: &dyn GraphStore, prefix: &str) {
    let (a, b) = (g(prefix, "drop-a"), g(prefix, "drop-b"));
    store
        .update(&format!(
            "INSERT DATA {{ GRAPH {a} {{ <urn:s> <urn:p> 1 }} GRAPH {b} {{ <urn:s> <urn:p> 2 }} }}"
        ))
        .await
        .expect("insert");
    store
        .update(&format!("DROP SILENT GRAPH {a}"))
        .await
        .expect("drop");
    assert_eq!(count(store, &a).await, 0);
    assert_eq!(count(store, &b).await, 1);
    assert!(
        store
            .ask(&format!("ASK {{ GRAPH {b} {{ <urn:s> <urn:p> ?o }} }}"))
            .await
            .expect("ask")
    );
}

pub async fn invalid_sparql_is_refused_as_invalid(store: &dyn GraphStore) {
    let err = store
        .select("SELECT ?x WHERE { this is not sparql")
        .await
        .expect_err("a syntax error is refused");
    assert!(matches!(err, GraphError::Invalid(_)), "{err}");
    let err = store
        .update("INSERT NONSENSE")
        .await
        .expect_err("a syntax error is refused");
    assert!(matches!(err, GraphError::Invalid(_)), "{err}");
}

/// Facts written through [`crate::facts::upsert`] read back equal; writing twice changes
/// nothing; a second source is attached; a status change replaces the old status.
pub async fn facts_round_trip(store: &dyn GraphStore, prefix: &str) {
    use crate::facts::{erase, read_patient, upsert};
    use p360_model::*;

    let patient = p360_events::PatientId::parse(&format!("pat-test-{prefix}")).expect("id");
    store.update(&erase(&patient)).await.expect("erase");
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-18T08:15:00Z")
        .expect("time")
        .with_timezone(&chrono::Utc);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 17).expect("day");
    let ocr = Provenance {
        document: Some(p360_events::DocumentId::parse("doc-1").expect("id")),
        page: Some(1),
        region: Some(BoundingBox {
            x: 10,
            y: 20,
            width: 300,
            height: 30,
        }),
        confidence: Some(0.91),
        ..Provenance::new(SourceKind::Ocr, "doc-1", at)
    };
    let a1c = Fact::new(
        patient.clone(),
        FactBody::Observation(Observation {
            kind: ObservationKind::Laboratory,
            code: vec![Coding::new(
                CodeSystem::Loinc,
                "4548-4",
                Some("Hemoglobin A1c \"total\""),
            )],
            value: Some(Value::Quantity {
                value: 7.2,
                unit: "%".into(),
                comparator: None,
            }),
            effective: When::Date(day),
            reference_range: Some(ReferenceRange {
                low: Some(4.0),
                high: Some(5.6),
                unit: Some("%".into()),
                text: None,
            }),
            interpretation: Some(Interpretation::High),
        }),
        Status::Unconfirmed,
        ocr.clone(),
    );
    let dx = Fact::new(
        patient.clone(),
        FactBody::Condition(Condition {
            code: vec![Coding::new(
                CodeSystem::Icd10Cm,
                "E11.9",
                Some("Type 2 diabetes mellitus without complications"),
            )],
            clinical_status: ClinicalStatus::Active,
            onset: Some(day),
            recorded: None,
        }),
        Status::Confirmed,
        ocr,
    );
    for f in [&a1c, &dx] {
        store.update(&upsert(f)).await.expect("upsert");
    }
    let graph = iri(&crate::vocab::patient_graph(&patient));
    let before = count(store, &graph).await;
    store.update(&upsert(&a1c)).await.expect("upsert again");
    assert_eq!(
        count(store, &graph).await,
        before,
        "writing a fact twice is a no-op"
    );

    let mut read = read_patient(store, &patient).await.expect("read");
    read.sort_by(|a, b| a.id.cmp(&b.id));
    let mut want = vec![a1c.clone(), dx.clone()];
    want.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(read, want);

    // The same A1c typed in by the patient: one fact, two sources, written the way the graph
    // writer writes (a DELETE of the replaced values, then the quads), with an extra triple.
    let mut merged = a1c.clone();
    merged.attach(Provenance::new(SourceKind::ManualEntry, "usr-1", at));
    merged.status = Status::Confirmed;
    let mut write = crate::facts::FactWrite::default();
    write.fact(&merged, true);
    write.triples(
        &patient,
        "<urn:p360:test:marker> <urn:p:changes> \"[]\" .\n",
    );
    write.apply(store).await.expect("attach");
    assert!(
        store
            .ask(&format!(
                "ASK {{ GRAPH {graph} {{ <urn:p360:test:marker> <urn:p:changes> \"[]\" }} }}"
            ))
            .await
            .expect("ask")
    );
    let read = read_patient(store, &patient).await.expect("read");
    let got = read.iter().find(|f| f.id == a1c.id).expect("a1c");
    assert_eq!(got.provenance.len(), 2);
    assert_eq!(got.status, Status::Confirmed);
    assert_eq!(read.len(), 2);

    // A query by code finds it without reading JSON: codes are IRIs.
    let rows = store
        .select(&format!(
            "SELECT ?f WHERE {{ GRAPH {graph} {{ ?f <{}> <http://loinc.org/rdf/4548-4> }} }}",
            crate::vocab::p("code")
        ))
        .await
        .expect("by code");
    assert_eq!(rows.len(), 1);

    // The index a reader pages on: every fact once, its type, day and latest source time.
    let index = crate::facts::index_patient(store, &patient)
        .await
        .expect("index");
    assert_eq!(index.len(), 2, "{index:?}");
    let a1c_entry = index.iter().find(|e| e.id == a1c.id).expect("a1c indexed");
    assert_eq!(a1c_entry.resource_type, "Observation");
    assert_eq!(a1c_entry.day, Some(day));
    assert_eq!(a1c_entry.last_recorded, Some(at));
    let dx_entry = index.iter().find(|e| e.id == dx.id).expect("dx indexed");
    assert_eq!(dx_entry.resource_type, "Condition");

    // Reads by id and by (code, day), as the graph writer and the lake sink do.
    let missing = FactId::parse("obs-000000000000000000000000").expect("id");
    let by_id = crate::facts::read_facts(store, &patient, &[dx.id.clone(), missing])
        .await
        .expect("by id");
    assert_eq!(by_id.len(), 1);
    assert_eq!(by_id[0].id, dx.id);
    let loinc = Coding::new(CodeSystem::Loinc, "4548-4", None);
    let found = crate::facts::read_by_code_and_day(store, &patient, &[(&loinc, day)])
        .await
        .expect("by code and day");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, a1c.id);
    let other_day = day.succ_opt().expect("day");
    assert!(
        crate::facts::read_by_code_and_day(store, &patient, &[(&loinc, other_day)])
            .await
            .expect("by code and day")
            .is_empty()
    );

    store.update(&erase(&patient)).await.expect("erase");
    assert!(
        read_patient(store, &patient)
            .await
            .expect("read")
            .is_empty()
    );
}
