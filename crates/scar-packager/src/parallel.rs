//! An ordered parallel map over a stream: items are produced on one thread, worked on by
//! up to one thread per core, and handed to the sink in their original order. Memory stays
//! bounded: at most a few items per worker are in flight.
//!
//! Used by the zip writer (entries compressed in parallel, written in order) and by the
//! layer compressor (chunks of one layer gzipped in parallel, concatenated in order).

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

/// How many worker threads: the machine's cores, at most 8.
pub(crate) fn workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
}

/// Runs `work` on every item of `inputs` in parallel and gives the results to `sink` in
/// input order. An `Err` from `inputs` or `sink` stops everything and is returned (the
/// producer and workers wind down on their own); `lost` makes the error for a worker that
/// died without an answer.
pub(crate) fn map_ordered<I, O, E>(
    inputs: impl Iterator<Item = Result<I, E>> + Send,
    work: impl Fn(I) -> O + Sync,
    mut sink: impl FnMut(O) -> Result<(), E>,
    lost: impl Fn() -> E,
) -> Result<(), E>
where
    I: Send,
    O: Send,
    E: Send,
{
    let workers = workers();
    std::thread::scope(|s| {
        let (job_tx, job_rx) = sync_channel::<(I, SyncSender<O>)>(workers);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let work = &work;
        for _ in 0..workers {
            let rx = Arc::clone(&job_rx);
            s.spawn(move || loop {
                let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                match job {
                    Ok((item, slot)) => {
                        let _ = slot.send(work(item));
                    }
                    Err(_) => break,
                }
            });
        }
        let (order_tx, order_rx) = sync_channel::<Result<Receiver<O>, E>>(workers * 2);
        s.spawn(move || {
            for item in inputs {
                let item = match item {
                    Ok(item) => item,
                    Err(e) => {
                        let _ = order_tx.send(Err(e));
                        break;
                    }
                };
                let (tx, rx) = sync_channel(1);
                if job_tx.send((item, tx)).is_err() || order_tx.send(Ok(rx)).is_err() {
                    break;
                }
            }
        });
        // `order_rx` is dropped on an early return, which stops the producer, then the
        // workers once the job queue is closed.
        for slot in order_rx {
            let out = slot?.recv().map_err(|_| lost())?;
            sink(out)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_stops_at_the_first_error() {
        let mut seen = Vec::new();
        map_ordered(
            (0..1000u32).map(Ok::<_, String>),
            |i| i * 2,
            |o| {
                seen.push(o);
                Ok(())
            },
            || "lost".to_string(),
        )
        .unwrap();
        assert_eq!(seen, (0..1000).map(|i| i * 2).collect::<Vec<_>>());

        let mut n = 0;
        let err = map_ordered(
            (0..1000u32).map(|i| {
                if i == 500 {
                    Err(format!("bad {i}"))
                } else {
                    Ok(i)
                }
            }),
            |i| i,
            |_| {
                n += 1;
                Ok(())
            },
            || "lost".to_string(),
        )
        .unwrap_err();
        assert_eq!((err.as_str(), n), ("bad 500", 500));

        let err = map_ordered(
            (0..1000u32).map(Ok::<_, String>),
            |i| i,
            |i| {
                if i == 10 {
                    Err("sink".to_string())
                } else {
                    Ok(())
                }
            },
            || "lost".to_string(),
        )
        .unwrap_err();
        assert_eq!(err, "sink");
    }
}
