//! The command-line grammar (clap derive); no I/O here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// spoolfetch: drop a job file into a spool folder; the daemon downloads it,
/// paced and resumable.
#[derive(Debug, Parser)]
#[command(name = "spoolfetch", version, about, long_about = None, disable_help_subcommand = true)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
    /// Only warnings and errors (for cron: a run with nothing to report
    /// prints nothing).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More detail: -v every request and its outcome, -vv spoolfetch's
    /// trace.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: claim and run jobs from the spool until SIGTERM.
    Run(RunArgs),
    /// Write a job file into the spool (atomically) and print its path.
    #[command(after_help = "Job types and their keys (types, defaults, docs): spoolfetch types [TYPE]")]
    Submit(SubmitArgs),
    /// List the job types and their keys (type, required or default, doc).
    Types(TypesArgs),
    /// Show jobs: one line each, or JSON with --json.
    Status(StatusArgs),
    /// Pause a job (keeps all progress).
    Pause(TidArgs),
    /// Resume a paused job.
    Resume(TidArgs),
    /// Cancel a job (keeps completed files).
    Cancel(TidArgs),
    /// Requeue a failed or cancelled job, keeping its checkpoint.
    Retry(RetryArgs),
    /// Remove what the spool keeps of jobs that ended long ago (their
    /// files in done/ and failed/, their state folders); never downloads.
    Prune(PruneArgs),
    /// Wait until a job ends; exit 0 if it is done, 1 if it failed or was
    /// cancelled, 3 if it is still going at --timeout.
    Wait(WaitArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish,
    /// powershell).
    Completions(CompletionsArgs),
    /// Print the manual page (roff) to standard output.
    Man,
    /// Print the help of spoolfetch or of a command (`help pixiv login`).
    Help(HelpArgs),
    /// Run a sample job offline against a built-in loopback server.
    Demo(DemoArgs),
    /// Create a spool folder (run, submit and the control commands refuse
    /// one that does not exist).
    Init(InitArgs),
    /// Print the effective configuration: every key, its value and where
    /// it came from (default, file, environment, flag); secrets masked.
    Config(ConfigArgs),
    /// Pixiv account: log in (PKCE) or install a refresh token.
    Pixiv(PixivArgs),
    /// PicWish web login (for `interface: "web"` jobs).
    Picwish(PicwishArgs),
    /// Douyin login: a QR code to scan, or a browser cookie, checked with
    /// Douyin and stored.
    Douyin(DouyinArgs),
    /// Exit 0 if this instance's daemon runs on the spool (it holds the
    /// instance lock), 1 if not: a container's or a monitor's health check.
    Health(HealthArgs),
}

/// `health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The daemon's instance (default: the configured `instance`, the host
    /// name unless set).
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,
    /// Spool.
    #[command(flatten)]
    pub spool: SpoolArg,
    /// Configuration file (default: $SPOOLFETCH_CONFIG, else <spool>/spoolfetch.json).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `douyin`.
#[derive(Debug, Args)]
pub struct DouyinArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DouyinCommand,
    /// Spool (its spoolfetch.json says where `state_dir` is).
    #[command(flatten)]
    pub spool: SpoolArg,
    /// Configuration file.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

/// `douyin` subcommands.
#[derive(Debug, Subcommand)]
pub enum DouyinCommand {
    /// Check a browser cookie of www.douyin.com with Douyin and store it in
    /// state_dir (mode 0600); jobs waiting for a login go on by themselves.
    Cookie {
        /// The cookie (`-` or nothing: read it from a prompt without echo,
        /// or from stdin).
        #[arg(value_name = "COOKIE")]
        cookie: Option<String>,
    },
    /// QR-code login shown in the terminal: scan it with the Douyin app and
    /// confirm there; the login cookie is checked and stored as `douyin
    /// cookie` stores one.
    Login,
}

/// `picwish`.
#[derive(Debug, Args)]
pub struct PicwishArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: PicwishCommand,
    /// Spool (its spoolfetch.json says where `state_dir` is).
    #[command(flatten)]
    pub spool: SpoolArg,
    /// Configuration file.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

/// `picwish` subcommands.
#[derive(Debug, Subcommand)]
pub enum PicwishCommand {
    /// Log in with a phone number; the password is read from standard
    /// input (one line) or asked for on the terminal. The token is stored
    /// in state_dir (mode 0600) and used by every web-interface job.
    Login {
        /// The account's phone number.
        #[arg(long, value_name = "NUMBER")]
        phone: String,
        /// The phone number's country calling code.
        #[arg(long, value_name = "CODE", default_value = "86")]
        country_code: String,
    },
}

/// `pixiv`.
#[derive(Debug, Args)]
pub struct PixivArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: PixivCommand,
    /// Spool (its spoolfetch.json says where `state_dir` is).
    #[command(flatten)]
    pub spool: SpoolArg,
    /// Configuration file (default: $SPOOLFETCH_CONFIG, else
    /// <spool>/spoolfetch.json, else /etc/spoolfetch/config.json when
    /// present: the daemon's).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

/// `pixiv` subcommands.
#[derive(Debug, Subcommand)]
pub enum PixivCommand {
    /// Log in with a browser (PKCE): prints a URL, reads the code or the
    /// whole callback URL (pasted, or piped on stdin).
    Login,
    /// Check a refresh token with Pixiv and store it (rotated) in state_dir.
    Refresh {
        /// The refresh token; `-` reads it from stdin, and without it a
        /// terminal prompt asks for it (not echoed), so that it stays out
        /// of shell history.
        #[arg(value_name = "TOKEN")]
        token: Option<String>,
    },
}

/// The spool folder option shared by most commands.
#[derive(Debug, Args, Clone)]
pub struct SpoolArg {
    /// The spool folder (default: $SPOOLFETCH_SPOOL, else the `spool` key
    /// of the file given by --config or $SPOOLFETCH_CONFIG, else ./jobs).
    /// It must exist: `spoolfetch init DIR` creates one.
    #[arg(long, value_name = "DIR", env = "SPOOLFETCH_SPOOL", global = true)]
    pub spool: Option<PathBuf>,
}

/// `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Spool.
    #[command(flatten)]
    pub spool: SpoolArg,
    /// Configuration file (default: $SPOOLFETCH_CONFIG, else <spool>/spoolfetch.json).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run every job present, then exit (0: all done, 1: any failed).
    #[arg(long)]
    pub once: bool,
    /// This daemon's name on a shared spool (overrides config `instance`).
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,
    /// Download threads (overrides config `concurrency`).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
}

/// `submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The job type, for example http.files (see `spoolfetch types`).
    #[arg(value_name = "TYPE")]
    pub job_type: String,
    /// Job parameters, as declared by the job type (`spoolfetch types`);
    /// repeat a list key to add items (urls=A urls=B); values that are
    /// JSON are taken as JSON, except for string keys.
    #[arg(value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// TaskName (default: derived from the type and time).
    #[arg(long)]
    pub name: Option<String>,
    /// SavePath for this job.
    #[arg(long, value_name = "DIR")]
    pub save_path: Option<PathBuf>,
    /// Wait until a daemon has claimed the job (print its TID) and the job
    /// has ended; exit as `spoolfetch wait` does.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds (exit 3).
    #[arg(long, value_name = "SECS", requires = "wait")]
    pub timeout: Option<u64>,
    /// Spool.
    #[command(flatten)]
    pub spool: SpoolArg,
}

/// `retry`.
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The job's TID (see `spoolfetch status`).
    #[arg(value_name = "TID")]
    pub tid: u64,
    /// Spool.
    #[command(flatten)]
    pub spool: SpoolArg,
    /// Wait until a daemon has run the requeued job to its end; exit as
    /// `spoolfetch wait` does (0 done, 1 failed or cancelled, 3 at
    /// --timeout).
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds (exit 3).
    #[arg(long, value_name = "SECS", requires = "wait")]
    pub timeout: Option<u64>,
}

/// `wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The job: its TID, or its name (the latest job of that name, or a
    /// job file of that name not claimed yet).
    #[arg(value_name = "TID|NAME")]
    pub job: String,
    /// Give up after this many seconds (exit 3).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Spool.
    #[command(flatten)]
    pub spool: SpoolArg,
}

/// `help`.
#[derive(Debug, Args)]
pub struct HelpArgs {
    /// The command (and subcommand) whose help to print.
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `types`.
#[derive(Debug, Args)]
pub struct TypesArgs {
    /// Only this job type.
    #[arg(value_name = "TYPE")]
    pub job_type: Option<String>,
    /// Print a JSON array: per type its summary and keys (name, type,
    /// required, default, doc, allowed values or bounds).
    #[arg(long)]
    pub json: bool,
}

/// `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this job.
    #[arg(value_name = "TID")]
    pub tid: Option<u64>,
    /// Print a JSON array of status objects.
    #[arg(long)]
    pub json: bool,
    /// List what became of each item of job TID: saved (path and size),
    /// skipped or failed (and why), pending.
    #[arg(long, requires = "tid", conflicts_with = "watch")]
    pub files: bool,
    /// Redraw about once a second until the watched jobs have ended (a
    /// table with progress bars on a terminal, plain lines otherwise).
    #[arg(long, short = 'w', conflicts_with = "json")]
    pub watch: bool,
    /// Only jobs in these states (repeat it or separate by commas:
    /// `--state failed,cancelled`); `waiting` is a job not ended whose
    /// reason says it waits (`waiting: …`, for a login or a block).
    #[arg(long = "state", value_name = "STATE", value_delimiter = ',', conflicts_with_all = ["active", "watch", "files"])]
    pub states: Vec<StateFilter>,
    /// Only jobs that have not ended: queued, running, paused, waiting.
    #[arg(long, conflicts_with_all = ["watch", "files"])]
    pub active: bool,
    /// Spool.
    #[command(flatten)]
    pub spool: SpoolArg,
}

/// A state `status --state` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateFilter {
    /// Claimed or not yet, waiting for a slot or a daemon.
    Queued,
    /// Listing or downloading.
    Running,
    /// Paused by `spoolfetch pause`.
    Paused,
    /// Not ended, and waiting (for a login, a block to pass).
    Waiting,
    /// Ended with every item done or skipped.
    Done,
    /// Ended failed (or rejected).
    Failed,
    /// Ended by `spoolfetch cancel`.
    Cancelled,
}

/// `prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove jobs that ended longer ago than this: a number and a unit,
    /// s, m, h or d (`30d`, `12h`, `0s` for every ended job).
    #[arg(long, value_name = "AGE", value_parser = super::prune::parse_age)]
    pub older_than: std::time::Duration,
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Spool.
    #[command(flatten)]
    pub spool: SpoolArg,
}

/// `pause`, `resume`, `cancel`.
#[derive(Debug, Args)]
pub struct TidArgs {
    /// The job's TID (see `spoolfetch status`).
    #[arg(value_name = "TID")]
    pub tid: u64,
    /// Spool.
    #[command(flatten)]
    pub spool: SpoolArg,
    /// Wait until the daemon has applied the request (up to 30 s).
    #[arg(long)]
    pub wait: bool,
}

/// `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The spool folder to create (default: as --spool).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Spool.
    #[command(flatten)]
    pub spool: SpoolArg,
}

/// `config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Spool (its spoolfetch.json is the configuration when neither
    /// --config nor $SPOOLFETCH_CONFIG names one).
    #[command(flatten)]
    pub spool: SpoolArg,
    /// Configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print a JSON array of {key, value, source}.
    #[arg(long)]
    pub json: bool,
}

/// `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to put the demo spool and downloads (default: a new folder
    /// under the system's temporary folder).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Number of files in the sample job (1 to 10000).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    pub files: u16,
}
