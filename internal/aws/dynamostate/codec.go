package dynamostate

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/text"
)

// item is one DynamoDB item.
type item = map[string]types.AttributeValue

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

// timeLayout is RFC 3339 with nine fraction digits: fixed width for UTC
// times, so stored times sort (and compare in conditions) as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// Attribute value constructors.

func avS(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func avN(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// avOptS is s, or nil (attribute left out or removed) when s is empty.
func avOptS(s string) types.AttributeValue {
	if s == "" {
		return nil
	}
	return avS(s)
}

// avTime is t as fixed-width UTC text, or nil for the zero time.
func avTime(t time.Time) types.AttributeValue {
	if t.IsZero() {
		return nil
	}
	return avS(formatTime(t))
}

// avJSON is v as JSON text, or nil when empty is true.
func avJSON(v any, empty bool) (types.AttributeValue, error) {
	if empty {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return avS(string(b)), nil
}

// put sets it[name] = v unless v is nil.
func put(it item, name string, v types.AttributeValue) {
	if v != nil {
		it[name] = v
	}
}

// dec reads attributes of one item and keeps the first error.
type dec struct {
	it  item
	err error
}

func (d *dec) fail(name string, err error) {
	if d.err == nil {
		d.err = fmt.Errorf("decode attribute %s: %w", name, err)
	}
}

func (d *dec) s(name string) string {
	switch v := d.it[name].(type) {
	case nil:
		return ""
	case *types.AttributeValueMemberS:
		return v.Value
	default:
		d.fail(name, fmt.Errorf("type %T, want S", v))
		return ""
	}
}

func (d *dec) n(name string) int64 {
	switch v := d.it[name].(type) {
	case nil:
		return 0
	case *types.AttributeValueMemberN:
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			d.fail(name, err)
		}
		return n
	default:
		d.fail(name, fmt.Errorf("type %T, want N", v))
		return 0
	}
}

func (d *dec) b(name string) []byte {
	switch v := d.it[name].(type) {
	case nil:
		return nil
	case *types.AttributeValueMemberB:
		return v.Value
	default:
		d.fail(name, fmt.Errorf("type %T, want B", v))
		return nil
	}
}

func (d *dec) t(name string) time.Time {
	s := d.s(name)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		d.fail(name, err)
	}
	return t.UTC()
}

func (d *dec) json(name string, v any) {
	s := d.s(name)
	if s == "" {
		return
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		d.fail(name, err)
	}
}

// Batch items.

func batchKey(id string) item {
	return item{attrPK: avS(batchPK(id)), attrSK: avS(batchSK)}
}

// batchItem is the stored form of b; creator marks the CreateBatch call
// that wrote it (see CreateBatch).
func batchItem(b state.Batch, creator string) (item, error) {
	layout, err := avJSON(b.Layout, false)
	if err != nil {
		return nil, fmt.Errorf("encode layout: %w", err)
	}
	it := batchKey(b.ID)
	it[attrGSI1PK] = avS(batchesGSI)
	it[attrGSI1SK] = avS(formatTime(b.CreatedAt) + "#" + b.ID)
	it["batch_id"] = avS(b.ID)
	it["status"] = avS(string(b.Status))
	put(it, "source_uri", avOptS(b.Source.URI))
	it["source_size"] = avN(b.Source.Size)
	put(it, "source_etag", avOptS(b.Source.ETag))
	put(it, "source_version", avOptS(b.Source.Version))
	put(it, "source_mod_time", avTime(b.Source.ModTime))
	it["layout"] = layout
	if len(b.Profile) > 0 {
		it["profile"] = &types.AttributeValueMemberB{Value: b.Profile}
	}
	put(it, "rule_version", avOptS(b.RuleVersion))
	it["shards"] = avN(int64(b.Shards))
	it["shards_done"] = avN(int64(b.ShardsDone))
	it["rows_total"] = avN(b.Counts.Total)
	it["rows_imported"] = avN(b.Counts.Imported)
	it["rows_failed"] = avN(b.Counts.Failed)
	it["rows_skipped"] = avN(b.Counts.Skipped)
	if b.Counts.Superseded != 0 {
		it["rows_superseded"] = avN(b.Counts.Superseded)
	}
	it["batch_order"] = avN(b.Order)
	put(it, "by_reason", avByReason(b.ByReason))
	put(it, "message", avOptS(b.Message))
	put(it, "report", avOptS(b.Report))
	put(it, "trace_id", avOptS(b.TraceID))
	put(it, "parent", avOptS(b.Parent))
	if b.Resolved != 0 {
		it["failures_resolved"] = avN(b.Resolved)
	}
	put(it, "created_at", avTime(b.CreatedAt))
	put(it, "updated_at", avTime(b.UpdatedAt))
	put(it, "finished_at", avTime(b.FinishedAt))
	put(it, "created_by", avOptS(creator))
	return it, nil
}

// avByReason is a map of reason to count (M of N), nil when empty.
func avByReason(m map[failure.Reason]int64) types.AttributeValue {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]types.AttributeValue, len(m))
	for r, n := range m {
		out[string(r)] = avN(n)
	}
	return &types.AttributeValueMemberM{Value: out}
}

func decodeBatch(it item) (state.Batch, error) {
	d := dec{it: it}
	b := state.Batch{
		ID:     d.s("batch_id"),
		Status: state.BatchStatus(d.s("status")),
		Order:  d.n("batch_order"),
		Source: state.Source{URI: d.s("source_uri"), Size: d.n("source_size"), ETag: d.s("source_etag"),
			Version: d.s("source_version"), ModTime: d.t("source_mod_time")},
		RuleVersion: d.s("rule_version"),
		Shards:      int(d.n("shards")),
		ShardsDone:  int(d.n("shards_done")),
		Counts:      countsOf(&d, "rows_"),
		Message:     d.s("message"),
		Report:      d.s("report"),
		TraceID:     d.s("trace_id"),
		Parent:      d.s("parent"),
		Resolved:    d.n("failures_resolved"),
		CreatedAt:   d.t("created_at"),
		UpdatedAt:   d.t("updated_at"),
		FinishedAt:  d.t("finished_at"),
	}
	d.json("layout", &b.Layout)
	if p := d.b("profile"); len(p) > 0 {
		b.Profile = p
	}
	switch v := it["by_reason"].(type) {
	case nil:
	case *types.AttributeValueMemberM:
		b.ByReason = make(map[failure.Reason]int64, len(v.Value))
		sub := dec{it: v.Value}
		for r := range v.Value {
			b.ByReason[failure.Reason(r)] = sub.n(r)
		}
		if sub.err != nil {
			d.fail("by_reason", sub.err)
		}
	default:
		d.fail("by_reason", fmt.Errorf("type %T, want M", v))
	}
	if d.err != nil {
		return state.Batch{}, fmt.Errorf("batch item %s: %w", b.ID, d.err)
	}
	return b, nil
}

// countsOf reads the five counters named prefix+"total", ... (an item
// written before superseded rows were counted has none: 0).
func countsOf(d *dec, prefix string) state.Counts {
	return state.Counts{Total: d.n(prefix + "total"), Imported: d.n(prefix + "imported"), Superseded: d.n(prefix + "superseded"),
		Failed: d.n(prefix + "failed"), Skipped: d.n(prefix + "skipped")}
}

// Shard items.

func shardKey(batchID string, index int) item {
	return item{attrPK: avS(batchPK(batchID)), attrSK: avS(shardSK(index))}
}

func shardItem(s state.Shard) (item, error) {
	staged, err := avJSON(s.Staged, s.Staged == nil)
	if err != nil {
		return nil, fmt.Errorf("encode staged object of shard %d: %w", s.Index, err)
	}
	blocks, err := avJSON(s.Blocks, s.Blocks == nil)
	if err != nil {
		return nil, fmt.Errorf("encode block checksums of shard %d: %w", s.Index, err)
	}
	cp := s.Checkpoint
	it := shardKey(s.BatchID, s.Index)
	it["batch_id"] = avS(s.BatchID)
	it["shard"] = avN(int64(s.Index))
	put(it, "sheet", avOptS(s.Sheet))
	it["sheet_index"] = avN(int64(s.SheetIndex))
	it["byte_start"] = avN(s.Start)
	it["byte_end"] = avN(s.End)
	it["first_row"] = avN(s.FirstRow)
	it["rows"] = avN(s.Rows)
	put(it, "checksum", avOptS(s.Checksum))
	it["status"] = avS(string(s.Status))
	for name, v := range cpAttrs(cp) {
		it[name] = v
	}
	put(it, "owner", avOptS(s.Owner))
	it["epoch"] = avN(s.Epoch)
	put(it, "lease_until", avTime(s.LeaseUntil))
	it["attempts"] = avN(int64(s.Attempts))
	put(it, "message", avOptS(s.Message))
	put(it, "updated_at", avTime(s.UpdatedAt))
	put(it, "progress", avProgress(s.Progress))
	put(it, "blocks", blocks)
	put(it, "staged", staged)
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
		"cp_next_offset": avN(cp.NextOffset), "cp_next_row": avN(cp.NextRow),
		"cp_rows_total": avN(cp.Counts.Total), "cp_rows_imported": avN(cp.Counts.Imported),
		"cp_rows_failed": avN(cp.Counts.Failed), "cp_rows_skipped": avN(cp.Counts.Skipped),
		cpSuperseded: avN(cp.Counts.Superseded),
	}
}

func decodeShard(it item) (state.Shard, error) {
	d := dec{it: it}
	s := state.Shard{
		BatchID:    d.s("batch_id"),
		Index:      int(d.n("shard")),
		Sheet:      d.s("sheet"),
		SheetIndex: int(d.n("sheet_index")),
		Start:      d.n("byte_start"),
		End:        d.n("byte_end"),
		FirstRow:   d.n("first_row"),
		Rows:       d.n("rows"),
		Checksum:   d.s("checksum"),
		Status:     state.ShardStatus(d.s("status")),
		Checkpoint: state.Checkpoint{NextOffset: d.n("cp_next_offset"), NextRow: d.n("cp_next_row"), Counts: countsOf(&d, "cp_rows_")},
		Owner:      d.s("owner"),
		Epoch:      d.n("epoch"),
		LeaseUntil: d.t("lease_until"),
		Attempts:   int(d.n("attempts")),
		Message:    d.s("message"),
		UpdatedAt:  d.t("updated_at"),
		Progress:   d.progress("progress"),
	}
	if _, ok := it["staged"]; ok {
		s.Staged = &state.Staged{}
		d.json("staged", s.Staged)
	}
	if _, ok := it["blocks"]; ok {
		s.Blocks = &state.Blocks{}
		d.json("blocks", s.Blocks)
	}
	if d.err != nil {
		return state.Shard{}, fmt.Errorf("shard item %s/%d: %w", s.BatchID, s.Index, d.err)
	}
	return s, nil
}

// Failure items.

// itemLimit is the largest failure item written as is. DynamoDB's limit is
// 400 KB (names and values); the rest is headroom.
const itemLimit = 350_000

// itemSize estimates an item's size as DynamoDB counts it (attribute names
// plus values; numbers counted generously).
func itemSize(it item) int {
	n := 0
	for name, v := range it {
		n += len(name)
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			n += len(v.Value)
		case *types.AttributeValueMemberB:
			n += len(v.Value)
		case *types.AttributeValueMemberN:
			n += 21
		case *types.AttributeValueMemberM:
			n += 3 + itemSize(v.Value)
		default:
			n += 64
		}
	}
	return n
}

// rawBlob is the compressed form of a large failure record's row bytes.
type rawBlob struct {
	RawLine string   `json:"raw_line"`
	Cells   []string `json:"cells,omitempty"`
}

// failureItem is the stored form of r. expires is the TTL attribute's value
// (epoch seconds), 0 for none. A record over itemLimit keeps its raw line
// and cells gzip-compressed (attribute raw_gz); if that is still too large
// the raw line is cut at a UTF-8 boundary, the cells are dropped and
// raw_truncated holds the raw line's original length in bytes.
func failureItem(r failure.Record, expires int64) (item, error) {
	it := item{attrPK: avS(batchPK(r.BatchID)), attrSK: avS(failSK(r.Sheet, r.Row))}
	it["batch_id"] = avS(r.BatchID)
	it["sheet"] = avS(r.Sheet)
	it["row"] = avN(r.Row)
	it["layer"] = avS(string(r.Layer))
	it["reason"] = avS(string(r.Reason))
	put(it, "field", avOptS(r.Field))
	put(it, "message", avOptS(r.Message))
	fm, err := avJSON(r.FieldMapping, len(r.FieldMapping) == 0)
	if err != nil {
		return nil, fmt.Errorf("encode field mapping: %w", err)
	}
	put(it, "field_mapping", fm)
	put(it, "rule_version", avOptS(r.RuleVersion))
	it["retry_count"] = avN(int64(r.RetryCount))
	put(it, "failure_at", avTime(r.FailureAt))
	put(it, "trace_id", avOptS(r.TraceID))
	it["shard"] = avN(int64(r.Shard))
	if expires > 0 {
		it[TTLAttribute] = avN(expires)
	}
	base := itemSize(it)
	put(it, "raw_line", avOptS(r.RawLine))
	cells, err := avJSON(r.Cells, len(r.Cells) == 0)
	if err != nil {
		return nil, fmt.Errorf("encode cells: %w", err)
	}
	put(it, "cells", cells)
	if itemSize(it) <= itemLimit {
		return it, nil
	}
	delete(it, "raw_line")
	delete(it, "cells")
	blob, err := gzipJSON(rawBlob{RawLine: r.RawLine, Cells: r.Cells})
	if err != nil {
		return nil, err
	}
	if base+len("raw_gz")+len(blob) <= itemLimit {
		it["raw_gz"] = &types.AttributeValueMemberB{Value: blob}
		return it, nil
	}
	room := max(0, itemLimit-base-len("raw_line")-len("raw_truncated")-21)
	it["raw_line"] = avS(text.Truncate(r.RawLine, room, ""))
	it["raw_truncated"] = avN(int64(len(r.RawLine)))
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
	d := dec{it: it}
	r := failure.Record{
		BatchID:     d.s("batch_id"),
		Sheet:       d.s("sheet"),
		Row:         d.n("row"),
		Layer:       failure.Layer(d.s("layer")),
		Reason:      failure.Reason(d.s("reason")),
		Field:       d.s("field"),
		Message:     d.s("message"),
		RawLine:     d.s("raw_line"),
		RuleVersion: d.s("rule_version"),
		RetryCount:  int(d.n("retry_count")),
		FailureAt:   d.t("failure_at"),
		TraceID:     d.s("trace_id"),
		Shard:       int(d.n("shard")),
		ResolvedBy:  d.s("resolved_by"),
		ResolvedAt:  d.t("resolved_at"),
	}
	d.json("cells", &r.Cells)
	d.json("field_mapping", &r.FieldMapping)
	if gz := d.b("raw_gz"); len(gz) > 0 {
		var blob rawBlob
		if err := gunzipJSON(gz, &blob); err != nil {
			d.fail("raw_gz", err)
		}
		r.RawLine, r.Cells = blob.RawLine, blob.Cells
	}
	if d.err != nil {
		return failure.Record{}, fmt.Errorf("failure item %s/%s/%d: %w", r.BatchID, r.Sheet, r.Row, d.err)
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

// Expressions.

// expr collects the attribute names and values of one request's
// expressions, so that each map holds exactly what the expressions use
// (DynamoDB refuses unused ones). Every attribute is referenced by name
// ("#status"), which keeps clear of DynamoDB's reserved words.
type expr struct {
	names map[string]string
	vals  map[string]types.AttributeValue
}

func newExpr() *expr {
	return &expr{names: map[string]string{}, vals: map[string]types.AttributeValue{}}
}

// n returns the placeholder of attribute name.
func (e *expr) n(name string) string {
	e.names["#"+name] = name
	return "#" + name
}

// v returns a placeholder for the value v.
func (e *expr) v(v types.AttributeValue) string {
	k := ":v" + strconv.Itoa(len(e.vals))
	e.vals[k] = v
	return k
}

// Names is the ExpressionAttributeNames map, nil when empty.
func (e *expr) Names() map[string]string {
	if len(e.names) == 0 {
		return nil
	}
	return e.names
}

// Values is the ExpressionAttributeValues map, nil when empty.
func (e *expr) Values() map[string]types.AttributeValue {
	if len(e.vals) == 0 {
		return nil
	}
	return e.vals
}

// update builds an UpdateExpression on top of an expr.
type update struct {
	e                 *expr
	sets, removes, as []string
}

// set assigns v to name; a nil v removes the attribute.
func (u *update) set(name string, v types.AttributeValue) {
	if v == nil {
		u.removes = append(u.removes, u.e.n(name))
		return
	}
	u.sets = append(u.sets, u.e.n(name)+" = "+u.e.v(v))
}

// add adds n to the number attribute name.
func (u *update) add(name string, n int64) {
	u.as = append(u.as, u.e.n(name)+" "+u.e.v(avN(n)))
}

func (u *update) String() string {
	var parts []string
	if len(u.sets) > 0 {
		parts = append(parts, "SET "+strings.Join(u.sets, ", "))
	}
	if len(u.removes) > 0 {
		parts = append(parts, "REMOVE "+strings.Join(u.removes, ", "))
	}
	if len(u.as) > 0 {
		parts = append(parts, "ADD "+strings.Join(u.as, ", "))
	}
	return strings.Join(parts, " ")
}
