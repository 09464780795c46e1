//! Talking to a running daemon: find its socket, send one request, read one response.
//!
//! Every command that reads the index tries the daemon first (warm model, open index) and
//! falls back to opening the index itself when no daemon answers. A socket file nobody
//! listens on (a daemon killed with `kill -9`) counts as no daemon.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use quarry_indexer::IndexLayout;
use quarry_indexer::sync::{SettingsOverrides, SyncReport};
use quarry_retriever::{ContextPack, FileHit, GraphAnswer, GraphRequest, Hit, SearchRequest};

use super::protocol::{
    DaemonInfo, PROTOCOL_VERSION, Request, RequestLine, Response, ResponseLine, socket_path,
};

/// How long a command waits for an answer to a search (which may wait for an update).
const SEARCH_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `status` and `stop` may take.
const QUICK_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to the daemon of one index.
pub struct DaemonClient {
    stream: UnixStream,
}

impl DaemonClient {
    /// Connects to the daemon of `layout`, if one is listening.
    pub fn connect(layout: &IndexLayout) -> Option<Self> {
        let stream = UnixStream::connect(socket_path(layout)).ok()?;
        Some(DaemonClient { stream })
    }

    /// Sends `request` and waits up to `timeout` for the answer. A daemon error becomes an
    /// error with its message.
    pub fn call(&mut self, request: Request, timeout: Duration) -> Result<Response> {
        self.stream.set_read_timeout(Some(timeout))?;
        self.stream
            .set_write_timeout(Some(Duration::from_secs(5)))?;
        let line = serde_json::to_string(&RequestLine {
            v: PROTOCOL_VERSION,
            request,
        })?;
        self.stream.write_all(line.as_bytes())?;
        self.stream.write_all(b"\n")?;
        self.stream.flush()?;
        let mut reader = BufReader::new(&self.stream);
        let mut answer = String::new();
        if reader.read_line(&mut answer)? == 0 {
            bail!("the quarry daemon closed the connection without answering");
        }
        let parsed: ResponseLine = serde_json::from_str(&answer)
            .map_err(|e| anyhow!("the quarry daemon sent an unreadable answer: {e}"))?;
        if parsed.v != PROTOCOL_VERSION {
            bail!(
                "the running quarry daemon speaks protocol v{} and this quarry v{}; restart it with `quarry daemon --stop` then `quarry daemon`",
                parsed.v,
                PROTOCOL_VERSION
            );
        }
        match parsed.response {
            Response::Error { message } => Err(anyhow!(message)),
            other => Ok(other),
        }
    }

    /// The daemon's state.
    pub fn status(&mut self) -> Result<DaemonInfo> {
        match self.call(Request::Status, QUICK_TIMEOUT)? {
            Response::Status(info) => Ok(info),
            other => Err(unexpected("status", &other)),
        }
    }

    /// Searches through the daemon: the hits, and a note for stderr when it could only
    /// answer from keywords.
    pub fn search(&mut self, request: SearchRequest) -> Result<(Vec<Hit>, Option<String>)> {
        match self.call(Request::Search { request }, SEARCH_TIMEOUT)? {
            Response::Hits { hits, note } => Ok((hits, note)),
            other => Err(unexpected("search", &other)),
        }
    }

    /// Ranks files through the daemon, with a note as for [`DaemonClient::search`].
    pub fn search_files(
        &mut self,
        request: SearchRequest,
    ) -> Result<(Vec<FileHit>, Option<String>)> {
        match self.call(Request::SearchFiles { request }, SEARCH_TIMEOUT)? {
            Response::Files { files, note } => Ok((files, note)),
            other => Err(unexpected("file search", &other)),
        }
    }

    /// Looks names up in the code graph through the daemon.
    pub fn graph(&mut self, request: GraphRequest) -> Result<GraphAnswer> {
        match self.call(Request::Graph { request }, SEARCH_TIMEOUT)? {
            Response::Graph { answer } => Ok(answer),
            other => Err(unexpected("graph lookup", &other)),
        }
    }

    /// Retrieves and packs prompt context through the daemon.
    pub fn pack(&mut self, request: SearchRequest, budget: usize) -> Result<ContextPack> {
        match self.call(Request::Pack { request, budget }, SEARCH_TIMEOUT)? {
            Response::Pack { pack } => Ok(pack),
            other => Err(unexpected("context request", &other)),
        }
    }

    /// Has the daemon bring the index up to date now and waits for it.
    pub fn index(
        &mut self,
        overrides: SettingsOverrides,
        rebuild: bool,
        keyword_only: Option<bool>,
    ) -> Result<SyncReport> {
        let request = Request::Index {
            overrides,
            rebuild,
            keyword_only,
        };
        match self.call(request, Duration::from_secs(24 * 3600))? {
            Response::Indexed { report } => Ok(report),
            other => Err(unexpected("index request", &other)),
        }
    }

    /// Asks the daemon to finish what it is doing and exit.
    pub fn stop(&mut self) -> Result<()> {
        self.call(Request::Stop, QUICK_TIMEOUT).map(|_| ())
    }
}

fn unexpected(what: &str, answer: &Response) -> anyhow::Error {
    anyhow!("the quarry daemon answered a {what} with {answer:?}")
}
