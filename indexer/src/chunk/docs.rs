//! What an item's doc is: the comments and attributes right above it (its leading trivia,
//! which its chunk's text starts with) and, by the language's [`DocStyle`], the doc text:
//! `///` and `/** */` for Rust, a docstring for Python, the comments above the item for the
//! other languages (JSDoc, Javadoc, Go doc comments, Doxygen, XML doc comments, RDoc, PHPDoc).

use tree_sitter::Node;

use crate::lang::{CodeLanguage, DocStyle};

/// The doc of the item `node` whose leading trivia is `leading`, markers stripped; none when
/// it has no doc or the doc is empty.
pub(super) fn item_doc(
    spec: &CodeLanguage,
    text: &str,
    node: Node<'_>,
    leading: &[Node<'_>],
) -> Option<String> {
    let doc = match spec.doc_style {
        DocStyle::RustComments => rust_doc(text, leading),
        DocStyle::PythonDocstring => python_docstring(text, node),
        DocStyle::LeadingComments => comment_doc(text, leading, spec),
    };
    doc.filter(|d| !d.is_empty())
}

/// The comments and attributes directly above an item (no blank line between, not trailing
/// another statement), and the node that wraps it (a decorated definition) or the item itself.
pub(super) fn leading_trivia<'t>(spec: &CodeLanguage, node: Node<'t>) -> (Vec<Node<'t>>, Node<'t>) {
    let outer = match node.parent() {
        Some(p) if spec.wrapper_kinds.contains(&p.kind()) => p,
        _ => node,
    };
    let mut leading = Vec::new();
    let mut top_row = outer.start_position().row;
    let mut previous = outer.prev_sibling();
    // The first item of a body node that starts with it (Ruby's `body_statement`): the
    // comments above it are the body's siblings.
    if previous.is_none()
        && let Some(body) = outer.parent()
        && body.start_byte() == outer.start_byte()
    {
        previous = body.prev_sibling();
    }
    while let Some(sibling) = previous {
        let kind = sibling.kind();
        if !spec.comment_kinds.contains(&kind) && !spec.attribute_kinds.contains(&kind) {
            break;
        }
        if last_row(sibling) + 1 < top_row {
            break;
        }
        let before = sibling.prev_sibling();
        if before.is_some_and(|b| last_row(b) == sibling.start_position().row) {
            break; // a trailing comment of the statement before
        }
        leading.push(sibling);
        top_row = sibling.start_position().row;
        previous = before;
    }
    leading.reverse();
    (leading, outer)
}

/// The last row holding text of a node. Line comments include their newline, so they end
/// at column 0 of the next row.
fn last_row(node: Node<'_>) -> usize {
    let end = node.end_position();
    if end.column == 0 && end.row > node.start_position().row {
        end.row - 1
    } else {
        end.row
    }
}

/// The text of the comments among an item's leading trivia, markers stripped: `//`, `///`,
/// `#` line comments and `/* */`, `/** */` blocks with their `*` gutters.
fn comment_doc(text: &str, leading: &[Node<'_>], spec: &CodeLanguage) -> Option<String> {
    let mut lines = Vec::new();
    for node in leading {
        if !spec.comment_kinds.contains(&node.kind()) {
            continue;
        }
        let raw = text[node.byte_range()].trim();
        if let Some(block) = raw.strip_prefix("/*") {
            let body = block.strip_suffix("*/").unwrap_or(block);
            let body = body.strip_prefix(['*', '!']).unwrap_or(body);
            for line in body.lines() {
                let line = line.trim();
                let line = line.strip_prefix('*').unwrap_or(line);
                lines.push(
                    line.strip_prefix(' ')
                        .unwrap_or(line)
                        .trim_end()
                        .to_string(),
                );
            }
        } else if let Some(block) = raw.strip_prefix("=begin") {
            lines.extend(
                block
                    .trim_end_matches("=end")
                    .lines()
                    .map(|l| l.trim().to_string()),
            );
        } else {
            for line in raw.lines() {
                let line = line.trim_start();
                let line = line.trim_start_matches('/').trim_start_matches(['!', '#']);
                lines.push(
                    line.strip_prefix(' ')
                        .unwrap_or(line)
                        .trim_end()
                        .to_string(),
                );
            }
        }
    }
    let doc = lines.join("\n").trim().to_string();
    (!doc.is_empty()).then_some(doc)
}

/// The text of `///` and `/** */` comments among an item's leading trivia.
fn rust_doc(text: &str, leading: &[Node<'_>]) -> Option<String> {
    let mut lines = Vec::new();
    for node in leading {
        let raw = &text[node.byte_range()];
        if let Some(rest) = raw.strip_prefix("///") {
            if rest.starts_with('/') {
                continue; // `////` is an ordinary comment
            }
            let line = rest.trim_end();
            lines.push(line.strip_prefix(' ').unwrap_or(line).to_string());
        } else if let Some(rest) = raw.strip_prefix("/**") {
            let body = rest.strip_suffix("*/").unwrap_or(rest);
            for line in body.lines() {
                let line = line.trim();
                let line = line.strip_prefix('*').unwrap_or(line);
                lines.push(line.strip_prefix(' ').unwrap_or(line).to_string());
            }
        }
    }
    let doc = lines.join("\n").trim().to_string();
    (!doc.is_empty()).then_some(doc)
}

/// The docstring of a Python function or class: a string as the first statement of its body.
fn python_docstring(text: &str, node: Node<'_>) -> Option<String> {
    let body = node.child_by_field_name("body")?;
    let first = body.named_child(0)?;
    if first.kind() != "expression_statement" {
        return None;
    }
    let string = first.named_child(0)?;
    if string.kind() != "string" {
        return None;
    }
    let raw = &text[string.byte_range()];
    let unprefixed = raw.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let inner = ["\"\"\"", "'''", "\"", "'"]
        .iter()
        .find_map(|q| unprefixed.strip_prefix(q)?.strip_suffix(q))
        .unwrap_or(unprefixed);
    Some(dedent(inner))
}

/// Removes the common indentation of every line but the first (PEP 257 style) and trims.
fn dedent(text: &str) -> String {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("").trim();
    let rest: Vec<&str> = lines.collect();
    let indent = rest
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = first.to_string();
    for line in rest {
        out.push('\n');
        out.push_str(line.get(indent..).unwrap_or(line.trim_start()).trim_end());
    }
    out.trim().to_string()
}
