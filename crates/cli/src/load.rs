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

use crate::records::{Record, Sample, median, percentile};

/// `percept load --url … --task … --images <dir> --concurrency N --duration D --out <dir>`.
#[derive(Debug, Clone, Args)]
pub(crate) struct LoadArgs {
    /// Server to drive; loopback addresses only.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Task route after /v1/, e.g. `inspect` or `art/pencil`; several separated by commas
    /// make a mixed load, each with an optional weight: `parse=3,anonymize=1` sends three
    /// parses per anonymisation.
    #[arg(long)]
    task: String,
    /// Folder of photos sent in turn (multipart `image`).
    #[arg(long)]
    images: PathBuf,
    /// Requests in flight at once (simulated users, each waiting for its answer).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// How long to run, e.g. 30s, 5m, 1h.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Ramp through stages instead of one --concurrency for --duration: `users:duration`
    /// pairs, e.g. `1:60s,3:60s,5:60s,10:60s` (warm-up at one user, then more).
    #[arg(long, value_parser = parse_stages, conflicts_with_all = ["concurrency", "duration"])]
    stages: Option<Stages>,
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
    /// throughput.svg, tasks.svg (latency and throughput per task), resources.svg.
    #[arg(long)]
    out: PathBuf,
}

/// One stage of a ramp: this many users for this long.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Stage {
    users: usize,
    #[serde(serialize_with = "seconds")]
    duration: Duration,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// A ramp: one value for clap (a bare `Vec` would be taken as a repeated argument).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stages(Vec<Stage>);

/// Parses `1:60s,3:60s,…` (users 1..=4096 each).
fn parse_stages(text: &str) -> Result<Stages, String> {
    text.split(',')
        .map(|part| {
            let (users, duration) = part
                .trim()
                .split_once(':')
                .ok_or_else(|| format!("stage `{part}` is not users:duration, e.g. 3:60s"))?;
            let users: usize = users
                .parse()
                .ok()
                .filter(|u| (1..=4096).contains(u))
                .ok_or_else(|| format!("stage `{part}`: users must be 1..=4096"))?;
            Ok(Stage {
                users,
                duration: parse_duration(duration)?,
            })
        })
        .collect::<Result<_, _>>()
        .map(Stages)
}

/// The task of each request in turn: `parse=3,anonymize=1` → parse, parse, parse, anonymize.
fn task_schedule(text: &str) -> Result<Vec<String>, String> {
    let mut schedule = Vec::new();
    for part in text.split(',') {
        let (task, weight) = match part.split_once('=') {
            Some((task, weight)) => {
                let weight: usize = weight
                    .trim()
                    .parse()
                    .ok()
                    .filter(|w| (1..=1000).contains(w))
                    .ok_or_else(|| format!("weight in `{part}` must be 1..=1000"))?;
                (task, weight)
            }
            None => (part, 1),
        };
        let task = task.trim().trim_matches('/');
        if task.is_empty() {
            return Err(format!("empty task in `{text}`"));
        }
        schedule.extend(std::iter::repeat_n(task.to_string(), weight));
    }
    Ok(schedule)
}

/// Seconds a `Retry-After` header asks for (delta-seconds; an HTTP date or nothing → 1 s),
/// at most a minute.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    let seconds = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1);
    Duration::from_secs(seconds.clamp(1, 60))
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
    let tasks = task_schedule(&args.task).map_err(|e| anyhow::anyhow!("--task: {e}"))?;
    let photos = Arc::new(load_photos(&args.images)?);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let stages = args.stages.clone().map(|s| s.0).unwrap_or_else(|| {
        vec![Stage {
            users: args.concurrency,
            duration: args.duration,
        }]
    });
    let run = runtime.block_on(drive(args, &stages, &base, &tasks, photos))?;
    write_outputs(args, &stages, &run)
}

/// What a run recorded.
struct Run {
    records: Vec<Record>,
    samples: Vec<Sample>,
    elapsed: Duration,
    /// Seconds the users spent waiting as `Retry-After` asked, summed.
    backoff_s: f64,
    /// Most requests in flight at once, per stage.
    max_in_flight: Vec<u64>,
}

/// The stage running at `at` (index, its end, its users); `None` once all are over.
fn stage_at(stages: &[Stage], started: Instant, at: Instant) -> Option<(usize, Instant, usize)> {
    let mut end = started;
    for (k, stage) in stages.iter().enumerate() {
        end += stage.duration;
        if at < end {
            return Some((k, end, stage.users));
        }
    }
    None
}

async fn drive(
    args: &LoadArgs,
    stages: &[Stage],
    base: &reqwest::Url,
    tasks: &[String],
    photos: Arc<Vec<Photo>>,
) -> anyhow::Result<Run> {
    let users = stages.iter().map(|s| s.users).max().unwrap_or(1);
    let total: Duration = stages.iter().map(|s| s.duration).sum();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(users)
        .build()?;
    let health = client.get(base.join("/healthz")?).send().await;
    if !health.as_ref().is_ok_and(|r| r.status().is_success()) {
        bail!("{} does not answer /healthz; is percept running?", base);
    }
    let started = Instant::now();
    let stop_at = started + total;
    let counter = Arc::new(AtomicU64::new(0));
    let records = Arc::new(Mutex::new(Vec::<Record>::new()));
    let in_flight = Arc::new(AtomicU64::new(0));
    let max_in_flight: Arc<Vec<AtomicU64>> =
        Arc::new(stages.iter().map(|_| AtomicU64::new(0)).collect());
    let backoff_ms = Arc::new(AtomicU64::new(0));
    let stages: Arc<Vec<Stage>> = Arc::new(stages.to_vec());
    let ticker = args.rate.filter(|r| *r > 0.0).map(|rate| {
        let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Arc::new(Mutex::new(interval))
    });
    let bar = ProgressBar::new(total.as_secs().max(1));
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

    let workers: Vec<_> = (0..users)
        .map(|user| {
            let client = client.clone();
            let photos = Arc::clone(&photos);
            let counter = Arc::clone(&counter);
            let records = Arc::clone(&records);
            let in_flight = Arc::clone(&in_flight);
            let max_in_flight = Arc::clone(&max_in_flight);
            let backoff_ms = Arc::clone(&backoff_ms);
            let stages = Arc::clone(&stages);
            let ticker = ticker.clone();
            let tasks = tasks.to_vec();
            let base = base.clone();
            let query = args.query.clone();
            let limit = args.requests;
            tokio::spawn(async move {
                while let Some((stage, stage_end, stage_users)) =
                    stage_at(&stages, started, Instant::now())
                {
                    if user >= stage_users {
                        // This user joins in a later stage (or not at all).
                        tokio::time::sleep_until(stage_end.into()).await;
                        continue;
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
                    let now_in_flight = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    max_in_flight[stage].fetch_max(now_in_flight, Ordering::SeqCst);
                    let sent = Instant::now();
                    let (status, bytes, wait) = match client.post(url).multipart(form).send().await
                    {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            let wait = (status == 429).then(|| retry_after(response.headers()));
                            (status, response.bytes().await.map_or(0, |b| b.len()), wait)
                        }
                        Err(_) => (0, 0, None),
                    };
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    records.lock().await.push(Record {
                        start_s: sent.duration_since(started).as_secs_f64(),
                        latency_ms: sent.elapsed().as_secs_f64() * 1000.0,
                        status,
                        bytes,
                        task: task.clone(),
                        image: photo.name.clone(),
                        stage,
                    });
                    if let Some(wait) = wait {
                        // A polite client: the server said when to come back.
                        let wait = wait.min(stop_at.saturating_duration_since(Instant::now()));
                        backoff_ms.fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
                        tokio::time::sleep(wait).await;
                    }
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
    Ok(Run {
        records,
        samples,
        elapsed,
        backoff_s: backoff_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        max_in_flight: max_in_flight
            .iter()
            .map(|m| m.load(Ordering::SeqCst))
            .collect(),
    })
}

fn round(v: Option<f64>) -> Option<f64> {
    v.map(|v| (v * 100.0).round() / 100.0)
}

/// Requests, status counts and latency percentiles of successes, for a set of records.
fn figures<'a>(records: impl Iterator<Item = &'a Record>, seconds: f64) -> serde_json::Value {
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut ok = Vec::new();
    let mut requests = 0usize;
    for r in records {
        requests += 1;
        *statuses
            .entry(if r.status == 0 {
                "transport_error".into()
            } else {
                r.status.to_string()
            })
            .or_default() += 1;
        if (200..300).contains(&r.status) {
            ok.push(r.latency_ms);
        }
    }
    ok.sort_by(f64::total_cmp);
    serde_json::json!({
        "requests": requests,
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
    })
}

fn write_outputs(args: &LoadArgs, stages: &[Stage], run: &Run) -> anyhow::Result<()> {
    let (records, samples) = (&run.records, &run.samples);
    let mut csv = String::from("start_s,latency_ms,status,bytes,task,image,stage\n");
    for r in records {
        csv.push_str(&format!(
            "{:.4},{:.3},{},{},{},{},{}\n",
            r.start_s,
            r.latency_ms,
            r.status,
            r.bytes,
            r.task,
            r.image.replace(',', "_"),
            r.stage
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

    let seconds = run.elapsed.as_secs_f64();
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
    let mut per_task = serde_json::Map::new();
    let mut names: Vec<&str> = records.iter().map(|r| r.task.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        per_task.insert(
            name.to_string(),
            figures(records.iter().filter(|r| r.task == name), seconds),
        );
    }
    let per_stage: Vec<serde_json::Value> = stages
        .iter()
        .enumerate()
        .map(|(k, stage)| {
            let mut figures = figures(
                records.iter().filter(|r| r.stage == k),
                stage.duration.as_secs_f64(),
            );
            figures["users"] = stage.users.into();
            figures["seconds"] = round(Some(stage.duration.as_secs_f64())).into();
            figures["max_in_flight"] = run.max_in_flight.get(k).copied().unwrap_or(0).into();
            figures
        })
        .collect();
    let mut summary = serde_json::json!({
        "url": args.url,
        "task": args.task,
        "concurrency": stages.iter().map(|s| s.users).max().unwrap_or(0),
        "rate_limit_per_s": args.rate,
        "seconds": round(Some(seconds)),
        "retry_after_wait_s": round(Some(run.backoff_s)),
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
        "per_task": per_task,
        "stages": per_stage,
    });
    if let (Some(map), serde_json::Value::Object(all)) =
        (summary.as_object_mut(), figures(records.iter(), seconds))
    {
        map.extend(all);
    }
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
    fn task_mixes_stages_and_retry_after() {
        assert_eq!(
            task_schedule("parse=3, anonymize=1").unwrap(),
            ["parse", "parse", "parse", "anonymize"]
        );
        assert_eq!(
            task_schedule("inspect,/art/oil").unwrap(),
            ["inspect", "art/oil"]
        );
        for bad in ["parse=0", "parse=x", "", "a,,b", "parse=1001"] {
            assert!(task_schedule(bad).is_err(), "{bad}");
        }
        let stages = parse_stages("1:60s, 3:2m").unwrap().0;
        assert_eq!(
            stages,
            [
                Stage {
                    users: 1,
                    duration: Duration::from_secs(60)
                },
                Stage {
                    users: 3,
                    duration: Duration::from_secs(120)
                },
            ]
        );
        for bad in ["1", "0:5s", "3:", "x:5s", "5000:1s"] {
            assert!(parse_stages(bad).is_err(), "{bad}");
        }
        let t0 = Instant::now();
        let at =
            |s: u64| stage_at(&stages, t0, t0 + Duration::from_secs(s)).map(|(k, _, u)| (k, u));
        assert_eq!(
            (at(0), at(59), at(60), at(179), at(180)),
            (Some((0, 1)), Some((0, 1)), Some((1, 3)), Some((1, 3)), None)
        );
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), Duration::from_secs(1));
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Duration::from_secs(7));
        headers.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), Duration::from_secs(1));
        headers.insert("retry-after", "86400".parse().unwrap());
        assert_eq!(retry_after(&headers), Duration::from_secs(60));
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
