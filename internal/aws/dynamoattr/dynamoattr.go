// Package dynamoattr is the DynamoDB attribute value codec the adapters
// share: constructors for the values they store (strings, numbers, times as
// fixed-width text, JSON, lists of strings), Size (an item's size as
// DynamoDB counts it against its limits), a Decoder that reads an item's attributes and
// keeps the first error, and Expr and Update, which build a request's
// expressions with exactly the attribute names and values they use.
//
// It knows nothing of the tables: item layouts stay in the adapters
// (internal/aws/dynamostate, internal/aws/dynamocatalog).
package dynamoattr

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Item is one DynamoDB item.
type Item = map[string]types.AttributeValue

// TimeLayout is RFC 3339 with nine fraction digits: fixed width for UTC
// times, so stored times sort (and compare in conditions) as text.
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// FormatTime is t in UTC as TimeLayout text.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// S is the string value s.
func S(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

// N is the number value n.
func N(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// B is the binary value b.
func B(b []byte) types.AttributeValue { return &types.AttributeValueMemberB{Value: b} }

// OptS is S(s), or nil (attribute left out or removed) when s is empty.
func OptS(s string) types.AttributeValue {
	if s == "" {
		return nil
	}
	return S(s)
}

// Time is t as fixed-width UTC text (FormatTime), or nil for the zero time.
func Time(t time.Time) types.AttributeValue {
	if t.IsZero() {
		return nil
	}
	return S(FormatTime(t))
}

// JSON is v as JSON text, or nil when empty is true.
func JSON(v any, empty bool) (types.AttributeValue, error) {
	if empty {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return S(string(b)), nil
}

// Strings is ss as a list of strings (L of S), or nil when ss is empty;
// Decoder.Strings reads it back.
func Strings(ss []string) types.AttributeValue {
	if len(ss) == 0 {
		return nil
	}
	l := make([]types.AttributeValue, len(ss))
	for i, s := range ss {
		l[i] = S(s)
	}
	return &types.AttributeValueMemberL{Value: l}
}

// Put sets it[name] = v unless v is nil.
func Put(it Item, name string, v types.AttributeValue) {
	if v != nil {
		it[name] = v
	}
}

// Size estimates the bytes DynamoDB counts for it against its 400 KB item
// limit (and a transaction's 4 MB): the sum over its attributes of the
// name's length and the value's size (ValueSize).
func Size(it Item) int {
	n := 0
	for name, v := range it {
		n += len(name) + ValueSize(v)
	}
	return n
}

// ValueSize estimates the bytes DynamoDB counts for one value, after its
// documented sizing ("DynamoDB item sizes and formats"): strings their
// UTF-8 bytes, binaries their raw bytes; a number 1 byte per two
// significant digits (rounded up) plus 1, and 1 more for a minus sign;
// booleans and nulls 1; a list or map 3 bytes plus its elements, each 1
// byte more than its value (and a map element its key's length); a set the
// sum of its elements.
func ValueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return numberSize(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + ValueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += 1 + len(k) + ValueSize(e)
		}
		return n
	case *types.AttributeValueMemberSS:
		return sumLen(v.Value)
	case *types.AttributeValueMemberBS:
		return sumLen(v.Value)
	case *types.AttributeValueMemberNS:
		n := 0
		for _, e := range v.Value {
			n += numberSize(e)
		}
		return n
	case *types.UnknownUnionMember:
		return len(v.Value)
	default:
		return 0
	}
}

// sumLen is the sum of the lengths of vs (a string or binary set's size).
func sumLen[T string | []byte](vs []T) int {
	n := 0
	for _, v := range vs {
		n += len(v)
	}
	return n
}

// numberSize is the size of the number text s: its significant digits
// (leading and trailing zeroes trimmed, sign, point and exponent left out)
// halved and rounded up, plus 1, plus 1 when negative.
func numberSize(s string) int {
	n := 1
	if strings.HasPrefix(s, "-") {
		n++
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		s = s[:i]
	}
	digits := strings.Trim(strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s), "0")
	return n + (len(digits)+1)/2
}

// Decoder reads the attributes of one item. An absent attribute reads as
// the zero value; one of the wrong type or unreadable reads as the zero
// value too and sets Err, which keeps the first such error.
type Decoder struct {
	it  Item
	err error
}

// NewDecoder returns a Decoder of it.
func NewDecoder(it Item) *Decoder { return &Decoder{it: it} }

// Err is the first error met, nil if none.
func (d *Decoder) Err() error { return d.err }

// Fail records that attribute name could not be read, unless an error is
// already recorded.
func (d *Decoder) Fail(name string, err error) {
	if d.err == nil {
		d.err = fmt.Errorf("decode attribute %s: %w", name, err)
	}
}

// Attr is the value of attribute name as stored, nil when absent: for the
// types the Decoder has no reader of (report errors with Fail).
func (d *Decoder) Attr(name string) types.AttributeValue { return d.it[name] }

// S reads a string attribute.
func (d *Decoder) S(name string) string {
	switch v := d.it[name].(type) {
	case nil:
		return ""
	case *types.AttributeValueMemberS:
		return v.Value
	default:
		d.Fail(name, fmt.Errorf("type %T, want S", v))
		return ""
	}
}

// N reads a number attribute that holds an int64.
func (d *Decoder) N(name string) int64 {
	switch v := d.it[name].(type) {
	case nil:
		return 0
	case *types.AttributeValueMemberN:
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			d.Fail(name, err)
		}
		return n
	default:
		d.Fail(name, fmt.Errorf("type %T, want N", v))
		return 0
	}
}

// B reads a binary attribute.
func (d *Decoder) B(name string) []byte {
	switch v := d.it[name].(type) {
	case nil:
		return nil
	case *types.AttributeValueMemberB:
		return v.Value
	default:
		d.Fail(name, fmt.Errorf("type %T, want B", v))
		return nil
	}
}

// Time reads a time stored as RFC 3339 text (Time writes it), in UTC; an
// absent or empty attribute is the zero time.
func (d *Decoder) Time(name string) time.Time {
	s := d.S(name)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		d.Fail(name, err)
	}
	return t.UTC()
}

// JSON unmarshals a string attribute holding JSON into v; an absent or
// empty attribute leaves v alone.
func (d *Decoder) JSON(name string, v any) {
	s := d.S(name)
	if s == "" {
		return
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		d.Fail(name, err)
	}
}

// Strings reads a list attribute of strings (L of S); an absent one is nil.
func (d *Decoder) Strings(name string) []string {
	switch v := d.it[name].(type) {
	case nil:
		return nil
	case *types.AttributeValueMemberL:
		out := make([]string, 0, len(v.Value))
		for i, e := range v.Value {
			s, ok := e.(*types.AttributeValueMemberS)
			if !ok {
				d.Fail(name, fmt.Errorf("element %d of type %T, want S", i, e))
				return nil
			}
			out = append(out, s.Value)
		}
		return out
	default:
		d.Fail(name, fmt.Errorf("type %T, want L", v))
		return nil
	}
}

// Expr collects the attribute names and values of one request's
// expressions, so that each map holds exactly what the expressions use
// (DynamoDB refuses unused ones). Every attribute is referenced by name
// ("#status"), which keeps clear of DynamoDB's reserved words.
type Expr struct {
	names map[string]string
	vals  map[string]types.AttributeValue
}

// NewExpr returns an empty Expr.
func NewExpr() *Expr {
	return &Expr{names: map[string]string{}, vals: map[string]types.AttributeValue{}}
}

// Name returns the placeholder of attribute name ("#" + name).
func (e *Expr) Name(name string) string {
	e.names["#"+name] = name
	return "#" + name
}

// Value returns a new placeholder for the value v.
func (e *Expr) Value(v types.AttributeValue) string {
	k := ":v" + strconv.Itoa(len(e.vals))
	e.vals[k] = v
	return k
}

// Names is the ExpressionAttributeNames map, nil when empty.
func (e *Expr) Names() map[string]string {
	if len(e.names) == 0 {
		return nil
	}
	return e.names
}

// Values is the ExpressionAttributeValues map, nil when empty.
func (e *Expr) Values() map[string]types.AttributeValue {
	if len(e.vals) == 0 {
		return nil
	}
	return e.vals
}

// Update builds an UpdateExpression whose names and values go to E.
type Update struct {
	// E holds the names and values of the update (and of the request's
	// other expressions).
	E                 *Expr
	sets, removes, as []string
}

// Set assigns v to name; a nil v removes the attribute.
func (u *Update) Set(name string, v types.AttributeValue) {
	if v == nil {
		u.removes = append(u.removes, u.E.Name(name))
		return
	}
	u.sets = append(u.sets, u.E.Name(name)+" = "+u.E.Value(v))
}

// Add adds n to the number attribute name.
func (u *Update) Add(name string, n int64) {
	u.as = append(u.as, u.E.Name(name)+" "+u.E.Value(N(n)))
}

// String is the UpdateExpression: its SET, REMOVE and ADD clauses, in that
// order, each left out when empty.
func (u *Update) String() string {
	var parts []string
	if len(u.sets) > 0 {
		parts = append(parts, "SET "+strings.Join(u.sets, ", "))
	}
	if len(u.removes) > 0 {
		parts = append(parts, "REMOVE "+strings.Join(u.removes, ", "))
	}
	if len(u.as) > 0 {
		parts = append(parts, "ADD "+strings.Join(u.as, ", "))
	}
	return strings.Join(parts, " ")
}
