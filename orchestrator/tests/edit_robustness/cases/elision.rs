//! Cases with `...` in SEARCH (and REPLACE): windows, block bodies, and elisions that must be
//! refused (unbounded, or running into the next block).

use super::*;

/// A block as models elide it: a header line, then a body of at least five lines that are
/// all deeper, then (when there is one) the line that closes it at the header's depth.
pub(super) fn pick_body(ls: &[&str], seed: u64) -> Option<(usize, usize)> {
    let depth = |l: &str| indent_of(l).len();
    let candidates: Vec<(usize, usize)> = (0..ls.len())
        .filter_map(|h| {
            let header = ls[h];
            if header.trim().is_empty() || !is_plain(header) {
                return None;
            }
            let mut end = h + 1;
            while end < ls.len() && (ls[end].trim().is_empty() || depth(ls[end]) > depth(header)) {
                end += 1;
            }
            while end > h + 1 && ls[end - 1].trim().is_empty() {
                end -= 1;
            }
            let closes =
                end < ls.len() && depth(ls[end]) == depth(header) && ls[end].trim().len() <= 3;
            let stop = if closes { end + 1 } else { end };
            let len = stop - h;
            let w = &ls[h..stop];
            (end - h > 5
                && len <= 40
                && w.iter().all(|l| is_plain(l) && !l.contains('\r'))
                && !w[len - 1].trim().is_empty()
                && occurrences(ls, w) == 1
                && trimmed_occurrences(ls, w) == 1)
                .then_some((h, len))
        })
        .collect();
    (!candidates.is_empty()).then(|| candidates[(seed % candidates.len() as u64) as usize])
}
/// A block's body elided in SEARCH, the whole new block in REPLACE.
pub(super) fn body_elision_case(ctx: &mut Ctx<'_>, start: usize, len: usize) {
    let window: Vec<&str> = ctx.ls[start..start + len].to_vec();
    let search: Vec<String> = window.iter().map(|l| (*l).to_string()).collect();
    let replace = intended(&window);
    let expected = replaced(&ctx.ls, start, len, &replace);
    let path = ctx.path().to_string();
    if !tail_is_unique(&window) {
        return;
    }
    let marker = format!("{}{} ...", indent_of(window[1]), comment_leader(&path));
    let mut elided = search[..2].to_vec();
    elided.push(marker);
    elided.extend(search[len - 2..].iter().cloned());
    ctx.push(
        "elision_of_a_body",
        answer(&block(&path, &join(&elided), &join(&replace))),
        ctx.result(expected),
    );
}
/// An elision whose tail lines come from a later block than its head: the model's tail is
/// nowhere in the block it opened, so the answer must be refused, not stretched over the
/// items between.
pub(super) fn elision_into_next_case(ctx: &mut Ctx<'_>, start: usize, len: usize) {
    let depth = |l: &str| indent_of(l).len();
    let header = ctx.ls[start];
    let Some((next, next_len)) = pick_body(&ctx.ls[start + len..], 0)
        .map(|(h, l)| (h + start + len, l))
        .filter(|&(h, _)| depth(ctx.ls[h]) == depth(header))
    else {
        return;
    };
    // The tail must occur only at the later block's end: where it also ends the first
    // block, the SEARCH does describe that one.
    let tail = &ctx.ls[next + next_len - 2..next + next_len];
    // The head must be only where it is too, or the SEARCH describes the later block.
    if trimmed_occurrences(&ctx.ls, &ctx.ls[start..start + 2]) != 1 {
        return;
    }
    if trimmed_occurrences(&ctx.ls, tail) != 1 {
        return;
    }
    let path = ctx.path().to_string();
    let mut search: Vec<String> = ctx.ls[start..start + 2]
        .iter()
        .map(|l| (*l).to_string())
        .collect();
    search.push(format!(
        "{}{} ...",
        indent_of(ctx.ls[start + 1]),
        comment_leader(&path)
    ));
    search.extend(
        ctx.ls[next + next_len - 2..next + next_len]
            .iter()
            .map(|l| (*l).to_string()),
    );
    let replace = intended(&ctx.ls[start..start + 2]);
    ctx.push(
        "elision_into_next_block",
        answer(&block(&path, &join(&search), &join(&replace))),
        Expect::Refuse,
    );
}
pub(super) fn elision_cases(ctx: &mut Ctx<'_>, start: usize, len: usize) {
    let window: Vec<&str> = ctx.ls[start..start + len].to_vec();
    let search: Vec<String> = window.iter().map(|l| (*l).to_string()).collect();
    let replace = intended(&window);
    let expected = replaced(&ctx.ls, start, len, &replace);
    let path = ctx.path().to_string();
    if !tail_is_unique(&window) {
        return;
    }
    let indent = indent_of(window[2]);
    let marker = match ctx.seed % 3 {
        0 => format!("{indent}..."),
        1 => format!("{indent}{} ...", comment_leader(&path)),
        _ => format!("{indent}{} ... existing code ...", comment_leader(&path)),
    };
    let mut elided = search[..2].to_vec();
    elided.push(marker.clone());
    elided.extend(search[len - 2..].iter().cloned());
    ctx.push(
        "elision_in_search",
        answer(&block(&path, &join(&elided), &join(&replace))),
        ctx.result(expected.clone()),
    );
    // `...` in both: the lines it stands for are kept.
    let mut kept = replace[..3].to_vec();
    kept.push(marker.clone());
    kept.extend(replace[replace.len() - 3..].iter().cloned());
    ctx.push(
        "elision_in_both",
        answer(&block(&path, &join(&elided), &join(&kept))),
        ctx.result(expected),
    );
    // An elision with nothing after it cannot say where it ends.
    let mut open = search[..2].to_vec();
    open.push(marker);
    ctx.push(
        "elision_unbounded",
        answer(&block(&path, &join(&open), &join(&replace[..3]))),
        Expect::Refuse,
    );
}

/// Whether a window's last two lines occur once after its first two, so the place its
/// elided SEARCH names is the window's own end and no nearer one.
fn tail_is_unique(window: &[&str]) -> bool {
    let n = window.len();
    trimmed_occurrences(&window[2..], &window[n - 2..]) == 1
}
