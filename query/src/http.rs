//! The HTTP API: `POST /v1/query` with `{"sql": "...", "format": "..."}`, answering JSON
//! rows by default, or NDJSON, CSV, Arrow IPC, Parquet or an aligned table, chosen by
//! the `format` field or the `Accept` header. Errors are JSON
//! (`{"error": "...", "kind": "bad_sql"}`) with status 400 (401 without the bearer
//! token, when one is configured). `GET /metrics` and `GET /healthz` are served on the
//! same address, without the token.

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
