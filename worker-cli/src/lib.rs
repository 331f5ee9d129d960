//! `rigworker` as a library: the engine (dispatch, job switching, accounting), device
//! selection, config merging, and one module per subcommand. `main.rs` only parses the
//! command line and calls into here, so integration tests drive the same code.

pub mod api;
pub mod artifacts;
pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod logging;
pub mod plot;
pub mod progress;
pub mod reload;
pub mod sdnotify;
pub mod secret;
pub mod select;
pub mod sensors;
