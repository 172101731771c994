//! Times detection and anonymisation on the photos in tests/data:
//! `cargo run --release -p percept-vision --example face_bench [max_single_side] [min_side] [shrink]`.

use std::path::Path;
use std::time::Instant;

use percept_infer::Models;
use percept_vision::{AnonymizeOptions, BBox, DetectOptions, FaceDetector, anonymize};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut args = std::env::args().skip(1);
    let mut options = DetectOptions::default();
    if let Some(side) = args.next() {
        options.max_single_side = side.parse()?;
    }
    if let Some(side) = args.next() {
        options.min_side = side.parse()?;
    }
    // Shrinks every photo (and its labels) by this factor first: how small a face is still found.
    let shrink: f32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1.0);
    let start = Instant::now();
    let models = Models::load(root.join("models"), &[FaceDetector::MODEL])?;
    let detector = FaceDetector::new(&models)?;
    println!(
        "load+warm {:.0} ms; options {options:?}",
        start.elapsed().as_secs_f64() * 1e3
    );
    let mut names: Vec<_> = std::fs::read_dir(root.join("tests/data"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jpg" || e == "png"))
        .collect();
    names.sort();
    let labels: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        root.join("tests/data/faces.json"),
    )?)?;
    for path in names {
        let mut img = image::open(&path)?.to_rgb8();
        if shrink > 1.0 {
            let (w, h) = img.dimensions();
            let size = |v: u32| ((v as f32 / shrink).round() as u32).max(1);
            img = image::imageops::resize(
                &img,
                size(w),
                size(h),
                image::imageops::FilterType::Triangle,
            );
        }
        // First call may build a plan for a new input size; report it separately.
        let t0 = Instant::now();
        detector.detect(&img, &options)?;
        let first = t0.elapsed();
        let runs = 3;
        let t1 = Instant::now();
        let mut faces = Vec::new();
        for _ in 0..runs {
            faces = detector.detect(&img, &options)?;
        }
        let detect = t1.elapsed() / runs;
        let mut out = img.clone();
        let t2 = Instant::now();
        anonymize(&mut out, &faces, &AnonymizeOptions::default())?;
        let anon = t2.elapsed();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let truth: Vec<BBox> = labels[name]["faces"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|b| {
                        let f = |k: &str| b[k].as_f64().map(|v| v as f32 / shrink.max(1.0));
                        Some(BBox {
                            x: f("x")?,
                            y: f("y")?,
                            width: f("width")?,
                            height: f("height")?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let found = truth
            .iter()
            .filter(|t| faces.iter().any(|f| f.bbox.iou(t) >= 0.3))
            .count();
        let false_pos = faces
            .iter()
            .filter(|f| truth.iter().all(|t| f.bbox.iou(t) < 0.3))
            .count();
        println!(
            "{:<26} {:>4}x{:<4} recall {found}/{} fp {false_pos}  first {:>6.1} ms  detect {:>6.1} ms  blur {:>5.1} ms",
            name,
            img.width(),
            img.height(),
            truth.len(),
            first.as_secs_f64() * 1e3,
            detect.as_secs_f64() * 1e3,
            anon.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
