//! `spoolfetch demo`: the whole pipeline, offline, in one command.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use spoolfetch::config::{Config, WatchMode};
use spoolfetch::daemon::{self, Options};
use spoolfetch::demo::{DemoServer, PAGE_SIZE, demo_bytes};
use spoolfetch::spool::{Spool, list_statuses};

use super::Exit;
use super::args::DemoArgs;
use super::progress::View;

/// The demo's API interval: long enough to see, short enough not to bore.
const INTERVAL: Duration = Duration::from_millis(150);

/// Runs a sample `demo.gallery` job through the real spool, pacer, pool
/// and checkpoints against a loopback server, shows progress, verifies
/// every file and prints where they went.
pub fn demo(a: &DemoArgs) -> Result<ExitCode> {
    let files = usize::from(a.files);
    let root = match &a.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("spoolfetch-demo-{}", std::process::id())),
    };
    let spool_dir = root.join("jobs");
    let save = root.join("downloads");
    std::fs::create_dir_all(&spool_dir).with_context(|| format!("cannot create {}", spool_dir.display()))?;
    let flaky = files / 2;
    let server = DemoServer::start(files, flaky).context("cannot start the loopback server")?;
    // The listing is a paced API walk (`demo.gallery`), so the demo runs
    // every part: spool, pacing thread, download pool and checkpoints.
    let job = serde_json::json!({ "type": "demo.gallery", "name": "demo", "api": server.base_url() });
    let job_path = spool_dir.join("demo.json");
    let tmp = spool_dir.join(".demo.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&job)?)?;
    std::fs::rename(&tmp, &job_path)?;
    println!("spool:     {}", spool_dir.display());
    let pages = files.div_ceil(PAGE_SIZE);
    println!(
        "job file:  {} (a gallery API on a loopback server: {files} files in {pages} pages)",
        job_path.display()
    );
    println!(
        "pacing:    one API call at a time, {} ms apart; page 2 answers 429 once (the pacer backs off)",
        INTERVAL.as_millis()
    );
    println!("downloads: 4 threads, size and MD5 checked; file {flaky} answers 503 once (it is retried)");

    let mut config = Config::default_for(&|k| std::env::var(k).ok());
    config.save_path = save.clone();
    config.state_dir = root.join("state");
    config.instance = "demo".into();
    config.concurrency = 4;
    config.interval = INTERVAL;
    config.settle = Duration::from_millis(50);
    config.watch = WatchMode::Poll;
    config.poll = Duration::from_millis(100);
    let opts = Options { spool: spool_dir.clone(), config, once: true, handle_signals: false };
    let started = Instant::now();
    let daemon = thread::spawn(move || daemon::run(opts));
    let spool = Spool::new(&spool_dir);
    // The view of `status --watch`: a table redrawn in place on a
    // terminal, a line per change when piped.
    let tty = std::io::stdout().is_terminal();
    if tty && std::io::stderr().is_terminal() && log::max_level() <= log::LevelFilter::Info {
        // Log lines on the same terminal would tear the table drawn in
        // place; what they would say, the table shows. `-v` keeps them.
        log::set_max_level(log::LevelFilter::Error);
    }
    let mut view = View::new(tty);
    let mut out = std::io::stdout().lock();
    loop {
        let finished = daemon.is_finished();
        if let Ok(jobs) = list_statuses(&spool) {
            view.draw(&mut out, &jobs)?;
        }
        if finished {
            break;
        }
        thread::sleep(Duration::from_millis(250));
    }
    drop(out);
    let summary = daemon
        .join()
        .map_err(|_| Exit(1, "the demo daemon panicked".into()))?
        .map_err(|e| Exit(1, e.to_string()))?;
    let dir: PathBuf = save.join("demo");
    let mut ok = 0;
    for n in 0..files {
        let p = dir.join(format!("{n:03}.bin"));
        if std::fs::read(&p).is_ok_and(|b| b == demo_bytes(n)) {
            ok += 1;
        }
    }
    println!(
        "done in {:.2} s: {ok}/{files} files verified byte for byte in {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    println!("job file moved to {}", spool.done_dir().display());
    println!("try: spoolfetch status --spool {}", spool_dir.display());
    if ok == files && summary.failed == 0 { Ok(ExitCode::SUCCESS) } else { Ok(ExitCode::from(1)) }
}
