//! Parses photos and writes the overlays next to `--out`, for looking at:
//! `cargo run -p percept-vision --example parse_dump -- out/ [--parser=pose-guided] a.jpg b.jpg`.

use std::path::Path;

use percept_vision::parse::overlay;
use percept_vision::{Models, ParseOptions, Parser, ParserChoice};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .ok_or("usage: parse_dump <out-dir> <photo>...")?;
    std::fs::create_dir_all(&out)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let models = Models::load(&root, &Parser::MODELS)?;
    let parser = Parser::new(&models)?;
    let mut options = ParseOptions::default();
    let mut photos: Vec<String> = args.collect();
    if let Some(choice) = photos.first().and_then(|a| a.strip_prefix("--parser=")) {
        options.parser = ParserChoice::from_name(choice)
            .ok_or_else(|| format!("--parser takes one of {:?}", ParserChoice::NAMES))?;
        photos.remove(0);
    }
    for photo in photos {
        let image = image::open(&photo)?.to_rgb8();
        let start = std::time::Instant::now();
        let parsed = parser.parse(&image, &options)?;
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        let r = &parsed.result;
        println!(
            "{photo}: {} persons in {ms:.1} ms ({})",
            r.persons.len(),
            r.parser
        );
        for p in &r.persons {
            println!(
                "  PERSON {} {:?} score {:.2} seed {}",
                p.index, p.bbox, p.score, p.seed
            );
        }
        for s in &r.segments {
            println!(
                "  person {} {:14} {:6} px conf {:.2}",
                s.person, s.label, s.pixel_count, s.confidence
            );
        }
        let name = Path::new(&photo)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("photo");
        overlay(&image, &parsed.labels, 0.6)
            .save(Path::new(&out).join(format!("{name}_parse.png")))?;
    }
    Ok(())
}
