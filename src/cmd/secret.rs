//! Reading a secret (a token, a password) without putting it on the
//! command line, where it lands in shell history and `ps`.
//!
//! On a terminal the prompt goes to stderr and the typed text is not
//! echoed; otherwise one line is read from stdin (`echo "$TOKEN" |
//! spoolfetch pixiv refresh -`).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result};

use super::{EXIT_USAGE, Exit};

/// Reads one line: from the terminal with `prompt` and echo off, else from
/// stdin. Surrounding white space is dropped; an empty answer is a usage
/// error naming `what`.
pub fn read_secret(prompt: &str, what: &str) -> Result<String> {
    let stdin = std::io::stdin();
    let line = if stdin.is_terminal() {
        // The prompt only once echo is off: what is typed (or pasted) as
        // soon as it shows is not echoed.
        let line = without_echo(&stdin, || {
            eprint!("{prompt}");
            let _ = std::io::stderr().flush();
            read_line(&stdin)
        });
        eprintln!();
        line?
    } else {
        read_line(&stdin)?
    };
    let line = line.trim().to_string();
    if line.is_empty() {
        return Err(Exit(EXIT_USAGE, format!("no {what} given")).into());
    }
    Ok(line)
}

/// One line of stdin.
fn read_line(stdin: &std::io::Stdin) -> Result<String> {
    let mut line = String::new();
    stdin.lock().read_line(&mut line).context("cannot read standard input")?;
    Ok(line)
}

/// Runs `f` with the terminal's echo off, restoring it afterwards (also
/// when `f` fails). If the mode cannot be changed, `f` runs anyway.
fn without_echo<T>(stdin: &std::io::Stdin, f: impl FnOnce() -> T) -> T {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let Ok(saved) = tcgetattr(stdin) else { return f() };
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    let changed = tcsetattr(stdin, OptionalActions::Now, &quiet).is_ok();
    let out = f();
    if changed {
        let _ = tcsetattr(stdin, OptionalActions::Now, &saved);
    }
    out
}
