//! LLM endpoints for tests: a scripted OpenAI-compatible stub, and the real llama.cpp server
//! with a tiny local model when the setup scripts installed it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One request the stub received.
#[derive(Debug, Clone)]
pub struct StubRequest {
    /// Request line and headers.
    pub head: String,
    /// The JSON body.
    pub body: Value,
}

/// The environment that points `quarry` at a stub.
pub fn stub_env(stub: &StubLlm) -> Vec<(&str, &str)> {
    vec![
        ("QUARRY_LLM_URL", stub.url.as_str()),
        ("QUARRY_LLM_MODEL", "stub"),
    ]
}

/// Whether a request is the edit planner's.
pub fn is_plan(request: &StubRequest) -> bool {
    request.prompt().contains("You are the planner")
}

/// Whether a request is an edit fixer's (a failing check goes to it).
pub fn is_fix(request: &StubRequest) -> bool {
    request.prompt().contains("Then the check")
}

/// One SEARCH/REPLACE block of a worker's answer.
pub fn block(path: &str, search: &str, replace: &str) -> String {
    format!("{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n")
}

impl StubRequest {
    /// All message contents joined: what the model was shown.
    pub fn prompt(&self) -> String {
        self.body["messages"]
            .as_array()
            .map(|messages| {
                messages
                    .iter()
                    .filter_map(|m| m["content"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    }
}

/// What the stub answers to one request.
pub type Responder = dyn Fn(&StubRequest) -> String + Send + Sync;

/// An OpenAI-compatible Chat Completions endpoint on 127.0.0.1 that answers every request
/// with the text its responder makes from it, streamed when asked. Requests are recorded as
/// they arrive and answered in parallel.
pub struct StubLlm {
    /// Base URL to configure (`http://127.0.0.1:PORT/v1`).
    pub url: String,
    requests: Arc<Mutex<Vec<StubRequest>>>,
}

impl StubLlm {
    /// Starts the stub; it serves until the test process exits.
    pub fn start(respond: impl Fn(&StubRequest) -> String + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stub LLM");
        let url = format!("http://{}/v1", listener.local_addr().expect("address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let respond: Arc<Responder> = Arc::new(respond);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                // One thread per connection: parallel callers are answered in parallel.
                let respond = Arc::clone(&respond);
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || {
                    if let Some(request) = read_request(&stream) {
                        seen.lock().expect("lock").push(request.clone());
                        let answer = respond(&request);
                        let streaming = request.body["stream"] == json!(true);
                        write_answer(stream, &answer, streaming);
                    }
                });
            }
        });
        StubLlm { url, requests }
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<StubRequest> {
        self.requests.lock().expect("lock").clone()
    }
}

fn read_request(stream: &TcpStream) -> Option<StubRequest> {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(StubRequest {
        head,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

fn write_answer(mut stream: TcpStream, answer: &str, streaming: bool) {
    let usage =
        json!({"prompt_tokens": 100, "completion_tokens": answer.split_whitespace().count()});
    let (content_type, body) = if streaming {
        let mut body = String::new();
        for piece in answer.split_inclusive(' ') {
            let event = json!({"model": "stub", "choices": [{"delta": {"content": piece}}]});
            body.push_str(&format!("data: {event}\n\n"));
        }
        body.push_str(&format!(
            "data: {}\n\n",
            json!({"choices": [], "usage": usage})
        ));
        body.push_str("data: [DONE]\n\n");
        ("text/event-stream", body)
    } else {
        let body = json!({
            "model": "stub",
            "choices": [{"message": {"role": "assistant", "content": answer}}],
            "usage": usage,
        });
        ("application/json", body.to_string())
    };
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// llama.cpp's server running a local model, stopped (by pid) when dropped.
pub struct LlamaServer {
    /// Base URL (`http://127.0.0.1:PORT/v1`).
    pub url: String,
    child: Child,
}

impl LlamaServer {
    /// Starts the server named by `QUARRY_TEST_LLAMA_SERVER` with the model in
    /// `QUARRY_TEST_LLM_MODEL` on a free port and waits until it is healthy. Returns `None`
    /// (and says so) when those variables are unset; `scripts/test.sh` always sets them, so
    /// there the test runs or fails.
    pub fn start() -> Option<Self> {
        let (Some(server), Some(model)) = (
            std::env::var_os("QUARRY_TEST_LLAMA_SERVER"),
            std::env::var_os("QUARRY_TEST_LLM_MODEL"),
        ) else {
            eprintln!(
                "skipped: QUARRY_TEST_LLAMA_SERVER and QUARRY_TEST_LLM_MODEL are not set (scripts/test.sh sets them)"
            );
            return None;
        };
        let (server, model) = (PathBuf::from(server), PathBuf::from(model));
        assert!(
            server.is_file(),
            "{} is missing: run scripts/setup.sh --test",
            server.display()
        );
        assert!(
            model.is_file(),
            "{} is missing: run scripts/setup.sh --test",
            model.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(&server)
            .args(["-m"])
            .arg(&model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-t", "1", "-c", "8192", "-np", "1", "--no-webui"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start llama-server");
        let mut running = LlamaServer {
            url: format!("http://127.0.0.1:{port}/v1"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if health_ok(port) {
                return Some(running);
            }
            if let Ok(Some(status)) = running.child.try_wait() {
                panic!("llama-server exited during start-up: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "llama-server not healthy after 60 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn health_ok(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(
        stream,
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200")
}
