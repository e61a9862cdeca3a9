//! The error boundary: run the command, print any error once, exit 0 / 1 / 2.

use clap::Parser;

/// jemalloc instead of glibc's malloc: the builds allocate and free millions of batch buffers,
/// and glibc's malloc and free took ~11 % of a tier-M full build's samples. Full builds took
/// 50.9 / 48.9 s instead of 54.8 / 54.3 (82 CPU-s instead of 92, peak RSS 1.31 GiB instead of
/// 1.45-1.51), daily runs 3.36 / 3.22 s instead of 3.51 / 3.56.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
