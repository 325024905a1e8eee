package dynamostate

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/catalog-import/catalog-import/internal/aws/dynamoattr"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/text"
)

// item is one DynamoDB item.
type item = dynamoattr.Item

// Key layout (see the package documentation).
const (
	attrPK     = "pk"
	attrSK     = "sk"
	attrGSI1PK = "gsi1pk"
	attrGSI1SK = "gsi1sk"

	batchPrefix  = "BATCH#"
	batchSK      = "#BATCH"
	shardPrefix  = "SHARD#"
	failPrefix   = "FAIL#"
	failEnd      = "FAIL$" // above every FAIL# key ('$' follows '#')
	triagePrefix = "TRIAGE#"
	batchesGSI   = "BATCHES"

	// maxShardIndex and maxRow keep the zero-padded numbers of the sort keys
	// at their fixed width, so that keys sort as the numbers do.
	maxShardIndex = 999_999
	maxRow        = 999_999_999_999
)

func batchPK(id string) string { return batchPrefix + id }

// layout is how a batch's items are laid out, the batch item's attribute
// item_layout (decision 30). A batch written before it has none (0).
type layout int64

const (
	// layoutShared: the batch item holds the counters every checkpoint
	// added to, and every failure record has the batch's partition key
	// BATCH#<id> (batches registered before decision 30).
	layoutShared layout = 0
	// layoutSpread: a checkpoint writes only its shard item (the batch's
	// counts are the sum of its shards' checkpoints until it finishes),
	// and failure records are spread over failParts partitions
	// BATCH#<id>#F<part, 2 digits>.
	layoutSpread layout = 2
	// layoutUnknown: the batch item is missing (never written, or
	// expired): readers look in both layouts.
	layoutUnknown layout = -1

	attrLayout = "item_layout"
)

// failParts is how many partition keys a batch's failure records are
// spread over: 16 partitions of 1,000 write units a second each.
const failParts = 16

// layoutOf is the layout of a batch item (nil: layoutUnknown).
func layoutOf(it item) layout {
	if it == nil {
		return layoutUnknown
	}
	if v, ok := it[attrLayout].(*types.AttributeValueMemberN); ok && v.Value == "2" {
		return layoutSpread
	}
	return layoutShared
}

// failPart is the partition of the failure record at (sheet, row): FNV-1a
// of the sheet, a NUL and the row's decimal digits, modulo failParts. It
// depends on the key alone, so a resolve mark or a replay finds the record
// without knowing its shard, and rows of any distribution (a run of bad
// rows, one bad shard) spread evenly.
func failPart(sheet string, row int64) int {
	h := fnv.New32a()
	h.Write([]byte(sheet))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, row, 10))
	return int(h.Sum32() % failParts)
}

// failPK is the partition key of the failure record at (sheet, row) of a
// batch in layout l.
func failPK(id string, l layout, sheet string, row int64) string {
	if l != layoutSpread {
		return batchPK(id)
	}
	return failPartPK(id, failPart(sheet, row))
}

func failPartPK(id string, part int) string { return fmt.Sprintf("%s%s#F%02d", batchPrefix, id, part) }

// failPKs are the partition keys that may hold a batch's failure records in
// layout l, the batch's own last (the merge of their queries keeps the
// copy of a key from the first of them, so a spread record wins over an
// old worker's copy in the batch's own partition): a batch of the shared layout has them in its own
// partition only (no writer of the spread layout ever writes for it); a
// batch of the spread layout in its failParts partitions and, for records
// a worker of the code before decision 30 wrote during a deploy, in its
// own partition (one more Query, usually empty); an unknown layout in all.
func failPKs(id string, l layout) []string {
	if l == layoutShared {
		return []string{batchPK(id)}
	}
	out := make([]string, 0, failParts+1)
	for p := range failParts {
		out = append(out, failPartPK(id, p))
	}
	return append(out, batchPK(id))
}

func shardSK(index int) string { return fmt.Sprintf("%s%06d", shardPrefix, index) }

// failSheetPrefix is the sort key prefix of every failure record of sheet.
func failSheetPrefix(sheet string) string { return failPrefix + escapeSheet(sheet) + "#" }

func failSK(sheet string, row int64) string {
	return fmt.Sprintf("%s%012d", failSheetPrefix(sheet), row)
}

// escapeSheet encodes a sheet name for a sort key so that the keys sort as
// (sheet bytewise, then row): every byte up to '$' becomes '$' and two hex
// digits, so no encoded byte is below '$' and the '#' that ends the sheet
// sorts before any continuation. "Sheet" < "Sheet 2" holds for the keys too
// ("Sheet#..." < "Sheet$202#..."), which a literal "FAIL#<sheet>#" would break.
func escapeSheet(sheet string) string {
	var b strings.Builder
	for i := 0; i < len(sheet); i++ {
		c := sheet[i]
		if c <= '$' {
			fmt.Fprintf(&b, "$%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Batch items.

func batchKey(id string) item {
	return item{attrPK: dynamoattr.S(batchPK(id)), attrSK: dynamoattr.S(batchSK)}
}

// batchItem is the stored form of b; creator marks the CreateBatch call
// that wrote it (see CreateBatch).
func batchItem(b state.Batch, creator string) (item, error) {
	layout, err := dynamoattr.JSON(b.Layout, false)
	if err != nil {
		return nil, fmt.Errorf("encode layout: %w", err)
	}
	it := batchKey(b.ID)
	it[attrGSI1PK] = dynamoattr.S(batchesGSI)
	it[attrGSI1SK] = dynamoattr.S(dynamoattr.FormatTime(b.CreatedAt) + "#" + b.ID)
	it["batch_id"] = dynamoattr.S(b.ID)
	it["status"] = dynamoattr.S(string(b.Status))
	dynamoattr.Put(it, "source_uri", dynamoattr.OptS(b.Source.URI))
	it["source_size"] = dynamoattr.N(b.Source.Size)
	dynamoattr.Put(it, "source_etag", dynamoattr.OptS(b.Source.ETag))
	dynamoattr.Put(it, "source_version", dynamoattr.OptS(b.Source.Version))
	dynamoattr.Put(it, "source_mod_time", dynamoattr.Time(b.Source.ModTime))
	it["layout"] = layout
	if len(b.Profile) > 0 {
		it["profile"] = dynamoattr.B(b.Profile)
	}
	dynamoattr.Put(it, "rule_version", dynamoattr.OptS(b.RuleVersion))
	it["shards"] = dynamoattr.N(int64(b.Shards))
	it["shards_done"] = dynamoattr.N(int64(b.ShardsDone))
	it["rows_total"] = dynamoattr.N(b.Counts.Total)
	it["rows_imported"] = dynamoattr.N(b.Counts.Imported)
	it["rows_failed"] = dynamoattr.N(b.Counts.Failed)
	it["rows_skipped"] = dynamoattr.N(b.Counts.Skipped)
	if b.Counts.Superseded != 0 {
		it["rows_superseded"] = dynamoattr.N(b.Counts.Superseded)
	}
	it["batch_order"] = dynamoattr.N(b.Order)
	it[attrLayout] = dynamoattr.N(int64(layoutSpread))
	dynamoattr.Put(it, "by_reason", avByReason(b.ByReason))
	dynamoattr.Put(it, "message", dynamoattr.OptS(b.Message))
	dynamoattr.Put(it, "report", dynamoattr.OptS(b.Report))
	dynamoattr.Put(it, "trace_id", dynamoattr.OptS(b.TraceID))
	dynamoattr.Put(it, "parent", dynamoattr.OptS(b.Parent))
	if b.Resolved != 0 {
		it["failures_resolved"] = dynamoattr.N(b.Resolved)
	}
	if c := b.Check; c != nil {
		it["check_shards"] = dynamoattr.N(int64(c.Shards))
		it["check_rows"] = dynamoattr.N(c.Rows)
		it["check_failed"] = dynamoattr.N(c.Failed)
	}
	dynamoattr.Put(it, "warnings", dynamoattr.Strings(b.Warnings))
	dynamoattr.Put(it, "created_at", dynamoattr.Time(b.CreatedAt))
	dynamoattr.Put(it, "updated_at", dynamoattr.Time(b.UpdatedAt))
	dynamoattr.Put(it, "finished_at", dynamoattr.Time(b.FinishedAt))
	dynamoattr.Put(it, "created_by", dynamoattr.OptS(creator))
	return it, nil
}

// avByReason is a map of reason to count (M of N), nil when empty.
func avByReason(m map[failure.Reason]int64) types.AttributeValue {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]types.AttributeValue, len(m))
	for r, n := range m {
		out[string(r)] = dynamoattr.N(n)
	}
	return &types.AttributeValueMemberM{Value: out}
}

func decodeBatch(it item) (state.Batch, error) {
	d := dynamoattr.NewDecoder(it)
	b := state.Batch{
		ID:     d.S("batch_id"),
		Status: state.BatchStatus(d.S("status")),
		Order:  d.N("batch_order"),
		Source: state.Source{URI: d.S("source_uri"), Size: d.N("source_size"), ETag: d.S("source_etag"),
			Version: d.S("source_version"), ModTime: d.Time("source_mod_time")},
		RuleVersion: d.S("rule_version"),
		Shards:      int(d.N("shards")),
		ShardsDone:  int(d.N("shards_done")),
		Counts:      countsOf(d, "rows_"),
		Message:     d.S("message"),
		Report:      d.S("report"),
		TraceID:     d.S("trace_id"),
		Parent:      d.S("parent"),
		Resolved:    d.N("failures_resolved"),
		Warnings:    d.Strings("warnings"),
		CreatedAt:   d.Time("created_at"),
		UpdatedAt:   d.Time("updated_at"),
		FinishedAt:  d.Time("finished_at"),
	}
	if _, ok := it["check_shards"]; ok {
		b.Check = &state.BatchCheck{Shards: int(d.N("check_shards")), Rows: d.N("check_rows"), Failed: d.N("check_failed")}
	}
	d.JSON("layout", &b.Layout)
	if p := d.B("profile"); len(p) > 0 {
		b.Profile = p
	}
	switch v := it["by_reason"].(type) {
	case nil:
	case *types.AttributeValueMemberM:
		b.ByReason = make(map[failure.Reason]int64, len(v.Value))
		sub := dynamoattr.NewDecoder(v.Value)
		for r := range v.Value {
			b.ByReason[failure.Reason(r)] = sub.N(r)
		}
		if sub.Err() != nil {
			d.Fail("by_reason", sub.Err())
		}
	default:
		d.Fail("by_reason", fmt.Errorf("type %T, want M", v))
	}
	if d.Err() != nil {
		return state.Batch{}, fmt.Errorf("batch item %s: %w", b.ID, d.Err())
	}
	return b, nil
}

// countsOf reads the five counters named prefix+"total", ... (an item
// written before superseded rows were counted has none: 0).
func countsOf(d *dynamoattr.Decoder, prefix string) state.Counts {
	return state.Counts{Total: d.N(prefix + "total"), Imported: d.N(prefix + "imported"), Superseded: d.N(prefix + "superseded"),
		Failed: d.N(prefix + "failed"), Skipped: d.N(prefix + "skipped")}
}

// Shard items.

func shardKey(batchID string, index int) item {
	return item{attrPK: dynamoattr.S(batchPK(batchID)), attrSK: dynamoattr.S(shardSK(index))}
}

func shardItem(s state.Shard) (item, error) {
	staged, err := dynamoattr.JSON(s.Staged, s.Staged == nil)
	if err != nil {
		return nil, fmt.Errorf("encode staged object of shard %d: %w", s.Index, err)
	}
	blocks, err := dynamoattr.JSON(s.Blocks, s.Blocks == nil)
	if err != nil {
		return nil, fmt.Errorf("encode block checksums of shard %d: %w", s.Index, err)
	}
	cp := s.Checkpoint
	it := shardKey(s.BatchID, s.Index)
	it["batch_id"] = dynamoattr.S(s.BatchID)
	it["shard"] = dynamoattr.N(int64(s.Index))
	dynamoattr.Put(it, "sheet", dynamoattr.OptS(s.Sheet))
	it["sheet_index"] = dynamoattr.N(int64(s.SheetIndex))
	it["byte_start"] = dynamoattr.N(s.Start)
	it["byte_end"] = dynamoattr.N(s.End)
	it["first_row"] = dynamoattr.N(s.FirstRow)
	it["rows"] = dynamoattr.N(s.Rows)
	dynamoattr.Put(it, "checksum", dynamoattr.OptS(s.Checksum))
	it["status"] = dynamoattr.S(string(s.Status))
	for name, v := range cpAttrs(cp) {
		it[name] = v
	}
	dynamoattr.Put(it, "owner", dynamoattr.OptS(s.Owner))
	it["epoch"] = dynamoattr.N(s.Epoch)
	dynamoattr.Put(it, "lease_until", dynamoattr.Time(s.LeaseUntil))
	it["attempts"] = dynamoattr.N(int64(s.Attempts))
	dynamoattr.Put(it, "message", dynamoattr.OptS(s.Message))
	dynamoattr.Put(it, "updated_at", dynamoattr.Time(s.UpdatedAt))
	dynamoattr.Put(it, "progress", avProgress(s.Progress))
	dynamoattr.Put(it, "staged", staged)
	if c := s.Check; c != nil {
		it["check_rows"] = dynamoattr.N(c.Rows)
		it["check_failed"] = dynamoattr.N(c.Failed)
	}
	dynamoattr.Put(it, "blocks", blocks)
	return it, nil
}

// cpNames are the checkpoint attributes of a shard item, in a fixed order.
var cpNames = []string{"cp_next_offset", "cp_next_row", "cp_rows_total", "cp_rows_imported", "cp_rows_failed", "cp_rows_skipped", cpSuperseded}

// cpSuperseded is the checkpoint's superseded counter, absent from shard
// items written before it existed (read as 0).
const cpSuperseded = "cp_rows_superseded"

// cpAttrs are the attributes of a shard's checkpoint.
func cpAttrs(cp state.Checkpoint) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"cp_next_offset": dynamoattr.N(cp.NextOffset), "cp_next_row": dynamoattr.N(cp.NextRow),
		"cp_rows_total": dynamoattr.N(cp.Counts.Total), "cp_rows_imported": dynamoattr.N(cp.Counts.Imported),
		"cp_rows_failed": dynamoattr.N(cp.Counts.Failed), "cp_rows_skipped": dynamoattr.N(cp.Counts.Skipped),
		cpSuperseded: dynamoattr.N(cp.Counts.Superseded),
	}
}

func decodeShard(it item) (state.Shard, error) {
	d := dynamoattr.NewDecoder(it)
	s := state.Shard{
		BatchID:    d.S("batch_id"),
		Index:      int(d.N("shard")),
		Sheet:      d.S("sheet"),
		SheetIndex: int(d.N("sheet_index")),
		Start:      d.N("byte_start"),
		End:        d.N("byte_end"),
		FirstRow:   d.N("first_row"),
		Rows:       d.N("rows"),
		Checksum:   d.S("checksum"),
		Status:     state.ShardStatus(d.S("status")),
		Checkpoint: state.Checkpoint{NextOffset: d.N("cp_next_offset"), NextRow: d.N("cp_next_row"), Counts: countsOf(d, "cp_rows_")},
		Owner:      d.S("owner"),
		Epoch:      d.N("epoch"),
		LeaseUntil: d.Time("lease_until"),
		Attempts:   int(d.N("attempts")),
		Message:    d.S("message"),
		UpdatedAt:  d.Time("updated_at"),
		Progress:   decodeProgress(d, "progress"),
	}
	if _, ok := it["check_rows"]; ok {
		s.Check = &state.Check{Rows: d.N("check_rows"), Failed: d.N("check_failed")}
	}
	if _, ok := it["staged"]; ok {
		s.Staged = &state.Staged{}
		d.JSON("staged", s.Staged)
	}
	if _, ok := it["blocks"]; ok {
		s.Blocks = &state.Blocks{}
		d.JSON("blocks", s.Blocks)
	}
	if d.Err() != nil {
		return state.Shard{}, fmt.Errorf("shard item %s/%d: %w", s.BatchID, s.Index, d.Err())
	}
	return s, nil
}

// Failure items.

// itemLimit is the largest failure item written as is. DynamoDB's limit is
// 400 KB (names and values); the rest is headroom.
const itemLimit = 350_000

// rawBlob is the compressed form of a large failure record's row bytes.
type rawBlob struct {
	RawLine string   `json:"raw_line"`
	Cells   []string `json:"cells,omitempty"`
}

// writeUnit is the item size one write unit pays for (1 KB).
const writeUnit = 1024

// failureItem is the stored form of r in a batch of layout l. expires is the TTL attribute's value
// (epoch seconds), 0 for none. A record keeps its raw line and cells
// gzip-compressed (attribute raw_gz) when it is over itemLimit, or over a
// write unit and compressed it takes fewer units (decision 29: a failure
// record rides in the checkpoint's transaction, 2 units per KB, and a
// typical one was just over 1 KB, its cells repeating its raw line); if the
// compressed form is still over itemLimit the raw line is cut at a UTF-8
// boundary, the cells are dropped and raw_truncated holds the raw line's
// original length in bytes.
func failureItem(r failure.Record, l layout, expires int64) (item, error) {
	it := item{attrPK: dynamoattr.S(failPK(r.BatchID, l, r.Sheet, r.Row)), attrSK: dynamoattr.S(failSK(r.Sheet, r.Row))}
	it["batch_id"] = dynamoattr.S(r.BatchID)
	it["sheet"] = dynamoattr.S(r.Sheet)
	it["row"] = dynamoattr.N(r.Row)
	it["layer"] = dynamoattr.S(string(r.Layer))
	it["reason"] = dynamoattr.S(string(r.Reason))
	dynamoattr.Put(it, "field", dynamoattr.OptS(r.Field))
	dynamoattr.Put(it, "message", dynamoattr.OptS(r.Message))
	fm, err := dynamoattr.JSON(r.FieldMapping, len(r.FieldMapping) == 0)
	if err != nil {
		return nil, fmt.Errorf("encode field mapping: %w", err)
	}
	dynamoattr.Put(it, "field_mapping", fm)
	dynamoattr.Put(it, "rule_version", dynamoattr.OptS(r.RuleVersion))
	it["retry_count"] = dynamoattr.N(int64(r.RetryCount))
	dynamoattr.Put(it, "failure_at", dynamoattr.Time(r.FailureAt))
	dynamoattr.Put(it, "trace_id", dynamoattr.OptS(r.TraceID))
	it["shard"] = dynamoattr.N(int64(r.Shard))
	if expires > 0 {
		it[TTLAttribute] = dynamoattr.N(expires)
	}
	base := dynamoattr.Size(it)
	dynamoattr.Put(it, "raw_line", dynamoattr.OptS(r.RawLine))
	cells, err := dynamoattr.JSON(r.Cells, len(r.Cells) == 0)
	if err != nil {
		return nil, fmt.Errorf("encode cells: %w", err)
	}
	dynamoattr.Put(it, "cells", cells)
	size := dynamoattr.Size(it)
	if size <= writeUnit || r.RawLine == "" && len(r.Cells) == 0 {
		return it, nil
	}
	blob, err := gzipJSON(rawBlob{RawLine: r.RawLine, Cells: r.Cells})
	if err != nil {
		return nil, err
	}
	units := func(n int) int { return (n + writeUnit - 1) / writeUnit }
	zipped := base + len("raw_gz") + len(blob)
	if size <= itemLimit && units(zipped) >= units(size) {
		return it, nil
	}
	delete(it, "raw_line")
	delete(it, "cells")
	if zipped <= itemLimit {
		it["raw_gz"] = dynamoattr.B(blob)
		return it, nil
	}
	truncated := dynamoattr.N(int64(len(r.RawLine)))
	room := max(0, itemLimit-base-len("raw_line")-len("raw_truncated")-dynamoattr.ValueSize(truncated))
	it["raw_line"] = dynamoattr.S(text.Truncate(r.RawLine, room, ""))
	it["raw_truncated"] = truncated
	return it, nil
}

func gzipJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(v); err != nil {
		return nil, fmt.Errorf("compress raw line: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress raw line: %w", err)
	}
	return buf.Bytes(), nil
}

func decodeFailure(it item) (failure.Record, error) {
	d := dynamoattr.NewDecoder(it)
	r := failure.Record{
		BatchID:     d.S("batch_id"),
		Sheet:       d.S("sheet"),
		Row:         d.N("row"),
		Layer:       failure.Layer(d.S("layer")),
		Reason:      failure.Reason(d.S("reason")),
		Field:       d.S("field"),
		Message:     d.S("message"),
		RawLine:     d.S("raw_line"),
		RuleVersion: d.S("rule_version"),
		RetryCount:  int(d.N("retry_count")),
		FailureAt:   d.Time("failure_at"),
		TraceID:     d.S("trace_id"),
		Shard:       int(d.N("shard")),
		ResolvedBy:  d.S("resolved_by"),
		ResolvedAt:  d.Time("resolved_at"),
	}
	d.JSON("cells", &r.Cells)
	d.JSON("field_mapping", &r.FieldMapping)
	if gz := d.B("raw_gz"); len(gz) > 0 {
		var blob rawBlob
		if err := gunzipJSON(gz, &blob); err != nil {
			d.Fail("raw_gz", err)
		}
		r.RawLine, r.Cells = blob.RawLine, blob.Cells
	}
	if d.Err() != nil {
		return failure.Record{}, fmt.Errorf("failure item %s/%s/%d: %w", r.BatchID, r.Sheet, r.Row, d.Err())
	}
	return r, nil
}

func gunzipJSON(b []byte, v any) error {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer zr.Close()
	data, err := io.ReadAll(zr)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}
