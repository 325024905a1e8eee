// Command shard-worker is the Lambda function that imports one shard per manifest from the shard queue (partial batch responses) and finalizes the batch after its last shard.
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
	lambda.Start(fns.Worker)
}
