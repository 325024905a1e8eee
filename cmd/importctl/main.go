// Command importctl is the operator's CLI of Catalog Import: it runs imports
// on the embedded engine and reads batches, shards and failure records.
// All of it lives in internal/cli; see `importctl --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/catalog-import/catalog-import/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, cli.ProcessEnv(), os.Args[1:])
	stop()
	os.Exit(code)
}
