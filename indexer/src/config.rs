//! Layered configuration, section by section.
//!
//! Layers, later ones winning: built-in defaults, the user's `~/.config/quarry/config.toml`
//! (`$XDG_CONFIG_HOME` honoured), the repository's `quarry.toml`, environment variables,
//! then command-line flags. Every value keeps its origin ([`Setting`]) so `quarry config`
//! can say where it came from.
//!
//! Each section (`[store]`, `[llm]`, `[ask]`, `[edit]`) is parsed on its own by the crate
//! that uses it, from the same [`ConfigFiles`]: a command reads only the sections it needs,
//! so a mistake under `[llm]` never stops `index`, `search` or `status`. The `[store]`
//! section is the indexer's ([`crate::team::settings`]); the others are the orchestrator's.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The repository's configuration file name.
pub const REPO_FILE: &str = "quarry.toml";

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
        origin: Origin,
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
pub enum Origin {
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

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => write!(f, "default"),
            Origin::Inferred(how) => write!(f, "inferred: {how}"),
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Env(name) => write!(f, "env {name}"),
            Origin::Flag(name) => write!(f, "flag {name}"),
        }
    }
}

/// A value and its origin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: Origin,
}

impl<T> Setting<T> {
    /// `value`, from `source`.
    pub fn new(value: T, source: Origin) -> Self {
        Setting { value, source }
    }

    /// A built-in default.
    pub fn default_value(value: T) -> Self {
        Setting::new(value, Origin::Default)
    }
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

    /// A variable's value, unless unset or blank.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}

/// The configuration files of an [`Environment`], read and parsed as TOML, lowest layer
/// first; their sections are typed by whoever reads them ([`ConfigFiles::section`]).
#[derive(Debug, Clone, Default)]
pub struct ConfigFiles {
    /// Every file looked at, and whether it exists.
    pub looked_at: Vec<(PathBuf, bool)>,
    tables: Vec<(PathBuf, toml::Table)>,
}

impl ConfigFiles {
    /// Reads the user's file and the repository's `quarry.toml`, where they exist.
    pub fn read(env: &Environment) -> Result<Self, ConfigError> {
        let mut files = ConfigFiles::default();
        let candidates = env
            .user_file
            .iter()
            .cloned()
            .chain(env.repo_root.iter().map(|root| root.join(REPO_FILE)));
        for path in candidates {
            let exists = path.is_file();
            files.looked_at.push((path.clone(), exists));
            if exists {
                let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::File {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                let table: toml::Table =
                    toml::from_str(&text).map_err(|e| file_error(&path, &e))?;
                files.tables.push((path, table));
            }
        }
        Ok(files)
    }

    /// Section `name` of every file that has it, lowest layer first, typed as `T` (whose
    /// unknown keys are errors naming the file).
    pub fn section<T: DeserializeOwned>(&self, name: &str) -> Result<Vec<(&Path, T)>, ConfigError> {
        let mut out = Vec::new();
        for (path, table) in &self.tables {
            if let Some(value) = table.get(name) {
                let typed: T = value.clone().try_into().map_err(|e| file_error(path, &e))?;
                out.push((path.as_path(), typed));
            }
        }
        Ok(out)
    }

    /// Refuses a section no part of Quarry reads (a typo like `[stor]`).
    pub fn check_sections(&self, known: &[&str]) -> Result<(), ConfigError> {
        for (path, table) in &self.tables {
            if let Some(unknown) = table.keys().find(|key| !known.contains(&key.as_str())) {
                return Err(ConfigError::File {
                    path: path.clone(),
                    reason: format!(
                        "unknown section `{unknown}`, expected one of {}",
                        known.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }
}

fn file_error(path: &Path, error: &impl fmt::Display) -> ConfigError {
    ConfigError::File {
        path: path.to_path_buf(),
        reason: error
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    }
}
