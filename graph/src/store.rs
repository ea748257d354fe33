//! The GraphStore port: a SPARQL 1.1 dataset with named graphs.
//!
//! # Contract (checked by [`crate::testsuite`] on every adapter)
//! - `update` runs one SPARQL 1.1 Update request (several operations separated by `;`)
//!   atomically: all of it or none of it is visible afterwards.
//! - RDF set semantics: inserting a triple that exists is a no-op, which is what makes
//!   re-applying a fact idempotent.
//! - Named graphs are isolated: `GRAPH <g> { … }` sees only `g`.
//! - `select` returns every solution; terms come back with their datatypes.
//! - The same SPARQL text runs on every adapter: write only standard SPARQL 1.1.

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::fmt;

/// An RDF term in a query solution.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Term {
    Iri(String),
    Literal {
        value: String,
        /// `None` for plain strings (`xsd:string`).
        datatype: Option<String>,
        lang: Option<String>,
    },
    Blank(String),
}

impl Term {
    /// The IRI or the literal's lexical value.
    pub fn value(&self) -> &str {
        match self {
            Term::Iri(v) | Term::Blank(v) => v,
            Term::Literal { value, .. } => value,
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Iri(i) => write!(f, "<{i}>"),
            Term::Blank(b) => write!(f, "_:{b}"),
            Term::Literal {
                value,
                datatype: Some(dt),
                ..
            } => write!(f, "{value:?}^^<{dt}>"),
            Term::Literal {
                value,
                lang: Some(l),
                ..
            } => write!(f, "{value:?}@{l}"),
            Term::Literal { value, .. } => write!(f, "{value:?}"),
        }
    }
}

/// One solution of a SELECT: variable name → bound term.
pub type Solution = BTreeMap<String, Term>;

/// Graph store errors. Messages come from the store and name the problem, not the data (our
/// SPARQL carries patient data in literals, so the query text itself is never included).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// The request is not valid SPARQL or was refused as such: a bug, not retryable.
    #[error("invalid SPARQL request: {0}")]
    Invalid(String),
    /// The store is unreachable, overloaded or failed: retry later.
    #[error("graph store unavailable: {0}")]
    Unavailable(String),
}

impl GraphError {
    pub fn is_transient(&self) -> bool {
        matches!(self, GraphError::Unavailable(_))
    }
}

/// The graph port.
#[async_trait]
pub trait GraphStore: Send + Sync + fmt::Debug {
    /// Runs a SPARQL 1.1 Update request atomically.
    async fn update(&self, update: &str) -> Result<(), GraphError>;

    /// Runs a SPARQL SELECT query.
    async fn select(&self, query: &str) -> Result<Vec<Solution>, GraphError>;

    /// Runs a SPARQL ASK query.
    async fn ask(&self, query: &str) -> Result<bool, GraphError>;

    /// Runs a SPARQL CONSTRUCT query; returns the graph as N-Triples.
    async fn construct(&self, query: &str) -> Result<String, GraphError>;

    /// Atomically runs `delete` (a SPARQL update, typically DELETE … WHERE) and inserts
    /// `quads`: `GRAPH <g> { triples }` blocks, which are both SPARQL quad data and TriG, so an
    /// adapter may load them with a fast RDF parser instead of a SPARQL one (the embedded
    /// store does). Default: one SPARQL update.
    async fn write(&self, delete: Option<&str>, quads: &str) -> Result<(), GraphError> {
        let mut update = String::with_capacity(quads.len() + 64);
        if let Some(d) = delete {
            update.push_str(d);
            update.push_str(" ;\n");
        }
        update.push_str("INSERT DATA {\n");
        update.push_str(quads);
        update.push('}');
        self.update(&update).await
    }
}
