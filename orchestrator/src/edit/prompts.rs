//! The prompts of an edit run: the planner's, each worker's, and the fixer's.
//!
//! Every prompt carries what its call needs and nothing else: the planner sees the request,
//! retrieved code and the repository map; a worker sees its task, the whole current text of
//! the files it owns, what the tasks it depends on did, the run's scratchpad and code
//! retrieved for its own description; the fixer sees the failing check's output, the diff so
//! far and the files it may change.

use quarry_retriever::ContextPack;

use super::plan::{MAX_FILES_PER_TASK, MAX_TASKS, Task};
use crate::llm::Message;

const PLAN_SYSTEM: &str = "\
You are the planner of Quarry, a tool that edits code repositories. Split the user's change \
into a few small tasks that workers can do independently. Each task edits a few existing \
files (`files`) and may create new ones (`new_files`); use paths exactly as the repository \
map and context show them, relative to the repository root. A task that needs another's \
result lists that task's id in `depends_on`; tasks without dependencies run in parallel, so \
never give two independent tasks the same file. Prefer one task per file or per cohesive \
change. Answer with JSON only.";

const WORKER_SYSTEM: &str = "\
You are a worker of Quarry, a tool that edits code repositories. Make exactly the change your \
task describes, in the files it owns, keeping the code's style. Write every edit as a \
SEARCH/REPLACE block: the file's path on its own line, then\n\
<<<<<<< SEARCH\n\
lines copied exactly from the current file, enough to be unique\n\
=======\n\
the lines that replace them\n\
>>>>>>> REPLACE\n\
To create a file, leave the SEARCH part empty. Use several small blocks rather than one \
large one. After the blocks, write one line `SUMMARY: what you changed`, and a line \
`FACT: ...` for anything later tasks must know (a renamed function, a new signature).";

/// Renders a context pack as labelled chunks, leaving out chunks of `skip_paths` (the prompt
/// already has those files whole).
fn render_context(pack: &ContextPack, skip_paths: &[String]) -> String {
    let mut out = String::new();
    for item in &pack.items {
        if skip_paths.contains(&item.path) {
            continue;
        }
        out.push_str(&item.render());
        out.push('\n');
    }
    out
}

fn fenced(path: &str, text: &str) -> String {
    let fence = if text.contains("```") { "````" } else { "```" };
    let mut body = text.to_string();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    format!("{path}\n{fence}\n{body}{fence}\n")
}

/// The planner's messages.
pub fn plan_messages(
    request: &str,
    pack: &ContextPack,
    uses: &str,
    map: &str,
    files: &[String],
    memory: &[String],
) -> Vec<Message> {
    let mut user = String::new();
    if !memory.is_empty() {
        user.push_str("Project notes:\n");
        for note in memory {
            user.push_str(&format!("- {note}\n"));
        }
        user.push('\n');
    }
    if !map.is_empty() {
        user.push_str(&format!(
            "Repository map (file: names it defines):\n{map}\n"
        ));
    }
    let context = render_context(pack, &[]);
    if !context.is_empty() {
        user.push_str(&format!("Relevant code:\n\n{context}\n"));
    }
    if !uses.is_empty() {
        user.push_str(&format!(
            "Uses of the names this change is about (path:lines, every file; a rename or a signature change must reach each):\n{uses}\n"
        ));
    }
    let example_file = pack
        .items
        .first()
        .map(|i| i.path.as_str())
        .or(files.first().map(String::as_str))
        .unwrap_or("src/lib.rs");
    user.push_str(&format!(
        "Change to make: {}\n\nAnswer with a JSON object like {{\"tasks\": [{{\"id\": \"t1\", \"description\": \"what to change in the file\", \"files\": [\"{example_file}\"], \"new_files\": [], \"depends_on\": []}}]}}: ids t1, t2, …; at most {MAX_TASKS} tasks and {MAX_FILES_PER_TASK} files per task; `depends_on` lists only ids of other tasks in the plan.",
        request.trim()
    ));
    vec![Message::system(PLAN_SYSTEM), Message::user(user)]
}

/// The message that sends an invalid plan back.
pub fn plan_retry(error: &str) -> Message {
    Message::user(format!(
        "That plan cannot be used: {error}. Answer again with the corrected JSON plan only."
    ))
}

/// What a worker is told about a task it depends on.
pub struct Prerequisite<'a> {
    /// The task.
    pub task: &'a Task,
    /// Its summary.
    pub summary: &'a str,
    /// Its diff.
    pub diff: &'a str,
}

/// Everything a worker's first prompt holds.
pub struct WorkerBrief<'a> {
    /// The user's whole request.
    pub request: &'a str,
    /// The task.
    pub task: &'a Task,
    /// Current text of each file the task owns (`None`: to be created).
    pub files: &'a [(String, Option<String>)],
    /// The tasks it depends on, done.
    pub prerequisites: &'a [Prerequisite<'a>],
    /// The run's scratchpad.
    pub scratchpad: &'a [String],
    /// Project notes from long-term memory.
    pub memory: &'a [String],
    /// Code retrieved for the task.
    pub context: &'a ContextPack,
    /// The callers and callees of the functions the task is about (code graph).
    pub neighbours: &'a str,
}

/// A worker's messages.
pub fn worker_messages(brief: &WorkerBrief<'_>) -> Vec<Message> {
    let mut user = String::new();
    if !brief.memory.is_empty() {
        user.push_str("Project notes:\n");
        for note in brief.memory {
            user.push_str(&format!("- {note}\n"));
        }
        user.push('\n');
    }
    let owned: Vec<String> = brief.files.iter().map(|(p, _)| p.clone()).collect();
    let context = render_context(brief.context, &owned);
    if !context.is_empty() {
        user.push_str(&format!(
            "Related code in the repository (read only):\n\n{context}\n"
        ));
    }
    if !brief.neighbours.is_empty() {
        user.push_str(&format!(
            "Callers and callees of the functions your task is about (path:line):\n{}\n",
            brief.neighbours
        ));
    }
    if !brief.prerequisites.is_empty() {
        user.push_str("Tasks already done that yours builds on:\n\n");
        for done in brief.prerequisites {
            user.push_str(&format!(
                "[{}] {}\nResult: {}\n",
                done.task.id, done.task.description, done.summary
            ));
            if !done.diff.is_empty() {
                user.push_str(&format!("```diff\n{}```\n", done.diff));
            }
            user.push('\n');
        }
    }
    if !brief.scratchpad.is_empty() {
        user.push_str("Facts recorded by earlier tasks:\n");
        for fact in brief.scratchpad {
            user.push_str(&format!("- {fact}\n"));
        }
        user.push('\n');
    }
    user.push_str("Files your task owns, as they are now:\n\n");
    for (path, text) in brief.files {
        match text {
            Some(text) => user.push_str(&fenced(path, text)),
            None => user.push_str(&format!("{path}\n(does not exist yet: create it)\n")),
        }
        user.push('\n');
    }
    user.push_str(&format!(
        "The whole change: {}\nYour task [{}]: {}\n\nEdit only these files: {}. Answer with SEARCH/REPLACE blocks, then SUMMARY and FACT lines.",
        brief.request.trim(),
        brief.task.id,
        brief.task.description.trim(),
        owned.join(", ")
    ));
    vec![Message::system(WORKER_SYSTEM), Message::user(user)]
}

/// The message that sends a failed attempt back to a worker, with the real text of the
/// files involved.
pub fn worker_retry(problem: &str, files: &[(String, Option<String>)]) -> Message {
    let mut text = format!("Your edits were not applied: {problem}\n\n");
    if !files.is_empty() {
        text.push_str("The files as they are now:\n\n");
        for (path, content) in files {
            match content {
                Some(content) => text.push_str(&fenced(path, content)),
                None => text.push_str(&format!("{path}\n(does not exist yet)\n")),
            }
            text.push('\n');
        }
    }
    text.push_str(
        "Answer again with SEARCH/REPLACE blocks whose SEARCH lines are copied exactly from these files, then SUMMARY and FACT lines.",
    );
    Message::user(text)
}

/// The fixer's messages: the check failed after the run's edits.
pub fn fix_messages(
    request: &str,
    check: &str,
    output: &str,
    diff: &str,
    files: &[(String, Option<String>)],
    around: &str,
) -> Vec<Message> {
    let mut user = format!(
        "The change being made: {}\n\nIt was made with this diff:\n```diff\n{diff}```\n\nThen the check `{check}` failed:\n```\n{}\n```\n\nFiles you may edit, as they are now:\n\n",
        request.trim(),
        output.trim_end()
    );
    for (path, content) in files {
        if let Some(content) = content {
            user.push_str(&fenced(path, content));
            user.push('\n');
        }
    }
    if !around.is_empty() {
        user.push_str(&format!(
            "Where the failure points (you may edit these files too; copy SEARCH lines without the numbers):\n\n{around}"
        ));
    }
    user.push_str(
        "Fix the failure with SEARCH/REPLACE blocks, keeping the change's intent, then a SUMMARY line.",
    );
    vec![Message::system(WORKER_SYSTEM), Message::user(user)]
}
