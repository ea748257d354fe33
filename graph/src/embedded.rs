//! Oxigraph in process: on disk (RocksDB) for `p360 serve`, or in memory for tools and tests.
//! Oxigraph's API is synchronous; calls run on tokio's blocking pool.

use crate::store::{GraphError, GraphStore, Solution, Term};
use async_trait::async_trait;
use oxigraph::model::Term as OxTerm;
use oxigraph::sparql::{QueryResults, SparqlEvaluator};
use oxigraph::store::Store;
use std::path::Path;

#[derive(Clone)]
pub struct OxigraphStore {
    store: Store,
}

impl std::fmt::Debug for OxigraphStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OxigraphStore")
    }
}

impl OxigraphStore {
    /// Opens (or creates) a store on disk.
    pub fn open(path: &Path) -> Result<Self, GraphError> {
        std::fs::create_dir_all(path)
            .map_err(|e| GraphError::Unavailable(format!("creating {}: {e}", path.display())))?;
        Ok(Self {
            store: Store::open(path)
                .map_err(|e| GraphError::Unavailable(format!("opening the graph store: {e}")))?,
        })
    }

    /// A store in memory (lost at exit).
    pub fn in_memory() -> Result<Self, GraphError> {
        Ok(Self {
            store: Store::new().map_err(|e| GraphError::Unavailable(e.to_string()))?,
        })
    }

    /// The underlying Oxigraph store (bulk loading in benchmarks, dumps).
    pub fn inner(&self) -> &Store {
        &self.store
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Store) -> Result<T, GraphError> + Send + 'static,
    ) -> Result<T, GraphError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store))
            .await
            .map_err(|e| GraphError::Unavailable(format!("graph task failed: {e}")))?
    }
}

fn term(t: OxTerm) -> Term {
    match t {
        OxTerm::NamedNode(n) => Term::Iri(n.into_string()),
        OxTerm::BlankNode(b) => Term::Blank(b.into_string()),
        OxTerm::Literal(l) => {
            let (value, datatype, lang) = l.destruct();
            Term::Literal {
                value,
                datatype: datatype
                    .map(|d| d.into_string())
                    .filter(|d| d != "http://www.w3.org/2001/XMLSchema#string"),
                lang,
            }
        }
        #[allow(unreachable_patterns)] // RDF 1.2 triple terms, when that feature is on
        _ => Term::Blank("unsupported-term".into()),
    }
}

fn unavailable(e: impl std::fmt::Display) -> GraphError {
    GraphError::Unavailable(e.to_string())
}

fn invalid(e: impl std::fmt::Display) -> GraphError {
    GraphError::Invalid(e.to_string())
}

impl OxigraphStore {
    /// Runs a SPARQL query on the blocking pool and hands its results to `read` there.
    async fn query<T: Send + 'static>(
        &self,
        query: &str,
        read: impl FnOnce(QueryResults) -> Result<T, GraphError> + Send + 'static,
    ) -> Result<T, GraphError> {
        let query = query.to_owned();
        self.blocking(move |store| {
            let results = SparqlEvaluator::new()
                .parse_query(&query)
                .map_err(invalid)?
                .on_store(&store)
                .execute()
                .map_err(unavailable)?;
            read(results)
        })
        .await
    }
}

/// Quads text from which a write with nothing to delete goes through the bulk loader. Below
/// it a transaction is cheaper: the loader writes one table file per index (ten) and ingests
/// them, a fixed cost of milliseconds that a handful of facts does not repay.
pub const BULK_MIN_BYTES: usize = 256 * 1024;

/// Loads TriG `quads` with the bulk loader in its atomic mode: nothing is visible until
/// `commit` ingests every table at once (RocksDB `IngestExternalFiles`, recorded in one
/// manifest write: all of it or none of it, also across a crash); a parse error drops the
/// loader, which deletes the tables it built.
fn bulk_load(store: &Store, quads: &[u8]) -> Result<(), GraphError> {
    // One thread: the loader's threads work on batches of a million quads, and a group commit
    // is one batch; the other core stays with the stages.
    let mut loader = store.bulk_loader().with_num_threads(1);
    loader
        .load_from_slice(oxigraph::io::RdfFormat::TriG, quads)
        .map_err(|e| match e {
            oxigraph::store::LoaderError::Storage(e) => unavailable(e),
            e => invalid(e),
        })?;
    loader.commit().map_err(unavailable)
}

#[async_trait]
impl GraphStore for OxigraphStore {
    async fn update(&self, update: &str) -> Result<(), GraphError> {
        let update = update.to_owned();
        self.blocking(move |store| {
            SparqlEvaluator::new()
                .parse_update(&update)
                .map_err(invalid)?
                .on_store(&store)
                .execute()
                .map_err(unavailable)
        })
        .await
    }

    async fn select(&self, query: &str) -> Result<Vec<Solution>, GraphError> {
        self.query(query, |results| {
            let QueryResults::Solutions(solutions) = results else {
                return Err(invalid("not a SELECT query"));
            };
            solutions
                .map(|s| {
                    let s = s.map_err(unavailable)?;
                    Ok(s.iter()
                        .map(|(v, t)| (v.as_str().to_owned(), term(t.clone())))
                        .collect())
                })
                .collect()
        })
        .await
    }

    async fn ask(&self, query: &str) -> Result<bool, GraphError> {
        self.query(query, |results| match results {
            QueryResults::Boolean(b) => Ok(b),
            _ => Err(invalid("not an ASK query")),
        })
        .await
    }

    /// Atomic either way. A write with nothing to delete and at least [`BULK_MIN_BYTES`] of
    /// quads (a group commit of new facts: a feed batch's members) goes through Oxigraph's
    /// bulk loader: sorted RocksDB tables built apart and ingested in one atomic step at
    /// commit, skipping the write-ahead log and the memtable that make a transaction cost
    /// several times more per quad. Otherwise one RocksDB transaction: the delete through the
    /// SPARQL engine, the quads through Oxigraph's TriG parser (several times faster than
    /// parsing them as SPARQL INSERT DATA).
    async fn write(&self, delete: Option<&str>, quads: &str) -> Result<(), GraphError> {
        let delete = delete.map(str::to_owned);
        let quads = quads.to_owned();
        if delete.is_none() && quads.len() >= BULK_MIN_BYTES {
            return self
                .blocking(move |store| bulk_load(&store, quads.as_bytes()))
                .await;
        }
        self.blocking(move |store| {
            let mut t = store.start_transaction().map_err(unavailable)?;
            if let Some(d) = delete {
                SparqlEvaluator::new()
                    .parse_update(&d)
                    .map_err(invalid)?
                    .on_transaction(&mut t)
                    .execute()
                    .map_err(unavailable)?;
            }
            t.load_from_slice(oxigraph::io::RdfFormat::TriG, quads.as_bytes())
                .map_err(invalid)?;
            t.commit().map_err(unavailable)
        })
        .await
    }

    async fn construct(&self, query: &str) -> Result<String, GraphError> {
        self.query(query, |results| {
            let QueryResults::Graph(triples) = results else {
                return Err(invalid("not a CONSTRUCT query"));
            };
            let mut out =
                oxigraph::io::RdfSerializer::from_format(oxigraph::io::RdfFormat::NTriples)
                    .for_writer(Vec::new());
            for t in triples {
                out.serialize_triple(&t.map_err(unavailable)?)
                    .map_err(unavailable)?;
            }
            String::from_utf8(out.finish().map_err(unavailable)?).map_err(unavailable)
        })
        .await
    }
}

/// The embedded graph as seen by a process that does not own it (admin commands beside a
/// running `p360 serve`): every call is refused. RocksDB allows one writer process, and
/// reading it from a second process while the first writes is undefined behaviour (Oxigraph's
/// `open_read_only` says so; the crash test saw `Corruption` errors from it), so admin
/// commands never open it. They do not need it: they work on the queue, the accounts and the
/// object store.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotOpened;

impl NotOpened {
    fn refuse<T>() -> Result<T, GraphError> {
        Err(GraphError::Unavailable(
            "the embedded graph belongs to the `p360 serve` (or graph-writer worker) process; \
             this command does not open it"
                .into(),
        ))
    }
}

#[async_trait]
impl GraphStore for NotOpened {
    async fn update(&self, _: &str) -> Result<(), GraphError> {
        Self::refuse()
    }
    async fn select(&self, _: &str) -> Result<Vec<Solution>, GraphError> {
        Self::refuse()
    }
    async fn ask(&self, _: &str) -> Result<bool, GraphError> {
        Self::refuse()
    }
    async fn construct(&self, _: &str) -> Result<String, GraphError> {
        Self::refuse()
    }
    async fn write(&self, _: Option<&str>, _: &str) -> Result<(), GraphError> {
        Self::refuse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = OxigraphStore::open(&dir.path().join("graph")).unwrap();
        crate::testsuite::run_all(&store, "disk").await;
    }

    #[tokio::test]
    async fn conformance_in_memory() {
        crate::testsuite::run_all(&OxigraphStore::in_memory().unwrap(), "mem").await;
    }

    /// Quads of `n` facts in `graphs` patient graphs, large enough for the bulk path.
    fn many_quads(n: usize, graphs: usize) -> String {
        let mut out = String::new();
        for g in 0..graphs {
            out.push_str(&format!("GRAPH <urn:g{g}> {{\n"));
            for i in (g..n).step_by(graphs) {
                out.push_str(&format!(
                    "<urn:f{i}> <urn:status> \"confirmed\" ; <urn:json> \"{{\\\"n\\\": {i}, \\\"pad\\\": \\\"{}\\\"}}\" .\n",
                    "x".repeat(64)
                ));
            }
            out.push_str("}\n");
        }
        out
    }

    #[tokio::test]
    async fn large_writes_go_through_the_bulk_loader_and_stay_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("graph");
        let count = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?f <urn:status> ?s } }";
        {
            let s = OxigraphStore::open(&path).unwrap();
            s.write(
                None,
                "GRAPH <urn:g0> { <urn:before> <urn:status> \"x\" . }\n",
            )
            .await
            .unwrap();
            let quads = many_quads(3000, 7);
            assert!(
                quads.len() >= BULK_MIN_BYTES,
                "the test must take the bulk path"
            );
            // A syntax error at the very end: nothing of the write may be visible.
            let broken = format!("{quads}GRAPH <urn:g0> {{ <urn:x> <urn:y> }}\n");
            let err = s.write(None, &broken).await.unwrap_err();
            assert!(matches!(err, GraphError::Invalid(_)), "{err}");
            let n = s.select(count).await.unwrap();
            assert_eq!(n[0]["n"].value(), "1");
            s.write(None, &quads).await.unwrap();
            // Set semantics as for a transaction: the same quads again change nothing.
            s.write(None, &quads).await.unwrap();
            let n = s.select(count).await.unwrap();
            assert_eq!(n[0]["n"].value(), "3001");
            // A transaction after a bulk load sees and replaces its triples.
            s.write(
                Some("DELETE WHERE { GRAPH <urn:g3> { <urn:f3> <urn:status> ?s } }"),
                "GRAPH <urn:g3> { <urn:f3> <urn:status> \"retracted\" . }\n",
            )
            .await
            .unwrap();
        }
        let s = OxigraphStore::open(&path).unwrap();
        let n = s.select(count).await.unwrap();
        assert_eq!(n[0]["n"].value(), "3001");
        assert!(
            s.ask("ASK { GRAPH <urn:g3> { <urn:f3> <urn:status> \"retracted\" } }")
                .await
                .unwrap()
        );
        assert!(
            !s.ask("ASK { GRAPH <urn:g3> { <urn:f3> <urn:status> \"confirmed\" } }")
                .await
                .unwrap()
        );
        let mem = OxigraphStore::in_memory().unwrap();
        mem.write(None, &many_quads(3000, 7)).await.unwrap();
        assert_eq!(mem.select(count).await.unwrap()[0]["n"].value(), "3000");
    }

    #[tokio::test]
    async fn data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("graph");
        {
            let s = OxigraphStore::open(&path).unwrap();
            s.update("INSERT DATA { GRAPH <urn:g> { <urn:s> <urn:p> \"o\" } }")
                .await
                .unwrap();
        }
        let s = OxigraphStore::open(&path).unwrap();
        assert!(
            s.ask("ASK { GRAPH <urn:g> { <urn:s> <urn:p> \"o\" } }")
                .await
                .unwrap()
        );
    }
}
