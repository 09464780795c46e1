//! Quarry's orchestrator: everything that talks to an LLM.
//!
//! [`llm`] is the provider layer (OpenAI-compatible and Anthropic backends, retries, fallback,
//! a process-wide concurrency limit, JSONL traces); [`config`] decides which provider to use
//! from files, environment and flags; [`ask`] answers questions about the code from retrieved
//! context and checks the answer's citations; [`edit`] plans a multi-file change as a DAG of
//! tasks, runs LLM workers on it in parallel, applies and verifies their edits, and can resume
//! or undo a run; [`memory`] keeps project notes and past runs' outcomes for later prompts.

pub mod ask;
pub mod config;
pub mod edit;
pub mod llm;
pub mod memory;
