//! Cases on one window of lines: tolerated copying mistakes, odd paths and line ends, two
//! blocks, and the near misses and ambiguities that must be refused.

use super::*;

pub(super) fn window_cases(ctx: &mut Ctx<'_>, start: usize, len: usize) {
    let window: Vec<&str> = ctx.ls[start..start + len].to_vec();
    let search: Vec<String> = window.iter().map(|l| (*l).to_string()).collect();
    let replace = intended(&window);
    let expected = replaced(&ctx.ls, start, len, &replace);
    let path = ctx.path().to_string();
    let near_miss = Some(NearMiss {
        path: path.clone(),
        lines: (start + 1, start + len),
        intended: expected.clone(),
    });
    let plain = block(&path, &join(&search), &join(&replace));

    ctx.push("exact", answer(&plain), ctx.result(expected.clone()));

    let trailing: Vec<String> = search
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i % 2 == 0 {
                format!("{l}   ")
            } else {
                l.clone()
            }
        })
        .collect();
    ctx.push(
        "trailing_whitespace",
        answer(&block(&path, &join(&trailing), &join(&replace))),
        ctx.result(expected.clone()),
    );

    // Indentation: the common indent removed, one more level added, tabs and spaces swapped.
    let common = common_indent(&window);
    if !common.is_empty() {
        let strip = |ls: &[String]| -> Vec<String> {
            ls.iter()
                .map(|l| l.strip_prefix(common.as_str()).unwrap_or(l).to_string())
                .collect()
        };
        ctx.push(
            "indent_dedented",
            answer(&block(
                &path,
                &join(&strip(&search)),
                &join(&strip(&replace)),
            )),
            ctx.result(expected.clone()),
        );
    }
    let unit = if ctx.src.text.contains("\n\t") {
        "\t"
    } else {
        "    "
    };
    let deeper = |ls: &[String]| -> Vec<String> {
        ls.iter()
            .map(|l| {
                if l.trim().is_empty() {
                    l.clone()
                } else {
                    format!("{unit}{l}")
                }
            })
            .collect()
    };
    ctx.push(
        "indent_deeper",
        answer(&block(
            &path,
            &join(&deeper(&search)),
            &join(&deeper(&replace)),
        )),
        ctx.result(expected.clone()),
    );
    if window.iter().any(|l| l.starts_with('\t')) {
        let spaces =
            |ls: &[String]| -> Vec<String> { ls.iter().map(|l| retab(l, "\t", "    ")).collect() };
        ctx.push(
            "tabs_as_spaces",
            answer(&block(
                &path,
                &join(&spaces(&search)),
                &join(&spaces(&replace)),
            )),
            ctx.result(expected.clone()),
        );
    } else if window.iter().any(|l| l.starts_with("    ")) {
        let tabs =
            |ls: &[String]| -> Vec<String> { ls.iter().map(|l| retab(l, "    ", "\t")).collect() };
        ctx.push(
            "spaces_as_tabs",
            answer(&block(&path, &join(&tabs(&search)), &join(&tabs(&replace)))),
            ctx.result(expected.clone()),
        );
    }

    // Fences and path lines around the block.
    let lang = fence_lang(&path);
    let fenced = match ctx.seed % 3 {
        0 => format!(
            "{path}\n```{lang}\n<<<<<<< SEARCH\n{}=======\n{}>>>>>>> REPLACE\n```\n",
            join(&search),
            join(&replace)
        ),
        1 => format!("```{lang}\n{plain}```\n"),
        _ => format!("```\n{plain}```\n"),
    };
    ctx.push("fenced", answer(&fenced), ctx.result(expected.clone()));
    let label = match ctx.seed % 4 {
        0 => format!("**{path}**"),
        1 => format!("### {path}"),
        2 => format!("File: `{path}`"),
        _ => format!("`{path}`:"),
    };
    ctx.push(
        "path_label",
        answer(&block(&label, &join(&search), &join(&replace))),
        ctx.result(expected.clone()),
    );
    ctx.push(
        "path_dot_slash",
        answer(&block(
            &format!("./{path}"),
            &join(&search),
            &join(&replace),
        )),
        ctx.result(expected.clone()),
    );
    if let Some((_, tail)) = path.split_once('/') {
        ctx.push(
            "path_in_subfolder",
            answer(&block(tail, &join(&search), &join(&replace))),
            ctx.result(expected.clone()),
        );
        // The same tail under two owned files: which one is meant cannot be known.
        let twin = format!("copy/{tail}");
        ctx.push_full(
            "path_suffix_ambiguous",
            vec![
                (path.clone(), ctx.src.text.clone()),
                (twin.clone(), ctx.src.text.clone()),
            ],
            vec![path.clone(), twin],
            answer(&block(tail, &join(&search), &join(&replace))),
            Expect::Refuse,
            None,
        );
    }
    ctx.push(
        "path_escapes",
        answer(&block(
            &format!("../{path}"),
            &join(&search),
            &join(&replace),
        )),
        Expect::Refuse,
    );

    // Line ends: a CRLF file answered in LF, an LF file answered in CRLF.
    let crlf = |t: &str| t.replace('\n', "\r\n");
    ctx.push_full(
        "crlf_file",
        vec![(path.clone(), crlf(&ctx.src.text))],
        vec![path.clone()],
        answer(&plain),
        Expect::Result(BTreeMap::from([(path.clone(), crlf(&expected))])),
        None,
    );
    ctx.push(
        "crlf_answer",
        crlf(&answer(&plain)),
        ctx.result(expected.clone()),
    );

    // Two blocks whose order matters: the second edits what the first wrote.
    let mut twice = replace.clone();
    twice[1] = format!("{}; // and again", replace[1]);
    let second = block(&path, &join(&replace[1..3]), &join(&twice[1..3]));
    ctx.push(
        "two_blocks_in_order",
        answer(&format!("{plain}\n{second}")),
        ctx.result(replaced(&ctx.ls, start, len, &twice)),
    );
    ctx.push(
        "two_blocks_reversed",
        answer(&format!("{second}\n{plain}")),
        Expect::Refuse,
    );

    // Must refuse: reordered lines, a misremembered line, broken relative indentation.
    if let Some(i) = (0..len - 1).find(|&i| window[i].trim() != window[i + 1].trim()) {
        let mut swapped = search.clone();
        swapped.swap(i, i + 1);
        let as_strs: Vec<&str> = swapped.iter().map(String::as_str).collect();
        if trimmed_occurrences(&ctx.ls, &as_strs) == 0 {
            ctx.push_full(
                "reordered_lines",
                vec![(path.clone(), ctx.src.text.clone())],
                vec![path.clone()],
                answer(&block(&path, &join(&swapped), &join(&replace))),
                Expect::Refuse,
                near_miss.clone(),
            );
        }
    }
    if let Some(i) = (1..len).find(|&i| window[i].trim().len() > 3) {
        let mut wrong = search.clone();
        wrong[i] = misremember(&wrong[i]);
        ctx.push_full(
            "misremembered_line",
            vec![(path.clone(), ctx.src.text.clone())],
            vec![path.clone()],
            answer(&block(&path, &join(&wrong), &join(&replace))),
            Expect::Refuse,
            near_miss.clone(),
        );
    }
    if let Some(i) = (0..len).find(|&i| !indent_of(window[i]).is_empty()) {
        let mut broken = search.clone();
        broken[i] = format!("{}{}", indent_of(window[i]), broken[i]);
        ctx.push_full(
            "indent_not_uniform",
            vec![(path.clone(), ctx.src.text.clone())],
            vec![path.clone()],
            answer(&block(&path, &join(&broken), &join(&replace))),
            Expect::Refuse,
            near_miss.clone(),
        );
    }

    // Another file's text: under a file the task does not own, and under the owned one.
    let other = ctx.other;
    let other_ls = lines(&other.text);
    if let Some(o) = pick_window(&other_ls, 4, ctx.seed / 5, false) {
        let osearch: Vec<String> = other_ls[o..o + 4]
            .iter()
            .map(|l| (*l).to_string())
            .collect();
        let oreplace = intended(&other_ls[o..o + 4]);
        ctx.push_full(
            "wrong_file_not_owned",
            vec![
                (path.clone(), ctx.src.text.clone()),
                (other.path.clone(), other.text.clone()),
            ],
            vec![path.clone()],
            answer(&block(&other.path, &join(&osearch), &join(&oreplace))),
            Expect::Refuse,
            None,
        );
        if trimmed_occurrences(&ctx.ls, &other_ls[o..o + 4]) == 0 {
            ctx.push_full(
                "wrong_file_owned",
                vec![
                    (path.clone(), ctx.src.text.clone()),
                    (other.path.clone(), other.text.clone()),
                ],
                vec![path.clone(), other.path.clone()],
                answer(&block(&path, &join(&osearch), &join(&oreplace))),
                Expect::Refuse,
                None,
            );
        }
    }
    ambiguous_cases(ctx);
}
/// A SEARCH that fits twice: once as written, once only when indentation is ignored.
fn ambiguous_cases(ctx: &mut Ctx<'_>) {
    let path = ctx.path().to_string();
    let ls = ctx.ls.clone();
    let repeated = ls
        .iter()
        .filter(|l| l.trim().len() > 2 && is_plain(l))
        .find(|l| ls.iter().filter(|m| m == l).count() >= 2);
    if let Some(line) = repeated {
        ctx.push(
            "search_fits_twice",
            answer(&block(
                &path,
                &format!("{line}\n"),
                &format!("{line} // changed\n"),
            )),
            Expect::Refuse,
        );
    }
    // The same statement at two depths, asked for at a third.
    let by_content = ls
        .iter()
        .filter(|l| l.trim().len() > 4 && is_plain(l))
        .find(|l| {
            let same: Vec<&&str> = ls.iter().filter(|m| m.trim() == l.trim()).collect();
            same.len() >= 2 && same.iter().any(|m| indent_of(m) != indent_of(l))
        });
    if let Some(line) = by_content {
        let odd = format!("  {}", line.trim());
        if !ls
            .iter()
            .any(|m| indent_of(m) == "  " && m.trim() == line.trim())
        {
            ctx.push(
                "fits_twice_reindented",
                answer(&block(
                    &path,
                    &format!("{odd}\n"),
                    &format!("{odd} // changed\n"),
                )),
                Expect::Refuse,
            );
        }
    }
}
pub(super) fn blank_cases(ctx: &mut Ctx<'_>, start: usize, len: usize) {
    let window: Vec<&str> = ctx.ls[start..start + len].to_vec();
    let search: Vec<String> = window.iter().map(|l| (*l).to_string()).collect();
    let replace = intended(&window);
    let expected = replaced(&ctx.ls, start, len, &replace);
    let path = ctx.path().to_string();
    let dropped: Vec<String> = search
        .iter()
        .filter(|l| !l.trim().is_empty())
        .cloned()
        .collect();
    ctx.push(
        "blank_lines_dropped",
        answer(&block(&path, &join(&dropped), &join(&replace))),
        ctx.result(expected.clone()),
    );
    let doubled: Vec<String> = search
        .iter()
        .flat_map(|l| {
            if l.trim().is_empty() {
                vec![l.clone(), l.clone()]
            } else {
                vec![l.clone()]
            }
        })
        .collect();
    ctx.push(
        "blank_lines_doubled",
        answer(&block(&path, &join(&doubled), &join(&replace))),
        ctx.result(expected),
    );
}
fn common_indent(window: &[&str]) -> String {
    let mut common: Option<&str> = None;
    for line in window.iter().filter(|l| !l.trim().is_empty()) {
        let indent = indent_of(line);
        common = Some(match common {
            None => indent,
            Some(c) => {
                let n = c
                    .bytes()
                    .zip(indent.bytes())
                    .take_while(|(a, b)| a == b)
                    .count();
                &c[..n]
            }
        });
    }
    common.unwrap_or("").to_string()
}
/// `line` with each leading `from` turned into `to`.
fn retab(line: &str, from: &str, to: &str) -> String {
    let mut rest = line;
    let mut out = String::new();
    while let Some(r) = rest.strip_prefix(from) {
        out.push_str(to);
        rest = r;
    }
    out.push_str(rest);
    out
}
/// `line` with its first word misspelt, as a model misremembers a name.
fn misremember(line: &str) -> String {
    let start = line.find(|c: char| c.is_alphanumeric()).unwrap_or(0);
    let end = line[start..]
        .find(|c: char| !c.is_alphanumeric() && c != '_')
        .map_or(line.len(), |e| start + e);
    format!("{}{}zz{}", &line[..start], &line[start..end], &line[end..])
}
