//! Configuration: which LLM to use and how `ask` packs its context, from files, environment
//! and flags, with the origin of every value kept so `quarry config` can say where it came from.
//!
//! Layers, later ones winning: built-in defaults, the user's `~/.config/quarry/config.toml`
//! (`$XDG_CONFIG_HOME` honoured), the repository's `quarry.toml`, environment variables
//! (`QUARRY_LLM_URL`, `QUARRY_LLM_MODEL`, `QUARRY_LLM_PROVIDER`, `OPENAI_API_KEY`,
//! `ANTHROPIC_API_KEY`, `QUARRY_QDRANT_URL`, `QUARRY_QDRANT_API_KEY`,
//! `QUARRY_QDRANT_COLLECTION`), then command-line flags. Nothing here touches the network;
//! turning a configuration into a provider is [`Config::provider`], into a team store
//! [`Config::team_target`].

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use quarry_indexer::team::TeamTarget;

use crate::llm::Provider;
use crate::llm::anthropic::AnthropicProvider;
use crate::llm::openai::OpenAiProvider;
use crate::llm::reliable::{Reliable, RetryPolicy};

/// The repository's configuration file name.
pub const REPO_FILE: &str = "quarry.toml";
/// The OpenAI API, used when only `OPENAI_API_KEY` is set.
const OPENAI_URL: &str = "https://api.openai.com/v1";
/// The Anthropic API.
const ANTHROPIC_URL: &str = "https://api.anthropic.com";
/// Models used when a hosted API is configured without one.
const OPENAI_DEFAULT_MODEL: &str = "gpt-4o-mini";
const ANTHROPIC_DEFAULT_MODEL: &str = "claude-3-5-haiku-latest";

/// Why configuration could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A configuration file exists but cannot be read or parsed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong, one line.
        reason: String,
    },
    /// A value is not one of the accepted ones.
    #[error("{key} = `{value}` from {origin}: {expected}")]
    Invalid {
        /// The setting.
        key: &'static str,
        /// The value given.
        value: String,
        /// Where it came from.
        origin: Source,
        /// What would be accepted.
        expected: &'static str,
    },
    /// Something needed is not configured.
    #[error("{0}")]
    Missing(String),
    /// The HTTP client could not be built.
    #[error("cannot set up HTTP: {0}")]
    Http(String),
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Source {
    /// Built in.
    Default,
    /// Derived from other settings (the text says how).
    Inferred(String),
    /// A configuration file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::Inferred(how) => write!(f, "inferred: {how}"),
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Env(name) => write!(f, "env {name}"),
            Source::Flag(name) => write!(f, "flag {name}"),
        }
    }
}

/// A value and its origin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

impl<T> Setting<T> {
    fn new(value: T, source: Source) -> Self {
        Setting { value, source }
    }
}

/// Which wire protocol the endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI-compatible Chat Completions (OpenAI, Ollama, llama.cpp, vLLM, LM Studio).
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
}

impl ProviderKind {
    fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "openai" | "openai-compatible" | "ollama" | "llama.cpp" | "llamacpp" | "vllm"
            | "lmstudio" => Some(ProviderKind::OpenAi),
            "anthropic" | "claude" => Some(ProviderKind::Anthropic),
            _ => None,
        }
    }

    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
        }
    }

    fn key_variable(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "OPENAI_API_KEY",
            ProviderKind::Anthropic => "ANTHROPIC_API_KEY",
        }
    }
}

/// One endpoint: protocol, URL, model, key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointSettings {
    /// Wire protocol.
    pub provider: Setting<ProviderKind>,
    /// Base URL.
    pub url: Option<Setting<String>>,
    /// Model name.
    pub model: Option<Setting<String>>,
    /// API key; never printed.
    #[serde(skip)]
    pub api_key: Option<Setting<String>>,
}

/// The LLM settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LlmSettings {
    /// The endpoint used first.
    pub primary: EndpointSettings,
    /// The endpoint that takes over when the primary keeps failing.
    pub fallback: Option<EndpointSettings>,
    /// Seconds one attempt may take.
    pub timeout_secs: Setting<u64>,
    /// Attempts per endpoint, the first included.
    pub max_attempts: Setting<u32>,
    /// Calls in flight at once across the process.
    pub concurrency: Setting<usize>,
}

/// How `quarry ask` builds its prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AskSettings {
    /// Chunks retrieved per question.
    pub k: Setting<usize>,
    /// Estimated tokens of code context per prompt.
    pub context_tokens: Setting<usize>,
    /// Most tokens in the answer.
    pub answer_tokens: Setting<u32>,
}

/// How `quarry edit` runs (flags override each).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EditSettings {
    /// The check command run after the tasks (`cargo test`, `pytest -q`).
    pub check: Option<Setting<String>>,
    /// Seconds the check may take.
    pub check_timeout_secs: Setting<u64>,
    /// Tasks run at once.
    pub jobs: Setting<usize>,
    /// Fixing rounds after a failing check.
    pub fix_rounds: Setting<u32>,
    /// Most LLM calls per run.
    pub max_calls: Setting<u32>,
    /// Most tokens per run, prompts and answers together.
    pub max_tokens: Setting<u64>,
    /// Most seconds of wall time per run.
    pub max_seconds: Setting<u64>,
    /// Estimated tokens of retrieved code in each worker's prompt.
    pub context_tokens: Setting<usize>,
    /// Most tokens in a worker's answer.
    pub answer_tokens: Setting<u32>,
}

/// Where the index lives: on disk beside the repository (no URL), or a team index on a
/// Qdrant server or cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreSettings {
    /// The server's gRPC URL (`http://qdrant:6334`).
    pub url: Option<Setting<String>>,
    /// API key; never printed.
    #[serde(skip)]
    pub api_key: Option<Setting<String>>,
    /// The collection, instead of the one named from the repository and the model.
    pub collection: Option<Setting<String>>,
    /// Shards of a new collection (default: the server's, one per node).
    pub shard_number: Option<Setting<u32>>,
    /// Copies of each shard of a new collection (default: the server's, 1).
    pub replication_factor: Option<Setting<u32>>,
    /// Dense vectors of a new collection on disk rather than in RAM.
    pub on_disk: Setting<bool>,
    /// Seconds any one request may take.
    pub timeout_secs: Setting<u64>,
}

/// The effective configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// LLM settings.
    pub llm: LlmSettings,
    /// `ask` settings.
    pub ask: AskSettings,
    /// `edit` settings.
    pub edit: EditSettings,
    /// Where the index lives.
    pub store: StoreSettings,
    /// The configuration files looked at, and whether each exists.
    pub files: Vec<(PathBuf, bool)>,
}

/// Values given on the command line.
#[derive(Debug, Clone, Default)]
pub struct FlagOverrides {
    /// `--llm-provider`.
    pub provider: Option<String>,
    /// `--llm-url`.
    pub url: Option<String>,
    /// `--llm-model`.
    pub model: Option<String>,
}

/// Where configuration comes from besides flags: the files and the environment. Tests build
/// one by hand; [`Environment::from_process`] reads the real ones.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// Environment variables.
    pub vars: HashMap<String, String>,
    /// The user configuration file, if a home is known.
    pub user_file: Option<PathBuf>,
    /// The repository root, if there is one.
    pub repo_root: Option<PathBuf>,
}

impl Environment {
    /// The process environment, with the repository at `repo_root`.
    pub fn from_process(repo_root: Option<&Path>) -> Self {
        let vars: HashMap<String, String> = std::env::vars().collect();
        let config_home = vars
            .get("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| vars.get("HOME").map(|h| Path::new(h).join(".config")));
        Environment {
            user_file: config_home.map(|dir| dir.join("quarry").join("config.toml")),
            repo_root: repo_root.map(Path::to_path_buf),
            vars,
        }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}

/// The file format (both files share it).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    llm: FileLlm,
    #[serde(default)]
    ask: FileAsk,
    #[serde(default)]
    edit: FileEdit,
    #[serde(default)]
    store: FileStore,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStore {
    url: Option<String>,
    api_key: Option<String>,
    /// The environment variable holding the key.
    api_key_env: Option<String>,
    collection: Option<String>,
    shard_number: Option<u32>,
    replication_factor: Option<u32>,
    on_disk: Option<bool>,
    timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEdit {
    check: Option<String>,
    check_timeout_secs: Option<u64>,
    jobs: Option<usize>,
    fix_rounds: Option<u32>,
    max_calls: Option<u32>,
    max_tokens: Option<u64>,
    max_seconds: Option<u64>,
    context_tokens: Option<usize>,
    answer_tokens: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLlm {
    #[serde(flatten)]
    endpoint: FileEndpoint,
    timeout_secs: Option<u64>,
    max_attempts: Option<u32>,
    concurrency: Option<usize>,
    fallback: Option<FileEndpoint>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEndpoint {
    provider: Option<String>,
    url: Option<String>,
    model: Option<String>,
    api_key: Option<String>,
    /// The environment variable holding the key (team configs name it instead of the key).
    api_key_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAsk {
    k: Option<usize>,
    context_tokens: Option<usize>,
    answer_tokens: Option<u32>,
}

/// Raw values for one endpoint, with their sources, before defaults and inference.
#[derive(Default)]
struct RawEndpoint {
    provider: Option<Setting<String>>,
    url: Option<Setting<String>>,
    model: Option<Setting<String>>,
    api_key: Option<Setting<String>>,
}

impl RawEndpoint {
    fn merge_file(&mut self, file: &FileEndpoint, path: &Path, env: &Environment) {
        let source = || Source::File(path.to_path_buf());
        let set = |slot: &mut Option<Setting<String>>, value: &Option<String>| {
            if let Some(value) = value {
                *slot = Some(Setting::new(value.clone(), source()));
            }
        };
        set(&mut self.provider, &file.provider);
        set(&mut self.url, &file.url);
        set(&mut self.model, &file.model);
        set(&mut self.api_key, &file.api_key);
        if let Some(var) = &file.api_key_env
            && let Some(key) = env.var(var)
        {
            self.api_key = Some(Setting::new(key.to_string(), Source::Env(var.clone())));
        }
    }

    fn resolve(self, env: &Environment) -> Result<EndpointSettings, ConfigError> {
        let provider = match self.provider {
            Some(given) => Setting::new(
                ProviderKind::parse(&given.value).ok_or_else(|| ConfigError::Invalid {
                    key: "llm.provider",
                    value: given.value.clone(),
                    origin: given.source.clone(),
                    expected: "use openai (any OpenAI-compatible endpoint) or anthropic",
                })?,
                given.source,
            ),
            None if self.url.is_some() => Setting::new(
                ProviderKind::OpenAi,
                Source::Inferred("an endpoint URL is set".into()),
            ),
            None if env.var("ANTHROPIC_API_KEY").is_some()
                && env.var("OPENAI_API_KEY").is_none() =>
            {
                Setting::new(
                    ProviderKind::Anthropic,
                    Source::Inferred("ANTHROPIC_API_KEY is set".into()),
                )
            }
            None => Setting::new(ProviderKind::OpenAi, Source::Default),
        };
        let variable = provider.value.key_variable();
        let api_key = self.api_key.or_else(|| {
            env.var(variable)
                .map(|key| Setting::new(key.to_string(), Source::Env(variable.to_string())))
        });
        let url = self.url.or_else(|| match provider.value {
            ProviderKind::Anthropic => {
                Some(Setting::new(ANTHROPIC_URL.to_string(), Source::Default))
            }
            ProviderKind::OpenAi if api_key.is_some() => Some(Setting::new(
                OPENAI_URL.to_string(),
                Source::Inferred(format!("{variable} is set")),
            )),
            ProviderKind::OpenAi => None,
        });
        let hosted_default = match (&url, provider.value) {
            (Some(url), ProviderKind::OpenAi) if url.value.trim_end_matches('/') == OPENAI_URL => {
                Some(OPENAI_DEFAULT_MODEL)
            }
            (Some(url), ProviderKind::Anthropic)
                if url.value.trim_end_matches('/') == ANTHROPIC_URL =>
            {
                Some(ANTHROPIC_DEFAULT_MODEL)
            }
            _ => None,
        };
        let model = self.model.or_else(|| {
            hosted_default.map(|model| Setting::new(model.to_string(), Source::Default))
        });
        Ok(EndpointSettings {
            provider,
            url,
            model,
            api_key,
        })
    }
}

impl Config {
    /// Loads the configuration for the repository in `env`, with `flags` on top.
    pub fn load(env: &Environment, flags: &FlagOverrides) -> Result<Config, ConfigError> {
        let mut files = Vec::new();
        let mut loaded: Vec<(PathBuf, FileConfig)> = Vec::new();
        let candidates = env
            .user_file
            .iter()
            .cloned()
            .chain(env.repo_root.iter().map(|root| root.join(REPO_FILE)));
        for path in candidates {
            let exists = path.is_file();
            files.push((path.clone(), exists));
            if exists {
                let config = read_file(&path)?;
                loaded.push((path, config));
            }
        }

        let mut primary = RawEndpoint::default();
        let mut fallback: Option<RawEndpoint> = None;
        let mut timeout_secs = Setting::new(120, Source::Default);
        let mut max_attempts = Setting::new(4, Source::Default);
        let mut concurrency = Setting::new(4, Source::Default);
        let mut k = Setting::new(12, Source::Default);
        let mut context_tokens = Setting::new(3000, Source::Default);
        let mut answer_tokens = Setting::new(512, Source::Default);
        let mut edit = EditSettings {
            check: None,
            check_timeout_secs: Setting::new(600, Source::Default),
            jobs: Setting::new(2, Source::Default),
            fix_rounds: Setting::new(2, Source::Default),
            max_calls: Setting::new(60, Source::Default),
            max_tokens: Setting::new(400_000, Source::Default),
            max_seconds: Setting::new(1800, Source::Default),
            context_tokens: Setting::new(1500, Source::Default),
            answer_tokens: Setting::new(2048, Source::Default),
        };
        let mut store = StoreSettings {
            url: None,
            api_key: None,
            collection: None,
            shard_number: None,
            replication_factor: None,
            on_disk: Setting::new(false, Source::Default),
            timeout_secs: Setting::new(30, Source::Default),
        };
        for (path, file) in &loaded {
            let source = Source::File(path.clone());
            let f = &file.store;
            let text = |value: &Option<String>| {
                value
                    .as_ref()
                    .map(|v| Setting::new(v.clone(), source.clone()))
            };
            store.url = text(&f.url).or(store.url.take());
            store.api_key = text(&f.api_key).or(store.api_key.take());
            if let Some(var) = &f.api_key_env
                && let Some(key) = env.var(var)
            {
                store.api_key = Some(Setting::new(key.to_string(), Source::Env(var.clone())));
            }
            store.collection = text(&f.collection).or(store.collection.take());
            if let Some(v) = f.shard_number {
                store.shard_number = Some(Setting::new(v, source.clone()));
            }
            if let Some(v) = f.replication_factor {
                store.replication_factor = Some(Setting::new(v, source.clone()));
            }
            if let Some(v) = f.on_disk {
                store.on_disk = Setting::new(v, source.clone());
            }
            if let Some(v) = f.timeout_secs {
                store.timeout_secs = Setting::new(v, source.clone());
            }
            let e = &file.edit;
            if let Some(v) = &e.check {
                edit.check = Some(Setting::new(v.clone(), source.clone()));
            }
            let set_u64 = |slot: &mut Setting<u64>, v: Option<u64>| {
                if let Some(v) = v {
                    *slot = Setting::new(v, source.clone());
                }
            };
            set_u64(&mut edit.check_timeout_secs, e.check_timeout_secs);
            set_u64(&mut edit.max_tokens, e.max_tokens);
            set_u64(&mut edit.max_seconds, e.max_seconds);
            if let Some(v) = e.jobs {
                edit.jobs = Setting::new(v, source.clone());
            }
            if let Some(v) = e.fix_rounds {
                edit.fix_rounds = Setting::new(v, source.clone());
            }
            if let Some(v) = e.max_calls {
                edit.max_calls = Setting::new(v, source.clone());
            }
            if let Some(v) = e.context_tokens {
                edit.context_tokens = Setting::new(v, source.clone());
            }
            if let Some(v) = e.answer_tokens {
                edit.answer_tokens = Setting::new(v, source.clone());
            }
            primary.merge_file(&file.llm.endpoint, path, env);
            if let Some(fb) = &file.llm.fallback {
                fallback
                    .get_or_insert_with(RawEndpoint::default)
                    .merge_file(fb, path, env);
            }
            if let Some(v) = file.llm.timeout_secs {
                timeout_secs = Setting::new(v, source.clone());
            }
            if let Some(v) = file.llm.max_attempts {
                max_attempts = Setting::new(v, source.clone());
            }
            if let Some(v) = file.llm.concurrency {
                concurrency = Setting::new(v, source.clone());
            }
            if let Some(v) = file.ask.k {
                k = Setting::new(v, source.clone());
            }
            if let Some(v) = file.ask.context_tokens {
                context_tokens = Setting::new(v, source.clone());
            }
            if let Some(v) = file.ask.answer_tokens {
                answer_tokens = Setting::new(v, source.clone());
            }
        }

        for (var, slot) in [
            ("QUARRY_QDRANT_URL", &mut store.url),
            ("QUARRY_QDRANT_API_KEY", &mut store.api_key),
            ("QUARRY_QDRANT_COLLECTION", &mut store.collection),
        ] {
            if let Some(value) = env.var(var) {
                *slot = Some(Setting::new(
                    value.to_string(),
                    Source::Env(var.to_string()),
                ));
            }
        }
        for (var, slot) in [
            ("QUARRY_LLM_PROVIDER", &mut primary.provider),
            ("QUARRY_LLM_URL", &mut primary.url),
            ("QUARRY_LLM_MODEL", &mut primary.model),
        ] {
            if let Some(value) = env.var(var) {
                *slot = Some(Setting::new(
                    value.to_string(),
                    Source::Env(var.to_string()),
                ));
            }
        }
        for (flag, value, slot) in [
            ("--llm-provider", &flags.provider, &mut primary.provider),
            ("--llm-url", &flags.url, &mut primary.url),
            ("--llm-model", &flags.model, &mut primary.model),
        ] {
            if let Some(value) = value {
                *slot = Some(Setting::new(value.clone(), Source::Flag(flag.to_string())));
            }
        }
        for (key, value, origin) in [
            (
                "llm.max_attempts",
                max_attempts.value as usize,
                &max_attempts.source,
            ),
            ("llm.concurrency", concurrency.value, &concurrency.source),
            ("ask.k", k.value, &k.source),
            (
                "store.timeout_secs",
                store.timeout_secs.value as usize,
                &store.timeout_secs.source,
            ),
            ("edit.jobs", edit.jobs.value, &edit.jobs.source),
            (
                "edit.max_calls",
                edit.max_calls.value as usize,
                &edit.max_calls.source,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    value: "0".into(),
                    origin: origin.clone(),
                    expected: "must be at least 1",
                });
            }
        }

        Ok(Config {
            llm: LlmSettings {
                primary: primary.resolve(env)?,
                fallback: fallback.map(|f| f.resolve(env)).transpose()?,
                timeout_secs,
                max_attempts,
                concurrency,
            },
            ask: AskSettings {
                k,
                context_tokens,
                answer_tokens,
            },
            edit,
            store,
            files,
        })
    }

    /// The team store configured (`[store] url` or `QUARRY_QDRANT_URL`), with its layout and
    /// key; `None` for the local index.
    pub fn team_target(&self) -> Result<Option<TeamTarget>, ConfigError> {
        let Some(url) = &self.store.url else {
            return Ok(None);
        };
        let target = TeamTarget::from_url(&url.value).map_err(|_| ConfigError::Invalid {
            key: "store.url",
            value: url.value.clone(),
            origin: url.source.clone(),
            expected: "use the server's gRPC URL, like http://localhost:6334",
        })?;
        Ok(Some(match target {
            TeamTarget::Server(mut server) => {
                server.api_key = self.store.api_key.as_ref().map(|k| k.value.clone());
                server.shard_number = self.store.shard_number.as_ref().map(|s| s.value);
                server.replication_factor = self.store.replication_factor.as_ref().map(|s| s.value);
                server.on_disk = self.store.on_disk.value;
                server.timeout = Duration::from_secs(self.store.timeout_secs.value);
                TeamTarget::Server(server)
            }
            edge => edge,
        }))
    }

    /// The configured LLM as a reliable provider (retries, fallback, the process-wide
    /// concurrency limit). Fails with one line naming what to set when something is missing.
    pub fn provider(&self) -> Result<Reliable, ConfigError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ConfigError::Http(e.to_string()))?;
        let primary = endpoint(&client, &self.llm.primary)?;
        let policy = RetryPolicy {
            max_attempts: self.llm.max_attempts.value,
            timeout: Duration::from_secs(self.llm.timeout_secs.value.max(1)),
            ..RetryPolicy::default()
        };
        let mut reliable =
            Reliable::new(primary, policy, process_limiter(self.llm.concurrency.value));
        if let Some(fallback) = &self.llm.fallback {
            reliable = reliable.with_fallback(endpoint(&client, fallback)?);
        }
        Ok(reliable)
    }

    /// Every API key in the configuration, for scrubbing from traces.
    pub fn secrets(&self) -> Vec<String> {
        std::iter::once(&self.llm.primary)
            .chain(self.llm.fallback.iter())
            .filter_map(|e| e.api_key.as_ref().map(|k| k.value.clone()))
            .chain(self.store.api_key.iter().map(|k| k.value.clone()))
            .collect()
    }
}

/// One semaphore for the whole process, sized by the first configuration that asks.
fn process_limiter(concurrency: usize) -> Arc<Semaphore> {
    static LIMITER: OnceLock<Arc<Semaphore>> = OnceLock::new();
    LIMITER
        .get_or_init(|| Arc::new(Semaphore::new(concurrency.max(1))))
        .clone()
}

fn endpoint(
    client: &reqwest::Client,
    settings: &EndpointSettings,
) -> Result<Arc<dyn Provider>, ConfigError> {
    let kind = settings.provider.value;
    let url = settings.url.as_ref().ok_or_else(|| {
        ConfigError::Missing(
            "no LLM endpoint configured: set QUARRY_LLM_URL (an OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1 for llama.cpp or http://127.0.0.1:11434/v1 for Ollama), OPENAI_API_KEY or ANTHROPIC_API_KEY, or `url` under [llm] in quarry.toml".to_string(),
        )
    })?;
    let model = settings.model.as_ref().ok_or_else(|| {
        ConfigError::Missing(format!(
            "no LLM model configured for {}: set QUARRY_LLM_MODEL or `model` under [llm] in quarry.toml",
            url.value
        ))
    })?;
    let key = settings.api_key.as_ref().map(|k| k.value.clone());
    Ok(match kind {
        ProviderKind::OpenAi => {
            if url.value.trim_end_matches('/') == OPENAI_URL && key.is_none() {
                return Err(ConfigError::Missing(
                    "the OpenAI API needs a key: set OPENAI_API_KEY (or `api_key_env` under [llm])"
                        .to_string(),
                ));
            }
            Arc::new(OpenAiProvider::new(
                client.clone(),
                &url.value,
                &model.value,
                key,
            ))
        }
        ProviderKind::Anthropic => {
            let key = key.ok_or_else(|| {
                ConfigError::Missing(
                    "the Anthropic API needs a key: set ANTHROPIC_API_KEY (or `api_key_env` under [llm])"
                        .to_string(),
                )
            })?;
            Arc::new(AnthropicProvider::new(
                client.clone(),
                &url.value,
                &model.value,
                key,
            ))
        }
    })
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        reason: e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    })
}

/// A key shown without revealing it.
pub fn redact(key: &str) -> String {
    format!("(set, {} characters, redacted)", key.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)], root: Option<&Path>) -> Environment {
        Environment {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            user_file: None,
            repo_root: root.map(Path::to_path_buf),
        }
    }

    #[test]
    fn nothing_configured_names_what_to_set() {
        let config = Config::load(&env(&[], None), &FlagOverrides::default()).expect("loads");
        let error = config
            .provider()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("QUARRY_LLM_URL"), "{error}");
        assert!(error.contains("OPENAI_API_KEY"), "{error}");
    }

    #[test]
    fn an_openai_key_alone_selects_the_hosted_api_with_a_default_model() {
        let config = Config::load(
            &env(&[("OPENAI_API_KEY", "sk-abc")], None),
            &FlagOverrides::default(),
        )
        .expect("loads");
        let primary = &config.llm.primary;
        assert_eq!(primary.provider.value, ProviderKind::OpenAi);
        assert_eq!(
            primary.url.as_ref().map(|u| u.value.as_str()),
            Some(OPENAI_URL)
        );
        assert_eq!(
            primary.model.as_ref().map(|m| m.source.clone()),
            Some(Source::Default)
        );
        assert_eq!(config.secrets(), ["sk-abc"]);
        assert!(config.provider().is_ok());
    }

    #[test]
    fn an_anthropic_key_alone_selects_anthropic() {
        let config = Config::load(
            &env(&[("ANTHROPIC_API_KEY", "k-123")], None),
            &FlagOverrides::default(),
        )
        .expect("loads");
        assert_eq!(config.llm.primary.provider.value, ProviderKind::Anthropic);
        assert!(matches!(
            config.llm.primary.provider.source,
            Source::Inferred(_)
        ));
        assert!(config.provider().is_ok());
    }

    #[test]
    fn a_local_url_needs_a_model_but_no_key() {
        let vars = [("QUARRY_LLM_URL", "http://127.0.0.1:8080/v1")];
        let config = Config::load(&env(&vars, None), &FlagOverrides::default()).expect("loads");
        let error = config
            .provider()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("QUARRY_LLM_MODEL"), "{error}");
        let vars = [
            ("QUARRY_LLM_URL", "http://127.0.0.1:8080/v1"),
            ("QUARRY_LLM_MODEL", "smollm2"),
        ];
        let config = Config::load(&env(&vars, None), &FlagOverrides::default()).expect("loads");
        assert!(config.provider().is_ok());
    }

    #[test]
    fn the_store_section_and_environment_select_a_team_server() {
        let local = Config::load(&env(&[], None), &FlagOverrides::default()).expect("loads");
        assert_eq!(local.team_target().expect("valid"), None);

        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join(REPO_FILE),
            "[store]\nurl = \"http://qdrant.internal:6334\"\napi_key_env = \"TEAM_QDRANT\"\ncollection = \"shop\"\nshard_number = 4\nreplication_factor = 2\non_disk = true\ntimeout_secs = 7\n",
        )
        .expect("write");
        let environment = env(&[("TEAM_QDRANT", "q-secret")], Some(dir.path()));
        let config = Config::load(&environment, &FlagOverrides::default()).expect("loads");
        let Some(TeamTarget::Server(server)) = config.team_target().expect("valid") else {
            panic!("a server expected");
        };
        assert_eq!(server.url, "http://qdrant.internal:6334");
        assert_eq!(server.api_key.as_deref(), Some("q-secret"));
        assert_eq!(server.shard_number, Some(4));
        assert_eq!(server.replication_factor, Some(2));
        assert!(server.on_disk);
        assert_eq!(server.timeout, Duration::from_secs(7));
        assert_eq!(
            config.store.collection.as_ref().map(|c| c.value.as_str()),
            Some("shop")
        );
        assert!(config.secrets().contains(&"q-secret".to_string()));

        // The environment wins over the file.
        let environment = env(
            &[
                ("QUARRY_QDRANT_URL", "https://cloud.example:6334"),
                ("QUARRY_QDRANT_API_KEY", "env-key"),
            ],
            Some(dir.path()),
        );
        let config = Config::load(&environment, &FlagOverrides::default()).expect("loads");
        let Some(TeamTarget::Server(server)) = config.team_target().expect("valid") else {
            panic!("a server expected");
        };
        assert_eq!(server.url, "https://cloud.example:6334");
        assert_eq!(server.api_key.as_deref(), Some("env-key"));

        let bad = env(&[("QUARRY_QDRANT_URL", "localhost:6334")], None);
        let config = Config::load(&bad, &FlagOverrides::default()).expect("loads");
        let message = config.team_target().expect_err("refused").to_string();
        assert!(message.contains("store.url"), "{message}");
        assert!(message.contains("QUARRY_QDRANT_URL"), "{message}");
    }

    #[test]
    fn layers_win_in_order_file_env_flag() {
        let dir = tempfile::tempdir().expect("temp dir");
        let user = dir.path().join("user.toml");
        std::fs::write(
            &user,
            "[llm]\nurl = \"http://user:1/v1\"\nmodel = \"user-model\"\ntimeout_secs = 5\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join(REPO_FILE),
            "[llm]\nmodel = \"repo-model\"\napi_key_env = \"TEAM_KEY\"\n[llm.fallback]\nurl = \"http://fb:2\"\nmodel = \"small\"\n[ask]\nk = 5\n",
        )
        .expect("write");
        let mut environment = env(
            &[
                ("QUARRY_LLM_MODEL", "env-model"),
                ("TEAM_KEY", "team-secret"),
            ],
            Some(dir.path()),
        );
        environment.user_file = Some(user.clone());
        let config = Config::load(&environment, &FlagOverrides::default()).expect("loads");
        let primary = &config.llm.primary;
        assert_eq!(
            primary.url.as_ref().map(|u| u.source.clone()),
            Some(Source::File(user))
        );
        assert_eq!(
            primary
                .model
                .as_ref()
                .map(|m| (m.value.as_str(), m.source.clone())),
            Some(("env-model", Source::Env("QUARRY_LLM_MODEL".into())))
        );
        assert_eq!(config.secrets(), ["team-secret"]);
        assert_eq!(config.llm.timeout_secs.value, 5);
        assert_eq!(config.ask.k.value, 5);
        assert!(config.llm.fallback.is_some());

        let flags = FlagOverrides {
            model: Some("flag-model".into()),
            ..FlagOverrides::default()
        };
        let config = Config::load(&environment, &flags).expect("loads");
        assert_eq!(
            config.llm.primary.model.as_ref().map(|m| m.value.as_str()),
            Some("flag-model")
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_one_line_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(REPO_FILE), "[llm]\nmodle = \"x\"\n").expect("write");
        let error = Config::load(&env(&[], Some(dir.path())), &FlagOverrides::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("quarry.toml") && error.contains("modle"),
            "{error}"
        );
        assert!(!error.contains('\n'));

        let vars = [("QUARRY_LLM_PROVIDER", "gemini")];
        let error = Config::load(&env(&vars, None), &FlagOverrides::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("gemini") && error.contains("QUARRY_LLM_PROVIDER"),
            "{error}"
        );
    }
}
