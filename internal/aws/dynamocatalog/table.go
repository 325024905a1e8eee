package dynamocatalog

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

// Attribute names of a product item (the table design of the package
// documentation). template.yaml declares the key and index attributes.
const (
	AttrSKU         = "sku"         // S, the table's hash key
	AttrName        = "name"        // S
	AttrCategory    = "category"    // S
	AttrBrand       = "brand"       // S, absent when empty
	AttrPrice       = "price"       // S, canonical decimal text "12.50"
	AttrCurrency    = "currency"    // S
	AttrStock       = "stock"       // N
	AttrStatus      = "status"      // S
	AttrDescription = "description" // S, absent when empty
	AttrImageURLs   = "image_urls"  // L of S, absent when empty
	AttrBatchID     = "batch_id"    // S, hash key of ByBatchIndex
	AttrSheet       = "sheet"       // S, projected into ByBatchIndex
	AttrSheetIndex  = "sheet_index" // N
	AttrRow         = "row"         // N, range key of ByBatchIndex
	AttrOffset      = "offset"      // N
	AttrLength      = "length"      // N
	AttrDisplaced   = "displaced"   // S, JSON list of the rows displaced; absent when none
	AttrStamps      = "stamps"      // S, catalog.EncodeStamps text; absent on items written before stamps (all 0)
	AttrHolders     = "holders"     // S, catalog.EncodeHolders text of the older holders; absent when none
	AttrVersion     = "version"     // N, bumped by every write: the compare-and-swap token; absent on older items
)

// ByBatchIndex is the name of the global secondary index that CountBatch
// queries: batch_id (hash), row (range), projecting sheet.
const ByBatchIndex = "by_batch"

// TableInput returns the definition of a products table named name: hash key
// sku (S), on-demand billing, and the global secondary index by_batch
// (batch_id S hash, row N range, projection INCLUDE sheet). template.yaml
// must declare the same table.
func TableInput(name string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(AttrSKU), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(AttrBatchID), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(AttrRow), AttributeType: types.ScalarAttributeTypeN},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(AttrSKU), KeyType: types.KeyTypeHash},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(ByBatchIndex),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(AttrBatchID), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(AttrRow), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{
				ProjectionType:   types.ProjectionTypeInclude,
				NonKeyAttributes: []string{AttrSheet},
			},
		}},
	}
}

// createWait bounds how long CreateTable waits for the table to be active.
const createWait = 5 * time.Minute

// CreateTable creates the products table name unless it exists, then waits
// until the table and its by_batch index are ACTIVE. An existing table
// without the by_batch index is an error (it was not made by TableInput).
func CreateTable(ctx context.Context, client *dynamodb.Client, name string) error {
	_, err := client.CreateTable(ctx, TableInput(name))
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return awserr.Wrap(err, "create products table "+name)
	}
	ctx, cancel := context.WithTimeout(ctx, createWait)
	defer cancel()
	delay := 250 * time.Millisecond
	for {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			var nf *types.ResourceNotFoundException
			if !errors.As(err, &nf) { // a table being created may not be visible yet
				return awserr.Wrap(err, "describe products table "+name)
			}
		} else {
			ready, err := tableReady(name, out.Table)
			if ready || err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return awserr.Wrap(ctx.Err(), "wait for products table "+name+" to be active")
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// tableReady reports whether the described table and its by_batch index are
// ACTIVE; a table without the index is an error.
func tableReady(name string, t *types.TableDescription) (bool, error) {
	if t == nil {
		return false, nil
	}
	var index *types.GlobalSecondaryIndexDescription
	for i := range t.GlobalSecondaryIndexes {
		if aws.ToString(t.GlobalSecondaryIndexes[i].IndexName) == ByBatchIndex {
			index = &t.GlobalSecondaryIndexes[i]
		}
	}
	if index == nil {
		return false, fmt.Errorf("products table %s has no %s index: it was not created by dynamocatalog.TableInput", name, ByBatchIndex)
	}
	return t.TableStatus == types.TableStatusActive &&
		(index.IndexStatus == "" || index.IndexStatus == types.IndexStatusActive), nil
}
