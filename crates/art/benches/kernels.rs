//! Criterion benches of the art filters on a real photo (tests/data/group5_stairs.jpg at
//! 1024×746). Kept short: 10 samples, 3 s measurement per style.
//! `CARGO_TARGET_DIR=/work/target-art cargo bench -p percept-art`

use criterion::{Criterion, criterion_group, criterion_main};
use percept_art::{Style, StyleParams, render};
use std::hint::black_box;
use std::time::Duration;

fn styles(c: &mut Criterion) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/group5_stairs.jpg"
    );
    let img = image::open(path)
        .expect("tests/data/group5_stairs.jpg")
        .to_rgb8();
    let mut g = c.benchmark_group(format!("art_{}x{}", img.width(), img.height()));
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for style in Style::ALL {
        let params = StyleParams::default_for(style);
        g.bench_function(style.name(), |b| {
            b.iter(|| render(black_box(&img), &params))
        });
    }
    g.finish();
}

criterion_group!(benches, styles);
criterion_main!(benches);
