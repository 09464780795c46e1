//! The check command (`cargo test`, `pytest -q`): run in the repository with a timeout, in its
//! own process group so a timeout kills everything it started, with API keys and tokens
//! removed from its environment, and without network where the OS allows it.
//!
//! Network isolation uses a new network namespace through `unshare` (`-n` when privileged,
//! `-rn` as an unprivileged user); which one applied, or that none could, is reported with
//! every result.

use std::path::Path;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

/// Most bytes of output kept: the end, where failures are summarised.
const OUTPUT_TAIL: usize = 6000;

/// How a check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Exit status 0 within the timeout.
    pub passed: bool,
    /// The exit code, when it exited.
    pub exit_code: Option<i32>,
    /// Killed at the timeout.
    pub timed_out: bool,
    /// The end of stdout and stderr together.
    pub output: String,
    /// How it was kept off the network.
    pub isolation: String,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Names of environment variables that look like credentials.
fn is_credential(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        "KEY",
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "CREDENTIAL",
        "AUTH",
        "COOKIE",
    ]
    .iter()
    .any(|word| upper.contains(word))
}

/// The `unshare` arguments that give a process its own network namespace here, probed once.
fn network_isolation() -> &'static Option<Vec<&'static str>> {
    static PROBE: OnceLock<Option<Vec<&'static str>>> = OnceLock::new();
    PROBE.get_or_init(|| {
        [vec!["-n"], vec!["-r", "-n"]].into_iter().find(|args| {
            std::process::Command::new("unshare")
                .args(args)
                .arg("true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    })
}

/// Runs `command` with `sh -c` in `root`, killing its whole process group after `timeout`.
pub async fn run_check(
    root: &Path,
    command: &str,
    timeout: Duration,
) -> std::io::Result<CheckOutcome> {
    let script = format!("exec 2>&1\n{command}");
    let (mut child_command, isolation) = match network_isolation() {
        Some(args) => {
            let mut c = tokio::process::Command::new("unshare");
            c.args(args).arg("sh").arg("-c").arg(&script);
            (c, format!("no network (unshare {})", args.join(" ")))
        }
        None => {
            let mut c = tokio::process::Command::new("sh");
            c.arg("-c").arg(&script);
            (
                c,
                "none: unshare is unavailable, the check can reach the network".to_string(),
            )
        }
    };
    for (name, _) in std::env::vars_os() {
        if is_credential(&name.to_string_lossy()) {
            child_command.env_remove(&name);
        }
    }
    child_command
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = child_command.spawn()?;
    let pid = child.id();
    let mut stdout = child.stdout.take();
    let mut output = Vec::new();
    let run = async {
        if let Some(stdout) = stdout.as_mut() {
            let _ = stdout.read_to_end(&mut output).await;
        }
        child.wait().await
    };
    let result = tokio::time::timeout(timeout, run).await;
    let (exit_code, timed_out) = match result {
        Ok(status) => (status?.code(), false),
        Err(_) => {
            if let Some(pid) = pid {
                // SAFETY: kill(2) with a negative pid signals the process group the child
                // leads; it touches no memory.
                unsafe {
                    libc::kill(-(pid as i32), libc::SIGKILL);
                }
            }
            let _ = child.wait().await;
            (None, true)
        }
    };
    let text = String::from_utf8_lossy(&output);
    let tail = if text.len() > OUTPUT_TAIL {
        let mut cut = text.len() - OUTPUT_TAIL;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        format!("[… output trimmed …]\n{}", &text[cut..])
    } else {
        text.to_string()
    };
    Ok(CheckOutcome {
        passed: exit_code == Some(0),
        exit_code,
        timed_out,
        output: tail,
        isolation,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_passing_and_a_failing_check_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let ok = run_check(dir.path(), "echo fine", Duration::from_secs(10))
            .await
            .unwrap();
        assert!(ok.passed);
        assert_eq!(ok.output, "fine\n");
        let bad = run_check(
            dir.path(),
            "echo broken >&2; exit 3",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert!(!bad.passed);
        assert_eq!(bad.exit_code, Some(3));
        assert_eq!(bad.output, "broken\n");
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        let command = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let outcome = run_check(dir.path(), &command, Duration::from_millis(300))
            .await
            .unwrap();
        assert!(outcome.timed_out && !outcome.passed);
        assert!(outcome.elapsed < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(
            !marker.exists(),
            "a child of the check outlived the timeout"
        );
    }

    #[tokio::test]
    async fn credentials_never_reach_the_check() {
        let dir = tempfile::tempdir().unwrap();
        // SAFETY: set before the check is spawned; no other test reads this variable.
        unsafe { std::env::set_var("QUARRY_TEST_API_KEY", "sk-secret") };
        let outcome = run_check(dir.path(), "env", Duration::from_secs(10))
            .await
            .unwrap();
        assert!(!outcome.output.contains("sk-secret"));
        assert!(outcome.output.contains("PATH="));
    }
}
