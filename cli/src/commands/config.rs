//! `quarry config`: the effective configuration, where each value came from, keys redacted.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use quarry_orchestrator::config::{
    Config, EndpointSettings, Environment, FlagOverrides, Setting, redact,
};
use serde_json::json;

use crate::commands::find_layout;
use crate::format::Style;

/// Flags that choose the LLM, shared by every command that calls one.
#[derive(Debug, Clone, Args)]
pub struct LlmArgs {
    /// LLM protocol: openai (any OpenAI-compatible endpoint) or anthropic [env: QUARRY_LLM_PROVIDER]
    #[arg(long, value_name = "NAME")]
    llm_provider: Option<String>,

    /// LLM endpoint base URL, e.g. http://127.0.0.1:8080/v1 [env: QUARRY_LLM_URL]
    #[arg(long, value_name = "URL")]
    llm_url: Option<String>,

    /// LLM model name [env: QUARRY_LLM_MODEL]
    #[arg(long, value_name = "MODEL")]
    llm_model: Option<String>,
}

impl LlmArgs {
    /// Loads the configuration for the repository at `root` with these flags on top.
    pub fn load(&self, root: Option<&Path>) -> Result<Config> {
        let flags = FlagOverrides {
            provider: self.llm_provider.clone(),
            url: self.llm_url.clone(),
            model: self.llm_model.clone(),
        };
        Ok(Config::load(&Environment::from_process(root), &flags)?)
    }
}

/// Arguments of `quarry config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,

    /// Show the configuration for this repository instead of the current directory's.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,

    #[command(flatten)]
    llm: LlmArgs,
}

/// Runs `quarry config`.
pub fn run(args: ConfigArgs) -> Result<()> {
    let root = repo_root(args.root.as_deref());
    let config = args.llm.load(root.as_deref())?;
    let rows = rows(&config);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        let settings: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(key, value, source)| (key.clone(), json!({"value": value, "source": source})))
            .collect();
        let files: Vec<_> = config
            .files
            .iter()
            .map(|(path, exists)| json!({"path": path, "exists": exists}))
            .collect();
        let ready = config.provider().map(|_| ()).map_err(|e| e.to_string());
        serde_json::to_writer_pretty(
            &mut out,
            &json!({
                "settings": settings,
                "files": files,
                "llm_ready": ready.is_ok(),
                "llm_problem": ready.err(),
            }),
        )?;
        writeln!(out)?;
        return Ok(());
    }
    let style = Style::stdout();
    let width = rows.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0);
    let value_width = rows
        .iter()
        .map(|(_, v, _)| v.as_deref().unwrap_or("(not set)").chars().count())
        .max()
        .unwrap_or(0)
        .min(48);
    for (key, value, source) in &rows {
        let value = value.as_deref().unwrap_or("(not set)");
        writeln!(
            out,
            "{key:<width$}  {value:<value_width$}  {}",
            style.dim(source.as_deref().unwrap_or(""))
        )?;
    }
    writeln!(out)?;
    for (path, exists) in &config.files {
        let state = if *exists { "read" } else { "absent" };
        writeln!(
            out,
            "{}",
            style.dim(&format!("{state}: {}", path.display()))
        )?;
    }
    if let Err(problem) = config.provider() {
        writeln!(out, "{}", style.dim(&format!("LLM not ready: {problem}")))?;
    }
    Ok(())
}

/// The repository around `root` (or the current directory): where `quarry.toml` is read.
fn repo_root(root: Option<&Path>) -> Option<PathBuf> {
    find_layout(root, None).ok().map(|layout| layout.root)
}

type Row = (String, Option<String>, Option<String>);

fn rows(config: &Config) -> Vec<Row> {
    fn row<T: ToString>(key: &str, setting: &Setting<T>) -> Row {
        (
            key.to_string(),
            Some(setting.value.to_string()),
            Some(setting.source.to_string()),
        )
    }
    fn optional(key: &str, setting: Option<&Setting<String>>, secret: bool) -> Row {
        match setting {
            Some(s) => (
                key.to_string(),
                Some(if secret {
                    redact(&s.value)
                } else {
                    s.value.clone()
                }),
                Some(s.source.to_string()),
            ),
            None => (key.to_string(), None, None),
        }
    }
    fn endpoint(prefix: &str, e: &EndpointSettings) -> Vec<Row> {
        vec![
            (
                format!("{prefix}.provider"),
                Some(e.provider.value.as_str().to_string()),
                Some(e.provider.source.to_string()),
            ),
            optional(&format!("{prefix}.url"), e.url.as_ref(), false),
            optional(&format!("{prefix}.model"), e.model.as_ref(), false),
            optional(&format!("{prefix}.api_key"), e.api_key.as_ref(), true),
        ]
    }
    let mut rows = endpoint("llm", &config.llm.primary);
    if let Some(fallback) = &config.llm.fallback {
        rows.extend(endpoint("llm.fallback", fallback));
    }
    rows.push(row("llm.timeout_secs", &config.llm.timeout_secs));
    rows.push(row("llm.max_attempts", &config.llm.max_attempts));
    rows.push(row("llm.concurrency", &config.llm.concurrency));
    rows.push(row("ask.k", &config.ask.k));
    rows.push(row("ask.context_tokens", &config.ask.context_tokens));
    rows.push(row("ask.answer_tokens", &config.ask.answer_tokens));
    rows.push(optional("edit.check", config.edit.check.as_ref(), false));
    rows.push(row(
        "edit.check_timeout_secs",
        &config.edit.check_timeout_secs,
    ));
    rows.push(row("edit.jobs", &config.edit.jobs));
    rows.push(row("edit.fix_rounds", &config.edit.fix_rounds));
    rows.push(row("edit.max_calls", &config.edit.max_calls));
    rows.push(row("edit.max_tokens", &config.edit.max_tokens));
    rows.push(row("edit.max_seconds", &config.edit.max_seconds));
    rows.push(row("edit.context_tokens", &config.edit.context_tokens));
    rows.push(row("edit.answer_tokens", &config.edit.answer_tokens));
    rows.push(row("edit.whole_file_lines", &config.edit.whole_file_lines));
    let store = &config.store;
    rows.push(optional("store.url", store.url.as_ref(), false));
    rows.push(optional("store.api_key", store.api_key.as_ref(), true));
    rows.push(optional(
        "store.collection",
        store.collection.as_ref(),
        false,
    ));
    for (key, setting) in [
        ("store.shard_number", &store.shard_number),
        ("store.replication_factor", &store.replication_factor),
    ] {
        rows.push(match setting {
            Some(setting) => row(key, setting),
            None => (key.to_string(), None, None),
        });
    }
    rows.push(row("store.on_disk", &store.on_disk));
    rows.push(row("store.timeout_secs", &store.timeout_secs));
    rows.push(optional(
        "search.reranker",
        config.search.reranker.as_ref(),
        false,
    ));
    rows
}
