package dynamocatalog

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/catalog-import/catalog-import/internal/aws/awserr"
	"github.com/catalog-import/catalog-import/internal/aws/dynamoattr"
	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
)

// Get returns the product with sku, or ok=false when there is none or it is
// deleted (GetItem, strongly consistent: it sees every Write that returned
// before it).
func (s *Sink) Get(ctx context.Context, sku string) (catalog.Product, bool, error) {
	st, ok, err := s.state(ctx, sku)
	if !ok || err != nil {
		return catalog.Product{}, false, err
	}
	p, ok := st.Effective()
	return p, ok, nil
}

// Stamps returns the stamps stored for sku, ok=false when the table has no
// item of it (strongly consistent GetItem).
func (s *Sink) Stamps(ctx context.Context, sku string) (catalog.FieldStamps, bool, error) {
	st, ok, err := s.state(ctx, sku)
	return st.Stamps, ok, err
}

// state reads the stored state of sku; ok is false when there is no item.
func (s *Sink) state(ctx context.Context, sku string) (catalog.State, bool, error) {
	if sku == "" {
		return catalog.State{}, false, invalid("sku", "get product: empty SKU")
	}
	res, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), ConsistentRead: aws.Bool(true),
		Key: item{AttrSKU: dynamoattr.S(sku)},
	})
	if err != nil {
		return catalog.State{}, false, awserr.Wrap(err, "GetItem product "+sku)
	}
	if len(res.Item) == 0 {
		return catalog.State{}, false, nil
	}
	st, _, err := decodeState(res.Item)
	if err != nil {
		return catalog.State{}, false, failure.Wrap(failure.Internal, "", err, "get product "+sku+": "+err.Error())
	}
	return st, true, nil
}

// CountBatch counts the products whose provenance is batchID with a source
// row in [from, to], in sheet (any sheet when sheet is ""). The table has no
// index by batch (decision 29: it cost a write unit per product), so this
// is a strongly consistent Scan of the whole table with a filter, every
// page: for tests and small tables, not for a live catalog of millions of
// products (nothing in the pipeline calls it; reconciliation adds up the row
// outcomes the checkpoints recorded, decision 18).
func (s *Sink) CountBatch(ctx context.Context, batchID, sheet string, from, to int64) (int64, error) {
	if batchID == "" {
		return 0, invalid("batch_id", "count products: empty batch id")
	}
	if from > to {
		return 0, nil
	}
	e := dynamoattr.NewExpr()
	filter := e.Name(AttrBatchID) + " = " + e.Value(dynamoattr.S(batchID)) +
		" AND " + e.Name(AttrRow) + " BETWEEN " + e.Value(dynamoattr.N(from)) + " AND " + e.Value(dynamoattr.N(to))
	if sheet != "" {
		filter += " AND " + e.Name(AttrSheet) + " = " + e.Value(dynamoattr.S(sheet))
	}
	in := &dynamodb.ScanInput{
		TableName: aws.String(s.table), Select: types.SelectCount, ConsistentRead: aws.Bool(true),
		FilterExpression:         aws.String(filter),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
	}
	var n int64
	for pages := dynamodb.NewScanPaginator(s.client, in); pages.HasMorePages(); {
		res, err := pages.NextPage(ctx)
		if err != nil {
			return 0, awserr.Wrap(err, "Scan products of batch "+batchID)
		}
		n += int64(res.Count)
	}
	return n, nil
}
