//! Cases about whole files: appends, whole-file answers, snippets, parts left out.

use super::*;

/// Answers about the whole file: appended items, whole-file answers, snippets.
pub(super) fn file_cases(ctx: &mut Ctx<'_>) {
    let path = ctx.path().to_string();
    let text = ctx.src.text.clone();
    let lang = fence_lang(&path);
    let leader = comment_leader(&path);
    let addition = format!("\n{leader} appended by the worker\nappended_item();\n");
    let with_newline = if text.ends_with('\n') {
        text.clone()
    } else {
        format!("{text}\n")
    };
    ctx.push(
        "append_empty_search",
        answer(&block(&path, "", &addition)),
        ctx.result(format!("{with_newline}{addition}")),
    );
    let ls = ctx.ls.clone();
    let Some(start) = pick_window(&ls, 3, ctx.seed / 11, false) else {
        return;
    };
    let new_text = replaced(&ls, start, 3, &intended(&ls[start..start + 3]));
    let small = ls.len() <= ctx.whole_file_lines;
    let whole = format!("{path}\n```{lang}\n{new_text}```\n");
    ctx.push(
        if small {
            "whole_file_small"
        } else {
            "whole_file_too_large"
        },
        answer(&whole),
        if small {
            ctx.result(new_text.clone())
        } else {
            Expect::Refuse
        },
    );
    // An empty SEARCH whose REPLACE restates the file means "replace it", never "append".
    ctx.push(
        "empty_search_restates_file",
        answer(&block(&path, "", &new_text)),
        if small {
            ctx.result(new_text.clone())
        } else {
            Expect::Refuse
        },
    );
    // A whole file with parts left out would delete them.
    let mut gutted: Vec<String> = ls.iter().map(|l| (*l).to_string()).collect();
    if gutted.len() > 8 {
        let cut = gutted.len() / 2;
        gutted.splice(cut..cut + 3, [format!("{leader} ... rest unchanged ...")]);
        ctx.push(
            "whole_file_with_elision",
            answer(&format!("{path}\n```{lang}\n{}```\n", join(&gutted))),
            Expect::Refuse,
        );
    }
    // A fenced snippet is not the whole file.
    if ls.iter().filter(|l| !l.trim().is_empty()).count() >= 12 {
        ctx.push(
            "fenced_snippet_no_blocks",
            answer(&format!(
                "{path}\n```{lang}\n{}```\n",
                join(&intended(&ls[start..start + 3]))
            )),
            Expect::Refuse,
        );
    }
    // A whole file for a file the task does not own.
    let other = ctx.other;
    ctx.push_full(
        "whole_file_not_owned",
        vec![
            (path.clone(), text.clone()),
            (other.path.clone(), other.text.clone()),
        ],
        vec![path.clone()],
        answer(&format!(
            "{}\n```\n{}\n```\n",
            other.path,
            other.text.trim_end()
        )),
        Expect::Refuse,
        None,
    );
}
