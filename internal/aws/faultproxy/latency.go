package faultproxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Latency is how long one kind of call takes on AWS, seen from the client:
// a log-normal distribution with this median and 99th percentile.
type Latency struct {
	Median, P99 time.Duration
}

// sample draws one latency with the standard normal deviate z.
func (l Latency) sample(z float64) time.Duration {
	if l.Median <= 0 {
		return 0
	}
	sigma := 0.0
	if l.P99 > l.Median {
		sigma = math.Log(float64(l.P99)/float64(l.Median)) / 2.326 // z of the 99th percentile
	}
	return time.Duration(float64(l.Median) * math.Exp(sigma*z))
}

// Model makes calls look like AWS over the network instead of moto on
// loopback, for measuring how the engine behaves at scale:
//
//   - every call takes a latency drawn from Latencies (times Dilate), of
//     which moto's own time is subtracted: the proxy sleeps for what is
//     left after moto answered (the call never takes less than moto);
//   - DynamoDB and SQS calls are forwarded to moto one at a time (moto does
//     not apply a conditional write atomically while other requests run,
//     see awsclient.Settings.OneAtATime), while the rest of their latency
//     runs concurrently: so clients that go through a Model proxy must not
//     hold a lock of their own;
//   - DynamoDB transactions conflict as on AWS: while a TransactWriteItems
//     is in progress (from its arrival to its response) its items are
//     held; another transaction touching one of them is cancelled with
//     TransactionConflict, a PutItem, UpdateItem or DeleteItem of one gets
//     TransactionConflictException.
//
// Dilate stretches every latency (10: ten times slower) so that moto, which
// serves one call at a time, stays a small part of each call when many run
// at once; the proxy's Stats say how busy moto was.
type Model struct {
	// Latencies by "service Operation" ("dynamodb PutItem", "sqs
	// SendMessageBatch", "s3 GET"), with "service *" as each service's
	// default. A call of no listed kind takes moto's time only.
	Latencies map[string]Latency
	// Dilate multiplies every latency (default 1).
	Dilate float64
	// KeyAttributes name the key attributes of the tables (to find the item
	// a transaction's Put writes); default pk, sk and sku.
	KeyAttributes []string
}

// Stats is what a Model proxy saw.
type Stats struct {
	Calls     map[string]int64 // by "service Operation"
	Conflicts map[string]int64 // refused by the transaction model, by "service Operation"
	// MotoBusy is the time moto spent answering the serialized calls; Wall
	// the time since the proxy started (or Reset). MotoBusy / Wall is moto's
	// utilization: near 1, moto is the bottleneck and latencies are longer
	// than the model's.
	MotoBusy, Wall time.Duration
	// Overruns counts the calls that took longer than their modeled latency
	// (waiting for moto or in moto).
	Overruns int64
}

// model is a running Model.
type model struct {
	m       Model
	moto    sync.Mutex // one DynamoDB or SQS call at a time
	mu      sync.Mutex // guards the rest
	held    map[string]int
	calls   map[string]int64
	refused map[string]int64
	busy    time.Duration
	over    int64
	since   time.Time
	client  *http.Client
}

func newModel(m Model) *model {
	if m.Dilate <= 0 {
		m.Dilate = 1
	}
	if len(m.KeyAttributes) == 0 {
		m.KeyAttributes = []string{"pk", "sk", "sku"}
	}
	return &model{m: m, held: map[string]int{}, calls: map[string]int64{}, refused: map[string]int64{}, since: time.Now(),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}}
}

// latency draws the modeled latency of one call.
func (md *model) latency(svc, op string, z float64) time.Duration {
	l, ok := md.m.Latencies[svc+" "+op]
	if !ok {
		l = md.m.Latencies[svc+" *"]
	}
	return time.Duration(float64(l.sample(z)) * md.m.Dilate)
}

// operation names a call: the X-Amz-Target operation of DynamoDB and SQS,
// the HTTP method of S3.
func operation(svc string, r *http.Request) string {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		if i := strings.LastIndexByte(t, '.'); i >= 0 {
			return t[i+1:]
		}
		return t
	}
	if svc == "s3" {
		return r.Method
	}
	return "other"
}

// items returns the items a DynamoDB write names (table and key), and
// whether it is a transaction.
func (md *model) items(op string, body []byte) (keys []string, txn bool) {
	type action struct {
		TableName string                     `json:"TableName"`
		Key       map[string]json.RawMessage `json:"Key"`
		Item      map[string]json.RawMessage `json:"Item"`
	}
	key := func(a action) string {
		k := a.Key
		if k == nil {
			k = map[string]json.RawMessage{}
			for _, name := range md.m.KeyAttributes {
				if v, ok := a.Item[name]; ok {
					k[name] = v
				}
			}
		}
		names := make([]string, 0, len(k))
		for n := range k {
			names = append(names, n)
		}
		slices.Sort(names)
		var b strings.Builder
		b.WriteString(a.TableName)
		for _, n := range names {
			fmt.Fprintf(&b, "|%s=%s", n, k[n])
		}
		return b.String()
	}
	switch op {
	case "TransactWriteItems":
		var in struct {
			TransactItems []map[string]action `json:"TransactItems"`
		}
		if json.Unmarshal(body, &in) != nil {
			return nil, true
		}
		for _, it := range in.TransactItems {
			for _, a := range it { // Put, Update, Delete or ConditionCheck
				keys = append(keys, key(a))
			}
		}
		return keys, true
	case "PutItem", "UpdateItem", "DeleteItem":
		var a action
		if json.Unmarshal(body, &a) != nil {
			return nil, false
		}
		return []string{key(a)}, false
	}
	return nil, false
}

// hold takes the items of a transaction, or reports which are held by
// another one (nil: none, the items are now held).
func (md *model) hold(keys []string, txn bool) (conflicts []bool) {
	md.mu.Lock()
	defer md.mu.Unlock()
	found := false
	conflicts = make([]bool, len(keys))
	for i, k := range keys {
		if md.held[k] > 0 {
			conflicts[i], found = true, true
		}
	}
	if found {
		return conflicts
	}
	if txn {
		for _, k := range keys {
			md.held[k]++
		}
	}
	return nil
}

func (md *model) release(keys []string) {
	md.mu.Lock()
	defer md.mu.Unlock()
	for _, k := range keys {
		if md.held[k]--; md.held[k] <= 0 {
			delete(md.held, k)
		}
	}
}

// serve answers one call under the model: the transaction model, then moto
// (one call at a time for DynamoDB and SQS), then the rest of the latency.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, svc string, z float64) {
	md := p.model
	start := time.Now()
	op := operation(svc, r)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	target := md.latency(svc, op, z)
	md.mu.Lock()
	md.calls[svc+" "+op]++
	md.mu.Unlock()
	var keys []string
	if svc == "dynamodb" {
		var txn bool
		keys, txn = md.items(op, body)
		if c := md.hold(keys, txn); c != nil {
			md.mu.Lock()
			md.refused[svc+" "+op]++
			md.mu.Unlock()
			sleepUntil(r, start.Add(target/2)) // refused on arrival, half way
			conflictResponse(w, op, c)
			return
		}
		if txn {
			defer md.release(keys)
		}
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.cfg.Target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	req.Host = r.Host
	req.ContentLength = int64(len(body))
	serial := svc == "dynamodb" || svc == "sqs"
	if serial {
		md.moto.Lock()
	}
	t0 := time.Now()
	resp, err := md.client.Do(req)
	var rbody []byte
	if err == nil {
		rbody, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if serial {
		md.mu.Lock()
		md.busy += time.Since(t0)
		md.mu.Unlock()
		md.moto.Unlock()
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if time.Since(start) > target {
		md.mu.Lock()
		md.over++
		md.mu.Unlock()
	}
	sleepUntil(r, start.Add(target))
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(rbody)
}

func sleepUntil(r *http.Request, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-r.Context().Done():
	}
}

// conflictResponse writes DynamoDB's answer to a write that met a
// transaction in progress on one of its items.
func conflictResponse(w http.ResponseWriter, op string, conflicts []bool) {
	if op != "TransactWriteItems" {
		jsonError(w, http.StatusBadRequest, "com.amazonaws.dynamodb.v20120810#TransactionConflictException", "Transaction is ongoing for the item")
		return
	}
	type reason struct {
		Code    string `json:"Code"`
		Message string `json:"Message,omitempty"`
	}
	rs := make([]reason, len(conflicts))
	codes := make([]string, len(conflicts))
	for i, c := range conflicts {
		rs[i], codes[i] = reason{Code: "None"}, "None"
		if c {
			rs[i], codes[i] = reason{Code: "TransactionConflict", Message: "Transaction is ongoing for the item"}, "TransactionConflict"
		}
	}
	b, _ := json.Marshal(struct {
		Type    string   `json:"__type"`
		Message string   `json:"Message"`
		Reasons []reason `json:"CancellationReasons"`
	}{"com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
		"Transaction cancelled, please refer cancellation reasons for specific reasons [" + strings.Join(codes, ", ") + "]", rs})
	writeJSON(w, http.StatusBadRequest, b)
}

// Stats returns what the proxy's Model saw (zero without a Model).
func (p *Proxy) Stats() Stats {
	md := p.model
	if md == nil {
		return Stats{}
	}
	md.mu.Lock()
	defer md.mu.Unlock()
	s := Stats{Calls: map[string]int64{}, Conflicts: map[string]int64{}, MotoBusy: md.busy, Wall: time.Since(md.since), Overruns: md.over}
	for k, v := range md.calls {
		s.Calls[k] = v
	}
	for k, v := range md.refused {
		s.Conflicts[k] = v
	}
	return s
}

// Reset zeroes the Model's statistics.
func (p *Proxy) Reset() {
	md := p.model
	if md == nil {
		return
	}
	md.mu.Lock()
	defer md.mu.Unlock()
	md.calls, md.refused, md.busy, md.over, md.since = map[string]int64{}, map[string]int64{}, 0, 0, time.Now()
}
