package handler_test

import (
	"bytes"
	"io"

	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

type (
	sqsMessage = sqstypes.Message
	sqsAttr    = sqstypes.MessageSystemAttributeName
)

func bytesReader(b []byte) io.ReadSeeker { return bytes.NewReader(b) }
