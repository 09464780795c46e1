//! The `[search]` section: how searches rank, beyond what the index holds.
//!
//! Only one key so far, `reranker`: a cross-encoder model name (fastembed's reranker model
//! codes, `QUARRY_RERANKER` overrides). Off by default. A configured reranker that cannot be
//! loaded (offline, a build without downloads) never fails a search: it runs on the ranking
//! signals alone and says so once.

use quarry_indexer::config::{ConfigError, ConfigFiles, Environment, Origin, Setting};
use serde::{Deserialize, Serialize};

/// `[search]` settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SearchSettings {
    /// The cross-encoder re-ranking the top of hybrid searches; none by default.
    pub reranker: Option<Setting<String>>,
}

/// `[search]` as written in a file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSearch {
    reranker: Option<String>,
}

impl SearchSettings {
    /// The `[search]` settings of `env`'s files, then `QUARRY_RERANKER` (empty turns it off).
    pub fn from_files(files: &ConfigFiles, env: &Environment) -> Result<Self, ConfigError> {
        let mut settings = SearchSettings::default();
        for (path, f) in files.section::<FileSearch>("search")? {
            if let Some(name) = f.reranker {
                settings.reranker = Some(Setting::new(name, Origin::File(path.to_path_buf())));
            }
        }
        if let Some(name) = env.vars.get("QUARRY_RERANKER") {
            settings.reranker = Some(Setting::new(
                name.to_string(),
                Origin::Env("QUARRY_RERANKER".to_string()),
            ));
        }
        settings.reranker = settings.reranker.filter(|r| !r.value.trim().is_empty());
        Ok(settings)
    }

    /// [`SearchSettings::from_files`] for `env`; a file that cannot be read or parsed reads as
    /// no settings (searching never depends on this section).
    pub fn load_lenient(env: &Environment) -> Self {
        ConfigFiles::read(env)
            .and_then(|files| Self::from_files(&files, env))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with(file: Option<&str>, var: Option<&str>) -> (tempfile::TempDir, Environment) {
        let dir = tempfile::tempdir().expect("temp dir");
        if let Some(text) = file {
            std::fs::write(dir.path().join(quarry_indexer::config::REPO_FILE), text)
                .expect("write quarry.toml");
        }
        let mut env = Environment {
            repo_root: Some(dir.path().to_path_buf()),
            ..Environment::default()
        };
        if let Some(value) = var {
            env.vars
                .insert("QUARRY_RERANKER".to_string(), value.to_string());
        }
        (dir, env)
    }

    #[test]
    fn the_reranker_is_off_by_default() {
        let (_dir, env) = env_with(None, None);
        assert_eq!(SearchSettings::load_lenient(&env).reranker, None);
    }

    #[test]
    fn a_file_names_it_and_the_environment_overrides_or_clears_it() {
        let file = "[search]\nreranker = \"jinaai/jina-reranker-v1-turbo-en\"\n";
        let (_dir, env) = env_with(Some(file), None);
        let settings = SearchSettings::load_lenient(&env);
        assert_eq!(
            settings.reranker.map(|r| r.value).as_deref(),
            Some("jinaai/jina-reranker-v1-turbo-en")
        );
        let (_dir, env) = env_with(Some(file), Some(""));
        assert_eq!(SearchSettings::load_lenient(&env).reranker, None);
    }

    #[test]
    fn a_broken_file_reads_as_no_settings() {
        let (_dir, env) = env_with(Some("[search]\nrerank = 1\n"), None);
        assert_eq!(
            SearchSettings::load_lenient(&env),
            SearchSettings::default()
        );
    }
}
