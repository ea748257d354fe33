//! SigV4 request signing with the `aws-sigv4` crate, for HealthLake's FHIR REST API (service
//! `healthlake`). Credentials come from a provider (the AWS default chain in production),
//! asked per request: the provider caches and refreshes them.

use crate::error::FhirStoreError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use std::time::SystemTime;

/// HealthLake's SigV4 service name.
pub const HEALTHLAKE: &str = "healthlake";

#[derive(Clone)]
pub struct Signer {
    credentials: SharedCredentialsProvider,
    region: String,
    service: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("region", &self.region)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn new(credentials: SharedCredentialsProvider, region: &str, service: &str) -> Self {
        Self {
            credentials,
            region: region.to_owned(),
            service: service.to_owned(),
        }
    }

    /// The AWS default credential chain and region (environment, profile, IMDS, ECS…).
    pub fn from_conf(conf: &aws_config::SdkConfig, service: &str) -> Result<Self, FhirStoreError> {
        let credentials = conf
            .credentials_provider()
            .ok_or_else(|| FhirStoreError::Sign("no AWS credentials provider".into()))?;
        let region = conf
            .region()
            .ok_or_else(|| FhirStoreError::Sign("no AWS region configured".into()))?;
        Ok(Self::new(credentials, region.as_ref(), service))
    }

    /// The headers to add (`authorization`, `x-amz-date`, the session token if any) to a
    /// request with these `headers` and `body`.
    pub async fn sign(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Vec<(String, String)>, FhirStoreError> {
        let fail = |e: &dyn std::fmt::Display| FhirStoreError::Sign(e.to_string());
        let identity = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| fail(&e))?
            .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| fail(&e))?
            .into();
        let signable = SignableRequest::new(
            method,
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        // Not the error's text: it may quote the URL, and the URL carries search values.
        .map_err(|_| FhirStoreError::Sign("the request cannot be signed".into()))?;
        let (instructions, _) = sign(signable, &params).map_err(|e| fail(&e))?.into_parts();
        Ok(instructions
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }
}
