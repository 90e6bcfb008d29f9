//! Capture and replay: the line format shared by writer and reader (`line`), the folder layout
//! (`layout`), the recorder behind `run --record` (`recorder`, with its background gzip), the
//! reader that opens files and plans captures into runs (`reader`), and replay through the
//! pipeline (`replay`).
//!
//! It does not decode frames or keep books: lines go to the [`Pipeline`](crate::pipeline::Pipeline)
//! as they were received.

pub mod base64;
mod compress;
pub(crate) mod layout;
mod line;
mod reader;
mod recorder;
mod replay;

pub use line::{request_symbol, split_line, RecordedLine, StampUnit, BINARY_MARKER};
pub use reader::{load_recording, open_recording, plan, ReadError, Segment, Stream};
pub use recorder::{ConfigError, RecordError, Recorder, RecorderConfig, RecorderCounters};
pub use replay::{Pace, ReplayCounters, ReplayOptions, Replayer, MAX_LINE};
