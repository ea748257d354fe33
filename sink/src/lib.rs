//! Sinks of the pipeline: the graph writer (facts → patient graph → GraphChanged) and the lake
//! sink (GraphChanged → Parquet, exactly once).

pub mod graph_writer;
pub mod lake;

pub use graph_writer::GraphWriter;
pub use lake::{LakeConfig, LakeSink};
