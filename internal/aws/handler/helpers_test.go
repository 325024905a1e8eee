package handler_test

import (
	"bytes"
	"io"
	"os"
	"testing"

	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

type (
	sqsMessage = sqstypes.Message
	sqsAttr    = sqstypes.MessageSystemAttributeName
)

func bytesReader(b []byte) io.ReadSeeker { return bytes.NewReader(b) }

func writeBytes(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
