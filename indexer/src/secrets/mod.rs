//! Secrets: which files are secrets, and which strings inside ordinary files are.
//!
//! Two decisions live here, one rule set each:
//!
//! - [`is_secret_file_name`] and [`is_secret_content`]: a file that *is* a secret (a key, a
//!   credentials file, a kubeconfig, a Terraform state, a service-account key) is skipped by
//!   the walk and never sent anywhere.
//! - [`find`] and [`redact`]: a secret *inside* an ordinary file (an AWS key in `config.py`, a
//!   token in a client module, a password in `docker-compose.yml`) is replaced in the text
//!   Quarry stores, embeds, shows, serves and sends, by `«redacted: RULE»`; the rest of the
//!   file stays searchable.
//!
//! Redaction keeps every line where it was: a secret spanning lines (a key block) becomes its
//! marker followed by as many line breaks as it held, so chunk spans and citations still
//! point at the file's real lines. The formats are data ([`rules`]): a keyword prefilter
//! decides which patterns run on a text at all, so a file with no secret-like word costs one
//! pass of a multi-literal search.

mod rules;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use regex::Regex;

use rules::{Check, Rule};

/// Where a secret was found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule that matched (`aws-access-key`).
    pub rule: &'static str,
    /// Byte offset of the secret's first byte.
    pub start: usize,
    /// Byte offset one past its last byte.
    pub end: usize,
}

/// A text with its secrets replaced, and how many of each rule were replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted<'a> {
    /// The text, borrowed when nothing was found.
    pub text: Cow<'a, str>,
    /// Secrets replaced, by rule.
    pub counts: BTreeMap<String, u32>,
}

/// What stands in a text where a secret of `rule` was.
pub fn marker(rule: &str) -> String {
    format!("«redacted: {rule}»")
}

/// What kind of text is scanned: code (where an unquoted `token = value` is a variable, not
/// a secret) or data (configuration, YAML, INI, env lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// Source code of a language with a grammar.
    Code,
    /// Anything else.
    Data,
}

impl TextKind {
    /// The kind of the file at `path`, by its language.
    pub fn of_path(path: &str) -> TextKind {
        match crate::lang::detect(path) {
            crate::lang::Language::Code(_) => TextKind::Code,
            _ => TextKind::Data,
        }
    }
}

struct Compiled {
    rules: Vec<(Rule, Regex)>,
    prefilter: AhoCorasick,
    /// For each prefilter pattern, the rules it lets run.
    rules_of_keyword: Vec<Vec<usize>>,
}

static COMPILED: LazyLock<Compiled> = LazyLock::new(|| {
    let rules: Vec<(Rule, Regex)> = rules::rules()
        .into_iter()
        .map(|rule| {
            // The patterns are constants of this crate, covered by its tests.
            let regex = Regex::new(rule.pattern).unwrap_or_else(|e| {
                panic!("secret rule {} does not compile: {e}", rule.id);
            });
            (rule, regex)
        })
        .collect();
    let mut keywords: Vec<&'static str> = Vec::new();
    let mut rules_of_keyword: Vec<Vec<usize>> = Vec::new();
    for (index, (rule, _)) in rules.iter().enumerate() {
        for keyword in rule.keywords {
            match keywords.iter().position(|k| *k == *keyword) {
                Some(at) => rules_of_keyword[at].push(index),
                None => {
                    keywords.push(keyword);
                    rules_of_keyword.push(vec![index]);
                }
            }
        }
    }
    let prefilter = AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(&keywords)
        .unwrap_or_else(|e| panic!("secret keywords do not build: {e}"));
    Compiled {
        rules,
        prefilter,
        rules_of_keyword,
    }
});

/// Every secret in `text`, in text order, none overlapping another (where two rules claim
/// overlapping text, the more specific rule wins).
pub fn find(text: &str, kind: TextKind) -> Vec<Finding> {
    let compiled = &*COMPILED;
    let mut active = vec![false; compiled.rules.len()];
    let mut any = false;
    for found in compiled.prefilter.find_overlapping_iter(text) {
        for &rule in &compiled.rules_of_keyword[found.pattern().as_usize()] {
            active[rule] = true;
            any = true;
        }
    }
    if !any {
        return Vec::new();
    }
    let mut claimed: Vec<Finding> = Vec::new();
    for (index, (rule, regex)) in compiled.rules.iter().enumerate() {
        if !active[index] || (rule.data_only && kind == TextKind::Code) {
            continue;
        }
        for captures in regex.captures_iter(text) {
            let Some(secret) = rule.groups.iter().find_map(|&g| captures.get(g)) else {
                continue;
            };
            if !passes(rule.check, secret.as_str()) {
                continue;
            }
            let overlaps = claimed
                .iter()
                .any(|f| f.start < secret.end() && secret.start() < f.end);
            if !overlaps {
                claimed.push(Finding {
                    rule: rule.id,
                    start: secret.start(),
                    end: secret.end(),
                });
            }
        }
    }
    claimed.sort_by_key(|f| f.start);
    claimed
}

/// `text` with every secret replaced by its [`marker`], line breaks kept.
pub fn redact(text: &str, kind: TextKind) -> Redacted<'_> {
    let findings = find(text, kind);
    if findings.is_empty() {
        return Redacted {
            text: Cow::Borrowed(text),
            counts: BTreeMap::new(),
        };
    }
    let mut out = String::with_capacity(text.len());
    let mut counts = BTreeMap::new();
    let mut at = 0;
    for finding in &findings {
        out.push_str(&text[at..finding.start]);
        out.push_str(&marker(finding.rule));
        let secret = &text[finding.start..finding.end];
        for _ in 0..secret.matches('\n').count() {
            out.push('\n');
        }
        *counts.entry(finding.rule.to_string()).or_insert(0) += 1;
        at = finding.end;
    }
    out.push_str(&text[at..]);
    Redacted {
        text: Cow::Owned(out),
        counts,
    }
}

/// An edit a model wrote against the redacted view of `original` (its SEARCH and REPLACE may
/// hold markers where the model saw them), made to apply to the real text: each marker in
/// SEARCH becomes the secret it stands for, found by where SEARCH lies in the redacted text,
/// and each marker in REPLACE the secret of the same rule in SEARCH, in order. `None` when
/// neither holds a marker, SEARCH does not occur exactly once in the redacted text, or
/// REPLACE names a secret SEARCH does not hold (a model cannot conjure one).
pub fn unredact_edit(
    original: &str,
    kind: TextKind,
    search: &str,
    replace: &str,
) -> Option<(String, String)> {
    if !search.contains("«redacted: ") && !replace.contains("«redacted: ") {
        return None;
    }
    let findings = find(original, kind);
    // The redacted text, and where each finding's stand-in lies in it.
    let mut redacted = String::with_capacity(original.len());
    let mut stand_ins = Vec::with_capacity(findings.len());
    let mut at = 0;
    for finding in &findings {
        redacted.push_str(&original[at..finding.start]);
        let secret = &original[finding.start..finding.end];
        let stand_in = format!(
            "{}{}",
            marker(finding.rule),
            "\n".repeat(secret.matches('\n').count())
        );
        stand_ins.push((redacted.len(), stand_in.clone(), finding.rule, secret));
        redacted.push_str(&stand_in);
        at = finding.end;
    }
    redacted.push_str(&original[at..]);
    let mut matches = redacted.match_indices(search);
    let (offset, _) = matches.next()?;
    if matches.next().is_some() {
        return None;
    }
    let end = offset + search.len();
    let inside: Vec<&(usize, String, &str, &str)> = stand_ins
        .iter()
        .filter(|(start, _, rule, _)| *start >= offset && start + marker(rule).len() <= end)
        .collect();
    let mut real_search = String::with_capacity(search.len());
    let mut cursor = offset;
    for (start, stand_in, _, secret) in &inside {
        real_search.push_str(&redacted[cursor..*start]);
        real_search.push_str(secret);
        // The stand-in's kept line breaks are the secret's own, even past SEARCH's end.
        cursor = (start + stand_in.len()).min(end);
    }
    real_search.push_str(&redacted[cursor..end]);
    // REPLACE: the k-th marker of a rule is the k-th secret of that rule in SEARCH.
    let mut used: BTreeMap<&str, usize> = BTreeMap::new();
    let mut real_replace = String::with_capacity(replace.len());
    let mut rest = replace;
    while let Some(begin) = rest.find("«redacted: ") {
        let close = rest[begin..].find('»')? + begin;
        let rule = &rest[begin + "«redacted: ".len()..close];
        let nth = used.entry(rule).or_insert(0);
        let (_, stand_in, _, secret) = inside.iter().filter(|(_, _, r, _)| *r == rule).nth(*nth)?;
        *nth += 1;
        real_replace.push_str(&rest[..begin]);
        real_replace.push_str(secret);
        // The line breaks the stand-in kept belong to the secret.
        let after = &rest[close + '»'.len_utf8()..];
        let padding = stand_in.len() - marker(rule).len();
        rest = if after.len() >= padding && after[..padding].bytes().all(|b| b == b'\n') {
            &after[padding..]
        } else {
            after
        };
    }
    real_replace.push_str(rest);
    Some((real_search, real_replace))
}

/// [`redact`] for text bound for a model or an agent, whatever its origin: the text alone.
pub fn redact_outgoing(text: &str) -> Cow<'_, str> {
    redact(text, TextKind::Data).text
}

fn passes(check: Check, secret: &str) -> bool {
    match check {
        Check::Format => true,
        Check::KeyBlock => longest_base64_run(secret) >= 32,
        Check::Entropy(min) => shannon_entropy(secret) >= min,
        Check::Assigned => looks_like_assigned_secret(secret),
    }
}

fn longest_base64_run(text: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=') {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

/// Bits of entropy per character of `text`.
fn shannon_entropy(text: &str) -> f32 {
    let mut counts = [0u32; 256];
    for b in text.bytes() {
        counts[b as usize] += 1;
    }
    let len = text.len() as f32;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f32 / len;
            -p * p.log2()
        })
        .sum()
}

/// Words that stand where a value will go, not a value.
const PLACEHOLDERS: &[&str] = &[
    "xxxx",
    "****",
    "....",
    "example",
    "placeholder",
    "changeme",
    "change_me",
    "change-me",
    "your_",
    "your-",
    "yourpassword",
    "redacted",
    "%s",
    "%d",
    "%(",
];

/// Whether a value assigned to a secret-looking name is a secret rather than a placeholder,
/// a reference, a format string or code: at least six characters, no white space, no code
/// punctuation, at least two character classes and some entropy.
fn looks_like_assigned_secret(value: &str) -> bool {
    if value.len() < 6 || value.chars().any(char::is_whitespace) {
        return false;
    }
    if value.starts_with(['$', '{', '<', '/', '#', '.', '@', ':']) {
        return false;
    }
    if value.contains([
        '(', ')', '[', ']', '{', '}', '\\', '|', ';', ',', '<', '>', '`',
    ]) || value.contains("://")
    {
        return false;
    }
    let lower = value.to_ascii_lowercase();
    if PLACEHOLDERS.iter().any(|p| lower.contains(p)) {
        return false;
    }
    // An environment variable's name (`OPENAI_API_KEY`) or a dotted reference
    // (`settings.SECRET_KEY`, `self.token`).
    let env_name = value
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    let dotted = value.contains('.')
        && value.split('.').all(|part| {
            !part.is_empty()
                && !part.starts_with(|c: char| c.is_ascii_digit())
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
    // A field or form name (`new_password1`, `csrftoken2`), not a value.
    let names_itself = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && ["password", "passwd", "secret", "token", "key", "credential"]
            .iter()
            .any(|word| lower.contains(word));
    // A file name or path (`admin/password_change.html`).
    let file_name = value.rsplit_once('.').is_some_and(|(stem, ext)| {
        (2..=5).contains(&ext.len())
            && ext.bytes().all(|b| b.is_ascii_alphabetic())
            && stem
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'/' | b'.'))
    });
    if env_name || dotted || names_itself || file_name {
        return false;
    }
    let classes = [
        value.bytes().any(|b| b.is_ascii_lowercase()),
        value.bytes().any(|b| b.is_ascii_uppercase()),
        value.bytes().any(|b| b.is_ascii_digit()),
        value
            .bytes()
            .any(|b| !b.is_ascii_alphanumeric() && !matches!(b, b'_' | b'-' | b'.')),
    ];
    classes.iter().filter(|&&c| c).count() >= 2 && shannon_entropy(value) >= 2.5
}

/// Whether a file's name says it is a secret: keys, certificates' private halves, credential
/// stores, environment files, kubeconfigs, Terraform state. Source code is never a secret by
/// its name alone (a `credentials.rs` module is code; secrets inside it are redacted).
pub fn is_secret_file_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let prefixed = [".env", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"];
    if prefixed.iter().any(|p| lower.starts_with(p)) {
        return true;
    }
    if matches!(
        lower.as_str(),
        ".netrc"
            | "_netrc"
            | "netrc"
            | ".pgpass"
            | ".npmrc"
            | ".pypirc"
            | ".git-credentials"
            | ".htpasswd"
            | "htpasswd"
            | ".dockercfg"
            | "kubeconfig"
    ) {
        return true;
    }
    if lower.ends_with(".tfstate") || lower.ends_with(".tfstate.backup") {
        return true;
    }
    let (stem, ext) = lower.rsplit_once('.').unwrap_or((lower.as_str(), ""));
    if matches!(
        ext,
        "pem" | "key" | "p12" | "pfx" | "jks" | "keystore" | "kdbx" | "ppk" | "kubeconfig"
    ) {
        return true;
    }
    let secret_stem = matches!(
        stem,
        "credentials"
            | "secrets"
            | "secret"
            | "service-account"
            | "service_account"
            | "aws_credentials"
            | "aws-credentials"
    );
    secret_stem && TextKind::of_path(&lower) == TextKind::Data
}

/// Whether a file's content says the whole file is a secret: a PEM private key block at the
/// start of a line, a cloud service-account key, an AWS credentials file, a kubeconfig with
/// credentials, a Docker or npm auth file, a Terraform state.
pub fn is_secret_content(path: &str, text: &str) -> bool {
    // Code holding a key is code: the key is redacted, the rest stays searchable.
    if TextKind::of_path(path) == TextKind::Code {
        return false;
    }
    if contains_private_key_block(text) {
        return true;
    }
    static WHOLE_FILE: LazyLock<Vec<Regex>> = LazyLock::new(|| {
        // Each needs the secret's value too, so prose that describes a format (a README
        // saying `"type": "service_account"`) is not a secret file.
        [
            r#""type"\s*:\s*"service_account"(?s:.*)"private_key"\s*:\s*"-----BEGIN"#,
            r"(?im)^\s*aws_secret_access_key\s*[=:]\s*[A-Za-z0-9/+]{20,}",
            r"(?m)^kind:\s*Config\s*$(?s:.*)^users:(?s:.*)^\s+(?:token|client-key-data|password):\s*\S{8,}",
            r#""auths"\s*:\s*\{(?s:.){0,400}"auth"\s*:\s*"[A-Za-z0-9+/=]{8,}""#,
            r"(?m)^\s*(?://\S*:)?_auth(?:Token)?\s*=\s*\S{8,}",
            r#"^\s*\{(?s:.*)"terraform_version"\s*:(?s:.*)"lineage"\s*:"#,
            r"(?m)^\s*machine\s+\S+(?s:.){0,200}\bpassword\s+\S{3,}",
        ]
        .iter()
        .map(|p| Regex::new(p).unwrap_or_else(|e| panic!("secret file rule {p}: {e}")))
        .collect()
    });
    WHOLE_FILE.iter().any(|rule| rule.is_match(text))
}

/// A PEM private key block: the BEGIN line at the start of a line (indentation allowed),
/// followed by a line of base64. Code that merely mentions the header does not count.
fn contains_private_key_block(text: &str) -> bool {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if line.starts_with("-----BEGIN ") && line.ends_with("PRIVATE KEY-----") {
            let body = lines.next().unwrap_or("").trim();
            if body.len() >= 40
                && body
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
            {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests;
