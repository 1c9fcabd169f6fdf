//! The `kosmo` binary: everything lives in the library's private `cli` module.

fn main() -> std::process::ExitCode {
    kosmo::cli_main()
}
