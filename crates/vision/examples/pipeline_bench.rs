//! Times a pipeline the way `bench/peers/mediapipe_holistic.py bench` times MediaPipe: a fresh
//! process, the photo letterboxed into `--size` (bicubic, black bars, centred), model loading,
//! the first call, then steady calls; peak RSS from the kernel (VmHWM).
//!
//! `cargo run -p percept-vision --example pipeline_bench -- holistic photo.jpg 1280x720 30`
//! `cargo run -p percept-vision --example pipeline_bench -- parse photo.jpg 512x512 30`
//!
//! `PERCEPT_PARSER=learned|pose-guided` picks the parser (default learned); a list
//! (`learned,pose-guided`) takes turns call by call and adds each one's median
//! (`by_parser`): parsers compared in one process, through the same swings of a shared host;
//! `PERCEPT_PARSE_MIRROR=0` parses each crop once (default: both views averaged).
//! `PERCEPT_MAX_PEOPLE=N` and `PERCEPT_MODEL_COMPLEXITY=0|1` set holistic's options (defaults
//! 10 and 1), `PERCEPT_REFINE_FACE=1` and `PERCEPT_SEGMENTATION=1` turn on
//! `refine_face_landmarks` and `enable_segmentation`; holistic's `found` is the landmarks of
//! everyone tracked.
//! `PERCEPT_MODELS_DIR` reads the models from another folder (default the repository's
//! `models/`), as the binary does.
//! `PERCEPT_ENGINE=tract|ort|auto` picks the engine (default auto: ONNX Runtime when
//! `scripts/fetch-ort` has put its library in `.ort/`); `PERCEPT_IDLE_THREADS=N` gives a large
//! ONNX Runtime run that starts alone N threads (default every core; 1 turns it off).

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::{RgbImage, imageops};
use percept_vision::percept_infer::{EngineChoice, EngineOptions};
use percept_vision::{Holistic, HolisticOptions, Models, ParseOptions, Parser, ParserChoice};

type Error = Box<dyn std::error::Error>;
/// One timed call: its index in the run (a list of parsers takes turns by it), the number of
/// things found.
type Call = dyn Fn(usize) -> Result<usize, Error>;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn letterbox(photo: &RgbImage, w: u32, h: u32) -> RgbImage {
    let s = (w as f32 / photo.width() as f32).min(h as f32 / photo.height() as f32);
    let (cw, ch) = (
        (photo.width() as f32 * s).round() as u32,
        (photo.height() as f32 * s).round() as u32,
    );
    let content = imageops::resize(photo, cw, ch, imageops::FilterType::CatmullRom);
    let mut out = RgbImage::new(w, h);
    imageops::replace(
        &mut out,
        &content,
        i64::from((w - cw) / 2),
        i64::from((h - ch) / 2),
    );
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [task, photo, size, runs] = args.as_slice() else {
        return Err("usage: pipeline_bench holistic|parse <photo> <WxH> <runs>".into());
    };
    let (w, h) = size.split_once('x').ok_or("size is WxH")?;
    let image = letterbox(&image::open(photo)?.to_rgb8(), w.parse()?, h.parse()?);
    let runs: usize = runs.parse()?;
    // PERCEPT_MODELS_DIR, as the binary reads it: another model set measured in the same run.
    let dir = std::env::var_os("PERCEPT_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"));
    let choice: EngineChoice = std::env::var("PERCEPT_ENGINE")
        .unwrap_or_else(|_| "auto".into())
        .parse()?;
    // One request alone on the machine may use every core for ONNX Runtime's intra-op pool
    // (a server with `workers` workers would use cores / workers).
    let intra: usize = std::env::var("PERCEPT_INTRA_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    // PERCEPT_IDLE_THREADS: threads of a large run that starts alone (default every core).
    let idle = std::env::var("PERCEPT_IDLE_THREADS")
        .ok()
        .and_then(|v| v.parse().ok());
    let options = EngineOptions {
        intra_threads: intra,
        idle_threads: idle,
        ..EngineOptions::default()
    };
    let load = |names: &[&str]| Models::load_choice(&dir, names, choice, &options);
    let start = Instant::now();
    // The parsers of a list, in turn (one label for a single pipeline).
    let mut labels = vec![task.clone()];
    let run: Box<Call> = match task.as_str() {
        "holistic" => {
            let models = load(&Holistic::MODELS)?;
            let p = Holistic::new(&models)?;
            let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u8>().ok());
            let defaults = HolisticOptions::default();
            let options = HolisticOptions {
                max_people: env("PERCEPT_MAX_PEOPLE").map_or(defaults.max_people, usize::from),
                model_complexity: env("PERCEPT_MODEL_COMPLEXITY")
                    .unwrap_or(defaults.model_complexity),
                refine_face_landmarks: env("PERCEPT_REFINE_FACE") == Some(1),
                enable_segmentation: env("PERCEPT_SEGMENTATION") == Some(1),
                ..defaults
            };
            Box::new(move |_| {
                let r = p.run(&image, &options)?;
                Ok(r.people.iter().map(|p| p.landmarks.landmark_count).sum())
            })
        }
        "parse" => {
            let models = load(&Parser::MODELS)?;
            let p = Parser::new(&models)?;
            // PERCEPT_PARSER=learned|pose-guided (default learned), or a list of them.
            let parsers = std::env::var("PERCEPT_PARSER").unwrap_or_else(|_| "learned".into());
            // PERCEPT_PARSE_MIRROR=0 runs each crop once instead of averaging both views.
            let mirror = std::env::var("PERCEPT_PARSE_MIRROR").as_deref() != Ok("0");
            labels = parsers.split(',').map(str::to_string).collect();
            let options = labels
                .iter()
                .map(|name| {
                    Ok(ParseOptions {
                        parser: ParserChoice::from_name(name)
                            .ok_or("PERCEPT_PARSER is learned|pose-guided, or a list")?,
                        mirror,
                        ..ParseOptions::default()
                    })
                })
                .collect::<Result<Vec<_>, Error>>()?;
            Box::new(move |k| {
                let options = &options[k % options.len()];
                Ok(p.parse(&image, options)?.result.persons.len())
            })
        }
        other => return Err(format!("unknown pipeline {other}").into()),
    };
    let load_ms = start.elapsed().as_secs_f64() * 1000.0;
    let engine = choice;
    let t = Instant::now();
    let found = run(0)?;
    let first_ms = t.elapsed().as_secs_f64() * 1000.0;
    // The first call of each other parser of a list, untimed.
    for k in 1..labels.len() {
        run(k)?;
    }
    let mut times = Vec::with_capacity(runs);
    let mut by_parser = vec![Vec::new(); labels.len()];
    for k in 0..runs {
        let t = Instant::now();
        run(k)?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        times.push(ms);
        by_parser[k % labels.len()].push(ms);
    }
    let median = |t: &mut Vec<f64>| {
        t.sort_by(f64::total_cmp);
        t.get(t.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let by_parser = if labels.len() > 1 {
        let each: Vec<String> = labels
            .iter()
            .zip(&mut by_parser)
            .map(|(name, t)| format!("\"{name}\":{:.1}", median(t)))
            .collect();
        format!(",\"by_parser\":{{{}}}", each.join(","))
    } else {
        String::new()
    };
    times.sort_by(f64::total_cmp);
    let pct = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "{{\"pipeline\":\"{task}\",\"engine\":\"{engine:?}\",\"intra_threads\":{intra},\"size\":\"{size}\",\"found\":{found},\"load_ms\":{load_ms:.1},\"first_call_ms\":{first_ms:.1},\"steady_median_ms\":{:.1},\"steady_p90_ms\":{:.1},\"steady_min_ms\":{:.1},\"peak_rss_mib\":{:.1},\"runs\":{runs}{by_parser}}}",
        pct(0.5),
        pct(0.9),
        times[0],
        peak_rss_mib()
    );
    Ok(())
}
