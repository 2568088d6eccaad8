//! A stand-alone front end for the simulated clusters, with the same arguments as
//! `meshshift sim`: `sim up [--detach] [--fresh] [--state-dir DIR]`, `sim down`, `sim status`.
//!
//! Run it with `cargo run --example sim -- sim up`.

use std::path::PathBuf;
use std::process::ExitCode;

use meshshift::sim::command::{self, DownOptions, StatusOptions, UpOptions};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("sim") {
        args.remove(0);
    }
    let mut detach = false;
    let mut fresh = false;
    let mut state_dir: Option<PathBuf> = None;
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--detach" => detach = true,
            "--fresh" => fresh = true,
            "--state-dir" => state_dir = rest.next().map(PathBuf::from),
            other => {
                eprintln!("error: unexpected argument `{other}`");
                return ExitCode::from(2);
            }
        }
    }
    let result = match args.first().map(String::as_str) {
        Some("up") => command::up(&UpOptions {
            detach,
            state_dir,
            fresh,
        }),
        Some("down") => command::down(&DownOptions { state_dir }),
        Some("status") => command::status(&StatusOptions { state_dir }),
        _ => {
            eprintln!("usage: sim up [--detach] [--fresh] [--state-dir DIR] | down | status");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
