//! SIGINT and SIGTERM as a flag the event loop polls, through the C library's `signal()`; and
//! SIGUSR1, "write the book dumps now", as a second flag.
//!
//! std has no signal API; this is the smallest sound substitute for a crate: the handler does one
//! atomic store, which is async-signal-safe, and the loop reads the flag once per iteration (a
//! blocking poll returns within its timeout, or at once with `EINTR`). A second signal changes
//! nothing: the run is already ending. Not a general signal facility: nothing else is handled.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
static DUMP: AtomicBool = AtomicBool::new(false);

#[cfg(unix)]
mod ffi {
    use std::ffi::c_int;
    pub(super) const SIGINT: c_int = 2;
    pub(super) const SIGTERM: c_int = 15;
    #[cfg(target_os = "linux")]
    pub(super) const SIGUSR1: c_int = 10;
    #[cfg(not(target_os = "linux"))]
    pub(super) const SIGUSR1: c_int = 30;
    /// `SIG_ERR` is `(sighandler_t) -1`.
    pub(super) const SIG_ERR: usize = usize::MAX;
    extern "C" {
        /// `sighandler_t signal(int signum, sighandler_t handler)`; a handler is a pointer-sized
        /// function address, passed and returned as `usize`.
        pub(super) fn signal(signum: c_int, handler: usize) -> usize;
    }
}

#[cfg(unix)]
extern "C" fn on_signal(_signum: std::ffi::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

#[cfg(unix)]
extern "C" fn on_dump(_signum: std::ffi::c_int) {
    DUMP.store(true, Ordering::SeqCst);
}

/// Set by SIGUSR1 (once [`install`] ran): the live loop writes `--dump-book` now and clears it.
pub(crate) fn dump_requested() -> &'static AtomicBool {
    &DUMP
}

/// Why the handler could not be installed: fatal at start (without it a signal would kill the run
/// before the summary and exit files are written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum SignalError {
    /// `signal()` returned `SIG_ERR` for this signal.
    Install {
        /// `SIGINT`, `SIGTERM` or `SIGUSR1`.
        signal: &'static str,
    },
}

impl std::fmt::Display for SignalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignalError::Install { signal } => write!(f, "cannot install the {signal} handler"),
        }
    }
}

impl std::error::Error for SignalError {}

/// Installs the SIGINT/SIGTERM handler (idempotent) and returns the flag it sets.
// The crate's one unsafe call outside tests: std has no signal API, and this is the whole of the
// FFI (see the SAFETY note below and the test that raises SIGTERM).
#[allow(unsafe_code)]
pub(crate) fn install() -> Result<&'static AtomicBool, SignalError> {
    #[cfg(unix)]
    {
        let handler = on_signal as extern "C" fn(std::ffi::c_int) as usize;
        let dump = on_dump as extern "C" fn(std::ffi::c_int) as usize;
        for (sig, name, handler) in
            [(ffi::SIGINT, "SIGINT", handler), (ffi::SIGTERM, "SIGTERM", handler), (ffi::SIGUSR1, "SIGUSR1", dump)]
        {
            // SAFETY: `signal` is called with a valid signal number and the address of an
            // `extern "C" fn(c_int)`, the handler type C expects. The handler only stores to a
            // static atomic, which is async-signal-safe, and touches nothing else (both handlers).
            let prev = unsafe { ffi::signal(sig, handler) };
            if prev == ffi::SIG_ERR {
                return Err(SignalError::Install { signal: name });
            }
        }
    }
    Ok(&STOP)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    extern "C" {
        fn raise(sig: std::ffi::c_int) -> std::ffi::c_int;
    }

    #[test]
    #[allow(unsafe_code)] // raise(3): see the SAFETY note
    fn sigterm_sets_the_flag_instead_of_killing_the_process() {
        let f = install().unwrap();
        f.store(false, Ordering::SeqCst);
        // SAFETY: raising SIGTERM for this process; the handler installed above runs and only
        // stores to an atomic (without it the default action would end the test process).
        assert_eq!(unsafe { raise(ffi::SIGTERM) }, 0);
        assert!(f.load(Ordering::SeqCst));
        f.store(false, Ordering::SeqCst);
        // SAFETY: as above, for SIGUSR1 and its handler.
        assert_eq!(unsafe { raise(ffi::SIGUSR1) }, 0);
        assert!(dump_requested().swap(false, Ordering::SeqCst));
        assert!(!f.load(Ordering::SeqCst), "a dump request does not stop the run");
    }
}
