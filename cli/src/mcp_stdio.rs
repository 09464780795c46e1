//! The MCP server's stdio: newline-delimited JSON-RPC where a line that is not JSON gets a
//! JSON-RPC parse error (-32700, `id: null`) instead of silence.
//!
//! rmcp reads and writes two in-process pipes; pumps connect them to the real stdin and
//! stdout. Every line reaching stdout comes from one writer task, whole, so a parse error
//! never interleaves with a response.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Bytes buffered in each pipe between the pumps and rmcp.
const PIPE_BYTES: usize = 1 << 16;

/// The transport rmcp serves on, and the task writing stdout.
pub(crate) struct Stdio {
    /// What rmcp reads: stdin's lines that are JSON.
    pub(crate) input: DuplexStream,
    /// What rmcp writes: its responses and notifications, forwarded to stdout.
    pub(crate) output: DuplexStream,
    writer: JoinHandle<()>,
}

impl Stdio {
    /// Starts the pumps on the current runtime.
    pub(crate) fn start() -> Stdio {
        let (input, mut feed) = tokio::io::duplex(PIPE_BYTES);
        let (output, drain) = tokio::io::duplex(PIPE_BYTES);
        let (lines_out, mut to_stdout) = mpsc::unbounded_channel::<Vec<u8>>();
        let errors = lines_out.clone();
        tokio::spawn(async move {
            let mut stdin = BufReader::new(tokio::io::stdin());
            let mut line = Vec::new();
            loop {
                line.clear();
                match stdin.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice::<serde_json::Value>(&line) {
                    Ok(_) => {
                        if !line.ends_with(b"\n") {
                            line.push(b'\n');
                        }
                        if feed.write_all(&line).await.is_err() {
                            break;
                        }
                    }
                    Err(error) => {
                        let _ = errors.send(parse_error(&error));
                    }
                }
            }
            // Dropping `feed` ends rmcp's input, as a closed stdin did.
        });
        tokio::spawn(async move {
            let mut drain = BufReader::new(drain);
            loop {
                let mut line = Vec::new();
                match drain.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if lines_out.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let writer = tokio::spawn(async move {
            let mut stdout = tokio::io::stdout();
            while let Some(line) = to_stdout.recv().await {
                if stdout.write_all(&line).await.is_err() || stdout.flush().await.is_err() {
                    break;
                }
            }
        });
        Stdio {
            input,
            output,
            writer,
        }
    }

    /// Waits (briefly) until everything the server wrote has reached stdout.
    pub(crate) async fn flush(writer: JoinHandle<()>) {
        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    }

    /// The pipes for rmcp and the writer to [`Stdio::flush`] once the server ends.
    pub(crate) fn split(self) -> ((DuplexStream, DuplexStream), JoinHandle<()>) {
        ((self.input, self.output), self.writer)
    }
}

/// The JSON-RPC 2.0 answer to a line that is not JSON.
fn parse_error(error: &serde_json::Error) -> Vec<u8> {
    let mut line = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32700, "message": format!("Parse error: {error}")},
    })
    .to_string()
    .into_bytes();
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parse_error_is_one_json_rpc_line() {
        let error = serde_json::from_str::<serde_json::Value>("{nope").unwrap_err();
        let line = parse_error(&error);
        assert!(line.ends_with(b"\n"));
        let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(value["error"]["code"], -32700);
        assert_eq!(value["id"], serde_json::Value::Null);
        assert_eq!(value["jsonrpc"], "2.0");
    }
}
