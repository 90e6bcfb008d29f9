//! Reading recordings: opening (plain or gzip) and planning files and capture folders into runs.
//!
//! A recording is lines of `<local receive time in ns> <raw frame or raw REST body>` (the format
//! of the shared Binance captures and of `tickfeed run --record`), plain or gzip (detected by its
//! magic bytes, not its name). A REST depth body carries no symbol: it goes to the symbol named by
//! a preceding recorded request line of the same file (`<ns> GET /api/v3/depth?symbol=BTCUSDT&limit=1000`),
//! else to the one symbol whose streams the same file carries, else (several symbols, no request
//! line) to the symbol whose last seen price is nearest the snapshot's best bid. A torn last line
//! (a killed recorder) is counted and skipped.
//!
//! Inputs are planned into segments ([`plan`]):
//! - Files given by name are read one after another, in the order given (consecutive file
//!   arguments form one segment, exactly as before captures existed).
//! - A directory (a capture root, symbol, date or take folder, or any folder of recordings) is
//!   walked; its files are grouped into runs: the takes that carry the same run id (`.run`, written
//!   by the recorder; a run that crossed midnight has a take in each date folder) are one run, a
//!   take without one is a run of its own, and files outside any take form one run per argument.
//!   A run's files are merged by receive time (k-way merge on the leading ns; each kind folder's
//!   files are read in name order as one stream). Ties keep a fixed order: orderbook, trades,
//!   aggTrades, bookTickers, other; then the order of the walk. Runs of one directory go in order
//!   of their start time, runs of several arguments in argument order; a run named again by a
//!   later argument is merged into the earlier one.
//! - Between segments the books are reset: nothing between two runs was received, so each run
//!   syncs from its own snapshot.
//!
//! Temporary (`*.tmp`) and dot files are skipped, and a plain file whose gzip twin `X.gz` exists
//! beside it (a compression interrupted between rename and removal) is read once, from the `.gz`.
//! Pacing: as fast as possible, or at the recorded pace (times a speed factor), sleeping on the
//! caller's thread. This module reads files and sleeps; it does not print or decide about books.

use super::layout::{kind_rank, parse_take, read_run_id, run_start_ns};
use super::line::{split_line, RecordedLine};
use flate2::read::MultiGzDecoder;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Why recordings could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadError {
    /// A file or folder could not be opened, listed or read.
    Io {
        /// Which.
        path: PathBuf,
        /// The OS's reason.
        source: io::Error,
    },
    /// A recording whose first line does not start with a receive time.
    NotStamped {
        /// The file.
        path: PathBuf,
        /// The line's number (1-based).
        line: u64,
        /// The line's first bytes.
        found: String,
    },
    /// A recording of another venue than the replay's `--venue`: a spot diff (no `T`, no `pu`)
    /// under `usdm`, or a futures diff (`pu`) under `spot`. Replaying it would not sync (every
    /// diff a bad message) or would resync on every diff (futures ids skip), so it is refused.
    WrongVenue {
        /// The file.
        path: PathBuf,
        /// The line's number (1-based).
        line: u64,
        /// The venue the replay was asked for.
        venue: crate::venue::Venue,
    },
}

impl ReadError {
    /// The one way an I/O error gets its path: `.map_err(ReadError::at(path))`.
    pub fn at(path: &Path) -> impl FnOnce(io::Error) -> ReadError + '_ {
        move |source| ReadError::Io { path: path.to_path_buf(), source }
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            ReadError::NotStamped { path, line, found } => write!(
                f,
                "{}: line {line} does not start with a receive time (a whole number of ns, us or ms since the \
                 epoch, then a space): '{found}'",
                path.display()
            ),
            ReadError::WrongVenue { path, line, venue: crate::venue::Venue::UsdM } => write!(
                f,
                "{}: line {line} is a spot depth diff (no T or pu), not USDⓈ-M futures: replay it without --venue usdm",
                path.display()
            ),
            ReadError::WrongVenue { path, line, venue: crate::venue::Venue::Spot } => write!(
                f,
                "{}: line {line} is a USDⓈ-M futures depth diff (pu, or an @depth@0ms/@500ms stream): replay it with \
                 --venue usdm",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io { source, .. } => Some(source),
            ReadError::NotStamped { .. } | ReadError::WrongVenue { .. } => None,
        }
    }
}

/// The line reader's buffer: large enough that almost every line is handed over in place.
const READ_BUF: usize = 256 << 10;

/// Opens a recording, transparently gunzipping it.
pub fn open_recording(path: &Path) -> io::Result<Box<dyn BufRead>> {
    // Opened once: a pipe (`/dev/stdin`) cannot be opened again to start over, so the two bytes
    // read to tell gzip from plain text are put back in front of the rest.
    let mut f = File::open(path)?;
    let mut magic = [0u8; 2];
    let n = read_up_to(&mut f, &mut magic)?;
    let src = io::Cursor::new(magic).take(n as u64).chain(f);
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(BufReader::with_capacity(READ_BUF, MultiGzDecoder::new(BufReader::with_capacity(1 << 16, src)))))
    } else {
        Ok(Box::new(BufReader::with_capacity(READ_BUF, src)))
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Every data line of a recording as `(receive ns, raw JSON)`, in file order; request lines,
/// blank and malformed lines are left out. Loads the whole file (for tests, benches and tools;
/// replay itself streams).
pub fn load_recording(path: &Path) -> io::Result<Vec<(i64, Vec<u8>)>> {
    let mut r = open_recording(path)?;
    let (mut out, mut line) = (Vec::new(), Vec::new());
    while r.read_until(b'\n', &mut line)? > 0 {
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if let RecordedLine::Data { recv_ns, json } = split_line(&line) {
            out.push((recv_ns, json.to_vec()));
        }
        line.clear();
    }
    Ok(out)
}

/// One part of a replay: see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Files given by name, read one after another, each on its own.
    Files(Vec<PathBuf>),
    /// One recorded run: its streams merged by receive time.
    Run {
        /// The run id from the takes' `.run` files, or a name standing for it.
        id: String,
        /// The streams to merge.
        streams: Vec<Stream>,
    },
}

/// One stream of a run: files read in order (one kind folder of one symbol, over the run's hours
/// and dates), and its place in the tie order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// The files, in time order.
    pub files: Vec<PathBuf>,
    /// Tie order for lines received at the same ns: lower first.
    pub rank: u8,
}

/// Plans the inputs of a replay (files and folders) into segments; see the module documentation.
pub fn plan(inputs: &[PathBuf]) -> Result<Vec<Segment>, ReadError> {
    /// A run being planned: streams keyed by (symbol folder, kind folder), or by file for loose
    /// files.
    type Streams = Vec<(PathBuf, Stream)>;
    enum Planned {
        Files(Vec<PathBuf>),
        Run(String, Streams),
    }
    let mut segs: Vec<Planned> = Vec::new();
    // Run id -> segment index, so a run named by two arguments is replayed once, merged.
    let mut run_seg: HashMap<String, usize> = HashMap::new();
    let mut run_ids: HashMap<PathBuf, String> = HashMap::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(ReadError::at(input))?;
        if !meta.is_dir() {
            match segs.last_mut() {
                Some(Planned::Files(v)) => v.push(input.clone()),
                _ => segs.push(Planned::Files(vec![input.clone()])),
            }
            continue;
        }
        let mut files = Vec::new();
        walk(input, &mut files).map_err(ReadError::at(input))?;
        if files.is_empty() {
            let e = io::Error::new(io::ErrorKind::NotFound, "no recording files in this folder");
            return Err(ReadError::at(input)(e));
        }
        // This argument's runs in walk order: (run key, start ns, streams).
        let mut groups: Vec<(String, Option<i64>, Streams)> = Vec::new();
        for f in files {
            let (key, stream_key, rank) = match take_of(&f) {
                Some((take, kind)) => {
                    let id = run_ids
                        .entry(take.clone())
                        .or_insert_with(|| read_run_id(&take).unwrap_or_else(|| format!("take {}", take.display())))
                        .clone();
                    // One stream per symbol folder and kind folder, across the run's dates.
                    let symbol_dir = take.parent().and_then(Path::parent).unwrap_or(&take);
                    (id, symbol_dir.join(&kind), kind_rank(&kind))
                }
                None => (format!("folder {}", input.display()), f.clone(), kind_rank("")),
            };
            let g = match groups.iter().position(|g| g.0 == key) {
                Some(g) => g,
                None => {
                    groups.push((key.clone(), run_start_ns(&key), Vec::new()));
                    groups.len() - 1
                }
            };
            add_file(&mut groups[g].2, stream_key, rank, f);
        }
        // Runs in order of their start; runs without a known start keep walk order, after them.
        groups.sort_by_key(|g| g.1.unwrap_or(i64::MAX));
        for (key, _, streams) in groups {
            match run_seg.get(&key) {
                Some(&i) => {
                    if let Planned::Run(_, have) = &mut segs[i] {
                        for (k, s) in streams {
                            for f in s.files {
                                add_file(have, k.clone(), s.rank, f);
                            }
                        }
                    }
                }
                None => {
                    run_seg.insert(key.clone(), segs.len());
                    segs.push(Planned::Run(key, streams));
                }
            }
        }
    }
    Ok(segs
        .into_iter()
        .map(|p| match p {
            Planned::Files(f) => Segment::Files(f),
            Planned::Run(id, streams) => Segment::Run {
                id,
                streams: streams
                    .into_iter()
                    .map(|(_, mut s)| {
                        // Paths under one symbol folder sort by date, then (one take per date in a
                        // run) by file name: time order.
                        s.files.sort();
                        s.files.dedup();
                        s
                    })
                    .collect(),
            },
        })
        .collect())
}

fn add_file(streams: &mut Vec<(PathBuf, Stream)>, key: PathBuf, rank: u8, file: PathBuf) {
    match streams.iter_mut().find(|(k, _)| *k == key) {
        Some((_, s)) => s.files.push(file),
        None => streams.push((key, Stream { files: vec![file], rank })),
    }
}

/// The take folder a file is under (the nearest ancestor named `take_<n>`) and the name of the
/// folder just below it (the kind folder; empty for a file directly in the take).
fn take_of(file: &Path) -> Option<(PathBuf, String)> {
    let mut child = file;
    let mut dir = file.parent();
    while let Some(d) = dir {
        if parse_take(d.file_name()?.to_str()?).is_some() {
            let kind = if child == file { "" } else { child.file_name()?.to_str()? };
            return Some((d.to_path_buf(), kind.to_owned()));
        }
        child = d;
        dir = d.parent();
    }
    None
}

/// Lists recording files under `dir`, recursively, in order: names sorted, `take_<n>` folders by
/// number; dot files and `*.tmp` skipped; `X` skipped when `X.gz` is beside it.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut names: Vec<(String, PathBuf, bool)> = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with(".tmp") {
            continue;
        }
        let is_dir = e.file_type()?.is_dir() || (e.file_type()?.is_symlink() && e.path().is_dir());
        names.push((name, e.path(), is_dir));
    }
    let present: HashSet<String> = names.iter().filter(|n| !n.2).map(|n| n.0.clone()).collect();
    names.retain(|(name, _, is_dir)| *is_dir || !present.contains(&format!("{name}.gz")));
    names.sort_by(|a, b| match (parse_take(&a.0), parse_take(&b.0)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.0.cmp(&b.0),
    });
    for (_, path, is_dir) in names {
        if is_dir {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}
