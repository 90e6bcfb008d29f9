//! Writing `--dump-book` files: at exit, and on SIGUSR1 while the run goes on. Each file is
//! written beside its final name and renamed into place, so a reader never sees half a book.

use std::io;
use std::path::{Path, PathBuf};

use crate::pipeline::Pipeline;

/// What one dump wrote.
#[derive(Debug, Default)]
pub(crate) struct Dumped {
    /// Symbols written.
    pub written: Vec<String>,
    /// Symbols not written, with their state: a book not known to be right is not dumped.
    pub skipped: Vec<(String, &'static str)>,
}

/// Writes `DIR/{SYMBOL}.json` for every synced book of `p`. Stops at the first file that cannot
/// be written, naming it.
pub(crate) fn write_dumps(dir: &Path, p: &Pipeline) -> Result<Dumped, (PathBuf, io::Error)> {
    std::fs::create_dir_all(dir).map_err(|e| (dir.to_path_buf(), e))?;
    let mut done = Dumped::default();
    for (i, s) in p.symbols().iter().enumerate() {
        match p.dump_book_json(i) {
            Some(json) => {
                let path = dir.join(format!("{}.json", s.symbol()));
                let tmp = dir.join(format!(".{}.json.tmp", s.symbol()));
                std::fs::write(&tmp, json).map_err(|e| (tmp.clone(), e))?;
                std::fs::rename(&tmp, &path).map_err(|e| (path.clone(), e))?;
                done.written.push(s.symbol().to_owned());
            }
            None => done.skipped.push((s.symbol().to_owned(), s.book().state().as_str())),
        }
    }
    Ok(done)
}
