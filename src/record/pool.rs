//! The recorder threads and what they are asked and answer.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use crate::checkpoint::{Stream, StreamProtocol};
use crate::download::Outcome;
use crate::job::{JobFlags, Tid};

/// One recording to make (or continue).
#[derive(Debug, Clone)]
pub struct RecordTask {
    /// The job.
    pub job: Tid,
    /// The item.
    pub item: u64,
    /// What to record.
    pub stream: Stream,
    /// The final path of the first piece.
    pub dest: PathBuf,
    /// Request headers (Referer, Cookie, …); never logged.
    pub headers: Arc<[(String, String)]>,
    /// Connect and read timeout.
    pub timeout: Duration,
    /// The provider can give a fresh URL: a 403 ends the attempt as
    /// `Outcome::Expired` (what was recorded is kept) instead of counting
    /// as a failed fetch.
    pub refreshable: bool,
    /// The provider said the stream is over: end the recording with what
    /// it holds, without fetching anything.
    pub finish: bool,
    /// The job's stop flag and byte counter.
    pub flags: Arc<JobFlags>,
    /// Where reports go (the job's runner).
    pub reply: Sender<RecordEvent>,
}

/// A recorder's report.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordEvent {
    /// Recorded so far (sent about every 2 s).
    Progress {
        /// The item.
        item: u64,
        /// Seconds recorded.
        secs: f64,
        /// Bytes recorded.
        bytes: u64,
    },
    /// The recording ended, stopped or failed.
    Ended {
        /// The item.
        item: u64,
        /// How.
        outcome: Outcome,
    },
}

/// A message to the recorder threads.
enum Msg {
    /// Record.
    Run(Box<RecordTask>),
    /// Stop (one thread per message).
    Quit,
}

/// Handle to the recorder threads; cheap to clone.
#[derive(Clone)]
pub struct Recorders {
    /// The queue.
    tx: Sender<Msg>,
    /// Threads, for `quit`.
    threads: usize,
}

impl std::fmt::Debug for Recorders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recorders({})", self.threads)
    }
}

impl Recorders {
    /// Starts `threads` recorders sharing `agent`. The queue holds one
    /// recording per thread: a recording waits in its job until a
    /// recorder is free.
    pub fn start(threads: usize, agent: &ureq::Agent) -> std::io::Result<(Recorders, Vec<JoinHandle<()>>)> {
        let threads = threads.max(1);
        let (tx, rx) = bounded::<Msg>(threads);
        let mut joins = Vec::new();
        for n in 0..threads {
            let rx = rx.clone();
            let agent = agent.clone();
            joins.push(thread::Builder::new().name(format!("record-{n}")).spawn(move || run(&rx, &agent))?);
        }
        Ok((Recorders { tx, threads }, joins))
    }

    /// Queues a recording without blocking; gives it back when every
    /// recorder is busy.
    pub fn try_send(&self, task: RecordTask) -> Result<(), Box<RecordTask>> {
        match self.tx.try_send(Msg::Run(Box::new(task))) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(Msg::Run(t)) | TrySendError::Disconnected(Msg::Run(t))) => Err(t),
            Err(_) => Ok(()),
        }
    }

    /// Asks every recorder to stop after its recording.
    pub fn quit(&self) {
        for _ in 0..self.threads {
            let _ = self.tx.send(Msg::Quit);
        }
    }
}

/// A thread body.
fn run(rx: &Receiver<Msg>, agent: &ureq::Agent) {
    while let Ok(Msg::Run(task)) = rx.recv() {
        let outcome = crate::job::catch_panic(|| match task.stream.protocol {
            _ if task.finish => super::hls::finish_now(&task),
            StreamProtocol::Hls => super::hls::record(agent, &task),
            StreamProtocol::Flv => super::flv::record(agent, &task),
        })
        .unwrap_or_else(|what| {
            log::error!("job {}: the recorder of item {} panicked: {what}", task.job, task.item);
            Outcome::Failed { reason: "the recorder crashed (what was recorded is kept)".into() }
        });
        let _ = task.reply.send(RecordEvent::Ended { item: task.item, outcome });
    }
}

/// Sends a progress report without blocking (a full channel drops it: the
/// next one comes soon).
pub(super) fn report(task: &RecordTask, secs: f64, bytes: u64) {
    let _ = task.reply.try_send(RecordEvent::Progress { item: task.item, secs, bytes });
}
