package awstest

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

func TestMain(m *testing.M) { Main(m) }

func TestServerAnswers(t *testing.T) {
	c := Clients(t)
	name := Name("q")
	out, err := c.SQS.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: &name})
	if err != nil {
		t.Fatal(err)
	}
	if out.QueueUrl == nil || *out.QueueUrl == "" {
		t.Fatal("no queue url")
	}
}
