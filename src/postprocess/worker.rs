//! The post-processing thread.

use std::path::PathBuf;
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::checkpoint::PostStep;
use crate::postprocess::PostRunners;

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
    /// Starts the worker with a queue of `capacity` steps, running the
    /// steps in `steps`.
    pub fn start(capacity: usize, steps: PostRunners) -> std::io::Result<(PostWorker, JoinHandle<()>)> {
        let (tx, rx) = bounded::<Msg>(capacity.max(1));
        let join = thread::Builder::new().name("post-process".into()).spawn(move || run(&rx, &steps))?;
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
fn run(rx: &Receiver<Msg>, steps: &PostRunners) {
    while let Ok(msg) = rx.recv() {
        let Msg::Task(task) = msg else { return };
        let result = execute(&task, steps);
        if let Err(e) = &result {
            log::warn!("post-processing {} failed: {e}", task.input.display());
        }
        let _ = task.reply.send(PostEvent { item: task.item, result });
    }
}

/// Runs one step; a panic in it fails the step, not the thread, so the
/// other jobs' steps still run.
fn execute(task: &PostTask, steps: &PostRunners) -> Result<(), String> {
    let Some(step) = steps.get(&task.step.name) else {
        return Err(format!("this build of spoolfetch has no post-processing step {:?}", task.step.name));
    };
    crate::job::catch_panic(|| step.run(&task.input, &task.step, &task.output))
        .unwrap_or_else(|what| Err(format!("the {:?} step crashed ({what})", task.step.name)))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::Map;

    use super::*;
    use crate::postprocess::PostRunner;

    struct Copy;
    impl PostRunner for Copy {
        fn name(&self) -> &'static str {
            "copy"
        }
        fn run(&self, input: &Path, _step: &PostStep, output: &Path) -> Result<(), String> {
            std::fs::copy(input, output).map(|_| ()).map_err(|e| e.to_string())
        }
    }

    struct Panics;
    impl PostRunner for Panics {
        fn name(&self) -> &'static str {
            "panics"
        }
        fn run(&self, _: &Path, step: &PostStep, _: &Path) -> Result<(), String> {
            panic!("bad frame in {}", step.out)
        }
    }

    fn task(dir: &Path, item: u64, name: &str, reply: &Sender<PostEvent>) -> PostTask {
        PostTask {
            item,
            input: dir.join("in"),
            output: dir.join(format!("out{item}")),
            step: PostStep { name: name.into(), out: format!("out{item}"), args: Map::new() },
            reply: reply.clone(),
        }
    }

    #[test]
    fn steps_run_by_name_and_a_panic_or_an_unknown_name_fails_only_that_step() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("in"), b"data").expect("input");
        let (worker, join) =
            PostWorker::start(4, PostRunners::new([&Copy as &dyn PostRunner, &Panics])).expect("start");
        let (tx, rx) = bounded(8);
        for (i, name) in [(0, "panics"), (1, "nope"), (2, "copy")] {
            assert!(worker.try_send(task(dir.path(), i, name, &tx)).is_ok());
        }
        let mut got: Vec<PostEvent> = (0..3).map(|_| rx.recv().expect("event")).collect();
        got.sort_by_key(|e| e.item);
        let r0 = got[0].result.clone().expect_err("the panic is a failure");
        assert!(r0.contains("crashed") && r0.contains("bad frame in out0"), "{r0}");
        let r1 = got[1].result.clone().expect_err("unknown step");
        assert!(r1.contains("\"nope\""), "{r1}");
        assert_eq!(got[2].result, Ok(()));
        assert_eq!(std::fs::read(dir.path().join("out2")).expect("output"), b"data");
        assert_eq!(std::fs::read(dir.path().join("in")).expect("input kept"), b"data");
        worker.quit();
        join.join().expect("the thread ends cleanly");
    }
}
