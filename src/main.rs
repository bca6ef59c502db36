//! The `keyledger` command line.
fn main() -> std::process::ExitCode {
    keyledger::cli::run()
}
