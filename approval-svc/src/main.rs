fn main() -> std::process::ExitCode {
    airlock_approval_svc::cli::main()
}
