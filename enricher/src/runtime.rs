//! The Docker Engine API over its unix socket: inspecting one container, and following
//! the engine's event stream so the cache learns of containers as they are created.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::EventsOptionsBuilder;
use futures::StreamExt;
use tokio::sync::OnceCell;

use crate::meta::ContainerMeta;

/// Why a lookup found nothing.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine could not be reached or answered with an error.
    #[error("docker engine at {socket}: {source}")]
    Engine {
        /// Socket path.
        socket: String,
        /// What bollard said.
        #[source]
        source: bollard::errors::Error,
    },
}

/// A client of one Docker engine.
#[derive(Clone, Debug)]
pub struct DockerRuntime {
    /// The client at the API version the engine speaks, once it answered.
    negotiated: Arc<OnceCell<Docker>>,
    socket: String,
}

/// The short (12 hex) form of a container id, as events carry it.
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

impl DockerRuntime {
    /// A client of the engine at `socket`. Nothing is connected until the first request,
    /// so an engine that starts later is still found.
    pub fn new(socket: &str) -> Self {
        DockerRuntime {
            negotiated: Arc::default(),
            socket: socket.to_owned(),
        }
    }

    /// The bollard client at the API version the engine speaks (negotiated once; engines
    /// range from API 1.41 on Debian's 20.10 to newer ones that refuse old versions).
    pub async fn docker(&self) -> Result<Docker, RuntimeError> {
        self.negotiated
            .get_or_try_init(|| async {
                Docker::connect_with_unix(&self.socket, 10, bollard::API_DEFAULT_VERSION)?
                    .negotiate_version()
                    .await
            })
            .await
            .cloned()
            .map_err(|e| self.err(e))
    }

    fn err(&self, source: bollard::errors::Error) -> RuntimeError {
        RuntimeError::Engine {
            socket: self.socket.clone(),
            source,
        }
    }

    /// Inspects a container (full or short id, or name); `Ok(None)` when the engine does not know it.
    pub async fn inspect(&self, id: &str) -> Result<Option<ContainerMeta>, RuntimeError> {
        let docker = self.docker().await?;
        let c = match docker.inspect_container(id, None).await {
            Ok(c) => c,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let image = match c.image.as_deref() {
            Some(img) => docker.inspect_image(img).await.ok(),
            None => None,
        };
        Ok(Some(ContainerMeta::from_inspect(&c, image.as_ref())))
    }

    /// Follows container lifecycle events, calling `on_event(full_id, action)` for each;
    /// reconnects (after `retry`) when the stream breaks or the engine is absent. Never returns.
    pub async fn follow_events<F, Fut>(&self, retry: Duration, mut on_event: F)
    where
        F: FnMut(String, String) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        loop {
            let filters = HashMap::from([
                ("type".to_owned(), vec!["container".to_owned()]),
                (
                    "event".to_owned(),
                    ["create", "start", "rename", "update"]
                        .map(str::to_owned)
                        .to_vec(),
                ),
            ]);
            let opts = EventsOptionsBuilder::new().filters(&filters).build();
            let docker = match self.docker().await {
                Ok(d) => d,
                Err(e) => {
                    tracing::debug!(error = %e, "docker engine not reachable; retrying");
                    tokio::time::sleep(retry).await;
                    continue;
                }
            };
            let mut stream = docker.events(Some(opts));
            while let Some(item) = stream.next().await {
                match item {
                    Ok(ev) => {
                        if let (Some(id), Some(action)) = (ev.actor.and_then(|a| a.id), ev.action) {
                            on_event(id, action).await;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(socket = %self.socket, error = %e, "docker event stream failed");
                        break;
                    }
                }
            }
            tokio::time::sleep(retry).await;
        }
    }
}
