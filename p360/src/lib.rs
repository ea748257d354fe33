//! The p360 application: configuration, wiring and the command-line tools. The binary
//! (`main.rs`) is a thin CLI over this library, so tests start the whole system in process.

#[cfg(feature = "aws")]
pub mod aws;
pub mod bench;
pub mod config;
pub mod demo;
pub mod enrich_cmd;
pub mod extract_cmd;
pub mod feeds_cmd;
pub mod system;

pub use config::Config;
pub use system::System;
