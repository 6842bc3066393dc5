//! The Airlock approval service and operator CLI.
//!
//! Not built yet: the approval-service issue fills this crate in, following the
//! filter↔service protocol in `docs/protocol.md`. Until then the binary says so
//! and exits non-zero, so nothing mistakes it for a working service.

fn main() -> std::process::ExitCode {
    eprintln!("airlock: the approval service is not implemented yet (see docs/protocol.md)");
    std::process::ExitCode::from(2)
}
