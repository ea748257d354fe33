//! The HealthLake export adapter: `StartFHIRExportJob` to an S3 prefix, `DescribeFHIRExportJob`
//! until the job ends (backing off, within a deadline), then the job's NDJSON parts from S3
//! gathered by [`crate::export::collect`] into one file per resource type, the folder the
//! bulk NDJSON feed parser reads. An export is of the whole data store, for batch feeds; one
//! member on demand is [`crate::FhirClient`] over HealthLake's FHIR API with SigV4.

use crate::error::FhirStoreError;
use crate::export::{Collected, collect};
use aws_sdk_healthlake::Client;
use aws_sdk_healthlake::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_healthlake::types::{JobStatus, OutputDataConfig, S3Configuration};
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use std::path::Path;
use std::time::Duration;

/// What to export, and where HealthLake writes it.
#[derive(Clone, Debug)]
pub struct ExportRequest {
    pub datastore_id: String,
    /// `s3://bucket/prefix/`.
    pub output_s3_uri: String,
    /// The KMS key HealthLake encrypts the output with.
    pub kms_key_id: String,
    /// The role HealthLake assumes to write the bucket.
    pub data_access_role_arn: String,
    pub job_name: Option<String>,
    /// Makes a repeated start (after a lost answer) the same job.
    pub client_token: Option<String>,
}

/// How long to wait for the job and how often to ask.
#[derive(Clone, Debug)]
pub struct Polling {
    pub timeout: Duration,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        // Exports of a large data store take hours; a small one, minutes.
        Self {
            timeout: Duration::from_secs(6 * 3600),
            first_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exported {
    pub job_id: String,
    /// `COMPLETED_WITH_ERRORS`: some resources were not exported (HealthLake's message says
    /// why); the folder holds the rest.
    pub with_errors: Option<String>,
    pub collected: Collected,
}

/// `s3://bucket/some/prefix/` → (`bucket`, `some/prefix`).
pub fn parse_s3_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.trim_matches('/').to_string()))
}

/// Where a job's output lands under the request's prefix.
pub fn job_folder(prefix: &str, datastore_id: &str, job_id: &str) -> ObjectPath {
    let folder = format!("{datastore_id}-FHIR_EXPORT-{job_id}");
    if prefix.is_empty() {
        ObjectPath::from(folder)
    } else {
        ObjectPath::from(format!("{prefix}/{folder}"))
    }
}

fn call_error<E, R>(operation: &'static str, e: SdkError<E, R>) -> FhirStoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let (kind, retryable) = match &e {
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("unknown error").to_string();
            let retryable = matches!(
                code.as_str(),
                "ThrottlingException" | "InternalServerException" | "ServiceUnavailableException"
            );
            let kind = match s.err().message() {
                Some(m) => format!("{code}: {m}"),
                None => code,
            };
            (kind, retryable)
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            (DisplayErrorContext(&e).to_string(), true)
        }
        _ => (DisplayErrorContext(&e).to_string(), false),
    };
    FhirStoreError::HealthLake {
        operation,
        kind,
        retryable,
    }
}

#[derive(Clone, Debug)]
pub struct HealthLakeExport {
    client: Client,
    polling: Polling,
}

impl HealthLakeExport {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            polling: Polling::default(),
        }
    }

    pub fn from_conf(conf: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(conf))
    }

    pub fn with_polling(mut self, polling: Polling) -> Self {
        self.polling = polling;
        self
    }

    /// Starts the job; returns its id.
    pub async fn start(&self, req: &ExportRequest) -> Result<String, FhirStoreError> {
        let s3 = S3Configuration::builder()
            .s3_uri(&req.output_s3_uri)
            .kms_key_id(&req.kms_key_id)
            .build()
            .map_err(|e| FhirStoreError::HealthLake {
                operation: "StartFHIRExportJob",
                kind: e.to_string(),
                retryable: false,
            })?;
        let out = self
            .client
            .start_fhir_export_job()
            .datastore_id(&req.datastore_id)
            .output_data_config(OutputDataConfig::S3Configuration(s3))
            .data_access_role_arn(&req.data_access_role_arn)
            .set_job_name(req.job_name.clone())
            .set_client_token(req.client_token.clone())
            .send()
            .await
            .map_err(|e| call_error("StartFHIRExportJob", e))?;
        Ok(out.job_id().to_string())
    }

    /// Waits for the job to end. `Ok(None)`: completed; `Ok(Some(message))`: completed with
    /// errors. A failed or cancelled job, or one still running at the deadline, is an error.
    pub async fn wait(
        &self,
        datastore_id: &str,
        job_id: &str,
    ) -> Result<Option<String>, FhirStoreError> {
        let deadline = tokio::time::Instant::now() + self.polling.timeout;
        let mut delay = self.polling.first_delay;
        let mut last = "SUBMITTED".to_string();
        loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(FhirStoreError::ExportTimeout {
                    job_id: job_id.to_string(),
                    secs: self.polling.timeout.as_secs(),
                    status: last,
                });
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(self.polling.max_delay);
            let described = self
                .client
                .describe_fhir_export_job()
                .datastore_id(datastore_id)
                .job_id(job_id)
                .send()
                .await;
            let out = match described {
                Ok(out) => out,
                // Throttling or a network blip while waiting: ask again later.
                Err(e) => {
                    let e = call_error("DescribeFHIRExportJob", e);
                    if e.is_retryable() {
                        tracing::warn!(error = %e, "describing the export job failed; asking again");
                        continue;
                    }
                    return Err(e);
                }
            };
            let Some(props) = out.export_job_properties() else {
                return Err(FhirStoreError::HealthLake {
                    operation: "DescribeFHIRExportJob",
                    kind: "the answer has no ExportJobProperties".into(),
                    retryable: false,
                });
            };
            let status = props.job_status();
            last = status.as_str().to_string();
            match status {
                JobStatus::Completed => return Ok(None),
                JobStatus::CompletedWithErrors => {
                    return Ok(Some(props.message().unwrap_or_default().to_string()));
                }
                JobStatus::Failed
                | JobStatus::CancelCompleted
                | JobStatus::CancelFailed
                | JobStatus::CancelInProgress
                | JobStatus::CancelSubmitted => {
                    return Err(FhirStoreError::ExportFailed {
                        job_id: job_id.to_string(),
                        status: last,
                        message: props.message().map(str::to_string),
                    });
                }
                // SUBMITTED, QUEUED, IN_PROGRESS, or a status this SDK does not know yet.
                _ => tracing::debug!(status = %last, "export job still running"),
            }
        }
    }

    /// Starts an export, waits for it, and gathers its parts from `bucket` (the store of the
    /// request's S3 bucket) into `dir`, one `<ResourceType>.ndjson` per type.
    pub async fn export_to(
        &self,
        req: &ExportRequest,
        bucket: &dyn ObjectStore,
        dir: &Path,
    ) -> Result<Exported, FhirStoreError> {
        let (_, prefix) =
            parse_s3_uri(&req.output_s3_uri).ok_or_else(|| FhirStoreError::HealthLake {
                operation: "StartFHIRExportJob",
                kind: "the output URI is not s3://bucket/prefix".into(),
                retryable: false,
            })?;
        let job_id = self.start(req).await?;
        tracing::info!(job_id = %job_id, "HealthLake export started");
        let with_errors = self.wait(&req.datastore_id, &job_id).await?;
        let folder = job_folder(&prefix, &req.datastore_id, &job_id);
        let collected = collect(bucket, &folder, dir).await?;
        Ok(Exported {
            job_id,
            with_errors,
            collected,
        })
    }
}

/// The S3 store of an export's bucket, from the environment (credentials, region,
/// `AWS_ENDPOINT_URL` for a local endpoint, path-style then).
pub fn s3_bucket(bucket: &str) -> Result<object_store::aws::AmazonS3, FhirStoreError> {
    let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Ok(url) = std::env::var("AWS_ENDPOINT_URL") {
        b = b
            .with_allow_http(url.starts_with("http://"))
            .with_endpoint(url)
            .with_virtual_hosted_style_request(false);
    }
    b.build().map_err(|e| FhirStoreError::Store {
        path: bucket.to_string(),
        kind: e.to_string(),
        retryable: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris_and_job_folders() {
        assert_eq!(
            parse_s3_uri("s3://b/exports/p360/"),
            Some(("b".into(), "exports/p360".into()))
        );
        assert_eq!(parse_s3_uri("s3://b"), Some(("b".into(), String::new())));
        assert_eq!(parse_s3_uri("https://b/x"), None);
        assert_eq!(
            job_folder("exports", "ds1", "j9").as_ref(),
            "exports/ds1-FHIR_EXPORT-j9"
        );
        assert_eq!(job_folder("", "ds1", "j9").as_ref(), "ds1-FHIR_EXPORT-j9");
    }
}
