//! A remote store over the SPARQL 1.1 Protocol: Amazon Neptune, Virtuoso, `oxigraph serve`,
//! Fuseki… Queries and updates are POSTed as form fields (`query=`, `update=`), results read
//! as SPARQL 1.1 Query Results JSON.

use crate::store::{GraphError, GraphStore, Solution, Term};
use async_trait::async_trait;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct RemoteStore {
    query_url: String,
    update_url: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Results {
    #[serde(default)]
    results: Option<Bindings>,
    #[serde(default)]
    boolean: Option<bool>,
}

#[derive(Deserialize)]
struct Bindings {
    bindings: Vec<BTreeMap<String, JsonTerm>>,
}

#[derive(Deserialize)]
struct JsonTerm {
    #[serde(rename = "type")]
    kind: String,
    value: String,
    #[serde(default)]
    datatype: Option<String>,
    #[serde(rename = "xml:lang", default)]
    lang: Option<String>,
}

impl From<JsonTerm> for Term {
    fn from(t: JsonTerm) -> Self {
        match t.kind.as_str() {
            "uri" => Term::Iri(t.value),
            "bnode" => Term::Blank(t.value),
            // "typed-literal" is the SPARQL 1.0 JSON spelling some servers still use.
            _ => Term::Literal {
                value: t.value,
                datatype: t
                    .datatype
                    .filter(|d| d != "http://www.w3.org/2001/XMLSchema#string"),
                lang: t.lang,
            },
        }
    }
}

impl RemoteStore {
    /// `query_url` and `update_url` may be the same endpoint (Neptune: `https://host:8182/sparql`).
    pub fn new(query_url: impl Into<String>, update_url: impl Into<String>) -> Self {
        Self {
            query_url: query_url.into(),
            update_url: update_url.into(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap_or_default(),
        }
    }

    async fn post(
        &self,
        url: &str,
        field: &str,
        text: &str,
        accept: &str,
    ) -> Result<String, GraphError> {
        let resp = self
            .http
            .post(url)
            .header(reqwest::header::ACCEPT, accept)
            .form(&[(field, text)])
            .send()
            .await
            .map_err(|e| GraphError::Unavailable(format!("sparql endpoint: {e}")))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| GraphError::Unavailable(format!("sparql endpoint: {e}")))?;
        if status.is_success() {
            Ok(body)
        } else if status.is_client_error() {
            // Servers echo the offending query in their message; keep only the first line,
            // cut short, since our literals carry patient data.
            let first = body
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(160)
                .collect::<String>();
            Err(GraphError::Invalid(format!("HTTP {status}: {first}")))
        } else {
            Err(GraphError::Unavailable(format!("HTTP {status}")))
        }
    }

    async fn query(&self, query: &str) -> Result<Results, GraphError> {
        let body = self
            .post(
                &self.query_url,
                "query",
                query,
                "application/sparql-results+json",
            )
            .await?;
        serde_json::from_str(&body)
            .map_err(|e| GraphError::Unavailable(format!("unreadable SPARQL results: {e}")))
    }
}

#[async_trait]
impl GraphStore for RemoteStore {
    async fn update(&self, update: &str) -> Result<(), GraphError> {
        self.post(&self.update_url, "update", update, "*/*")
            .await
            .map(|_| ())
    }

    async fn select(&self, query: &str) -> Result<Vec<Solution>, GraphError> {
        let results = self.query(query).await?;
        let bindings = results
            .results
            .ok_or_else(|| GraphError::Invalid("not a SELECT query".into()))?;
        Ok(bindings
            .bindings
            .into_iter()
            .map(|b| b.into_iter().map(|(k, v)| (k, v.into())).collect())
            .collect())
    }

    async fn ask(&self, query: &str) -> Result<bool, GraphError> {
        self.query(query)
            .await?
            .boolean
            .ok_or_else(|| GraphError::Invalid("not an ASK query".into()))
    }

    async fn construct(&self, query: &str) -> Result<String, GraphError> {
        self.post(&self.query_url, "query", query, "application/n-triples")
            .await
    }
}
