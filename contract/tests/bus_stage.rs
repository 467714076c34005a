//! The shared stage loop against a real nats-server: good batches are processed and
//! acked after their outputs are stored, a garbage message goes to the DLQ with a reason,
//! and the stage carries on; the same whether decoding runs inline, in a task of its
//! own, or message by message (`Stage::process_each`), where a failure in one message
//! brings its whole pulled batch back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use lanner_contract::bus::shutdown::Shutdown;
use lanner_contract::bus::stage::{Decoder, Delivery, Stage, StageConfig, StageStats, run_stage};
use lanner_contract::bus::{Outgoing, StreamSettings, ensure_streams, publish};
use lanner_contract::subjects::{self, CONTENT_EVENT_BATCH, HDR_DLQ_REASON, HDR_DLQ_SEQ};
use lanner_contract::{Event, codec};
use lanner_tests::{Nats, collect, unique};

/// How the stage loop hands messages to the stage.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Decode a pulled batch, then process it.
    Inline,
    /// Decode in a task of its own ([`Stage::decoder`]).
    Pipelined,
    /// Process each message as soon as it is decoded ([`Stage::process_each`]).
    Each,
}

/// Passes events through, tagging them, like a minimal enricher.
struct Tagger {
    node: String,
    mode: Mode,
    /// Fail processing, once, on a batch holding an event whose id starts with "b".
    fail_once_on_b: Arc<AtomicBool>,
    /// The most messages handed to one `process` call.
    most_at_once: Arc<AtomicUsize>,
}

impl Tagger {
    fn new(node: &str, mode: Mode) -> Self {
        Tagger {
            node: node.to_owned(),
            mode,
            fail_once_on_b: Arc::new(AtomicBool::new(false)),
            most_at_once: Arc::new(AtomicUsize::new(0)),
        }
    }
}

fn decode(payload: &[u8]) -> Result<Vec<Event>, String> {
    codec::decode_batch(payload).map_err(|e| e.to_string())
}

impl Stage for Tagger {
    type Input = Vec<Event>;

    fn decode(
        &mut self,
        _: &str,
        _: Option<&async_nats::HeaderMap>,
        payload: &[u8],
    ) -> Result<Vec<Event>, String> {
        decode(payload)
    }

    fn decoder(&self) -> Option<Decoder<Vec<Event>>> {
        (self.mode == Mode::Pipelined).then(|| {
            Box::new(|_: &str, _: Option<&async_nats::HeaderMap>, p: &[u8]| decode(p)) as _
        })
    }

    fn process_each(&self) -> bool {
        self.mode == Mode::Each
    }

    async fn process(&mut self, batch: Vec<Delivery<Vec<Event>>>) -> anyhow::Result<Vec<Outgoing>> {
        self.most_at_once.fetch_max(batch.len(), Ordering::Relaxed);
        let has_b = batch
            .iter()
            .flat_map(|d| &d.value)
            .any(|e| e.evt_id.as_deref().is_some_and(|id| id.starts_with('b')));
        if has_b && self.fail_once_on_b.swap(false, Ordering::Relaxed) {
            anyhow::bail!("planted failure");
        }
        Ok(batch
            .into_iter()
            .map(|d| {
                let events: Vec<Event> = d
                    .value
                    .into_iter()
                    .map(|mut e| {
                        e.container_name = Some("tagged".into());
                        e
                    })
                    .collect();
                Outgoing {
                    subject: subjects::events(&self.node),
                    payload: codec::encode_batch(&events).into(),
                    msg_id: format!("tagger:{}", d.stream_seq),
                    content: CONTENT_EVENT_BATCH,
                }
            })
            .collect())
    }
}

fn batch(n: usize, tag: &str) -> Vec<Event> {
    (0..n)
        .map(|i| Event {
            evt_id: Some(format!("{tag}-{i}").into()),
            evt_type: Some("openat".into()),
            ..Default::default()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_goes_to_the_dlq_and_good_messages_around_it_are_processed() {
    garbage_to_the_dlq(Mode::Inline, false).await;
}

/// The same with decoding in its own task, one message per batch: batches keep their
/// order, and everything is acked by the time the stage stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_holds_when_decoding_runs_beside_processing() {
    garbage_to_the_dlq(Mode::Pipelined, false).await;
}

/// The same with each message processed as soon as it is decoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_holds_when_each_message_is_processed_alone() {
    garbage_to_the_dlq(Mode::Each, false).await;
}

/// Processing each message alone, a failure on the last good one naks its pulled batch,
/// and nothing the batch produced before the failure is published: every output still
/// comes out once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_brings_back_the_whole_batch_when_each_message_is_processed_alone() {
    garbage_to_the_dlq(Mode::Each, true).await;
}

/// A nats-server of the test's own, and a JetStream context on it with lanner's streams.
async fn bus() -> (Nats, jetstream::Context) {
    let nats = Nats::start();
    let js = jetstream::new(async_nats::connect(&nats.url).await.expect("connect"));
    ensure_streams(&js, &StreamSettings::default())
        .await
        .expect("streams");
    (nats, js)
}

/// Publishes a good batch, garbage and another good batch; runs the stage in `mode`
/// (failing once on the second good batch with `fail_once`) and checks what comes out.
async fn garbage_to_the_dlq(mode: Mode, fail_once: bool) {
    let (_nats, js) = bus().await;
    let node = unique("dlq");
    let stage_name = unique("tagger");

    let send = |payload: Vec<u8>, id: &str| Outgoing {
        subject: subjects::raw(&node),
        payload: payload.into(),
        msg_id: format!("{node}-{id}"),
        content: CONTENT_EVENT_BATCH,
    };
    let inputs = vec![
        send(codec::encode_batch(&batch(3, "a")), "1"),
        send(b"this is not an event batch".to_vec(), "2"),
        send(codec::encode_batch(&batch(2, "b")), "3"),
    ];
    publish::publish_all(&js, inputs)
        .await
        .expect("inputs stored");

    let shutdown = Shutdown::new();
    let stats = Arc::new(StageStats::default());
    let mut cfg = StageConfig::new(
        &stage_name,
        subjects::RAW.name,
        &stage_name,
        &subjects::raw(&node),
    );
    if mode == Mode::Pipelined {
        cfg.batch_max = 1;
    }
    let tagger = Tagger::new(&node, mode);
    tagger.fail_once_on_b.store(fail_once, Ordering::Relaxed);
    let (failing, most_at_once) = (tagger.fail_once_on_b.clone(), tagger.most_at_once.clone());
    let task = tokio::spawn(run_stage(
        js.clone(),
        cfg,
        tagger,
        shutdown.clone(),
        stats.clone(),
    ));

    let outs = collect(
        &js,
        subjects::EVENTS.name,
        &subjects::events(&node),
        2,
        Duration::from_secs(20),
    )
    .await;
    let events: Vec<Event> = outs
        .iter()
        .flat_map(|m| codec::decode_batch(&m.payload).expect("valid output"))
        .collect();
    let ids: Vec<&str> = events.iter().filter_map(|e| e.evt_id.as_deref()).collect();
    assert_eq!(ids, ["a-0", "a-1", "a-2", "b-0", "b-1"]);
    assert!(
        events
            .iter()
            .all(|e| e.container_name.as_deref() == Some("tagged"))
    );

    let dead = collect(
        &js,
        subjects::DLQ.name,
        &subjects::dlq(&stage_name),
        1,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(dead.len(), 1);
    let headers = dead[0].headers.as_ref().expect("dead letter headers");
    let reason = headers.get(HDR_DLQ_REASON).expect("reason header").as_str();
    assert!(reason.contains("bad magic"), "reason: {reason}");
    assert_eq!(
        headers.get(HDR_DLQ_SEQ).map(|v| v.as_str().is_empty()),
        Some(false)
    );
    assert_eq!(&dead[0].payload[..], b"this is not an event batch");

    shutdown.trigger();
    task.await.expect("stage task").expect("stage ran cleanly");
    assert_eq!(StageStats::get(&stats.dead_lettered), 1);
    assert_eq!(StageStats::get(&stats.acked), 3);
    assert_eq!(StageStats::get(&stats.published), 2);
    if mode == Mode::Each {
        assert_eq!(most_at_once.load(Ordering::Relaxed), 1);
    }
    if fail_once {
        assert!(!failing.load(Ordering::Relaxed), "the planted failure ran");
        assert_eq!(StageStats::get(&stats.failed_batches), 1);
        assert!(StageStats::get(&stats.received) > 3, "redelivered");
    } else {
        assert_eq!(StageStats::get(&stats.failed_batches), 0);
    }
    // Outputs are published only once a whole batch went through.
    assert_eq!(StageStats::get(&stats.duplicates), 0);

    // Everything was acked: a restarted stage on the same durable gets nothing new.
    let consumer = lanner_contract::bus::stage::open_consumer(
        &js,
        &StageConfig::new(
            &stage_name,
            subjects::RAW.name,
            &stage_name,
            &subjects::raw(&node),
        ),
    )
    .await
    .expect("consumer");
    let mut consumer = consumer;
    let info = consumer.info().await.expect("consumer info");
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.num_pending, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_streams_is_idempotent_and_applies_new_retention() {
    let nats = Nats::spawn();
    let js = jetstream::new(async_nats::connect(&nats.url).await.expect("connect"));
    let mut settings = StreamSettings::default();
    ensure_streams(&js, &settings).await.expect("create");
    ensure_streams(&js, &settings).await.expect("again");
    settings.max_age_secs = 3600;
    ensure_streams(&js, &settings).await.expect("update");
    let mut stream = js.get_stream(subjects::RAW.name).await.expect("raw");
    let info = stream.info().await.expect("info");
    assert_eq!(info.config.max_age, Duration::from_secs(3600));
    assert_eq!(info.config.subjects, vec!["lanner.raw.>".to_owned()]);
}

/// Shutdown while many batches are being processed and their outputs published: when
/// `run_stage` returns, every message it took was settled (its outputs stored, then
/// acked); none is left waiting for its outputs' acks in the background. A second run
/// on the same durable then finishes the stream, and every input came out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_settles_every_batch_in_flight() {
    for mode in [Mode::Inline, Mode::Each, Mode::Pipelined] {
        let (_nats, js) = bus().await;
        let node = unique("shutdown");
        let stage_name = unique("tagger");
        let inputs: Vec<Outgoing> = (0..300)
            .map(|i| Outgoing {
                subject: subjects::raw(&node),
                payload: codec::encode_batch(&batch(20, &format!("m{i}"))).into(),
                msg_id: format!("{node}-{i}"),
                content: CONTENT_EVENT_BATCH,
            })
            .collect();
        publish::publish_all(&js, inputs)
            .await
            .expect("inputs stored");
        let mut cfg = StageConfig::new(
            &stage_name,
            subjects::RAW.name,
            &stage_name,
            &subjects::raw(&node),
        );
        cfg.batch_max = 8;
        // Messages pulled but not yet handed to the stage at shutdown come back after
        // this.
        cfg.ack_wait = Duration::from_secs(2);

        let shutdown = Shutdown::new();
        let stats = Arc::new(StageStats::default());
        let task = tokio::spawn(run_stage(
            js.clone(),
            cfg.clone(),
            Tagger::new(&node, mode),
            shutdown.clone(),
            stats.clone(),
        ));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while StageStats::get(&stats.acked) < 20 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        shutdown.trigger();
        task.await.expect("stage task").expect("stage ran cleanly");
        let (received, acked) = (
            StageStats::get(&stats.received),
            StageStats::get(&stats.acked),
        );
        assert!(acked >= 20, "{mode:?}: the stage ran ({acked} acked)");
        // Pipelined, a batch decoded but not yet processed at shutdown is nak'ed.
        if mode != Mode::Pipelined {
            assert_eq!(acked, received, "{mode:?}: every message taken was settled");
        }
        assert_eq!(
            StageStats::get(&stats.published) + StageStats::get(&stats.duplicates),
            acked,
            "{mode:?}: every acked input's output was stored"
        );

        // The rest, by a second run.
        let shutdown = Shutdown::new();
        let task = tokio::spawn(run_stage(
            js.clone(),
            cfg,
            Tagger::new(&node, mode),
            shutdown.clone(),
            Arc::new(StageStats::default()),
        ));
        let outs = collect(
            &js,
            subjects::EVENTS.name,
            &subjects::events(&node),
            300,
            Duration::from_secs(30),
        )
        .await;
        shutdown.trigger();
        task.await.expect("stage task").expect("stage ran cleanly");
        let mut firsts: Vec<String> = outs
            .iter()
            .map(|m| {
                let events = codec::decode_batch(&m.payload).expect("valid output");
                events[0].evt_id.as_deref().unwrap_or("").to_owned()
            })
            .collect();
        firsts.sort();
        firsts.dedup();
        assert_eq!(firsts.len(), 300, "{mode:?}: every input came out once");
    }
}
