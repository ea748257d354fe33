//! A FHIR R4 REST client that pulls one member's record on demand: find the Patient by an
//! identifier, then `Patient/{id}/$everything`, following `Bundle.link[relation=next]` page by
//! page into an [`NdjsonDir`]. One page is held at a time (capped in bytes), the number of
//! pages is capped, and a server that hands back a page already read is stopped.

use crate::error::{At, FhirStoreError};
use crate::ndjson::{NdjsonDir, Written};
use reqwest::Url;
use serde_json::Value;
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::time::Duration;

const ACCEPT: &str = "application/fhir+json";

/// How a request proves who is asking.
#[derive(Clone, Default)]
pub enum Auth {
    #[default]
    None,
    /// `Authorization: Bearer <token>` (SMART backend services, a gateway's token).
    Bearer(String),
    /// AWS SigV4 (HealthLake's FHIR API: service `healthlake`).
    #[cfg(feature = "aws")]
    SigV4(crate::sigv4::Signer),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "None",
            Auth::Bearer(_) => "Bearer(…)",
            #[cfg(feature = "aws")]
            Auth::SigV4(_) => "SigV4",
        })
    }
}

#[derive(Clone, Debug)]
pub struct Limits {
    /// Pages followed per search before giving up (the record would be incomplete).
    pub max_pages: u32,
    /// Largest page body read.
    pub max_page_bytes: usize,
    /// `_count` asked for; the server may send fewer.
    pub page_size: Option<u32>,
    /// Per request.
    pub timeout: Duration,
    /// Further tries of a page after a retryable failure.
    pub retries: u32,
    /// First wait before a retry; doubled each time.
    pub backoff: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_pages: 1000,
            max_page_bytes: 64 << 20,
            // HealthLake allows at most 100.
            page_size: Some(100),
            timeout: Duration::from_secs(60),
            retries: 2,
            backoff: Duration::from_millis(500),
        }
    }
}

/// What a pull wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pulled {
    /// The Patient's id on the server.
    pub patient_id: String,
    pub pages: u32,
    pub written: Written,
}

#[derive(Clone, Debug)]
pub struct FhirClient {
    base: Url,
    http: reqwest::Client,
    auth: Auth,
    limits: Limits,
}

impl FhirClient {
    /// `base` is the FHIR service base (`https://healthlake.us-east-1.amazonaws.com/datastore/<id>/r4/`).
    pub fn new(base: &str) -> Result<Self, FhirStoreError> {
        let mut base = Url::parse(base).map_err(|_| FhirStoreError::BadBase("not a URL"))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(FhirStoreError::BadBase("not http or https"));
        }
        if base.host_str().is_none() {
            return Err(FhirStoreError::BadBase("no host"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(FhirStoreError::BadBase("has a query or fragment"));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let limits = Limits::default();
        Ok(Self {
            http: http_client(&limits),
            base,
            auth: Auth::None,
            limits,
        })
    }

    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.http = http_client(&limits);
        self.limits = limits;
        self
    }

    /// Pulls the record of the one Patient with this identifier (`system|value`) into `dir`:
    /// one `<ResourceType>.ndjson` per type, ready for `p360_enrich`'s FHIR NDJSON parser.
    pub async fn pull_member(
        &self,
        system: &str,
        value: &str,
        dir: &Path,
    ) -> Result<Pulled, FhirStoreError> {
        let patient_id = self.find_patient(system, value).await?;
        let mut out = NdjsonDir::create(dir).await?;
        let pages = self.everything(&patient_id, &[], &mut out).await?;
        Ok(Pulled {
            patient_id,
            pages,
            written: out.finish().await?,
        })
    }

    /// The id of the one Patient whose identifier is `system|value`.
    pub async fn find_patient(&self, system: &str, value: &str) -> Result<String, FhirStoreError> {
        let token = format!("{system}|{value}");
        let mut ids = Vec::new();
        let mut pager = self.pager(self.url(&["Patient"], &[("identifier", &token)])?);
        while let Some(page) = pager.next_page().await? {
            for r in page {
                if r["resourceType"] == "Patient"
                    && let Some(id) = r["id"].as_str()
                    && !ids.iter().any(|i| i == id)
                {
                    ids.push(id.to_string());
                }
            }
            // One is the answer; a second already makes it ambiguous.
            if ids.len() > 1 {
                break;
            }
        }
        match ids.len() {
            0 => Err(FhirStoreError::NoPatient),
            1 => Ok(ids.remove(0)),
            n => Err(FhirStoreError::AmbiguousPatient(n)),
        }
    }

    /// `GET [base]/<resource_type>?<params>`, every page, into `out`. Returns the pages read.
    pub async fn search(
        &self,
        resource_type: &str,
        params: &[(&str, &str)],
        out: &mut NdjsonDir,
    ) -> Result<u32, FhirStoreError> {
        if !crate::ndjson::is_resource_type(resource_type) {
            return Err(FhirStoreError::BadName("resource type"));
        }
        self.drain(self.url(&[resource_type], params)?, out).await
    }

    /// `GET [base]/Patient/<id>/$everything?<params>`, every page, into `out`.
    pub async fn everything(
        &self,
        patient_id: &str,
        params: &[(&str, &str)],
        out: &mut NdjsonDir,
    ) -> Result<u32, FhirStoreError> {
        if !is_fhir_id(patient_id) {
            return Err(FhirStoreError::BadName("Patient id"));
        }
        self.drain(
            self.url(&["Patient", patient_id, "$everything"], params)?,
            out,
        )
        .await
    }

    async fn drain(&self, first: Url, out: &mut NdjsonDir) -> Result<u32, FhirStoreError> {
        let mut pager = self.pager(first);
        while let Some(page) = pager.next_page().await? {
            out.append(page).await?;
        }
        Ok(pager.page)
    }

    fn url(&self, segments: &[&str], params: &[(&str, &str)]) -> Result<Url, FhirStoreError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| FhirStoreError::BadBase("cannot be a base"))?
            .pop_if_empty()
            .extend(segments);
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
            if let Some(n) = self.limits.page_size
                && !params.iter().any(|(k, _)| *k == "_count")
            {
                q.append_pair("_count", &n.to_string());
            }
        }
        Ok(url)
    }

    fn pager(&self, first: Url) -> Pager<'_> {
        Pager {
            client: self,
            next: Some(first),
            seen_urls: HashSet::new(),
            seen_pages: HashSet::new(),
            page: 0,
        }
    }

    /// The request's place for errors and logs: the base path as configured, then each
    /// segment that is not a type or an operation as `{id}`, and query names without values.
    fn place(&self, url: &Url, page: u32) -> At {
        let base = self.base.path();
        let (head, rest) = match url.path().strip_prefix(base) {
            Some(rest) => (base.trim_end_matches('/'), rest),
            None if url.path() == base.trim_end_matches('/') => (url.path(), ""),
            None => ("", url.path().trim_start_matches('/')),
        };
        let mut path = head.to_string();
        for (i, seg) in rest.split('/').enumerate() {
            path.push('/');
            let named = seg.starts_with('$')
                || seg.starts_with('_')
                || (i % 2 == 0 && crate::ndjson::is_resource_type(seg));
            path.push_str(if named || seg.is_empty() { seg } else { "{id}" });
        }
        let names: Vec<String> = url.query_pairs().map(|(k, _)| format!("{k}=")).collect();
        if !names.is_empty() {
            path.push('?');
            path.push_str(&names.join("&"));
        }
        At {
            method: "GET",
            path,
            page,
        }
    }

    async fn get_page(&self, url: &Url, at: &At) -> Result<Value, FhirStoreError> {
        let mut attempt = 0;
        loop {
            match self.try_get_page(url, at).await {
                Err(e) if e.is_retryable() && attempt < self.limits.retries => {
                    let wait = self.limits.backoff.saturating_mul(1 << attempt.min(6));
                    tracing::warn!(error = %e, attempt, "FHIR page failed; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn try_get_page(&self, url: &Url, at: &At) -> Result<Value, FhirStoreError> {
        let mut request = self.http.get(url.clone()).header("accept", ACCEPT);
        match &self.auth {
            Auth::None => {}
            Auth::Bearer(token) => request = request.bearer_auth(token),
            #[cfg(feature = "aws")]
            Auth::SigV4(signer) => {
                for (name, value) in signer
                    .sign("GET", url.as_str(), &[("accept", ACCEPT)], b"")
                    .await?
                {
                    request = request.header(name, value);
                }
            }
        }
        let mut resp = request.send().await.map_err(|e| transport(&e, at))?;
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            let body = read_capped(&mut resp, 64 << 10, at)
                .await
                .unwrap_or_default();
            return Err(FhirStoreError::Status {
                at: at.clone(),
                status,
                issue: issue_code(&body),
            });
        }
        let body = read_capped(&mut resp, self.limits.max_page_bytes, at).await?;
        let bad = |reason| FhirStoreError::BadResponse {
            at: at.clone(),
            reason,
        };
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) if v["resourceType"] == "Bundle" => Ok(v),
            Ok(v) if v["resourceType"] == "OperationOutcome" => {
                Err(bad("an OperationOutcome instead of a Bundle"))
            }
            Ok(_) => Err(bad("the answer is not a FHIR Bundle")),
            Err(e) if e.is_eof() => Err(bad("the JSON ends early (truncated answer)")),
            Err(_) => Err(bad("the answer is not JSON")),
        }
    }
}

fn http_client(limits: &Limits) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(limits.timeout)
        // A redirect would carry the credentials elsewhere and break a SigV4 signature: the
        // base URL is configured, so one is an error to fix, not to follow.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// Reads at most `limit` bytes of the body; more is an error, not a truncation.
async fn read_capped(
    resp: &mut reqwest::Response,
    limit: usize,
    at: &At,
) -> Result<Vec<u8>, FhirStoreError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(FhirStoreError::PageTooLarge {
            at: at.clone(),
            limit,
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport(&e, at))? {
        if body.len() + chunk.len() > limit {
            return Err(FhirStoreError::PageTooLarge {
                at: at.clone(),
                limit,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Classifies a reqwest error without its Display, which quotes the URL (search values).
fn transport(e: &reqwest::Error, at: &At) -> FhirStoreError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the connection broke while reading the answer"
    } else if e.is_builder() {
        return FhirStoreError::BadBase("the request could not be built");
    } else {
        "the request failed"
    };
    FhirStoreError::Transport {
        at: at.clone(),
        kind,
    }
}

/// `OperationOutcome.issue[0].code`, if it is shaped like a FHIR code (never free text).
fn issue_code(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let code = v["issue"][0]["code"].as_str()?;
    (code.len() <= 40 && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
        .then(|| code.to_string())
}

/// A FHIR logical id: `[A-Za-z0-9\-\.]{1,64}`.
pub fn is_fhir_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

struct Pager<'c> {
    client: &'c FhirClient,
    next: Option<Url>,
    seen_urls: HashSet<String>,
    /// A fingerprint of each page's entries: a server that ignores the page token and sends
    /// the same page under new URLs is caught here.
    seen_pages: HashSet<u64>,
    page: u32,
}

impl Pager<'_> {
    /// The resources of the next page, or `None` after the last one.
    async fn next_page(&mut self) -> Result<Option<Vec<Value>>, FhirStoreError> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        self.page += 1;
        let at = self.client.place(&url, self.page);
        if self.page > self.client.limits.max_pages {
            return Err(FhirStoreError::TooManyPages {
                at,
                limit: self.client.limits.max_pages,
            });
        }
        if !self.seen_urls.insert(url.as_str().to_string()) {
            return Err(FhirStoreError::Loop { at });
        }
        let mut bundle = self.client.get_page(&url, &at).await?;
        let mut resources = Vec::new();
        let mut fingerprint = DefaultHasher::new();
        if !bundle["entry"].is_null() && !bundle["entry"].is_array() {
            return Err(FhirStoreError::BadResponse {
                at,
                reason: "Bundle.entry is not an array",
            });
        }
        if let Value::Array(entries) = bundle["entry"].take() {
            for mut entry in entries {
                // Search outcomes (warnings about the search) are not part of the record.
                if entry["search"]["mode"] == "outcome" {
                    continue;
                }
                let resource = entry["resource"].take();
                if !resource.is_object() || resource["resourceType"] == "OperationOutcome" {
                    continue;
                }
                resource["resourceType"].as_str().hash(&mut fingerprint);
                resource["id"].as_str().hash(&mut fingerprint);
                resources.push(resource);
            }
        }
        if !resources.is_empty() && !self.seen_pages.insert(fingerprint.finish()) {
            return Err(FhirStoreError::Loop { at });
        }
        self.next = self.next_link(&bundle, &url, &at)?;
        Ok(Some(resources))
    }

    fn next_link(
        &self,
        bundle: &Value,
        current: &Url,
        at: &At,
    ) -> Result<Option<Url>, FhirStoreError> {
        let Some(href) = bundle["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["relation"] == "next")
            .and_then(|l| l["url"].as_str())
        else {
            return Ok(None);
        };
        let next = current
            .join(href)
            .map_err(|_| FhirStoreError::BadResponse {
                at: at.clone(),
                reason: "the next link is not a URL",
            })?;
        // Credentials go to the configured server only.
        let base = &self.client.base;
        if next.scheme() != base.scheme()
            || next.host_str() != base.host_str()
            || next.port_or_known_default() != base.port_or_known_default()
        {
            return Err(FhirStoreError::ForeignLink { at: at.clone() });
        }
        Ok(Some(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_name_no_ids_and_no_query_values() {
        let c = FhirClient::new("http://h:1/fhir").unwrap();
        let url = c
            .url(&["Patient"], &[("identifier", "urn:oid:1|M123")])
            .unwrap();
        assert_eq!(url.path(), "/fhir/Patient");
        assert!(url.query().unwrap().contains("M123"));
        let at = c.place(&url, 1);
        assert_eq!(at.path, "/fhir/Patient?identifier=&_count=");
        let url = c.url(&["Patient", "Smith-1", "$everything"], &[]).unwrap();
        assert_eq!(
            c.place(&url, 3).to_string(),
            "GET /fhir/Patient/{id}/$everything?_count= (page 3)"
        );
        let other = Url::parse("http://h:1/elsewhere/Abc?page=secret").unwrap();
        assert_eq!(c.place(&other, 2).path, "/{id}/{id}?page=");
        let hapi = Url::parse("http://h:1/fhir?_getpages=abc&_getpagesoffset=20").unwrap();
        assert_eq!(c.place(&hapi, 2).path, "/fhir/?_getpages=&_getpagesoffset=");
    }

    #[test]
    fn ids_are_checked() {
        assert!(is_fhir_id("a-1.B"));
        assert!(!is_fhir_id("a/b"));
        assert!(!is_fhir_id(""));
        assert!(!is_fhir_id(&"x".repeat(65)));
    }

    #[test]
    fn bad_bases_are_refused() {
        assert!(FhirClient::new("ftp://h/").is_err());
        assert!(FhirClient::new("http://h/fhir?x=1").is_err());
        assert!(FhirClient::new("not a url").is_err());
    }

    #[test]
    fn issue_codes_never_carry_text() {
        let oo = br#"{"resourceType":"OperationOutcome","issue":[{"code":"not-found","diagnostics":"no Patient M123"}]}"#;
        assert_eq!(issue_code(oo).as_deref(), Some("not-found"));
        assert_eq!(issue_code(br#"{"issue":[{"code":"Patient M123"}]}"#), None);
    }

    #[test]
    fn bearer_tokens_are_not_debug_printed() {
        let c = FhirClient::new("http://h/")
            .unwrap()
            .with_auth(Auth::Bearer("s3cret".into()));
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
