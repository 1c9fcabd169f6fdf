//! The `kosmo` binary: everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    kosmo::cli::main()
}
