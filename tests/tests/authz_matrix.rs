//! The authorization matrix: every route the router serves, read from its source, run as every
//! kind of caller, each cell with the outcome it must have.
//!
//! For every refusal the cell checks the status, that the body is only `{"error","message"}`
//! with no record data, no counts and no hint of existence (the same body for a real and a
//! made-up id), and that the refusal left its trace: an entry in the patient's ledger when it
//! touched a patient's record, a structured line in the security log otherwise. For every
//! permitted access by someone other than the patient, a ledger entry. A route the router
//! serves without a row here fails the test.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use common::{Sandbox, file, png, sample};
use p360_identity::Role;
use p360_identity::users::{ProviderProfile, User};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Mutex;
use std::time::Duration;

// --- the security log, captured --------------------------------------------------------

/// Security events seen so far, each as its `name=value` fields.
static SECURITY_LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push_str(&format!("{}={value} ", field.name()));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == p360_api::security::TARGET {
            let mut f = Fields(String::new());
            event.record(&mut f);
            SECURITY_LOG.lock().unwrap().push(f.0);
        }
    }
}

fn security_log_len() -> usize {
    SECURITY_LOG.lock().unwrap().len()
}

fn security_log_since(n: usize) -> Vec<String> {
    SECURITY_LOG.lock().unwrap()[n..].to_vec()
}

// --- what each route is, for authorization --------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// No token needed (health, metrics, discovery, JWKS, login, the API description).
    Public,
    /// Any valid token (`/v1/me`).
    Authenticated,
    /// The record's patient only (uploads, entries, review, grants, ledger, preferences).
    OwnerOnly,
    /// Reads of the record, decided per category: documents.
    ReadDocuments,
    /// Reads of the record, decided per category: labs (the record view, Observation search).
    ReadLabs,
    /// Adding episodes: the patient, or a provider with a write grant.
    WriteEpisodes,
    /// Provider accounts only, about their own grants.
    ProviderOnly,
    /// Administrators only (break-glass review).
    AdminOnly,
    /// The patient, or an administrator (who may see who has access).
    OwnerOrAdmin,
    /// A provider opening a record in an emergency.
    BreakGlass,
    /// Payor analysts only: population dashboards (recorded under the population, not a
    /// patient).
    AnalystOnly,
    /// The record's patient only, about something the matrix's world does not have (feedback
    /// on a tip): the patient gets 404, everyone else the owner-only refusal.
    OwnerOnlyAbsent,
}

/// The matrix's row for a route. `None`: the route has no row, and the test fails.
fn kind(method: &str, path: &str) -> Option<Kind> {
    use Kind::*;
    Some(match (method, path) {
        ("get", "/health" | "/metrics" | "/openapi.json") => Public,
        ("get", "/.well-known/openid-configuration" | "/.well-known/jwks.json") => Public,
        ("post", "/auth/token") => Public,
        ("get", "/v1/me") => Authenticated,
        ("post", "/v1/patients/{patient}/documents") => OwnerOnly,
        ("get", "/v1/patients/{patient}/documents") => ReadDocuments,
        ("post", "/v1/patients/{patient}/observations") => OwnerOnly,
        ("get", "/fhir/Patient/{patient}/$everything") => ReadLabs,
        ("get", "/fhir/Observation") => ReadLabs,
        ("get", "/v1/patients/{patient}/documents/{document}") => ReadDocuments,
        ("get", "/v1/patients/{patient}/documents/{document}/content") => ReadDocuments,
        ("get", "/v1/patients/{patient}/documents/{document}/extraction") => OwnerOnly,
        ("post", "/v1/patients/{patient}/documents/{document}/extraction/{fact}") => OwnerOnly,
        ("get", "/v1/patients/{patient}/documents/{document}/pages/{page}/image") => OwnerOnly,
        ("post" | "get", "/v1/patients/{patient}/grants") => OwnerOnly,
        ("get" | "patch", "/v1/patients/{patient}/grants/{grant}") => OwnerOnly,
        ("post", "/v1/patients/{patient}/grants/{grant}/revoke") => OwnerOnly,
        ("get", "/v1/patients/{patient}/ledger") => OwnerOnly,
        ("get", "/v1/patients/{patient}/access") => OwnerOrAdmin,
        ("get" | "put", "/v1/patients/{patient}/analytics-consent") => OwnerOnly,
        ("get", "/v1/providers/me/patients") => ProviderOnly,
        ("post", "/v1/patients/{patient}/break-glass") => BreakGlass,
        ("get" | "put", "/v1/patients/{patient}/break-glass-opt-out") => OwnerOnly,
        ("get", "/v1/admin/break-glass") => AdminOnly,
        ("get", "/v1/feeds/{batch}" | "/v1/feeds/{batch}/review") => AdminOnly,
        ("post", "/v1/feeds/{batch}/review/{identity}" | "/v1/feeds/{batch}/unlink") => AdminOnly,
        ("get", "/v1/patients/{patient}/notifications") => OwnerOnly,
        ("post", "/v1/patients/{patient}/episodes") => WriteEpisodes,
        ("post", "/v1/patients/{patient}/device-readings") => OwnerOnly,
        ("post", "/v1/patients/{patient}/device-readings/apple-health") => OwnerOnly,
        ("get", "/v1/patients/{patient}/tips" | "/v1/patients/{patient}/care-gaps") => OwnerOnly,
        ("post", "/v1/patients/{patient}/tips/{tip}/feedback") => OwnerOnlyAbsent,
        ("get", "/v1/insights/dashboards" | "/v1/insights/dashboards/{id}") => AnalystOnly,
        _ => return None,
    })
}

// --- who calls ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Owner,
    OtherPatient,
    GrantCovers,
    GrantExcludes,
    GrantRevokedBetween,
    NoGrant,
    ReadOnlyGrantWrites,
    BreakGlassSession,
    GuessesOtherIds,
    PayorAnalyst,
    Admin,
    NoToken,
    ForgedToken,
    AlgNone,
    WrongAudience,
    DisabledUser,
    DeletedUser,
    GrantExpired,
    ExpiredToken,
}

/// In the order they run: the clock only moves forward, so the cases that move it come last.
const CASES: [Case; 19] = [
    Case::Owner,
    Case::OtherPatient,
    Case::GrantCovers,
    Case::GrantExcludes,
    Case::GrantRevokedBetween,
    Case::NoGrant,
    Case::ReadOnlyGrantWrites,
    Case::BreakGlassSession,
    Case::GuessesOtherIds,
    Case::PayorAnalyst,
    Case::Admin,
    Case::NoToken,
    Case::ForgedToken,
    Case::AlgNone,
    Case::WrongAudience,
    Case::DisabledUser,
    Case::DeletedUser,
    Case::GrantExpired,
    Case::ExpiredToken,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trace {
    /// An entry in the patient's ledger (and a security-log line for a refusal).
    Ledger,
    /// A security-log line only (nothing of a patient was touched).
    Log,
    /// Nothing to record (public endpoints, the patient's own reads).
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// 2xx; the labs visible (sensitive ones only to the patient).
    Allow(Trace),
    /// 200, but nothing of the category asked for (a grant of other categories).
    Filtered,
    Deny(u16, Trace),
}

fn is_provider_case(c: Case) -> bool {
    matches!(
        c,
        Case::GrantCovers
            | Case::GrantExcludes
            | Case::GrantRevokedBetween
            | Case::NoGrant
            | Case::ReadOnlyGrantWrites
            | Case::BreakGlassSession
            | Case::GuessesOtherIds
            | Case::GrantExpired
    )
}

fn expect(case: Case, kind: Kind) -> Expect {
    use Expect::*;
    use Kind::*;
    let bad_token = matches!(
        case,
        Case::NoToken
            | Case::ForgedToken
            | Case::AlgNone
            | Case::WrongAudience
            | Case::DisabledUser
            | Case::DeletedUser
            | Case::ExpiredToken
    );
    if kind == Public {
        return Allow(Trace::None);
    }
    if bad_token {
        return Deny(401, Trace::Log);
    }
    if kind == Authenticated {
        return Allow(Trace::None);
    }
    match case {
        Case::Owner => match kind {
            ProviderOnly | AdminOnly | AnalystOnly => Deny(403, Trace::Log),
            BreakGlass => Deny(403, Trace::Ledger),
            OwnerOnlyAbsent => Deny(404, Trace::None),
            _ => Allow(Trace::None),
        },
        Case::PayorAnalyst if kind == AnalystOnly => Allow(Trace::None),
        Case::OtherPatient | Case::PayorAnalyst => match kind {
            ProviderOnly | AdminOnly | AnalystOnly => Deny(403, Trace::Log),
            _ => Deny(403, Trace::Ledger),
        },
        Case::Admin => match kind {
            AdminOnly => Allow(Trace::None),
            OwnerOrAdmin => Allow(Trace::Ledger),
            ProviderOnly | AnalystOnly => Deny(403, Trace::Log),
            _ => Deny(403, Trace::Ledger),
        },
        _ if is_provider_case(case) => match kind {
            ProviderOnly => Allow(Trace::None),
            AdminOnly | AnalystOnly => Deny(403, Trace::Log),
            OwnerOnly | OwnerOrAdmin | OwnerOnlyAbsent => Deny(403, Trace::Ledger),
            BreakGlass => Allow(Trace::Ledger),
            ReadDocuments | ReadLabs | WriteEpisodes => match (case, kind) {
                (Case::GrantCovers, _) => Allow(Trace::Ledger),
                (Case::GrantExcludes, ReadLabs) => Filtered,
                (Case::ReadOnlyGrantWrites | Case::BreakGlassSession, WriteEpisodes) => {
                    Deny(403, Trace::Ledger)
                }
                (Case::ReadOnlyGrantWrites | Case::BreakGlassSession, _) => Allow(Trace::Ledger),
                _ => Deny(403, Trace::Ledger),
            },
            Public | Authenticated => Allow(Trace::None),
        },
        _ => unreachable!("every case is listed"),
    }
}

// --- the world the matrix runs in ---------------------------------------------------------

struct Ids {
    patient: String,
    document: String,
    fact: String,
    grant: String,
}

struct World {
    sb: Sandbox,
    jane: User,
    bob: User,
    jane_ids: Ids,
    bob_ids: Ids,
    providers: std::collections::HashMap<&'static str, User>,
    spare_grantee: User,
    /// Tokens by username, with the clock offset they were issued at (a moved clock may have
    /// expired them).
    tokens: Mutex<std::collections::HashMap<String, (chrono::Duration, String)>>,
}

const PASSWORD: &str = "correct horse battery";
/// A feed batch whose report and review queue the world holds.
const MATRIX_BATCH: &str = "B-matrix";
const GLUCOSE: &str = "2345-7";
const HIV: &str = "75622-1";

fn made_up(ids: &Ids) -> Ids {
    Ids {
        patient: ids.patient.clone(),
        document: "doc-00000000000000000000000000000000".into(),
        fact: "fact-00000000000000000000000000000000".into(),
        grant: "grant-00000000000000000000000000000000".into(),
    }
}

impl World {
    async fn login(&self, username: &str) -> String {
        let offset = self.sb.clock.offset();
        if let Some((at, token)) = self.tokens.lock().unwrap().get(username)
            && *at == offset
        {
            return token.clone();
        }
        let token = self.sb.login(username).await;
        self.tokens
            .lock()
            .unwrap()
            .insert(username.to_owned(), (offset, token.clone()));
        token
    }

    async fn json(&self, method: Method, path: &str, token: &str, body: Value) -> (u16, Value) {
        let r = self
            .sb
            .http
            .request(method, self.sb.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Jane grants `who` a scope; returns the grant id.
    async fn grant(&self, who: &User, scope: Value) -> String {
        let token = self.login("jane").await;
        let mut body = scope;
        body["grantee"] = json!(who.id.as_str());
        let (status, g) = self
            .json(
                Method::POST,
                &format!("/v1/patients/{}/grants", self.jane_ids.patient),
                &token,
                body,
            )
            .await;
        assert_eq!(status, 201, "{g}");
        g["id"].as_str().unwrap().to_owned()
    }

    async fn revoke(&self, grant: &str) {
        let token = self.login("jane").await;
        let (status, g) = self
            .json(
                Method::POST,
                &format!(
                    "/v1/patients/{}/grants/{grant}/revoke",
                    self.jane_ids.patient
                ),
                &token,
                json!({"version": 1}),
            )
            .await;
        assert_eq!(status, 200, "{g}");
    }

    /// The newest ledger entries of a patient (read as that patient).
    async fn ledger(&self, patient_user: &str, patient: &str) -> Vec<Value> {
        let token = self.login(patient_user).await;
        let (status, body) = self
            .json(
                Method::GET,
                &format!("/v1/patients/{patient}/ledger?limit=20"),
                &token,
                Value::Null,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["entries"].as_array().unwrap().clone()
    }
}

fn head_seq(entries: &[Value]) -> u64 {
    entries.first().and_then(|e| e["seq"].as_u64()).unwrap_or(0)
}

/// Fills a route's path and body for one request.
fn fill(path: &str, ids: &Ids, page: &str) -> String {
    let p = path
        .replace("{patient}", &ids.patient)
        .replace("{document}", &ids.document)
        .replace("{fact}", &ids.fact)
        .replace("{grant}", &ids.grant)
        .replace("{page}", page)
        .replace("{batch}", MATRIX_BATCH)
        .replace("{identity}", "0")
        .replace("{tip}", "0123456789abcdef")
        .replace("{id}", "measures");
    if p == "/fhir/Observation" {
        format!("{p}?patient={}", ids.patient)
    } else {
        p
    }
}

fn body_for(method: &str, path: &str, world: &World) -> Option<Value> {
    Some(match (method, path) {
        ("post", "/auth/token") => json!({"username": "jane", "password": PASSWORD}),
        ("post", p) if p.ends_with("/observations") => {
            json!({"code": "29463-7", "value": 80.0, "unit": "kg", "date": "2026-03-01", "category": "vital-signs"})
        }
        ("post", p) if p.ends_with("/extraction/{fact}") => json!({"action": "confirm"}),
        ("post", p) if p.ends_with("/grants") => {
            json!({"grantee": world.spare_grantee.id.as_str(), "categories": ["labs"]})
        }
        ("patch", _) => {
            json!({"version": 1, "end": (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339()})
        }
        ("post", p) if p.ends_with("/revoke") => json!({"version": 1}),
        ("post", "/v1/feeds/{batch}/review/{identity}") => json!({"decision": "accept"}),
        ("post", "/v1/feeds/{batch}/unlink") => json!({"identity": 1}),
        ("post", p) if p.ends_with("/feedback") => json!({"action": "dismiss"}),
        ("put", p) if p.ends_with("/analytics-consent") => {
            json!({"population_analytics": false, "personalized_tips": false})
        }
        ("put", p) if p.ends_with("/break-glass-opt-out") => json!({"opt_out": false}),
        ("post", p) if p.ends_with("/break-glass") => {
            json!({"reason": "unconscious patient in the emergency department"})
        }
        ("post", p) if p.ends_with("/episodes") => {
            json!({"start": "2026-03-01", "diagnoses": [{"code": "E11.9"}]})
        }
        ("post", p) if p.ends_with("/device-readings") => json!({
            "device": {"id": "matrix-watch"},
            "samples": [{"metric": "heart_rate", "start": "2026-03-01T08:00:00Z", "value": 70, "unit": "/min"}],
        }),
        _ => return None,
    })
}

async fn send(
    world: &World,
    method: &str,
    path: &str,
    ids: &Ids,
    page: &str,
    token: Option<&str>,
) -> (u16, String) {
    let url = world.sb.url(&fill(path, ids, page));
    let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut req = world.sb.http.request(m, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if method == "post" && path == "/v1/patients/{patient}/documents" {
        let seed = rand_seed();
        req = req.multipart(file(png(64, 64, seed), "page.png", "image/png"));
    } else if path.ends_with("/device-readings/apple-health") {
        req = req.header("content-type", "application/xml").body(
            r#"<HealthData><Record type="HKQuantityTypeIdentifierHeartRate" sourceName="matrix" unit="count/min" startDate="2026-03-01 08:00:00 +0000" endDate="2026-03-01 08:00:00 +0000" value="70"/></HealthData>"#,
        );
    } else if let Some(body) = body_for(method, path, world) {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

fn rand_seed() -> u8 {
    use std::sync::atomic::{AtomicU8, Ordering};
    static N: AtomicU8 = AtomicU8::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A caller: their token and user id (`None` for the token cases that name nobody).
struct Caller {
    token: Option<String>,
    user: Option<String>,
}

async fn caller_for(world: &World, case: Case, grants: &mut Vec<String>) -> Caller {
    let sb = &world.sb;
    let as_user = |u: &User| Some(u.id.to_string());
    let p = |name: &str| world.providers[name].clone();
    match case {
        Case::Owner => Caller {
            token: Some(world.login("jane").await),
            user: as_user(&world.jane),
        },
        Case::OtherPatient => Caller {
            token: Some(world.login("bob").await),
            user: as_user(&world.bob),
        },
        Case::GrantCovers | Case::GuessesOtherIds => {
            let dr = p("dr-covers");
            Caller {
                token: Some(world.login("dr-covers").await),
                user: as_user(&dr),
            }
        }
        Case::GrantExcludes => Caller {
            token: Some(world.login("dr-excludes").await),
            user: as_user(&p("dr-excludes")),
        },
        Case::GrantRevokedBetween => Caller {
            token: Some(world.login("dr-revoked").await),
            user: as_user(&p("dr-revoked")),
        },
        Case::NoGrant => Caller {
            token: Some(world.login("dr-none").await),
            user: as_user(&p("dr-none")),
        },
        Case::ReadOnlyGrantWrites => Caller {
            token: Some(world.login("dr-readonly").await),
            user: as_user(&p("dr-readonly")),
        },
        Case::BreakGlassSession => {
            let token = world.login("dr-emergency").await;
            let (status, g) = world
                .json(
                    Method::POST,
                    &format!("/v1/patients/{}/break-glass", world.jane_ids.patient),
                    &token,
                    json!({"reason": "patient arrived unconscious, allergies unknown"}),
                )
                .await;
            assert_eq!(status, 201, "{g}");
            grants.push(g["id"].as_str().unwrap().to_owned());
            Caller {
                token: Some(token),
                user: as_user(&p("dr-emergency")),
            }
        }
        Case::GrantExpired => {
            // The grant of one hour, set up at the start, ended an hour ago.
            sb.clock.advance(chrono::Duration::hours(2));
            Caller {
                token: Some(world.login("dr-expired").await),
                user: as_user(&p("dr-expired")),
            }
        }
        Case::PayorAnalyst => Caller {
            token: Some(world.login("analyst").await),
            user: None,
        },
        Case::Admin => Caller {
            token: Some(world.login("admin").await),
            user: None,
        },
        Case::NoToken => Caller {
            token: None,
            user: None,
        },
        Case::ForgedToken => {
            let rogue = p360_identity::issuer::Issuer::load_or_create(
                &sb.dir.path().join("rogue.pem"),
                sb.issuer.issuer(),
                sb.issuer.audience(),
                Duration::from_secs(600),
            )
            .unwrap();
            Caller {
                token: Some(rogue.issue(&world.jane.principal()).unwrap()),
                user: None,
            }
        }
        Case::AlgNone => {
            use base64::Engine;
            let real = world.login("jane").await;
            let payload = real.split('.').nth(1).unwrap();
            let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(br#"{"alg":"none","typ":"JWT"}"#);
            Caller {
                token: Some(format!("{header}.{payload}.")),
                user: None,
            }
        }
        Case::WrongAudience => {
            let other_app = p360_identity::issuer::Issuer::load_or_create(
                &sb.config.data_dir.join("identity/signing-key.pem"),
                sb.issuer.issuer(),
                "another-app",
                Duration::from_secs(600),
            )
            .unwrap();
            Caller {
                token: Some(other_app.issue(&world.jane.principal()).unwrap()),
                user: None,
            }
        }
        Case::DisabledUser => {
            let u = sb.user("dr-disabled", Role::Provider);
            let token = world.login("dr-disabled").await;
            sb.directory.disable(&u.id).unwrap();
            Caller {
                token: Some(token),
                user: None,
            }
        }
        Case::DeletedUser => {
            let u = sb.user("dr-deleted", Role::Provider);
            let token = world.login("dr-deleted").await;
            assert!(sb.directory.delete(&u.id).unwrap());
            Caller {
                token: Some(token),
                user: None,
            }
        }
        Case::ExpiredToken => {
            let token = world.login("jane").await;
            sb.clock.advance(chrono::Duration::seconds(
                sb.issuer.ttl().as_secs() as i64 + 120,
            ));
            Caller {
                token: Some(token),
                user: None,
            }
        }
    }
}

// --- one cell ------------------------------------------------------------------------------

/// Words that must never be in a refusal: the record's ids and codes, and counts.
fn leaks(body: &str, world: &World) -> Option<String> {
    let forbidden = [
        world.jane_ids.document.as_str(),
        world.jane_ids.fact.as_str(),
        world.bob_ids.document.as_str(),
        world.bob_ids.fact.as_str(),
        GLUCOSE,
        HIV,
        "\"total\"",
        "\"entry\"",
    ];
    forbidden
        .iter()
        .find(|w| body.contains(**w))
        .map(|w| format!("the refusal contains {w}"))
}

#[allow(clippy::too_many_arguments)]
async fn check_cell(
    world: &World,
    case: Case,
    caller: &Caller,
    method: &str,
    path: &str,
    kind: Kind,
    grants: &mut Vec<String>,
) -> Result<(), String> {
    let guessing = case == Case::GuessesOtherIds;
    let (ids, patient_user) = if guessing {
        (&world.bob_ids, "bob")
    } else {
        (&world.jane_ids, "jane")
    };
    // The patient's own grant routes act on a grant of their own making: patch and revoke
    // would otherwise change the grants the other cases stand on.
    let owned;
    let ids = if case == Case::Owner && path.contains("{grant}") {
        owned = Ids {
            patient: ids.patient.clone(),
            document: ids.document.clone(),
            fact: ids.fact.clone(),
            grant: world
                .grant(&world.spare_grantee, json!({"categories": ["labs"]}))
                .await,
        };
        &owned
    } else {
        ids
    };
    let expected = expect(case, kind);
    let token = caller.token.as_deref();
    let log_before = security_log_len();
    let ledger_before = head_seq(&world.ledger(patient_user, &ids.patient).await);

    if case == Case::GrantRevokedBetween
        && matches!(
            kind,
            Kind::ReadDocuments | Kind::ReadLabs | Kind::WriteEpisodes
        )
    {
        // Permitted before the revocation, refused on the very next request after it.
        let g = world
            .grant(
                &world.providers["dr-revoked"],
                json!({"categories": ["labs", "documents"], "write_episodes": true}),
            )
            .await;
        let (status, body) = send(world, method, path, ids, "1", token).await;
        if !(200..300).contains(&status) {
            return Err(format!("before revocation: {status} {body}"));
        }
        world.revoke(&g).await;
        grants.push(g);
    }

    let (status, body) = send(world, method, path, ids, "1", token).await;
    match expected {
        Expect::Allow(_) => {
            if !(200..300).contains(&status) {
                return Err(format!("expected 2xx, got {status} {body}"));
            }
            if kind == Kind::ReadLabs {
                if !body.contains(GLUCOSE) {
                    return Err("the granted lab result is missing".into());
                }
                let sees_sensitive = body.contains(HIV);
                if sees_sensitive != (case == Case::Owner) {
                    return Err(format!(
                        "the sensitive result is {} to this caller",
                        if sees_sensitive { "visible" } else { "hidden" }
                    ));
                }
            }
        }
        Expect::Filtered => {
            if status != 200 {
                return Err(format!("expected 200 (filtered), got {status} {body}"));
            }
            if body.contains(GLUCOSE) || body.contains(HIV) {
                return Err("a result outside the grant is visible".into());
            }
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            if v["total"] != json!(0) {
                return Err(format!("the total counts hidden results: {}", v["total"]));
            }
        }
        Expect::Deny(code, _) => {
            if status != code {
                return Err(format!("expected {code}, got {status} {body}"));
            }
            let v: Value = serde_json::from_str(&body).map_err(|_| format!("not JSON: {body}"))?;
            let keys: Vec<&String> = v
                .as_object()
                .map(|o| o.keys().collect())
                .unwrap_or_default();
            if keys != ["error", "message"] {
                return Err(format!(
                    "the refusal carries more than error and message: {body}"
                ));
            }
            if let Some(l) = leaks(&body, world) {
                return Err(l);
            }
            // The same refusal whether the ids are real or made up.
            if ["{document}", "{fact}", "{grant}"]
                .iter()
                .any(|p| path.contains(p))
            {
                let (s2, b2) = send(world, method, path, &made_up(ids), "99", token).await;
                if (s2, &b2) != (status, &body) {
                    return Err(format!(
                        "a made-up id is refused differently: {s2} {b2} vs {status} {body}"
                    ));
                }
            }
        }
    }

    // A provider with a grant for Jane, trying another patient's document under Jane's
    // record, learns nothing more than for a made-up id.
    if guessing && kind == Kind::ReadDocuments && path.contains("{document}") {
        let mixed = Ids {
            patient: world.jane_ids.patient.clone(),
            document: world.bob_ids.document.clone(),
            fact: world.bob_ids.fact.clone(),
            grant: world.jane_ids.grant.clone(),
        };
        let (s1, b1) = send(world, method, path, &mixed, "1", token).await;
        let (s2, b2) = send(world, method, path, &made_up(&world.jane_ids), "1", token).await;
        if s1 != 404 || (s1, &b1) != (s2, &b2) {
            return Err(format!(
                "another patient's document under this record: {s1} {b1} vs made-up {s2} {b2}"
            ));
        }
    }

    // The trace.
    let trace = match expected {
        Expect::Allow(t) | Expect::Deny(_, t) => t,
        Expect::Filtered => Trace::Ledger,
    };
    // A 404 for the patient's own request about something absent is no refusal.
    let denied = matches!(expected, Expect::Deny(code, _) if code != 404);
    let new_log = security_log_since(log_before);
    if denied {
        let want = if code_of(expected) == 401 {
            "event=token_refused"
        } else {
            "event=access_denied"
        };
        let found = new_log.iter().any(|l| {
            l.contains(want) && caller.user.as_ref().is_none_or(|u| l.contains(u.as_str()))
        });
        if !found {
            return Err(format!(
                "no security-log line ({want}) for the refusal: {new_log:?}"
            ));
        }
        for line in &new_log {
            for secret in [GLUCOSE, HIV, PASSWORD] {
                if line.contains(secret) {
                    return Err(format!("the security log holds record data: {line}"));
                }
            }
        }
    }
    if trace == Trace::Ledger {
        let entries = world.ledger(patient_user, &ids.patient).await;
        let outcome = if denied { "deny" } else { "permit" };
        let recorded = entries.iter().any(|e| {
            e["seq"].as_u64().unwrap_or(0) > ledger_before
                && e["outcome"] == outcome
                && caller
                    .user
                    .as_ref()
                    .is_none_or(|u| e["actor"] == u.as_str())
        });
        if !recorded {
            return Err(format!(
                "no {outcome} entry in the patient's ledger after entry {ledger_before}"
            ));
        }
    }
    Ok(())
}

fn code_of(e: Expect) -> u16 {
    match e {
        Expect::Deny(c, _) => c,
        _ => 200,
    }
}

// --- the world, set up ----------------------------------------------------------------------

async fn wait_for(sb: &Sandbox, path: &str, token: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = sb
            .http
            .get(sb.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let ok = r.status() == StatusCode::OK;
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if ok && ready(&v) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "{path}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn world() -> World {
    let sb = Sandbox::start().await;
    let (objects, _) = p360::system::build_stores(&sb.config).unwrap();
    for (name, body) in [
        ("_report.json", "{\"batch_id\":\"B-matrix\"}"),
        ("_review.ndjson", "{\"identity\":0}\n"),
        // A held identity and a linked one, neither with facts: deciding on them causes no
        // event, so the matrix's admin calls leave the graph as it is.
        (
            "_identities.ndjson",
            "{\"identity\":0,\"decision\":\"review\",\"member_id\":\"M1\",\"sources\":[],\"held_facts\":0}\n{\"identity\":1,\"decision\":\"linked\",\"member_id\":\"M1\",\"sources\":[],\"held_facts\":0}\n",
        ),
    ] {
        let key = object_store::path::Path::from(format!("feeds/{MATRIX_BATCH}/{name}"));
        object_store::ObjectStoreExt::put(&*objects, &key, body.as_bytes().to_vec().into())
            .await
            .unwrap();
    }
    let jane = sb.user("jane", Role::Patient);
    let bob = sb.user("bob", Role::Patient);
    let profile = ProviderProfile {
        npi: "1234567893".into(),
        organization: "General Hospital".into(),
    };
    let mut providers = std::collections::HashMap::new();
    for name in [
        "dr-covers",
        "dr-excludes",
        "dr-revoked",
        "dr-none",
        "dr-readonly",
        "dr-emergency",
        "dr-expired",
    ] {
        let u = sb.user(name, Role::Provider);
        sb.directory.set_provider_profile(&u.id, &profile).unwrap();
        providers.insert(name, u);
    }
    let spare_grantee = sb.user("dr-spare", Role::Provider);
    sb.user("analyst", Role::PayorAnalyst);
    sb.user("admin", Role::Admin);

    let jane_pid = jane.patient_id.clone().unwrap().to_string();
    let bob_pid = bob.patient_id.clone().unwrap().to_string();
    let jane_token = sb.login("jane").await;
    let bob_token = sb.login("bob").await;

    // Jane's record: a glucose (labs), an HIV screen (labs, sensitive), a weight (vitals) and
    // a photographed lab report, read by the extract stage.
    for (code, value, unit, category) in [
        (GLUCOSE, 95.0, "mg/dL", "laboratory"),
        (HIV, 0.1, "1", "laboratory"),
        ("29463-7", 81.5, "kg", "vital-signs"),
    ] {
        let r = sb
            .http
            .post(sb.url(&format!("/v1/patients/{jane_pid}/observations")))
            .bearer_auth(&jane_token)
            .json(&json!({"code": code, "value": value, "unit": unit, "date": "2026-03-01", "category": category}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let r = sb
        .http
        .post(sb.url(&format!("/v1/patients/{jane_pid}/documents")))
        .bearer_auth(&jane_token)
        .multipart(file(sample("doc_002.png"), "lab.png", "image/png"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let doc: Value = r.json().await.unwrap();
    let jane_doc = doc["document_id"].as_str().unwrap().to_owned();
    wait_for(
        &sb,
        &format!("/v1/patients/{jane_pid}/documents/{jane_doc}"),
        &jane_token,
        |d| matches!(d["status"].as_str(), Some("extracted" | "needs_review")),
    )
    .await;
    let extraction = wait_for(
        &sb,
        &format!("/v1/patients/{jane_pid}/documents/{jane_doc}/extraction"),
        &jane_token,
        |e| e["facts"].as_array().is_some_and(|f| !f.is_empty()),
    )
    .await;
    let jane_fact = extraction["facts"][0]["fact"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for(
        &sb,
        &format!("/fhir/Patient/{jane_pid}/$everything"),
        &jane_token,
        |b| b.to_string().contains(HIV) && b.to_string().contains(GLUCOSE),
    )
    .await;

    // Bob's record: a document and a value.
    let r = sb
        .http
        .post(sb.url(&format!("/v1/patients/{bob_pid}/documents")))
        .bearer_auth(&bob_token)
        .multipart(file(png(80, 80, 200), "bob.png", "image/png"))
        .send()
        .await
        .unwrap();
    let bob_doc = r.json::<Value>().await.unwrap()["document_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = sb
        .http
        .post(sb.url(&format!("/v1/patients/{bob_pid}/observations")))
        .bearer_auth(&bob_token)
        .json(&json!({"code": GLUCOSE, "value": 101.0, "unit": "mg/dL", "date": "2026-03-02"}))
        .send()
        .await
        .unwrap();
    let bob_fact = r.json::<Value>().await.unwrap()["fact_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut world = World {
        sb,
        jane,
        bob,
        jane_ids: Ids {
            patient: jane_pid,
            document: jane_doc,
            fact: jane_fact,
            grant: String::new(),
        },
        bob_ids: Ids {
            patient: bob_pid,
            document: bob_doc,
            fact: bob_fact,
            grant: "grant-00000000000000000000000000000000".into(),
        },
        providers,
        spare_grantee,
        tokens: Mutex::default(),
    };
    // The standing grants.
    let p = |n: &str| world.providers[n].clone();
    world.jane_ids.grant = world
        .grant(
            &p("dr-covers"),
            json!({"categories": ["labs", "documents"], "write_episodes": true}),
        )
        .await;
    world
        .grant(&p("dr-excludes"), json!({"categories": ["medications"]}))
        .await;
    world.grant(&p("dr-readonly"), json!({})).await;
    let in_an_hour =
        (p360_clock::Clock::now(&*world.sb.clock) + chrono::Duration::hours(1)).to_rfc3339();
    world
        .grant(
            &p("dr-expired"),
            json!({"categories": ["labs", "documents"], "write_episodes": true, "end": in_an_hour}),
        )
        .await;
    world
}

#[tokio::test]
async fn every_route_times_every_caller() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let _ = tracing_subscriber::registry().with(Capture).try_init();

    let world = world().await;
    let mut routes: Vec<(String, String)> = p360_e2e::declared_routes()
        .into_iter()
        .flat_map(|(path, methods)| methods.into_iter().map(move |m| (m, path.clone())))
        .collect();
    // Opening an emergency session changes what that provider may read: it goes last.
    routes.sort_by_key(|(m, p)| kind(m, p) == Some(Kind::BreakGlass));
    let missing: Vec<String> = routes
        .iter()
        .filter(|(m, p)| kind(m, p).is_none())
        .map(|(m, p)| format!("{} {p}", m.to_uppercase()))
        .collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the authorization matrix: {missing:?}"
    );
    assert!(routes.len() >= 30, "{routes:?}");

    let mut failures = Vec::new();
    let mut checks = 0usize;
    let mut grants = Vec::new();
    for case in CASES {
        let caller = caller_for(&world, case, &mut grants).await;
        for (method, path) in &routes {
            let kind = kind(method, path).unwrap();
            checks += 1;
            if let Err(why) =
                check_cell(&world, case, &caller, method, path, kind, &mut grants).await
            {
                failures.push(format!(
                    "{case:?} × {} {path}: {why}",
                    method.to_uppercase()
                ));
            }
        }
    }
    let passed = checks - failures.len();
    println!(
        "authz matrix: {} routes × {} cases = {checks} checks, {passed} passed",
        routes.len(),
        CASES.len()
    );
    println!("cases: {CASES:?}");
    println!(
        "routes: {:?}",
        routes
            .iter()
            .map(|(m, p)| format!("{} {p}", m.to_uppercase()))
            .collect::<Vec<_>>()
    );
    assert!(
        failures.is_empty(),
        "{} of {checks} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checks >= 400);
    world.sb.stop().await;
}
