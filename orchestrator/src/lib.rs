//! Quarry's orchestrator: everything that talks to an LLM.
//!
//! [`llm`] is the provider layer (OpenAI-compatible and Anthropic backends, retries, fallback,
//! a process-wide concurrency limit, JSONL traces); [`config`] decides which provider to use
//! from files, environment and flags; [`ask`] answers questions about the code from retrieved
//! context and checks the answer's citations. The edit orchestrator (plan, execute, verify)
//! builds on the same layer.

pub mod ask;
pub mod config;
pub mod llm;
