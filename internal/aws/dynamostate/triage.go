package dynamostate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/catalog-import/catalog-import/internal/aws/awserr"
	"github.com/catalog-import/catalog-import/internal/aws/dynamoattr"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/triage"
)

// TriageLog is the DynamoDB adapter of the triage log port (triage.Log): its
// entries are items of the state table (see the package documentation).
type TriageLog struct{ s *Store }

var _ triage.Log = (*TriageLog)(nil)

// NewTriageLog returns the triage log in the state table through client.
func NewTriageLog(client *dynamodb.Client, table string) *TriageLog {
	return New(client, table, Options{}).TriageLog()
}

// TriageLog returns the triage log in the store's table.
func (s *Store) TriageLog() *TriageLog { return &TriageLog{s: s} }

func triageSK(at time.Time, shard int) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s%s#%06d#%s", triagePrefix, dynamoattr.FormatTime(at), shard, hex.EncodeToString(b[:]))
}

// Append adds e to its batch's log with one PutItem; see triage.Log.
func (l *TriageLog) Append(ctx context.Context, e triage.Entry) error {
	if e.BatchID == "" {
		return invalid("batch_id", "append to the triage log: empty batch id")
	}
	if e.At.IsZero() {
		e.At = l.s.opts.Now()
	}
	it := item{
		attrPK: dynamoattr.S(batchPK(e.BatchID)), attrSK: dynamoattr.S(triageSK(e.At, e.Shard)),
		"shard": dynamoattr.N(int64(e.Shard)), "at": dynamoattr.S(dynamoattr.FormatTime(e.At)), "kind": dynamoattr.S(e.Kind),
		"delay_ns": dynamoattr.N(int64(e.Delay)), "receive_count": dynamoattr.N(int64(e.ReceiveCount)), "retry_count": dynamoattr.N(int64(e.RetryCount)),
	}
	dynamoattr.Put(it, "layer", dynamoattr.OptS(string(e.Layer)))
	dynamoattr.Put(it, "reason", dynamoattr.OptS(string(e.Reason)))
	dynamoattr.Put(it, "message", dynamoattr.OptS(e.Message))
	dynamoattr.Put(it, "action", dynamoattr.OptS(string(e.Action)))
	dynamoattr.Put(it, "message_id", dynamoattr.OptS(e.MessageID))
	dynamoattr.Put(it, TTLAttribute, l.s.expiry(e.At))
	if _, err := l.s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(l.s.table), Item: it}); err != nil {
		return awserr.Wrap(err, "append to the triage log of "+e.BatchID+": dynamodb PutItem")
	}
	return nil
}

// List returns the batch's entries oldest first with one consistent Query
// (paged); see triage.Log.
func (l *TriageLog) List(ctx context.Context, batchID string) ([]triage.Entry, error) {
	e := dynamoattr.NewExpr()
	in := &dynamodb.QueryInput{
		KeyConditionExpression: aws.String(fmt.Sprintf("%s = %s AND begins_with(%s, %s)",
			e.Name(attrPK), e.Value(dynamoattr.S(batchPK(batchID))), e.Name(attrSK), e.Value(dynamoattr.S(triagePrefix)))),
		ConsistentRead: aws.Bool(true),
	}
	in.ExpressionAttributeNames, in.ExpressionAttributeValues = e.Names(), e.Values()
	var out []triage.Entry
	err := l.s.query(ctx, in, "list the triage log of "+batchID, func(it item) (bool, error) {
		d := dynamoattr.NewDecoder(it)
		en := triage.Entry{
			BatchID: batchID, Shard: int(d.N("shard")), At: d.Time("at"), Kind: d.S("kind"),
			Layer: failure.Layer(d.S("layer")), Reason: failure.Reason(d.S("reason")), Message: d.S("message"),
			Action: triage.Action(d.S("action")), Delay: time.Duration(d.N("delay_ns")),
			ReceiveCount: int(d.N("receive_count")), RetryCount: int(d.N("retry_count")), MessageID: d.S("message_id"),
		}
		if d.Err() != nil {
			return false, failure.Wrap(failure.Internal, "", d.Err(), "")
		}
		out = append(out, en)
		return true, nil
	})
	return out, err
}
