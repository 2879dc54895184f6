//! Wire compatibility: bodies as the CLI and the daemon wrote them before
//! these types existed still parse, and answers keep their keys.

use serde_json::json;

use crate::*;

#[test]
fn a_run_request_as_the_cli_sent_it_parses() {
    // The keys the CLI's hand-built `json!` sent before this crate.
    let body = r#"{
        "tty": true, "open_stdin": true, "stdin_once": true, "console_size": [24, 80],
        "image": "alpine", "name": "c1", "cmd": ["sh", "-c", "true"], "entrypoint": null,
        "env": ["A=1"], "workdir": null, "user": "1000", "hostname": null, "detach": false,
        "auto_remove": true, "network": "none", "cap_add": [], "cap_drop": ["NET_RAW"],
        "privileged": false, "read_only": true, "no_new_privileges": true,
        "seccomp_unconfined": false, "volumes": ["v:/data"], "tmpfs": [], "mounts": [],
        "memory": 1048576, "memory_swap": null, "memory_reservation": null, "pids_limit": 64,
        "cpus": 0.5, "cpu_shares": null, "cpuset_cpus": null, "publish": ["8080:80"],
        "env_file_lines": [], "ulimits": [], "add_hosts": [], "dns": [],
        "labels": {"a": "b"}, "restart": "no", "log_opts": [], "no_start": true,
        "health": {"cmd": "true", "interval": 1000000000, "timeout": null,
                   "start_period": null, "retries": 3, "disable": false}
    }"#;
    let req: RunRequest = serde_json::from_str(body).unwrap();
    assert_eq!(req.image, "alpine");
    assert_eq!(req.console_size, Some((24, 80)));
    assert_eq!(req.health.cmd.as_deref(), Some("true"));
    assert_eq!(req.memory, Some(1 << 20));
    assert_eq!(req.labels["a"], "b");
    // An almost empty body is a valid run.
    let bare: RunRequest = serde_json::from_value(json!({"image": "x"})).unwrap();
    assert_eq!(
        bare,
        RunRequest {
            image: "x".into(),
            ..Default::default()
        }
    );
    // What the CLI sends now goes back to the same request.
    let again: RunRequest = serde_json::from_value(serde_json::to_value(&req).unwrap()).unwrap();
    assert_eq!(again, req);
}

#[test]
fn container_status_keeps_its_tagged_shape() {
    let exited = ContainerStatus::Exited {
        code: 3,
        oom_killed: false,
        error: None,
    };
    assert_eq!(
        serde_json::to_value(&exited).unwrap(),
        json!({"state": "exited", "code": 3, "oom_killed": false, "error": null})
    );
    assert_eq!(
        serde_json::to_value(ContainerStatus::Running { pid: 7 }).unwrap(),
        json!({"state": "running", "pid": 7})
    );
    assert_eq!(
        serde_json::to_value(ContainerStatus::Created).unwrap(),
        json!({"state": "created"})
    );
}

#[test]
fn run_answers_keep_their_keys() {
    let detached = RunResponse {
        id: "i".into(),
        name: "n".into(),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&detached).unwrap(),
        json!({"id": "i", "name": "n"})
    );
    let ran = RunResponse {
        status: Some(ContainerStatus::Exited {
            code: 0,
            oom_killed: false,
            error: None,
        }),
        stdout: Some("hi\n".into()),
        stderr: Some(String::new()),
        ..detached
    };
    let v = serde_json::to_value(&ran).unwrap();
    let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["id", "name", "status", "stderr", "stdout"]);
}

#[test]
fn inspect_flattens_the_summary_and_keeps_docker_state() {
    let summary = ContainerSummary {
        started: None,
        health: Some("healthy".into()),
        id: "i".into(),
        name: "n".into(),
        image: "alpine".into(),
        command: vec!["sh".into()],
        created: 1,
        network: "bridge".into(),
        labels: Default::default(),
        status: ContainerStatus::Created,
        restart_count: 0,
    };
    let inspect = ContainerInspect {
        summary: summary.clone(),
        dir: "/var/lib/berth/containers/i".into(),
        auto_remove: false,
        restart_policy: "no".into(),
        healthcheck: Some(HealthCheck {
            test: vec!["CMD".into(), "true".into()],
            interval: std::time::Duration::from_secs(30).into(),
            timeout: std::time::Duration::from_millis(1500).into(),
            start_period: std::time::Duration::ZERO.into(),
            retries: 3,
        }),
        tty: false,
        open_stdin: false,
        stdin_once: false,
        state: Some(InspectState {
            health: Some(HealthState::default()),
        }),
        spec: None,
        resources: Some(json!({"memory": null})),
    };
    let v = serde_json::to_value(&inspect).unwrap();
    assert_eq!(v["started"], json!(null));
    assert_eq!(v["status"]["state"], "created");
    assert_eq!(v["State"]["Health"]["Status"], "starting");
    assert_eq!(v["State"]["Health"]["FailingStreak"], 0);
    assert_eq!(
        v["healthcheck"]["timeout"],
        json!({"secs": 1, "nanos": 500_000_000})
    );
    assert!(v.get("spec").is_none());
    // The same Duration serde writes.
    assert_eq!(
        serde_json::to_value(std::time::Duration::from_millis(1500)).unwrap(),
        json!({"secs": 1, "nanos": 500_000_000})
    );
    let back: ContainerInspect = serde_json::from_value(v).unwrap();
    assert_eq!(back, inspect);
    // A row of `ps` reads as a summary.
    let row: ContainerSummary =
        serde_json::from_value(serde_json::to_value(&summary).unwrap()).unwrap();
    assert_eq!(row, summary);
}

#[test]
fn update_sends_only_what_changes_and_refuses_unknown_fields() {
    let req = UpdateRequest {
        memory: Some(1 << 20),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&req).unwrap(),
        json!({"memory": 1048576})
    );
    assert!(serde_json::from_value::<UpdateRequest>(json!({"memroy": 1})).is_err());
}

#[test]
fn exec_request_as_the_cli_sent_it_parses() {
    let req: ExecRequest = serde_json::from_value(json!({
        "cmd": ["ls"], "env": [], "user": null, "workdir": null,
        "detach": false, "stdin": true, "tty": true, "tty_size": [24, 80],
    }))
    .unwrap();
    assert_eq!(req.tty_size, Some((24, 80)));
    assert!(req.stdin);
}

#[test]
fn progress_events_keep_their_tags() {
    let ev = Event::Start {
        digest: "sha256:00".into(),
        size: 3,
    };
    assert_eq!(
        serde_json::to_value(&ev).unwrap(),
        json!({"event": "start", "digest": "sha256:00", "size": 3})
    );
    let done: Event = serde_json::from_str(r#"{"event":"done","result":{"digest":"d"}}"#).unwrap();
    assert_eq!(
        done,
        Event::Done {
            result: json!({"digest": "d"})
        }
    );
    let err: Event = serde_json::from_str(r#"{"event":"error","code":"c","message":"m"}"#).unwrap();
    assert_eq!(
        err,
        Event::Error {
            code: "c".into(),
            message: "m".into()
        }
    );
}

#[test]
fn images_and_errors_read_as_the_daemon_writes_them() {
    let img: Image = serde_json::from_value(json!({
        "reference": "r:1", "manifest": "sha256:aa", "media_type": "m", "config": "sha256:bb",
        "size": 10, "refs": ["sha256:aa"], "created": 5,
    }))
    .unwrap();
    assert_eq!(img.origin, None);
    assert_eq!(img.chain_id, None);
    let err: ErrorBody =
        serde_json::from_value(json!({"code": "not_found", "message": "no such"})).unwrap();
    assert_eq!(err.code, "not_found");
    let h: HistoryEntry = serde_json::from_value(json!({"created_by": "RUN x"})).unwrap();
    assert_eq!(
        serde_json::to_value(&h).unwrap(),
        json!({"created_by": "RUN x"})
    );
}

#[test]
fn top_keeps_dockers_capitals() {
    let top = Top {
        titles: vec!["PID".into()],
        processes: vec![vec!["1".into()]],
    };
    assert_eq!(
        serde_json::to_value(&top).unwrap(),
        json!({"Titles": ["PID"], "Processes": [["1"]]})
    );
}
