//! The plan: a request cut into tasks that form a DAG, as the planning model wrote it, and
//! the checks that make it safe to execute.
//!
//! The model answers JSON under [`plan_schema`]; [`parse_plan`] reads it and
//! [`validate`] checks what a schema cannot: ids are unique, dependencies exist and form no
//! cycle, and every file is one the run may touch. The first error found is reported in words
//! the model can act on, because an invalid plan goes back to it once with that error.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// Most tasks in one plan.
pub const MAX_TASKS: usize = 8;
/// Most files one task may touch.
pub const MAX_FILES_PER_TASK: usize = 6;

/// One unit of work: a description a worker can act on and the files it owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Short unique id (`t1`, `rename-config`).
    pub id: String,
    /// What to change and why, for the worker.
    pub description: String,
    /// Existing files the task edits, relative to the repository root.
    #[serde(default)]
    pub files: Vec<String>,
    /// Files the task creates.
    #[serde(default)]
    pub new_files: Vec<String>,
    /// Ids of tasks that must succeed before this one starts.
    #[serde(default)]
    pub depends_on: Vec<String>,
}

impl Task {
    /// Every file the task owns: the edited ones, then the created ones.
    pub fn all_files(&self) -> impl Iterator<Item = &String> {
        self.files.iter().chain(&self.new_files)
    }
}

/// A validated plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The tasks, in the order the model wrote them.
    pub tasks: Vec<Task>,
}

impl Plan {
    /// The task with `id`.
    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }
}

/// Why a plan cannot be executed; the message is sent back to the model as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The answer is not the JSON asked for.
    #[error("the plan is not valid JSON of the form {{\"tasks\": [...]}}: {0}")]
    Json(String),
    /// No tasks.
    #[error("the plan has no tasks")]
    Empty,
    /// More tasks than allowed.
    #[error("the plan has {0} tasks; use at most {MAX_TASKS}")]
    TooMany(usize),
    /// A task without an id or description.
    #[error("task {index} has an empty {field}")]
    Blank {
        /// 1-based position.
        index: usize,
        /// `id` or `description`.
        field: &'static str,
    },
    /// Two tasks share an id.
    #[error("task id `{0}` is used twice; ids must be unique")]
    DuplicateId(String),
    /// A dependency names no task.
    #[error("task `{task}` depends on `{dependency}`, which is not a task in the plan")]
    UnknownDependency {
        /// The task.
        task: String,
        /// The missing id.
        dependency: String,
    },
    /// Dependencies go round in a circle.
    #[error("the dependencies form a cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
    /// A task names no file.
    #[error("task `{0}` names no file to edit or create")]
    NoFiles(String),
    /// A task names too many files.
    #[error(
        "task `{task}` names {count} files; split it so each task touches at most {MAX_FILES_PER_TASK}"
    )]
    TooManyFiles {
        /// The task.
        task: String,
        /// How many it named.
        count: usize,
    },
    /// A file the run may not touch, or that does not exist without being marked new.
    #[error("task `{task}`: {path}: {reason}")]
    BadFile {
        /// The task.
        task: String,
        /// The file as written.
        path: String,
        /// Why it is refused.
        reason: String,
    },
}

/// Most candidate files spelled out in the schema; beyond it paths are free strings.
const MAX_SCHEMA_FILES: usize = 300;

/// Task ids the schema offers: `t1` … `t8`.
pub fn task_ids() -> Vec<String> {
    (1..=MAX_TASKS).map(|i| format!("t{i}")).collect()
}

/// The JSON schema the planner answers under. Arrays and strings are bounded, ids come from
/// [`task_ids`], and when `existing` (the repository's files) is short enough, `files` may
/// only name one of them: small models then cannot invent a path, however hard they try.
pub fn plan_schema(existing: &[String]) -> serde_json::Value {
    let existing_path = if existing.is_empty() || existing.len() > MAX_SCHEMA_FILES {
        serde_json::json!({"type": "string", "maxLength": 200})
    } else {
        serde_json::json!({"type": "string", "enum": existing})
    };
    let id = serde_json::json!({"type": "string", "enum": task_ids()});
    serde_json::json!({
        "type": "object",
        "properties": {
            "tasks": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_TASKS,
                "items": {
                    "type": "object",
                    "properties": {
                        "id": id,
                        "description": {"type": "string", "maxLength": 600},
                        "files": {"type": "array", "items": existing_path, "maxItems": MAX_FILES_PER_TASK},
                        "new_files": {
                            "type": "array",
                            "items": {"type": "string", "maxLength": 200},
                            "maxItems": MAX_FILES_PER_TASK,
                        },
                        "depends_on": {"type": "array", "items": id, "maxItems": MAX_TASKS},
                    },
                    "required": ["id", "description", "files", "new_files", "depends_on"],
                },
            },
        },
        "required": ["tasks"],
    })
}

/// Reads a plan from the model's answer: the JSON object itself, or the first one inside a
/// fenced block or surrounding prose.
pub fn parse_plan(answer: &str) -> Result<Plan, PlanError> {
    let json = extract_json_object(answer)
        .ok_or_else(|| PlanError::Json("no JSON object found in the answer".to_string()))?;
    serde_json::from_str(json).map_err(|e| PlanError::Json(e.to_string()))
}

/// The outermost `{...}` of `text`, braces inside strings respected.
fn extract_json_object(text: &str) -> Option<&str> {
    let start = text.find('{')?;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (offset, c) in text[start..].char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[start..=start + offset]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Checks `plan`, normalising file paths in place (`./a.rs` → `a.rs`). `check_file` says
/// whether a task may touch a path (`is_new`: the task creates it), and why not.
pub fn validate(
    plan: &mut Plan,
    check_file: &dyn Fn(&str, bool) -> Result<String, String>,
) -> Result<(), PlanError> {
    if plan.tasks.is_empty() {
        return Err(PlanError::Empty);
    }
    if plan.tasks.len() > MAX_TASKS {
        return Err(PlanError::TooMany(plan.tasks.len()));
    }
    let mut ids = HashSet::new();
    for (index, task) in plan.tasks.iter_mut().enumerate() {
        task.id = task.id.trim().to_string();
        if task.id.is_empty() {
            return Err(PlanError::Blank {
                index: index + 1,
                field: "id",
            });
        }
        if task.description.trim().is_empty() {
            return Err(PlanError::Blank {
                index: index + 1,
                field: "description",
            });
        }
        if !ids.insert(task.id.clone()) {
            return Err(PlanError::DuplicateId(task.id.clone()));
        }
    }
    for task in &plan.tasks {
        for dependency in &task.depends_on {
            if !ids.contains(dependency) {
                return Err(PlanError::UnknownDependency {
                    task: task.id.clone(),
                    dependency: dependency.clone(),
                });
            }
        }
    }
    if let Some(cycle) = find_cycle(plan) {
        return Err(PlanError::Cycle(cycle));
    }
    for task in &mut plan.tasks {
        let count = task.files.len() + task.new_files.len();
        if count == 0 {
            return Err(PlanError::NoFiles(task.id.clone()));
        }
        if count > MAX_FILES_PER_TASK {
            return Err(PlanError::TooManyFiles {
                task: task.id.clone(),
                count,
            });
        }
        for (list, is_new) in [(&mut task.files, false), (&mut task.new_files, true)] {
            let mut normalised = Vec::new();
            for path in list.iter() {
                let clean = check_file(path, is_new).map_err(|reason| PlanError::BadFile {
                    task: task.id.clone(),
                    path: path.clone(),
                    reason,
                })?;
                if !normalised.contains(&clean) {
                    normalised.push(clean);
                }
            }
            *list = normalised;
        }
    }
    Ok(())
}

/// A cycle among the dependencies, as ids from its first task back to it, if there is one.
fn find_cycle(plan: &Plan) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Unseen,
        OnPath,
        Done,
    }
    let index: HashMap<&str, usize> = plan
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i))
        .collect();
    let mut marks = vec![Mark::Unseen; plan.tasks.len()];
    for start in 0..plan.tasks.len() {
        if marks[start] != Mark::Unseen {
            continue;
        }
        // Depth-first, with an explicit stack of (task, next dependency to look at).
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::OnPath;
        while let Some((task, next)) = stack.last_mut() {
            let dependencies = &plan.tasks[*task].depends_on;
            if *next == dependencies.len() {
                marks[*task] = Mark::Done;
                stack.pop();
                continue;
            }
            let dependency = index.get(dependencies[*next].as_str()).copied();
            *next += 1;
            let Some(dependency) = dependency else {
                continue;
            };
            match marks[dependency] {
                Mark::OnPath => {
                    let from = stack.iter().position(|(t, _)| *t == dependency)?;
                    let mut cycle: Vec<String> = stack[from..]
                        .iter()
                        .map(|(t, _)| plan.tasks[*t].id.clone())
                        .collect();
                    cycle.push(plan.tasks[dependency].id.clone());
                    return Some(cycle);
                }
                Mark::Unseen => {
                    marks[dependency] = Mark::OnPath;
                    stack.push((dependency, 0));
                }
                Mark::Done => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, files: &[&str], depends_on: &[&str]) -> Task {
        Task {
            id: id.to_string(),
            description: format!("do {id}"),
            files: files.iter().map(|s| s.to_string()).collect(),
            new_files: Vec::new(),
            depends_on: depends_on.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn accept_all(path: &str, _: bool) -> Result<String, String> {
        Ok(path.trim_start_matches("./").to_string())
    }

    #[test]
    fn a_valid_plan_passes_and_paths_are_normalised() {
        let mut plan = Plan {
            tasks: vec![
                task("a", &["./src/a.rs"], &[]),
                task("b", &["b.py"], &["a"]),
            ],
        };
        validate(&mut plan, &accept_all).unwrap();
        assert_eq!(plan.tasks[0].files, vec!["src/a.rs"]);
        assert_eq!(plan.task("b").unwrap().depends_on, vec!["a"]);
    }

    #[test]
    fn a_cycle_is_reported_with_its_ids() {
        let mut plan = Plan {
            tasks: vec![
                task("a", &["a.rs"], &["c"]),
                task("b", &["b.rs"], &["a"]),
                task("c", &["c.rs"], &["b"]),
                task("d", &["d.rs"], &[]),
            ],
        };
        let error = validate(&mut plan, &accept_all).unwrap_err();
        assert_eq!(
            error,
            PlanError::Cycle(vec!["a".into(), "c".into(), "b".into(), "a".into()])
        );
        assert_eq!(
            error.to_string(),
            "the dependencies form a cycle: a → c → b → a"
        );
        let mut self_loop = Plan {
            tasks: vec![task("x", &["x.rs"], &["x"])],
        };
        assert_eq!(
            validate(&mut self_loop, &accept_all).unwrap_err(),
            PlanError::Cycle(vec!["x".into(), "x".into()])
        );
    }

    #[test]
    fn unknown_dependencies_duplicates_and_empty_plans_are_refused() {
        let mut unknown = Plan {
            tasks: vec![task("a", &["a.rs"], &["zz"])],
        };
        assert!(matches!(
            validate(&mut unknown, &accept_all),
            Err(PlanError::UnknownDependency { dependency, .. }) if dependency == "zz"
        ));
        let mut twice = Plan {
            tasks: vec![task("a", &["a.rs"], &[]), task("a", &["b.rs"], &[])],
        };
        assert_eq!(
            validate(&mut twice, &accept_all),
            Err(PlanError::DuplicateId("a".into()))
        );
        let mut empty = Plan { tasks: vec![] };
        assert_eq!(validate(&mut empty, &accept_all), Err(PlanError::Empty));
        let mut no_files = Plan {
            tasks: vec![task("a", &[], &[])],
        };
        assert_eq!(
            validate(&mut no_files, &accept_all),
            Err(PlanError::NoFiles("a".into()))
        );
    }

    #[test]
    fn a_refused_file_names_task_path_and_reason() {
        let mut plan = Plan {
            tasks: vec![task("a", &["../outside.rs"], &[])],
        };
        let refuse = |path: &str, _: bool| -> Result<String, String> {
            Err(format!("{path} leaves the repository"))
        };
        let error = validate(&mut plan, &refuse).unwrap_err();
        assert_eq!(
            error.to_string(),
            "task `a`: ../outside.rs: ../outside.rs leaves the repository"
        );
    }

    #[test]
    fn plans_are_read_from_fenced_or_chatty_answers() {
        let answer = "Here is the plan:\n```json\n{\"tasks\": [{\"id\": \"t1\", \"description\": \"use {braces}\", \"files\": [\"a.rs\"], \"depends_on\": []}]}\n```\nDone.";
        let plan = parse_plan(answer).unwrap();
        assert_eq!(plan.tasks[0].description, "use {braces}");
        assert!(matches!(parse_plan("no plan"), Err(PlanError::Json(_))));
        assert!(matches!(
            parse_plan("{\"tasks\": 3}"),
            Err(PlanError::Json(_))
        ));
    }
}
