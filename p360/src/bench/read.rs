//! `p360 bench read`: `GET /fhir/Patient/{id}/$everything` for a patient with a large record
//! (default 5,000 facts), read in full (following `next` links, `_count=1000`) over HTTP, at 1
//! and at 32 concurrent clients, twice: with the patient's own token (the owner path) and
//! with a provider's under the patient's grant (the decision point on every page, categories
//! from the fact index, and a ledger entry appended per page before it is sent). Reference,
//! same run and same store: the raw SPARQL CONSTRUCT of the patient's graph through the same
//! GraphStore, at the same concurrency. Provider / owner is the cost of consent; owner /
//! CONSTRUCT is the rest of the read path (decoding facts, FHIR mapping, JSON, HTTP,
//! authentication).

use super::{Measured, measured};
use crate::{Config, System};
use anyhow::Context;
use chrono::{NaiveDate, Utc};
use p360_identity::Role;
use p360_identity::users::NewUser;
use p360_model::{
    ClinicalStatus, CodeSystem, Coding, Condition, Fact, FactBody, Medication, MedicationStatus,
    Observation, ObservationKind, Provenance, SourceKind, Status, Value, When,
};
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct ReadBench {
    pub facts: usize,
    /// Full reads per client.
    pub rounds: usize,
    pub concurrency: Vec<usize>,
}

#[derive(Debug)]
pub struct ReadRow {
    pub clients: usize,
    /// As the patient.
    pub everything: Measured,
    /// As a provider under a grant.
    pub granted: Measured,
    pub construct: Measured,
}

fn fact(patient: &p360_events::PatientId, i: usize) -> Fact {
    let day = NaiveDate::from_ymd_opt(2015, 1, 1).unwrap_or_default()
        + chrono::Days::new((i / 10) as u64);
    let source = Provenance {
        confidence: Some(0.9),
        ..Provenance::new(
            SourceKind::PayorFeed,
            format!("claim-{}", i / 3),
            Utc::now(),
        )
    };
    let body = match i % 10 {
        0 => FactBody::Condition(Condition {
            code: vec![Coding::new(
                CodeSystem::Icd10Cm,
                format!("E11.{}", i % 10),
                None,
            )],
            clinical_status: ClinicalStatus::Active,
            onset: Some(day),
            recorded: None,
        }),
        1 => FactBody::Medication(Medication {
            code: vec![Coding::new(CodeSystem::RxNorm, "860975", None)],
            text: "Metformin 500 mg tablet".into(),
            strength: Some("500 mg".into()),
            form: None,
            dosage: Some("1 tab PO BID".into()),
            status: MedicationStatus::Active,
            effective: Some(When::Date(day)),
        }),
        _ => FactBody::Observation(Observation {
            kind: ObservationKind::Laboratory,
            code: vec![Coding::new(CodeSystem::Loinc, "2345-7", Some("Glucose"))],
            value: Some(Value::Quantity {
                value: 80.0 + (i % 50) as f64,
                unit: "mg/dL".into(),
                comparator: None,
            }),
            effective: When::Date(day),
            reference_range: None,
            interpretation: None,
        }),
    };
    Fact::new(patient.clone(), body, Status::Confirmed, source)
}

/// Runs `rounds` operations on each of `clients` tasks; per-operation latency.
async fn drive<F, Fut>(clients: usize, rounds: usize, op: F) -> anyhow::Result<Measured>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(rounds);
            for _ in 0..rounds {
                let t = Instant::now();
                op().await?;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(measured(all.len(), start.elapsed(), all))
}

/// The whole record read `rounds` times by each of `clients` clients with `token`, following
/// `next` links.
async fn read_all(
    http: &reqwest::Client,
    first: &str,
    token: &str,
    base: &str,
    clients: usize,
    rounds: usize,
) -> anyhow::Result<Measured> {
    let (http, first, token, base) = (
        http.clone(),
        first.to_owned(),
        token.to_owned(),
        base.to_owned(),
    );
    drive(clients, rounds, move || {
        let (http, first, token, base) = (http.clone(), first.clone(), token.clone(), base.clone());
        async move {
            let mut url = Some(first);
            let mut seen = 0usize;
            while let Some(u) = url.take() {
                let resp = http.get(&u).bearer_auth(&token).send().await?;
                anyhow::ensure!(resp.status().is_success(), "HTTP {}", resp.status());
                let body: serde_json::Value = resp.json().await?;
                seen += body["entry"].as_array().map_or(0, Vec::len);
                url = body["link"]
                    .as_array()
                    .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
                    .and_then(|l| l["url"].as_str())
                    .map(|next| {
                        if next.starts_with("http") {
                            next.to_owned()
                        } else {
                            format!("{base}{next}")
                        }
                    });
            }
            anyhow::ensure!(seen > 0, "empty record");
            Ok(())
        }
    })
    .await
}

pub async fn run(cfg: &ReadBench, dir: &std::path::Path) -> anyhow::Result<(usize, Vec<ReadRow>)> {
    // The configuration in effect (p360.toml, P360__… variables), in a scratch data directory.
    let mut config = Config::load(None)?;
    config.data_dir = dir.join("data");
    config.drop_folder.enabled = false;
    let system = System::build(config).await?;
    let directory = system.directory.clone().context("built-in identity")?;
    let issuer = system.issuer.clone().context("built-in identity")?;
    let user = directory.add(NewUser {
        username: "bench-patient",
        password: "bench-password-not-secret",
        role: Role::Patient,
        patient_id: None,
    })?;
    let patient = user.patient_id.clone().context("a patient id")?;
    let token = issuer.issue(&user.principal())?;
    let provider = directory.add(NewUser {
        username: "bench-provider",
        password: "bench-password-not-secret",
        role: Role::Provider,
        patient_id: None,
    })?;
    let now = Utc::now();
    system
        .state
        .consent
        .store()
        .create(&p360_consent::Grant {
            id: "grant-bench".into(),
            patient: patient.clone(),
            grantee: provider.id.clone(),
            scope: p360_consent::Scope::read_all(),
            purpose: p360_consent::Purpose::Treatment,
            start: now,
            end: now + chrono::Duration::days(90),
            created_at: now,
            revoked_at: None,
            break_glass: false,
            reason: None,
            version: 1,
        })
        .await?;
    let provider_token = issuer.issue(&provider.principal())?;

    // The record, written as the graph writer writes it, a few hundred facts per update.
    let facts: Vec<Fact> = (0..cfg.facts).map(|i| fact(&patient, i)).collect();
    for chunk in facts.chunks(250) {
        let mut update = String::new();
        for f in chunk {
            update.push_str(&p360_graph::facts::upsert(f));
            update.push_str(" ;\n");
        }
        update.push_str("INSERT DATA { }");
        system.graph.update(&update).await?;
    }
    let stored = p360_graph::facts::read_patient(&*system.graph, &patient)
        .await?
        .len();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let app = p360_api::router(system.state.clone());
    let server = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        })
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let base = format!("http://{addr}");
    let first = format!("{base}/fhir/Patient/{patient}/$everything?_count=1000");
    let construct = format!(
        "CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{}> {{ ?s ?p ?o }} }}",
        p360_graph::vocab::patient_graph(&patient)
    );

    let mut rows = Vec::new();
    for &clients in &cfg.concurrency {
        let everything = read_all(&http, &first, &token, &base, clients, cfg.rounds).await?;
        let granted = read_all(&http, &first, &provider_token, &base, clients, cfg.rounds).await?;
        let construct = {
            let (graph, q) = (system.graph.clone(), construct.clone());
            drive(clients, cfg.rounds, move || {
                let (graph, q) = (graph.clone(), q.clone());
                async move {
                    let nt = graph.construct(&q).await?;
                    anyhow::ensure!(!nt.is_empty(), "empty graph");
                    Ok(())
                }
            })
            .await?
        };
        rows.push(ReadRow {
            clients,
            everything,
            granted,
            construct,
        });
    }
    shutdown.cancel();
    server.await??;
    Ok((stored, rows))
}
