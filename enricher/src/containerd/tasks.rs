//! containerd's Tasks service, for response actions on containers Docker does not know
//! (Kubernetes nodes on containerd): a task's state, pause, resume and signals. A task is
//! the running process tree of a container; a container without one is not running.

use std::time::Duration;

use super::ContainerdRuntime;
use super::grpc::{GrpcError, NOT_FOUND};
use super::proto::{self, DecodeError, fields};
use crate::runtime::RuntimeError;

const TASKS: &str = "/containerd.services.tasks.v1.Tasks";

/// `SIGTERM`, what a stop sends first.
pub const SIGTERM: u32 = 15;
/// `SIGKILL`.
pub const SIGKILL: u32 = 9;

/// A task's status (`containerd.v1.types.Status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskStatus {
    /// Unknown to containerd.
    Unknown,
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Exited, not yet deleted.
    Stopped,
    /// Frozen.
    Paused,
    /// Being frozen.
    Pausing,
}

impl TaskStatus {
    fn from_wire(v: u64) -> TaskStatus {
        match v {
            1 => TaskStatus::Created,
            2 => TaskStatus::Running,
            3 => TaskStatus::Stopped,
            4 => TaskStatus::Paused,
            5 => TaskStatus::Pausing,
            _ => TaskStatus::Unknown,
        }
    }

    /// Whether the container's processes are alive (running or frozen).
    pub fn is_alive(self) -> bool {
        matches!(
            self,
            TaskStatus::Running | TaskStatus::Paused | TaskStatus::Pausing
        )
    }

    /// Whether the task is frozen or being frozen.
    pub fn is_paused(self) -> bool {
        matches!(self, TaskStatus::Paused | TaskStatus::Pausing)
    }
}

/// The status in a `GetResponse` (`process` = 1, its `status` = 4).
fn status_in_get_response(buf: &[u8]) -> Result<TaskStatus, DecodeError> {
    let mut status = TaskStatus::Unknown;
    for f in fields(buf) {
        if let (1, process) = f? {
            for p in fields(process.bytes()?) {
                if let (4, s) = p? {
                    status = TaskStatus::from_wire(s.varint()?);
                }
            }
        }
    }
    Ok(status)
}

impl ContainerdRuntime {
    async fn tasks_call(&self, method: &str, body: &[u8]) -> Result<bytes::Bytes, GrpcError> {
        self.grpc.unary(&format!("{TASKS}/{method}"), body).await
    }

    /// The status of the container's task; `Ok(None)` when it has none (not running).
    pub async fn task_status(
        &self,
        container_id: &str,
    ) -> Result<Option<TaskStatus>, RuntimeError> {
        let mut req = Vec::new();
        proto::put_bytes(&mut req, 1, container_id.as_bytes());
        match self.tasks_call("Get", &req).await {
            Ok(resp) => status_in_get_response(&resp)
                .map(Some)
                .map_err(|e| self.err(GrpcError::Protocol(e.to_string()))),
            Err(e) if e.code() == Some(NOT_FOUND) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Freezes the container's task.
    pub async fn pause(&self, container_id: &str) -> Result<(), RuntimeError> {
        self.on_task("Pause", container_id).await
    }

    /// Thaws the container's task.
    pub async fn resume(&self, container_id: &str) -> Result<(), RuntimeError> {
        self.on_task("Resume", container_id).await
    }

    /// A call whose request is the container id alone and whose answer is empty.
    async fn on_task(&self, method: &str, container_id: &str) -> Result<(), RuntimeError> {
        let mut req = Vec::new();
        proto::put_bytes(&mut req, 1, container_id.as_bytes());
        self.tasks_call(method, &req)
            .await
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Sends `signal` to every process of the container's task.
    pub async fn kill(&self, container_id: &str, signal: u32) -> Result<(), RuntimeError> {
        let mut req = Vec::new();
        proto::put_bytes(&mut req, 1, container_id.as_bytes());
        proto::put_uint(&mut req, 3, u64::from(signal));
        proto::put_uint(&mut req, 4, 1); // all
        self.tasks_call("Kill", &req)
            .await
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Sends `SIGKILL` and waits (up to `wait`) until containerd reports the task dead,
    /// as `docker kill` does: a kill reported done is a dead container, and a second
    /// request right after finds it so instead of killing it again.
    pub async fn kill_and_wait(
        &self,
        container_id: &str,
        wait: Duration,
    ) -> Result<(), RuntimeError> {
        self.kill(container_id, SIGKILL).await?;
        self.wait_dead(container_id, wait).await.map(drop)
    }

    /// Polls the task's status until it is no longer alive (`true`), or `wait` has
    /// passed (`false`).
    async fn wait_dead(&self, container_id: &str, wait: Duration) -> Result<bool, RuntimeError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.task_status(container_id).await? {
                Some(s) if s.is_alive() => {}
                _ => return Ok(true),
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the container as `docker stop` does: `SIGTERM` (thawing it first if frozen,
    /// or the signal would wait), then `SIGKILL` if it is still alive after `grace`.
    pub async fn stop(&self, container_id: &str, grace: Duration) -> Result<(), RuntimeError> {
        if self
            .task_status(container_id)
            .await?
            .is_some_and(TaskStatus::is_paused)
        {
            self.resume(container_id).await?;
        }
        self.kill(container_id, SIGTERM).await?;
        if self.wait_dead(container_id, grace).await? {
            return Ok(());
        }
        self.kill_and_wait(container_id, KILL_WAIT).await
    }
}

/// How long a kill waits for containerd to report the task dead.
pub const KILL_WAIT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_status_of_a_get_response_and_rejects_garbage() {
        let mut process = Vec::new();
        proto::put_bytes(&mut process, 1, b"abc");
        proto::put_uint(&mut process, 3, 4242);
        proto::put_uint(&mut process, 4, 4);
        let mut resp = Vec::new();
        proto::put_bytes(&mut resp, 1, &process);
        assert_eq!(status_in_get_response(&resp).ok(), Some(TaskStatus::Paused));
        assert_eq!(status_in_get_response(&[]).ok(), Some(TaskStatus::Unknown));
        assert!(status_in_get_response(&[0x0a, 0x05, 0x20]).is_err());
    }

    #[test]
    fn alive_and_paused() {
        assert!(TaskStatus::Paused.is_alive() && TaskStatus::Paused.is_paused());
        assert!(TaskStatus::Running.is_alive() && !TaskStatus::Running.is_paused());
        assert!(!TaskStatus::Stopped.is_alive() && !TaskStatus::Created.is_alive());
    }
}
