//! The file graph and its ranking: which files use names which other files define, and
//! how central each file is to a set of files of interest (personalised PageRank). The
//! repository map orders files by it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use quarry_indexer::Chunk;
use quarry_indexer::graph::SiteKind;

/// The file graph: an edge from each file to every other file defining a name it
/// references, weighted by how many such names. Names defined in more than `max_definers`
/// files (`new`, `get`, `__init__`) say little about which file a use means and are left
/// out, and so are bare names of one or two letters.
pub(crate) fn file_graph<'c>(
    chunks: impl IntoIterator<Item = &'c Chunk>,
    max_definers: usize,
) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut referenced: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut definers: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for chunk in chunks {
        for site in &chunk.graph.sites {
            if site.kind.is_definition() {
                definers.entry(&site.name).or_default().insert(&chunk.path);
            } else if site.kind != SiteKind::Name || site.name.len() > 2 {
                referenced
                    .entry(&chunk.path)
                    .or_default()
                    .insert(&site.name);
            }
        }
    }
    let mut graph: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (path, names) in referenced {
        for name in names {
            let Some(defined_in) = definers.get(name) else {
                continue;
            };
            if defined_in.len() > max_definers {
                continue;
            }
            for target in defined_in.iter().filter(|t| **t != path) {
                *graph
                    .entry(path.to_string())
                    .or_default()
                    .entry(target.to_string())
                    .or_default() += 1;
            }
        }
    }
    graph
}

/// PageRank over the file graph, personalised: the random walk restarts at the `seeds`
/// (uniformly over every file when there are none). Every file of `files` gets a rank.
pub(crate) fn file_rank(
    files: &[String],
    graph: &BTreeMap<String, BTreeMap<String, usize>>,
    seeds: &[String],
) -> HashMap<String, f64> {
    const DAMPING: f64 = 0.85;
    const ROUNDS: usize = 30;
    let index: HashMap<&str, usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.as_str(), i))
        .collect();
    let n = files.len();
    if n == 0 {
        return HashMap::new();
    }
    let mut restart = vec![0.0; n];
    let seeded: Vec<usize> = seeds
        .iter()
        .filter_map(|s| index.get(s.as_str()).copied())
        .collect();
    if seeded.is_empty() {
        restart.iter_mut().for_each(|r| *r = 1.0 / n as f64);
    } else {
        for &i in &seeded {
            restart[i] += 1.0 / seeded.len() as f64;
        }
    }
    let edges: Vec<Vec<(usize, f64)>> = files
        .iter()
        .map(|f| {
            let out = graph.get(f);
            let total: usize = out.map_or(0, |o| o.values().sum());
            out.into_iter()
                .flatten()
                .filter_map(|(to, w)| Some((*index.get(to.as_str())?, *w as f64 / total as f64)))
                .collect()
        })
        .collect();
    let mut rank = restart.clone();
    for _ in 0..ROUNDS {
        let mut next: Vec<f64> = restart.iter().map(|r| (1.0 - DAMPING) * r).collect();
        let mut dangling = 0.0;
        for (from, out) in edges.iter().enumerate() {
            if out.is_empty() {
                dangling += rank[from];
                continue;
            }
            for &(to, share) in out {
                next[to] += DAMPING * rank[from] * share;
            }
        }
        for (i, r) in next.iter_mut().enumerate() {
            *r += DAMPING * dangling * restart[i];
        }
        rank = next;
    }
    files.iter().cloned().zip(rank).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_flows_from_the_seeds_to_what_they_use() {
        let files: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let mut graph: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        graph.entry("a".into()).or_default().insert("b".into(), 3);
        graph.entry("b".into()).or_default().insert("c".into(), 1);
        graph.entry("d".into()).or_default().insert("c".into(), 1);
        let rank = file_rank(&files, &graph, &["a".to_string()]);
        assert!(
            rank["a"] > rank["b"] && rank["b"] > rank["c"] && rank["c"] > rank["d"],
            "{rank:?}"
        );
        let total: f64 = rank.values().sum();
        assert!((total - 1.0).abs() < 1e-6, "{total}");
    }
}
