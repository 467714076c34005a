//! The container runtimes the enricher asks: Docker and containerd, each optional. A
//! lookup asks all of them at once and takes the first that knows the container (Docker
//! first); each one's event stream keeps the cache current.

use std::time::Duration;

use crate::containerd::ContainerdRuntime;
use crate::containerd::grpc::GrpcError;
use crate::docker::DockerRuntime;
use crate::meta::ContainerMeta;

/// Why a lookup found nothing.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The Docker engine could not be reached or answered with an error.
    #[error("docker engine at {socket}: {source}")]
    Docker {
        /// Socket path.
        socket: String,
        /// What bollard said.
        #[source]
        source: bollard::errors::Error,
    },
    /// containerd could not be reached or answered with an error.
    #[error("containerd at {socket}: {source}")]
    Containerd {
        /// Socket path.
        socket: String,
        /// What the call said.
        #[source]
        source: GrpcError,
    },
}

/// The short (12 hex) form of a container id, as events carry it.
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// One runtime.
#[derive(Clone, Debug)]
pub enum Runtime {
    /// The Docker Engine API.
    Docker(DockerRuntime),
    /// containerd's API, one namespace.
    Containerd(ContainerdRuntime),
}

impl Runtime {
    /// Inspects a container; `Ok(None)` when the runtime does not know it.
    pub async fn inspect(&self, id: &str) -> Result<Option<ContainerMeta>, RuntimeError> {
        match self {
            Runtime::Docker(d) => d.inspect(id).await,
            Runtime::Containerd(c) => c.inspect(id).await,
        }
    }

    /// Follows the runtime's container events, calling `on_event(id, what)` for each.
    pub async fn follow_events<F, Fut>(&self, retry: Duration, on_event: F)
    where
        F: FnMut(String, String) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        match self {
            Runtime::Docker(d) => d.follow_events(retry, on_event).await,
            Runtime::Containerd(c) => c.follow_events(retry, on_event).await,
        }
    }
}

/// The runtimes of this node, in order of preference (cheap to clone).
#[derive(Clone, Debug, Default)]
pub struct Runtimes {
    list: Vec<Runtime>,
}

impl Runtimes {
    /// Docker at `docker` and containerd at `containerd` (namespace `namespace`), each when given.
    pub fn new(docker: Option<&str>, containerd: Option<(&str, &str)>) -> Self {
        let mut list = Vec::new();
        if let Some(socket) = docker {
            list.push(Runtime::Docker(DockerRuntime::new(socket)));
        }
        if let Some((socket, namespace)) = containerd {
            list.push(Runtime::Containerd(ContainerdRuntime::new(
                socket, namespace,
            )));
        }
        Runtimes { list }
    }

    /// No runtime at all.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The runtimes.
    pub fn iter(&self) -> impl Iterator<Item = &Runtime> {
        self.list.iter()
    }

    /// The Docker engine, if configured.
    pub fn docker(&self) -> Option<&DockerRuntime> {
        self.list.iter().find_map(|r| match r {
            Runtime::Docker(d) => Some(d),
            Runtime::Containerd(_) => None,
        })
    }

    /// containerd, if configured.
    pub fn containerd(&self) -> Option<&ContainerdRuntime> {
        self.list.iter().find_map(|r| match r {
            Runtime::Containerd(c) => Some(c),
            Runtime::Docker(_) => None,
        })
    }

    /// Asks every runtime at once: the first (in order) that knows the container answers.
    /// `Ok(None)` when one runtime answered that it does not know it (another one being
    /// absent is then no error: a Docker host need not run containerd, nor a Kubernetes
    /// node Docker); an error only when every runtime failed.
    pub async fn inspect(&self, id: &str) -> Result<Option<ContainerMeta>, RuntimeError> {
        let answers = futures::future::join_all(self.list.iter().map(|r| r.inspect(id))).await;
        let mut error = None;
        let mut answered = false;
        for a in answers {
            match a {
                Ok(Some(meta)) => return Ok(Some(meta)),
                Ok(None) => answered = true,
                Err(e) => {
                    tracing::trace!(container = id, error = %e, "runtime lookup failed");
                    error.get_or_insert(e);
                }
            }
        }
        match error {
            Some(e) if !answered => Err(e),
            _ => Ok(None),
        }
    }
}
