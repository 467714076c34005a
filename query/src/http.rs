//! The HTTP API: `POST /v1/query` with `{"sql": "...", "format": "..."}`, answering JSON
//! rows by default, or NDJSON, CSV, Arrow IPC, Parquet or an aligned table, chosen by
//! the `format` field or the `Accept` header. Errors are JSON
//! (`{"error": "...", "kind": "bad_sql"}`) with status 400 (401 without the bearer
//! token, when one is configured). `GET /metrics` and `GET /healthz` are served on the
//! same address, without the token.
//!
//! `POST /v1/hunt` runs a retro-hunt ([`crate::hunt`]): the body is
//! `{"rules": "<Falco rules YAML>", "since": "2h", "until": "", "rule_matching":
//! "first", "min_priority": "debug"}` (only `rules` and `since` are required) and the
//! answer is the alerts as NDJSON (Falco's JSON, one per line), with the number of
//! events judged in `x-lanner-events`. Rules are sent, never read from the server's
//! disk.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::engine::{Engine, ErrorKind};
use crate::format::{self, Format};
use crate::metrics::{Client, Metrics};

#[derive(Clone)]
struct AppState {
    engine: Engine,
    token: Option<Arc<str>>,
    metrics: Arc<Metrics>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryBody {
    sql: String,
    #[serde(default)]
    format: Option<String>,
}

/// The API's routes. `token`: the bearer token `POST /v1/query` requires, if any.
pub fn router(engine: Engine, token: Option<String>, metrics: Arc<Metrics>) -> Router {
    let state = AppState {
        engine,
        token: token.filter(|t| !t.is_empty()).map(Arc::from),
        metrics,
    };
    Router::new()
        .route("/v1/query", post(query))
        .route("/v1/hunt", post(hunt))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state)
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": message, "kind": kind }).to_string();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Compares in time independent of where the strings differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(token) = &state.token else {
        return true;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| same_secret(given.trim().as_bytes(), token.as_bytes()))
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn query(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&state, &headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token (Authorization: Bearer <token>)",
        );
    }
    let req: QueryBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("the body must be JSON {{\"sql\": \"...\", \"format\": \"json\"}}: {e}"),
            );
        }
    };
    let format = match req.format.as_deref() {
        Some(f) => match f.parse::<Format>() {
            Ok(f) => f,
            Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", &e),
        },
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .and_then(Format::from_accept)
            .unwrap_or(Format::Json),
    };
    let start = Instant::now();
    let result = match state.engine.collect(&req.sql).await {
        Ok(r) => r,
        Err(e) => {
            state.metrics.query(Client::Http, Err(e.kind));
            let level_warn = e.kind == ErrorKind::Execution;
            if level_warn {
                tracing::warn!(error = %e.message, "query failed");
            } else {
                tracing::debug!(error = %e.message, "query refused");
            }
            return error(StatusCode::BAD_REQUEST, e.kind.name(), &e.message);
        }
    };
    let rows = result.num_rows();
    let encoded = tokio::task::spawn_blocking(move || {
        format::to_bytes(format, &result.schema, &result.batches)
    })
    .await;
    let bytes = match encoded {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            state.metrics.query(Client::Http, Err(ErrorKind::Execution));
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "execution",
                &e.to_string(),
            );
        }
        Err(e) => {
            state.metrics.query(Client::Http, Err(ErrorKind::Execution));
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "execution",
                &e.to_string(),
            );
        }
    };
    state.metrics.query(Client::Http, Ok(()));
    state.metrics.finished(Client::Http, rows, start.elapsed());
    let mut resp = (StatusCode::OK, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert("x-lanner-rows", HeaderValue::from(rows as u64));
    resp
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HuntBody {
    rules: String,
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    rule_matching: Option<String>,
    #[serde(default)]
    min_priority: Option<String>,
    #[serde(default)]
    append_output: Option<String>,
}

async fn hunt(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    use crate::hunt::{self, Hunt, HuntError, Window};
    use lanner_engine::rules::Matching;
    if !authorized(&state, &headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token (Authorization: Bearer <token>)",
        );
    }
    let req: HuntBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!(
                    "the body must be JSON {{\"rules\": \"<yaml>\", \"since\": \"2h\", \"until\": \"\"}}: {e}"
                ),
            );
        }
    };
    let matching = match req.rule_matching.as_deref() {
        None | Some("first") => Matching::First,
        Some("all") => Matching::All,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("rule_matching: {other:?} is neither \"first\" nor \"all\""),
            );
        }
    };
    let min_priority = match req
        .min_priority
        .as_deref()
        .map(lanner_engine::rules::Priority::parse_arg)
    {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, "bad_request", &e),
    };
    let window = match Window::parse(&req.since, &req.until, chrono::Utc::now()) {
        Ok(w) => w,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", &e.to_string()),
    };
    let append = req
        .append_output
        .as_deref()
        .unwrap_or(lanner_engine::DEFAULT_APPEND_OUTPUT);
    let rules = match hunt::load_rules(&[("request", &req.rules)], append, min_priority) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_rules", &e.to_string()),
    };
    let start = Instant::now();
    let engine = state.engine.clone();
    let task = tokio::spawn(async move {
        hunt::run(
            &engine,
            Hunt {
                rules: &rules,
                matching,
                window,
            },
        )
        .await
    });
    let found = match task.await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            let (status, kind) = match &e {
                HuntError::Limit(_) => (StatusCode::BAD_REQUEST, ErrorKind::Limit),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::Execution),
            };
            state.metrics.query(Client::Http, Err(kind));
            tracing::warn!(error = %e, "hunt failed");
            return error(status, kind.name(), &e.to_string());
        }
        Err(e) => {
            state.metrics.query(Client::Http, Err(ErrorKind::Execution));
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "execution",
                &format!("hunt task failed: {e}"),
            );
        }
    };
    let mut body = Vec::new();
    for a in &found.alerts {
        if serde_json::to_writer(&mut body, a).is_ok() {
            body.push(b'\n');
        }
    }
    state.metrics.query(Client::Http, Ok(()));
    state
        .metrics
        .finished(Client::Http, found.alerts.len(), start.elapsed());
    tracing::info!(
        events = found.events,
        alerts = found.alerts.len(),
        took = ?found.elapsed,
        "hunt"
    );
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    h.insert("x-lanner-events", HeaderValue::from(found.events));
    h.insert(
        "x-lanner-rows",
        HeaderValue::from(found.alerts.len() as u64),
    );
    resp
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
