//! Post-processing steps of a job.
//!
//! Owns the job's side of the shared post-processing worker: the steps
//! waiting for room in its queue and the ones queued or running.
//! Invariants: a step runs only on a file journaled as done, and only
//! while the job runs; its result is journaled, so a step that finished
//! is never run again and one cut short by a stop runs again at the next
//! start.

use std::collections::{HashSet, VecDeque};
use std::path::Path;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::checkpoint::Record;
use crate::postprocess::{PostEvent, PostTask, PostWorker};
use crate::runner::run::{Mode, Runner};

/// The job's post-processing steps.
pub(super) struct Post {
    /// The post-processing worker.
    pub(super) worker: Option<PostWorker>,
    /// Results from the post-processing worker.
    pub(super) tx: Sender<PostEvent>,
    /// Results from the post-processing worker.
    pub(super) rx: Receiver<PostEvent>,
    /// Items whose post step is queued or running.
    pub(super) inflight: HashSet<u64>,
    /// Items whose post step waits for room in the worker's queue.
    pub(super) backlog: VecDeque<u64>,
}

impl Post {
    /// Steps handed to `worker` (none run without one).
    pub(super) fn new(worker: Option<PostWorker>) -> Post {
        let (tx, rx) = bounded(64);
        Post { worker, tx, rx, inflight: HashSet::new(), backlog: VecDeque::new() }
    }
}

impl Runner {
    /// Hands post-processing steps to the worker while it has room.
    pub(super) fn pump_post(&mut self) {
        if !matches!(self.mode, Mode::Running) {
            return;
        }
        while let Some(i) = self.post.backlog.pop_front() {
            let Some((path, step)) = self.progress.post.get(&i).cloned() else { continue };
            let Some(worker) = &self.post.worker else {
                // No worker (it failed to start): the file stays as it is.
                self.record(Record::PostDone { i, r: Some("post-processing is not available".into()) });
                continue;
            };
            let Some(input) = self.dest_of(&path) else { continue };
            let Some(output) = self.dest_of(&step.out) else {
                self.record(Record::PostDone { i, r: Some(format!("unsafe output path {:?}", step.out)) });
                continue;
            };
            let task = PostTask { item: i, input, output, step, reply: self.post.tx.clone() };
            match worker.try_send(task) {
                Ok(()) => {
                    self.post.inflight.insert(i);
                }
                Err(_) => {
                    self.post.backlog.push_front(i);
                    break;
                }
            }
        }
    }

    /// Handles a post-processing result.
    pub(super) fn on_post(&mut self, ev: PostEvent) {
        self.post.inflight.remove(&ev.item);
        if let Some(parent) =
            self.progress.post.get(&ev.item).and_then(|(p, _)| Path::new(p).parent().map(Path::to_path_buf))
        {
            self.commits.dirs_to_sync.insert(self.spec.job_dir().join(parent));
        }
        self.record(Record::PostDone { i: ev.item, r: ev.result.err() });
    }
}
