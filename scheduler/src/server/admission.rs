//! Admission of writes: requests that change something (every method but GET, HEAD and
//! OPTIONS) run at most [`ServerConfig::max_concurrent_writes`](super::ServerConfig) at a
//! time, in arrival order; up to `max_queued_writes` more wait their turn, and one past
//! that is refused at once with 503 and `Retry-After`, before its body is read. A
//! request is either answered by its handler (and what it stored is stored) or refused
//! whole: nothing is half-admitted. Reads and streams are never queued.
//!
//! The number waiting is Argo's `queue_depth_gauge` for `workflow_queue` (see `metrics`).
//!
//! Before any of that, connections wait in the kernel's accept queue: [`bind`] makes it
//! [`LISTEN_BACKLOG`] deep (the standard library's 128 resets connections when a
//! thousand clients connect at once).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;

use super::error::{ApiError, GrpcCode};

/// Connections the kernel keeps waiting to be accepted (capped by `net.core.somaxconn`).
pub const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with a [`LISTEN_BACKLOG`]-deep accept queue.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The write queue.
#[derive(Debug)]
pub struct Admission {
    permits: Semaphore,
    waiting: AtomicUsize,
    max_waiting: usize,
}

impl Admission {
    /// `concurrent` writes at a time (at least one), `queued` more waiting.
    pub fn new(concurrent: usize, queued: usize) -> Admission {
        Admission {
            permits: Semaphore::new(concurrent.max(1)),
            waiting: AtomicUsize::new(0),
            max_waiting: queued,
        }
    }

    /// How many writes wait for their turn.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

/// Counts a request as waiting until dropped (admitted, or its client gone).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The middleware.
pub async fn admit(
    State(admission): State<Arc<Admission>>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    // A free permit admits at once, without counting as queued.
    let permit = match admission.permits.try_acquire() {
        Ok(permit) => permit,
        Err(_) => {
            let ahead = admission.waiting.fetch_add(1, Ordering::Relaxed);
            let waiting = Waiting(&admission.waiting);
            if ahead >= admission.max_waiting {
                drop(waiting);
                return busy(ahead);
            }
            let Ok(permit) = admission.permits.acquire().await else {
                return busy(ahead);
            };
            drop(waiting);
            permit
        }
    };
    let response = next.run(request).await;
    drop(permit);
    response
}

fn busy(waiting: usize) -> Response {
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: GrpcCode::Unavailable,
        message: format!("the server is busy: {waiting} requests are waiting; retry later"),
    }
    .into_response()
}
