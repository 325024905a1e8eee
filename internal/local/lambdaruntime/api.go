// Package lambdaruntime runs a Lambda function's bootstrap on this machine
// the way Lambda runs it: it serves the Lambda Runtime API (version
// 2018-06-01) on a loopback port, starts the bootstrap with
// AWS_LAMBDA_RUNTIME_API pointing there, hands it one invocation (request
// id, deadline, function ARN and trace header in the headers Lambda sends)
// and returns what came back: the response, the function's error, an init
// error, or a timeout. Build builds the bootstrap as `sam build` does, from
// the Makefile target of the function. importctl invoke uses both where
// `sam local invoke` cannot run (no Docker).
//
// The API is the one documented at
// https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html, checked
// against what github.com/aws/aws-lambda-go's runtime client sends and
// expects (its tests here run a bootstrap built on that client).
package lambdaruntime

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The Runtime API's headers (next invocation) and the error type header and
// trailers a runtime sends with an error.
const (
	HeaderRequestID   = "Lambda-Runtime-Aws-Request-Id"
	HeaderDeadlineMs  = "Lambda-Runtime-Deadline-Ms"
	HeaderFunctionARN = "Lambda-Runtime-Invoked-Function-Arn"
	HeaderTraceID     = "Lambda-Runtime-Trace-Id"
	HeaderErrorType   = "Lambda-Runtime-Function-Error-Type"
	// TrailerErrorBody carries, base64-encoded, the error document of a
	// response whose body failed while it was being streamed (with
	// HeaderErrorType as a trailer too).
	TrailerErrorBody = "Lambda-Runtime-Function-Error-Body"
)

// apiPrefix is the path of the Runtime API version this package serves.
const apiPrefix = "/2018-06-01/runtime/"

// MaxResponseSize is Lambda's limit on a synchronous invocation's response
// (6 MB); a larger response fails the invocation.
const MaxResponseSize = 6 * 1024 * 1024

// ErrorDoc is the error document of the Runtime API (the body of an
// invocation or init error) and of a failed invocation's payload.
type ErrorDoc struct {
	Message string `json:"errorMessage"`
	Type    string `json:"errorType"`
}

// JSON returns the document as Lambda returns it.
func (e ErrorDoc) JSON() []byte {
	b, _ := json.Marshal(e) // two strings: cannot fail
	return b
}

// call is one invocation handed to the runtime.
type call struct {
	inv      Invocation
	deadline time.Time     // set when the runtime takes it
	taken    chan struct{} // closed when GET next has returned it
	done     chan posted   // the runtime's response or error (first one wins)
}

// posted is what the runtime posted for a call, and when.
type posted struct {
	payload   []byte
	errorType string // "" for a response
	at        time.Time
}

// api serves the Runtime API to one bootstrap process: one invocation at a
// time, as Lambda (default capacity) does.
type api struct {
	queue chan *call // invocations waiting for GET next
	// idle is signalled on each GET next (nexts counts them): the second
	// one says the runtime has finished the invocation.
	idle      chan struct{}
	initError chan posted
	closed    chan struct{}
	closeOnce sync.Once

	mu      sync.Mutex
	current map[string]*call // taken and not yet answered, by request id
	nexts   int
}

func newAPI() *api {
	return &api{queue: make(chan *call, 1), idle: make(chan struct{}, 1), initError: make(chan posted, 1),
		closed: make(chan struct{}), current: map[string]*call{}}
}

// nextCount is how many times the runtime has asked for an invocation.
func (a *api) nextCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.nexts
}

func (a *api) close() { a.closeOnce.Do(func() { close(a.closed) }) }

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, apiPrefix)
	switch {
	case !ok:
		notFound(w)
	case rest == "invocation/next" && r.Method == http.MethodGet:
		a.next(w, r)
	case rest == "init/error" && r.Method == http.MethodPost:
		a.postInitError(w, r)
	case strings.HasPrefix(rest, "invocation/") && r.Method == http.MethodPost:
		id, kind, ok := strings.Cut(strings.TrimPrefix(rest, "invocation/"), "/")
		if !ok || id == "" || (kind != "response" && kind != "error") {
			notFound(w)
			return
		}
		a.post(w, r, id, kind == "error")
	default:
		notFound(w)
	}
}

// next answers GET /runtime/invocation/next: it waits for an invocation
// (there is no timeout on this request: the runtime waits between
// invocations) and returns its payload with the invocation's headers.
func (a *api) next(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.nexts++
	a.mu.Unlock()
	select {
	case a.idle <- struct{}{}:
	default:
	}
	var c *call
	select {
	case c = <-a.queue:
	case <-a.closed:
		apiError(w, http.StatusInternalServerError, "Runtime.ExitError", "the execution environment is shutting down")
		return
	case <-r.Context().Done():
		return
	}
	// The deadline the runtime gets is in whole milliseconds: it is the
	// deadline (an answer from a handler whose context expired arrives
	// after it, and is a timeout).
	c.deadline = time.UnixMilli(time.Now().Add(c.inv.Timeout).UnixMilli())
	a.mu.Lock()
	a.current[c.inv.RequestID] = c
	a.mu.Unlock()
	h := w.Header()
	h.Set(HeaderRequestID, c.inv.RequestID)
	h.Set(HeaderDeadlineMs, strconv.FormatInt(c.deadline.UnixMilli(), 10))
	h.Set(HeaderFunctionARN, c.inv.FunctionARN)
	if c.inv.TraceID != "" {
		h.Set(HeaderTraceID, c.inv.TraceID)
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(c.inv.Payload)
	close(c.taken)
}

// post answers POST /runtime/invocation/{id}/response and .../error.
func (a *api) post(w http.ResponseWriter, r *http.Request, id string, isError bool) {
	a.mu.Lock()
	c := a.current[id]
	delete(a.current, id)
	a.mu.Unlock()
	if c == nil {
		apiError(w, http.StatusBadRequest, "InvalidRequestID", "no invocation in progress has request id "+id)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxResponseSize+1))
	p := posted{payload: body, at: time.Now()}
	switch {
	case err != nil:
		p = posted{payload: ErrorDoc{Type: "Runtime.Unknown", Message: "reading the runtime's post: " + err.Error()}.JSON(), errorType: "Runtime.Unknown", at: p.at}
	case len(body) > MaxResponseSize:
		p.errorType = "Function.ResponseSizeTooLarge"
		p.payload = ErrorDoc{Type: p.errorType, Message: "Response payload size exceeded maximum allowed payload size (" + strconv.Itoa(MaxResponseSize) + " bytes)."}.JSON()
		c.done <- p
		apiError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "Exceeded maximum allowed payload size ("+strconv.Itoa(MaxResponseSize)+" bytes).")
		return
	case isError:
		p.errorType = errorTypeOf(r.Header.Get(HeaderErrorType), body)
	case r.Trailer.Get(HeaderErrorType) != "":
		// The response failed while it was being sent: the runtime says so
		// in trailers.
		p.errorType = r.Trailer.Get(HeaderErrorType)
		if doc, err := base64.StdEncoding.DecodeString(r.Trailer.Get(TrailerErrorBody)); err == nil && len(doc) > 0 {
			p.payload = doc
		} else {
			p.payload = ErrorDoc{Type: p.errorType, Message: "the response failed while it was being sent"}.JSON()
		}
	}
	c.done <- p
	accepted(w)
}

// postInitError answers POST /runtime/init/error.
func (a *api) postInitError(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, MaxResponseSize))
	p := posted{payload: body, errorType: errorTypeOf(r.Header.Get(HeaderErrorType), body), at: time.Now()}
	select {
	case a.initError <- p:
	default:
	}
	accepted(w)
}

// errorTypeOf is the error type a runtime gave: the header, else the
// document's errorType, else Lambda's default.
func errorTypeOf(header string, doc []byte) string {
	if header != "" {
		return header
	}
	var d ErrorDoc
	if json.Unmarshal(doc, &d) == nil && d.Type != "" {
		return d.Type
	}
	return "Runtime.Unknown"
}

func accepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"status":"OK"}`))
}

func apiError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(ErrorDoc{Type: typ, Message: msg}.JSON())
}

func notFound(w http.ResponseWriter) {
	apiError(w, http.StatusNotFound, "NotFound", "no such Runtime API resource")
}
