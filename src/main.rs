//! The `spoolfetch` command line: parses arguments and calls one function
//! per subcommand. All logic lives in the library; errors are printed as
//! one line with their causes.

mod cmd;

use std::process::ExitCode;

fn main() -> ExitCode {
    cmd::main()
}
