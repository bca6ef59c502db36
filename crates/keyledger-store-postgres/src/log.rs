//! One instance's log: an append is one transaction (head row `FOR
//! UPDATE`, batch check, multi-row inserts of records and tree nodes, head
//! update); reads see committed batches only.

use std::sync::{Mutex, PoisonError, RwLock};

use keyledger_core::chain::Link;
use keyledger_core::merkle::{self, Frontier, Hash};
use keyledger_core::record::{Record, SIGNATURE_LEN};
use keyledger_ledger::store::{ChainHead, InstanceLog, SealedRecord, StoreError, check_sealed};
use postgres::GenericClient;

use crate::error::{db, is_unique_violation, pool};
use crate::store::Pool;

/// An open instance log of the PostgreSQL store.
pub struct PostgresLog {
    instance: String,
    pool: Pool,
    /// The head last seen in the database (by an append, a read or open);
    /// what [`InstanceLog::head`] answers without a round trip. Only grows.
    head: RwLock<ChainHead>,
    /// The tree frontier at some size, kept between this handle's appends
    /// so an append need not read the peaks back; reloaded from the
    /// `nodes` table when another writer moved the head.
    frontier: Mutex<Option<Frontier>>,
}

fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Backend(format!("{v} does not fit in a BIGINT")))
}

fn to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        seq: 0,
        reason: format!("negative {what} {v} in the database"),
    })
}

fn to_hash(bytes: &[u8], seq: u64, what: &str) -> Result<Hash, StoreError> {
    bytes.try_into().map_err(|_| StoreError::Corrupt {
        seq,
        reason: format!("{what} of {} bytes instead of 32", bytes.len()),
    })
}

/// The head row of `instance`, without locking it.
pub(crate) fn read_head(
    client: &mut impl GenericClient,
    instance: &str,
) -> Result<ChainHead, StoreError> {
    head_row(client, instance, "")
}

fn head_row(
    client: &mut impl GenericClient,
    instance: &str,
    lock: &str,
) -> Result<ChainHead, StoreError> {
    let sql = format!("SELECT size, head_link FROM instances WHERE name = $1 {lock}");
    let row = client
        .query_opt(sql.as_str(), &[&instance])
        .map_err(db)?
        .ok_or_else(|| StoreError::UnknownInstance(instance.to_string()))?;
    let size = to_u64(row.get(0), "size")?;
    let link: &[u8] = row.get(1);
    Ok(ChainHead {
        size,
        link: to_hash(link, size, "head link")?,
    })
}

/// The batch as column arrays for one `INSERT ... SELECT FROM unnest(...)`.
#[derive(Default)]
struct Columns {
    seqs: Vec<i64>,
    events: Vec<Vec<u8>>,
    signatures: Vec<Vec<u8>>,
    links: Vec<Vec<u8>>,
    leaves: Vec<Vec<u8>>,
    node_levels: Vec<i16>,
    node_indexes: Vec<i64>,
    node_hashes: Vec<Vec<u8>>,
}

impl PostgresLog {
    pub(crate) fn new(instance: String, pool: Pool, head: ChainHead) -> Self {
        let frontier = (head.size == 0).then(Frontier::new);
        PostgresLog {
            instance,
            pool,
            head: RwLock::new(head),
            frontier: Mutex::new(frontier),
        }
    }

    /// Records a head read from the database (ignoring an older one).
    fn publish(&self, head: ChainHead) {
        let mut h = self.head.write().unwrap_or_else(PoisonError::into_inner);
        if head.size >= h.size {
            *h = head;
        }
    }

    /// Re-reads the head from the database.
    fn refresh(&self) -> Result<ChainHead, StoreError> {
        let mut conn = self.pool.get().map_err(pool)?;
        let head = read_head(&mut *conn, &self.instance)?;
        self.publish(head);
        Ok(self.head())
    }

    /// The frontier of the first `size` leaves, from its stored peaks.
    fn load_frontier(
        &self,
        client: &mut impl GenericClient,
        size: u64,
    ) -> Result<Frontier, StoreError> {
        let mut peaks = Vec::new();
        for (level, index) in merkle::frontier_peaks(size) {
            peaks.push(self.read_node(client, level, index)?);
        }
        Frontier::from_nodes(size, peaks).map_err(|e| StoreError::Corrupt {
            seq: size,
            reason: format!("stored tree peaks do not make a frontier: {e:?}"),
        })
    }

    fn read_node(
        &self,
        client: &mut impl GenericClient,
        level: u8,
        index: u64,
    ) -> Result<Hash, StoreError> {
        let row = client
            .query_opt(
                "SELECT hash FROM nodes WHERE instance = $1 AND level = $2 AND idx = $3",
                &[&self.instance, &i16::from(level), &to_i64(index)?],
            )
            .map_err(db)?
            .ok_or_else(|| StoreError::Corrupt {
                seq: index << level,
                reason: format!("tree node ({level}, {index}) is missing"),
            })?;
        to_hash(row.get(0), index << level, "tree node")
    }

    /// Checks `batch` against the locked head and computes its columns;
    /// returns the new frontier with them.
    fn prepare(
        &self,
        batch: &[SealedRecord],
        head: ChainHead,
        mut frontier: Frontier,
    ) -> Result<(Columns, Frontier), StoreError> {
        let mut c = Columns::default();
        let mut prev: Link = head.link;
        for (seq, sealed) in (head.size..).zip(batch) {
            if sealed.seq() != seq {
                return Err(StoreError::NonContiguous { seq });
            }
            check_sealed(sealed, seq, &prev)?;
            c.seqs.push(to_i64(seq)?);
            c.events.push(sealed.record().event.clone());
            c.signatures.push(sealed.record().signature.to_vec());
            c.links.push(sealed.link().to_vec());
            c.leaves.push(sealed.leaf().to_vec());
            for node in frontier.push(*sealed.leaf()) {
                c.node_levels.push(i16::from(node.level));
                c.node_indexes.push(to_i64(node.index)?);
                c.node_hashes.push(node.hash.to_vec());
            }
            prev = *sealed.link();
        }
        Ok((c, frontier))
    }

    fn try_append(&self, batch: &[SealedRecord], first: u64) -> Result<ChainHead, StoreError> {
        let mut cached = self.frontier.lock().unwrap_or_else(PoisonError::into_inner);
        let mut conn = self.pool.get().map_err(pool)?;
        let mut tx = conn.transaction().map_err(db)?;
        let head = head_row(&mut tx, &self.instance, "FOR UPDATE")?;
        self.publish(head);
        if first != head.size {
            return Err(StoreError::Conflict {
                batch_start: first,
                size: head.size,
            });
        }
        let (new_head, frontier) = self.insert_batch(&mut tx, batch, head, cached.take())?;
        tx.commit().map_err(db)?;
        *cached = Some(frontier);
        Ok(new_head)
    }

    /// Inserts `batch` after the locked `head` in `tx` (records, tree
    /// nodes, the new head, a notification for other servers): everything
    /// but the commit. Answers the new head and the tree frontier there.
    fn insert_batch(
        &self,
        tx: &mut postgres::Transaction<'_>,
        batch: &[SealedRecord],
        head: ChainHead,
        cached: Option<Frontier>,
    ) -> Result<(ChainHead, Frontier), StoreError> {
        let first = batch.first().map_or(head.size, SealedRecord::seq);
        let frontier = match cached {
            Some(f) if f.size() == head.size => f,
            _ => self.load_frontier(tx, head.size)?,
        };
        let (c, frontier) = self.prepare(batch, head, frontier)?;
        let new_head = ChainHead {
            size: head.size + batch.len() as u64,
            link: *batch.last().map_or(&head.link, |s| s.link()),
        };
        // One statement, one round trip: the records, the tree nodes, the
        // new head and the notification for other servers (delivered at
        // commit, crate::notify).
        tx.execute(
            "WITH r AS (
                 INSERT INTO records (instance, seq, event, signature, link, leaf)
                 SELECT $1, * FROM unnest($2::bigint[], $3::bytea[], $4::bytea[], $5::bytea[], $6::bytea[])
             ), n AS (
                 INSERT INTO nodes (instance, level, idx, hash)
                 SELECT $1, * FROM unnest($7::smallint[], $8::bigint[], $9::bytea[])
             ), h AS (
                 UPDATE instances SET size = $10, head_link = $11 WHERE name = $1
             )
             SELECT pg_notify($12, $13)",
            &[
                &self.instance,
                &c.seqs,
                &c.events,
                &c.signatures,
                &c.links,
                &c.leaves,
                &c.node_levels,
                &c.node_indexes,
                &c.node_hashes,
                &to_i64(new_head.size)?,
                &new_head.link.as_slice(),
                &crate::notify::CHANNEL,
                &crate::notify::payload(&self.instance),
            ],
        )
        .map_err(|e| self.insert_error(e, first, head.size))?;
        Ok((new_head, frontier))
    }

    /// A failed insert: a key violation means another writer stored rows
    /// at these positions (the head row lock makes this a backstop only).
    fn insert_error(&self, e: postgres::Error, first: u64, size: u64) -> StoreError {
        if is_unique_violation(&e) {
            StoreError::Conflict {
                batch_start: first,
                size,
            }
        } else {
            db(e)
        }
    }

    /// Records `start..end` as stored (the caller checked the range).
    fn read_rows(
        &self,
        client: &mut impl GenericClient,
        start: u64,
        end: u64,
    ) -> Result<Vec<Record>, StoreError> {
        let rows = client
            .query(
                "SELECT seq, event, signature FROM records
                 WHERE instance = $1 AND seq >= $2 AND seq < $3 ORDER BY seq",
                &[&self.instance, &to_i64(start)?, &to_i64(end)?],
            )
            .map_err(db)?;
        let mut out = Vec::with_capacity(rows.len());
        for (want, row) in (start..end).zip(&rows) {
            let seq = to_u64(row.get(0), "seq")?;
            if seq != want {
                return Err(StoreError::Corrupt {
                    seq: want,
                    reason: format!("record {want} is missing (next stored is {seq})"),
                });
            }
            let signature: &[u8] = row.get(2);
            let signature: [u8; SIGNATURE_LEN] =
                signature.try_into().map_err(|_| StoreError::Corrupt {
                    seq,
                    reason: "stored signature has the wrong length".into(),
                })?;
            out.push(Record {
                event: row.get(1),
                signature,
            });
        }
        if out.len() as u64 != end - start {
            return Err(StoreError::Corrupt {
                seq: start + out.len() as u64,
                reason: "record is missing".into(),
            });
        }
        Ok(out)
    }

    /// The size of the log (as last seen, or re-read when smaller) if it
    /// has at least `end` records, else the current size as the error.
    fn size_covering(&self, end: u128) -> Result<u64, u64> {
        let size = self.head().size;
        if end <= u128::from(size) {
            return Ok(size);
        }
        match self.refresh() {
            Ok(h) if end <= u128::from(h.size) => Ok(h.size),
            Ok(h) => Err(h.size),
            Err(_) => Err(size),
        }
    }
}

impl InstanceLog for PostgresLog {
    fn instance(&self) -> &str {
        &self.instance
    }

    fn head(&self) -> ChainHead {
        *self.head.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn append(&self, batch: &[SealedRecord]) -> Result<(), StoreError> {
        let Some(first) = batch.first() else {
            return Ok(());
        };
        let result = self.try_append(batch, first.seq());
        match result {
            Ok(head) => {
                self.publish(head);
                Ok(())
            }
            Err(e) => {
                if matches!(e, StoreError::Conflict { .. }) {
                    // Resync from the durable head; the error stands.
                    let _ = self.refresh();
                }
                Err(e)
            }
        }
    }

    fn read(&self, start: u64, end: u64) -> Result<Vec<Record>, StoreError> {
        match self.size_covering(u128::from(end)) {
            Ok(_) if start <= end => {}
            Ok(size) | Err(size) => return Err(StoreError::OutOfRange { start, end, size }),
        }
        if start == end {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.get().map_err(pool)?;
        self.read_rows(&mut *conn, start, end)
    }

    fn node(&self, level: u8, index: u64) -> Result<Hash, StoreError> {
        let span_end = (u128::from(index) + 1).checked_shl(u32::from(level));
        let clamp = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
        let out_of_range = |size: u64| StoreError::OutOfRange {
            start: clamp(
                u128::from(index)
                    .checked_shl(u32::from(level))
                    .unwrap_or(u128::MAX),
            ),
            end: clamp(span_end.unwrap_or(u128::MAX)),
            size,
        };
        let Some(span_end) = span_end.filter(|_| level < 64) else {
            return Err(out_of_range(self.head().size));
        };
        if let Err(size) = self.size_covering(span_end) {
            return Err(out_of_range(size));
        }
        let mut conn = self.pool.get().map_err(pool)?;
        self.read_node(&mut *conn, level, index)
    }

    fn shared(&self) -> bool {
        true
    }

    fn durable_head(&self) -> Result<ChainHead, StoreError> {
        self.refresh()
    }

    /// One transaction: the head row `FOR UPDATE` (every other writer of
    /// this instance waits), the records others appended after `known`,
    /// `build`'s batch inserted after the head, commit.
    fn append_sequenced(
        &self,
        known: u64,
        build: &mut dyn FnMut(ChainHead, Vec<Record>) -> Result<Vec<SealedRecord>, String>,
    ) -> Result<ChainHead, StoreError> {
        let mut cached = self.frontier.lock().unwrap_or_else(PoisonError::into_inner);
        let mut conn = self.pool.get().map_err(pool)?;
        let mut tx = conn.transaction().map_err(db)?;
        let head = head_row(&mut tx, &self.instance, "FOR UPDATE")?;
        self.publish(head);
        if known > head.size {
            // Records this server saw are gone: a failover to a replica
            // that had not received them. Nothing more is appended.
            return Err(StoreError::Corrupt {
                seq: head.size,
                reason: format!(
                    "the log has {} records but {known} were seen: records acknowledged earlier are missing",
                    head.size
                ),
            });
        }
        let others = if known < head.size {
            self.read_rows(&mut tx, known, head.size)?
        } else {
            Vec::new()
        };
        let batch = build(head, others).map_err(StoreError::Backend)?;
        let Some(first) = batch.first() else {
            return Ok(head);
        };
        if first.seq() != head.size {
            return Err(StoreError::Conflict {
                batch_start: first.seq(),
                size: head.size,
            });
        }
        let (new_head, frontier) = self.insert_batch(&mut tx, &batch, head, cached.take())?;
        tx.commit().map_err(db)?;
        *cached = Some(frontier);
        self.publish(new_head);
        Ok(new_head)
    }

    fn save_checkpoint(&self, note: &str) -> Result<(), StoreError> {
        let mut conn = self.pool.get().map_err(pool)?;
        conn.execute(
            // Several servers save checkpoints of one log: a note never
            // replaces one of a larger tree (a C2SP note's second line is
            // its tree size; text that is not a note replaces as before).
            "INSERT INTO checkpoints (instance, note) VALUES ($1, $2)
             ON CONFLICT (instance) DO UPDATE SET note = EXCLUDED.note, saved_at = now()
             WHERE COALESCE(
                 (CASE WHEN split_part(checkpoints.note, E'\\n', 2) ~ '^[0-9]{1,18}$'
                       THEN split_part(checkpoints.note, E'\\n', 2)::bigint END)
                 <= (CASE WHEN split_part(EXCLUDED.note, E'\\n', 2) ~ '^[0-9]{1,18}$'
                          THEN split_part(EXCLUDED.note, E'\\n', 2)::bigint END),
                 true)",
            &[&self.instance, &note],
        )
        .map_err(db)?;
        Ok(())
    }

    fn latest_checkpoint(&self) -> Result<Option<String>, StoreError> {
        let mut conn = self.pool.get().map_err(pool)?;
        let row = conn
            .query_opt(
                "SELECT note FROM checkpoints WHERE instance = $1",
                &[&self.instance],
            )
            .map_err(db)?;
        Ok(row.map(|r| r.get(0)))
    }
}
