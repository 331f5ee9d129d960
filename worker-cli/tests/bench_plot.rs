//! `rigworker bench --plot`: the SVG it writes is well-formed XML with one series per
//! benchmarked device and one point per measured interval, matching the `--json` figures of
//! the same run; `--work prove --plot` draws MSM and proving times by size.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rigworker");

fn temp_svg(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "rigworker-plot-{tag}-{}-{}.svg",
        std::process::id(),
        rand::random::<u32>()
    ))
}

fn class<'a>(n: &roxmltree::Node<'a, 'a>, c: &str) -> bool {
    n.attribute("class") == Some(c)
}

/// `(data-name, circles, polyline points)` of every series, in document order.
fn series(doc: &roxmltree::Document) -> Vec<(String, usize, usize)> {
    doc.descendants()
        .filter(|n| n.has_tag_name("g") && class(n, "series"))
        .map(|g| {
            let circles = g.children().filter(|c| c.has_tag_name("circle")).count();
            let line = g
                .children()
                .find(|c| c.has_tag_name("polyline"))
                .and_then(|p| p.attribute("points"))
                .map_or(0, |p| p.split_whitespace().count());
            (
                g.attribute("data-name").unwrap_or_default().to_string(),
                circles,
                line,
            )
        })
        .collect()
}

fn texts(doc: &roxmltree::Document, c: &str) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text") && class(n, c))
        .filter_map(|n| n.text().map(str::to_string))
        .collect()
}

fn backend_has_devices(name: &str) -> bool {
    let Ok(o) = Command::new(BIN).args(["devices", "--json"]).output() else {
        return false;
    };
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v.as_array().is_some_and(|a| {
        a.iter()
            .any(|b| b["backend"] == name && b["devices"].as_array().is_some_and(|d| !d.is_empty()))
    })
}

fn read_svg(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn bench_plot_has_one_series_per_device_with_every_interval() {
    // Two devices where pocl is installed (CI requires it), so "one series per device" is
    // tested with more than one.
    let backends = if backend_has_devices("opencl") {
        "cpu,opencl"
    } else {
        "cpu"
    };
    let svg = temp_svg("hash");
    let o = Command::new(BIN)
        .args([
            "bench",
            "--backend",
            backends,
            "--threads",
            "1",
            "--seconds",
            "2",
        ])
        .arg("--plot")
        .arg(&svg)
        .arg("--json")
        .output()
        .expect("run rigworker bench");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let results: serde_json::Value = serde_json::from_slice(&o.stdout).expect("bench --json");
    let results = results.as_array().expect("a list of results");
    assert_eq!(results.len(), backends.split(',').count(), "{results:?}");

    let text = read_svg(&svg);
    let doc = roxmltree::Document::parse(&text).expect("the plot is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let got = series(&doc);
    assert_eq!(got.len(), results.len(), "{got:?}");
    for (r, (name, circles, points)) in results.iter().zip(&got) {
        let intervals = r["intervals"].as_u64().expect("intervals") as usize;
        assert!(intervals >= 2, "{r}");
        assert_eq!(r["rates_hps"].as_array().map(Vec::len), Some(intervals));
        assert!(
            name.starts_with(&format!(
                "{}#{} ",
                r["backend"].as_str().unwrap_or("?"),
                r["device"]
            )),
            "{name} vs {r}"
        );
        assert_eq!((*circles, *points), (intervals, intervals), "{name}");
    }
    // Axes with units, and a legend entry per series.
    assert!(texts(&doc, "x-label").iter().any(|t| t.contains("(s)")));
    assert!(texts(&doc, "y-label").iter().any(|t| t.contains("H/s")));
    let legend = doc
        .descendants()
        .find(|n| n.has_tag_name("g") && class(n, "legend"))
        .expect("a legend");
    assert_eq!(
        legend.children().filter(|c| c.has_tag_name("text")).count(),
        results.len()
    );
    let _ = std::fs::remove_file(&svg);
}

#[test]
fn bench_prove_plot_draws_msm_and_prove_times_by_size() {
    let fixture = |n: &str| format!("{}/../proofs/fixtures/{n}", env!("CARGO_MANIFEST_DIR"));
    let svg = temp_svg("prove");
    let o = Command::new(BIN)
        .args([
            "bench",
            "--work",
            "prove",
            "--repeat",
            "1",
            "--msm-log",
            "6,8",
        ])
        .args([
            "--zkey",
            &fixture("mulchain.zkey"),
            "--wtns",
            &fixture("mulchain.wtns"),
        ])
        .arg("--plot")
        .arg(&svg)
        .output()
        .expect("run rigworker bench --work prove");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = read_svg(&svg);
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let charts = doc
        .descendants()
        .filter(|n| n.has_tag_name("g") && class(n, "chart"))
        .count();
    assert_eq!(charts, 2);
    let got: Vec<(String, usize)> = series(&doc).into_iter().map(|(n, c, _)| (n, c)).collect();
    // One series per proving backend (only the CPU here), arkworks once per group.
    let want = [
        ("G1 MSM, cpu", 2),
        ("G1 MSM, arkworks", 2),
        // G2 is timed at the smallest size only.
        ("G2 MSM, cpu", 1),
        ("G2 MSM, arkworks", 1),
        ("rigworker cpu, no tables", 1),
        ("rigworker cpu, tables", 1),
    ];
    let want: Vec<(String, usize)> = want.iter().map(|(n, c)| (n.to_string(), *c)).collect();
    assert_eq!(got, want);
    assert!(texts(&doc, "y-label").iter().all(|t| t == "time (ms)"));
    // Sizes are labelled as powers of two.
    assert!(
        doc.descendants()
            .any(|n| n.has_tag_name("text") && n.text() == Some("2^8"))
    );
    let _ = std::fs::remove_file(&svg);
}
