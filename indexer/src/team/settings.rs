//! The `[store]` section: whether the index is local or a team index on a Qdrant server
//! (or an `edge://` directory), and how to reach it. Parsed here, without the LLM settings,
//! so every command that opens an index reads only this section.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::TeamTarget;
use crate::config::{ConfigError, ConfigFiles, Environment, Origin, Setting};

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

/// `[store]` as written in a file.
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

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            url: None,
            api_key: None,
            collection: None,
            shard_number: None,
            replication_factor: None,
            on_disk: Setting::default_value(false),
            timeout_secs: Setting::default_value(30),
        }
    }
}

impl StoreSettings {
    /// The `[store]` settings of `env`: its files, then `QUARRY_QDRANT_URL`,
    /// `QUARRY_QDRANT_API_KEY` and `QUARRY_QDRANT_COLLECTION`.
    pub fn load(env: &Environment) -> Result<Self, ConfigError> {
        Self::from_files(&ConfigFiles::read(env)?, env)
    }

    /// [`StoreSettings::load`] from files already read.
    pub fn from_files(files: &ConfigFiles, env: &Environment) -> Result<Self, ConfigError> {
        let mut store = StoreSettings::default();
        for (path, f) in files.section::<FileStore>("store")? {
            let source = Origin::File(path.to_path_buf());
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
                store.api_key = Some(Setting::new(key.to_string(), Origin::Env(var.clone())));
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
        }
        for (var, slot) in [
            ("QUARRY_QDRANT_URL", &mut store.url),
            ("QUARRY_QDRANT_API_KEY", &mut store.api_key),
            ("QUARRY_QDRANT_COLLECTION", &mut store.collection),
        ] {
            if let Some(value) = env.var(var) {
                *slot = Some(Setting::new(
                    value.to_string(),
                    Origin::Env(var.to_string()),
                ));
            }
        }
        if store.timeout_secs.value == 0 {
            return Err(ConfigError::Invalid {
                key: "store.timeout_secs",
                value: "0".into(),
                origin: store.timeout_secs.source.clone(),
                expected: "must be at least 1",
            });
        }
        Ok(store)
    }

    /// The team store configured (`[store] url` or `QUARRY_QDRANT_URL`), with its layout and
    /// key; `None` for the local index.
    pub fn team_target(&self) -> Result<Option<TeamTarget>, ConfigError> {
        let Some(url) = &self.url else {
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
                server.api_key = self.api_key.as_ref().map(|k| k.value.clone());
                server.shard_number = self.shard_number.as_ref().map(|s| s.value);
                server.replication_factor = self.replication_factor.as_ref().map(|s| s.value);
                server.on_disk = self.on_disk.value;
                server.timeout = Duration::from_secs(self.timeout_secs.value);
                TeamTarget::Server(server)
            }
            edge => edge,
        }))
    }
}
