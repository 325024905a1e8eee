// Package dynamocatalog is the DynamoDB adapter of the product sink port: a
// Sink writes products to the Products table (catalog.Sink) and reads them
// back (catalog.Reader). It passes the same contract suite as the SQLite
// sink (internal/catalog/catalogtest), against moto on loopback, under each
// read policy.
//
// # Table
//
// One item per SKU (TableInput; CreateTable provisions it where no stack
// does, template.yaml declares the same):
//
//   - key: sku (S, hash); billing PAY_PER_REQUEST; no index (decision 29:
//     the by_batch index cost a write unit per product written and two when
//     a newer batch took a SKU over, and nothing in the pipeline read it);
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
//     absent on items written before versions.
//
// Empty strings and empty lists are not stored and read back as "" and nil.
// A deleted product stays as an item (its tombstone); Get does not return
// it. A typical product item is 350-700 bytes: one write unit (1 KB).
//
// # Decision: one conditional PutItem per SKU, not transactions
//
// Context. Invariant 5 (the lowest position of a SKU within a batch wins,
// and the rows it displaces are reported) and invariant 10 (each field keeps
// the value of its newest batch) need a compare-and-swap per SKU:
// BatchWriteItem takes no conditions, so two shards that each read "row
// 90,000 holds the SKU" and then write rows 12 and 40 blindly race, and the
// last write wins. Decision 7 wrote the winners in TransactWriteItems of 100
// conditional Puts, to stay under a budget of 45 write requests per 1,000
// rows; but a transactional write costs two write units per KB where a
// plain one costs one, and on-demand DynamoDB bills units, not requests. The
// transaction bought nothing else: each Put carried its own condition, a
// Write call was never atomic as a whole (a failed transaction left the
// earlier ones stored), and the lease's fencing is not in it (a product
// write of a zombie is a replay, decided by the stamps like any other; see
// decision 29 for the argument).
//
// Choice. Write learns each SKU's item, decides in memory, and writes each
// SKU with its own conditional PutItem, many in flight:
//
//  1. The products of the call are grouped by SKU, in slice order (a call
//     may hold one SKU several times).
//  2. Reads before writes (below): either one BatchGetItem per 100 SKUs
//     reads the current items (whole: values, stamps and holders), or the
//     SKUs are taken to be absent and written blind.
//  3. Each SKU is decided by catalog.Decide, product by product, each
//     against the SKU's state at that point (the item seen, then the call's
//     earlier Written products): Written, Duplicate (Holder), Exists,
//     Superseded or Unknown, merging fields by their stamps. The state after
//     the SKU's last Written product is the item to write.
//  4. Each new item is written with one PutItem, Options.InFlight at a time
//     (default 16), conditioned on the item still being the one decided
//     against: attribute_not_exists(sku) when there was none, else version
//     equal to the one seen (an item written before versions: no version and
//     batch_id, sheet_index and row equal to the holder's);
//     ReturnValuesOnConditionCheckFailure is ALL_OLD.
//  5. A failed condition returns the current item: the SKU is decided again
//     against it and, if something remains to write, put again
//     (Options.MaxRedecisions bounds the rounds per SKU; when no item comes
//     back it is read again). Throttling, 5xx answers and timeouts are
//     retried with exponential backoff and full jitter, at most
//     Options.MaxAttempts times (a resent put that was applied fails its
//     condition and is decided as a replay); then, and on any other error,
//     Write returns an ImportError (awserr reasons: Throttled,
//     ServiceUnavailable, ...).
//
// Every outcome is true of a state DynamoDB really held: a Written product
// of its put's condition, an outcome that writes nothing of a read or of the
// item a failed condition returned (a blind guess "absent" is never the
// basis of an outcome that writes nothing: such SKUs are read first).
// Decisions that write nothing (Duplicate, Superseded, and for upsert,
// replace and delete nothing else) stay true of every later state: within a
// batch the position holding a SKU only ever decreases, and stamps and
// tombstones only ever grow. Exists and Unknown are true of the read
// (decision 17: update and create-only decide existence at write time). So
// concurrent writers of one SKU, in any processes, end as if they had
// written one after the other: its lowest position per batch stored, each
// field at its newest batch's value, and every row that lost within its
// batch reported once as Duplicate or as Displaced (perhaps again by later
// writes of the winner; callers record failures idempotently).
//
// # Reads before writes
//
// A read costs half a read unit per SKU (eventually consistent, up to 4 KB:
// $0.0625 per million on demand); a blind put that finds the item fails its
// condition, costs a write unit ($0.625 per million) and returns the item.
// So reading first pays when more than one SKU in ten is stored
// (BlindBelow), writing blind when fewer are. Options.Reads chooses:
// ReadsAuto (the default) keeps the share of SKUs the Sink's recent calls
// of one batch found stored (each call half the weight) and writes blind
// while it is under BlindBelow. The first call of a batch reads a sample of
// 100 SKUs and the rest of its SKUs only when one in ten of the sample or
// more is stored. So a file of new products costs one write unit per
// product and one BatchGetItem per batch and container, and a file that
// updates a catalog one read and one write per product, also in a container
// that wrote new products just before (no failed puts). ReadsAlways and ReadsNever fix the choice (tests run
// the contract under all three). Mode update always reads: its Unknown
// outcome writes nothing, so a blind put could not check it.
//
// Reads are eventually consistent for upsert, replace and delete, whose
// outcomes that write nothing are monotone (above): a stale item can only
// lead to a put whose condition fails and returns the current item. Update
// and create-only read strongly consistently (a full read unit), since
// Exists and Unknown depend on whether the product exists now.
//
// Consequence. A new product costs one PutItem and one write unit; an
// existing one a twentieth of a BatchGetItem, half a read unit, one PutItem
// and one write unit (TestWriteRequests pins the requests). Requests per
// 1,000 rows rise from about 20 to about 1,000, which on-demand DynamoDB
// does not bill; the latency of one Write is that of a read plus one put
// per InFlight SKUs. Contention on a SKU costs a put per round. A Write call
// is not atomic: when one of its puts fails for good, others may be stored
// (any subset: they run concurrently). Retrying the call is safe, as the
// contract requires: a SKU already stored by the failed attempt is found at
// the call's own position, a replay, and reported with the same displaced
// rows. The same holds when a put was applied but its response was lost and
// the SDK sends it again: its condition then fails on the item it wrote,
// which is decided as a replay.
//
// # Reads
//
// Get and Stamps are a strongly consistent GetItem. CountBatch has no index
// to query: it scans the table with a filter, for tests and small tables
// (nothing in the pipeline calls it; finalization reconciles row outcomes).
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
// duplicates within a shard are Duplicate outcomes, which store nothing. A
// SKU lives in one partition, which takes at most 1,000 write units a
// second: one SKU written by many shards at once is a hot key (its puts are
// throttled and retried), many SKUs are not.
//
// # moto (5.2.1) differences
//
//   - moto does not apply a conditional write atomically while other
//     requests run: every client of a moto holds one lock per DynamoDB
//     request (awsclient.Settings.OneAtATime; the test harness sets it);
//     calls still interleave between requests, so the read-decide-write
//     races and the conditions are still exercised.
//   - A condition can fail inside moto's put after its own check passed
//     (another request in between), and then no item comes back: Write reads
//     the SKU again.
//   - Reads are always consistent, and ConsumedCapacity is a constant (1.0
//     for a PutItem of any size): the bench computes units from item sizes.
//
// # Decisions where the port leaves room
//
// As in the SQLite sink: an empty mode is Upsert, a mode that is not
// catalog.WriteMode.Valid is an error; products of one batch with the same
// SheetIndex and Row are the same position whatever their Sheet says; a call
// may mix batches. A product without a SKU is an error (nothing is written).
package dynamocatalog
