//! What went wrong pulling a record, and where. Messages name the request (method, the URL
//! path with ids and query values left out, the page) and the HTTP status, never a value the
//! server sent or a search value we sent: those are patient data.

use std::fmt;

/// Where a request went: a path with every id replaced and query values dropped, so that it
/// can be logged (`GET /fhir/Patient/{id}/$everything?_count=`, page 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct At {
    pub method: &'static str,
    pub path: String,
    pub page: u32,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} (page {})", self.method, self.path, self.page)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FhirStoreError {
    #[error("the FHIR base URL is not usable: {0}")]
    BadBase(&'static str),
    /// A resource type or id that FHIR does not allow (the value is not repeated: it may be
    /// patient data).
    #[error("not a valid FHIR {0}")]
    BadName(&'static str),
    #[error("{at}: {kind}")]
    Transport { at: At, kind: &'static str },
    #[error("{at}: HTTP {status}{}", issue.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Status {
        at: At,
        status: u16,
        /// `OperationOutcome.issue[0].code` when the server sent one (a FHIR code such as
        /// `not-found`, never its free text).
        issue: Option<String>,
    },
    #[error("{at}: {reason}")]
    BadResponse { at: At, reason: &'static str },
    #[error("{at}: the page is larger than {limit} bytes")]
    PageTooLarge { at: At, limit: usize },
    #[error("{at}: more than {limit} pages: the record is not complete")]
    TooManyPages { at: At, limit: u32 },
    #[error("{at}: the next link points at a page already read (the server loops)")]
    Loop { at: At },
    #[error("{at}: the next link leaves the server's origin; not followed")]
    ForeignLink { at: At },
    #[error("the identifier matches no Patient")]
    NoPatient,
    #[error("the identifier matches {0} Patients; refusing to pick one")]
    AmbiguousPatient(usize),
    #[error("more than {0} resource types in one record")]
    TooManyTypes(usize),
    #[error("writing {file}: {source}")]
    Write {
        file: String,
        source: std::io::Error,
    },
    #[error("signing the request: {0}")]
    Sign(String),
    #[error("object store, {path}: {kind}")]
    Store {
        path: String,
        kind: String,
        retryable: bool,
    },
    #[error("HealthLake {operation}: {kind}")]
    HealthLake {
        operation: &'static str,
        kind: String,
        retryable: bool,
    },
    #[error("HealthLake export job {job_id} ended {status}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    ExportFailed {
        job_id: String,
        status: String,
        /// HealthLake's own message about the job (about the job, not its data).
        message: Option<String>,
    },
    #[error("HealthLake export job {job_id} did not finish within {secs} s (last status {status})")]
    ExportTimeout {
        job_id: String,
        secs: u64,
        status: String,
    },
}

impl FhirStoreError {
    /// Whether the same call may succeed later: the network, a timeout, throttling or a
    /// server error. A refusal, a bad answer or a loop will not change by retrying.
    pub fn is_retryable(&self) -> bool {
        match self {
            FhirStoreError::Transport { .. } | FhirStoreError::ExportTimeout { .. } => true,
            FhirStoreError::Status { status, .. } => retryable_status(*status),
            FhirStoreError::HealthLake { retryable, .. }
            | FhirStoreError::Store { retryable, .. } => *retryable,
            _ => false,
        }
    }
}

pub(crate) fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}
