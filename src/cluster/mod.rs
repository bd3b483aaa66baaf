//! Finding the nodes: [`discovery`] asks a configuration endpoint (its reply
//! parser is [`reply`], what it describes is [`config`]), and [`registry`]
//! caches each endpoint's answer once per process, refreshes it and starts
//! over after `fork()`.

pub mod config;
pub mod discovery;
pub mod registry;
pub mod reply;
