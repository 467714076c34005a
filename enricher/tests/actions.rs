//! Response actions against a real Docker engine: pause and kill take effect (checked
//! through the engine) and are audited; an exempt container is refused and audited; a
//! container that does not exist is reported gone; containers only containerd knows (a
//! Kubernetes node on containerd) are paused, stopped and killed through its Tasks API; and the "done when": a fresh
//! container's exec event is enriched, a pause request pauses it and is audited.

#![allow(clippy::unwrap_used)]

mod common;

use common::{
    CtrContainer, IMAGE_REPO, IMAGE_TAG, ctr, docker, docker_engine, request_actions, start,
};
use lanner_enricher::actions::Outcome;

fn run_sleeper(extra: &[&str]) -> String {
    let name = lanner_tests::unique("lanner-enr-act");
    let image = format!("{IMAGE_REPO}:{IMAGE_TAG}");
    let mut args = vec!["run", "-d", "--name", &name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[&image, "/bin/sleep", "120"]);
    docker(&args);
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_kill_take_effect_exempt_is_refused_and_all_are_audited() {
    let Some(socket) = docker_engine() else {
        return;
    };
    let to_pause = run_sleeper(&[]);
    let to_kill = run_sleeper(&[]);
    let exempt = run_sleeper(&["--label", "lanner.exempt=true"]);
    let pause_id = docker(&["inspect", "--format", "{{.Id}}", &to_pause]);

    let enr = start(&socket).await;
    let requests = [
        ("r-pause", "pause", &pause_id[..12]),
        ("r-kill", "kill", to_kill.as_str()),
        ("r-exempt", "kill", exempt.as_str()),
        ("r-gone", "stop", "0000deadbeef"),
    ];
    let records = request_actions(&enr, &requests).await;
    let inspect = |name: &str, what: &str| docker(&["inspect", "--format", what, name]);
    let paused = inspect(&to_pause, "{{.State.Paused}}");
    let killed_running = inspect(&to_kill, "{{.State.Running}}");
    let exempt_running = inspect(&exempt, "{{.State.Running}}");
    for c in [&to_pause, &to_kill, &exempt] {
        docker(&["rm", "-f", c]);
    }
    enr.stop().await;

    assert_eq!(
        records.len(),
        requests.len(),
        "one audit record per request: {records:?}"
    );
    let outcome = |id: &str| {
        let r = records
            .iter()
            .find(|r| r.request.id == id)
            .unwrap_or_else(|| panic!("audit of {id}"));
        (r.outcome, r.container_name.clone())
    };
    assert_eq!(outcome("r-pause"), (Outcome::Done, Some(to_pause.clone())));
    assert_eq!(paused, "true");
    assert_eq!(outcome("r-kill"), (Outcome::Done, Some(to_kill.clone())));
    assert_eq!(killed_running, "false");
    assert_eq!(
        outcome("r-exempt"),
        (Outcome::Refused, Some(exempt.clone()))
    );
    assert_eq!(exempt_running, "true");
    assert_eq!(outcome("r-gone").0, Outcome::Gone);
    let pause = records.iter().find(|r| r.request.id == "r-pause").unwrap();
    assert_eq!(
        pause.request.rule.as_deref(),
        Some("Terminal shell in container")
    );
    assert_eq!(pause.request.alert_id.as_deref(), Some("a-r-pause"));
    assert!(!pause.time.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_only_containers_are_acted_on_through_its_tasks_api() {
    let Some(socket) = docker_engine() else {
        return;
    };
    // Created through containerd in `k8s.io`, as the CRI plugin does: Docker does not
    // know them.
    let to_pause = CtrContainer::run(&[("io.kubernetes.container.name", "web")]);
    let to_stop = CtrContainer::run(&[]);
    let to_kill = CtrContainer::run(&[]);
    let exempt = CtrContainer::run(&[("lanner.exempt", "true")]);
    let enr = start(&socket).await;
    let requests = [
        ("c-pause", "pause", &to_pause.id[..12]),
        ("c-pause-again", "pause", &to_pause.id[..12]),
        // `sleep` as pid 1 ignores SIGTERM: the stop must escalate to SIGKILL after the
        // grace period (1 s in these tests).
        ("c-stop", "stop", to_stop.id.as_str()),
        ("c-kill", "kill", &to_kill.id[..12]),
        ("c-kill-again", "kill", &to_kill.id[..12]),
        ("c-exempt", "kill", &exempt.id[..12]),
    ];
    let records = request_actions(&enr, &requests).await;
    let status = |id: &str| {
        ctr(&["tasks", "ls"])
            .lines()
            .find(|l| l.starts_with(id))
            .and_then(|l| l.split_whitespace().nth(2))
            .map(str::to_owned)
    };
    let (paused, stopped, killed, exempt_status) = (
        status(&to_pause.id),
        status(&to_stop.id),
        status(&to_kill.id),
        status(&exempt.id),
    );
    enr.stop().await;

    let outcome = |id: &str| {
        let r = records
            .iter()
            .find(|r| r.request.id == id)
            .unwrap_or_else(|| panic!("audit of {id} in {records:?}"));
        (r.outcome, r.container_name.clone(), r.detail.clone())
    };
    assert_eq!(
        outcome("c-pause"),
        (Outcome::Done, Some("web".to_owned()), String::new())
    );
    assert_eq!(paused.as_deref(), Some("PAUSED"));
    assert_eq!(outcome("c-pause-again").0, Outcome::AlreadyDone);
    assert_eq!(outcome("c-stop").0, Outcome::Done);
    assert_eq!(stopped.as_deref(), Some("STOPPED"));
    assert_eq!(outcome("c-kill").0, Outcome::Done);
    assert_eq!(killed.as_deref(), Some("STOPPED"));
    assert_eq!(outcome("c-kill-again").0, Outcome::AlreadyDone);
    assert_eq!(outcome("c-exempt").0, Outcome::Refused);
    assert_eq!(exempt_status.as_deref(), Some("RUNNING"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_audits_without_acting_and_lanner_containers_are_refused() {
    let Some(socket) = docker_engine() else {
        return;
    };
    let target = run_sleeper(&[]);
    let own = run_sleeper(&["--label", "lanner.component=enricher"]);
    let enr = common::start_with(&socket, |a| a.dry_run = true).await;
    let records = request_actions(
        &enr,
        &[
            ("d-pause", "pause", target.as_str()),
            ("d-own", "pause", own.as_str()),
        ],
    )
    .await;
    let paused = docker(&["inspect", "--format", "{{.State.Paused}}", &target]);
    for c in [&target, &own] {
        docker(&["rm", "-f", c]);
    }
    enr.stop().await;
    let outcome = |id: &str| {
        records
            .iter()
            .find(|r| r.request.id == id)
            .map(|r| r.outcome)
    };
    assert_eq!(outcome("d-pause"), Some(Outcome::DryRun));
    assert_eq!(paused, "false", "dry-run must not pause");
    assert_eq!(outcome("d-own"), Some(Outcome::Refused));
}

/// The "done when": on a Docker host, the events of an exec into a container that
/// has just started carry its name, image and labels, and a pause request pauses it and
/// leaves an audit record. The enricher runs before the container exists, as on a node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_containers_exec_is_enriched_and_a_pause_request_pauses_it_with_an_audit() {
    let Some(socket) = docker_engine() else {
        return;
    };
    let enr = start(&socket).await;
    let name = lanner_tests::unique("lanner-enr-fresh");
    let image = format!("{IMAGE_REPO}:{IMAGE_TAG}");
    let id = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        "app=fresh",
        &image,
        "/bin/sleep",
        "120",
    ]);
    let started = std::time::Instant::now();
    docker(&["exec", &name, "/bin/true"]);
    // The sensor's event of that exec (the sensor is not part of this test).
    let mut exec = common::event(&id[..12], "execve");
    exec.proc_name = Some("true".into());
    enr.publish(&[exec]).await;
    let out = enr.enriched(1).await;
    let seen_after = started.elapsed();

    let audits = request_actions(&enr, &[("fresh-pause", "pause", &id[..12])]).await;
    let paused = docker(&["inspect", "--format", "{{.State.Paused}}", &name]);
    docker(&["rm", "-f", &name]);
    enr.stop().await;
    // A figure, not an assertion: how long after `docker run` returned the enriched event
    // was read back (exec and NATS round trips included).
    eprintln!("enriched exec event read {seen_after:?} after the container started");

    let ev = &out[0];
    assert_eq!(ev.container_name.as_deref(), Some(name.as_str()));
    assert_eq!(ev.container_image.as_deref(), Some(image.as_str()));
    assert_eq!(ev.container_image_repository.as_deref(), Some(IMAGE_REPO));
    assert_eq!(
        ev.container_labels
            .as_ref()
            .and_then(|l| l.get("app"))
            .map(|v| &**v),
        Some("fresh")
    );
    assert_eq!(paused, "true", "the pause request must pause the container");
    assert_eq!(audits.len(), 1);
    let rec = &audits[0];
    assert_eq!(rec.request.id, "fresh-pause");
    assert_eq!(rec.outcome, Outcome::Done);
    assert_eq!(rec.container_name.as_deref(), Some(name.as_str()));
    assert_eq!(
        rec.request.rule.as_deref(),
        Some("Terminal shell in container")
    );
    assert!(!rec.time.is_empty());
}
