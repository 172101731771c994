//! `percept load`: drives a running percept over HTTP with real photos and records every
//! request and the server's resources, for benchmarks and soak runs.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::sync::Mutex;

/// `percept load --url … --task … --images <dir> --concurrency N --duration D --out <dir>`.
#[derive(Debug, Clone, Args)]
pub(crate) struct LoadArgs {
    /// Server to drive; loopback addresses only.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Task route after /v1/, e.g. `inspect` or `art/pencil`; several separated by commas are
    /// used in turn (a mixed load).
    #[arg(long)]
    task: String,
    /// Folder of photos sent in turn (multipart `image`).
    #[arg(long)]
    images: PathBuf,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// How long to run, e.g. 30s, 5m, 1h.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Cap on the total request rate per second (open loop); none = as fast as answered.
    #[arg(long)]
    rate: Option<f64>,
    /// Stop after this many requests even if the duration has not passed.
    #[arg(long)]
    requests: Option<u64>,
    /// Extra query string for every request, e.g. `format=jpeg`.
    #[arg(long)]
    query: Option<String>,
    /// Server process id, to sample its RSS and CPU from /proc; without it they are read
    /// from the server's /metrics.
    #[arg(long)]
    pid: Option<u32>,
    /// Fraction of the run treated as warm-up when computing memory drift.
    #[arg(long, default_value_t = 0.2)]
    warmup: f64,
    /// Output folder: requests.csv, resources.csv, summary.json, latency.svg,
    /// throughput.svg, resources.svg.
    #[arg(long)]
    out: PathBuf,
}

/// Parses `500ms`, `30s`, `5m`, `2h` (a bare number is seconds).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30s or 5m"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{text}`; use ms, s, m or h"
            ));
        }
    };
    if !(seconds > 0.0 && seconds <= 7.0 * 86400.0) {
        return Err(format!("`{text}` must be between 1 ms and 7 days"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn check_loopback(url: &reqwest::Url) -> anyhow::Result<()> {
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    };
    if !loopback {
        bail!(
            "percept load only drives servers on this machine (127.0.0.0/8, ::1, localhost); got {url}"
        );
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Record {
    pub(crate) start_s: f64,
    pub(crate) latency_ms: f64,
    pub(crate) status: u16,
    bytes: usize,
    task: String,
    image: String,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Sample {
    pub(crate) t_s: f64,
    pub(crate) rss_mib: Option<f64>,
    pub(crate) cpu_percent: Option<f64>,
    queue_depth: Option<f64>,
    in_flight: Option<f64>,
}

struct Photo {
    name: String,
    bytes: Vec<u8>,
}

fn load_photos(dir: &Path) -> anyhow::Result<Vec<Photo>> {
    let mut photos = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if matches!(
            ext.as_deref(),
            Some("jpg" | "jpeg" | "png" | "webp" | "bmp" | "gif" | "tif" | "tiff")
        ) {
            photos.push(Photo {
                name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                bytes: std::fs::read(&path)
                    .with_context(|| format!("reading {}", path.display()))?,
            });
        }
    }
    if photos.is_empty() {
        bail!("no images in {}", dir.display());
    }
    Ok(photos)
}

/// The process's (utime + stime) in seconds and RSS in bytes, from /proc (Linux).
fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15,
    // in clock ticks of USER_HZ, which the Linux ABI fixes at 100.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ticks / 100.0, kib * 1024))
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

pub(crate) fn load(args: &LoadArgs) -> anyhow::Result<()> {
    let base = reqwest::Url::parse(&args.url).with_context(|| format!("bad --url {}", args.url))?;
    check_loopback(&base)?;
    if args.concurrency == 0 || args.concurrency > 4096 {
        bail!("--concurrency must be 1..=4096");
    }
    let tasks: Vec<String> = args
        .task
        .split(',')
        .map(|t| t.trim().trim_matches('/').to_string())
        .collect();
    let photos = Arc::new(load_photos(&args.images)?);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (records, samples, elapsed) = runtime.block_on(drive(args, &base, &tasks, photos))?;
    write_outputs(args, &records, &samples, elapsed)
}

async fn drive(
    args: &LoadArgs,
    base: &reqwest::Url,
    tasks: &[String],
    photos: Arc<Vec<Photo>>,
) -> anyhow::Result<(Vec<Record>, Vec<Sample>, Duration)> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let health = client.get(base.join("/healthz")?).send().await;
    if !health.as_ref().is_ok_and(|r| r.status().is_success()) {
        bail!("{} does not answer /healthz; is percept running?", base);
    }
    let started = Instant::now();
    let stop_at = started + args.duration;
    let counter = Arc::new(AtomicU64::new(0));
    let records = Arc::new(Mutex::new(Vec::<Record>::new()));
    let ticker = args.rate.filter(|r| *r > 0.0).map(|rate| {
        let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Arc::new(Mutex::new(interval))
    });
    let bar = ProgressBar::new(args.duration.as_secs().max(1));
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {elapsed}/{duration} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let sampler = {
        let client = client.clone();
        let metrics_url = base.join("/metrics")?;
        let pid = args.pid;
        let bar = bar.clone();
        let records = Arc::clone(&records);
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut previous: Option<(Instant, f64)> = None;
            let mut interval = tokio::time::interval(Duration::from_secs(1));
            while Instant::now() < stop_at {
                interval.tick().await;
                let now = Instant::now();
                let text = match client.get(metrics_url.clone()).send().await {
                    Ok(r) => r.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                let (cpu_seconds, rss) = match pid.and_then(proc_usage) {
                    Some((cpu, rss)) => (Some(cpu), Some(rss as f64)),
                    None => (
                        metric(&text, "process_cpu_seconds_total"),
                        metric(&text, "process_resident_memory_bytes"),
                    ),
                };
                let cpu_percent = match (cpu_seconds, previous) {
                    (Some(cpu), Some((then, before))) => {
                        Some((cpu - before) / now.duration_since(then).as_secs_f64() * 100.0)
                    }
                    _ => None,
                };
                if let Some(cpu) = cpu_seconds {
                    previous = Some((now, cpu));
                }
                samples.push(Sample {
                    t_s: now.duration_since(started).as_secs_f64(),
                    rss_mib: rss.map(|b| b / (1024.0 * 1024.0)),
                    cpu_percent,
                    queue_depth: metric(&text, "percept_queue_depth"),
                    in_flight: metric(&text, "percept_in_flight"),
                });
                let done = records.lock().await.len();
                bar.set_position(now.duration_since(started).as_secs());
                bar.set_message(format!("{done} requests"));
            }
            samples
        })
    };

    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let client = client.clone();
            let photos = Arc::clone(&photos);
            let counter = Arc::clone(&counter);
            let records = Arc::clone(&records);
            let ticker = ticker.clone();
            let tasks = tasks.to_vec();
            let base = base.clone();
            let query = args.query.clone();
            let limit = args.requests;
            tokio::spawn(async move {
                loop {
                    if Instant::now() >= stop_at {
                        break;
                    }
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    if limit.is_some_and(|l| n >= l) {
                        break;
                    }
                    if let Some(ticker) = &ticker {
                        ticker.lock().await.tick().await;
                    }
                    let photo = &photos[(n as usize) % photos.len()];
                    let task = &tasks[(n as usize) % tasks.len()];
                    let mut url = match base.join(&format!("/v1/{task}")) {
                        Ok(url) => url,
                        Err(_) => break,
                    };
                    url.set_query(query.as_deref());
                    let part = reqwest::multipart::Part::bytes(photo.bytes.clone())
                        .file_name(photo.name.clone());
                    let form = reqwest::multipart::Form::new().part("image", part);
                    let sent = Instant::now();
                    let (status, bytes) = match client.post(url).multipart(form).send().await {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            (status, response.bytes().await.map_or(0, |b| b.len()))
                        }
                        Err(_) => (0, 0),
                    };
                    if status == 429 {
                        // Saturation is the point, but spinning on instant 429s would only
                        // burn the CPU the server needs; a short pause keeps the pressure on.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    records.lock().await.push(Record {
                        start_s: sent.duration_since(started).as_secs_f64(),
                        latency_ms: sent.elapsed().as_secs_f64() * 1000.0,
                        status,
                        bytes,
                        task: task.clone(),
                        image: photo.name.clone(),
                    });
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.context("a load worker failed")?;
    }
    let elapsed = started.elapsed();
    let samples = sampler.await.context("the resource sampler failed")?;
    bar.finish_and_clear();
    let records = std::mem::take(&mut *records.lock().await);
    Ok((records, samples, elapsed))
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted.get(rank.min(sorted.len() - 1)).copied()
}

fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    percentile(values, 50.0)
}

fn round(v: Option<f64>) -> Option<f64> {
    v.map(|v| (v * 100.0).round() / 100.0)
}

fn write_outputs(
    args: &LoadArgs,
    records: &[Record],
    samples: &[Sample],
    elapsed: Duration,
) -> anyhow::Result<()> {
    let mut csv = String::from("start_s,latency_ms,status,bytes,task,image\n");
    for r in records {
        csv.push_str(&format!(
            "{:.4},{:.3},{},{},{},{}\n",
            r.start_s,
            r.latency_ms,
            r.status,
            r.bytes,
            r.task,
            r.image.replace(',', "_")
        ));
    }
    std::fs::write(args.out.join("requests.csv"), csv)?;
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.3}"));
    let mut csv = String::from("t_s,rss_mib,cpu_percent,queue_depth,in_flight\n");
    for s in samples {
        csv.push_str(&format!(
            "{:.3},{},{},{},{}\n",
            s.t_s,
            opt(s.rss_mib),
            opt(s.cpu_percent),
            opt(s.queue_depth),
            opt(s.in_flight)
        ));
    }
    std::fs::write(args.out.join("resources.csv"), csv)?;

    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for r in records {
        *statuses
            .entry(if r.status == 0 {
                "transport_error".into()
            } else {
                r.status.to_string()
            })
            .or_default() += 1;
    }
    let mut ok: Vec<f64> = records
        .iter()
        .filter(|r| (200..300).contains(&r.status))
        .map(|r| r.latency_ms)
        .collect();
    ok.sort_by(f64::total_cmp);
    let seconds = elapsed.as_secs_f64();
    let rss: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|s| s.rss_mib.map(|m| (s.t_s, m)))
        .collect();
    let warm_end = seconds * args.warmup.clamp(0.0, 0.9);
    let mut after_warmup: Vec<f64> = rss
        .iter()
        .filter(|(t, _)| *t >= warm_end)
        .take(5)
        .map(|(_, m)| *m)
        .collect();
    let mut last: Vec<f64> = rss.iter().rev().take(5).map(|(_, m)| *m).collect();
    let warm_rss = median(&mut after_warmup);
    let end_rss = median(&mut last);
    let drift = warm_rss.zip(end_rss).map(|(w, e)| (e - w) / w * 100.0);
    let summary = serde_json::json!({
        "url": args.url,
        "task": args.task,
        "concurrency": args.concurrency,
        "rate_limit_per_s": args.rate,
        "seconds": round(Some(seconds)),
        "requests": records.len(),
        "succeeded": ok.len(),
        "throughput_per_s": round(Some(ok.len() as f64 / seconds.max(1e-9))),
        "status_counts": statuses,
        "latency_ms": {
            "p50": round(percentile(&ok, 50.0)),
            "p90": round(percentile(&ok, 90.0)),
            "p99": round(percentile(&ok, 99.0)),
            "max": round(ok.last().copied()),
            "mean": round((!ok.is_empty()).then(|| ok.iter().sum::<f64>() / ok.len() as f64)),
        },
        "rss_mib": {
            "start": round(rss.first().map(|(_, m)| *m)),
            "after_warmup": round(warm_rss),
            "peak": round(rss.iter().map(|(_, m)| *m).reduce(f64::max)),
            "end": round(end_rss),
            "drift_after_warmup_percent": round(drift),
        },
        "cpu_percent_mean": round({
            let cpu: Vec<f64> = samples.iter().filter_map(|s| s.cpu_percent).collect();
            (!cpu.is_empty()).then(|| cpu.iter().sum::<f64>() / cpu.len() as f64)
        }),
    });
    std::fs::write(args.out.join("summary.json"), format!("{summary:#}"))?;
    crate::charts::draw(&args.out, records, samples, seconds)
        .map_err(|e| anyhow::anyhow!("drawing the charts: {e}"))?;
    println!("{summary:#}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (text, seconds) in [
            ("30s", 30.0),
            ("5m", 300.0),
            ("500ms", 0.5),
            ("2h", 7200.0),
            ("12", 12.0),
        ] {
            assert_eq!(
                parse_duration(text).unwrap().as_secs_f64(),
                seconds,
                "{text}"
            );
        }
        for bad in ["", "s", "10x", "-5s", "0s", "100d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_loopback_targets() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:80",
            "http://127.3.4.5/",
        ] {
            assert!(
                check_loopback(&reqwest::Url::parse(ok).unwrap()).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "http://10.0.0.1:8080",
            "http://example.com",
            "http://192.168.1.2",
        ] {
            assert!(
                check_loopback(&reqwest::Url::parse(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn metric_lines() {
        let text =
            "# HELP x\npercept_queue_depth 3\npercept_queue_depth_max 9\npercept_in_flight 2\n";
        assert_eq!(metric(text, "percept_queue_depth"), Some(3.0));
        assert_eq!(metric(text, "percept_in_flight"), Some(2.0));
        assert_eq!(metric(text, "percept_nothing"), None);
    }
}
