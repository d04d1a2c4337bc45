//! Subcommands; this is the only place `anyhow` is used.

mod args;
mod control;
mod demo;
mod douyin;
mod files;
mod health;
mod logging;
mod picwish;
mod pixiv;
mod progress;
mod prune;
mod run;
mod secret;
mod settings;
mod spool;
mod status;
mod submit;
mod table;
mod types;
mod wait;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

/// Exit status for bad usage or configuration, part of the command-line interface.
pub const EXIT_USAGE: u8 = 2;

/// An error that carries its exit status.
#[derive(Debug)]
pub struct Exit(pub u8, pub String);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for Exit {}

/// Parses the command line and runs the subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.quiet, cli.verbose);
    let result = match cli.command {
        Command::Run(a) => run::run(&a),
        Command::Submit(a) => submit::submit(&a),
        Command::Types(a) => types::types(&a),
        Command::Status(a) => status::status(&a),
        Command::Pause(a) => control::control(&a, control::Verb::Pause),
        Command::Resume(a) => control::control(&a, control::Verb::Resume),
        Command::Cancel(a) => control::control(&a, control::Verb::Cancel),
        Command::Retry(a) => control::retry(&a),
        Command::Prune(a) => prune::prune(&a),
        Command::Wait(a) => wait::wait(&a),
        Command::Completions(a) => wait::completions(&a),
        Command::Man => wait::man(),
        Command::Help(a) => wait::help(&a),
        Command::Demo(a) => demo::demo(&a),
        Command::Init(a) => spool::init(&a),
        Command::Config(a) => settings::config(&a),
        Command::Pixiv(a) => pixiv::pixiv(&a),
        Command::Picwish(a) => picwish::picwish(&a),
        Command::Douyin(a) => douyin::douyin(&a),
        Command::Health(a) => health::health(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = e.downcast_ref::<Exit>().map_or(1, |x| x.0);
            eprintln!("spoolfetch: {e:#}");
            ExitCode::from(code)
        }
    }
}
