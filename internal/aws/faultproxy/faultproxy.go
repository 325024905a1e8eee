// Package faultproxy is a small fault-injecting HTTP proxy for tests: put in
// front of an AWS API endpoint (moto), it answers a set share of DynamoDB,
// S3 and SQS calls with a throttling error, a 500, or a stall, the way AWS
// misbehaves on a bad day, and forwards the rest untouched. The SDK sees
// real error responses of each service's protocol, so its retryer and the
// engine's own retries, circuit breaker and triage all run as in production.
//
// With a Model it also makes moto look like AWS over the network: realistic
// latencies (moto's own time subtracted), moto served one call at a time
// behind them, and DynamoDB's transaction conflicts (see Model). The
// scale benchmarks (internal/bench, docs/scale.md) use it.
package faultproxy

import (
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is one kind of injected failure.
type Fault string

// Faults the proxy injects.
const (
	Throttle Fault = "throttle" // the service's throttling error (retryable)
	Internal Fault = "internal" // HTTP 500
	Stall    Fault = "stall"    // the request waits Config.Stall, then is forwarded
	Denied   Fault = "denied"   // the service's access-denied error (not retryable)
)

// Config says what to inject.
type Config struct {
	Target string  // the real endpoint, e.g. moto's URL
	Rate   float64 // share of calls that get a fault, 0..1
	// Faults to pick from, uniformly (default all three).
	Faults []Fault // (Denied is never picked by default)
	// Stall is how long a stalled call waits (default 2s).
	Stall time.Duration
	// Services limits the faults to these services ("dynamodb", "s3",
	// "sqs"); empty means all.
	Services []string
	// Only, when set, limits the faults to the requests it accepts (e.g.
	// S3 object reads, so that provisioning and the split still work).
	Only func(*http.Request) bool
	Seed uint64
	// Model, when set, gives every call an AWS-like latency and models
	// DynamoDB's transaction conflicts (see Model).
	Model *Model
}

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	URL      string // where clients send their calls
	srv      *http.Server
	ln       net.Listener
	cfg      Config
	mu       sync.Mutex
	rng      *rand.Rand
	injected atomic.Int64
	total    atomic.Int64
	byFault  sync.Map // "service fault" -> *atomic.Int64
	model    *model   // nil: forward untouched
}

// Start starts a proxy on a free loopback port.
func Start(cfg Config) (*Proxy, error) {
	target, err := url.Parse(cfg.Target)
	if err != nil {
		return nil, err
	}
	if len(cfg.Faults) == 0 {
		cfg.Faults = []Fault{Throttle, Internal, Stall}
	}
	if cfg.Stall <= 0 {
		cfg.Stall = 2 * time.Second
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{URL: "http://" + ln.Addr().String(), ln: ln, cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
	if cfg.Model != nil {
		p.model = newModel(*cfg.Model)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.total.Add(1)
		svc := service(r)
		if f, ok := p.pick(svc); ok && (p.cfg.Only == nil || p.cfg.Only(r)) {
			p.count(svc, f)
			switch f {
			case Throttle, Internal, Denied:
				errorResponses[f][svc].write(w)
				return
			case Stall:
				select {
				case <-time.After(p.cfg.Stall):
				case <-r.Context().Done():
					return
				}
			}
		}
		if p.model != nil && svc != "other" {
			p.serve(w, r, svc, p.normal())
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go p.srv.Serve(ln)
	return p, nil
}

// Set changes the share of faulted calls and the faults to pick from (nil
// keeps the current faults) while the proxy runs.
func (p *Proxy) Set(rate float64, faults ...Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg.Rate = rate
	if len(faults) > 0 {
		p.cfg.Faults = faults
	}
}

// Close stops the proxy.
func (p *Proxy) Close() error { return p.srv.Close() }

// Injected returns how many calls got a fault, and how many calls there were.
func (p *Proxy) Injected() (faults, calls int64) { return p.injected.Load(), p.total.Load() }

// Counts returns the injected faults by "service fault".
func (p *Proxy) Counts() map[string]int64 {
	out := map[string]int64{}
	p.byFault.Range(func(k, v any) bool { out[k.(string)] = v.(*atomic.Int64).Load(); return true })
	return out
}

func (p *Proxy) count(svc string, f Fault) {
	p.injected.Add(1)
	v, _ := p.byFault.LoadOrStore(svc+" "+string(f), new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// normal draws a standard normal deviate from the proxy's generator.
func (p *Proxy) normal() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.NormFloat64()
}

func (p *Proxy) pick(svc string) (Fault, bool) {
	if svc == "other" {
		return "", false
	}
	if len(p.cfg.Services) > 0 {
		found := false
		for _, s := range p.cfg.Services {
			found = found || s == svc
		}
		if !found {
			return "", false
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rng.Float64() >= p.cfg.Rate {
		return "", false
	}
	return p.cfg.Faults[p.rng.IntN(len(p.cfg.Faults))], true
}

// service tells the AWS service a request is for: DynamoDB and SQS (JSON
// protocol) name themselves in X-Amz-Target; query-protocol calls (STS,
// CloudFormation) are "other" and never faulted; the rest is S3.
func service(r *http.Request) string {
	target := r.Header.Get("X-Amz-Target")
	switch {
	case strings.HasPrefix(target, "DynamoDB"):
		return "dynamodb"
	case strings.HasPrefix(target, "AmazonSQS"):
		return "sqs"
	case target != "" || strings.Contains(r.Header.Get("Content-Type"), "x-www-form-urlencoded"):
		return "other"
	}
	return "s3"
}

// errorResponse is one service's error, as that service writes it: JSON
// (DynamoDB; SQS with its query-error header) or S3's XML.
type errorResponse struct {
	status     int
	code       string // S3's <Code>, or the JSON __type
	message    string
	queryError string // SQS's x-amzn-query-error header
	xml        bool
}

func (e errorResponse) write(w http.ResponseWriter) {
	if e.xml {
		xmlError(w, e.status, e.code, e.message)
		return
	}
	if e.queryError != "" {
		w.Header().Set("x-amzn-query-error", e.queryError)
	}
	jsonError(w, e.status, e.code, e.message)
}

// errorResponses are the injected errors by fault and service.
var errorResponses = map[Fault]map[string]errorResponse{
	Throttle: {
		"dynamodb": {status: http.StatusBadRequest, code: "com.amazonaws.dynamodb.v20120810#ThrottlingException", message: "Rate of requests exceeds the allowed throughput."},
		"sqs":      {status: http.StatusBadRequest, code: "com.amazonaws.sqs#ThrottlingException", message: "Rate exceeded", queryError: "ThrottlingException;Sender"},
		"s3":       {status: http.StatusServiceUnavailable, code: "SlowDown", message: "Please reduce your request rate.", xml: true},
	},
	Internal: {
		"dynamodb": {status: http.StatusInternalServerError, code: "com.amazonaws.dynamodb.v20120810#InternalServerError", message: "Internal server error (injected)"},
		"sqs":      {status: http.StatusInternalServerError, code: "com.amazonaws.sqs#InternalError", message: "Internal error (injected)", queryError: "InternalError;Receiver"},
		"s3":       {status: http.StatusInternalServerError, code: "InternalError", message: "We encountered an internal error (injected).", xml: true},
	},
	Denied: {
		"dynamodb": {status: http.StatusBadRequest, code: "com.amazonaws.dynamodb.v20120810#AccessDeniedException", message: "User is not authorized to perform this action (injected)"},
		"sqs":      {status: http.StatusForbidden, code: "com.amazonaws.sqs#AccessDenied", message: "Access to the resource is denied (injected)", queryError: "AccessDenied;Sender"},
		"s3":       {status: http.StatusForbidden, code: "AccessDenied", message: "Access Denied (injected)", xml: true},
	},
}

func jsonError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, []byte(fmt.Sprintf(`{"__type":%q,"message":%q}`, typ, msg)))
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10)) // DynamoDB clients check it
	w.WriteHeader(status)
	w.Write(body)
}

func xmlError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>injected</RequestId></Error>`, code, msg)
}
