//! Times detection and anonymisation on the photos in tests/data:
//! `cargo run --release -p percept-vision --example face_bench [max_single_side] [min_side]`.

use std::path::Path;
use std::time::Instant;

use percept_infer::Models;
use percept_vision::{AnonymizeOptions, DetectOptions, FaceDetector, anonymize};

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
    let start = Instant::now();
    let models = Models::load(root.join("models"), &[FaceDetector::MODEL])?;
    let detector = FaceDetector::new(&models)?;
    println!("load+warm {:.0} ms; options {options:?}", start.elapsed().as_secs_f64() * 1e3);
    let mut names: Vec<_> = std::fs::read_dir(root.join("tests/data"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jpg" || e == "png"))
        .collect();
    names.sort();
    for path in names {
        let img = image::open(&path)?.to_rgb8();
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
        println!(
            "{:<26} {:>4}x{:<4} faces {:>2}  first {:>6.1} ms  detect {:>6.1} ms  blur {:>5.1} ms",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("?"),
            img.width(),
            img.height(),
            faces.len(),
            first.as_secs_f64() * 1e3,
            detect.as_secs_f64() * 1e3,
            anon.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
