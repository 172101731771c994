//! Runs holistic tracking on photos and writes the drawn result next to `--out`, for looking
//! at: `cargo run --release -p percept-vision --example holistic_dump -- out/ a.jpg b.jpg`.

use std::path::Path;

use percept_vision::{Holistic, HolisticOptions, Models, draw_holistic};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .ok_or("usage: holistic_dump <out-dir> <photo>...")?;
    std::fs::create_dir_all(&out)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let models = Models::load(&root, &Holistic::MODELS)?;
    let holistic = Holistic::new(&models)?;
    for photo in args {
        let image = image::open(&photo)?.to_rgb8();
        let start = std::time::Instant::now();
        let r = holistic.run(&image, &HolisticOptions::default())?;
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        println!(
            "{photo}: {} landmarks (pose {}, left {}, right {}, face {}) in {ms:.1} ms",
            r.landmarks.landmark_count,
            r.landmarks.pose.len(),
            r.landmarks.left_hand.len(),
            r.landmarks.right_hand.len(),
            r.landmarks.face.len()
        );
        let name = Path::new(&photo)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("photo");
        std::fs::write(
            Path::new(&out).join(format!("{name}_holistic.json")),
            serde_json::to_vec(&r)?,
        )?;
        draw_holistic(&image, &r)?.save(Path::new(&out).join(format!("{name}_holistic.jpg")))?;
    }
    Ok(())
}
