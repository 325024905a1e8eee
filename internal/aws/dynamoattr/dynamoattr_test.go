package dynamoattr_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/aws/dynamoattr"
)

// TestValues: the constructors' values, nil where the attribute is left out.
func TestValues(t *testing.T) {
	t.Parallel()
	cst := time.FixedZone("CST", 8*3600)
	at := time.Date(2031, 3, 14, 23, 9, 26, 500, cst)
	js := func(v any, empty bool) types.AttributeValue {
		av, err := dynamoattr.JSON(v, empty)
		if err != nil {
			t.Fatalf("JSON(%v): %v", v, err)
		}
		return av
	}
	cases := []struct {
		name string
		got  types.AttributeValue
		want types.AttributeValue
	}{
		{"S", dynamoattr.S("x"), &types.AttributeValueMemberS{Value: "x"}},
		{"S empty", dynamoattr.S(""), &types.AttributeValueMemberS{Value: ""}},
		{"N", dynamoattr.N(-42), &types.AttributeValueMemberN{Value: "-42"}},
		{"B", dynamoattr.B([]byte{0, 0xff}), &types.AttributeValueMemberB{Value: []byte{0, 0xff}}},
		{"OptS", dynamoattr.OptS("x"), &types.AttributeValueMemberS{Value: "x"}},
		{"OptS empty", dynamoattr.OptS(""), nil},
		{"Time in UTC, nine digits", dynamoattr.Time(at), &types.AttributeValueMemberS{Value: "2031-03-14T15:09:26.000000500Z"}},
		{"Time zero", dynamoattr.Time(time.Time{}), nil},
		{"JSON", js(map[string]int{"a": 1}, false), &types.AttributeValueMemberS{Value: `{"a":1}`}},
		{"JSON empty", js([]string(nil), true), nil},
		{"Strings", dynamoattr.Strings([]string{"a", ""}), &types.AttributeValueMemberL{Value: []types.AttributeValue{
			&types.AttributeValueMemberS{Value: "a"}, &types.AttributeValueMemberS{Value: ""}}}},
		{"Strings empty", dynamoattr.Strings(nil), nil},
	}
	for _, tc := range cases {
		if d := cmp.Diff(tc.want, tc.got, cmp.AllowUnexported(types.AttributeValueMemberS{}, types.AttributeValueMemberN{}, types.AttributeValueMemberB{}, types.AttributeValueMemberL{})); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
	if _, err := dynamoattr.JSON(func() {}, false); err == nil {
		t.Errorf("JSON of a func: no error")
	}
}

// TestFormatTimeSortsAsText: UTC times of any fraction have one width, so
// their text sorts as the times do.
func TestFormatTimeSortsAsText(t *testing.T) {
	t.Parallel()
	base := time.Date(2031, 3, 14, 15, 9, 26, 0, time.UTC)
	times := []time.Time{base, base.Add(time.Nanosecond), base.Add(10 * time.Millisecond), base.Add(time.Second)}
	for i := 1; i < len(times); i++ {
		a, b := dynamoattr.FormatTime(times[i-1]), dynamoattr.FormatTime(times[i])
		if len(a) != len(b) || a >= b {
			t.Errorf("FormatTime: %q, %q do not sort as the times", a, b)
		}
	}
}

// TestSize: DynamoDB's documented sizes, value by value, and an item's
// size as its names plus its values.
func TestSize(t *testing.T) {
	t.Parallel()
	num := func(s string) types.AttributeValue { return &types.AttributeValueMemberN{Value: s} }
	cases := []struct {
		name string
		v    types.AttributeValue
		want int
	}{
		{"S", dynamoattr.S("abc"), 3},
		{"S UTF-8 bytes", dynamoattr.S("价"), 3},
		{"S empty", dynamoattr.S(""), 0},
		{"B", dynamoattr.B([]byte{0, 1}), 2},
		{"N zero", num("0"), 1},
		{"N one digit", num("7"), 2},
		{"N two digits", num("12"), 2},
		{"N three digits", num("123"), 3},
		{"N negative", num("-123"), 4},
		{"N trailing zeroes", num("1000"), 2},
		{"N leading zeroes and point", num("0.0012"), 2},
		{"N point inside", num("10.01"), 3},
		{"N exponent", num("1.5E+3"), 2},
		{"N int64 max", dynamoattr.N(9223372036854775807), 11},
		{"BOOL", &types.AttributeValueMemberBOOL{Value: true}, 1},
		{"NULL", &types.AttributeValueMemberNULL{Value: true}, 1},
		{"L empty", &types.AttributeValueMemberL{}, 3},
		{"L", dynamoattr.Strings([]string{"ab", "c"}), 3 + (1 + 2) + (1 + 1)},
		{"L nested", &types.AttributeValueMemberL{Value: []types.AttributeValue{num("7"), &types.AttributeValueMemberL{}}}, 3 + (1 + 2) + (1 + 3)},
		{"M empty", &types.AttributeValueMemberM{}, 3},
		{"M", &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"k": dynamoattr.S("v"), "nn": num("42")}}, 3 + (1 + 1 + 1) + (1 + 2 + 2)},
		{"SS", &types.AttributeValueMemberSS{Value: []string{"a", "bc"}}, 3},
		{"NS", &types.AttributeValueMemberNS{Value: []string{"1", "-22"}}, 2 + 3},
		{"BS", &types.AttributeValueMemberBS{Value: [][]byte{{1}, {2, 3}}}, 3},
		{"nil", nil, 0},
	}
	for _, tc := range cases {
		if got := dynamoattr.ValueSize(tc.v); got != tc.want {
			t.Errorf("ValueSize(%s) = %d, want %d", tc.name, got, tc.want)
		}
	}
	it := dynamoattr.Item{"sku": dynamoattr.S("A1"), "n": dynamoattr.N(42), "l": &types.AttributeValueMemberL{}}
	if got, want := dynamoattr.Size(it), (3+2)+(1+2)+(1+3); got != want {
		t.Errorf("Size = %d, want %d", got, want)
	}
	if got := dynamoattr.Size(nil); got != 0 {
		t.Errorf("Size(nil) = %d", got)
	}
}

func TestPut(t *testing.T) {
	t.Parallel()
	it := dynamoattr.Item{}
	dynamoattr.Put(it, "a", dynamoattr.S("x"))
	dynamoattr.Put(it, "b", nil)
	if _, ok := it["b"]; ok || len(it) != 1 {
		t.Errorf("Put: item %v, want only a", it)
	}
}

// TestDecoder: each reader on a present, an absent and a mistyped
// attribute; the first error is kept.
func TestDecoder(t *testing.T) {
	t.Parallel()
	at := time.Date(2031, 3, 14, 15, 9, 26, 123456789, time.UTC)
	it := dynamoattr.Item{
		"s":    dynamoattr.S("x"),
		"n":    dynamoattr.N(7),
		"b":    dynamoattr.B([]byte{1}),
		"t":    dynamoattr.Time(at),
		"js":   dynamoattr.S(`{"k":[1,2]}`),
		"l":    &types.AttributeValueMemberL{Value: []types.AttributeValue{dynamoattr.S("a"), dynamoattr.S("b")}},
		"bad":  &types.AttributeValueMemberBOOL{Value: true},
		"nan":  &types.AttributeValueMemberN{Value: "1.5"},
		"tbad": dynamoattr.S("yesterday"),
		"jbad": dynamoattr.S("{"),
		"lbad": &types.AttributeValueMemberL{Value: []types.AttributeValue{dynamoattr.S("a"), dynamoattr.N(1)}},
	}
	d := dynamoattr.NewDecoder(it)
	var js struct{ K []int }
	d.JSON("js", &js)
	if got := d.S("s"); got != "x" {
		t.Errorf("S = %q", got)
	}
	if got := d.N("n"); got != 7 {
		t.Errorf("N = %d", got)
	}
	if got := d.B("b"); string(got) != "\x01" {
		t.Errorf("B = %v", got)
	}
	if got := d.Time("t"); !got.Equal(at) || got.Location() != time.UTC {
		t.Errorf("Time = %v", got)
	}
	if len(js.K) != 2 {
		t.Errorf("JSON = %+v", js)
	}
	if got := d.Strings("l"); !cmp.Equal(got, []string{"a", "b"}) {
		t.Errorf("Strings = %q", got)
	}
	if d.Attr("n") != it["n"] || d.Attr("none") != nil {
		t.Errorf("Attr: not the stored values")
	}
	// Absent attributes are zero values, not errors.
	if d.S("none") != "" || d.N("none") != 0 || d.B("none") != nil || !d.Time("none").IsZero() || d.Strings("none") != nil {
		t.Errorf("absent attributes are not zero values")
	}
	d.JSON("none", &js)
	if err := d.Err(); err != nil {
		t.Fatalf("Err = %v after good reads", err)
	}

	bad := []struct {
		name string
		read func(d *dynamoattr.Decoder)
	}{
		{"bad", func(d *dynamoattr.Decoder) { d.S("bad") }},
		{"bad", func(d *dynamoattr.Decoder) { d.N("bad") }},
		{"nan", func(d *dynamoattr.Decoder) { d.N("nan") }},
		{"bad", func(d *dynamoattr.Decoder) { d.B("bad") }},
		{"tbad", func(d *dynamoattr.Decoder) { d.Time("tbad") }},
		{"jbad", func(d *dynamoattr.Decoder) { d.JSON("jbad", &js) }},
		{"bad", func(d *dynamoattr.Decoder) { d.Strings("bad") }},
		{"lbad", func(d *dynamoattr.Decoder) { d.Strings("lbad") }},
	}
	for i, tc := range bad {
		d := dynamoattr.NewDecoder(it)
		tc.read(d)
		err := d.Err()
		if err == nil || !strings.Contains(err.Error(), "attribute "+tc.name+":") {
			t.Errorf("case %d: Err = %v, want an error naming %s", i, err, tc.name)
		}
	}

	// The first error is kept.
	d = dynamoattr.NewDecoder(it)
	first := errors.New("first")
	d.Fail("x", first)
	d.N("bad")
	if !errors.Is(d.Err(), first) {
		t.Errorf("Err = %v, want the first error", d.Err())
	}
}

// TestExprAndUpdate: placeholders name exactly the attributes and values
// used, and the update has its clauses in order.
func TestExprAndUpdate(t *testing.T) {
	t.Parallel()
	e := dynamoattr.NewExpr()
	if e.Names() != nil || e.Values() != nil {
		t.Errorf("empty Expr: maps not nil")
	}
	u := dynamoattr.Update{E: e}
	u.Add("epoch", 1)
	u.Set("status", dynamoattr.S("RUNNING"))
	u.Set("owner", nil)
	u.Set("lease_until", dynamoattr.S("t"))
	cond := "attribute_exists(" + e.Name("pk") + ") AND " + e.Name("status") + " <> " + e.Value(dynamoattr.S("DONE"))
	if got, want := u.String(), "SET #status = :v1, #lease_until = :v2 REMOVE #owner ADD #epoch :v0"; got != want {
		t.Errorf("Update = %q, want %q", got, want)
	}
	if want := "attribute_exists(#pk) AND #status <> :v3"; cond != want {
		t.Errorf("condition = %q, want %q", cond, want)
	}
	wantNames := map[string]string{"#epoch": "epoch", "#status": "status", "#owner": "owner", "#lease_until": "lease_until", "#pk": "pk"}
	if d := cmp.Diff(wantNames, e.Names()); d != "" {
		t.Errorf("Names (-want +got):\n%s", d)
	}
	wantVals := map[string]types.AttributeValue{":v0": dynamoattr.N(1), ":v1": dynamoattr.S("RUNNING"), ":v2": dynamoattr.S("t"), ":v3": dynamoattr.S("DONE")}
	if d := cmp.Diff(wantVals, e.Values(), cmp.AllowUnexported(types.AttributeValueMemberS{}, types.AttributeValueMemberN{})); d != "" {
		t.Errorf("Values (-want +got):\n%s", d)
	}
	if got := (&dynamoattr.Update{E: dynamoattr.NewExpr()}).String(); got != "" {
		t.Errorf("empty Update = %q", got)
	}
}
