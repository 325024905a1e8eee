package main

import (
	"context"
	"errors"
	"maps"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	"go.yaml.in/yaml/v3"

	"github.com/catalog-import/catalog-import/internal/aws/dynamoattr"
)

// meter counts the AWS requests of the clients it is installed on, by
// service and operation, and the DynamoDB capacity they consume, two ways:
//
//   - reported: every DynamoDB request asks for ReturnConsumedCapacity
//     INDEXES and the units in the responses are added up. This is the
//     number on AWS; moto returns constants (PutItem 1.0 whatever the item's
//     size, BatchWriteItem 1.0 per call, TransactWriteItems nothing), so on
//     moto it is shown only to say so.
//   - estimated: the units DynamoDB's documented rules charge, from the
//     sizes of the items involved (dynamoattr.Size): a write costs one unit
//     per KB of the larger of the item before and after it (a failed
//     condition too), twice in a transaction (a cancelled transaction is
//     counted as if it had committed: an upper bound); each global secondary
//     index whose entry changes costs one more unit per KB of the entry (two
//     when its key changes); a read costs one unit per 4 KB of each item
//     (BatchGetItem, GetItem; an absent item the minimum), half when
//     eventually consistent; a Query or Scan one per 4 KB of what it
//     returns. The sizes before and after a write are read from moto with a
//     client of its own (not counted).
type meter struct {
	sizer   *dynamodb.Client      // reads item sizes, not counted
	indexes map[string][]index    // by table
	mu      sync.Mutex            // guards the rest
	ops     map[string]int        // "service operation" -> requests
	est     map[string]*units     // table -> estimated units
	rep     map[string]float64    // table -> units reported by the endpoint
	events  map[string]int        // "PutItem condition failed", ...
	tables  map[string]string     // table name -> label ("products", "state")
	keys    map[string][]string   // table name -> key attributes
	kinds   map[string]*kindUnits // "label kind" -> write units and bytes
}

// kindUnits are the writes of one kind of item (a state table item by its
// sort key's prefix: batch, shard, failure record).
type kindUnits struct {
	writes      int
	units, size float64
}

// kindOf names an item's kind: the state table's sort key up to its first
// '#' after the first character, or the table's label.
func kindOf(label string, key dynamoattr.Item) string {
	sk, ok := key["sk"].(*ddbtypes.AttributeValueMemberS)
	if !ok {
		return label
	}
	k := sk.Value
	if i := strings.IndexByte(k[min(1, len(k)):], '#'); i >= 0 {
		k = k[:i+1]
	}
	return label + " " + strings.Trim(k, "#")
}

// units are the capacity units one table consumed.
type units struct {
	Write, Index, Read float64
}

// index is a global secondary index as the estimate needs it.
type index struct {
	name       string
	keys       []string // the index's key attributes
	projection ddbtypes.ProjectionType
	include    []string
}

func newMeter(sizer *dynamodb.Client) *meter {
	return &meter{sizer: sizer, indexes: map[string][]index{}, ops: map[string]int{}, est: map[string]*units{},
		rep: map[string]float64{}, events: map[string]int{}, tables: map[string]string{}, keys: map[string][]string{}, kinds: map[string]*kindUnits{}}
}

// table registers a table under a label: its key and indexes are read from
// moto, the projection of each index from template.yaml's resource (what
// AWS has; moto's tables come from the code's TableInput).
func (m *meter) table(ctx context.Context, name, label, resource string) error {
	d, err := m.sizer.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		return err
	}
	tpl := templateProjections(resource)
	var ixs []index
	for _, g := range d.Table.GlobalSecondaryIndexes {
		ix := index{name: aws.ToString(g.IndexName)}
		for _, k := range g.KeySchema {
			ix.keys = append(ix.keys, aws.ToString(k.AttributeName))
		}
		if g.Projection != nil {
			ix.projection, ix.include = g.Projection.ProjectionType, g.Projection.NonKeyAttributes
		}
		if p, ok := tpl[ix.name]; ok {
			ix.projection = p
		}
		ixs = append(ixs, ix)
	}
	var key []string
	for _, k := range d.Table.KeySchema {
		key = append(key, aws.ToString(k.AttributeName))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.indexes[name] = ixs
	m.tables[name] = label
	m.est[name] = &units{}
	m.keys[name] = key
	return nil
}

// templateProjections reads the projection type of each index of a table
// resource of template.yaml (in the working directory); none when it cannot.
func templateProjections(resource string) map[string]ddbtypes.ProjectionType {
	b, err := os.ReadFile("template.yaml")
	if err != nil {
		return nil
	}
	var tpl struct {
		Resources map[string]struct {
			Properties struct {
				GlobalSecondaryIndexes []struct {
					IndexName  string `yaml:"IndexName"`
					Projection struct {
						ProjectionType string `yaml:"ProjectionType"`
					} `yaml:"Projection"`
				} `yaml:"GlobalSecondaryIndexes"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if yaml.Unmarshal(b, &tpl) != nil {
		return nil
	}
	out := map[string]ddbtypes.ProjectionType{}
	for _, g := range tpl.Resources[resource].Properties.GlobalSecondaryIndexes {
		out[g.IndexName] = ddbtypes.ProjectionType(g.Projection.ProjectionType)
	}
	return out
}

// option is the middleware to install on the measured clients.
func (m *meter) option(s *middleware.Stack) error {
	return s.Initialize.Add(middleware.InitializeMiddlewareFunc("Meter", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		svc, op := awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx)
		m.mu.Lock()
		m.ops[svc+" "+op]++
		m.mu.Unlock()
		if svc != "DynamoDB" {
			return next.HandleInitialize(ctx, in)
		}
		askCapacity(in.Parameters)
		before := m.itemsBefore(ctx, in.Parameters)
		out, md, err := next.HandleInitialize(ctx, in)
		m.count(ctx, op, in.Parameters, out.Result, err, before)
		return out, md, err
	}), middleware.After)
}

// askCapacity sets ReturnConsumedCapacity INDEXES on a DynamoDB input.
func askCapacity(params any) {
	const c = ddbtypes.ReturnConsumedCapacityIndexes
	switch in := params.(type) {
	case *dynamodb.PutItemInput:
		in.ReturnConsumedCapacity = c
	case *dynamodb.UpdateItemInput:
		in.ReturnConsumedCapacity = c
	case *dynamodb.DeleteItemInput:
		in.ReturnConsumedCapacity = c
	case *dynamodb.BatchWriteItemInput:
		in.ReturnConsumedCapacity = c
	case *dynamodb.TransactWriteItemsInput:
		in.ReturnConsumedCapacity = c
	case *dynamodb.GetItemInput:
		in.ReturnConsumedCapacity = c
	case *dynamodb.BatchGetItemInput:
		in.ReturnConsumedCapacity = c
	case *dynamodb.QueryInput:
		in.ReturnConsumedCapacity = c
	case *dynamodb.ScanInput:
		in.ReturnConsumedCapacity = c
	}
}

// write is one item write of a request.
type write struct {
	table string
	key   dynamoattr.Item
	put   dynamoattr.Item // the new item of a Put (nil: an update or a delete)
	del   bool
	txn   bool
}

func (m *meter) keyOf(table string, it dynamoattr.Item) dynamoattr.Item {
	k := dynamoattr.Item{}
	for _, a := range m.keys[table] {
		k[a] = it[a]
	}
	return k
}

func (m *meter) writesOf(params any) []write {
	var ws []write
	switch in := params.(type) {
	case *dynamodb.PutItemInput:
		t := aws.ToString(in.TableName)
		ws = append(ws, write{table: t, key: m.keyOf(t, in.Item), put: in.Item})
	case *dynamodb.UpdateItemInput:
		ws = append(ws, write{table: aws.ToString(in.TableName), key: in.Key})
	case *dynamodb.DeleteItemInput:
		ws = append(ws, write{table: aws.ToString(in.TableName), key: in.Key, del: true})
	case *dynamodb.BatchWriteItemInput:
		for t, reqs := range in.RequestItems {
			for _, r := range reqs {
				if r.PutRequest != nil {
					ws = append(ws, write{table: t, key: m.keyOf(t, r.PutRequest.Item), put: r.PutRequest.Item})
				} else if r.DeleteRequest != nil {
					ws = append(ws, write{table: t, key: r.DeleteRequest.Key, del: true})
				}
			}
		}
	case *dynamodb.TransactWriteItemsInput:
		for _, it := range in.TransactItems {
			switch {
			case it.Put != nil:
				t := aws.ToString(it.Put.TableName)
				ws = append(ws, write{table: t, key: m.keyOf(t, it.Put.Item), put: it.Put.Item, txn: true})
			case it.Update != nil:
				ws = append(ws, write{table: aws.ToString(it.Update.TableName), key: it.Update.Key, txn: true})
			case it.Delete != nil:
				ws = append(ws, write{table: aws.ToString(it.Delete.TableName), key: it.Delete.Key, del: true, txn: true})
			case it.ConditionCheck != nil:
				// A condition check reads: 2 read units per 4 KB, not counted
				// here (one per checkpoint that moves nothing).
			}
		}
	}
	return ws
}

// itemsBefore reads the items a write request is about to change.
func (m *meter) itemsBefore(ctx context.Context, params any) []dynamoattr.Item {
	ws := m.writesOf(params)
	if len(ws) == 0 {
		return nil
	}
	return m.read(ctx, ws)
}

// read returns the current items of the writes' keys (nil where absent).
func (m *meter) read(ctx context.Context, ws []write) []dynamoattr.Item {
	out := make([]dynamoattr.Item, len(ws))
	for i, w := range ws {
		res, err := m.sizer.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(w.table), Key: w.key, ConsistentRead: aws.Bool(true)})
		if err == nil && len(res.Item) > 0 {
			out[i] = res.Item
		}
	}
	return out
}

func kb(size int, unit int) float64 {
	return math.Max(1, math.Ceil(float64(size)/float64(unit)))
}

// count adds a request's units.
func (m *meter) count(ctx context.Context, op string, params, result any, err error, before []dynamoattr.Item) {
	ws := m.writesOf(params)
	var after []dynamoattr.Item
	if len(ws) > 0 {
		after = m.read(ctx, ws)
	}
	var failed *ddbtypes.ConditionalCheckFailedException
	var cancelled *ddbtypes.TransactionCanceledException
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case errors.As(err, &failed):
		m.events[op+" condition failed"]++
	case errors.As(err, &cancelled):
		m.events[op+" cancelled"]++
	case err != nil:
		m.events[op+" error"]++
	}
	applied := err == nil
	for i, w := range ws {
		u := m.est[w.table]
		if u == nil {
			continue
		}
		old, nu := before[i], after[i]
		if w.put != nil && !applied {
			nu = w.put // a failed put is charged by the larger of the two
		}
		size := max(dynamoattr.Size(old), dynamoattr.Size(nu))
		f := 1.0
		if w.txn {
			f = 2
		}
		u.Write += f * kb(size, 1024)
		k := m.kinds[kindOf(m.tables[w.table], w.key)]
		if k == nil {
			k = &kindUnits{}
			m.kinds[kindOf(m.tables[w.table], w.key)] = k
		}
		k.writes++
		k.units += f * kb(size, 1024)
		k.size += float64(size)
		if applied {
			u.Index += m.indexUnits(w.table, old, nu)
		}
	}
	switch in := params.(type) {
	case *dynamodb.GetItemInput:
		if res, ok := result.(*dynamodb.GetItemOutput); ok {
			m.addRead(aws.ToString(in.TableName), []dynamoattr.Item{res.Item}, 1, aws.ToBool(in.ConsistentRead))
		}
	case *dynamodb.BatchGetItemInput:
		if res, ok := result.(*dynamodb.BatchGetItemOutput); ok {
			for t, ka := range in.RequestItems {
				got := res.Responses[t]
				m.addRead(t, got, len(ka.Keys)-len(res.UnprocessedKeys[t].Keys), aws.ToBool(ka.ConsistentRead))
			}
		}
	case *dynamodb.QueryInput:
		if res, ok := result.(*dynamodb.QueryOutput); ok {
			m.addScan(aws.ToString(in.TableName), res.Items, aws.ToBool(in.ConsistentRead))
		}
	case *dynamodb.ScanInput:
		if res, ok := result.(*dynamodb.ScanOutput); ok {
			m.addScan(aws.ToString(in.TableName), res.Items, aws.ToBool(in.ConsistentRead))
		}
	}
	m.addReported(result)
}

func (m *meter) addRead(table string, items []dynamoattr.Item, keys int, consistent bool) {
	u := m.est[table]
	if u == nil {
		return
	}
	f := 0.5
	if consistent {
		f = 1
	}
	n := 0
	for _, it := range items {
		if len(it) > 0 {
			u.Read += f * kb(dynamoattr.Size(it), 4096)
			n++
		}
	}
	u.Read += f * float64(max(0, keys-n)) // absent items: the minimum
}

func (m *meter) addScan(table string, items []dynamoattr.Item, consistent bool) {
	u := m.est[table]
	if u == nil {
		return
	}
	size := 0
	for _, it := range items {
		size += dynamoattr.Size(it)
	}
	f := 0.5
	if consistent {
		f = 1
	}
	u.Read += f * kb(size, 4096)
}

// indexUnits is what a write from old to nu (nil: absent) costs in the
// table's indexes.
func (m *meter) indexUnits(table string, old, nu dynamoattr.Item) float64 {
	var total float64
	for _, ix := range m.indexes[table] {
		has := func(it dynamoattr.Item) bool {
			if it == nil {
				return false
			}
			for _, k := range ix.keys {
				if it[k] == nil {
					return false
				}
			}
			return true
		}
		entry := func(it dynamoattr.Item) dynamoattr.Item {
			e := dynamoattr.Item{}
			for _, k := range append(slices.Clone(m.keys[table]), ix.keys...) {
				e[k] = it[k]
			}
			switch ix.projection {
			case ddbtypes.ProjectionTypeAll:
				maps.Copy(e, it)
			case ddbtypes.ProjectionTypeInclude:
				for _, a := range ix.include {
					if v, ok := it[a]; ok {
						e[a] = v
					}
				}
			}
			return e
		}
		switch o, n := has(old), has(nu); {
		case !o && !n:
		case o && !n:
			total++ // the entry is deleted
		case !o && n:
			total += kb(dynamoattr.Size(entry(nu)), 1024)
		default:
			eo, en := entry(old), entry(nu)
			keyChanged := false
			for _, k := range ix.keys {
				keyChanged = keyChanged || !reflect.DeepEqual(eo[k], en[k])
			}
			switch {
			case keyChanged:
				total += 1 + kb(dynamoattr.Size(en), 1024)
			case !reflect.DeepEqual(eo, en):
				total += kb(dynamoattr.Size(en), 1024)
			}
		}
	}
	return total
}

// addReported adds the ConsumedCapacity of a response.
func (m *meter) addReported(result any) {
	var ccs []ddbtypes.ConsumedCapacity
	switch r := result.(type) {
	case *dynamodb.PutItemOutput:
		ccs = optCC(r.ConsumedCapacity)
	case *dynamodb.UpdateItemOutput:
		ccs = optCC(r.ConsumedCapacity)
	case *dynamodb.DeleteItemOutput:
		ccs = optCC(r.ConsumedCapacity)
	case *dynamodb.GetItemOutput:
		ccs = optCC(r.ConsumedCapacity)
	case *dynamodb.QueryOutput:
		ccs = optCC(r.ConsumedCapacity)
	case *dynamodb.ScanOutput:
		ccs = optCC(r.ConsumedCapacity)
	case *dynamodb.BatchWriteItemOutput:
		ccs = r.ConsumedCapacity
	case *dynamodb.BatchGetItemOutput:
		ccs = r.ConsumedCapacity
	case *dynamodb.TransactWriteItemsOutput:
		ccs = r.ConsumedCapacity
	}
	for _, cc := range ccs {
		m.rep[aws.ToString(cc.TableName)] += aws.ToFloat64(cc.CapacityUnits)
	}
}

func optCC(cc *ddbtypes.ConsumedCapacity) []ddbtypes.ConsumedCapacity {
	if cc == nil {
		return nil
	}
	return []ddbtypes.ConsumedCapacity{*cc}
}

// snapshot is what a meter measured.
type snapshot struct {
	ops    map[string]int
	est    map[string]units // by label
	rep    map[string]float64
	events map[string]int
	kinds  map[string]kindUnits
}

func (m *meter) take() snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := snapshot{ops: m.ops, est: map[string]units{}, rep: map[string]float64{}, events: m.events, kinds: map[string]kindUnits{}}
	for k, v := range m.kinds {
		s.kinds[k] = *v
	}
	m.kinds = map[string]*kindUnits{}
	for t, u := range m.est {
		s.est[m.tables[t]] = *u
		m.est[t] = &units{}
	}
	for t, v := range m.rep {
		s.rep[m.tables[t]] += v
	}
	m.ops, m.rep, m.events = map[string]int{}, map[string]float64{}, map[string]int{}
	return s
}

// sum adds the requests of svc whose operation is one of ops (all when none).
func (s snapshot) sum(svc string, ops ...string) int {
	n := 0
	for k, v := range s.ops {
		sv, op, _ := strings.Cut(k, " ")
		if sv == svc && (len(ops) == 0 || slices.Contains(ops, op)) {
			n += v
		}
	}
	return n
}
