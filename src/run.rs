//! The library entry point the binary calls.

use std::ffi::OsString;

use clap::Parser;

use crate::arguments::Arguments;
use crate::output::Style;

/// Parses the command line, runs the command, prints any error once, and returns the exit
/// code: 0 only on success.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    // kube and reqwest share one rustls; exactly one crypto provider must be installed first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let arguments = match Arguments::try_parse_from(args) {
        Ok(arguments) => arguments,
        Err(error) => {
            let _ = error.print();
            return error.exit_code();
        }
    };
    init_logging();
    match crate::subcommand::execute(arguments) {
        Ok(()) => 0,
        Err(error) => {
            eprint!("{}", error.render(&Style::stderr()));
            error.exit_code()
        }
    }
}

/// `RUST_LOG=meshshift=debug` shows what the host does; quiet by default.
fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(crate::output::log_filter())
        .with_writer(std::io::stderr)
        .with_ansi(Style::stderr().is_colour())
        .without_time()
        .try_init();
}
