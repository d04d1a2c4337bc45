//! Integration tests: one binary (see Cargo.toml `[[test]]`).
//!
//! Every test runs on loopback only, in temporary folders, bounded in time.

mod support;
mod util;

mod bandwidth;
mod cli;
mod cli_jobs;
mod cli_ops;
mod cli_progress;
mod cli_status;
mod cli_table;
mod cli_wait;
mod container;
mod daemon_crash;
mod daemon_disk;
mod daemon_files;
mod daemon_leftovers;
mod daemon_listing;
mod daemon_live;
mod daemon_names;
mod daemon_ops;
mod daemon_recur;
mod daemon_redirects;
mod daemon_refresh;
mod daemon_spool;
mod daemon_tasks;
mod douyin;
mod douyin_fake;
mod download;
mod download_candidates;
mod download_names;
mod hostile_e2e;
mod hostile_identity;
mod hostile_input;
mod hostile_transfer;
mod inputs;
mod notify;
mod octoparse;
mod pacing;
mod pacing_requests;
mod picwish;
mod picwish_fake;
mod pixiv;
mod pixiv_login;
