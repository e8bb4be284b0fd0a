//! `surge load --emit-kubernetes`: the manifest passes Kubernetes' own schemas offline
//! (`kubernetes-validate --strict`, installed by ci/setup; a broken manifest fails it), and
//! the commands in it work: the agents' pod command, run here three times in host A of a
//! lab with the `JOB_COMPLETION_INDEX` an Indexed Job sets, against a `surge serve` in host
//! B, and then the merge Job's command give one merged report whose count is the server's.

mod load_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use load_support::*;
use serde_json::Value;
use surge_lab::{HostId, Lab, LabSpec, Topology};

const VALIDATOR: &str = "/opt/surge-k8s-validate/bin/kubernetes-validate";

fn validator() -> PathBuf {
    let path = std::env::var_os("SURGE_K8S_VALIDATE")
        .map_or_else(|| PathBuf::from(VALIDATOR), PathBuf::from);
    assert!(
        path.exists(),
        "{} is missing: run ci/setup (it installs kubernetes-validate from PyPI into a venv)",
        path.display()
    );
    path
}

/// Every document of a YAML stream, as JSON (PyYAML of Debian's python3-yaml).
fn yaml_documents(file: &Path) -> Vec<Value> {
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(file)
        .output()
        .expect("python3 with yaml (python3-yaml)");
    assert!(out.status.success(), "YAML did not parse: {}", text(&out));
    serde_json::from_slice(&out.stdout).expect("JSON from python")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

fn validate(file: &Path) -> std::process::Output {
    Command::new(validator())
        .args(["--strict"])
        .arg(file)
        .output()
        .expect("running kubernetes-validate")
}

#[test]
fn the_manifest_passes_the_job_schema_and_its_commands_run_one_merged_test() {
    let scratch = Scratch::new("k8s");
    let lab = Lab::up(&LabSpec::unique("k8s", Topology::Pair)).expect("lab");
    let target = format!("{SERVER_ADDR}:7400");
    let start_at = SystemTime::now() + Duration::from_secs(4);
    let start_s = format!(
        "{:.3}",
        start_at
            .duration_since(UNIX_EPOCH)
            .expect("epoch")
            .as_secs_f64()
    );
    let manifest = scratch.path("surge.yaml");
    let out = Command::new(SURGE)
        .args(["load", "--stack", "kernel", "--target", &target, "-c", "5"])
        .args([
            "-d",
            "1s",
            "-R",
            "200",
            "--agents",
            "3",
            "--test-id",
            "k8s-test",
        ])
        .args(["--start-at", &start_s, "--image", "surge:test"])
        .arg("--emit-kubernetes")
        .output()
        .expect("surge load --emit-kubernetes");
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(&manifest, &out.stdout).expect("writing the manifest");

    // Kubernetes' schemas, strict (unknown fields refused).
    let checked = validate(&manifest);
    assert!(
        checked.status.success(),
        "the manifest fails the schema: {}",
        text(&checked)
    );
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(
        said.contains("passed for resource job/surge-load-k8s-test"),
        "{said}"
    );
    assert!(
        said.contains("passed for resource job/surge-merge-k8s-test"),
        "{said}"
    );
    // The validator is not a yes-machine: a wrong type fails it.
    let broken = scratch.path("broken.yaml");
    let text_in =
        String::from_utf8_lossy(&out.stdout).replace("parallelism: 3", "parallelism: \"three\"");
    std::fs::write(&broken, text_in).expect("broken manifest");
    assert!(
        !validate(&broken).status.success(),
        "a broken manifest passed"
    );

    let docs = yaml_documents(&manifest);
    assert_eq!(docs.len(), 3);
    let job = &docs[1];
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    assert_eq!(job["spec"]["completions"], 3);
    assert_eq!(job["spec"]["parallelism"], 3);
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    let agent_command = strings(&pod["containers"][0]["command"]);
    let merge_command = strings(&docs[2]["spec"]["template"]["spec"]["containers"][0]["command"]);

    // Run the pods' commands here: /results is the scratch directory, `surge` on PATH.
    let results = scratch.0.join("results");
    let local = |arg: &str| arg.replace("/results", &results.display().to_string());
    let bin_dir = Path::new(SURGE).parent().expect("binary directory");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let server_json = scratch.path("server.json");
    let mut serve = lab.command(HostId::B, SURGE).expect("command in B");
    serve
        .args([
            "serve", "--stack", "kernel", "--listen", &target, "--mode", "rr",
        ])
        .args(["--threads", "1", "--quiet", "--json"])
        .arg(&server_json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let server = spawn_serve(&mut serve, Duration::from_secs(10));
    let agents: Vec<_> = (0..3)
        .map(|i| {
            let program = bin_dir.join(&agent_command[0]);
            lab.command(HostId::A, program.to_str().expect("utf-8 path"))
                .expect("command in A")
                .args(agent_command[1..].iter().map(|a| local(a)))
                .env("PATH", &path)
                .env("JOB_COMPLETION_INDEX", i.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("an agent")
        })
        .collect();
    for (i, agent) in agents.into_iter().enumerate() {
        let out = agent.wait_with_output().expect("agent output");
        assert!(out.status.success(), "agent {i}: {}", text(&out));
    }
    server.stop();
    let merged = Command::new(&merge_command[0])
        .args(merge_command[1..].iter().map(|a| local(a)))
        .env("PATH", &path)
        .output()
        .expect("the merge Job's command");
    assert!(merged.status.success(), "merge: {}", text(&merged));
    assert!(
        String::from_utf8_lossy(&merged.stdout).contains("Merged 3 of 3 agents of test k8s-test")
    );
    let report = read_json(&results.join("k8s-test/merged.json"));
    let server_report = read_json(&server_json);
    assert_eq!(num(&report, "errors_total"), 0, "{report}");
    assert_eq!(num(&report, "answered"), num(&server_report, "requests"));
    assert_eq!(num(&report, "answered"), 200, "200/s for 1 s");
    lab.down().expect("removing the lab");
}
