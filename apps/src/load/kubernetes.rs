//! `surge load ... --agents N --emit-kubernetes`: the same load as a Kubernetes Indexed Job
//! of N agents, plus the merge step, printed as YAML instead of run.
//!
//! The manifest holds three objects:
//! - a `PersistentVolumeClaim` (ReadWriteMany) for the results, shared by agents and merge;
//! - the agents' `Job` (`completionMode: Indexed`, `completions` = `parallelism` = N): each
//!   pod runs `surge load` with the given options plus `--agents N --test-id ID
//!   --results-dir /results/ID --start-at T` and learns its index from the
//!   `JOB_COMPLETION_INDEX` Kubernetes sets; host networking (AF_XDP works on the node's
//!   NIC), the capabilities AF_XDP needs (NET_ADMIN, NET_RAW, BPF, SYS_ADMIN, IPC_LOCK), pods
//!   spread over nodes;
//! - the merge `Job`: waits (bounded) until the N agents' files are there, then runs
//!   `surge report merge /results/ID`, which names any agent that is missing.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use anyhow::ensure;
use clap::Args;
use serde_json::{Value, json};

use super::agent::unix_nanos;

/// Options of `--emit-kubernetes`.
#[derive(Args, Debug, Clone, Default)]
pub struct KubernetesArgs {
    /// Print a Kubernetes Indexed Job that runs this load as --agents N agents (and a Job
    /// that merges their results) instead of running it.
    #[arg(long)]
    pub emit_kubernetes: bool,
    /// --emit-kubernetes: the container image holding the surge binary (on PATH).
    #[arg(long, value_name = "IMAGE", default_value = "surge:latest")]
    pub image: String,
    /// --emit-kubernetes: the PersistentVolumeClaim (ReadWriteMany) for the results.
    #[arg(long, value_name = "NAME", default_value = "surge-results")]
    pub results_claim: String,
}

/// Options the emitter sets itself (removed from the user's command line, with their value
/// when they take one).
const SET_HERE: [(&str, bool); 9] = [
    ("--emit-kubernetes", false),
    ("--image", true),
    ("--results-claim", true),
    ("--agents", true),
    ("--agent-index", true),
    ("--test-id", true),
    ("--results-dir", true),
    ("--start-at", true),
    ("--quiet", false),
];

/// The agent's `surge load` arguments: the user's, without the options the emitter sets.
pub fn agent_arguments(user: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip_value = false;
    for arg in user {
        if skip_value {
            skip_value = false;
            continue;
        }
        let name = arg.split_once('=').map_or(arg.as_str(), |(n, _)| n);
        match SET_HERE.iter().find(|(flag, _)| *flag == name) {
            Some((_, takes_value)) => skip_value = *takes_value && !arg.contains('='),
            None => out.push(arg.clone()),
        }
    }
    out
}

/// A name Kubernetes accepts (RFC 1123 label: lower-case alphanumerics and '-', at most 63,
/// alphanumeric at both ends).
fn dns_label(text: &str, max: usize) -> String {
    let mut s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(max)
        .collect();
    while s.ends_with('-') {
        s.pop();
    }
    let trimmed = s.trim_start_matches('-').to_string();
    if trimmed.is_empty() {
        "x".to_string()
    } else {
        trimmed
    }
}

/// RFC 3339 (UTC, seconds and nanoseconds) of a system time.
pub fn rfc3339(t: SystemTime) -> String {
    let nanos = unix_nanos(t);
    let secs = (nanos / 1_000_000_000) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        nanos % 1_000_000_000
    )
}

/// What the manifest is made from.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Agents.
    pub agents: usize,
    /// The test id.
    pub test_id: String,
    /// The common start.
    pub start_at: SystemTime,
    /// When the manifest was made (bounds the merge's wait).
    pub now: SystemTime,
    /// The load's duration.
    pub duration: Duration,
    /// The agents' `surge load` arguments (the user's, filtered).
    pub load_arguments: Vec<String>,
    /// Image, claim.
    pub kubernetes: KubernetesArgs,
}

/// The three objects of the manifest.
pub fn manifest(plan: &Plan) -> anyhow::Result<Vec<Value>> {
    ensure!(
        (1..=super::agent::MAX_AGENTS).contains(&plan.agents),
        "--emit-kubernetes needs --agents N (1 to {})",
        super::agent::MAX_AGENTS
    );
    let id = &plan.test_id;
    let name = dns_label(id, 40);
    let label = dns_label(id, 63);
    let dir = format!("/results/{id}");
    let start = rfc3339(plan.start_at);
    let n = plan.agents;
    let mut command: Vec<String> = vec!["surge".into(), "load".into()];
    command.extend(plan.load_arguments.iter().cloned());
    command.extend([
        "--agents".into(),
        n.to_string(),
        "--test-id".into(),
        id.clone(),
        "--results-dir".into(),
        dir.clone(),
        "--start-at".into(),
        start.clone(),
        "--quiet".into(),
    ]);
    // Long enough for the start, the run and its drain, and then some.
    let lead = plan
        .start_at
        .duration_since(plan.now)
        .unwrap_or_default()
        .as_secs();
    let deadline = lead + plan.duration.as_secs() + 600;
    let labels = json!({
        "app.kubernetes.io/name": "surge-load",
        "surge.dev/test-id": label,
    });
    let volume = json!([{
        "name": "results",
        "persistentVolumeClaim": {"claimName": plan.kubernetes.results_claim},
    }]);
    let mount = json!([{"name": "results", "mountPath": "/results"}]);
    let claim = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": plan.kubernetes.results_claim, "labels": {"app.kubernetes.io/name": "surge-load"}},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": "1Gi"}},
        },
    });
    let agents = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": format!("surge-load-{name}"),
            "labels": labels,
            "annotations": {"surge.dev/start-at": start},
        },
        "spec": {
            "completionMode": "Indexed",
            "completions": n,
            "parallelism": n,
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "hostNetwork": true,
                    "dnsPolicy": "ClusterFirstWithHostNet",
                    "topologySpreadConstraints": [{
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": labels},
                    }],
                    "containers": [{
                        "name": "agent",
                        "image": plan.kubernetes.image,
                        "command": command,
                        "securityContext": {
                            "capabilities": {
                                "add": ["NET_ADMIN", "NET_RAW", "BPF", "SYS_ADMIN", "IPC_LOCK"],
                            },
                        },
                        "volumeMounts": mount,
                    }],
                    "volumes": volume,
                },
            },
        },
    });
    let wait = format!(
        "for i in $(seq {deadline}); do \
         n=$(ls {dir}/agent-*-of-{n}.json 2>/dev/null | wc -l); \
         [ \"$n\" -ge {n} ] && break; sleep 1; done; \
         exec surge report merge {dir}"
    );
    let merge = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": format!("surge-merge-{name}"), "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline + 120,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "merge",
                        "image": plan.kubernetes.image,
                        "command": ["sh", "-c", wait],
                        "volumeMounts": mount,
                    }],
                    "volumes": volume,
                },
            },
        },
    });
    Ok(vec![claim, agents, merge])
}

/// Whether a mapping key can stay a plain YAML scalar.
fn plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))
}

/// A scalar in YAML: strings double-quoted with JSON's escapes (a JSON string is a valid
/// YAML double-quoted scalar), numbers, booleans and null as JSON writes them.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) if map.is_empty() => Some("{}".into()),
        Value::Array(items) if items.is_empty() => Some("[]".into()),
        Value::Object(_) | Value::Array(_) => None,
        other => Some(other.to_string()),
    }
}

/// Writes `value` as block-style YAML at `indent` spaces.
fn write_yaml(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let key = if plain_key(key) {
                    key.clone()
                } else {
                    Value::String(key.clone()).to_string()
                };
                match scalar(v) {
                    Some(s) => {
                        let _ = writeln!(out, "{pad}{key}: {s}");
                    }
                    None => {
                        let _ = writeln!(out, "{pad}{key}:");
                        write_yaml(v, indent + 2, out);
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match scalar(item) {
                    Some(s) => {
                        let _ = writeln!(out, "{pad}- {s}");
                    }
                    None => {
                        // The item's block at indent + 2, its first line behind the dash.
                        let mut block = String::new();
                        write_yaml(item, indent + 2, &mut block);
                        let inner = " ".repeat(indent + 2);
                        let block = block.strip_prefix(&inner).unwrap_or(&block);
                        let _ = write!(out, "{pad}- {block}");
                    }
                }
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}", scalar(other).unwrap_or_default());
        }
    }
}

/// The objects as one multi-document YAML stream.
pub fn to_yaml(documents: &[Value], header: &str) -> String {
    let mut out = String::new();
    for line in header.lines() {
        let _ = writeln!(out, "# {line}");
    }
    for doc in documents {
        out.push_str("---\n");
        write_yaml(doc, 0, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn plan() -> Plan {
        Plan {
            agents: 4,
            test_id: "Nightly_run:7".into(),
            start_at: UNIX_EPOCH + Duration::from_secs(1_796_464_800),
            now: UNIX_EPOCH + Duration::from_secs(1_796_464_680),
            duration: Duration::from_secs(30),
            load_arguments: vec![
                "--target".into(),
                "10.0.0.1:80".into(),
                "-R".into(),
                "1000".into(),
            ],
            kubernetes: KubernetesArgs {
                emit_kubernetes: true,
                image: "registry.example/surge:1".into(),
                results_claim: "surge-results".into(),
            },
        }
    }

    #[test]
    fn the_agents_job_is_indexed_with_host_network_and_af_xdp_capabilities() {
        let docs = manifest(&plan()).expect("manifest");
        let job = &docs[1];
        assert_eq!(job["kind"], "Job");
        assert_eq!(job["metadata"]["name"], "surge-load-nightly-run-7");
        let spec = &job["spec"];
        assert_eq!(spec["completionMode"], "Indexed");
        assert_eq!(spec["completions"], 4);
        assert_eq!(spec["parallelism"], 4);
        assert_eq!(spec["activeDeadlineSeconds"], 120 + 30 + 600);
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["hostNetwork"], true);
        let container = &pod["containers"][0];
        let caps = &container["securityContext"]["capabilities"]["add"];
        for cap in ["NET_ADMIN", "NET_RAW", "BPF", "SYS_ADMIN", "IPC_LOCK"] {
            assert!(
                caps.as_array().is_some_and(|c| c.iter().any(|v| v == cap)),
                "{cap}"
            );
        }
        let command: Vec<&str> = container["command"]
            .as_array()
            .expect("command")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            command,
            [
                "surge",
                "load",
                "--target",
                "10.0.0.1:80",
                "-R",
                "1000",
                "--agents",
                "4",
                "--test-id",
                "Nightly_run:7",
                "--results-dir",
                "/results/Nightly_run:7",
                "--start-at",
                "2026-12-05T10:00:00.000000000Z",
                "--quiet"
            ]
        );
        assert_eq!(
            pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "surge-results"
        );
        let merge = &docs[2];
        let wait = merge["spec"]["template"]["spec"]["containers"][0]["command"][2]
            .as_str()
            .expect("merge command");
        assert!(wait.contains("agent-*-of-4.json"), "{wait}");
        assert!(
            wait.ends_with("exec surge report merge /results/Nightly_run:7"),
            "{wait}"
        );
        assert_eq!(docs[0]["spec"]["accessModes"][0], "ReadWriteMany");
        let mut p = plan();
        p.agents = 0;
        assert!(manifest(&p).is_err());
    }

    #[test]
    fn the_users_arguments_lose_only_what_the_emitter_sets() {
        let args: Vec<String> = [
            "--target",
            "1.2.3.4:5",
            "--emit-kubernetes",
            "--agents",
            "3",
            "--image=x",
            "--test-id",
            "t",
            "-c",
            "30",
            "--start-at",
            "1",
            "--results-claim",
            "c",
            "--record-schedule",
            "--quiet",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            agent_arguments(&args),
            ["--target", "1.2.3.4:5", "-c", "30", "--record-schedule"]
        );
    }

    #[test]
    fn yaml_nests_maps_and_lists_and_quotes_strings() {
        let doc = json!({
            "a": {"b": [1, {"c": "x: y", "d": []}, "two"], "e": {}},
            "f.g/h": true,
            "weird key": null,
        });
        let text = to_yaml(&[doc], "header");
        assert_eq!(
            text,
            "# header\n---\na:\n  b:\n    - 1\n    - c: \"x: y\"\n      d: []\n    - \"two\"\n  e: {}\nf.g/h: true\n\"weird key\": null\n"
        );
    }

    #[test]
    fn rfc3339_round_trips_through_the_start_at_parser() {
        for secs in [0u64, 951_782_400, 1_796_464_800, 4_102_444_799] {
            let t = UNIX_EPOCH + Duration::from_nanos(secs * 1_000_000_000 + 123_456_789);
            let text = rfc3339(t);
            assert_eq!(super::super::agent::parse_start_at(&text), Ok(t), "{text}");
        }
        assert_eq!(dns_label("--A_b--", 63), "a-b");
        assert_eq!(dns_label("::", 63), "x");
    }
}
