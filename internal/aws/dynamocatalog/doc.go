// Package dynamocatalog is the DynamoDB adapter of the product sink port: a
// Sink writes products to the Products table (catalog.Sink) and reads them
// back (catalog.Reader). It passes the same contract suite as the SQLite
// sink (internal/catalog/catalogtest), against moto on loopback.
//
// # Table
//
// One item per SKU (TableInput; CreateTable provisions it where no stack
// does, template.yaml declares the same):
//
//   - key: sku (S, hash); billing PAY_PER_REQUEST;
//   - product fields: name, category, brand, price (S, canonical decimal
//     text: money is never a float), currency, stock (N), status,
//     description, image_urls (L of S);
//   - provenance: batch_id (S), sheet (S), sheet_index (N), row (N), offset
//     and length (N: the row's bytes in the shard's object);
//   - displaced (S): the rows of the item's batch this SKU's product has
//     displaced so far, as a JSON list of {sheet, sheet_index, row, offset,
//     length} (the SQLite sink's format; their SKU and batch are the item's);
//   - stamps (S): the field stamps, tombstone, creation order, provenance
//     order and existence, as catalog.EncodeStamps text
//     ("order/created/tombstone/f0,...,f8", "!" first when deleted; about 30
//     bytes when one batch wrote every field); absent on items written
//     before stamps (every stamp 0, existing);
//   - holders (S): the rows of older batches that still hold a field, the
//     creation or the tombstone (catalog.EncodeHolders JSON); absent when the
//     provenance batch is the only one;
//   - version (N): bumped by every write, the compare-and-swap token;
//     absent on items written before versions;
//   - global secondary index by_batch: batch_id (hash), row (range),
//     projection INCLUDE sheet, for CountBatch.
//
// Empty strings and empty lists are not stored (batch_id, an index key,
// could not be empty) and read back as "" and nil. A deleted product stays as
// an item (its tombstone); Get does not return it.
//
// # Decision: Write is an optimistic compare-and-swap, not BatchWriteItem
//
// Context. Invariant 5: the lowest position of a SKU within a batch wins,
// atomically per SKU, whatever order concurrent shards write in, and the rows
// it displaces are reported (catalog.Outcome.Displaced). The design card's
// first idea, BatchWriteItem with a retry of UnprocessedItems, cannot keep
// it: BatchWriteItem takes no conditions, so two shards that each read "row
// 90,000 holds the SKU" and then write rows 12 and 40 blindly race, and the
// last write wins, whichever row it carries. One conditional PutItem per
// product would be correct but costs one write request per row, against a
// pipeline budget of at most 45 DynamoDB write requests per 1,000 rows.
//
// Choice. Write reads, decides in memory, and writes conditionally, in
// batches:
//
//  1. The products of the call are grouped by SKU, in slice order (a call
//     may hold one SKU several times).
//  2. BatchGetItem reads the current item of every SKU of the call
//     (ConsistentRead, 100 keys per request, UnprocessedKeys retried with
//     backoff), whole: values, stamps and holders come in the same read.
//  3. Each SKU is decided by catalog.Decide, product by product, each
//     against the SKU's state at that point (the stored item, then the
//     call's earlier Written products): Written, Duplicate (Holder), Exists,
//     Superseded or Unknown, merging fields by their stamps. The state after
//     the SKU's last Written product is the item to write.
//  4. The new items are written with TransactWriteItems, up to 100 Puts per
//     request (AWS's limit, which moto 5.2 accepts too) and about 3.5 MB of
//     estimated item size (the limit is 4 MB), in the order of the SKUs'
//     first products. Each Put is conditioned on the item still being the
//     one read: attribute_not_exists(sku) when there was none, else version
//     equal to the one read (an item written before versions: no version and
//     batch_id, sheet_index and row equal to the holder's);
//     ReturnValuesOnConditionCheckFailure is ALL_OLD.
//  5. A TransactionCanceledException names, per item, why. ConditionalCheckFailed
//     items come with the current item: those SKUs are decided again against
//     it (read again when no item comes back), and the rest of the
//     transaction is sent again at once (Options.MaxRedecisions bounds the
//     rounds). TransactionConflict and throttling are retried with
//     exponential backoff and full jitter, at most Options.MaxAttempts times;
//     then, and on any other error, Write returns an ImportError (awserr
//     reasons: Throttled, ServiceUnavailable, ...).
//
// Decisions that write nothing (Duplicate, Superseded, and for upsert,
// replace and delete nothing else) are taken at the consistent read and stay
// true: within a batch the position holding a SKU only ever decreases, and
// stamps and tombstones only ever grow. Exists and Unknown are true of the
// read (decision 17: update and create-only decide existence at write time).
// Writes are checked by their conditions. So concurrent writers of one SKU,
// in any processes, end as if they had written one after the other: its
// lowest position per batch stored, each field at its newest batch's value,
// and every row that lost within its batch reported once as Duplicate or as
// Displaced (perhaps again by later writes of the winner; callers record
// failures idempotently).
//
// Consequence. A Write of 100 distinct new products costs 2 requests: one
// BatchGetItem and one TransactWriteItems, i.e. 10 write requests per 1,000
// rows (TestWriteRequests asserts it). Transactional writes consume twice
// the write capacity of plain writes, and the read adds one strongly
// consistent read per product; contention on a SKU costs a transaction per
// round. A Write call is not atomic as a whole (SQLite's is): when one of
// its transactions fails for good, the earlier ones are stored. Retrying the
// call is safe, as the contract requires: a SKU already stored by the failed
// attempt is found at the call's own position, a replay, and reported with
// the same displaced rows. The same holds when a transaction committed but
// its response was lost and the SDK sends it again: its conditions then fail
// on the items it wrote, which are decided as replays. So no
// ClientRequestToken is used (moto also refuses a replayed one, where AWS
// treats it as idempotent for 10 minutes).
//
// The condition compares a version that every write bumps, so it sees every
// change (the holder-only condition before it could miss an A-B-A change
// across batches). An item written before versions is compared by its
// holder's batch and position, once: the write gives it a version.
//
// # Reads
//
// Get and Stamps are a strongly consistent GetItem. CountBatch queries by_batch with
// Select COUNT, row BETWEEN from AND to, a filter on sheet when given, every
// page. Global secondary indexes are eventually consistent on AWS (moto
// updates them at once): finalization, which reconciles against CountBatch,
// counts again when the numbers do not match (handler.Options.Settle).
//
// # Limits
//
// Stamps cost about 30 bytes per item, 130 when batches hold different
// fields, plus about 100 bytes per older holder (rare: only while an older
// batch still holds a field of a newer one's product). An item may not
// exceed 400 KB: the displaced list grows by about 70 bytes
// per displaced row, so one SKU can record some 5,000 displaced rows within
// one batch before a Write of it fails (an Internal ImportError naming the
// SKU, raised before anything is sent). A worker writes a shard's rows in
// file order, so a SKU displaces about one row per shard at most; later
// duplicates within a shard are Duplicate outcomes, which store nothing.
//
// # moto (5.2.1) differences
//
//   - TransactWriteItems is not isolated: moto copies the whole table before
//     each item of a transaction and puts the copy back when the transaction
//     is cancelled. Concurrent transactions on one table then fail with HTTP
//     500 ("dictionary changed size during iteration") or silently undo each
//     other's writes. Every client of a moto holds one lock per DynamoDB
//     request (awsclient.Settings.OneAtATime; the test harness sets it);
//     calls still interleave between requests, so the read-decide-write
//     races and the conditions are still exercised.
//   - The copy per item makes a transaction cost O(items x table size):
//     writing 1,000 products into one table takes tens of seconds. The tests
//     use a small table per test.
//   - A condition can fail inside moto's put after its own check passed
//     (another request in between), and then no item comes back: Write reads
//     the SKU again.
//   - Global secondary indexes are updated immediately (AWS: eventually).
//
// # Decisions where the port leaves room
//
// As in the SQLite sink: an empty mode is Upsert, a mode that is not
// catalog.WriteMode.Valid is an error; products of one batch with the same
// SheetIndex and Row are the same position whatever their Sheet says; a call
// may mix batches. A product without a SKU is an error (nothing is written).
package dynamocatalog
