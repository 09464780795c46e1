//! The daemon itself: the single writer of one index, kept fresh by a file watcher, serving
//! searches with a warm model over a Unix socket.
//!
//! Three kinds of work run side by side. A watcher thread turns file events into batches. One
//! indexer task runs jobs in order (the startup sync, batches of changes, `quarry index`
//! requests), each as an incremental sync on the blocking pool while holding the writer lock
//! for the daemon's whole life. Connection tasks answer requests. Qdrant Edge allows one owner
//! per shard, so the index state sits behind one mutex: a sync closes the search handle and
//! reopens it after; a search that arrives during a long sync waits briefly, then answers from
//! the keyword index alone and says so, as `quarry search` does beside a running
//! `quarry index`.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use quarry_indexer::embed::{Embedder, SharedEmbedder};
use quarry_indexer::sync::{SettingsOverrides, SyncOptions, SyncReport, is_keyword_only};
use quarry_indexer::watch::{BatchTiming, ChangeBatch, RepoWatcher, Wait};
use quarry_indexer::{IndexError, IndexLayout};
use quarry_retriever::{
    Fallback, GraphAnswer, GraphRequest, IndexOwner, Mode, Retriever, SearchError, SearchRequest,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Notify, mpsc, oneshot};

use super::client::DaemonClient;
use super::protocol::{
    DaemonInfo, PROTOCOL_VERSION, Request, RequestLine, Response, ResponseLine, log_path,
    socket_path,
};

/// Longest request line accepted; anything longer is refused and the connection closed.
const MAX_REQUEST_BYTES: u64 = 1024 * 1024;
/// How long a search waits for a running update before answering from keywords alone.
const SEARCH_WAIT: Duration = Duration::from_secs(3);
/// Rescan interval when the OS watcher cannot be used.
const POLL_EVERY: Duration = Duration::from_secs(2);

/// How the daemon was asked to run.
#[derive(Debug, Clone, Copy)]
pub struct DaemonOptions {
    /// Keep (or build) the index without vectors.
    pub keyword_only: bool,
    /// `-v` count: also log to stderr.
    pub verbose: u8,
}

/// Runs the daemon for `layout` until it is stopped.
pub fn serve(layout: IndexLayout, options: DaemonOptions) -> Result<()> {
    if let Some(mut client) = DaemonClient::connect(&layout)
        && let Ok(info) = client.status()
    {
        bail!(
            "a quarry daemon already runs for {} (pid {})",
            layout.root.display(),
            info.pid
        );
    }
    // The lock first: a daemon that cannot write loads no model.
    let mut owner = match IndexOwner::acquire(&layout, None) {
        Ok(owner) => owner,
        Err(IndexError::Locked { pid, .. }) => bail!(
            "the index at {} is being written by another quarry process{}; start the daemon when it finishes",
            layout.dir.display(),
            pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
        ),
        Err(e) => return Err(e.into()),
    };
    super::log::init(&log_path(&layout), options.verbose)
        .with_context(|| format!("cannot open the log {}", log_path(&layout).display()))?;
    if !(options.keyword_only || is_keyword_only(&layout)) {
        owner.set_embedder(Some(SharedEmbedder::configured()?));
    }

    let embedder_model = owner.embedder().map(|e| e.model_id().to_string());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let shared = Arc::new(Shared {
        layout: layout.clone(),
        started: Instant::now(),
        index: Mutex::new(owner),
        reader: Mutex::new(None),
        info: Mutex::new(Progress {
            model: embedder_model,
            ..Progress::default()
        }),
        cancel: Arc::new(AtomicBool::new(false)),
    });
    let result = runtime.block_on(run(shared.clone()));
    drop(runtime);
    // Close the stores before the lock goes: the next writer must find them flushed.
    if let Ok(mut owner) = shared.index.lock() {
        owner.close_reader();
    }
    tracing::info!("daemon stopped");
    result
}

async fn run(shared: Arc<Shared>) -> Result<()> {
    let socket = socket_path(&shared.layout);
    if socket.exists() {
        // Nobody answered on it above: a daemon that died without cleaning up left it.
        tracing::info!("replacing the stale socket {}", socket.display());
        std::fs::remove_file(&socket)
            .with_context(|| format!("cannot remove the stale socket {}", socket.display()))?;
    }
    let listener = UnixListener::bind(&socket)
        .with_context(|| format!("cannot listen on {}", socket.display()))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", socket.display()))?;
    tracing::info!(
        pid = std::process::id(),
        root = %shared.layout.root.display(),
        socket = %socket.display(),
        "daemon listening"
    );

    let (jobs, job_queue) = mpsc::unbounded_channel::<Job>();
    let stopping = Arc::new(AtomicBool::new(false));
    let watching = start_watcher(&shared.layout, jobs.clone(), stopping.clone());
    shared.progress().watching = watching;
    // Catch up with whatever changed while no daemon ran (and repair a crashed run).
    let _ = jobs.send(Job::Changes(ChangeBatch {
        paths: BTreeSet::new(),
        rescan: true,
    }));
    let indexer = tokio::spawn(indexer_loop(shared.clone(), job_queue));

    let stop = Arc::new(Notify::new());
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream, shared.clone(), jobs.clone(), stop.clone()));
                }
                Err(e) => tracing::warn!("accept failed: {e}"),
            },
            _ = stop.notified() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
        }
    }
    tracing::info!("stopping: finishing the batch in flight");
    stopping.store(true, Ordering::SeqCst);
    // A long update (a first index, a big checkout) stops at its next batch boundary and
    // commits what it finished; the next start carries on from there.
    shared.cancel.store(true, Ordering::SeqCst);
    drop(listener);
    let _ = std::fs::remove_file(&socket);
    // Changes queued before the stop are still indexed; then the indexer ends.
    let _ = jobs.send(Job::Stop);
    if let Err(e) = indexer.await {
        tracing::error!("indexer task failed: {e}");
    }
    Ok(())
}

/// Work for the indexer task, run one at a time.
enum Job {
    /// Files changed (or a rescan is due).
    Changes(ChangeBatch),
    /// `quarry index` asked for an update through the socket.
    Index(IndexJob),
    /// The daemon is stopping: end after the jobs queued before this one.
    Stop,
}

/// An update `quarry index` asked for, and where its report goes.
struct IndexJob {
    overrides: SettingsOverrides,
    rebuild: bool,
    keyword_only: Option<bool>,
    reply: oneshot::Sender<Result<SyncReport, String>>,
}

async fn indexer_loop(shared: Arc<Shared>, mut queue: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = queue.recv().await {
        match job {
            Job::Stop => break,
            Job::Changes(mut batch) => {
                // Everything queued behind this batch joins it: one sync for the lot.
                let mut deferred = Vec::new();
                let mut stop = false;
                while let Ok(next) = queue.try_recv() {
                    match next {
                        Job::Changes(more) => {
                            batch.paths.extend(more.paths);
                            batch.rescan |= more.rescan;
                        }
                        Job::Stop => stop = true,
                        Job::Index(job) => deferred.push(job),
                    }
                }
                shared.note_pending(batch.paths.len());
                let paths = batch.paths.len();
                let worker = shared.clone();
                let result = tokio::task::spawn_blocking(move || {
                    let options = SyncOptions {
                        cancel: Some(worker.cancel.clone()),
                        ..SyncOptions::default()
                    };
                    worker.update(&options, None)
                })
                .await;
                log_update(&format!("{paths} changed paths"), &result);
                for job in deferred {
                    run_index_job(&shared, job).await;
                }
                if stop {
                    break;
                }
            }
            Job::Index(job) => run_index_job(&shared, job).await,
        }
    }
}

async fn run_index_job(shared: &Arc<Shared>, job: IndexJob) {
    let IndexJob {
        overrides,
        rebuild,
        keyword_only,
        reply,
    } = job;
    let worker = shared.clone();
    let result = tokio::task::spawn_blocking(move || {
        let options = SyncOptions {
            overrides,
            force_rebuild: rebuild,
            cancel: Some(worker.cancel.clone()),
        };
        worker.update(&options, keyword_only)
    })
    .await;
    log_update("an index request", &result);
    let _ = reply.send(result.unwrap_or_else(|e| Err(format!("the update task failed: {e}"))));
}

fn log_update(what: &str, result: &Result<Result<SyncReport, String>, tokio::task::JoinError>) {
    match result {
        Ok(Ok(report)) => tracing::info!(
            files_indexed = report.files_indexed,
            files_removed = report.files_removed,
            chunks_written = report.chunks_written,
            embedded = report.chunks_embedded,
            elapsed_ms = report.elapsed_ms,
            "updated for {what}"
        ),
        Ok(Err(error)) => tracing::error!("update for {what} failed: {error}"),
        Err(error) => tracing::error!("update task for {what} failed: {error}"),
    }
}

/// Starts the watcher thread; without a working OS watcher, a timer asks for rescans
/// instead. Returns whether the OS watcher runs.
fn start_watcher(
    layout: &IndexLayout,
    jobs: mpsc::UnboundedSender<Job>,
    stopping: Arc<AtomicBool>,
) -> bool {
    let watcher = RepoWatcher::start(&layout.root, &layout.dir);
    let watching = watcher.is_ok();
    let spawned = std::thread::Builder::new()
        .name("quarry-watch".into())
        .spawn(move || match watcher {
            Ok(mut watcher) => {
                while !stopping.load(Ordering::SeqCst) {
                    match watcher.next_batch(Duration::from_millis(200), BatchTiming::default()) {
                        Wait::Changes(batch) => {
                            tracing::debug!(
                                paths = batch.paths.len(),
                                rescan = batch.rescan,
                                "changes"
                            );
                            if jobs.send(Job::Changes(batch)).is_err() {
                                break;
                            }
                        }
                        Wait::Idle => {}
                        Wait::Closed => {
                            tracing::error!(
                                "the file watcher stopped; rescanning every {POLL_EVERY:?}"
                            );
                            poll(&jobs, &stopping);
                            break;
                        }
                    }
                }
            }
            Err(error) => {
                tracing::warn!("{error}; rescanning every {POLL_EVERY:?} instead");
                poll(&jobs, &stopping);
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the watcher thread: {e}");
    }
    watching
}

fn poll(jobs: &mpsc::UnboundedSender<Job>, stopping: &AtomicBool) {
    while !stopping.load(Ordering::SeqCst) {
        std::thread::sleep(POLL_EVERY);
        let batch = ChangeBatch {
            paths: BTreeSet::new(),
            rescan: true,
        };
        if jobs.send(Job::Changes(batch)).is_err() {
            break;
        }
    }
}

async fn serve_connection(
    stream: UnixStream,
    shared: Arc<Shared>,
    jobs: mpsc::UnboundedSender<Job>,
    stop: Arc<Notify>,
) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        let read = (&mut reader)
            .take(MAX_REQUEST_BYTES)
            .read_line(&mut line)
            .await;
        let too_long =
            matches!(read, Ok(n) if n as u64 == MAX_REQUEST_BYTES && !line.ends_with('\n'));
        let response = match read {
            Ok(0) | Err(_) => return,
            _ if too_long => Response::Error {
                message: format!("request longer than {MAX_REQUEST_BYTES} bytes"),
            },
            Ok(_) => match serde_json::from_str::<RequestLine>(line.trim_end()) {
                Err(e) => Response::Error {
                    message: format!("malformed request: {e}"),
                },
                Ok(request) if request.v != PROTOCOL_VERSION => Response::Error {
                    message: format!(
                        "this daemon speaks protocol v{PROTOCOL_VERSION}, the request v{}; restart the daemon",
                        request.v
                    ),
                },
                Ok(request) => handle(request.request, &shared, &jobs).await,
            },
        };
        let stopping = matches!(response, Response::Stopping);
        let Ok(mut out) = serde_json::to_string(&ResponseLine {
            v: PROTOCOL_VERSION,
            response,
        }) else {
            return;
        };
        out.push('\n');
        if write.write_all(out.as_bytes()).await.is_err() || too_long {
            return;
        }
        if stopping {
            stop.notify_one();
            return;
        }
    }
}

async fn handle(
    request: Request,
    shared: &Arc<Shared>,
    jobs: &mpsc::UnboundedSender<Job>,
) -> Response {
    match request {
        Request::Status => Response::Status(shared.info()),
        Request::Stop => Response::Stopping,
        Request::Search { request } => {
            let shared = shared.clone();
            blocking(move || shared.search(request)).await
        }
        Request::SearchFiles { request } => {
            let shared = shared.clone();
            blocking(move || shared.search_files(request)).await
        }
        Request::Graph { request } => {
            let shared = shared.clone();
            blocking(move || shared.graph(request)).await
        }
        Request::Pack { request, budget } => {
            let shared = shared.clone();
            blocking(move || shared.pack(request, budget)).await
        }
        Request::Index {
            overrides,
            rebuild,
            keyword_only,
        } => {
            let (reply, answer) = oneshot::channel();
            let job = Job::Index(IndexJob {
                overrides,
                rebuild,
                keyword_only,
                reply,
            });
            if jobs.send(job).is_err() {
                return Response::Error {
                    message: "the daemon is stopping".into(),
                };
            }
            match answer.await {
                Ok(Ok(report)) => Response::Indexed { report },
                Ok(Err(message)) => Response::Error { message },
                Err(_) => Response::Error {
                    message: "the daemon stopped before the update finished".into(),
                },
            }
        }
    }
}

async fn blocking(work: impl FnOnce() -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Response::Error {
            message: format!("the request failed inside the daemon: {e}"),
        })
}

/// What the daemon owns.
struct Shared {
    layout: IndexLayout,
    started: Instant,
    /// The writer lock, the model and the search handle; one user at a time.
    index: Mutex<IndexOwner>,
    /// A keyword-only handle for searches that arrive during a long update.
    reader: Mutex<Option<Retriever>>,
    info: Mutex<Progress>,
    /// Raised when the daemon stops: the running sync ends at its next batch boundary.
    cancel: Arc<AtomicBool>,
}

#[derive(Default)]
struct Progress {
    pending: usize,
    pending_since: Option<Instant>,
    last_update: Option<u64>,
    updates: u64,
    last_error: Option<String>,
    watching: bool,
    /// The embedding model kept loaded, if any.
    model: Option<String>,
}

impl Shared {
    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.info
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn state(&self) -> MutexGuard<'_, IndexOwner> {
        self.index
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn note_pending(&self, paths: usize) {
        let mut progress = self.progress();
        progress.pending = paths;
        progress.pending_since.get_or_insert_with(Instant::now);
    }

    /// Runs one incremental sync. `keyword_only`: `None` keeps the index as it is,
    /// `Some(true)` drops vectors, `Some(false)` makes sure they are built.
    fn update(
        &self,
        options: &SyncOptions,
        keyword_only: Option<bool>,
    ) -> Result<SyncReport, String> {
        let mut owner = self.state();
        let want_vectors = keyword_only.map_or(owner.embedder().is_some(), |keyword| !keyword);
        if !want_vectors {
            owner.set_embedder(None);
        } else if owner.embedder().is_none() {
            owner.set_embedder(Some(
                SharedEmbedder::configured().map_err(|e| e.to_string())?,
            ));
        }
        self.progress().model = owner.embedder().map(|e| e.model_id().to_string());
        let result = owner.sync(options, &mut |_| {}).map_err(|e| match e {
            IndexError::Interrupted { .. } => {
                "stopped at a batch boundary; the next start carries on from there".to_string()
            }
            other => other.to_string(),
        });
        *self.reader.lock().unwrap_or_else(|p| p.into_inner()) = Retriever::open(&self.layout).ok();
        drop(owner);

        let mut progress = self.progress();
        progress.pending = 0;
        progress.pending_since = None;
        match &result {
            Ok(_) => {
                progress.updates += 1;
                progress.last_update = Some(unix_now());
                progress.last_error = None;
            }
            Err(error) => progress.last_error = Some(error.clone()),
        }
        result
    }

    /// The search handle, waiting a little for a running update; `None` after the wait.
    fn wait_for_index(&self) -> Option<MutexGuard<'_, IndexOwner>> {
        let deadline = Instant::now() + SEARCH_WAIT;
        loop {
            match self.index.try_lock() {
                Ok(state) => return Some(state),
                Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return None,
            }
        }
    }

    fn search(&self, request: SearchRequest) -> Response {
        self.answer(
            request,
            |retriever, request| retriever.search(request),
            |hits, note| Response::Hits { hits, note },
        )
    }

    fn search_files(&self, request: SearchRequest) -> Response {
        self.answer(
            request,
            |retriever, request| retriever.search_files(request),
            |files, note| Response::Files { files, note },
        )
    }

    fn pack(&self, request: SearchRequest, budget: usize) -> Response {
        self.answer(
            request,
            |retriever, request| retriever.pack_context(request, budget),
            |pack, _| Response::Pack { pack },
        )
    }

    /// A graph lookup: on the search handle, or, while a long update holds it, on the keyword
    /// handle (the graph lives in the keyword index, so nothing is lost).
    fn graph(&self, request: GraphRequest) -> Response {
        let answered = |result: Result<GraphAnswer, SearchError>| match result {
            Ok(answer) => Response::Graph { answer },
            Err(e) => Response::Error {
                message: e.to_string(),
            },
        };
        if let Some(mut owner) = self.wait_for_index()
            && let Ok(retriever) = owner.reader()
        {
            return answered(retriever.graph(&request));
        }
        let reader = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        match reader.as_ref() {
            Some(retriever) => answered(retriever.graph(&request)),
            None => not_ready(&self.layout),
        }
    }

    /// Runs `query` on the search handle, or, while a long update holds it, on the keyword
    /// handle (with the note saying so); `respond` shapes the result.
    fn answer<T>(
        &self,
        request: SearchRequest,
        query: impl Fn(&mut Retriever, &SearchRequest) -> Result<T, SearchError>,
        respond: impl Fn(T, Option<String>) -> Response,
    ) -> Response {
        let error = |e: SearchError| Response::Error {
            message: e.to_string(),
        };
        if let Some(mut owner) = self.wait_for_index()
            && let Ok(retriever) = owner.reader()
        {
            return query(retriever, &request).map_or_else(error, |found| respond(found, None));
        }
        let (request, note) = match self.keyword_fallback(request) {
            Ok(fallback) => fallback,
            Err(message) => return Response::Error { message },
        };
        let mut reader = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        match reader.as_mut().map(|r| query(r, &request)) {
            Some(Ok(found)) => respond(found, note),
            Some(Err(e)) => error(e),
            None => not_ready(&self.layout),
        }
    }

    /// The request as the keyword-only handle can answer it, with the note to show.
    fn keyword_fallback(
        &self,
        mut request: SearchRequest,
    ) -> Result<(SearchRequest, Option<String>), String> {
        match request.mode {
            Mode::Vector => Err(format!(
                "the daemon is updating the index at {}; vector search is available when it finishes (or use --mode keyword)",
                self.layout.dir.display()
            )),
            Mode::Hybrid => {
                request.mode = Mode::Keyword;
                Ok((
                    request,
                    Some(Fallback::WriterBusy { progress: None }.to_string()),
                ))
            }
            Mode::Keyword => Ok((request, None)),
        }
    }

    fn info(&self) -> DaemonInfo {
        let progress = self.progress();
        DaemonInfo {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            root: self.layout.root.clone(),
            uptime_secs: self.started.elapsed().as_secs(),
            pending_changes: progress.pending,
            last_update: progress.last_update,
            stale_ms: progress
                .pending_since
                .map_or(0, |since| since.elapsed().as_millis() as u64),
            updates: progress.updates,
            watching: progress.watching,
            last_error: progress.last_error.clone(),
            model: progress.model.clone(),
            log: log_path(&self.layout),
        }
    }
}

fn not_ready(layout: &IndexLayout) -> Response {
    Response::Error {
        message: format!(
            "the daemon is still building the index of {}; try again in a moment",
            layout.root.display()
        ),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Where `quarry daemon --stop` waits: until the daemon's lock is released.
pub fn wait_until_stopped(layout: &IndexLayout, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !layout.is_locked() && !socket_path(layout).exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
