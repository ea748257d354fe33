//! Sinks of the pipeline: the graph writer (facts → patient graph → GraphChanged).

pub mod graph_writer;

pub use graph_writer::GraphWriter;
