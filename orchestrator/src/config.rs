//! The LLM-side configuration: the `[llm]`, `[ask]` and `[edit]` sections, and [`Config`],
//! every section together for the commands that call an LLM (`ask`, `edit`, `config`).
//!
//! Layering, origins and the files are [`quarry_indexer::config`]'s; `[store]` is the
//! indexer's ([`StoreSettings`]), so commands that only open an index never read (or fail
//! on) the sections here. Environment variables of these sections: `QUARRY_LLM_URL`,
//! `QUARRY_LLM_MODEL`, `QUARRY_LLM_PROVIDER`, `OPENAI_API_KEY`, `ANTHROPIC_API_KEY`. Nothing
//! here touches the network; turning a configuration into a provider is
//! [`Config::provider`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

pub use quarry_indexer::config::{
    ConfigError, ConfigFiles, Environment, Origin, REPO_FILE, Setting,
};
pub use quarry_indexer::team::TeamTarget;
pub use quarry_indexer::team::settings::StoreSettings;
pub use quarry_retriever::settings::SearchSettings;

use crate::llm::Provider;
use crate::llm::anthropic::AnthropicProvider;
use crate::llm::openai::OpenAiProvider;
use crate::llm::reliable::{Reliable, RetryPolicy};

/// The OpenAI API, used when only `OPENAI_API_KEY` is set.
const OPENAI_URL: &str = "https://api.openai.com/v1";
/// The Anthropic API.
const ANTHROPIC_URL: &str = "https://api.anthropic.com";
/// Models used when a hosted API is configured without one.
const OPENAI_DEFAULT_MODEL: &str = "gpt-4o-mini";
const ANTHROPIC_DEFAULT_MODEL: &str = "claude-3-5-haiku-latest";

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
    /// Files of up to this many lines may be answered as a whole new file (0: never).
    pub whole_file_lines: Setting<usize>,
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
    /// How searches rank (`[search]`).
    pub search: SearchSettings,
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
    whole_file_lines: Option<usize>,
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
        let source = || Origin::File(path.to_path_buf());
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
            self.api_key = Some(Setting::new(key.to_string(), Origin::Env(var.clone())));
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
                Origin::Inferred("an endpoint URL is set".into()),
            ),
            None if env.var("ANTHROPIC_API_KEY").is_some()
                && env.var("OPENAI_API_KEY").is_none() =>
            {
                Setting::new(
                    ProviderKind::Anthropic,
                    Origin::Inferred("ANTHROPIC_API_KEY is set".into()),
                )
            }
            None => Setting::new(ProviderKind::OpenAi, Origin::Default),
        };
        let variable = provider.value.key_variable();
        let api_key = self.api_key.or_else(|| {
            env.var(variable)
                .map(|key| Setting::new(key.to_string(), Origin::Env(variable.to_string())))
        });
        let url = self.url.or_else(|| match provider.value {
            ProviderKind::Anthropic => {
                Some(Setting::new(ANTHROPIC_URL.to_string(), Origin::Default))
            }
            ProviderKind::OpenAi if api_key.is_some() => Some(Setting::new(
                OPENAI_URL.to_string(),
                Origin::Inferred(format!("{variable} is set")),
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
            hosted_default.map(|model| Setting::new(model.to_string(), Origin::Default))
        });
        Ok(EndpointSettings {
            provider,
            url,
            model,
            api_key,
        })
    }
}

/// Refuses 0 for a setting that needs at least 1.
fn at_least_one(key: &'static str, value: usize, origin: &Origin) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::Invalid {
            key,
            value: "0".into(),
            origin: origin.clone(),
            expected: "must be at least 1",
        });
    }
    Ok(())
}

/// Sets `slot` from a file's value, when the file has one.
fn set_from<T: Clone>(slot: &mut Setting<T>, value: &Option<T>, path: &Path) {
    if let Some(value) = value {
        *slot = Setting::new(value.clone(), Origin::File(path.to_path_buf()));
    }
}

impl AskSettings {
    fn from_files(files: &ConfigFiles) -> Result<Self, ConfigError> {
        let mut ask = AskSettings {
            k: Setting::default_value(12),
            context_tokens: Setting::default_value(3000),
            answer_tokens: Setting::default_value(512),
        };
        for (path, f) in files.section::<FileAsk>("ask")? {
            set_from(&mut ask.k, &f.k, path);
            set_from(&mut ask.context_tokens, &f.context_tokens, path);
            set_from(&mut ask.answer_tokens, &f.answer_tokens, path);
        }
        at_least_one("ask.k", ask.k.value, &ask.k.source)?;
        Ok(ask)
    }
}

impl EditSettings {
    fn from_files(files: &ConfigFiles) -> Result<Self, ConfigError> {
        let mut edit = EditSettings {
            check: None,
            check_timeout_secs: Setting::default_value(600),
            jobs: Setting::default_value(2),
            fix_rounds: Setting::default_value(2),
            max_calls: Setting::default_value(60),
            max_tokens: Setting::default_value(400_000),
            max_seconds: Setting::default_value(1800),
            context_tokens: Setting::default_value(1500),
            answer_tokens: Setting::default_value(2048),
            whole_file_lines: Setting::default_value(crate::edit::apply::DEFAULT_WHOLE_FILE_LINES),
        };
        for (path, e) in files.section::<FileEdit>("edit")? {
            if let Some(v) = &e.check {
                edit.check = Some(Setting::new(v.clone(), Origin::File(path.to_path_buf())));
            }
            set_from(&mut edit.check_timeout_secs, &e.check_timeout_secs, path);
            set_from(&mut edit.max_tokens, &e.max_tokens, path);
            set_from(&mut edit.max_seconds, &e.max_seconds, path);
            set_from(&mut edit.jobs, &e.jobs, path);
            set_from(&mut edit.fix_rounds, &e.fix_rounds, path);
            set_from(&mut edit.max_calls, &e.max_calls, path);
            set_from(&mut edit.context_tokens, &e.context_tokens, path);
            set_from(&mut edit.answer_tokens, &e.answer_tokens, path);
            set_from(&mut edit.whole_file_lines, &e.whole_file_lines, path);
        }
        at_least_one("edit.jobs", edit.jobs.value, &edit.jobs.source)?;
        at_least_one(
            "edit.max_calls",
            edit.max_calls.value as usize,
            &edit.max_calls.source,
        )?;
        Ok(edit)
    }
}

impl LlmSettings {
    fn from_files(
        files: &ConfigFiles,
        env: &Environment,
        flags: &FlagOverrides,
    ) -> Result<Self, ConfigError> {
        let mut primary = RawEndpoint::default();
        let mut fallback: Option<RawEndpoint> = None;
        let mut timeout_secs = Setting::default_value(120);
        let mut max_attempts = Setting::default_value(4);
        let mut concurrency = Setting::default_value(4);
        for (path, llm) in files.section::<FileLlm>("llm")? {
            primary.merge_file(&llm.endpoint, path, env);
            if let Some(fb) = &llm.fallback {
                fallback
                    .get_or_insert_with(RawEndpoint::default)
                    .merge_file(fb, path, env);
            }
            set_from(&mut timeout_secs, &llm.timeout_secs, path);
            set_from(&mut max_attempts, &llm.max_attempts, path);
            set_from(&mut concurrency, &llm.concurrency, path);
        }
        for (var, slot) in [
            ("QUARRY_LLM_PROVIDER", &mut primary.provider),
            ("QUARRY_LLM_URL", &mut primary.url),
            ("QUARRY_LLM_MODEL", &mut primary.model),
        ] {
            if let Some(value) = env.var(var) {
                *slot = Some(Setting::new(
                    value.to_string(),
                    Origin::Env(var.to_string()),
                ));
            }
        }
        for (flag, value, slot) in [
            ("--llm-provider", &flags.provider, &mut primary.provider),
            ("--llm-url", &flags.url, &mut primary.url),
            ("--llm-model", &flags.model, &mut primary.model),
        ] {
            if let Some(value) = value {
                *slot = Some(Setting::new(value.clone(), Origin::Flag(flag.to_string())));
            }
        }
        at_least_one(
            "llm.max_attempts",
            max_attempts.value as usize,
            &max_attempts.source,
        )?;
        at_least_one("llm.concurrency", concurrency.value, &concurrency.source)?;
        Ok(LlmSettings {
            primary: primary.resolve(env)?,
            fallback: fallback.map(|f| f.resolve(env)).transpose()?,
            timeout_secs,
            max_attempts,
            concurrency,
        })
    }
}

impl Config {
    /// Loads the configuration for the repository in `env`, with `flags` on top.
    pub fn load(env: &Environment, flags: &FlagOverrides) -> Result<Config, ConfigError> {
        let files = ConfigFiles::read(env)?;
        files.check_sections(&["llm", "ask", "edit", "store", "search"])?;
        let store = StoreSettings::from_files(&files, env)?;
        let search = SearchSettings::from_files(&files, env)?;
        let ask = AskSettings::from_files(&files)?;
        let edit = EditSettings::from_files(&files)?;
        let llm = LlmSettings::from_files(&files, env, flags)?;
        Ok(Config {
            llm,
            ask,
            edit,
            store,
            search,
            files: files.looked_at,
        })
    }

    /// The team store configured (`[store] url` or `QUARRY_QDRANT_URL`), with its layout and
    /// key; `None` for the local index.
    pub fn team_target(&self) -> Result<Option<TeamTarget>, ConfigError> {
        self.store.team_target()
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
            Some(Origin::Default)
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
            Origin::Inferred(_)
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
            Some(Origin::File(user))
        );
        assert_eq!(
            primary
                .model
                .as_ref()
                .map(|m| (m.value.as_str(), m.source.clone())),
            Some(("env-model", Origin::Env("QUARRY_LLM_MODEL".into())))
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
