//! The `keyledger` command line.

// The server allocates and frees small buffers on every request and event
// (JSON, headers, records); mimalloc serves them with less work than glibc's
// allocator (docs/BENCHMARKS.md). The offline verifier keeps the system one.
#[cfg(feature = "server")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    keyledger::cli::run()
}
