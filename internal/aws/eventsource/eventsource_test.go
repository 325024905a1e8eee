package eventsource

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// TestFixEventTimes: moto's notifications carry zone-less event times that
// the Lambda event types refuse; S3's own decode unchanged.
func TestFixEventTimes(t *testing.T) {
	cases := []struct{ body, want string }{
		{`{"Records":[{"eventTime": "2026-11-24T14:24:02.215104","s3":{}}]}`, "2026-11-24T14:24:02.215104Z"},
		{`{"Records":[{"eventTime":"2026-11-24T10:00:00.000Z","s3":{}}]}`, "2026-11-24T10:00:00Z"},
	}
	for _, c := range cases {
		var ev events.S3Event
		if err := json.Unmarshal([]byte(fixEventTimes(c.body)), &ev); err != nil {
			t.Fatalf("%s: %v", c.body, err)
		}
		want, _ := time.Parse(time.RFC3339Nano, c.want)
		if !ev.Records[0].EventTime.Equal(want) {
			t.Errorf("%s: event time %v, want %v", c.body, ev.Records[0].EventTime, want)
		}
	}
}
