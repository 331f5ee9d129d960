//! Line charts as hand-written SVG, for `rigworker bench --plot`: panels stacked in one
//! document, each with axes, ticks, axis labels (with units) and a legend. No plotting crate:
//! a few line charts do not justify one, and the output stays plain, diffable text.
//!
//! Each series is a `<g class="series" data-name="...">` holding one `<polyline>` and one
//! `<circle>` per point, so tools (and our tests) can read the data back from the SVG.

use std::fmt::Write as _;

/// One line: `(x, y)` points in data units, drawn in the given order.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// One panel.
#[derive(Clone, Debug, Default)]
pub struct Chart {
    pub title: String,
    /// With the unit, e.g. "time (s)".
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Tick positions and their labels on the x axis (e.g. `2^16` at 16); `None`: evenly
    /// spaced round numbers.
    pub x_ticks: Option<Vec<(f64, String)>>,
}

const WIDTH: f64 = 860.0;
const PANEL_H: f64 = 420.0;
const TITLE_H: f64 = 40.0;
/// Plot area inside a panel: left room for y tick labels, right room for the legend.
const LEFT: f64 = 80.0;
const RIGHT: f64 = 250.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
/// Colour-blind-safe palette (Okabe-Ito), then repeats with dashes.
const COLOURS: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000",
];

/// The whole SVG document: `title` on top, then each chart.
pub fn svg(title: &str, charts: &[Chart]) -> String {
    let height = TITLE_H + PANEL_H * charts.len().max(1) as f64;
    let mut s = String::new();
    // `write!` to a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(
        s,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="26" text-anchor="middle" font-size="18">{}</text>"#,
        WIDTH / 2.0,
        esc(title)
    );
    for (i, c) in charts.iter().enumerate() {
        panel(&mut s, c, TITLE_H + PANEL_H * i as f64);
    }
    s.push_str("</svg>\n");
    s
}

fn panel(s: &mut String, c: &Chart, y0: f64) {
    let pts = || {
        c.series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let (mut xmin, mut xmax) = pts().fold((f64::MAX, f64::MIN), |(lo, hi), &(x, _)| {
        (lo.min(x), hi.max(x))
    });
    if let Some(t) = &c.x_ticks {
        for &(x, _) in t {
            xmin = xmin.min(x);
            xmax = xmax.max(x);
        }
    }
    if xmin > xmax {
        (xmin, xmax) = (0.0, 1.0);
    }
    if xmax <= xmin {
        (xmin, xmax) = (xmin - 1.0, xmax + 1.0);
    }
    // y from 0 (a rate or a time is never negative; 0 keeps ratios honest), to a round top.
    let ymax_data = pts().map(|&(_, y)| y).fold(0.0f64, f64::max);
    let ystep = nice_step(if ymax_data > 0.0 { ymax_data } else { 1.0 } / 5.0);
    let ymax = (ymax_data / ystep).ceil().max(1.0) * ystep;
    let (px0, px1) = (LEFT, WIDTH - RIGHT);
    let (py0, py1) = (y0 + TOP, y0 + PANEL_H - BOTTOM);
    let sx = |x: f64| px0 + (x - xmin) / (xmax - xmin) * (px1 - px0);
    let sy = |y: f64| py1 - y / ymax * (py1 - py0);

    let _ = writeln!(
        s,
        r#"<g class="chart"><text x="{}" y="{}" text-anchor="middle" font-size="15">{}</text>"#,
        (px0 + px1) / 2.0,
        y0 + 24.0,
        esc(&c.title)
    );
    // Grid and y ticks.
    let mut k = 0.0;
    while k <= ymax + ystep / 2.0 {
        let y = sy(k);
        let _ = writeln!(
            s,
            r##"<line x1="{px0}" y1="{y:.1}" x2="{px1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            px0 - 6.0,
            y + 4.0,
            num(k)
        );
        k += ystep;
    }
    // x ticks.
    let ticks: Vec<(f64, String)> = match &c.x_ticks {
        Some(t) => t.clone(),
        None => {
            let step = nice_step((xmax - xmin) / 6.0);
            let mut v = Vec::new();
            let mut x = (xmin / step).ceil() * step;
            while x <= xmax + step * 1e-9 {
                v.push((x, num(x)));
                x += step;
            }
            v
        }
    };
    for (x, label) in &ticks {
        let px = sx(*x);
        let _ = writeln!(
            s,
            r##"<line x1="{px:.1}" y1="{py1}" x2="{px:.1}" y2="{}" stroke="#000"/><text x="{px:.1}" y="{}" text-anchor="middle">{}</text>"##,
            py1 + 5.0,
            py1 + 19.0,
            esc(label)
        );
    }
    // Axes and their labels.
    let _ = writeln!(
        s,
        r##"<line class="x-axis" x1="{px0}" y1="{py1}" x2="{px1}" y2="{py1}" stroke="#000"/><line class="y-axis" x1="{px0}" y1="{py0}" x2="{px0}" y2="{py1}" stroke="#000"/>
<text class="x-label" x="{}" y="{}" text-anchor="middle">{}</text>
<text class="y-label" transform="translate({},{}) rotate(-90)" text-anchor="middle">{}</text>"##,
        (px0 + px1) / 2.0,
        py1 + 42.0,
        esc(&c.x_label),
        LEFT - 58.0,
        (py0 + py1) / 2.0,
        esc(&c.y_label)
    );
    // Series and legend.
    let _ = writeln!(s, r#"<g class="legend">"#);
    for (i, se) in c.series.iter().enumerate() {
        let (colour, dash) = style(i);
        let ly = py0 + 4.0 + 20.0 * i as f64;
        let lx = px1 + 16.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            lx + 22.0,
            lx + 28.0,
            ly + 4.0,
            esc(&legend_name(&se.name))
        );
    }
    s.push_str("</g>\n");
    for (i, se) in c.series.iter().enumerate() {
        let (colour, dash) = style(i);
        let pts: Vec<(f64, f64)> = se
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| (sx(x), sy(y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<g class="series" data-name="{}" stroke="{colour}" fill="{colour}">"#,
            esc(&se.name)
        );
        let line: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke-width="2"{dash} points="{}"/>"#,
            line.join(" ")
        );
        for (x, y) in &pts {
            let _ = writeln!(s, r#"<circle cx="{x:.1}" cy="{y:.1}" r="3"/>"#);
        }
        s.push_str("</g>\n");
    }
    s.push_str("</g>\n");
}

/// The legend column fits about 32 characters; the full name stays in `data-name`.
fn legend_name(name: &str) -> String {
    const MAX: usize = 32;
    if name.chars().count() <= MAX {
        name.to_string()
    } else {
        let mut s: String = name.chars().take(MAX - 1).collect();
        s.push('…');
        s
    }
}

fn style(i: usize) -> (&'static str, &'static str) {
    let colour = COLOURS[i % COLOURS.len()];
    let dash = if (i / COLOURS.len()) % 2 == 1 {
        r#" stroke-dasharray="6 3""#
    } else {
        ""
    };
    (colour, dash)
}

/// A round step near `raw`: 1, 2 or 5 times a power of ten.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    p * if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    }
}

/// A tick label: no trailing zeros, no float noise (0.30000000000000004).
fn num(v: f64) -> String {
    let r = (v * 1e6).round() / 1e6;
    let s = format!("{r:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// Text and attribute values, XML-escaped.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// A scale for values up to `max` in `unit`/s (H/s): the divisor and the prefixed unit.
pub fn rate_unit(max: f64, unit: &str) -> (f64, String) {
    let (d, p) = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
        .into_iter()
        .find(|(d, _)| max >= *d)
        .unwrap_or((1.0, ""));
    (d, format!("{p}{unit}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_labels_are_round() {
        assert_eq!(nice_step(0.37), 0.5);
        assert_eq!(nice_step(1.0), 1.0);
        assert_eq!(nice_step(130.0), 200.0);
        assert_eq!(nice_step(7e8), 1e9);
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(num(0.1 + 0.2), "0.3");
        assert_eq!(num(2000.0), "2000");
        assert_eq!(num(-0.0), "0");
        assert_eq!(esc("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot; ");
        assert_eq!(rate_unit(3.2e9, "H/s"), (1e9, "GH/s".into()));
        assert_eq!(rate_unit(12.0, "H/s"), (1.0, "H/s".into()));
    }

    #[test]
    fn every_point_is_drawn_inside_the_plot_area() {
        let c = Chart {
            title: "t".into(),
            x_label: "x (s)".into(),
            y_label: "y".into(),
            series: vec![
                Series {
                    name: "a & b".into(),
                    points: vec![(1.0, 10.0), (2.0, 30.0), (3.0, 20.0)],
                },
                Series {
                    name: "single".into(),
                    points: vec![(2.0, f64::NAN), (2.0, 5.0)],
                },
            ],
            x_ticks: None,
        };
        let s = svg("doc", &[c]);
        assert_eq!(s.matches("<circle").count(), 4, "NaN is left out");
        assert!(s.contains(r#"data-name="a &amp; b""#));
        for cap in s.split("<circle cx=\"").skip(1) {
            let mut it = cap.split('"');
            let cx: f64 = it.next().unwrap().parse().unwrap();
            let cy: f64 = it.nth(1).unwrap().parse().unwrap();
            assert!((LEFT..=WIDTH - RIGHT).contains(&cx), "{cx}");
            assert!(
                (TOP + TITLE_H..=TITLE_H + PANEL_H - BOTTOM).contains(&cy),
                "{cy}"
            );
        }
        // An empty chart still makes a valid document.
        let s = svg("empty", &[Chart::default()]);
        assert!(s.ends_with("</svg>\n") && !s.contains("NaN") && !s.contains("inf"));
    }
}
