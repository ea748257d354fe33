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
    #[cfg(feature = "aws")]
    signer: Option<sigv4::Signer>,
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
            #[cfg(feature = "aws")]
            signer: None,
        }
    }

    /// Signs every request with SigV4 (Neptune with IAM database authentication).
    #[cfg(feature = "aws")]
    pub fn with_sigv4(mut self, signer: sigv4::Signer) -> Self {
        self.signer = Some(signer);
        self
    }

    async fn post(
        &self,
        url: &str,
        field: &str,
        text: &str,
        accept: &str,
    ) -> Result<String, GraphError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair(field, text)
            .finish();
        #[allow(unused_mut)]
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::ACCEPT, accept)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            );
        #[cfg(feature = "aws")]
        if let Some(signer) = &self.signer {
            let headers = [
                ("accept", accept),
                ("content-type", "application/x-www-form-urlencoded"),
            ];
            for (name, value) in signer.sign("POST", url, &headers, body.as_bytes()).await? {
                request = request.header(name, value);
            }
        }
        let resp = request
            .body(body)
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

/// SigV4 signing of SPARQL requests, for Amazon Neptune with IAM database authentication.
#[cfg(feature = "aws")]
pub mod sigv4 {
    use crate::store::GraphError;
    use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    use std::time::SystemTime;

    /// Neptune's SigV4 service name.
    pub const NEPTUNE: &str = "neptune-db";

    #[derive(Clone, Debug)]
    pub struct Signer {
        credentials: SharedCredentialsProvider,
        region: String,
        service: String,
    }

    impl Signer {
        pub fn new(credentials: SharedCredentialsProvider, region: &str, service: &str) -> Self {
            Self {
                credentials,
                region: region.to_owned(),
                service: service.to_owned(),
            }
        }

        /// The headers to add (`authorization`, `x-amz-date`, and the session token if any)
        /// for a request with these `headers` and `body`. Credentials are fetched per request
        /// from the provider, which caches and refreshes them.
        pub async fn sign(
            &self,
            method: &str,
            url: &str,
            headers: &[(&str, &str)],
            body: &[u8],
        ) -> Result<Vec<(String, String)>, GraphError> {
            let unavailable = |e: &dyn std::fmt::Display| {
                GraphError::Unavailable(format!("signing the SPARQL request: {e}"))
            };
            let creds = self
                .credentials
                .provide_credentials()
                .await
                .map_err(|e| unavailable(&e))?;
            let identity = creds.into();
            let params = v4::SigningParams::builder()
                .identity(&identity)
                .region(&self.region)
                .name(&self.service)
                .time(SystemTime::now())
                .settings(SigningSettings::default())
                .build()
                .map_err(|e| unavailable(&e))?
                .into();
            let signable = SignableRequest::new(
                method,
                url,
                headers.iter().copied(),
                SignableBody::Bytes(body),
            )
            .map_err(|e| unavailable(&e))?;
            let (instructions, _) = sign(signable, &params)
                .map_err(|e| unavailable(&e))?
                .into_parts();
            Ok(instructions
                .headers()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect())
        }
    }
}

#[cfg(all(test, feature = "aws"))]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use aws_credential_types::provider::SharedCredentialsProvider;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-request HTTP server: returns the request head it received.
    async fn capture_one(listener: tokio::net::TcpListener) -> String {
        let (mut sock, _) = listener.accept().await.expect("accept");
        let mut buf = vec![0u8; 65536];
        let mut got = Vec::new();
        loop {
            let n = sock.read(&mut buf).await.expect("read");
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        let body = r#"{"head":{},"boolean":true}"#;
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/sparql-results+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        sock.write_all(resp.as_bytes()).await.expect("write");
        String::from_utf8_lossy(&got).to_lowercase()
    }

    #[tokio::test]
    async fn neptune_requests_carry_a_sigv4_signature_for_neptune_db() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/sparql", listener.local_addr().expect("addr"));
        let server = tokio::spawn(capture_one(listener));
        let creds = Credentials::new(
            "AKIDP360TEST",
            "not-a-secret",
            Some("session-token".into()),
            None,
            "test",
        );
        let store = RemoteStore::new(&url, &url).with_sigv4(sigv4::Signer::new(
            SharedCredentialsProvider::new(creds),
            "eu-west-1",
            sigv4::NEPTUNE,
        ));
        assert!(store.ask("ASK { ?s ?p ?o }").await.expect("ask"));
        let request = server.await.expect("server");
        let auth = request
            .lines()
            .find(|l| l.starts_with("authorization:"))
            .expect("an authorization header");
        assert!(
            auth.contains("aws4-hmac-sha256 credential=akidp360test/"),
            "{auth}"
        );
        assert!(
            auth.contains("/eu-west-1/neptune-db/aws4_request"),
            "{auth}"
        );
        assert!(
            auth.contains("signedheaders=") && auth.contains("host") && auth.contains("x-amz-date"),
            "{auth}"
        );
        assert!(request.lines().any(|l| l.starts_with("x-amz-date:")));
        assert!(
            request
                .lines()
                .any(|l| l == "x-amz-security-token: session-token")
        );
        // The body sent is the body signed: the form-encoded query.
        assert!(
            request.ends_with("query=ask+%7b+%3fs+%3fp+%3fo+%7d"),
            "{request}"
        );
    }
}
