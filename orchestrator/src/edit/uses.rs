//! What the code graph adds to edit prompts. The planner's "uses" section: for every name
//! the request mentions that the repository defines, and for the definitions among the top
//! retrieved hits, every file that references it (exhaustively), as `path:line` lists, so a
//! plan for a rename or a signature change sees each file it must reach, not only those
//! similar to the request. A worker's neighbours: the callers and callees of the functions
//! its task is about.

use quarry_indexer::tokens::{ApproxTokenCounter, TokenCounter};
use quarry_retriever::{ContextPack, GraphRequest, Lookup, SiteHit};

use super::EditError;
use super::index::CodeIndex;

/// Retrieved hits whose definitions are looked up too.
const TOP_HITS: usize = 3;
/// Names looked up at most (request names first).
const MAX_NAMES: usize = 12;
/// Line numbers listed per file before the rest are counted.
const LINES_PER_FILE: usize = 8;

/// Words a request uses as English, never as the names it means.
const STOPWORDS: &[&str] = &[
    "the",
    "and",
    "for",
    "from",
    "into",
    "with",
    "that",
    "this",
    "these",
    "those",
    "every",
    "everywhere",
    "all",
    "any",
    "each",
    "add",
    "adds",
    "new",
    "make",
    "use",
    "uses",
    "using",
    "change",
    "rename",
    "renamed",
    "update",
    "updating",
    "remove",
    "delete",
    "move",
    "call",
    "calls",
    "caller",
    "callers",
    "function",
    "method",
    "parameter",
    "argument",
    "file",
    "files",
    "test",
    "tests",
    "should",
    "must",
    "not",
    "but",
    "its",
    "their",
    "when",
    "where",
    "what",
    "which",
    "also",
    "then",
    "than",
    "so",
    "too",
    "to",
    "of",
    "in",
    "on",
    "at",
    "by",
    "it",
    "be",
    "is",
    "are",
    "as",
    "or",
    "an",
    "a",
    "do",
    "does",
    "keep",
    "pass",
    "return",
    "returns",
    "instead",
    "there",
    "here",
    "one",
    "two",
    "get",
    "set",
    "let",
];

/// One name's definitions and references.
#[derive(Debug, Clone)]
pub struct NameUses {
    /// The name as looked up.
    pub name: String,
    /// Where it is defined.
    pub definitions: Vec<SiteHit>,
    /// Every use.
    pub references: Vec<SiteHit>,
}

impl NameUses {
    /// The files that use the name, in path order, each with its lines.
    fn files(&self) -> Vec<(&str, Vec<u32>)> {
        let mut files: Vec<(&str, Vec<u32>)> = Vec::new();
        for site in &self.references {
            match files.last_mut() {
                Some((path, lines)) if *path == site.path => lines.push(site.line),
                _ => files.push((&site.path, vec![site.line])),
            }
        }
        for (_, lines) in &mut files {
            lines.dedup();
        }
        files
    }
}

/// The section as rendered, and the files it names.
#[derive(Debug, Clone, Default)]
pub struct UsesSection {
    /// The text for the prompt (empty when no name was found).
    pub text: String,
    /// Every file the section names (definitions and uses), deduplicated.
    pub files: Vec<String>,
    /// Its estimated tokens.
    pub tokens: usize,
}

/// The identifiers a request mentions: words that look like code (snake_case, CamelCase,
/// `a::b`, `a.b`, backticked) and other words that are not English filler; which of them
/// the repository defines is for the graph to say.
pub fn request_names(request: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for raw in request.split(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | ':' | '.'))) {
        let token = raw.trim_matches(|c: char| matches!(c, ':' | '.'));
        let starts_well = token
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_');
        if !starts_well || token.len() < 3 {
            continue;
        }
        if STOPWORDS.contains(&token.to_ascii_lowercase().as_str()) {
            continue;
        }
        if !names.iter().any(|n| n == token) {
            names.push(token.to_string());
        }
    }
    names
}

/// The names to look up for a plan: the request's, then the symbols of the top hits that
/// are definitions.
pub fn names_for_plan(request: &str, pack: &ContextPack) -> Vec<String> {
    let mut names = request_names(request);
    for item in pack.items.iter().take(TOP_HITS) {
        if let Some(symbol) = &item.symbol {
            let last = symbol.rsplit([':', '.']).next().unwrap_or(symbol);
            if !last.is_empty() && !names.iter().any(|n| n == last) {
                names.push(last.to_string());
            }
        }
    }
    names.truncate(MAX_NAMES);
    names
}

/// Looks each name up: its definitions, and for those the repository defines, every use.
pub async fn gather(index: &dyn CodeIndex, names: Vec<String>) -> Result<Vec<NameUses>, EditError> {
    let mut found = Vec::new();
    for name in names {
        let lookup = |lookup| GraphRequest {
            lookup,
            name: name.clone(),
            lang: None,
            path: None,
        };
        let definitions = index.graph(lookup(Lookup::Definitions)).await?.sites;
        if definitions.is_empty() {
            continue;
        }
        let references = index.graph(lookup(Lookup::References)).await?.sites;
        found.push(NameUses {
            name,
            definitions,
            references,
        });
    }
    Ok(found)
}

/// Renders the section within `budget` estimated tokens. What is cut first is line numbers
/// beyond the first of each file, then whole files (counted), so the files survive longest.
pub fn render(uses: &[NameUses], budget: usize) -> UsesSection {
    if uses.is_empty() {
        return UsesSection::default();
    }
    let mut files: Vec<String> = Vec::new();
    let mut remember = |path: &str| {
        if !files.iter().any(|f| f == path) {
            files.push(path.to_string());
        }
    };
    for name in uses {
        name.definitions.iter().for_each(|d| remember(&d.path));
        name.files().iter().for_each(|(path, _)| remember(path));
    }
    for detail in [LINES_PER_FILE, 1] {
        let text = render_with(uses, detail, usize::MAX);
        let tokens = ApproxTokenCounter.count(&text);
        if tokens <= budget {
            return UsesSection {
                text,
                files,
                tokens,
            };
        }
    }
    // Even one line per file is too long: list files until the budget runs out.
    let text = render_with(uses, 1, budget);
    let tokens = ApproxTokenCounter.count(&text);
    UsesSection {
        text,
        files,
        tokens,
    }
}

fn render_with(uses: &[NameUses], lines_per_file: usize, budget: usize) -> String {
    let mut out = String::new();
    let counter = ApproxTokenCounter;
    for name in uses {
        let defined: Vec<String> = name
            .definitions
            .iter()
            .take(3)
            .map(|d| {
                let symbol = d.symbol.as_deref().unwrap_or(&d.name);
                format!("{}:{} {symbol}", d.path, d.line)
            })
            .collect();
        let files = name.files();
        out.push_str(&format!(
            "`{}` defined at {}; used in {} file{}:\n",
            name.name,
            defined.join(", "),
            files.len(),
            if files.len() == 1 { "" } else { "s" }
        ));
        for (listed, (path, lines)) in files.iter().enumerate() {
            let shown: Vec<String> = lines
                .iter()
                .take(lines_per_file)
                .map(u32::to_string)
                .collect();
            let more = lines.len().saturating_sub(lines_per_file);
            let mut line = format!("  {path}:{}", shown.join(","));
            if more > 0 {
                line.push_str(&format!(" (+{more})"));
            }
            if quarry_indexer::lang::is_test_path(path) {
                line.push_str(" (test)");
            }
            line.push('\n');
            if counter.count(&out) + counter.count(&line) > budget {
                out.push_str(&format!("  … {} more files\n", files.len() - listed));
                break;
            }
            out.push_str(&line);
        }
    }
    out
}

/// Functions a worker's section covers at most.
const NEIGHBOUR_FUNCTIONS: usize = 6;
/// Callers and callees listed per function.
const NEIGHBOURS_LISTED: usize = 6;

/// The callers and callees of the functions a task is about: those its description names,
/// then those its files define, each as `symbol (path:line)` with where it is called from
/// and what it calls, within `budget` estimated tokens.
pub async fn neighbours(
    index: &dyn CodeIndex,
    description: &str,
    owned: &[String],
    budget: usize,
) -> Result<String, EditError> {
    let request = |lookup, name: &str, path: Option<&str>| GraphRequest {
        lookup,
        name: name.to_string(),
        lang: None,
        path: path.map(str::to_string),
    };
    let mut functions: Vec<SiteHit> = Vec::new();
    let add = |site: SiteHit, functions: &mut Vec<SiteHit>| {
        let callable = matches!(site.kind.as_str(), "function" | "method");
        if callable && !functions.iter().any(|f| f.symbol == site.symbol) {
            functions.push(site);
        }
    };
    for name in request_names(description) {
        for site in index
            .graph(request(Lookup::Definitions, &name, None))
            .await?
            .sites
        {
            add(site, &mut functions);
        }
    }
    for path in owned {
        for site in index
            .graph(request(Lookup::Definitions, "*", Some(path)))
            .await?
            .sites
        {
            add(site, &mut functions);
        }
    }
    functions.truncate(NEIGHBOUR_FUNCTIONS);
    let counter = ApproxTokenCounter;
    let mut out = String::new();
    for function in functions {
        let Some(symbol) = function.symbol.clone() else {
            continue;
        };
        let callers = index
            .graph(request(Lookup::Callers, &function.name, None))
            .await?
            .sites;
        let callees = index
            .graph(request(Lookup::Callees, &symbol, None))
            .await?
            .sites;
        let mut entry = format!("{symbol} ({}:{})\n", function.path, function.line);
        if !callers.is_empty() {
            let listed: Vec<String> = callers
                .iter()
                .take(NEIGHBOURS_LISTED)
                .map(|c| match &c.enclosing {
                    Some(caller) => format!("{}:{} in {caller}", c.path, c.line),
                    None => format!("{}:{}", c.path, c.line),
                })
                .collect();
            let more = callers.len().saturating_sub(NEIGHBOURS_LISTED);
            entry.push_str(&format!("  called from: {}", listed.join("; ")));
            if more > 0 {
                entry.push_str(&format!(" (+{more})"));
            }
            entry.push('\n');
        }
        let mut called: Vec<String> = Vec::new();
        for callee in &callees {
            let Some(target) = callee.targets.first() else {
                continue;
            };
            let line = format!("{} → {}:{}", callee.name, target.path, target.line);
            if !called.contains(&line) {
                called.push(line);
            }
        }
        if !called.is_empty() {
            called.truncate(NEIGHBOURS_LISTED);
            entry.push_str(&format!("  calls: {}\n", called.join("; ")));
        }
        if counter.count(&out) + counter.count(&entry) > budget {
            break;
        }
        out.push_str(&entry);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(path: &str, line: u32) -> SiteHit {
        SiteHit {
            path: path.to_string(),
            line,
            column: 1,
            kind: "call".to_string(),
            name: "load".to_string(),
            symbol: None,
            qualifier: None,
            enclosing: None,
            lang: "rust".to_string(),
            text: String::new(),
            targets: Vec::new(),
        }
    }

    #[test]
    fn request_names_keep_code_words_and_drop_filler() {
        let names = request_names(
            "Rename `load_config` to read_config everywhere, and update Store::open.",
        );
        assert_eq!(names, vec!["load_config", "read_config", "Store::open"]);
    }

    #[test]
    fn files_outlive_line_numbers_under_a_small_budget() {
        let uses = vec![NameUses {
            name: "load".to_string(),
            definitions: vec![site("src/a.rs", 1)],
            references: (0..40)
                .flat_map(|f| (1..20).map(move |l| site(&format!("src/f{f:02}.rs"), l)))
                .collect(),
        }];
        let full = render(&uses, usize::MAX);
        assert!(full.text.contains("src/f00.rs:1,2,3,4,5,6,7,8 (+11)"));
        // A budget that holds one line number per file: every file, fewer numbers.
        let mid = ApproxTokenCounter.count(&render_with(&uses, 1, usize::MAX));
        let small = render(&uses, mid);
        assert!(small.tokens <= mid, "{}", small.tokens);
        assert!(small.text.contains("src/f39.rs:1 (+18)"), "{}", small.text);
        assert!(!small.text.contains("more files"), "{}", small.text);
        let tiny = render(&uses, 60);
        assert!(tiny.text.contains("more files"), "{}", tiny.text);
        // Every file is still named to the schema.
        assert_eq!(tiny.files.len(), 41);
    }
}
