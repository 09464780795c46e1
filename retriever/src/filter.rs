//! What a search keeps besides the best chunks: the `--path` filter (a glob when it has
//! glob characters, else a file or folder prefix) and the `--tests` scope.

use globset::{GlobBuilder, GlobMatcher};
use quarry_indexer::Chunk;
use quarry_indexer::lang::is_test_path;

use crate::{SearchError, SearchRequest, TestScope};

/// The filters of one search, applied to candidates after ranking (the stores filter by
/// language and kind themselves).
pub(crate) struct ChunkFilter {
    path: Option<PathFilter>,
    tests: TestScope,
}

impl ChunkFilter {
    /// The request's `path` and `tests` filters.
    pub(crate) fn new(request: &SearchRequest) -> Result<Self, SearchError> {
        Ok(ChunkFilter {
            path: request.path.as_deref().map(PathFilter::new).transpose()?,
            tests: request.tests,
        })
    }

    /// A filter that keeps everything.
    pub(crate) fn none() -> Self {
        ChunkFilter {
            path: None,
            tests: TestScope::Include,
        }
    }

    /// Whether a chunk of this file may pass: false only when no chunk of it can, so a
    /// source need not read the chunks of a file the filter rejects.
    pub(crate) fn may_keep_path(&self, path: &str) -> bool {
        self.path.as_ref().is_none_or(|f| f.matches(path))
            && (self.tests != TestScope::Exclude || !is_test_path(path))
    }

    /// Whether the chunk passes.
    pub(crate) fn keeps(&self, chunk: &Chunk) -> bool {
        self.path.as_ref().is_none_or(|f| f.matches(&chunk.path))
            && self.tests.keeps(chunk.is_test())
    }
}

/// Which paths a search keeps.
pub(crate) enum PathFilter {
    Glob(GlobMatcher),
    Prefix(String),
}

impl PathFilter {
    pub(crate) fn new(pattern: &str) -> Result<Self, SearchError> {
        let pattern = pattern.trim_start_matches("./");
        if !pattern.contains(['*', '?', '[', '{']) {
            return Ok(PathFilter::Prefix(
                pattern.trim_end_matches('/').to_string(),
            ));
        }
        let glob = GlobBuilder::new(pattern)
            .literal_separator(false)
            .build()
            .map_err(|e| SearchError::BadGlob {
                glob: pattern.to_string(),
                reason: e.kind().to_string(),
            })?;
        Ok(PathFilter::Glob(glob.compile_matcher()))
    }

    pub(crate) fn matches(&self, path: &str) -> bool {
        match self {
            PathFilter::Glob(glob) => glob.is_match(path),
            PathFilter::Prefix(prefix) => {
                prefix.is_empty()
                    || path == prefix
                    || path
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_prefixes() {
        let glob = PathFilter::new("*.py").unwrap();
        assert!(glob.matches("notes/cli.py"));
        assert!(!glob.matches("src/lib.rs"));
        let folder = PathFilter::new("src/store/").unwrap();
        assert!(folder.matches("src/store/mod.rs"));
        assert!(!folder.matches("src/storefront.rs"));
        let under = PathFilter::new("src/**").unwrap();
        assert!(under.matches("src/a/b.rs"));
        assert!(matches!(
            PathFilter::new("src/[a"),
            Err(SearchError::BadGlob { .. })
        ));
    }
}
