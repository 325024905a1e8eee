package dynamostate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/catalog-import/catalog-import/internal/aws/awserr"
)

// IndexName is the global secondary index that lists batches newest first
// (gsi1pk = "BATCHES", gsi1sk = creation time and batch id).
const IndexName = "gsi1"

// TTLAttribute is the table's time-to-live attribute (epoch seconds):
// failure records carry it from when they are written (Options.FailureTTL),
// batch and shard items once they finish and triage-log entries from when
// they are appended (Options.BatchTTL).
const TTLAttribute = "expires_at"

// TableInput is the state table's definition: key pk (S, HASH) and sk (S,
// RANGE), on-demand billing, and the index gsi1 (gsi1pk, gsi1sk; projection
// KEYS_ONLY: a batch item's updates are not copied to the index, and
// ListBatches reads the items by key). The SAM template declares the same
// table.
func TableInput(name string) *dynamodb.CreateTableInput {
	str := func(n string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(n), AttributeType: types.ScalarAttributeTypeS}
	}
	key := func(n string, t types.KeyType) types.KeySchemaElement {
		return types.KeySchemaElement{AttributeName: aws.String(n), KeyType: t}
	}
	return &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{str(attrPK), str(attrSK), str(attrGSI1PK), str(attrGSI1SK)},
		KeySchema:            []types.KeySchemaElement{key(attrPK, types.KeyTypeHash), key(attrSK, types.KeyTypeRange)},
		BillingMode:          types.BillingModePayPerRequest,
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName:  aws.String(IndexName),
			KeySchema:  []types.KeySchemaElement{key(attrGSI1PK, types.KeyTypeHash), key(attrGSI1SK, types.KeyTypeRange)},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
		}},
	}
}

// TTLInput enables time to live on TTLAttribute (failure records expire
// Options.FailureTTL after they failed, finished batches and triage-log
// entries Options.BatchTTL after they finished or were written).
func TTLInput(name string) *dynamodb.UpdateTimeToLiveInput {
	return &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(TTLAttribute),
			Enabled:       aws.Bool(true),
		},
	}
}

// CreateTable creates the state table if it does not exist, waits until it
// is active and enables time to live on it. Tests and provisioning tools use
// it; in AWS the SAM template owns the table.
func CreateTable(ctx context.Context, client *dynamodb.Client, name string) error {
	_, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	var notFound *types.ResourceNotFoundException
	switch {
	case errors.As(err, &notFound):
		_, err = client.CreateTable(ctx, TableInput(name))
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) { // created meanwhile by someone else
			return awserr.Wrap(err, "dynamodb CreateTable "+name)
		}
	case err != nil:
		return awserr.Wrap(err, "dynamodb DescribeTable "+name)
	}
	w := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 200*time.Millisecond, 5*time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 5*time.Minute); err != nil {
		return awserr.Wrap(err, "wait for table "+name)
	}
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		return awserr.Wrap(err, "dynamodb DescribeTimeToLive "+name)
	}
	if d := ttl.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == TTLAttribute &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil
	}
	if _, err := client.UpdateTimeToLive(ctx, TTLInput(name)); err != nil {
		return awserr.Wrap(err, fmt.Sprintf("dynamodb UpdateTimeToLive %s", name))
	}
	return nil
}
