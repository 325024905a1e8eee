package eventsource

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// FailureRecord is the record Lambda sends to a function's OnFailure
// destination for an asynchronous invocation it gave up on (after its
// retries, or when the event grew too old): the invocation's context, the
// event as it was (RequestPayload), and the function's last error. See
// "Capturing records of Lambda asynchronous invocations" in the Lambda
// developer guide.
type FailureRecord struct {
	Version         string          `json:"version"`   // "1.0"
	Timestamp       time.Time       `json:"timestamp"` // when Lambda gave up
	RequestContext  RequestContext  `json:"requestContext"`
	RequestPayload  json.RawMessage `json:"requestPayload"` // the event (the splitter's: an S3 event)
	ResponseContext ResponseContext `json:"responseContext"`
	ResponsePayload json.RawMessage `json:"responsePayload,omitempty"` // the last error, {"errorMessage": ...}
}

// RequestContext says which invocation failed and why Lambda gave up.
type RequestContext struct {
	RequestID   string `json:"requestId"`
	FunctionARN string `json:"functionArn"`
	// Condition is RetriesExhausted, EventAgeExceeded (throttled or
	// failing until MaximumEventAgeInSeconds) or another reason.
	Condition              string `json:"condition"`
	ApproximateInvokeCount int    `json:"approximateInvokeCount"`
}

// ResponseContext is the last invocation's response.
type ResponseContext struct {
	StatusCode      int    `json:"statusCode"`
	ExecutedVersion string `json:"executedVersion"`
	FunctionError   string `json:"functionError,omitempty"` // Handled, Unhandled
}

// NewFailureRecord is the record of an event whose invocations all failed,
// the last with cause.
func NewFailureRecord(requestID, functionARN string, invokes int, event json.RawMessage, cause error) FailureRecord {
	resp, _ := json.Marshal(map[string]string{"errorMessage": cause.Error(), "errorType": "errorString"})
	return FailureRecord{Version: "1.0", Timestamp: time.Now().UTC(),
		RequestContext: RequestContext{RequestID: requestID, FunctionARN: functionARN, Condition: "RetriesExhausted", ApproximateInvokeCount: invokes},
		RequestPayload: event, ResponseContext: ResponseContext{StatusCode: 200, ExecutedVersion: "$LATEST", FunctionError: "Unhandled"},
		ResponsePayload: resp}
}

// S3Event decodes the record's event as an S3 event with at least one
// record (moto's zone-less event times read as UTC).
func (r FailureRecord) S3Event() (events.S3Event, error) {
	var ev events.S3Event
	if err := json.Unmarshal([]byte(fixEventTimes(string(r.RequestPayload))), &ev); err != nil {
		return ev, fmt.Errorf("requestPayload is not an S3 event: %w", err)
	}
	if len(ev.Records) == 0 {
		return ev, fmt.Errorf("requestPayload is not an S3 event: no Records")
	}
	return ev, nil
}

// LastError is the function's last error message, "" when the record has
// none.
func (r FailureRecord) LastError() string {
	var p struct {
		ErrorMessage string `json:"errorMessage"`
	}
	_ = json.Unmarshal(r.ResponsePayload, &p)
	return p.ErrorMessage
}
