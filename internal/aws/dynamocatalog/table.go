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
// documentation). template.yaml declares the key attribute.
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
	AttrBatchID     = "batch_id"    // S, the provenance batch
	AttrSheet       = "sheet"       // S
	AttrSheetIndex  = "sheet_index" // N
	AttrRow         = "row"         // N
	AttrOffset      = "offset"      // N
	AttrLength      = "length"      // N
	AttrDisplaced   = "displaced"   // S, JSON list of the rows displaced; absent when none
	AttrStamps      = "stamps"      // S, catalog.EncodeStamps text; absent on items written before stamps (all 0)
	AttrHolders     = "holders"     // S, catalog.EncodeHolders text of the older holders; absent when none
	AttrVersion     = "version"     // N, bumped by every write: the compare-and-swap token; absent on older items
)

// TableInput returns the definition of a products table named name: hash key
// sku (S), on-demand billing, no index (an index would cost a write unit per
// product written, two when its key changes: decision 29). template.yaml
// must declare the same table.
func TableInput(name string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(AttrSKU), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(AttrSKU), KeyType: types.KeyTypeHash},
		},
	}
}

// createWait bounds how long CreateTable waits for the table to be active.
const createWait = 5 * time.Minute

// CreateTable creates the products table name unless it exists, then waits
// until it is ACTIVE. An existing table keyed otherwise than by sku is an
// error (it was not made by TableInput); indexes it may have (by_batch,
// before decision 29) are left alone.
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

// tableReady reports whether the described table is ACTIVE; a table whose
// key is not sku alone is an error.
func tableReady(name string, t *types.TableDescription) (bool, error) {
	if t == nil {
		return false, nil
	}
	if len(t.KeySchema) != 1 || aws.ToString(t.KeySchema[0].AttributeName) != AttrSKU {
		return false, fmt.Errorf("products table %s is not keyed by %s alone: it was not created by dynamocatalog.TableInput", name, AttrSKU)
	}
	return t.TableStatus == types.TableStatusActive, nil
}
