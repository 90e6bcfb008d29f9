//! `tickfeed-plot [-o OUT.svg] [--title T] [--unit U] [--log-y] FILE|LABEL=FILE...`: one line per
//! percentile file in one SVG. A bad file or flag is one line on stderr and a non-zero exit
//! (1 for a file that cannot be read or parsed, 2 for a usage mistake).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tickfeed_plot::draw::{self, Options, Series};
use tickfeed_plot::hist;

const USAGE: &str = "usage: tickfeed-plot [-o OUT.svg] [--title TEXT] [--unit UNIT] [--log-y] FILE|LABEL=FILE...
Draws the HdrHistogram percentile plot (latency against percentile, 50% to 99.99%) of
percentile-distribution files such as `tickfeed run --hist FILE` writes, one line each.
  -o, --output OUT.svg   where to write the SVG [default: latency.svg]
  --title TEXT           the caption [default: tickfeed latency by percentile]
  --unit UNIT            the values' unit on the y axis: ms for --hist FILE, us for FILE.process [default: ms]
  --log-y                a log latency axis, for tails far above the median [default: linear]
  --size WxH             pixels [default: 960x600]
  LABEL=FILE             names the line LABEL; a bare FILE is named by its file name";

enum Failure {
    Usage(String),
    Input(String),
}

struct Cli {
    out: PathBuf,
    opts: Options,
    inputs: Vec<(String, PathBuf)>,
}

/// `LABEL=FILE` or `FILE`. An argument that names an existing file is a file even if it has an `=`.
fn input(arg: &str) -> (String, PathBuf) {
    if !Path::new(arg).exists() {
        if let Some((label, file)) = arg.split_once('=') {
            if !label.is_empty() && !file.is_empty() {
                return (label.to_string(), PathBuf::from(file));
            }
        }
    }
    let p = PathBuf::from(arg);
    let label = p.file_name().map_or_else(|| arg.to_string(), |n| n.to_string_lossy().into_owned());
    (label, p)
}

fn size(s: &str) -> Option<(u32, u32)> {
    let (w, h) = s.split_once('x')?;
    let (w, h) = (w.parse().ok()?, h.parse().ok()?);
    ((200..=10_000).contains(&w) && (200..=10_000).contains(&h)).then_some((w, h))
}

fn parse_args(args: &[String]) -> Result<Option<Cli>, Failure> {
    let mut cli = Cli { out: PathBuf::from("latency.svg"), opts: Options::default(), inputs: Vec::new() };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().cloned().ok_or_else(|| Failure::Usage(format!("{flag} needs a value")));
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "-o" | "--output" => cli.out = PathBuf::from(value(a)?),
            "--title" => cli.opts.title = value(a)?,
            "--unit" => cli.opts.unit = value(a)?,
            "--log-y" => cli.opts.log_y = true,
            "--size" => {
                let v = value(a)?;
                cli.opts.size =
                    size(&v).ok_or_else(|| Failure::Usage(format!("--size {v:?}: expected WxH, 200..10000 each")))?;
            }
            "--" => cli.inputs.extend(it.by_ref().map(|a| input(a))),
            s if s.starts_with('-') && s.len() > 1 => {
                return Err(Failure::Usage(format!("unknown flag {s:?} (--help lists them)")))
            }
            s => cli.inputs.push(input(s)),
        }
    }
    if cli.inputs.is_empty() {
        return Err(Failure::Usage("no input files (--help for usage)".into()));
    }
    Ok(Some(cli))
}

fn run(args: &[String]) -> Result<(), Failure> {
    let Some(cli) = parse_args(args)? else {
        println!("{USAGE}");
        return Ok(());
    };
    let mut series = Vec::with_capacity(cli.inputs.len());
    for (label, path) in &cli.inputs {
        let text = std::fs::read_to_string(path).map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?;
        let rows = hist::parse(&text).map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?;
        series.push(Series { label: label.clone(), rows });
    }
    let svg = draw::svg(&series, &cli.opts).map_err(|e| Failure::Input(e.to_string()))?;
    std::fs::write(&cli.out, svg).map_err(|e| Failure::Input(format!("{}: {e}", cli.out.display())))?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("tickfeed-plot: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Input(m)) => {
            eprintln!("tickfeed-plot: {m}");
            ExitCode::from(1)
        }
    }
}
