use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Why work submitted to the pool did not produce a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Every worker is busy and the queue is full.
    #[error("the work queue is full ({capacity} waiting)")]
    QueueFull {
        /// Queue capacity.
        capacity: usize,
    },
    /// The deadline passed while the work was still queued, so it never ran.
    #[error("the deadline passed while the request was queued")]
    Expired,
    /// The pool is shutting down and takes no new work.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The work panicked; the worker survived.
    #[error("the work panicked: {0}")]
    Panicked(String),
}

/// What a finished piece of work reports besides its value.
#[derive(Debug, Clone, Copy)]
pub struct Ran {
    /// Time from submission until a worker picked it up.
    pub queued: Duration,
    /// Time the work itself took.
    pub compute: Duration,
}

struct Job {
    deadline: Instant,
    enqueued: Instant,
    work: Box<dyn Runnable>,
}

/// A queued closure with the channel its caller waits on.
trait Runnable: Send {
    /// Nobody waits for the result any more (the request was cancelled or timed out).
    fn abandoned(&self) -> bool;
    /// Runs the work and sends the outcome, counting a panic before the caller can see it.
    fn run(self: Box<Self>, started: Instant, queued: Duration, counters: &Counters);
}

struct Pending<T, F> {
    work: F,
    reply: oneshot::Sender<Result<(T, Ran), PoolError>>,
}

impl<T: Send, F: FnOnce() -> T + Send> Runnable for Pending<T, F> {
    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    fn run(self: Box<Self>, started: Instant, queued: Duration, counters: &Counters) {
        let outcome = catch_unwind(AssertUnwindSafe(self.work))
            .map(|value| {
                (
                    value,
                    Ran {
                        queued,
                        compute: started.elapsed(),
                    },
                )
            })
            .map_err(|payload| PoolError::Panicked(panic_message(payload.as_ref())));
        if outcome.is_err() {
            counters.panics.fetch_add(1, Ordering::Relaxed);
        }
        counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        let _ = self.reply.send(outcome);
    }
}

#[derive(Debug, Default)]
struct Counters {
    in_flight: AtomicUsize,
    panics: AtomicU64,
    expired: AtomicU64,
}

/// A fixed set of OS threads fed by a bounded queue.
///
/// Image work is CPU-bound and must not run on the async runtime; a bounded queue makes
/// overload visible at once (`QueueFull` → 429) instead of growing latency and memory without
/// bound. Each job is checked against its deadline and its caller's interest before it runs,
/// and a panicking job is caught so the worker lives on.
pub struct WorkPool {
    // `None` once shutdown has begun; a read lock per submission is uncontended in practice.
    sender: RwLock<Option<flume::Sender<Job>>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    worker_count: usize,
    capacity: usize,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for WorkPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkPool")
            .field("workers", &self.worker_count)
            .field("capacity", &self.capacity)
            .field("queued", &self.queued())
            .finish()
    }
}

impl WorkPool {
    /// Starts `workers` threads (at least one) with room for `queue` waiting jobs.
    pub fn new(workers: usize, queue: usize) -> Self {
        // A zero-capacity flume channel is a rendezvous channel; a queue of 0 should still
        // let idle workers take work, which rendezvous semantics give.
        let (sender, receiver) = flume::bounded::<Job>(queue);
        let counters = Arc::new(Counters::default());
        let worker_count = workers.max(1);
        let workers = (0..worker_count)
            .map(|i| {
                let receiver = receiver.clone();
                let counters = Arc::clone(&counters);
                std::thread::Builder::new()
                    .name(format!("percept-worker-{i}"))
                    .spawn(move || worker_loop(&receiver, &counters))
                    .unwrap_or_else(|e| panic!("cannot start worker thread: {e}"))
            })
            .collect();
        Self {
            sender: RwLock::new(Some(sender)),
            workers: Mutex::new(workers),
            worker_count,
            capacity: queue,
            counters,
        }
    }

    /// Queues `work`, or fails at once with [`PoolError::QueueFull`]. The returned future
    /// resolves when a worker has run it (or skipped it because `deadline` had passed).
    pub fn submit<T, F>(
        &self,
        deadline: Instant,
        work: F,
    ) -> Result<impl Future<Output = Result<(T, Ran), PoolError>> + use<T, F>, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let guard = self.sender.read().map_err(|_| PoolError::ShuttingDown)?;
        let sender = guard.as_ref().ok_or(PoolError::ShuttingDown)?;
        let (reply, rx) = oneshot::channel();
        let job = Job {
            deadline,
            enqueued: Instant::now(),
            work: Box::new(Pending { work, reply }),
        };
        sender.try_send(job).map_err(|e| match e {
            flume::TrySendError::Full(_) => PoolError::QueueFull {
                capacity: self.capacity,
            },
            flume::TrySendError::Disconnected(_) => PoolError::ShuttingDown,
        })?;
        Ok(async move {
            // A dropped sender means the job was skipped (expired or abandoned) or the pool
            // was torn down before it ran.
            rx.await.unwrap_or(Err(PoolError::Expired))
        })
    }

    /// Jobs waiting for a worker.
    pub fn queued(&self) -> usize {
        self.sender
            .read()
            .ok()
            .and_then(|s| s.as_ref().map(flume::Sender::len))
            .unwrap_or(0)
    }

    /// Queue capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.worker_count
    }

    /// Jobs running right now.
    pub fn in_flight(&self) -> usize {
        self.counters.in_flight.load(Ordering::Relaxed)
    }

    /// Jobs that panicked since start.
    pub fn panics(&self) -> u64 {
        self.counters.panics.load(Ordering::Relaxed)
    }

    /// Jobs dropped because their deadline passed while queued.
    pub fn expired(&self) -> u64 {
        self.counters.expired.load(Ordering::Relaxed)
    }

    /// Stops taking work (later submissions get [`PoolError::ShuttingDown`]), lets the
    /// workers finish what is queued, and joins them. Blocks; idempotent.
    pub fn shutdown(&self) {
        if let Ok(mut sender) = self.sender.write() {
            sender.take();
        }
        let workers = self
            .workers
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default();
        for worker in workers {
            let _ = worker.join();
        }
    }
}

impl Drop for WorkPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn worker_loop(receiver: &flume::Receiver<Job>, counters: &Counters) {
    while let Ok(job) = receiver.recv() {
        let now = Instant::now();
        if now >= job.deadline {
            counters.expired.fetch_add(1, Ordering::Relaxed);
            continue; // dropping the job drops its sender: the caller sees Expired
        }
        if job.work.abandoned() {
            continue;
        }
        counters.in_flight.fetch_add(1, Ordering::Relaxed);
        job.work
            .run(now, now.duration_since(job.enqueued), counters);
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(30)
    }

    #[tokio::test]
    async fn runs_work_and_reports_timing() {
        let pool = WorkPool::new(2, 4);
        let (value, ran) = pool.submit(far(), || 21 * 2).unwrap().await.unwrap();
        assert_eq!(value, 42);
        assert!(ran.compute < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn full_queue_is_refused_at_once() {
        let pool = WorkPool::new(1, 2);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let blocker = pool
            .submit(far(), move || {
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            })
            .unwrap();
        started_rx.recv().unwrap(); // the single worker is now busy
        let queued: Vec<_> = (0..2)
            .map(|i| pool.submit(far(), move || i).unwrap())
            .collect();
        assert_eq!(pool.queued(), 2);
        assert!(matches!(
            pool.submit(far(), || 0).map(|_| ()),
            Err(PoolError::QueueFull { capacity: 2 })
        ));
        release_tx.send(()).unwrap();
        blocker.await.unwrap();
        for (i, f) in queued.into_iter().enumerate() {
            assert_eq!(f.await.unwrap().0, i);
        }
    }

    #[tokio::test]
    async fn expired_work_never_runs() {
        let pool = WorkPool::new(1, 4);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let blocker = pool
            .submit(far(), move || {
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            })
            .unwrap();
        started_rx.recv().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let ran2 = Arc::clone(&ran);
        let soon = Instant::now() + Duration::from_millis(20);
        let late = pool
            .submit(soon, move || ran2.fetch_add(1, Ordering::SeqCst))
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        release_tx.send(()).unwrap();
        blocker.await.unwrap();
        assert_eq!(late.await.unwrap_err(), PoolError::Expired);
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        assert_eq!(pool.expired(), 1);
    }

    #[tokio::test]
    async fn a_panic_is_caught_and_the_worker_lives_on() {
        let pool = WorkPool::new(1, 4);
        let err = pool
            .submit(far(), || -> u32 { panic!("boom in a job") })
            .unwrap()
            .await
            .unwrap_err();
        assert_eq!(err, PoolError::Panicked("boom in a job".into()));
        assert_eq!(pool.panics(), 1);
        assert_eq!(pool.submit(far(), || 7).unwrap().await.unwrap().0, 7);
    }

    #[tokio::test]
    async fn shutdown_drains_queued_work() {
        let pool = WorkPool::new(1, 8);
        let done = Arc::new(AtomicUsize::new(0));
        let futures: Vec<_> = (0..5)
            .map(|_| {
                let done = Arc::clone(&done);
                pool.submit(far(), move || {
                    std::thread::sleep(Duration::from_millis(5));
                    done.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap()
            })
            .collect();
        let pool = Arc::new(pool);
        let closing = Arc::clone(&pool);
        tokio::task::spawn_blocking(move || closing.shutdown())
            .await
            .unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 5);
        assert_eq!(
            pool.submit(far(), || 0).map(|_| ()),
            Err(PoolError::ShuttingDown)
        );
        for f in futures {
            f.await.unwrap();
        }
    }
}
