//! `deploy/` checked without a container engine: every YAML and JSON file parses; the
//! Kubernetes objects have their required fields and agree with each other (labels, ports,
//! HPA target); probe paths are real routes of a running server; every metric the Grafana
//! dashboard queries is one the server exports; the Dockerfile builds with the README's line.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde::Deserialize;
use serde_norway::Value as Yaml;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn with_extension(exts: &[&str]) -> Vec<PathBuf> {
    let mut all = Vec::new();
    files(&deploy_dir(), &mut all);
    all.sort();
    all.into_iter()
        .filter(|p| p.extension().is_some_and(|e| exts.iter().any(|x| e == *x)))
        .collect()
}

/// Every document of a (possibly multi-document) YAML file, merge keys applied.
fn yaml_documents(path: &Path) -> Vec<Yaml> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| {
            let mut value = Yaml::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: invalid YAML: {e}", path.display()));
            value
                .apply_merge()
                .unwrap_or_else(|e| panic!("{}: bad merge key: {e}", path.display()));
            value
        })
        .collect()
}

fn text<'a>(value: &'a Yaml, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(*key))
        .and_then(Yaml::as_str)
}

fn at<'a>(value: &'a Yaml, path: &[&str]) -> &'a Yaml {
    path.iter()
        .try_fold(value, |v, key| v.get(*key))
        .unwrap_or_else(|| panic!("missing {}", path.join(".")))
}

/// The Kubernetes objects under deploy/k8s, as (file, object).
fn k8s_objects() -> Vec<(PathBuf, Yaml)> {
    with_extension(&["yaml", "yml"])
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "k8s"))
        .flat_map(|p| yaml_documents(&p).into_iter().map(move |d| (p.clone(), d)))
        .collect()
}

#[test]
fn every_yaml_and_json_file_parses() {
    let yaml = with_extension(&["yaml", "yml"]);
    assert!(yaml.len() >= 5, "{yaml:?}");
    for path in yaml {
        assert!(!yaml_documents(&path).is_empty(), "{}", path.display());
    }
    let json = with_extension(&["json"]);
    assert!(!json.is_empty());
    for path in json {
        let text = std::fs::read_to_string(&path).unwrap();
        serde_json::from_str::<serde_json::Value>(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[tokio::test]
async fn kubernetes_objects_are_complete_and_consistent() {
    let objects = k8s_objects();
    for (path, object) in &objects {
        for field in [&["apiVersion"][..], &["kind"], &["metadata", "name"]] {
            assert!(
                text(object, field).is_some_and(|v| !v.is_empty()),
                "{}: no {}",
                path.display(),
                field.join(".")
            );
        }
    }
    let of_kind = |kind: &str| -> Vec<&Yaml> {
        objects
            .iter()
            .map(|(_, o)| o)
            .filter(|o| text(o, &["kind"]) == Some(kind))
            .collect()
    };
    // Workloads: percept's Deployment and Redis's StatefulSet.
    let mut deployments = of_kind("Deployment");
    let stateful = of_kind("StatefulSet");
    deployments.extend(stateful.iter().copied());
    let services = of_kind("Service");
    let name = |o: &Yaml| text(o, &["metadata", "name"]).unwrap().to_string();
    assert!(of_kind("Deployment").iter().any(|d| name(d) == "percept"));
    let redis = stateful
        .iter()
        .find(|d| name(d) == "percept-redis")
        .expect("Redis is a StatefulSet (its data on a PersistentVolumeClaim)");

    // The HPA owns the replica count: a `replicas:` in the Deployment would reset it.
    let percept_deployment = of_kind("Deployment")
        .into_iter()
        .find(|d| name(d) == "percept")
        .unwrap();
    assert!(
        percept_deployment["spec"].get("replicas").is_none(),
        "percept: no replicas with an HPA"
    );
    // Every pod runs with the runtime's default seccomp profile.
    for workload in &deployments {
        assert_eq!(
            text(
                workload,
                &[
                    "spec",
                    "template",
                    "spec",
                    "securityContext",
                    "seccompProfile",
                    "type"
                ]
            ),
            Some("RuntimeDefault"),
            "{}: seccompProfile",
            name(workload)
        );
    }
    // Redis: its append-only file on a claimed volume, a memory cap that never evicts queued
    // jobs, above the byte bound percept puts on the shared queue, below its container limit.
    let claim = &at(redis, &["spec", "volumeClaimTemplates"])
        .as_sequence()
        .unwrap()[0];
    let container = &at(redis, &["spec", "template", "spec", "containers"])
        .as_sequence()
        .unwrap()[0];
    let mounted = at(container, &["volumeMounts"]).as_sequence().unwrap();
    assert!(
        mounted
            .iter()
            .any(|m| text(m, &["name"]) == text(claim, &["metadata", "name"])
                && text(m, &["mountPath"]) == Some("/data"))
    );
    let args: Vec<&str> = at(container, &["args"])
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let arg = |flag: &str| {
        let i = args
            .iter()
            .position(|a| *a == flag)
            .unwrap_or_else(|| panic!("redis: no {flag}"));
        args[i + 1]
    };
    assert_eq!((arg("--appendonly"), arg("--dir")), ("yes", "/data"));
    assert_eq!(arg("--maxmemory-policy"), "noeviction");
    let bytes = |text: &str| -> u64 {
        let lower = text.to_ascii_lowercase();
        let (number, unit) = lower.split_at(
            lower
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(lower.len()),
        );
        let n: u64 = number.parse().unwrap();
        n * match unit {
            "" | "b" => 1,
            "mb" => 1 << 20,
            "gb" => 1 << 30,
            "mi" => 1 << 20,
            "gi" => 1 << 30,
            other => panic!("unit {other}"),
        }
    };
    let maxmemory = bytes(arg("--maxmemory"));
    let limit = bytes(text(container, &["resources", "limits", "memory"]).unwrap());
    assert!(
        maxmemory < limit,
        "redis maxmemory {maxmemory} ≥ its limit {limit}"
    );
    let queue_bytes = at(
        &at(
            percept_deployment,
            &["spec", "template", "spec", "containers"],
        )[0],
        &["env"],
    )
    .as_sequence()
    .unwrap()
    .iter()
    .find(|e| text(e, &["name"]) == Some("PERCEPT_REDIS_QUEUE_BYTES"))
    .and_then(|e| text(e, &["value"]))
    .map_or(Config::default().redis_queue_bytes, |v| v.parse().unwrap());
    assert!(
        queue_bytes < maxmemory,
        "the shared queue ({queue_bytes}) must fit in Redis ({maxmemory})"
    );
    let redis_security = at(container, &["securityContext"]);
    assert_eq!(
        redis_security["allowPrivilegeEscalation"].as_bool(),
        Some(false)
    );
    assert_eq!(
        at(
            redis,
            &[
                "spec",
                "template",
                "spec",
                "securityContext",
                "runAsNonRoot"
            ]
        )
        .as_bool(),
        Some(true)
    );

    let server = TestServer::start(config()).await;
    for deployment in &deployments {
        let labels = at(deployment, &["spec", "template", "metadata", "labels"]);
        let selector = at(deployment, &["spec", "selector", "matchLabels"]);
        for (key, value) in selector.as_mapping().unwrap() {
            assert_eq!(
                labels.get(key),
                Some(value),
                "{}: selector",
                name(deployment)
            );
        }
        let containers = at(deployment, &["spec", "template", "spec", "containers"])
            .as_sequence()
            .unwrap();
        let mut ports: Vec<(String, u64)> = Vec::new();
        for container in containers {
            assert!(
                text(container, &["image"]).is_some_and(|i| !i.is_empty()),
                "{}: a container without image",
                name(deployment)
            );
            for port in at(container, &["ports"]).as_sequence().unwrap() {
                ports.push((
                    text(port, &["name"]).unwrap_or_default().to_string(),
                    at(port, &["containerPort"]).as_u64().unwrap(),
                ));
            }
            if name(deployment) != "percept" {
                continue;
            }
            // The percept container: requests and limits, and probes on real routes.
            for kind in ["requests", "limits"] {
                for resource in ["cpu", "memory"] {
                    assert!(
                        container
                            .get("resources")
                            .and_then(|r| r.get(kind))
                            .and_then(|r| r.get(resource))
                            .is_some(),
                        "percept: no resources.{kind}.{resource}"
                    );
                }
            }
            let probe_path = |probe: &str| text(container, &[probe, "httpGet", "path"]);
            assert_eq!(probe_path("livenessProbe"), Some("/healthz"));
            assert_eq!(probe_path("readinessProbe"), Some("/readyz"));
            for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                let Some(path) = probe_path(probe) else {
                    continue;
                };
                let status = client()
                    .get(server.url(path))
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert_eq!(status, 200, "{probe} {path} is not a live route");
                let port = at(container, &[probe, "httpGet", "port"]);
                assert!(
                    ports.iter().any(
                        |(n, p)| port.as_str() == Some(n.as_str()) || port.as_u64() == Some(*p)
                    ),
                    "{probe} port {port:?} is not a container port"
                );
            }
            // A read-only root needs a writable TMPDIR (default /tmp): ONNX Runtime stages its
            // optimised models there, and without it every session copies its weights.
            let read_only = container
                .get("securityContext")
                .and_then(|c| c.get("readOnlyRootFilesystem"))
                .and_then(Yaml::as_bool)
                == Some(true);
            if read_only {
                let mounts = container.get("volumeMounts").and_then(Yaml::as_sequence);
                let scratch = mounts
                    .into_iter()
                    .flatten()
                    .find(|m| text(m, &["mountPath"]) == Some("/tmp"))
                    .and_then(|m| text(m, &["name"]))
                    .expect("percept: read-only root without a volume at /tmp");
                let volumes = at(deployment, &["spec", "template", "spec", "volumes"]);
                assert!(
                    volumes.as_sequence().unwrap().iter().any(|v| {
                        text(v, &["name"]) == Some(scratch) && v.get("emptyDir").is_some()
                    }),
                    "percept: /tmp is not an emptyDir volume"
                );
            }
            let env = at(container, &["env"]).as_sequence().unwrap();
            assert!(
                env.iter()
                    .any(|e| text(e, &["name"]) == Some("PERCEPT_REDIS_URL")),
                "replicas must share Redis"
            );
            // Prometheus scrapes the metrics listener: the annotated port is the container
            // port `metrics`, and PERCEPT_METRICS_ADDR listens on it.
            let annotations = at(deployment, &["spec", "template", "metadata", "annotations"]);
            let scrape_port: u64 = text(annotations, &["prometheus.io/port"])
                .and_then(|p| p.parse().ok())
                .expect("percept: a prometheus.io/port annotation");
            assert!(
                ports.contains(&("metrics".to_string(), scrape_port)),
                "the scrape port {scrape_port} is not the container port `metrics` {ports:?}"
            );
            let metrics_addr = env
                .iter()
                .find(|e| text(e, &["name"]) == Some("PERCEPT_METRICS_ADDR"))
                .and_then(|e| text(e, &["value"]))
                .expect("percept: PERCEPT_METRICS_ADDR (Prometheus holds no API key)");
            assert!(
                metrics_addr.ends_with(&format!(":{scrape_port}")),
                "{metrics_addr} is not the scrape port {scrape_port}"
            );
        }
        // A Service selecting this Deployment's pods targets one of its ports.
        let matching: Vec<_> = services
            .iter()
            .filter(|s| {
                at(s, &["spec", "selector"])
                    .as_mapping()
                    .unwrap()
                    .iter()
                    .all(|(k, v)| labels.get(k) == Some(v))
            })
            .collect();
        assert_eq!(matching.len(), 1, "{}: services", name(deployment));
        for port in at(matching[0], &["spec", "ports"]).as_sequence().unwrap() {
            let target = at(port, &["targetPort"]);
            // The metrics listener answers without the key: it must stay off the Service.
            assert!(
                target.as_str() != Some("metrics")
                    && !ports.contains(&("metrics".to_string(), target.as_u64().unwrap_or(0))),
                "{}: the Service exposes the metrics port",
                name(deployment)
            );
            assert!(
                ports.iter().any(
                    |(n, p)| target.as_str() == Some(n.as_str()) || target.as_u64() == Some(*p)
                ),
                "{}: targetPort {target:?} is not a container port {ports:?}",
                name(deployment)
            );
        }
    }
    // The Redis URL the replicas use names the Redis Service and its port.
    let redis_service = services
        .iter()
        .find(|s| name(s) == "percept-redis")
        .unwrap();
    let redis_port = at(redis_service, &["spec", "ports"]).as_sequence().unwrap()[0]
        .get("port")
        .unwrap()
        .as_u64()
        .unwrap();
    let percept = deployments.iter().find(|d| name(d) == "percept").unwrap();
    let env = at(
        &at(percept, &["spec", "template", "spec", "containers"])[0],
        &["env"],
    )
    .as_sequence()
    .unwrap();
    let url = env
        .iter()
        .find(|e| text(e, &["name"]) == Some("PERCEPT_REDIS_URL"))
        .and_then(|e| text(e, &["value"]))
        .unwrap();
    assert_eq!(url, format!("redis://percept-redis:{redis_port}"));

    let hpas = of_kind("HorizontalPodAutoscaler");
    assert_eq!(hpas.len(), 1);
    let hpa = hpas[0];
    assert_eq!(text(hpa, &["apiVersion"]), Some("autoscaling/v2"));
    assert_eq!(
        text(hpa, &["spec", "scaleTargetRef", "kind"]),
        Some("Deployment")
    );
    assert_eq!(
        text(hpa, &["spec", "scaleTargetRef", "name"]),
        Some("percept")
    );
    let metrics = at(hpa, &["spec", "metrics"]).as_sequence().unwrap();
    assert_eq!(text(&metrics[0], &["resource", "name"]), Some("cpu"));
    // And on the queue each pod reports, served by prometheus-adapter's rule shipped here.
    let queue_metric = metrics
        .iter()
        .find(|m| text(m, &["type"]) == Some("Pods"))
        .and_then(|m| text(m, &["pods", "metric", "name"]))
        .expect("the HPA scales on a per-pod metric too");
    assert_eq!(queue_metric, "percept_queue_depth");
    let rules = of_kind("ConfigMap")
        .into_iter()
        .find(|c| name(c) == "percept-adapter-rules")
        .expect("the prometheus-adapter rule ConfigMap");
    let rules = text(rules, &["data", "config.yaml"]).unwrap();
    let rules: Yaml = serde_norway::from_str(rules).unwrap();
    let rule = &at(&rules, &["rules"]).as_sequence().unwrap()[0];
    assert!(
        text(rule, &["seriesQuery"])
            .unwrap()
            .starts_with(queue_metric)
    );
    assert_eq!(text(rule, &["name", "as"]), Some(queue_metric));
    let scrape = metrics_text(&server).await;
    assert!(
        scrape
            .lines()
            .any(|l| l.starts_with(&format!("{queue_metric} "))),
        "the server exports {queue_metric}"
    );
    assert!(
        at(hpa, &["spec", "minReplicas"]).as_u64().unwrap()
            <= at(hpa, &["spec", "maxReplicas"]).as_u64().unwrap()
    );
    server.shutdown().await;
}

#[test]
fn compose_runs_two_replicas_on_one_redis() {
    let compose = yaml_documents(&deploy_dir().join("compose.yaml")).remove(0);
    let services = at(&compose, &["services"]).as_mapping().unwrap();
    let replicas: Vec<_> = services
        .iter()
        .filter(|(_, s)| text(s, &["image"]).is_some_and(|i| i.starts_with("percept")))
        .collect();
    assert_eq!(replicas.len(), 2);
    for (name, service) in &replicas {
        assert_eq!(
            text(service, &["environment", "PERCEPT_REDIS_URL"]),
            Some("redis://redis:6379"),
            "{name:?}"
        );
        assert_eq!(
            text(service, &["build", "dockerfile"]),
            Some("deploy/Dockerfile")
        );
    }
    let ids: std::collections::HashSet<_> = replicas
        .iter()
        .map(|(_, s)| text(s, &["environment", "PERCEPT_REPLICA_ID"]).unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "replica ids must differ");
    for (name, service) in &replicas {
        // Loopback unless PERCEPT_BIND says otherwise; the API key is passed through.
        for port in at(service, &["ports"]).as_sequence().unwrap() {
            assert!(
                port.as_str()
                    .unwrap()
                    .starts_with("${PERCEPT_BIND:-127.0.0.1}:"),
                "{name:?}: {port:?} binds every interface"
            );
        }
        assert_eq!(
            text(service, &["environment", "PERCEPT_API_KEY"]),
            Some("${PERCEPT_API_KEY:-}"),
            "{name:?}"
        );
    }
    assert!(
        text(&services[&Yaml::from("redis")], &["image"])
            .unwrap()
            .starts_with("redis")
    );
}

/// The `cargo build` line of the README's code blocks.
fn readme_build_line() -> String {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let lines: Vec<&str> = readme
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| l.starts_with("cargo build"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "the README has one `cargo build` line: {lines:?}"
    );
    lines[0].to_string()
}

#[test]
fn the_dockerfile_builds_like_the_readme_and_runs_unprivileged() {
    let dockerfile = std::fs::read_to_string(deploy_dir().join("Dockerfile")).unwrap();
    let instructions: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let build = readme_build_line();
    assert!(
        instructions.contains(&format!("RUN {build}").as_str()),
        "the Dockerfile does not `RUN {build}`"
    );
    assert!(instructions.contains(&"RUN scripts/fetch-ort"));
    // Dependencies are cooked (cargo-chef) before the sources are copied, so a code change
    // does not rebuild every crate.
    // The dependencies are cooked with the same profile the build uses, and the binary copied
    // from that profile's folder.
    let profile = build
        .split_once("--profile ")
        .map_or("release", |(_, rest)| {
            rest.split_whitespace().next().unwrap()
        });
    let profile_flag = if profile == "release" {
        "--release".to_string()
    } else {
        format!("--profile {profile}")
    };
    let cook = instructions
        .iter()
        .position(|l| l.starts_with(&format!("RUN cargo chef cook {profile_flag} --locked")))
        .expect("a cargo chef cook layer with the build's profile");
    assert!(
        instructions.iter().any(|l| l.starts_with(&format!(
            "COPY --from=builder /src/target/{profile}/percept "
        ))),
        "the binary is copied from target/{profile}/"
    );
    let build_at = instructions
        .iter()
        .position(|l| *l == format!("RUN {build}"))
        .unwrap();
    let sources = instructions[cook..build_at]
        .iter()
        .position(|l| *l == "COPY . .")
        .expect("the sources copied after the dependencies are cooked");
    assert!(sources > 0);
    let froms = instructions
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert!(froms >= 2, "multi-stage");
    assert!(instructions[0].starts_with("FROM rust:1.95"));
    let user = instructions
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER instruction");
    assert!(
        !user.starts_with("root") && !user.starts_with('0'),
        "{user}"
    );
    assert!(instructions.iter().any(|l| l.starts_with("COPY models/")));
    assert!(dockerfile.contains("PERCEPT_ORT_DYLIB="));
    let healthcheck = dockerfile
        .split("\nHEALTHCHECK ")
        .nth(1)
        .expect("a HEALTHCHECK instruction");
    assert!(healthcheck.contains("/healthz"));
}

/// Metric names a scrape offers, with the suffixes Prometheus queries use.
fn exported_names(scrape: &str) -> std::collections::HashSet<String> {
    let mut names = std::collections::HashSet::new();
    for line in scrape.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                // The classic text format names a counter with its `_total` already.
                "counter" if name.ends_with("_total") => &[""],
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
        } else if !line.starts_with('#')
            && let Some(name) = line.split(['{', ' ']).next()
        {
            names.insert(name.to_string());
        }
    }
    names
}

#[tokio::test]
async fn every_dashboard_metric_is_exported() {
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(deploy_dir().join("grafana/percept.json")).unwrap(),
    )
    .unwrap();
    let server = TestServer::start(Config {
        max_body_bytes: 100_000,
        ..config()
    })
    .await;
    // Labelled families appear once they have a sample: one answered request, one rejection.
    for (photo, status) in [("person_astronaut.jpg", 200), ("none_chelsea.png", 413)] {
        let response = client()
            .post(server.url("/v1/inspect"))
            .header("content-type", "image/jpeg")
            .body(data(photo))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status);
    }
    let scrape = metrics_text(&server).await;
    let exported = exported_names(&scrape);
    let mut queried = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            // Every identifier of the expression that names one of percept's series.
            for name in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if name.starts_with("percept_") || name.starts_with("process_") {
                    queried.insert(name.to_string());
                }
            }
        }
    }
    for wanted in [
        "percept_requests_total",
        "percept_request_duration_seconds_bucket",
        "percept_queue_depth",
        "percept_rejections_total",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "percept_cache_hits_total",
    ] {
        assert!(
            queried.contains(wanted),
            "the dashboard does not show {wanted}"
        );
    }
    let missing: Vec<_> = queried.iter().filter(|q| !exported.contains(*q)).collect();
    assert!(missing.is_empty(), "not exported: {missing:?}");
    server.shutdown().await;
}
