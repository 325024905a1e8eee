// Command bootstrap is a Lambda function on github.com/aws/aws-lambda-go's
// runtime client for the tests of package lambdaruntime: INIT (env) picks
// how its init phase ends, the event's "do" what the invocation does.
package main

import (
	"bytes"
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Do string `json:"do"`
}

type reply struct {
	RequestID  string `json:"request_id"`
	ARN        string `json:"arn"`
	Trace      string `json:"trace"`
	DeadlineMs int64  `json:"deadline_ms"`
	Greeting   string `json:"greeting"`
	Big        string `json:"big,omitempty"`
}

func handle(ctx context.Context, ev event) (reply, error) {
	lc, _ := lambdacontext.FromContext(ctx)
	dl, _ := ctx.Deadline()
	trace, _ := ctx.Value("x-amzn-trace-id").(string)
	r := reply{RequestID: lc.AwsRequestID, ARN: lc.InvokedFunctionArn, Trace: trace, DeadlineMs: dl.UnixMilli(), Greeting: os.Getenv("GREETING")}
	log.Printf("handling %q", ev.Do)
	switch ev.Do {
	case "error":
		return r, errors.New("boom: the handler failed")
	case "panic":
		panic("oops")
	case "wait": // until the deadline, then give up as a well-behaved handler does
		<-ctx.Done()
		return r, ctx.Err()
	case "hang":
		time.Sleep(time.Hour)
	case "exit":
		os.Exit(3)
	case "big":
		r.Big = strings.Repeat("x", 7<<20)
	}
	return r, nil
}

func main() {
	switch os.Getenv("INIT") {
	case "fatal":
		log.Fatal("environment variable BUCKET is not set")
	case "post":
		body := `{"errorMessage":"cannot start","errorType":"InitFailed"}`
		req, _ := http.NewRequest(http.MethodPost, "http://"+os.Getenv("AWS_LAMBDA_RUNTIME_API")+"/2018-06-01/runtime/init/error", bytes.NewBufferString(body))
		req.Header.Set("Lambda-Runtime-Function-Error-Type", "InitFailed")
		if _, err := http.DefaultClient.Do(req); err != nil {
			log.Fatal(err)
		}
		os.Exit(1)
	case "hang":
		time.Sleep(time.Hour)
	}
	lambda.Start(handle)
}
