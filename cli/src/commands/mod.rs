//! One module per subcommand: its arguments and how it runs.

pub mod ask;
pub mod config;
pub mod index;
pub mod search;
pub mod status;
