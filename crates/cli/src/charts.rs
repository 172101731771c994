//! SVG charts of a load run, drawn with plotters.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::records::{Record, Sample, median};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn status_colour(status: u16) -> RGBColor {
    match status {
        200..=299 => RGBColor(31, 119, 180),
        429 => RGBColor(255, 127, 14),
        400..=499 => RGBColor(148, 103, 189),
        _ => RGBColor(214, 39, 40),
    }
}

/// Writes latency.svg, throughput.svg, tasks.svg and resources.svg into `out`.
pub(crate) fn draw(out: &Path, records: &[Record], samples: &[Sample], seconds: f64) -> Result<()> {
    let x_max = seconds.max(1.0);
    {
        let y_max = records.iter().map(|r| r.latency_ms).fold(1.0, f64::max) * 1.05;
        let path = out.join("latency.svg");
        let root = SVGBackend::new(&path, (960, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "latency per request (blue 2xx, orange 429, red 5xx/transport)",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("ms")
            .draw()?;
        chart.draw_series(records.iter().map(|r| {
            Circle::new(
                (r.start_s, r.latency_ms),
                2,
                status_colour(r.status).filled(),
            )
        }))?;
        root.present()?;
    }
    {
        let buckets = x_max.ceil() as usize;
        let mut ok = vec![0u32; buckets + 1];
        let mut rejected = vec![0u32; buckets + 1];
        let mut failed = vec![0u32; buckets + 1];
        for r in records {
            let i = ((r.start_s + r.latency_ms / 1000.0) as usize).min(buckets);
            match r.status {
                200..=299 => ok[i] += 1,
                429 => rejected[i] += 1,
                _ => failed[i] += 1,
            }
        }
        let y_max = ok
            .iter()
            .chain(&rejected)
            .chain(&failed)
            .copied()
            .max()
            .unwrap_or(1)
            .max(1) as f64
            * 1.1;
        let path = out.join("throughput.svg");
        let root = SVGBackend::new(&path, (960, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("responses per second", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("responses/s")
            .draw()?;
        for (series, colour, label) in [
            (&ok, status_colour(200), "2xx"),
            (&rejected, status_colour(429), "429"),
            (&failed, status_colour(500), "other"),
        ] {
            chart
                .draw_series(LineSeries::new(
                    series
                        .iter()
                        .enumerate()
                        .map(|(i, n)| (i as f64, f64::from(*n))),
                    colour.stroke_width(2),
                ))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()?;
        root.present()?;
    }
    per_task(&out.join("tasks.svg"), records, x_max)?;
    {
        let path = out.join("resources.svg");
        let root = SVGBackend::new(&path, (960, 640)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(320);
        let rss: Vec<(f64, f64)> = samples
            .iter()
            .filter_map(|s| s.rss_mib.map(|m| (s.t_s, m)))
            .collect();
        line_panel(
            &top,
            "server RSS (MiB)",
            "MiB",
            &rss,
            1.0,
            x_max,
            RGBColor(44, 160, 44),
        )?;
        let cpu: Vec<(f64, f64)> = samples
            .iter()
            .filter_map(|s| s.cpu_percent.map(|c| (s.t_s, c)))
            .collect();
        let colour = RGBColor(214, 39, 40);
        line_panel(
            &bottom,
            "server CPU (% of one core)",
            "%",
            &cpu,
            100.0,
            x_max,
            colour,
        )?;
        root.present()?;
    }
    Ok(())
}

/// tasks.svg: one line per task in two panels, its median latency and its 2xx responses per
/// second, over windows of 1/60 of the run (at least a second), so a mixed run shows which task
/// slowed down or starved, which the all-task charts hide.
fn per_task(path: &Path, records: &[Record], x_max: f64) -> Result<()> {
    let window = (x_max / 60.0).max(1.0);
    let windows = (x_max / window).ceil() as usize + 1;
    let mut names: Vec<&str> = records.iter().map(|r| r.task.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    // Per task: the 2xx latencies of each window (by completion time).
    let mut latencies: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); windows]; names.len()];
    for r in records.iter().filter(|r| (200..300).contains(&r.status)) {
        // Every record's task is in `names`.
        if let Ok(t) = names.binary_search(&r.task.as_str()) {
            let i = (((r.start_s + r.latency_ms / 1000.0) / window) as usize).min(windows - 1);
            latencies[t][i].push(r.latency_ms);
        }
    }
    let mut medians: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut rates: Vec<Vec<(f64, f64)>> = Vec::new();
    for per_window in &mut latencies {
        let mut middle = Vec::new();
        let mut rate = Vec::new();
        for (i, values) in per_window.iter_mut().enumerate() {
            let at = (i as f64 + 0.5) * window;
            rate.push((at, values.len() as f64 / window));
            if let Some(m) = median(values) {
                middle.push((at, m));
            }
        }
        medians.push(middle);
        rates.push(rate);
    }
    let root = SVGBackend::new(path, (960, 720)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(360);
    for (area, caption, unit, series) in [
        (&top, "median latency per task (2xx)", "ms", &medians),
        (
            &bottom,
            "2xx responses per second per task",
            "responses/s",
            &rates,
        ),
    ] {
        let y_max = series.iter().flatten().map(|(_, v)| *v).fold(1.0, f64::max) * 1.1;
        let mut chart = frame(area, caption, unit, x_max, y_max)?;
        for (k, (name, points)) in names.iter().zip(series).enumerate() {
            let colour = Palette99::pick(k).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    colour.stroke_width(2),
                ))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// One time series on `area`, its y axis from 0 to 110 % of the larger of its maximum and
/// `y_floor`.
fn line_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    caption: &str,
    unit: &str,
    points: &[(f64, f64)],
    y_floor: f64,
    x_max: f64,
    colour: RGBColor,
) -> Result<()> {
    let y_max = points.iter().map(|(_, v)| *v).fold(y_floor, f64::max) * 1.1;
    let mut chart = frame(area, caption, unit, x_max, y_max)?;
    chart.draw_series(LineSeries::new(
        points.iter().copied(),
        colour.stroke_width(2),
    ))?;
    Ok(())
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A captioned chart on `area` with its mesh drawn: seconds across, `unit` up to `y_max`.
fn frame<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    unit: &str,
    x_max: f64,
    y_max: f64,
) -> Result<Chart<'a, 'b>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc(unit)
        .draw()?;
    Ok(chart)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(task: &str, start_s: f64, latency_ms: f64, status: u16) -> Record {
        Record {
            start_s,
            latency_ms,
            status,
            bytes: 0,
            task: task.into(),
            image: "p.jpg".into(),
            stage: 0,
        }
    }

    #[test]
    fn tasks_svg_has_a_named_series_per_task_in_both_panels() {
        let dir = std::env::temp_dir().join(format!("percept-charts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let records: Vec<Record> = (0..200)
            .map(|i| {
                let task = ["parse", "art/oil", "inspect"][i % 3];
                record(
                    task,
                    i as f64 * 0.1,
                    10.0 + (i % 7) as f64,
                    if i % 11 == 0 { 429 } else { 200 },
                )
            })
            .collect();
        per_task(&dir.join("tasks.svg"), &records, 20.0).unwrap_or_default();
        let svg = std::fs::read_to_string(dir.join("tasks.svg")).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        for task in ["parse", "art/oil", "inspect"] {
            // A legend entry in each panel (plotters writes the text on a line of its own).
            assert_eq!(
                svg.matches(&format!("\n{task}\n</text>")).count(),
                2,
                "{task}: {svg}"
            );
        }
        // Per task and panel one data line (drawn 2 px wide; the mesh and swatches are 1 px).
        assert_eq!(svg.matches(r#"stroke-width="2""#).count(), 6, "{svg}");
    }
}
