//! The classic HdrHistogram percentile plot: latency against percentile on a "1/(1-p)" log axis,
//! from the median to 99.99%, one line per input with a legend, drawn with plotters' SVG backend.
//!
//! Each line joins the file's rows from 50% to 99.99%, with its ends placed exactly at the value
//! HdrHistogram reports for 50% and for 99.99% (the first row reaching it). A file whose rows stop
//! short of 99.99% is drawn as far as its rows go, not extended. It draws and returns SVG text;
//! writing the file is the caller's.

use crate::hist::{value_at, Row};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

/// The plotted percentile range, as 1/(1-p): 50% to 99.99%.
const X_FROM: f64 = 2.0;
const X_TO: f64 = 10_000.0;

/// One line of the plot.
#[derive(Debug, Clone)]
pub struct Series {
    /// The legend text.
    pub label: String,
    /// The file's rows.
    pub rows: Vec<Row>,
}

/// What the plot says besides its data.
#[derive(Debug, Clone)]
pub struct Options {
    /// The caption above the plot.
    pub title: String,
    /// The unit of the values, for the y-axis label (tickfeed: `ms` for `--hist FILE`, `us` for
    /// `FILE.process`).
    pub unit: String,
    /// Width and height in pixels.
    pub size: (u32, u32),
    /// A log latency axis (decades), for tails far above the median.
    pub log_y: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { title: "tickfeed latency by percentile".into(), unit: "ms".into(), size: (960, 600), log_y: false }
    }
}

/// Why a plot could not be drawn.
#[derive(Debug)]
pub struct DrawError(pub String);

impl std::fmt::Display for DrawError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DrawError {}

/// Line colours, distinguishable in print and for the common colour-vision deficiencies
/// (Okabe and Ito's set); they repeat after eight series.
const COLOURS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

/// The points of one series as (1/(1-p), value), within [X_FROM, X_TO].
pub fn points(rows: &[Row]) -> Vec<(f64, f64)> {
    let mut pts = Vec::new();
    let p_from = 1.0 - 1.0 / X_FROM;
    let p_to = 1.0 - 1.0 / X_TO;
    let Some(v0) = value_at(rows, p_from) else { return pts };
    pts.push((X_FROM, v0));
    for r in rows {
        if r.percentile > p_from && r.percentile < p_to {
            pts.push((1.0 / (1.0 - r.percentile), r.value));
        }
    }
    if let Some(v1) = value_at(rows, p_to) {
        pts.push((X_TO, v1));
    }
    pts
}

/// "50%", "99.9%", ... for a 1/(1-p) axis position.
fn percent_label(x: &f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    // Enough decimals to tell 99.9 from 99.99, and no trailing zeros.
    let s = format!("{p:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

/// A y-axis number without float noise (`0.30000000000000004` is written `0.3`).
fn axis_number(v: &f64) -> String {
    let s = format!("{v:.3}");
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { &s };
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// Draws `series` and returns the SVG document.
pub fn svg(series: &[Series], opts: &Options) -> Result<String, DrawError> {
    if series.is_empty() {
        return Err(DrawError("nothing to draw: no input files".into()));
    }
    let lines: Vec<Vec<(f64, f64)>> = series.iter().map(|s| points(&s.rows)).collect();
    if let Some(i) = lines.iter().position(Vec::is_empty) {
        return Err(DrawError(format!("{}: its rows never reach the 50th percentile", series[i].label)));
    }
    let y_max = lines.iter().flatten().map(|p| p.1).fold(0.0f64, f64::max);
    let mut out = String::new();
    if opts.log_y {
        // A log axis has no 0: it starts at the decade below the smallest positive value, and
        // zeros (a value under the histogram's resolution) are drawn on that floor.
        let y_min = lines.iter().flatten().map(|p| p.1).filter(|&v| v > 0.0).fold(f64::INFINITY, f64::min);
        if !y_min.is_finite() {
            return Err(DrawError("--log-y: every value is 0".into()));
        }
        let floor = 10f64.powf(y_min.log10().floor());
        let lines: Vec<Vec<(f64, f64)>> =
            lines.iter().map(|l| l.iter().map(|&(x, y)| (x, y.max(floor))).collect()).collect();
        let top = 10f64.powf((y_max * 1.01).log10().ceil()).max(floor * 10.0);
        render(&mut out, series, &lines, opts, (floor..top).log_scale())?;
    } else {
        let top = if y_max > 0.0 { y_max * 1.08 } else { 1.0 };
        render(&mut out, series, &lines, opts, 0.0..top)?;
    }
    Ok(out)
}

/// The plot itself, over a linear or a log latency axis `y`.
fn render<Y>(
    out: &mut String,
    series: &[Series],
    lines: &[Vec<(f64, f64)>],
    opts: &Options,
    y: Y,
) -> Result<(), DrawError>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let root = SVGBackend::with_string(out, opts.size).into_drawing_area();
    let e = |e: DrawingAreaErrorKind<_>| DrawError(format!("drawing failed: {e}"));
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&opts.title, ("sans-serif", 22))
        .margin(16)
        .margin_right(36)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d((X_FROM..X_TO).log_scale().with_key_points(vec![2.0, 10.0, 100.0, 1_000.0, 10_000.0]), y)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc(format!("latency ({})", opts.unit))
        .x_label_formatter(&percent_label)
        .y_label_formatter(&axis_number)
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(e)?;
    for (k, (s, pts)) in series.iter().zip(lines).enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
            .map_err(e)?
            .label(s.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hist::parse;

    #[test]
    fn points_span_the_median_to_four_nines() {
        let rows = parse("10 0.0 1\n20 0.5 50\n30 0.9 90\n40 0.999 999\n50 1.0 1000\n").unwrap();
        let pts = points(&rows);
        let want = [(2.0, 20.0), (10.0, 30.0), (1000.0, 40.0), (X_TO, 50.0)];
        assert_eq!(pts.len(), want.len(), "{pts:?}");
        for (got, want) in pts.iter().zip(want) {
            assert!((got.0 - want.0).abs() < 1e-6 && got.1 == want.1, "{pts:?}");
        }
    }

    #[test]
    fn a_file_short_of_four_nines_stops_where_it_stops() {
        let rows = parse("20 0.6 6\n30 0.9 9\n").unwrap();
        let pts = points(&rows);
        assert_eq!(pts.first(), Some(&(2.0, 20.0)));
        assert!(pts.last().unwrap().0 < 11.0);
        assert!(points(&parse("1 0.3 3\n").unwrap()).is_empty());
    }

    #[test]
    fn axis_numbers_are_short() {
        assert_eq!(axis_number(&(0.1 + 0.2)), "0.3");
        assert_eq!(axis_number(&2500.0), "2500");
        assert_eq!(axis_number(&0.0), "0");
        assert_eq!(axis_number(&0.025), "0.025");
    }

    #[test]
    fn axis_labels_are_percentiles() {
        assert_eq!(percent_label(&2.0), "50%");
        assert_eq!(percent_label(&10.0), "90%");
        assert_eq!(percent_label(&1_000.0), "99.9%");
        assert_eq!(percent_label(&10_000.0), "99.99%");
    }
}
