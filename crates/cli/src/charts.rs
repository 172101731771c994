//! SVG charts of a load run, drawn with plotters.

use std::path::Path;

use plotters::prelude::*;

use crate::records::{Record, Sample};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn status_colour(status: u16) -> RGBColor {
    match status {
        200..=299 => RGBColor(31, 119, 180),
        429 => RGBColor(255, 127, 14),
        400..=499 => RGBColor(148, 103, 189),
        _ => RGBColor(214, 39, 40),
    }
}

/// Writes latency.svg, throughput.svg and resources.svg into `out`.
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
    chart.draw_series(LineSeries::new(
        points.iter().copied(),
        colour.stroke_width(2),
    ))?;
    Ok(())
}
