//! The worker threads and the fair dispatcher in front of them.
//!
//! Each job gets its own bounded queue ([`JobQueue`]). One dispatcher
//! thread owns the list of queues and hands tasks to idle workers
//! round-robin across jobs, through a rendezvous channel, so that a job
//! with 100,000 files cannot starve a job with ten. Workers are plain
//! threads that take a task, make one attempt, and report to the task's
//! runner.
//!
//! A verified file still needs an fdatasync (milliseconds of waiting for
//! the disk) before its rename. Its writeback starts when it is verified;
//! workers hand the rest to finisher threads through a small bounded queue
//! and start their next transfer at once, so the disk syncs while the
//! network keeps `size` transfers going. A finisher takes every file queued
//! as one group and does fdatasync of each → rename of each → report, in
//! that order; when the queue is full the worker waits (memory and open
//! files stay bounded), and when no finisher is left (one panicked) the
//! worker does the step itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select, Sender, TryRecvError, bounded};

use crate::download::candidates::fetch_staged;
use crate::download::finish::{Attempt, Finish, complete_group};
use crate::download::task::{DownloadEvent, DownloadTask};
use crate::job::Tid;

/// One attempt at a task (the real one is [`fetch_staged`]).
pub type AttemptFn = dyn Fn(&DownloadTask) -> Attempt + Send + Sync;

/// A message to the dispatcher.
enum DispatchMsg {
    /// A job's queue to serve.
    Register(Tid, Receiver<DownloadTask>),
    /// Stop.
    Quit,
}

/// A message to a worker.
enum WorkerMsg {
    /// One attempt at a task.
    Task(Box<DownloadTask>),
    /// Stop.
    Quit,
}

/// A message to a finisher.
enum FinishMsg {
    /// fsync, rename and report a verified file.
    Finish(Box<DownloadTask>, Finish),
    /// Stop (sent after every worker has stopped, so nothing queued behind
    /// it is lost).
    Quit,
}

/// A job's way into the pool. Dropping it unregisters the job once its
/// queued tasks are taken.
#[derive(Debug, Clone)]
pub struct JobQueue {
    /// Sends tasks; bounded, so a runner cannot flood the pool.
    tx: Sender<DownloadTask>,
}

impl JobQueue {
    /// Queues a task without blocking; gives it back when the queue is
    /// full.
    pub fn try_send(&self, task: DownloadTask) -> Result<(), Box<DownloadTask>> {
        self.tx.try_send(task).map_err(|e| Box::new(e.into_inner()))
    }
}

/// The pool.
#[derive(Debug)]
pub struct Pool {
    /// To the dispatcher.
    ctl: Sender<DispatchMsg>,
    /// The dispatcher thread.
    dispatcher: Option<JoinHandle<()>>,
    /// The workers.
    workers: Vec<JoinHandle<()>>,
    /// To the finishers (for `Quit`).
    finish: Sender<FinishMsg>,
    /// The finishers.
    finishers: Vec<JoinHandle<()>>,
    /// Number of workers.
    size: usize,
}

impl std::fmt::Debug for DispatchMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DispatchMsg::Register(t, _) => write!(f, "Register({t})"),
            DispatchMsg::Quit => f.write_str("Quit"),
        }
    }
}

/// Reports a worker panic to the supervisor and stops the other workers.
struct PanicGuard {
    /// Where fatal errors go.
    fatal: Sender<String>,
    /// Raised on panic so that the dispatcher stops.
    broken: Arc<AtomicBool>,
    /// The worker's name.
    name: String,
}

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if thread::panicking() {
            self.broken.store(true, Ordering::Release);
            // try_send: the supervisor stops reading after the first
            // report, and a guard must never block a panicking thread.
            let _ = self.fatal.try_send(format!("{} panicked; stopping", self.name));
        }
    }
}

impl Pool {
    /// Starts `size` workers, as many finishers, and the dispatcher. A
    /// worker or finisher panic is sent to `fatal`.
    pub fn start(size: usize, agent: &ureq::Agent, fatal: &Sender<String>) -> std::io::Result<Pool> {
        let agent = agent.clone();
        Pool::start_with(size, Arc::new(move |task: &DownloadTask| fetch_staged(&agent, task)), fatal)
    }

    /// Starts the pool with another attempt function (tests use this to
    /// make a worker panic).
    pub fn start_with(size: usize, attempt: Arc<AttemptFn>, fatal: &Sender<String>) -> std::io::Result<Pool> {
        let (ctl, ctl_rx) = bounded::<DispatchMsg>(64);
        let (work_tx, work_rx) = bounded::<WorkerMsg>(0);
        // As many finishers as workers: an fsync mostly waits for the disk,
        // and concurrent ones share its cache flushes, so one finisher
        // thread would sync one file at a time and become the bottleneck.
        // The queue holds one file per worker; beyond that a worker waits.
        let finishers_n = size.max(1);
        let (finish_tx, finish_rx) = bounded::<FinishMsg>(size.max(1));
        let broken = Arc::new(AtomicBool::new(false));
        let busy = Arc::new(Busy::default());
        let guard = |name: String| PanicGuard { fatal: fatal.clone(), broken: Arc::clone(&broken), name };
        let mut finishers = Vec::with_capacity(finishers_n);
        for n in 0..finishers_n {
            let rx = finish_rx.clone();
            let guard = guard(format!("download finisher {n}"));
            let busy = Arc::clone(&busy);
            finishers.push(thread::Builder::new().name(format!("finish-{n}")).spawn(move || {
                let _guard = guard;
                while let Ok(FinishMsg::Finish(task, finish)) = rx.recv() {
                    // Whatever else is queued joins the group (the queue is
                    // bounded, so the group is too); a `Quit` behind it
                    // ends the thread after the group.
                    let mut group = vec![(task, finish)];
                    let mut quit = false;
                    while let Ok(msg) = rx.try_recv() {
                        match msg {
                            FinishMsg::Finish(t, f) => group.push((t, f)),
                            FinishMsg::Quit => {
                                quit = true;
                                break;
                            }
                        }
                    }
                    for (task, outcome) in complete_group(group) {
                        busy.release(&task.dest);
                        report(&task, outcome);
                    }
                    if quit {
                        break;
                    }
                }
            })?);
        }
        let mut workers = Vec::with_capacity(size);
        for n in 0..size {
            let rx = work_rx.clone();
            let attempt = Arc::clone(&attempt);
            let finish_tx = finish_tx.clone();
            let guard = guard(format!("download worker {n}"));
            let busy = Arc::clone(&busy);
            workers.push(thread::Builder::new().name(format!("download-{n}")).spawn(move || {
                let _guard = guard;
                while let Ok(WorkerMsg::Task(task)) = rx.recv() {
                    if !busy.claim(&task) {
                        report(&task, crate::download::Outcome::Interrupted);
                        continue;
                    }
                    match attempt(&task) {
                        Attempt::Over(outcome) => {
                            busy.release(&task.dest);
                            report(&task, outcome);
                        }
                        Attempt::Verified(finish) => {
                            if let Err(e) = finish_tx.send(FinishMsg::Finish(task, finish)) {
                                // No finisher left (one panicked and the
                                // pool is stopping): finish here instead.
                                if let FinishMsg::Finish(task, finish) = e.into_inner() {
                                    let outcome = finish.complete();
                                    busy.release(&task.dest);
                                    report(&task, outcome);
                                }
                            }
                        }
                    }
                }
            })?);
        }
        let dispatcher = thread::Builder::new()
            .name("dispatcher".into())
            .spawn(move || dispatch(&ctl_rx, &work_tx, &broken, size))?;
        Ok(Pool { ctl, dispatcher: Some(dispatcher), workers, finish: finish_tx, finishers, size })
    }

    /// Number of workers.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Opens a queue for a job.
    pub fn register(&self, job: Tid, capacity: usize) -> JobQueue {
        let (tx, rx) = bounded(capacity.max(1));
        let _ = self.ctl.send(DispatchMsg::Register(job, rx));
        JobQueue { tx }
    }

    /// Stops the dispatcher and the workers after their current attempts,
    /// then the finishers once they have finished every file handed to them;
    /// gives up on threads still busy after [`JOIN_BOUND`].
    pub fn shutdown(self) {
        let hard = Instant::now() + JOIN_BOUND;
        self.shutdown_by(hard, hard, || {});
    }

    /// Like [`shutdown`](Self::shutdown), with deadlines: a worker still in
    /// an attempt at `soft` makes `cut` run once (the supervisor cuts the
    /// shared agent's connections then), and a thread still running at
    /// `hard` is abandoned and named in the log. A worker can be stuck
    /// where no flag is looked at (inside the HTTP library), and shutdown
    /// must end all the same; its job's checkpoint and `.part` files stay
    /// consistent, and the job resumes at the next start. Returns the
    /// number of abandoned threads.
    pub fn shutdown_by(mut self, soft: Instant, hard: Instant, cut: impl FnOnce()) -> usize {
        let _ = self.ctl.send(DispatchMsg::Quit);
        let mut abandoned = 0;
        let mut cut = Some(cut);
        let mut threads: Vec<JoinHandle<()>> = self.dispatcher.take().into_iter().collect();
        threads.append(&mut self.workers);
        for t in threads {
            let t = match join_by(t, soft) {
                Ok(()) => continue,
                Err(t) => t,
            };
            if let Some(c) = cut.take() {
                c();
            }
            if join_by(t, hard).is_err() {
                abandoned += 1;
            }
        }
        // Every worker that stopped has queued its `Finish` in front of
        // these (the channel is FIFO).
        for _ in 0..self.finishers.len() {
            let _ = self.finish.send(FinishMsg::Quit);
        }
        let hard = hard.max(Instant::now() + Duration::from_secs(1));
        for f in self.finishers.drain(..) {
            if join_by(f, hard).is_err() {
                abandoned += 1;
            }
        }
        abandoned
    }
}

/// How long [`Pool::shutdown`] waits for its threads.
pub const JOIN_BOUND: Duration = Duration::from_secs(10);

/// Joins `t` if it ends by `deadline`; otherwise logs its name and gives
/// it back (dropping it detaches the thread).
pub fn join_by(t: JoinHandle<()>, deadline: Instant) -> Result<(), JoinHandle<()>> {
    while !t.is_finished() {
        if Instant::now() >= deadline {
            log::warn!(
                "thread {} did not stop in time; leaving it behind",
                t.thread().name().unwrap_or("(unnamed)")
            );
            return Err(t);
        }
        thread::sleep(Duration::from_millis(10));
    }
    let _ = t.join();
    Ok(())
}

/// The destinations being written (downloaded, or waiting for their
/// fsync and rename), so that two tasks for one file, from two jobs that
/// share a folder, never write one `.part` at once: the second waits until
/// the first has its final name, then finds the file complete.
#[derive(Debug, Default)]
struct Busy {
    /// Final paths held by a worker or finisher.
    held: std::sync::Mutex<std::collections::HashSet<std::path::PathBuf>>,
    /// Signalled when a path is released.
    freed: std::sync::Condvar,
}

impl Busy {
    /// Takes the task's destination, waiting while another task holds it;
    /// returns false when the task's job is halted meanwhile.
    fn claim(&self, task: &DownloadTask) -> bool {
        // A poisoned lock means a thread panicked and the pool is stopping;
        // the set itself is still consistent (one insert or remove).
        let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            if held.insert(task.dest.clone()) {
                return true;
            }
            if task.flags.halted() {
                return false;
            }
            held = self
                .freed
                .wait_timeout(held, std::time::Duration::from_millis(100))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Gives a destination back.
    fn release(&self, dest: &std::path::Path) {
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(dest);
        self.freed.notify_all();
    }
}

/// Sends an attempt's outcome to the task's runner. A runner that is gone
/// (job stopped) no longer needs it.
fn report(task: &DownloadTask, outcome: crate::download::Outcome) {
    let dest = match &outcome {
        crate::download::Outcome::Done { saved_as: Some(p), .. } => p.clone(),
        _ => task.dest.clone(),
    };
    let _ = task.reply.send(DownloadEvent { item: task.item, outcome, dest });
}

/// The dispatcher: round-robin over job queues, one task per idle worker.
fn dispatch(ctl: &Receiver<DispatchMsg>, work: &Sender<WorkerMsg>, broken: &AtomicBool, workers: usize) {
    let mut queues: Vec<(Tid, Receiver<DownloadTask>)> = Vec::new();
    let mut next = 0usize;
    let quit = |work: &Sender<WorkerMsg>| {
        for _ in 0..workers {
            let _ = work.send(WorkerMsg::Quit);
        }
    };
    loop {
        if broken.load(Ordering::Acquire) {
            // A worker panicked: the supervisor is shutting down; stop
            // handing out work so that the others finish and exit.
            quit(work);
            return;
        }
        loop {
            match ctl.try_recv() {
                Ok(DispatchMsg::Register(t, rx)) => queues.push((t, rx)),
                Ok(DispatchMsg::Quit) | Err(TryRecvError::Disconnected) => {
                    quit(work);
                    return;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        // Fair pass: the first queue after the one served last that has a
        // task wins.
        let mut task = None;
        let mut dead = Vec::new();
        for k in 0..queues.len() {
            let idx = (next + k) % queues.len();
            match queues[idx].1.try_recv() {
                Ok(t) => {
                    task = Some(t);
                    next = idx + 1;
                    break;
                }
                Err(TryRecvError::Disconnected) => dead.push(idx),
                Err(TryRecvError::Empty) => {}
            }
        }
        for idx in dead.into_iter().rev() {
            queues.remove(idx);
        }
        if let Some(t) = task {
            if work.send(WorkerMsg::Task(Box::new(t))).is_err() {
                return;
            }
            continue;
        }
        // Nothing ready: block until a queue or a control message has one.
        let mut sel = Select::new();
        sel.recv(ctl);
        for (_, rx) in &queues {
            sel.recv(rx);
        }
        // Wake up now and then to notice a broken pool.
        let Ok(op) = sel.select_timeout(std::time::Duration::from_millis(200)) else { continue };
        let i = op.index();
        if i == 0 {
            match op.recv(ctl) {
                Ok(DispatchMsg::Register(t, rx)) => queues.push((t, rx)),
                Ok(DispatchMsg::Quit) | Err(_) => {
                    quit(work);
                    return;
                }
            }
        } else {
            match op.recv(&queues[i - 1].1) {
                Ok(t) => {
                    next = i;
                    if work.send(WorkerMsg::Task(Box::new(t))).is_err() {
                        return;
                    }
                }
                Err(_) => {
                    queues.remove(i - 1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::download::Outcome;
    use crate::job::JobFlags;
    use std::time::Duration;

    fn task(item: u64, reply: &Sender<DownloadEvent>) -> DownloadTask {
        DownloadTask {
            job: 1,
            item,
            url: String::new(),
            also: Vec::new(),
            refreshable: false,
            dest: std::path::PathBuf::from(format!("/nonexistent/{item}")),
            server_name: false,
            names: None,
            headers: Vec::new().into(),
            forward_headers: false,
            expected_size: None,
            md5: None,
            inline: None,
            copy_from: None,
            timeout: Duration::from_secs(1),
            min_speed: 1024,
            min_speed_time: Duration::from_secs(30),
            flags: Arc::new(JobFlags::default()),
            limits: Vec::new().into(),
            reply: reply.clone(),
        }
    }

    #[test]
    fn a_panicking_worker_stops_the_pool_cleanly() {
        let (fatal_tx, fatal_rx) = bounded(4);
        let attempt: Arc<AttemptFn> = Arc::new(|t: &DownloadTask| {
            assert!(t.item != 3, "simulated bug in a worker");
            std::thread::sleep(Duration::from_millis(5));
            Outcome::Done { bytes: 0, already: true, saved_as: None }.into()
        });
        let pool = Pool::start_with(3, attempt, &fatal_tx).expect("pool");
        let queue = pool.register(1, 16);
        let (reply, events) = bounded(16);
        for i in 0..10 {
            queue.try_send(task(i, &reply)).expect("queue has room");
        }
        let msg = fatal_rx.recv_timeout(Duration::from_secs(5)).expect("the panic is reported");
        assert!(msg.contains("panicked"), "{msg}");
        // The pool still shuts down (no thread hangs), and the other
        // workers reported what they finished.
        let t = std::time::Instant::now();
        pool.shutdown();
        assert!(t.elapsed() < Duration::from_secs(3));
        assert!(events.try_iter().count() < 10, "item 3 never reports");
    }

    #[test]
    fn shutdown_is_bounded_when_a_worker_never_returns() {
        let (fatal_tx, _fatal_rx) = bounded(4);
        let (started_tx, started_rx) = bounded::<()>(1);
        // Blocks for good and never looks at a flag, like a read loop
        // inside the HTTP library.
        let attempt: Arc<AttemptFn> = Arc::new(move |_: &DownloadTask| {
            let _ = started_tx.try_send(());
            loop {
                std::thread::park();
            }
        });
        let pool = Pool::start_with(2, attempt, &fatal_tx).expect("pool");
        let queue = pool.register(1, 4);
        let (reply, _events) = bounded(4);
        queue.try_send(task(0, &reply)).expect("room");
        started_rx.recv_timeout(Duration::from_secs(5)).expect("the attempt starts");
        let t = Instant::now();
        let cut = Arc::new(AtomicBool::new(false));
        let c = Arc::clone(&cut);
        let abandoned =
            pool.shutdown_by(t + Duration::from_millis(200), t + Duration::from_millis(600), move || {
                c.store(true, Ordering::SeqCst);
            });
        assert!(t.elapsed() < Duration::from_secs(3), "took {:?}", t.elapsed());
        assert!(abandoned >= 1, "the stuck worker is left behind");
        assert!(cut.load(Ordering::SeqCst), "connections are cut before giving up");
    }

    #[test]
    fn two_tasks_for_one_file_never_run_at_once() {
        let (fatal_tx, _fatal_rx) = bounded(4);
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let overlap = Arc::new(AtomicBool::new(false));
        let (r, o) = (Arc::clone(&running), Arc::clone(&overlap));
        let attempt: Arc<AttemptFn> = Arc::new(move |_: &DownloadTask| {
            if r.fetch_add(1, Ordering::SeqCst) > 0 {
                o.store(true, Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(20));
            r.fetch_sub(1, Ordering::SeqCst);
            Outcome::Done { bytes: 0, already: true, saved_as: None }.into()
        });
        let pool = Pool::start_with(4, attempt, &fatal_tx).expect("pool");
        let queue = pool.register(1, 16);
        let (reply, events) = bounded(16);
        for i in 0..6 {
            let mut t = task(i, &reply);
            t.dest = std::path::PathBuf::from("/nonexistent/same.bin");
            queue.try_send(t).expect("room");
        }
        for _ in 0..6 {
            events.recv_timeout(Duration::from_secs(5)).expect("every task reports");
        }
        assert!(!overlap.load(Ordering::SeqCst), "two attempts wrote one file at once");
        pool.shutdown();
    }

    #[test]
    fn dispatch_is_round_robin_across_jobs() {
        let (fatal_tx, _fatal_rx) = bounded(4);
        let attempt: Arc<AttemptFn> = Arc::new(|_: &DownloadTask| {
            std::thread::sleep(Duration::from_millis(2));
            Outcome::Done { bytes: 0, already: true, saved_as: None }.into()
        });
        let pool = Pool::start_with(1, attempt, &fatal_tx).expect("pool");
        let a = pool.register(1, 64);
        let b = pool.register(2, 64);
        let (reply_a, events_a) = bounded(64);
        let (reply_b, events_b) = bounded(64);
        for i in 0..40 {
            a.try_send(task(i, &reply_a)).expect("room");
        }
        for i in 0..5 {
            b.try_send(task(i, &reply_b)).expect("room");
        }
        // Job 2's five tasks finish long before job 1's forty.
        for _ in 0..5 {
            events_b.recv_timeout(Duration::from_secs(5)).expect("job 2 progresses");
        }
        let a_done = events_a.try_iter().count();
        assert!(a_done < 25, "job 2 waited behind {a_done} tasks of job 1");
        pool.shutdown();
    }
}
