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
	return fmt.Sprintf("%s%s#%06d#%s", triagePrefix, formatTime(at), shard, hex.EncodeToString(b[:]))
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
		attrPK: avS(batchPK(e.BatchID)), attrSK: avS(triageSK(e.At, e.Shard)),
		"shard": avN(int64(e.Shard)), "at": avS(formatTime(e.At)), "kind": avS(e.Kind),
		"delay_ns": avN(int64(e.Delay)), "receive_count": avN(int64(e.ReceiveCount)), "retry_count": avN(int64(e.RetryCount)),
	}
	put(it, "layer", avOptS(string(e.Layer)))
	put(it, "reason", avOptS(string(e.Reason)))
	put(it, "message", avOptS(e.Message))
	put(it, "action", avOptS(string(e.Action)))
	put(it, "message_id", avOptS(e.MessageID))
	if _, err := l.s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(l.s.table), Item: it}); err != nil {
		return awserr.Wrap(err, "append to the triage log of "+e.BatchID+": dynamodb PutItem")
	}
	return nil
}

// List returns the batch's entries oldest first with one consistent Query
// (paged); see triage.Log.
func (l *TriageLog) List(ctx context.Context, batchID string) ([]triage.Entry, error) {
	e := newExpr()
	in := &dynamodb.QueryInput{
		KeyConditionExpression: aws.String(fmt.Sprintf("%s = %s AND begins_with(%s, %s)",
			e.n(attrPK), e.v(avS(batchPK(batchID))), e.n(attrSK), e.v(avS(triagePrefix)))),
		ConsistentRead: aws.Bool(true),
	}
	in.ExpressionAttributeNames, in.ExpressionAttributeValues = e.Names(), e.Values()
	var out []triage.Entry
	err := l.s.query(ctx, in, "list the triage log of "+batchID, func(it item) (bool, error) {
		d := dec{it: it}
		en := triage.Entry{
			BatchID: batchID, Shard: int(d.n("shard")), At: d.t("at"), Kind: d.s("kind"),
			Layer: failure.Layer(d.s("layer")), Reason: failure.Reason(d.s("reason")), Message: d.s("message"),
			Action: triage.Action(d.s("action")), Delay: time.Duration(d.n("delay_ns")),
			ReceiveCount: int(d.n("receive_count")), RetryCount: int(d.n("retry_count")), MessageID: d.s("message_id"),
		}
		if d.err != nil {
			return false, failure.Wrap(failure.Internal, "", d.err, "")
		}
		out = append(out, en)
		return true, nil
	})
	return out, err
}
