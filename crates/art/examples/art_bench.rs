//! Times `percept_art::render` for every style on the given images and prints CSV with the
//! same columns as `bench/peers/opencv_art.py`:
//! `impl,style,width,height,runs,median_ms,min_ms`.
//!
//! `art_bench [--runs N] [--style NAME]... IMAGE...` — each style (or only the named ones)
//! runs once untimed, then N timed runs (default 3). Build with `--release`.

use percept_art::{Style, StyleParams, render};
use std::error::Error;
use std::time::Instant;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1).peekable();
    let mut runs = 3usize;
    let mut files = Vec::new();
    let mut only: Vec<String> = Vec::new();
    while let Some(a) = args.next() {
        if a == "--runs" {
            runs = args.next().ok_or("--runs needs a value")?.parse()?;
        } else if a == "--style" {
            only.push(args.next().ok_or("--style needs a value")?);
        } else {
            files.push(a);
        }
    }
    if files.is_empty() || runs == 0 {
        return Err("usage: art_bench [--runs N] [--style NAME]... IMAGE...".into());
    }
    println!("impl,style,width,height,runs,median_ms,min_ms");
    for file in &files {
        let img = image::open(file)?.to_rgb8();
        for style in Style::ALL {
            if !only.is_empty() && !only.iter().any(|o| *o == style.to_string()) {
                continue;
            }
            let params = StyleParams::default_for(style);
            render(&img, &params)?;
            let mut ms: Vec<f64> = (0..runs)
                .map(|_| {
                    let t = Instant::now();
                    let out = render(&img, &params);
                    let dt = t.elapsed().as_secs_f64() * 1e3;
                    drop(out);
                    dt
                })
                .collect();
            ms.sort_by(f64::total_cmp);
            println!(
                "percept,{style},{},{},{runs},{:.1},{:.1}",
                img.width(),
                img.height(),
                ms[ms.len() / 2],
                ms[0]
            );
        }
    }
    Ok(())
}
