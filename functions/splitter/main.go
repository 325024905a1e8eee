// Command splitter is the Lambda function that splits each upload under incoming/ into a batch of shards and sends their manifests to the shard queue.
// All logic is in internal/aws/handler (over internal/pipeline); this builds it from the environment
// once per container (traced with X-Ray when Lambda runs it with a daemon)
// and starts the Lambda runtime loop.
package main

import (
	"context"
	"log"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/xraytrace"
)

func main() {
	fns, err := handler.FromEnv(context.Background(), os.Getenv, xraytrace.FromEnv) // X-Ray only in Lambda with a daemon
	if err != nil {
		log.Fatal(err)
	}
	lambda.Start(fns.Splitter)
}
