fn main() -> std::process::ExitCode {
    voicesim::cli::main()
}
