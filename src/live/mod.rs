//! The live handler (`tickfeed run`): one thread, a mio poller, one websocket connection per shard
//! (two during a make-before-break switch), REST on helper threads.
//!
//! Before it starts, [`resolve`] asks exchangeInfo once for every symbol (the list, or with
//! `--symbol ALL` the exchange's), and plans the snapshots: the weight budget and the depth.
//!
//! Every decision about connections is the supervisor's (`supervisor.rs`), a sans-IO state machine fed with what
//! happened (`handle_*(.., now)`) that answers with actions and its next deadline: when to open one
//! (with jittered backoff, and never more than Binance's 300 attempts per 5 minutes), connect and
//! upgrade timeouts, the stale-stream watchdog, make-before-break at `--max-conn-age` and on
//! `serverShutdown`, the switch. The event loop (`event_loop`) only moves bytes and carries those
//! actions out. Per iteration: poll (`Duration::ZERO` when busy-polling, else until the next
//! deadline), service readable connections (each socket read -> frames -> pipeline -> one write of
//! the output buffer), pick up REST results, hand new snapshot requests to the REST worker, then
//! run what is due. `net::conn` moves bytes, the [`Pipeline`](crate::pipeline::Pipeline)
//! interprets them.
//!
//! Make before break: when the connection nears `--max-conn-age` or the server announces
//! `serverShutdown`, a second connection is opened while the first keeps feeding. Frames from
//! both go into the same pipeline, which skips what it already has (diffs with `u <= id`, trades
//! by id). A frame from the new connection goes to the pipeline at once only if it is not ahead
//! of what the old one has delivered (a diff with `U <= id + 1`, a trade id `<= last + 1`);
//! otherwise that stream of the new connection is held back in arrival order (copied aside), so
//! a diff that merely overtook its predecessor on the slower connection is never taken for a gap.
//! The loop switches once the old connection has caught up with the first held frame of every
//! stream (or at once if nothing had to be held), replays the held frames (duplicates are
//! skipped, the rest are contiguous) and closes the old connection: the books never stop
//! advancing and no update is lost. If the old connection dies first, or the overlap exceeds
//! `switch_timeout`, the loop switches anyway and the sync engine resyncs any book left with a gap.

mod config;
pub(crate) mod dumps;
pub(crate) mod event_loop;
mod exchange;
mod first_seen;
pub(crate) mod held;
mod report;
pub mod sbe;
pub(crate) mod supervisor;

pub use config::LiveConfig;
pub use event_loop::run;
pub use exchange::{resolve, AllSymbols};
pub use report::{EndReason, LinkReport, LiveError, LiveReport, RecordSetupError};

/// Why `--core` cannot be honoured: a configuration error (exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoreError {
    /// No core with this id (the ids this process may run on are listed).
    NoSuchCore {
        /// The id asked for.
        id: usize,
        /// The ids available.
        available: Vec<usize>,
    },
    /// The core exists but the thread could not be pinned to it.
    PinFailed {
        /// The id asked for.
        id: usize,
    },
}

impl std::fmt::Display for CoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CoreError::NoSuchCore { id, available } => {
                let have: Vec<String> = available.iter().map(usize::to_string).collect();
                write!(f, "--core {id}: no such core (available: {})", have.join(","))
            }
            CoreError::PinFailed { id } => write!(f, "--core {id}: pinning the event loop failed"),
        }
    }
}

impl std::error::Error for CoreError {}

/// Checks that core `id` exists (a one-line error otherwise): online, or in this process's
/// affinity mask. The mask alone is not enough: under `isolcpus` every process starts on the
/// housekeeping cores only, yet pinning the loop to an isolated core is the point.
pub fn check_core(id: usize) -> Result<(), CoreError> {
    let mut ids: Vec<usize> = core_affinity::get_core_ids().unwrap_or_default().iter().map(|c| c.id).collect();
    if let Ok(online) = std::fs::read_to_string("/sys/devices/system/cpu/online") {
        ids.extend(crate::net::cpu::parse_cpu_list(online.trim()).unwrap_or_default());
    }
    ids.sort_unstable();
    ids.dedup();
    if ids.contains(&id) {
        Ok(())
    } else {
        Err(CoreError::NoSuchCore { id, available: ids })
    }
}

pub(super) fn pin(id: usize) -> Result<(), CoreError> {
    check_core(id)?;
    if core_affinity::set_for_current(core_affinity::CoreId { id }) {
        Ok(())
    } else {
        Err(CoreError::PinFailed { id })
    }
}
