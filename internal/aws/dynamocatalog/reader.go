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
// row in [from, to], in sheet (any sheet when sheet is ""). It queries the
// by_batch index (Select COUNT, row BETWEEN from AND to, a filter on sheet
// when given), every page of it.
//
// The index is eventually consistent on AWS (moto updates it at once): a
// count taken right after a Write may miss products it stored, or still count
// products another batch has just taken over. Callers that reconcile
// (finalization) count again after a while when the numbers do not match.
func (s *Sink) CountBatch(ctx context.Context, batchID, sheet string, from, to int64) (int64, error) {
	if batchID == "" {
		return 0, invalid("batch_id", "count products: empty batch id")
	}
	if from > to {
		return 0, nil
	}
	e := dynamoattr.NewExpr()
	in := &dynamodb.QueryInput{
		TableName: aws.String(s.table), IndexName: aws.String(ByBatchIndex), Select: types.SelectCount,
		KeyConditionExpression: aws.String(e.Name(AttrBatchID) + " = " + e.Value(dynamoattr.S(batchID)) +
			" AND " + e.Name(AttrRow) + " BETWEEN " + e.Value(dynamoattr.N(from)) + " AND " + e.Value(dynamoattr.N(to))),
	}
	if sheet != "" {
		in.FilterExpression = aws.String(e.Name(AttrSheet) + " = " + e.Value(dynamoattr.S(sheet)))
	}
	in.ExpressionAttributeNames, in.ExpressionAttributeValues = e.Names(), e.Values()
	var n int64
	for pages := dynamodb.NewQueryPaginator(s.client, in); pages.HasMorePages(); {
		res, err := pages.NextPage(ctx)
		if err != nil {
			return 0, awserr.Wrap(err, "Query "+ByBatchIndex+" of batch "+batchID)
		}
		n += int64(res.Count)
	}
	return n, nil
}
