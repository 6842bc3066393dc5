//! Standard output for the commands. A reader that went away — `airlock approvals show …
//! | head` — is a normal end, not a failure: the command stops quietly with status 0
//! (Rust's `println!` would panic on the broken pipe instead).

use std::io::Write as _;

/// Writes one line (see [`outln!`](crate::outln)).
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        finish(&e);
    }
}

/// Ends the process after a failed write to stdout: 0 when the reader closed the pipe,
/// 2 (with the reason) otherwise.
pub fn finish(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("airlock: writing to stdout: {e}");
    std::process::exit(2);
}

/// `println!` for the commands: a closed pipe ends the command quietly.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::cli::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::line(format_args!($($arg)*))
    };
}
