//! The error boundary: run the command, print any error once, exit 0 / 1 / 2.

use clap::Parser;

fn main() {
    let cli = stocktake::cli::Cli::parse();
    let code = match stocktake::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("stocktake: error: {e:#}");
            2
        }
    };
    std::process::exit(code);
}
