//! A tokenizer for code and the prose around it.
//!
//! Every identifier is kept whole (`load_config`, `HttpRequest`) and also split into its
//! words (`load`, `config`; `http`, `request`), at the same position, so a query for either
//! form matches. Paths and `::`/`.` qualified names fall apart at their separators. All
//! tokens are lowercased; words the stemmer knows are then stemmed by the analyzer (see
//! [`analyzer`]), so `loaded` finds `load`.

use tantivy::tokenizer::{Language, Stemmer, TextAnalyzer, Token, TokenStream, Tokenizer};

/// Name the analyzer is registered under in the keyword index.
pub const CODE_TOKENIZER: &str = "quarry_code";

/// Longest token kept, in bytes; longer runs are hashes, base64 or minified code.
const MAX_TOKEN_LEN: usize = 64;

/// The analyzer used for every text field: [`CodeTokenizer`] then English stemming.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(CodeTokenizer)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// Splits code into whole identifiers plus their sub-words.
#[derive(Debug, Clone, Copy, Default)]
pub struct CodeTokenizer;

impl Tokenizer for CodeTokenizer {
    type TokenStream<'a> = CodeTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> CodeTokenStream {
        CodeTokenStream {
            tokens: tokenize(text),
            next: 0,
        }
    }
}

/// The tokens of one text, produced eagerly.
pub struct CodeTokenStream {
    tokens: Vec<Token>,
    next: usize,
}

impl TokenStream for CodeTokenStream {
    fn advance(&mut self) -> bool {
        if self.next < self.tokens.len() {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut position = 0;
    let mut word_start = None;
    for (i, ch) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        let in_word = ch.is_alphanumeric() || ch == '_';
        match (word_start, in_word) {
            (None, true) => word_start = Some(i),
            (Some(start), false) => {
                emit_word(&text[start..i], start, position, &mut tokens);
                position += 1;
                word_start = None;
            }
            _ => {}
        }
    }
    tokens
}

fn emit_word(word: &str, offset: usize, position: usize, tokens: &mut Vec<Token>) {
    let trimmed = word.trim_matches('_');
    if trimmed.is_empty() || trimmed.len() > MAX_TOKEN_LEN {
        return;
    }
    let offset = offset + (word.len() - word.trim_start_matches('_').len());
    let whole = trimmed.to_lowercase();
    let parts = split_identifier(trimmed);
    let push = |tokens: &mut Vec<Token>, text: String, from: usize, to: usize| {
        tokens.push(Token {
            offset_from: from,
            offset_to: to,
            position,
            text,
            position_length: 1,
        });
    };
    push(tokens, whole.clone(), offset, offset + trimmed.len());
    if parts.len() > 1 {
        for (start, end) in parts {
            let part = trimmed[start..end].to_lowercase();
            if part.len() >= 2 && part != whole {
                push(tokens, part, offset + start, offset + end);
            }
        }
    }
}

/// Byte ranges of the words in an identifier: split at `_`, at lower→upper case changes
/// (`loadConfig`), before the last capital of an acronym (`HTTPServer` → `HTTP`, `Server`)
/// and between letters and digits (`sha256` → `sha`, `256`).
fn split_identifier(ident: &str) -> Vec<(usize, usize)> {
    let chars: Vec<(usize, char)> = ident.char_indices().collect();
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    for (k, &(i, c)) in chars.iter().enumerate() {
        if c == '_' {
            if let Some(s) = start.take() {
                parts.push((s, i));
            }
            continue;
        }
        let Some(s) = start else {
            start = Some(i);
            continue;
        };
        let prev = chars[k - 1].1;
        let next = chars.get(k + 1).map(|&(_, n)| n);
        let boundary = (prev.is_lowercase() && c.is_uppercase())
            || (prev.is_uppercase() && c.is_uppercase() && next.is_some_and(|n| n.is_lowercase()))
            || (prev.is_alphabetic() && c.is_numeric())
            || (prev.is_numeric() && c.is_alphabetic());
        if boundary && prev != '_' {
            parts.push((s, i));
            start = Some(i);
        }
    }
    if let Some(s) = start {
        parts.push((s, ident.len()));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(input: &str) -> Vec<String> {
        let mut analyzer = TextAnalyzer::builder(CodeTokenizer).build();
        let mut stream = analyzer.token_stream(input);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    #[test]
    fn keeps_identifiers_whole_and_split() {
        assert_eq!(texts("load_config"), ["load_config", "load", "config"]);
        assert_eq!(texts("HttpRequest"), ["httprequest", "http", "request"]);
        assert_eq!(texts("HTTPServer"), ["httpserver", "http", "server"]);
        assert_eq!(
            texts("parseXMLFile"),
            ["parsexmlfile", "parse", "xml", "file"]
        );
        assert_eq!(texts("sha256"), ["sha256", "sha", "256"]);
    }

    #[test]
    fn splits_paths_and_qualified_names() {
        assert_eq!(texts("crate::store::Store"), ["crate", "store", "store"]);
        assert_eq!(texts("src/config.rs"), ["src", "config", "rs"]);
        assert_eq!(texts("__init__"), ["init"]);
    }

    #[test]
    fn drops_overlong_runs() {
        let blob = "a".repeat(100);
        assert!(texts(&blob).is_empty());
    }

    #[test]
    fn stems_words() {
        let mut analyzer = analyzer();
        let mut stream = analyzer.token_stream("loaded configs");
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        assert_eq!(out, ["load", "config"]);
    }
}
