//! The post-processing thread.

use std::path::PathBuf;
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::checkpoint::PostStep;
use crate::convert::{Frame, UgoiraFormat, convert_ugoira};

/// One step to run.
#[derive(Debug, Clone)]
pub struct PostTask {
    /// The item's index in its job.
    pub item: u64,
    /// The downloaded file.
    pub input: PathBuf,
    /// Where the result goes.
    pub output: PathBuf,
    /// What to do.
    pub step: PostStep,
    /// Where the result is reported (the job's runner).
    pub reply: Sender<PostEvent>,
}

/// The result of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostEvent {
    /// The item.
    pub item: u64,
    /// `Err(reason)` when the step failed.
    pub result: Result<(), String>,
}

/// A message to the worker.
enum Msg {
    /// Run a step.
    Task(Box<PostTask>),
    /// Stop after the current step.
    Quit,
}

/// Handle to the worker; cheap to clone.
#[derive(Debug, Clone)]
pub struct PostWorker {
    /// The bounded queue.
    tx: Sender<Msg>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Task(t) => write!(f, "Task({})", t.item),
            Msg::Quit => f.write_str("Quit"),
        }
    }
}

impl PostWorker {
    /// Starts the worker with a queue of `capacity` steps.
    pub fn start(capacity: usize) -> std::io::Result<(PostWorker, JoinHandle<()>)> {
        let (tx, rx) = bounded::<Msg>(capacity.max(1));
        let join = thread::Builder::new().name("post-process".into()).spawn(move || run(&rx))?;
        Ok((PostWorker { tx }, join))
    }

    /// Queues a step without blocking; gives it back when the queue is full.
    pub fn try_send(&self, task: PostTask) -> Result<(), Box<PostTask>> {
        match self.tx.try_send(Msg::Task(Box::new(task))) {
            Ok(()) => Ok(()),
            Err(e) => match e.into_inner() {
                Msg::Task(t) => Err(t),
                // Only a task was sent, so only a task can come back.
                Msg::Quit => Ok(()),
            },
        }
    }

    /// Asks the worker to stop after its current step.
    pub fn quit(&self) {
        let _ = self.tx.send(Msg::Quit);
    }
}

/// The thread body.
fn run(rx: &Receiver<Msg>) {
    while let Ok(msg) = rx.recv() {
        let Msg::Task(task) = msg else { return };
        let result = execute(&task);
        if let Err(e) = &result {
            log::warn!("post-processing {} failed: {e}", task.input.display());
        }
        let _ = task.reply.send(PostEvent { item: task.item, result });
    }
}

/// Runs one step.
fn execute(task: &PostTask) -> Result<(), String> {
    match &task.step {
        PostStep::Ugoira { frames, format, .. } => {
            let format = match format.as_str() {
                "gif" => UgoiraFormat::Gif,
                "apng" => UgoiraFormat::Apng,
                "webp" => UgoiraFormat::Webp,
                "zip" => return Ok(()),
                other => return Err(format!("unknown ugoira format {other:?}")),
            };
            let frames: Vec<Frame> =
                frames.iter().map(|(file, delay)| Frame { file: file.clone(), delay: *delay }).collect();
            convert_ugoira(&task.input, &frames, format, &task.output).map_err(|e| e.to_string())
        }
    }
}
