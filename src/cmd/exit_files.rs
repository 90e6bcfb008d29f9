//! The exit files (`--dump-book`, `--stats`, `--hist`): checked at start, written at the end.
//!
//! A path that cannot be written is reported before the run starts, in one line, rather than
//! after an hour of data when the summary is due. The check opens each file for appending (which
//! changes nothing in a file already there) and removes it again if it did not exist; the
//! `--dump-book` folder is created at start and a probe file written in it. Not a guarantee: a disk
//! can fill or a folder be removed during the run, and the write at exit still reports that.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};

use crate::output::stats::{percentile_distribution, stats_json};
use crate::pipeline::Pipeline;

use super::args::OutputArgs;

/// An exit file that cannot be written.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum ExitFileError {
    /// Found at start: the path cannot be created or written.
    NotWritable {
        /// `--dump-book`, `--stats` or `--hist`.
        flag: &'static str,
        /// The path that failed.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Writing at exit failed.
    Write {
        /// `--dump-book`, `--stats` or `--hist`.
        flag: &'static str,
        /// The path that failed.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl std::fmt::Display for ExitFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitFileError::NotWritable { flag, path, source } => {
                write!(f, "{flag} {}: cannot be written: {source}", path.display())
            }
            ExitFileError::Write { flag, path, source } => write!(f, "{flag} {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for ExitFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ExitFileError::NotWritable { source, .. } | ExitFileError::Write { source, .. } => Some(source),
        }
    }
}

/// `--hist FILE`'s second file, the in-process time histogram.
fn process_hist_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".process");
    PathBuf::from(s)
}

/// Checks at start that every exit file asked for can be written.
pub(super) fn check_writable(a: &OutputArgs) -> Result<(), ExitFileError> {
    if let Some(dir) = &a.dump_book {
        probe_dir(dir).map_err(|source| ExitFileError::NotWritable {
            flag: "--dump-book",
            path: dir.clone(),
            source,
        })?;
    }
    if let Some(path) = &a.stats {
        probe_file(path).map_err(|source| ExitFileError::NotWritable {
            flag: "--stats",
            path: path.clone(),
            source,
        })?;
    }
    if let Some(path) = &a.hist {
        for p in [path.clone(), process_hist_path(path)] {
            probe_file(&p).map_err(|source| ExitFileError::NotWritable { flag: "--hist", path: p.clone(), source })?;
        }
    }
    Ok(())
}

pub(super) fn probe_file(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        return Err(io::Error::new(io::ErrorKind::IsADirectory, "is a folder"));
    }
    let existed = path.exists();
    OpenOptions::new().append(true).create(true).open(path)?;
    if !existed {
        std::fs::remove_file(path)?;
    }
    Ok(())
}

pub(super) fn probe_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".tickfeed-probe-{}", std::process::id()));
    OpenOptions::new().write(true).create_new(true).open(&probe)?;
    std::fs::remove_file(&probe)
}

/// Writes the exit files for a finished pipeline; `extra` are the command's own `--stats` keys.
/// `raw` are keys whose values are JSON already.
pub(super) fn write(
    a: &OutputArgs,
    p: &Pipeline,
    extra: &[(&str, u64)],
    raw: &[(&str, String)],
) -> Result<(), ExitFileError> {
    if let Some(dir) = &a.dump_book {
        let done = crate::live::dumps::write_dumps(dir, p).map_err(|(path, source)| ExitFileError::Write {
            flag: "--dump-book",
            path,
            source,
        })?;
        for (symbol, state) in done.skipped {
            eprintln!("tickfeed: {symbol} is not synced ({state}): no book dumped");
        }
    }
    if let Some(path) = &a.stats {
        let json = stats_json(p.stats(), &p.summaries(), extra, raw);
        std::fs::write(path, json).map_err(|source| ExitFileError::Write {
            flag: "--stats",
            path: path.clone(),
            source,
        })?;
    }
    if let Some(path) = &a.hist {
        let files = [(path.clone(), &p.stats().latency_us), (process_hist_path(path), &p.stats().process_ns)];
        for (file, hist) in files {
            std::fs::write(&file, percentile_distribution(hist, 1000.0)).map_err(|source| ExitFileError::Write {
                flag: "--hist",
                path: file.clone(),
                source,
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        out: OutputArgs,
    }

    fn args(v: &[&str]) -> OutputArgs {
        T::try_parse_from(std::iter::once("t").chain(v.iter().copied())).unwrap().out
    }

    #[test]
    fn probes_leave_no_trace_and_catch_unwritable_paths() {
        let dir = std::env::temp_dir().join(format!("tickfeed-exit-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let stats = dir.join("stats.json");
        let hist = dir.join("h.txt");
        let books = dir.join("books/deeper");
        let kept = dir.join("kept.json");
        std::fs::write(&kept, "old").unwrap();
        let a = args(&[
            "--stats",
            stats.to_str().unwrap(),
            "--hist",
            hist.to_str().unwrap(),
            "--dump-book",
            books.to_str().unwrap(),
        ]);
        check_writable(&a).unwrap();
        assert!(!stats.exists() && !hist.exists() && !process_hist_path(&hist).exists());
        assert_eq!(std::fs::read_dir(&books).unwrap().count(), 0, "the probe file is removed");
        check_writable(&args(&["--stats", kept.to_str().unwrap()])).unwrap();
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), "old", "an existing file is left as it was");

        let missing = dir.join("no/such/dir/stats.json");
        let e = check_writable(&args(&["--stats", missing.to_str().unwrap()])).unwrap_err().to_string();
        assert!(e.starts_with("--stats ") && e.contains("cannot be written") && !e.contains('\n'), "{e}");
        let e = check_writable(&args(&["--hist", dir.to_str().unwrap()])).unwrap_err().to_string();
        assert!(e.starts_with("--hist "), "{e}");
        let under_file = kept.join("books");
        let e = check_writable(&args(&["--dump-book", under_file.to_str().unwrap()])).unwrap_err().to_string();
        assert!(e.starts_with("--dump-book "), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
