//! The `--path` filter: a glob when it has glob characters, else a file or folder prefix.

use globset::{GlobBuilder, GlobMatcher};

use crate::SearchError;

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
