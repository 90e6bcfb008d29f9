//! `tickfeed-plot` as a user runs it: a hand-written percentile file becomes an SVG with one line
//! and one legend entry per input; a bad file is one stderr line naming the file and line, exit 1;
//! a usage mistake is one line, exit 2.

use std::path::PathBuf;
use std::process::{Command, Output};

fn plot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tickfeed-plot")).args(args).output().expect("run tickfeed-plot")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tickfeed-plot-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A small histogram in the layout `tickfeed run --hist` writes.
const HIST: &str = "       Value     Percentile TotalCount 1/(1-Percentile)

      41.000 0.000000000000          1           1.00
      63.000 0.500000000000        442           2.00
      90.000 0.750000000000        663           4.00
     172.000 0.990000000000        875         100.00
     230.000 0.999000000000        882        1000.00
     247.000 1.000000000000        883
#[Mean    =       71.402, StdDeviation   =       30.113]
#[Max     =      247.000, Total count    =          883]
#[Buckets =           15, SubBuckets     =         2048]
";

/// The contents of every `<text>` element, trimmed.
fn texts(svg: &str) -> Vec<&str> {
    svg.split("<text").skip(1).filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim())).collect()
}

fn one_line_error(o: &Output) -> String {
    let err = String::from_utf8(o.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("tickfeed-plot: "), "{err}");
    err
}

#[test]
fn draws_one_labelled_line_per_file() {
    let d = temp_dir("ok");
    let a = d.join("busy.hist");
    let b = d.join("blocking.hist");
    std::fs::write(&a, HIST).unwrap();
    std::fs::write(&b, HIST.replace("172.000", "180.000")).unwrap();
    let out = d.join("latency.svg");
    let o = plot(&[
        "-o",
        out.to_str().unwrap(),
        "--title",
        "test <plot>",
        a.to_str().unwrap(),
        &format!("no busy-poll={}", b.display()),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.trim_start().starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{svg}");
    assert!(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    // Legend: the bare file's name, and the given label; the title escaped.
    let texts = texts(&svg);
    for want in
        ["busy.hist", "no busy-poll", "test &lt;plot&gt;", "50%", "90%", "99%", "99.9%", "99.99%", "latency (ms)"]
    {
        assert!(texts.contains(&want), "no <text> {want:?} in {texts:?}");
    }
    // Two data lines of 5 points each (50%, 75%, 99%, 99.9%, 99.99%), plus two legend strokes of
    // 2 points. Each is a polyline.
    let polylines: Vec<&str> = svg.split("<polyline").skip(1).collect();
    let with_points = |n: usize| {
        polylines
            .iter()
            .filter(|p| {
                let pts = p.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
                pts.split_whitespace().count() == n
            })
            .count()
    };
    assert_eq!(with_points(5), 2, "{svg}");
    assert!(with_points(2) >= 2, "{svg}");
}

#[test]
fn log_y_draws_decades_and_refuses_all_zeros() {
    let d = temp_dir("log");
    let f = d.join("a.hist");
    std::fs::write(&f, HIST).unwrap();
    let out = d.join("log.svg");
    let o = plot(&["--log-y", "-o", out.to_str().unwrap(), f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(&out).unwrap();
    // 41..247: from the decade below (10) to the one above (1000).
    let texts = texts(&svg);
    for want in ["10", "100", "1000"] {
        assert!(texts.contains(&want), "no <text> {want:?} in {texts:?}");
    }
    std::fs::write(&f, "0 0.5 2\n0 1.0 4\n").unwrap();
    let o = plot(&["--log-y", "-o", out.to_str().unwrap(), f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(one_line_error(&o).contains("every value is 0"));
}

#[test]
fn a_bad_file_names_the_file_and_line() {
    let d = temp_dir("bad");
    let f = d.join("broken.hist");
    std::fs::write(&f, HIST.replace("     172.000 0.990000000000        875", "     172.000 0.99x        875"))
        .unwrap();
    let out = d.join("x.svg");
    let o = plot(&["-o", out.to_str().unwrap(), f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = one_line_error(&o);
    assert!(err.contains("broken.hist: line 6: Percentile \"0.99x\""), "{err}");
    assert!(!out.exists(), "no SVG is written for a bad input");

    let o = plot(&["-o", out.to_str().unwrap(), d.join("missing.hist").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(one_line_error(&o).contains("missing.hist"));

    std::fs::write(&f, "").unwrap();
    let o = plot(&["-o", out.to_str().unwrap(), f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(one_line_error(&o).contains("no percentile rows"));
}

#[test]
fn usage_mistakes_exit_2() {
    for args in [&[][..], &["--bogus", "x"], &["-o"], &["--size", "12", "f"]] {
        let o = plot(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        one_line_error(&o);
    }
    let o = plot(&["--help"]);
    assert!(o.status.success());
    assert!(String::from_utf8(o.stdout).unwrap().starts_with("usage: tickfeed-plot"));
}
