//! sha256 of a stream, computed on a thread of its own.
//!
//! Every blob is hashed as it streams: into the cache (its digest checked against the
//! manifest's) and out of it (checked again as a layer is extracted). Hashing is a third
//! to a half of the CPU that work costs, all of it on the thread that also writes the
//! blob or the layer's files. [`StreamDigest`] hands the bytes, in chunks, to a thread
//! that hashes while the caller goes on writing, so the two overlap on a machine with
//! more than one core. Memory stays bounded (a few chunks in flight, the caller waits
//! when the hasher is behind), and the digest is the same as hashing inline: it is still
//! computed over every byte, in order.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

/// Bytes handed to the hashing thread at once.
const CHUNK: usize = 256 * 1024;
/// Chunks in flight at most.
const IN_FLIGHT: usize = 4;

/// sha256 of the bytes given to [`StreamDigest::update`], in order.
pub(crate) struct StreamDigest {
    inner: Inner,
}

enum Inner {
    /// Hashed on the caller's thread: small streams, or no thread to be had.
    Inline(Sha256),
    Behind {
        pending: Vec<u8>,
        /// Set when the hashing thread stopped taking chunks (it cannot, short of a
        /// panic): the digest is then an error, never a wrong value.
        lost: bool,
        chunks: SyncSender<Vec<u8>>,
        spare: Receiver<Vec<u8>>,
        hasher: JoinHandle<Sha256>,
    },
}

impl StreamDigest {
    /// A digest hashed on a thread of its own (inline if no thread can be started).
    pub(crate) fn new() -> StreamDigest {
        let (chunks, todo) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (give_back, spare) = sync_channel::<Vec<u8>>(IN_FLIGHT + 1);
        let spawned = std::thread::Builder::new()
            .name("scar-sha256".into())
            .spawn(move || {
                let mut hasher = Sha256::new();
                for mut chunk in todo {
                    hasher.update(&chunk);
                    chunk.clear();
                    let _ = give_back.try_send(chunk);
                }
                hasher
            });
        let inner = match spawned {
            Ok(hasher) => Inner::Behind {
                pending: Vec::with_capacity(CHUNK),
                lost: false,
                chunks,
                spare,
                hasher,
            },
            Err(_) => Inner::Inline(Sha256::new()),
        };
        StreamDigest { inner }
    }

    pub(crate) fn update(&mut self, mut bytes: &[u8]) {
        match &mut self.inner {
            Inner::Inline(hasher) => hasher.update(bytes),
            Inner::Behind {
                pending,
                chunks,
                spare,
                lost,
                ..
            } => {
                while !bytes.is_empty() && !*lost {
                    let take = (CHUNK - pending.len()).min(bytes.len());
                    pending.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if pending.len() == CHUNK {
                        let next = spare
                            .try_recv()
                            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
                        let full = std::mem::replace(pending, next);
                        *lost = chunks.send(full).is_err();
                    }
                }
            }
        }
    }

    /// The digest, as `sha256:<hex>`.
    pub(crate) fn finish(self) -> std::io::Result<String> {
        let hasher = match self.inner {
            Inner::Inline(hasher) => Some(hasher),
            Inner::Behind {
                pending,
                chunks,
                hasher,
                lost,
                ..
            } => {
                let sent = !lost && chunks.send(pending).is_ok();
                drop(chunks);
                hasher.join().ok().filter(|_| sent)
            }
        };
        let hasher = hasher.ok_or_else(|| std::io::Error::other("the sha256 thread stopped"))?;
        Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_digest_as_hashing_inline_whatever_the_pieces() {
        let data: Vec<u8> = (0..3 * CHUNK + 777).map(|i| (i * 31 % 251) as u8).collect();
        let inline = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
        for piece in [1, 511, 512, 4096, CHUNK - 1, CHUNK, CHUNK + 1, data.len()] {
            let mut d = StreamDigest::new();
            for part in data.chunks(piece) {
                d.update(part);
            }
            assert_eq!(d.finish().unwrap(), inline, "pieces of {piece}");
        }
        let empty = StreamDigest::new();
        assert_eq!(
            empty.finish().unwrap(),
            format!("sha256:{}", hex::encode(Sha256::digest(b"")))
        );
    }
}
